//! When a failed export is tried again: the OTLP specification's
//! exponential backoff with jitter, a server's own delay when it gives one,
//! all within the export's deadline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Tries after the first.
const MAX_RETRIES: u32 = 3;
const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
const MAX_JITTER_MS: u64 = 100;
/// The longest server-requested delay honoured (`Retry-After`, gRPC retry
/// info); longer ones are cut to this.
pub(crate) const MAX_THROTTLE: Duration = Duration::from_secs(600);

/// How one try ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Delivered,
    /// Worth another try, after the server's delay when it gave one.
    Retryable {
        error: String,
        after: Option<Duration>,
    },
    /// Another try would fail the same way.
    Failed(String),
}

/// Runs `attempt` until it delivers, fails for good, runs out of tries, or
/// the next wait would end past `deadline`. The error names the last
/// failure and how many tries were made.
pub(crate) async fn with_retries<F, Fut>(deadline: Duration, mut attempt: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let give_up_at = Instant::now() + deadline;
    let mut delay = INITIAL_DELAY;
    let mut tries = 0u32;
    loop {
        tries += 1;
        let (error, after) = match attempt().await {
            Outcome::Delivered => return Ok(()),
            Outcome::Failed(error) => return Err(error),
            Outcome::Retryable { error, after } => (error, after),
        };
        if tries > MAX_RETRIES {
            return Err(format!("{error} (gave up after {tries} tries)"));
        }
        let wait = after.map_or_else(|| delay + jitter(), |after| after.min(MAX_THROTTLE));
        if Instant::now() + wait >= give_up_at {
            return Err(format!(
                "{error} (gave up after {tries} tries: the next, in {} ms, would end past the export deadline)",
                wait.as_millis()
            ));
        }
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Up to [`MAX_JITTER_MS`], from the clock's low bits: enough to keep
/// several processes that failed together from retrying in step.
fn jitter() -> Duration {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| u64::from(since.subsec_nanos()));
    let mixed = nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    Duration::from_millis(mixed % (MAX_JITTER_MS + 1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::cell::Cell;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_retryable_failure_is_tried_four_times_with_growing_waits() {
        let tries = Cell::new(0);
        let start = tokio::time::Instant::now();
        let result = with_retries(Duration::from_secs(10), || {
            tries.set(tries.get() + 1);
            async { Outcome::Retryable { error: "503".to_owned(), after: None } }
        })
        .await;
        assert_eq!(tries.get(), 4);
        let error = result.unwrap_err();
        assert!(error.contains("503") && error.contains("4 tries"), "{error}");
        // 100 + 200 + 400 ms of backoff, plus at most 100 ms of jitter each.
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(700) && waited <= Duration::from_millis(1000), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_delay_is_honoured_and_a_success_ends_the_tries() {
        let tries = Cell::new(0);
        let start = tokio::time::Instant::now();
        let result = with_retries(Duration::from_secs(10), || {
            tries.set(tries.get() + 1);
            let outcome = if tries.get() == 1 {
                Outcome::Retryable { error: "429".to_owned(), after: Some(Duration::from_secs(3)) }
            } else {
                Outcome::Delivered
            };
            async { outcome }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(tries.get(), 2);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_or_a_wait_past_the_deadline_is_not_tried_again() {
        let tries = Cell::new(0);
        let result = with_retries(Duration::from_secs(10), || {
            tries.set(tries.get() + 1);
            async { Outcome::Failed("400 Bad Request".to_owned()) }
        })
        .await;
        assert_eq!((tries.get(), result.unwrap_err().as_str()), (1, "400 Bad Request"));

        tries.set(0);
        let result = with_retries(Duration::from_secs(10), || {
            tries.set(tries.get() + 1);
            async { Outcome::Retryable { error: "429".to_owned(), after: Some(Duration::from_secs(60)) } }
        })
        .await;
        assert_eq!(tries.get(), 1);
        assert!(result.unwrap_err().contains("past the export deadline"));
    }
}

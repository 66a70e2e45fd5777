//! When a failed export is tried again: the OTLP specification's
//! exponential backoff with jitter, a server's own delay when it gives one,
//! for as long as the retry time allows (the Collector's
//! `retry_on_failure.max_elapsed_time`). The batch stays in memory while
//! it waits, so a collector that is down for a while, or starts after the
//! program, still gets it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);
const MAX_JITTER_MS: u64 = 100;
/// The longest server-requested delay read (`Retry-After`, gRPC retry
/// info); a longer one is cut to this, and the retry time bounds it too.
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
    /// The request is too large for the server (HTTP 413): smaller ones
    /// may go through.
    TooLarge(String),
    /// Another try would fail the same way.
    Failed(String),
}

/// Why the tries ended without delivering.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The server refused the request for its size.
    TooLarge(String),
    /// A failure another try would repeat (400, 401, a TLS failure, …).
    Failed(String),
    /// Transient failures until the retry time ran out; the text names the
    /// last one and the tries made.
    GaveUp(String),
}

impl Failure {
    pub(crate) fn into_message(self) -> String {
        match self {
            Self::TooLarge(message) | Self::Failed(message) | Self::GaveUp(message) => message,
        }
    }
}

/// Runs `attempt` until it delivers, fails for good, or the next wait would
/// end more than `retry_time` after the first try. `on_retry` is called
/// before each try after the first.
pub(crate) async fn with_retries<F, Fut>(
    retry_time: Duration,
    mut on_retry: impl FnMut(),
    mut attempt: F,
) -> Result<(), Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let start = Instant::now();
    let mut delay = INITIAL_DELAY;
    let mut tries = 0u32;
    loop {
        tries += 1;
        let (error, after) = match attempt().await {
            Outcome::Delivered => return Ok(()),
            Outcome::Failed(error) => return Err(Failure::Failed(error)),
            Outcome::TooLarge(error) => return Err(Failure::TooLarge(error)),
            Outcome::Retryable { error, after } => (error, after),
        };
        let wait = after.map_or_else(|| delay + jitter(), |after| after.min(MAX_THROTTLE));
        if (Instant::now() + wait).duration_since(start) > retry_time {
            return Err(Failure::GaveUp(format!(
                "{error} (gave up after {tries} {}: the next, in {} ms, would start past the retry time of {} ms)",
                if tries == 1 { "try" } else { "tries" },
                wait.as_millis(),
                retry_time.as_millis()
            )));
        }
        tokio::time::sleep(wait).await;
        on_retry();
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
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::cell::Cell;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_retryable_failure_is_tried_with_growing_waits_until_the_retry_time() {
        let tries = Cell::new(0);
        let retries = Cell::new(0);
        let start = tokio::time::Instant::now();
        let result = with_retries(
            Duration::from_secs(10),
            || retries.set(retries.get() + 1),
            || {
                tries.set(tries.get() + 1);
                async { Outcome::Retryable { error: "503".to_owned(), after: None } }
            },
        )
        .await;
        // Waits of 0.1, 0.2, 0.4, 0.8, 1.6, 3.2 s (6.3 s) and then 5 s
        // would end past 10 s: 7 tries, each but the first a retry.
        assert_eq!((tries.get(), retries.get()), (7, 6));
        let Err(Failure::GaveUp(error)) = result else { panic!("{result:?}") };
        assert!(error.contains("503") && error.contains("7 tries"), "{error}");
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(6300) && waited <= Duration::from_millis(6900), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_delay_is_honoured_and_a_success_ends_the_tries() {
        let tries = Cell::new(0);
        let start = tokio::time::Instant::now();
        let result = with_retries(
            Duration::from_secs(300),
            || {},
            || {
                tries.set(tries.get() + 1);
                let outcome = if tries.get() == 1 {
                    Outcome::Retryable { error: "429".to_owned(), after: Some(Duration::from_secs(60)) }
                } else {
                    Outcome::Delivered
                };
                async { outcome }
            },
        )
        .await;
        assert!(result.is_ok());
        assert_eq!(tries.get(), 2);
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_or_a_wait_past_the_retry_time_is_not_tried_again() {
        let tries = Cell::new(0);
        let result = with_retries(
            Duration::from_secs(10),
            || {},
            || {
                tries.set(tries.get() + 1);
                async { Outcome::Failed("400 Bad Request".to_owned()) }
            },
        )
        .await;
        assert_eq!((tries.get(), result), (1, Err(Failure::Failed("400 Bad Request".to_owned()))));

        tries.set(0);
        let result = with_retries(
            Duration::from_secs(10),
            || {},
            || {
                tries.set(tries.get() + 1);
                async { Outcome::Retryable { error: "429".to_owned(), after: Some(Duration::from_secs(60)) } }
            },
        )
        .await;
        assert_eq!(tries.get(), 1);
        let Err(Failure::GaveUp(error)) = result else { panic!("{result:?}") };
        assert!(error.contains("past the retry time"), "{error}");

        let result =
            with_retries(Duration::from_secs(10), || {}, || async { Outcome::TooLarge("413".to_owned()) }).await;
        assert_eq!(result, Err(Failure::TooLarge("413".to_owned())));
    }
}

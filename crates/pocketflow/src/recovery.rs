//! Deadlines, retries and error handlers for async work: the Rust form of
//! the seed guide's `with_timeout`, `safe_async_execute` and
//! `AsyncErrorHandler`, without their Python bugs.
//!
//! - [`with_timeout`] drops the work when its deadline passes, so every
//!   flow and node span inside it ends `cancelled`, and reports
//!   `pocketflow.timeout` where it was awaited.
//! - [`safe_execute`] builds a fresh future for every attempt (Python's
//!   `safe_async_execute` re-awaits one spent coroutine, so its retries can
//!   never succeed), with an optional per-attempt deadline and a
//!   [`Backoff`] between attempts.
//! - [`ErrorHandler`] classifies failures, runs the handlers registered for
//!   their type and keeps counts. Python's handler also replaces the
//!   process's SIGINT/SIGTERM handlers; this one touches no signal
//!   handling at all.

use std::collections::{BTreeMap, HashMap};
use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use crate::error::{BoxError, ErrorType, FlowError, Severity};
use crate::telemetry::{self, AsyncErrorRecord};

/// A tokio timer for `after`, or `None` outside a tokio runtime or in one
/// without its time driver. Tokio has no way to ask whether the driver is
/// there: creating the timer panics when it is not, so that panic is
/// caught here (the panic hook still prints tokio's message once per
/// call).
pub(crate) fn timer(after: Duration) -> Option<tokio::time::Sleep> {
    tokio::runtime::Handle::try_current().ok()?;
    std::panic::catch_unwind(|| tokio::time::sleep(after)).ok()
}

/// Waits `wait` on tokio's clock, or, with no timer available, by sleeping
/// the thread (as a node's retry wait does): slower for the runtime's
/// other tasks, but the backoff still happens as configured.
pub(crate) async fn pause(wait: Duration) {
    if wait.is_zero() {
        return;
    }
    match timer(wait) {
        Some(timer) => timer.await,
        None => std::thread::sleep(wait),
    }
}

/// Runs `future` with a deadline of `after`.
///
/// When the deadline passes first, `future` is dropped: whatever it was
/// running stops at its current await point, and the flow and node spans
/// inside it end with lifecycle `cancelled` and error `cancelled`. A
/// `pocketflow.timeout` event (fields `name`, `after_ms`) is then emitted
/// in the span that awaited `with_timeout`, and
/// [`FlowError::Timeout`] is returned. A future that is ready when first
/// polled wins even against a zero deadline.
///
/// Outside a tokio runtime, or in one built without `enable_time`, there is
/// no timer to race against: `future` is dropped unpolled and
/// [`FlowError::NoTimer`] is returned (tokio itself would panic).
///
/// ```
/// use std::time::Duration;
/// use pocketflow::{FlowError, with_timeout};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let quick = with_timeout("quick", Duration::from_secs(1), async { 42 }).await;
/// assert_eq!(quick.ok(), Some(42));
///
/// let slow = with_timeout("slow", Duration::from_millis(10), tokio::time::sleep(Duration::from_secs(60))).await;
/// assert!(matches!(slow, Err(FlowError::Timeout { .. })));
/// # }
/// ```
pub async fn with_timeout<F: Future>(
    name: impl Into<String>,
    after: Duration,
    future: F,
) -> Result<F::Output, FlowError> {
    let Some(deadline) = timer(after) else {
        return Err(FlowError::NoTimer { name: name.into() });
    };
    // The future lives only in this block, so on timeout it is dropped
    // (and its spans closed) before the timeout is reported.
    let output = {
        let mut future = pin!(future);
        let mut deadline = pin!(deadline);
        poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            match deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    };
    match output {
        Some(output) => Ok(output),
        None => {
            let name = name.into();
            telemetry::timeout(&name, after);
            Err(FlowError::Timeout { name, after })
        }
    }
}

/// How long [`safe_execute`] waits after a failed attempt before the next.
///
/// ```
/// use std::time::Duration;
/// use pocketflow::Backoff;
///
/// let ms = Duration::from_millis;
/// // Python's `safe_async_execute` sleeps 0.1 * (attempt + 1) seconds.
/// let python = Backoff::linear(ms(100));
/// assert_eq!([python.wait(0), python.wait(1), python.wait(2)], [ms(100), ms(200), ms(300)]);
///
/// let doubling = Backoff::exponential(ms(100), 2.0, ms(300));
/// assert_eq!([doubling.wait(0), doubling.wait(1), doubling.wait(2)], [ms(100), ms(200), ms(300)]);
///
/// assert_eq!(Backoff::none().wait(5), Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Backoff(BackoffKind);

#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum BackoffKind {
    #[default]
    None,
    Linear(Duration),
    Exponential {
        initial: Duration,
        factor: f64,
        max: Duration,
    },
}

impl Backoff {
    /// No wait: the next attempt starts right away.
    pub const fn none() -> Self {
        Self(BackoffKind::None)
    }

    /// Waits `step × (attempt + 1)` after the zero-based `attempt` failed:
    /// `step`, `2 × step`, `3 × step`… `linear(100 ms)` is Python's
    /// `safe_async_execute`.
    pub const fn linear(step: Duration) -> Self {
        Self(BackoffKind::Linear(step))
    }

    /// Waits `initial × factor^attempt` after the zero-based `attempt`
    /// failed, never more than `max`. A `factor` below 1 shrinks the wait;
    /// one that is negative or NaN (at any attempt), or a wait too long for
    /// a `Duration`, gives `max`.
    pub const fn exponential(initial: Duration, factor: f64, max: Duration) -> Self {
        Self(BackoffKind::Exponential { initial, factor, max })
    }

    /// The wait after the zero-based `attempt` failed.
    pub fn wait(&self, attempt: usize) -> Duration {
        match self.0 {
            BackoffKind::None => Duration::ZERO,
            BackoffKind::Linear(step) => {
                step.saturating_mul(u32::try_from(attempt.saturating_add(1)).unwrap_or(u32::MAX))
            }
            // NaN or negative. A negative factor would otherwise alternate:
            // max after odd attempts, a real wait after even ones.
            BackoffKind::Exponential { factor, max, .. } if factor.is_nan() || factor < 0.0 => max,
            BackoffKind::Exponential { initial, factor, max } => {
                let power = i32::try_from(attempt).unwrap_or(i32::MAX);
                let secs = initial.as_secs_f64() * factor.powi(power);
                Duration::try_from_secs_f64(secs).map_or(max, |wait| wait.min(max))
            }
        }
    }
}

/// How [`safe_execute`] retries: how many attempts, each with an optional
/// deadline, and how long to wait between them.
///
/// The default is one attempt, no deadline, no wait. Python's
/// `safe_async_execute(coro, timeout_seconds=t, retry_count=r)` is
/// `RetryPolicy::new(r + 1).timeout(t).backoff(Backoff::linear(100 ms))`.
///
/// ```
/// use std::time::Duration;
/// use pocketflow::{Backoff, RetryPolicy};
///
/// let policy = RetryPolicy::new(3)
///     .timeout(Duration::from_secs(10))
///     .backoff(Backoff::linear(Duration::from_millis(100)));
/// assert_eq!(policy.max_attempts(), 3);
/// assert_eq!(policy.attempt_timeout(), Some(Duration::from_secs(10)));
/// assert_eq!(policy.wait_after(1), Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    attempts: usize,
    timeout: Option<Duration>,
    backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new(1)
    }
}

impl RetryPolicy {
    /// `attempts` attempts in all (PocketFlow's `max_retries`), no
    /// deadline, no wait. Zero attempts would never run the work, so
    /// [`safe_execute`] answers it with [`FlowError::NoAttempts`], as a
    /// node with `max_retries = 0` does.
    pub const fn new(attempts: usize) -> Self {
        Self { attempts, timeout: None, backoff: Backoff::none() }
    }

    /// Gives every attempt a deadline: an attempt still running after
    /// `after` is dropped (as by [`with_timeout`]) and counts as failed,
    /// with a [`FlowError::Timeout`] as its error.
    #[must_use]
    pub const fn timeout(mut self, after: Duration) -> Self {
        self.timeout = Some(after);
        self
    }

    /// Waits `backoff` between a failed attempt and the next.
    #[must_use]
    pub const fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The number of attempts.
    pub const fn max_attempts(&self) -> usize {
        self.attempts
    }

    /// The per-attempt deadline, if any.
    pub const fn attempt_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The wait after the zero-based `attempt` failed.
    pub fn wait_after(&self, attempt: usize) -> Duration {
        self.backoff.wait(attempt)
    }
}

/// Runs the work `make` builds, retrying as `policy` says.
///
/// Every attempt calls `make` with its zero-based attempt number and awaits
/// the fresh future it returns, so a retry really runs the work again
/// (Python's `safe_async_execute` re-awaits the coroutine it was given,
/// which fails every retry with "cannot reuse already awaited coroutine").
/// With a per-attempt timeout, each attempt runs under [`with_timeout`]. A
/// failed attempt that is not the last emits `pocketflow.retry` (fields
/// `attempt`, `max_retries`, `wait_ms`, `error`) in the caller's span, then
/// waits the backoff on tokio's clock (by sleeping the thread when there is
/// no timer, like a node's retry wait).
///
/// When every attempt failed, the last error comes back as
/// [`FlowError::Exhausted`]: [`FlowError::downcast_ref`] finds the
/// attempt's own error in it and [`FlowError::error_type`] classifies it
/// (a timed-out last attempt is a [`ErrorType::Timeout`]). Zero attempts
/// give [`FlowError::NoAttempts`], and a per-attempt timeout without a
/// timer gives [`FlowError::NoTimer`], both without running anything. A
/// panic in an attempt is not an error result: it propagates (run the work
/// in a task to turn panics into errors).
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use pocketflow::{RetryPolicy, safe_execute};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let calls = AtomicUsize::new(0);
/// let answer = safe_execute("flaky", &RetryPolicy::new(3), |attempt| {
///     calls.fetch_add(1, Ordering::Relaxed);
///     async move { if attempt < 2 { Err("not yet") } else { Ok(attempt) } }
/// })
/// .await;
/// assert_eq!(answer.ok(), Some(2));
/// assert_eq!(calls.load(Ordering::Relaxed), 3);
///
/// let failed = safe_execute("broken", &RetryPolicy::new(2), |_| async { "x".parse::<u8>() }).await;
/// let failed = failed.err().unwrap();
/// assert!(failed.downcast_ref::<std::num::ParseIntError>().is_some());
/// # }
/// ```
pub async fn safe_execute<T, E, Fut>(
    name: impl Into<String>,
    policy: &RetryPolicy,
    mut make: impl FnMut(usize) -> Fut,
) -> Result<T, FlowError>
where
    Fut: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    let name = name.into();
    if policy.attempts == 0 {
        return Err(FlowError::NoAttempts { node: name });
    }
    let mut attempt = 0;
    loop {
        let future = make(attempt);
        let error: BoxError = match policy.timeout {
            None => match future.await {
                Ok(value) => return Ok(value),
                Err(error) => error.into(),
            },
            Some(after) => match with_timeout(name.as_str(), after, future).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => error.into(),
                Err(timeout @ FlowError::Timeout { .. }) => Box::new(timeout),
                Err(other) => return Err(other),
            },
        };
        if attempt + 1 >= policy.attempts {
            return Err(FlowError::Exhausted { name, attempts: attempt + 1, source: error });
        }
        let wait = policy.backoff.wait(attempt);
        telemetry::retry(attempt, policy.attempts, wait, &error);
        pause(wait).await;
        attempt += 1;
    }
}

/// Whether an error handler dealt with the failure. Handlers may also
/// return a `bool` (`true`: recovered) or `()` (an observer: not
/// recovered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recovery {
    /// The handler dealt with the failure.
    Recovered,
    /// The handler only observed it, or could not deal with it.
    NotRecovered,
}

impl From<bool> for Recovery {
    fn from(recovered: bool) -> Self {
        if recovered { Self::Recovered } else { Self::NotRecovered }
    }
}

impl From<()> for Recovery {
    fn from((): ()) -> Self {
        Self::NotRecovered
    }
}

/// One failure as an [`ErrorHandler`] saw it: the guide's `AsyncErrorEvent`.
///
/// Handlers get it while the handlers for its type are running: then
/// `handlers_run` counts the handlers before this one and `recovered` says
/// whether one of them recovered the failure. [`ErrorHandler::handle`]
/// returns it complete.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AsyncErrorEvent {
    /// What kind of failure it is.
    pub error_type: ErrorType,
    /// How bad it is: the type's default severity unless
    /// [`ErrorHandler::set_severity`] changed it.
    pub severity: Severity,
    /// The error, displayed.
    pub message: String,
    /// The node it happened in, as given to `handle`.
    pub node: Option<String>,
    /// The flow it happened in, as given to `handle`.
    pub flow: Option<String>,
    /// Whether a registered handler returned [`Recovery::Recovered`].
    pub recovered: bool,
    /// How many registered handlers ran.
    pub handlers_run: usize,
    /// When it was handled.
    pub at: SystemTime,
}

/// Counts of the failures an [`ErrorHandler`] handled.
///
/// ```
/// use pocketflow::{ErrorHandler, ErrorType};
///
/// let handler = ErrorHandler::new();
/// handler.handle(&std::io::Error::from(std::io::ErrorKind::TimedOut), Some("fetch"), None);
/// let stats = handler.stats();
/// assert_eq!((stats.total, stats.count(ErrorType::Timeout), stats.recovered), (1, 1, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorStats {
    /// Failures handled.
    pub total: u64,
    /// Failures a registered handler recovered.
    pub recovered: u64,
    /// Failures per type (types never seen are absent).
    pub by_type: BTreeMap<ErrorType, u64>,
    /// Failures per severity (severities never given are absent).
    pub by_severity: BTreeMap<Severity, u64>,
}

impl ErrorStats {
    /// Failures of this type.
    pub fn count(&self, error_type: ErrorType) -> u64 {
        self.by_type.get(&error_type).copied().unwrap_or(0)
    }
}

type HandlerFn = dyn Fn(&AsyncErrorEvent) -> Recovery + Send + Sync + 'static;

#[derive(Default)]
struct Shared {
    handlers: RwLock<HashMap<ErrorType, Vec<Arc<HandlerFn>>>>,
    severities: RwLock<HashMap<ErrorType, Severity>>,
    stats: Mutex<ErrorStats>,
}

/// Classifies failures, runs the handlers registered for their type, counts
/// them and reports each as a `pocketflow.async_error` event: the guide's
/// `AsyncErrorHandler`.
///
/// Clones share handlers, severities and counts, so one handler can be
/// handed to every task. Unlike the Python one it installs no signal
/// handlers (Python's replaces the process's SIGINT and SIGTERM handlers)
/// and has no built-in "recoveries" that only return `True`: a failure is
/// recovered when a handler you registered says so.
///
/// ```
/// use std::time::Duration;
/// use pocketflow::{ErrorHandler, ErrorType, Recovery, Severity};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handler = ErrorHandler::new();
/// handler
///     .register(ErrorType::Timeout, |event| {
///         eprintln!("{} timed out", event.node.as_deref().unwrap_or("?"));
///         Recovery::Recovered
///     })
///     .set_severity(ErrorType::Timeout, Severity::Medium);
///
/// let slow = tokio::time::sleep(Duration::from_secs(60));
/// let result = handler.with_timeout("fetch", Duration::from_millis(10), slow).await;
/// assert!(result.is_err());
/// assert_eq!(handler.stats().recovered, 1);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ErrorHandler {
    shared: Arc<Shared>,
}

impl fmt::Debug for ErrorHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let handlers: BTreeMap<ErrorType, usize> =
            read(&self.shared.handlers).iter().map(|(t, list)| (*t, list.len())).collect();
        let severities: BTreeMap<ErrorType, Severity> =
            read(&self.shared.severities).iter().map(|(t, s)| (*t, *s)).collect();
        f.debug_struct("ErrorHandler")
            .field("handlers", &handlers)
            .field("severities", &severities)
            .field("stats", &*lock(&self.shared.stats))
            .finish()
    }
}

/// A lock poisoned by a panicking handler still holds consistent data
/// (handlers run outside the locks), so poisoning is ignored.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ErrorHandler {
    /// A handler with no registered handlers and every type at its
    /// default severity.
    ///
    /// ```
    /// let handler = pocketflow::ErrorHandler::new();
    /// assert_eq!(handler.stats().total, 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `handler` for failures of `error_type`. Several may be
    /// registered per type; all of them run, in registration order, even
    /// after one has recovered the failure. A handler returns a
    /// [`Recovery`], a `bool` or `()`. A handler that panics counts as not
    /// recovered, and the others still run.
    ///
    /// ```
    /// use pocketflow::{ErrorHandler, ErrorType};
    ///
    /// let handler = ErrorHandler::new();
    /// handler.register(ErrorType::TaskException, |_| ()).register(ErrorType::TaskException, |_| true);
    /// let event = handler.handle(&std::fmt::Error, None, None);
    /// assert_eq!((event.handlers_run, event.recovered), (2, true));
    /// ```
    pub fn register<R: Into<Recovery>>(
        &self,
        error_type: ErrorType,
        handler: impl Fn(&AsyncErrorEvent) -> R + Send + Sync + 'static,
    ) -> &Self {
        let handler: Arc<HandlerFn> = Arc::new(move |event: &AsyncErrorEvent| handler(event).into());
        write(&self.shared.handlers).entry(error_type).or_default().push(handler);
        self
    }

    /// Gives failures of `error_type` this severity instead of
    /// [`ErrorType::default_severity`].
    ///
    /// ```
    /// use pocketflow::{ErrorHandler, ErrorType, Severity};
    ///
    /// let handler = ErrorHandler::new();
    /// handler.set_severity(ErrorType::TaskException, Severity::High);
    /// assert_eq!(handler.severity(ErrorType::TaskException), Severity::High);
    /// assert_eq!(handler.severity(ErrorType::Timeout), Severity::High);
    /// ```
    pub fn set_severity(&self, error_type: ErrorType, severity: Severity) -> &Self {
        write(&self.shared.severities).insert(error_type, severity);
        self
    }

    /// The severity failures of `error_type` get.
    pub fn severity(&self, error_type: ErrorType) -> Severity {
        read(&self.shared.severities).get(&error_type).copied().unwrap_or_else(|| error_type.default_severity())
    }

    /// Handles one failure: classifies it ([`ErrorType::of`], which uses a
    /// [`FlowError`]'s own [`error_type`](FlowError::error_type)), gives it
    /// its severity, runs the handlers registered for its type, counts it,
    /// emits `pocketflow.async_error` in the current span (fields
    /// `error_type`, `severity`, `recovered`, `handlers`, `node`, `flow`,
    /// `error`), and returns the event. `node` and `flow` say where it
    /// happened, for the handlers and the event.
    ///
    /// ```
    /// use pocketflow::{ErrorHandler, ErrorType, Severity};
    ///
    /// let handler = ErrorHandler::new();
    /// let oom = std::io::Error::from(std::io::ErrorKind::OutOfMemory);
    /// let event = handler.handle(&oom, Some("load"), Some("Ingest"));
    /// assert_eq!(event.error_type, ErrorType::ResourceExhaustion);
    /// assert_eq!(event.severity, Severity::Critical);
    /// assert_eq!(event.node.as_deref(), Some("load"));
    /// ```
    pub fn handle(&self, error: &(dyn StdError + 'static), node: Option<&str>, flow: Option<&str>) -> AsyncErrorEvent {
        let error_type = ErrorType::of(error);
        let mut event = AsyncErrorEvent {
            error_type,
            severity: self.severity(error_type),
            message: error.to_string(),
            node: node.map(str::to_owned),
            flow: flow.map(str::to_owned),
            recovered: false,
            handlers_run: 0,
            at: SystemTime::now(),
        };
        // A snapshot, so a handler may register more handlers without
        // deadlocking; those run from the next failure on.
        let handlers: Vec<Arc<HandlerFn>> = read(&self.shared.handlers).get(&error_type).cloned().unwrap_or_default();
        for handler in handlers {
            let recovery = std::panic::catch_unwind(AssertUnwindSafe(|| handler(&event)));
            event.handlers_run += 1;
            event.recovered |= matches!(recovery, Ok(Recovery::Recovered));
        }
        {
            let mut stats = lock(&self.shared.stats);
            stats.total += 1;
            stats.recovered += u64::from(event.recovered);
            *stats.by_type.entry(error_type).or_default() += 1;
            *stats.by_severity.entry(event.severity).or_default() += 1;
        }
        telemetry::async_error(&AsyncErrorRecord {
            error_type,
            severity: event.severity,
            recovered: event.recovered,
            handlers: event.handlers_run,
            node,
            flow,
            error: &event.message,
        });
        event
    }

    /// Counts of the failures handled so far (by this handler and its
    /// clones).
    pub fn stats(&self) -> ErrorStats {
        lock(&self.shared.stats).clone()
    }

    /// [`with_timeout`], handling its failure (a timeout, or a missing
    /// timer) with `node` = `name` before returning it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pocketflow::{ErrorHandler, ErrorType};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let handler = ErrorHandler::new();
    /// let late = handler.with_timeout("late", Duration::from_millis(5), tokio::time::sleep(Duration::from_secs(1)));
    /// assert!(late.await.is_err());
    /// assert_eq!(handler.stats().count(ErrorType::Timeout), 1);
    /// # }
    /// ```
    pub async fn with_timeout<F: Future>(
        &self,
        name: impl Into<String>,
        after: Duration,
        future: F,
    ) -> Result<F::Output, FlowError> {
        let name = name.into();
        let result = with_timeout(name.as_str(), after, future).await;
        if let Err(error) = &result {
            self.handle(error, Some(&name), None);
        }
        result
    }

    /// [`safe_execute`], handling the final failure (not each failed
    /// attempt, which `pocketflow.retry` reports) with `node` = `name`
    /// before returning it.
    ///
    /// ```
    /// use pocketflow::{ErrorHandler, ErrorType, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let handler = ErrorHandler::new();
    /// let result = handler.safe_execute("parse", &RetryPolicy::new(2), |_| async { "x".parse::<u8>() }).await;
    /// assert!(result.is_err());
    /// assert_eq!(handler.stats().count(ErrorType::TaskException), 1);
    /// # }
    /// ```
    pub async fn safe_execute<T, E, Fut>(
        &self,
        name: impl Into<String>,
        policy: &RetryPolicy,
        make: impl FnMut(usize) -> Fut,
    ) -> Result<T, FlowError>
    where
        Fut: Future<Output = Result<T, E>>,
        E: Into<BoxError>,
    {
        let name = name.into();
        let result = safe_execute(name.as_str(), policy, make).await;
        if let Err(error) = &result {
            self.handle(error, Some(&name), None);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone + fmt::Debug>() {}

    #[test]
    fn the_handler_is_shareable() {
        assert_send_sync::<ErrorHandler>();
    }

    #[test]
    fn debug_names_handler_counts_not_closures() {
        let handler = ErrorHandler::new();
        handler.register(ErrorType::Timeout, |_| true);
        let debug = format!("{handler:?}");
        assert!(debug.contains("Timeout: 1"), "{debug}");
    }

    #[test]
    fn exponential_backoff_caps_and_tolerates_odd_factors() {
        let ms = Duration::from_millis;
        assert_eq!(Backoff::exponential(ms(10), f64::NAN, ms(50)).wait(3), ms(50));
        assert_eq!(Backoff::exponential(ms(10), -2.0, ms(50)).wait(1), ms(50));
        assert_eq!(Backoff::exponential(ms(10), -2.0, ms(50)).wait(2), ms(50), "even attempts too");
        assert_eq!(Backoff::exponential(ms(10), -0.5, ms(50)).wait(0), ms(50));
        assert_eq!(Backoff::exponential(ms(10), 1e300, ms(50)).wait(usize::MAX), ms(50));
        assert_eq!(Backoff::exponential(ms(40), 0.5, ms(50)).wait(1), ms(20));
        assert_eq!(Backoff::linear(Duration::MAX).wait(usize::MAX), Duration::MAX);
    }
}

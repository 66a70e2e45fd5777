//! Deadlines, retries and error handlers: `with_timeout`, `safe_execute`,
//! `RetryPolicy`/`Backoff` and `ErrorHandler` (the seed guide's
//! `with_timeout`, `safe_async_execute` and `AsyncErrorHandler`).
//!
//! Every time is virtual: the tests run on tokio's paused clock, which
//! jumps to the next timer whenever all tasks wait, so the backoff and
//! deadline figures below are exact.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pocketflow::{
    Action, AsyncErrorEvent, AsyncFlow, AsyncNode, Backoff, BoxError, Ctx, ErrorHandler, ErrorType, FlowError,
    Recovery, RetryPolicy, Severity, SharedStore, safe_execute, with_timeout,
};
use pocketflow_test_support::{Capture, Captured};
use tokio::time::Instant;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Captures this thread's spans and events until the guard drops.
fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::new();
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    (capture, guard)
}

fn field<'a>(fields: &'a std::collections::BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    fields.get(name).map(String::as_str)
}

/// The user's own error type, to be found again in the final error.
#[derive(Debug, PartialEq, Eq)]
struct Flaky(usize);

impl fmt::Display for Flaky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flaky attempt {}", self.0)
    }
}

impl std::error::Error for Flaky {}

/// An async node whose `exec` waits a minute: long enough for any deadline.
struct Sleeper;

impl AsyncNode for Sleeper {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    }
    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        Ok(Action::NONE)
    }
}

// ---------------------------------------------------------------- with_timeout

#[tokio::test(start_paused = true)]
async fn with_timeout_returns_the_output_when_the_work_finishes_in_time() {
    let (capture, _guard) = capture();
    let start = Instant::now();
    let output = with_timeout("quick", ms(100), async {
        tokio::time::sleep(ms(30)).await;
        7
    })
    .await;
    assert_eq!(output.unwrap(), 7);
    assert_eq!(start.elapsed(), ms(30));
    assert_eq!(capture.snapshot().events_named("pocketflow.timeout").count(), 0);
}

#[tokio::test(start_paused = true)]
async fn with_timeout_cancels_a_flow_run_and_reports_the_timeout_in_the_callers_span() {
    let (capture, _guard) = capture();
    let mut flow = AsyncFlow::named("Slow");
    flow.start(Sleeper);
    let shared = SharedStore::new();

    let start = Instant::now();
    let caller = tracing::info_span!("caller");
    let result = with_timeout("slow_flow", Duration::from_secs(1), flow.run(&shared)).instrument(caller).await;
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    match result {
        Err(FlowError::Timeout { name, after }) => {
            assert_eq!(name, "slow_flow");
            assert_eq!(after, Duration::from_secs(1));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }

    let captured = capture.snapshot();
    let (caller, _) = captured.spans_named("caller").next().unwrap();
    let timeouts: Vec<_> = captured.events_named("pocketflow.timeout").collect();
    assert_eq!(timeouts.len(), 1);
    assert_eq!(timeouts[0].span, Some(caller), "emitted in the span that awaited with_timeout");
    assert_eq!(field(&timeouts[0].fields, "name"), Some("slow_flow"));
    assert_eq!(field(&timeouts[0].fields, "after_ms"), Some("1000"));
    assert_eq!(timeouts[0].level, tracing::Level::WARN);

    for name in ["flow", "node"] {
        let (index, span) = captured.spans_named(name).next().unwrap();
        assert!(span.closed, "the {name} span is closed");
        assert_eq!(captured.states_in(index).last(), Some(&"cancelled"), "{name}");
        assert_eq!(field(&span.fields, "error"), Some("cancelled"), "{name}");
    }
    // The work was dropped (and reported cancelled) before the timeout was.
    let last_cancelled = captured.events.iter().rposition(|e| field(&e.fields, "state") == Some("cancelled")).unwrap();
    let timeout = captured.events.iter().position(|e| e.name == "pocketflow.timeout").unwrap();
    assert!(last_cancelled < timeout);
}

#[tokio::test(start_paused = true)]
async fn a_future_ready_at_once_beats_a_zero_deadline() {
    assert_eq!(with_timeout("instant", Duration::ZERO, async { 1 }).await.unwrap(), 1);
}

#[test]
fn with_timeout_outside_a_runtime_is_a_typed_error_not_a_panic() {
    let polled = Arc::new(AtomicUsize::new(0));
    let work = {
        let polled = Arc::clone(&polled);
        async move {
            polled.fetch_add(1, Ordering::Relaxed);
        }
    };
    let mut future = std::pin::pin!(with_timeout("orphan", ms(10), work));
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Err(error @ FlowError::NoTimer { .. })) => {
            assert_eq!(error.node(), "orphan");
            assert_eq!(error.phase(), None);
            assert_eq!(error.error_type(), ErrorType::Configuration);
        }
        other => panic!("expected NoTimer, got {:?}", other.map(|r| r.map(|_| ()))),
    }
    assert_eq!(polled.load(Ordering::Relaxed), 0, "the work is not started");
}

#[test]
fn with_timeout_in_a_runtime_without_the_time_driver_is_a_typed_error() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let error = runtime.block_on(with_timeout("no_clock", ms(10), async { 1 })).unwrap_err();
    assert!(matches!(error, FlowError::NoTimer { ref name } if name == "no_clock"));
    assert!(error.to_string().contains("enable_time"), "{error}");
}

// ---------------------------------------------------------------- safe_execute

/// Records the virtual time of every attempt (relative to `start`).
fn attempts_at(start: Instant, times: &RefCell<Vec<Duration>>) -> impl Fn() + '_ {
    move || times.borrow_mut().push(start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn each_attempt_gets_a_fresh_future_so_a_later_attempt_can_succeed() {
    let (capture, _guard) = capture();
    let calls = AtomicUsize::new(0);
    // Python's safe_async_execute re-awaits one spent coroutine, so its
    // third attempt could never succeed; here it does.
    let result = safe_execute("flaky", &RetryPolicy::new(3), |attempt| {
        calls.fetch_add(1, Ordering::Relaxed);
        async move { if attempt < 2 { Err(Flaky(attempt)) } else { Ok(format!("done on {attempt}")) } }
    })
    .await;
    assert_eq!(result.unwrap(), "done on 2");
    assert_eq!(calls.load(Ordering::Relaxed), 3);

    let captured = capture.snapshot();
    let retries: Vec<_> = captured.events_named("pocketflow.retry").collect();
    assert_eq!(retries.len(), 2);
    for (i, retry) in retries.iter().enumerate() {
        assert_eq!(field(&retry.fields, "attempt"), Some(i.to_string().as_str()));
        assert_eq!(field(&retry.fields, "max_retries"), Some("3"));
        assert_eq!(field(&retry.fields, "wait_ms"), Some("0"));
        assert_eq!(field(&retry.fields, "error"), Some(format!("flaky attempt {i}").as_str()));
    }
}

#[tokio::test(start_paused = true)]
async fn linear_backoff_waits_step_times_attempt_number_between_attempts() {
    let (capture, _guard) = capture();
    let times = RefCell::new(Vec::new());
    let record = attempts_at(Instant::now(), &times);
    let policy = RetryPolicy::new(4).backoff(Backoff::linear(ms(100)));
    let result: Result<(), _> = safe_execute("linear", &policy, |attempt| {
        record();
        async move { Err(Flaky(attempt)) }
    })
    .await;
    assert!(matches!(result, Err(FlowError::Exhausted { attempts: 4, .. })));
    assert_eq!(*times.borrow(), [ms(0), ms(100), ms(300), ms(600)]);
    let waits: Vec<_> = capture
        .snapshot()
        .events_named("pocketflow.retry")
        .map(|e| e.fields.get("wait_ms").cloned().unwrap_or_default())
        .collect();
    assert_eq!(waits, ["100", "200", "300"], "no wait after the last attempt");
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_multiplies_the_wait_up_to_its_cap() {
    let times = RefCell::new(Vec::new());
    let record = attempts_at(Instant::now(), &times);
    let policy = RetryPolicy::new(5).backoff(Backoff::exponential(ms(100), 2.0, ms(300)));
    let result: Result<(), _> = safe_execute("exponential", &policy, |attempt| {
        record();
        async move { Err(Flaky(attempt)) }
    })
    .await;
    assert!(result.is_err());
    // Waits 100, 200, then 400 and 800 capped at 300.
    assert_eq!(*times.borrow(), [ms(0), ms(100), ms(300), ms(600), ms(900)]);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_past_its_deadline_is_cancelled_and_counts_as_failed() {
    let (capture, _guard) = capture();
    let times = RefCell::new(Vec::new());
    let record = attempts_at(Instant::now(), &times);
    let dropped = Arc::new(AtomicUsize::new(0));
    /// Counts how many attempt futures were dropped unfinished.
    struct OnDrop(Arc<AtomicUsize>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let policy = RetryPolicy::new(3).timeout(ms(50)).backoff(Backoff::linear(ms(10)));
    let result = safe_execute("deadline", &policy, |attempt| {
        record();
        let guard = OnDrop(Arc::clone(&dropped));
        async move {
            if attempt == 0 {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            std::mem::forget(guard);
            Ok::<_, Flaky>(attempt)
        }
    })
    .await;
    assert_eq!(result.unwrap(), 1);
    assert_eq!(*times.borrow(), [ms(0), ms(60)], "50 ms deadline, then the 10 ms backoff");
    assert_eq!(dropped.load(Ordering::Relaxed), 1, "the timed-out attempt was dropped");

    let captured = capture.snapshot();
    let timeouts: Vec<_> = captured.events_named("pocketflow.timeout").collect();
    assert_eq!(timeouts.len(), 1);
    assert_eq!(field(&timeouts[0].fields, "name"), Some("deadline"));
    let retries: Vec<_> = captured.events_named("pocketflow.retry").collect();
    assert_eq!(retries.len(), 1);
    assert_eq!(field(&retries[0].fields, "error"), Some("`deadline` timed out after 50ms"));
}

#[tokio::test(start_paused = true)]
async fn when_every_attempt_times_out_the_final_error_is_a_timeout() {
    let policy = RetryPolicy::new(2).timeout(ms(5));
    let error = safe_execute("never", &policy, |_| async {
        std::future::pending::<()>().await;
        Ok::<_, Flaky>(())
    })
    .await
    .unwrap_err();
    assert!(matches!(error, FlowError::Exhausted { attempts: 2, .. }), "{error:?}");
    assert_eq!(error.error_type(), ErrorType::Timeout);
    assert!(matches!(error.downcast_ref::<FlowError>(), Some(FlowError::Timeout { .. })));
}

#[tokio::test(start_paused = true)]
async fn the_final_error_keeps_the_users_error_for_downcasting() {
    let error = safe_execute("flaky", &RetryPolicy::new(3), |attempt| async move { Err::<(), _>(Flaky(attempt)) })
        .await
        .unwrap_err();
    assert_eq!(error.downcast_ref::<Flaky>(), Some(&Flaky(2)), "the last attempt's error");
    assert_eq!(error.error_type(), ErrorType::TaskException);
    assert_eq!(error.node(), "flaky");
    assert_eq!(error.phase(), None);
    assert_eq!(error.to_string(), "`flaky` failed after 3 attempt(s): flaky attempt 2");
}

#[tokio::test(start_paused = true)]
async fn zero_attempts_is_a_configuration_error_and_runs_nothing() {
    let calls = AtomicUsize::new(0);
    let error = safe_execute("nothing", &RetryPolicy::new(0), |_| {
        calls.fetch_add(1, Ordering::Relaxed);
        async { Ok::<_, Flaky>(()) }
    })
    .await
    .unwrap_err();
    assert!(matches!(error, FlowError::NoAttempts { ref node } if node == "nothing"));
    assert_eq!(error.error_type(), ErrorType::Configuration);
    assert_eq!(calls.load(Ordering::Relaxed), 0);
}

#[test]
fn backoff_without_a_timer_still_retries() {
    // No time driver: the backoff sleeps the thread instead of panicking.
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let policy = RetryPolicy::new(2).backoff(Backoff::linear(ms(1)));
    let result = runtime.block_on(safe_execute("no_clock", &policy, |attempt| async move {
        if attempt == 0 { Err(Flaky(0)) } else { Ok(attempt) }
    }));
    assert_eq!(result.unwrap(), 1);
}

#[test]
fn a_per_attempt_timeout_without_a_timer_is_a_typed_error() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let policy = RetryPolicy::new(3).timeout(ms(5));
    let error = runtime.block_on(safe_execute("no_clock", &policy, |_| async { Ok::<_, Flaky>(()) })).unwrap_err();
    assert!(matches!(error, FlowError::NoTimer { .. }), "{error:?}");
}

// ---------------------------------------------------------------- ErrorHandler: classification

#[tokio::test(start_paused = true)]
async fn a_timeout_is_classified_as_a_high_severity_timeout() {
    let handler = ErrorHandler::new();
    let error = with_timeout("late", ms(1), std::future::pending::<()>()).await.unwrap_err();
    let event = handler.handle(&error, Some("late"), None);
    assert_eq!((event.error_type, event.severity), (ErrorType::Timeout, Severity::High));
    let io = std::io::Error::from(std::io::ErrorKind::TimedOut);
    assert_eq!(handler.handle(&io, None, None).error_type, ErrorType::Timeout);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_is_classified_as_a_panic() {
    let handler = ErrorHandler::new();
    let join_error = tokio::spawn(async { panic!("boom") }).await.unwrap_err();
    assert!(join_error.is_panic());
    let event = handler.handle(&join_error, None, None);
    assert_eq!((event.error_type, event.severity), (ErrorType::Panic, Severity::High));
}

#[tokio::test(start_paused = true)]
async fn an_aborted_task_is_classified_as_a_cancellation() {
    let handler = ErrorHandler::new();
    let task = tokio::spawn(tokio::time::sleep(Duration::from_secs(60)));
    task.abort();
    let join_error = task.await.unwrap_err();
    assert!(join_error.is_cancelled());
    let event = handler.handle(&join_error, None, None);
    assert_eq!((event.error_type, event.severity), (ErrorType::Cancellation, Severity::Medium));
}

#[test]
fn running_out_of_memory_is_a_critical_resource_exhaustion() {
    let handler = ErrorHandler::new();
    let oom = std::io::Error::from(std::io::ErrorKind::OutOfMemory);
    let reserve = Vec::<u8>::new().try_reserve(usize::MAX).unwrap_err();
    for event in [handler.handle(&oom, None, None), handler.handle(&reserve, None, None)] {
        assert_eq!((event.error_type, event.severity), (ErrorType::ResourceExhaustion, Severity::Critical));
    }
}

#[tokio::test(start_paused = true)]
async fn a_flow_that_cannot_run_is_a_configuration_error() {
    let handler = ErrorHandler::new();
    let error = safe_execute("none", &RetryPolicy::new(0), |_| async { Ok::<_, Flaky>(()) }).await.unwrap_err();
    let event = handler.handle(&error, None, None);
    assert_eq!((event.error_type, event.severity), (ErrorType::Configuration, Severity::High));
}

#[test]
fn any_other_error_is_a_low_severity_task_exception() {
    let handler = ErrorHandler::new();
    let event = handler.handle(&Flaky(0), None, None);
    assert_eq!((event.error_type, event.severity), (ErrorType::TaskException, Severity::Low));
    assert_eq!(event.message, "flaky attempt 0");
}

#[tokio::test(start_paused = true)]
async fn a_flow_error_is_classified_by_its_own_error_type() {
    // An exhausted retry whose last attempt ran out of memory.
    let handler = ErrorHandler::new();
    let error = safe_execute("alloc", &RetryPolicy::new(1), |_| async {
        Err::<(), _>(std::io::Error::from(std::io::ErrorKind::OutOfMemory))
    })
    .await
    .unwrap_err();
    assert_eq!(handler.handle(&error, None, None).error_type, ErrorType::ResourceExhaustion);
}

// ---------------------------------------------------------------- ErrorHandler: handlers, severity, stats

#[test]
fn every_handler_for_the_type_runs_in_order_and_any_can_recover() {
    let handler = ErrorHandler::new();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    for label in ["observer", "recoverer", "after"] {
        let seen = Arc::clone(&seen);
        handler.register(ErrorType::TaskException, move |event: &AsyncErrorEvent| {
            seen.lock().unwrap().push((label, event.handlers_run, event.recovered, event.node.clone()));
            if label == "recoverer" { Recovery::Recovered } else { Recovery::NotRecovered }
        });
    }
    let timeout_ran = Arc::new(AtomicUsize::new(0));
    {
        let timeout_ran = Arc::clone(&timeout_ran);
        handler.register(ErrorType::Timeout, move |_| {
            timeout_ran.fetch_add(1, Ordering::Relaxed);
            true
        });
    }

    let event = handler.handle(&Flaky(1), Some("fetch"), Some("Crawl"));
    assert!(event.recovered);
    assert_eq!(event.handlers_run, 3);
    assert_eq!(event.flow.as_deref(), Some("Crawl"));
    let node = Some("fetch".to_owned());
    assert_eq!(
        *seen.lock().unwrap(),
        [("observer", 0, false, node.clone()), ("recoverer", 1, false, node.clone()), ("after", 2, true, node)]
    );
    assert_eq!(timeout_ran.load(Ordering::Relaxed), 0, "handlers of other types do not run");
}

#[test]
fn a_failure_without_handlers_is_not_recovered() {
    let event = ErrorHandler::new().handle(&Flaky(0), None, None);
    assert!(!event.recovered);
    assert_eq!(event.handlers_run, 0);
}

#[test]
fn a_panicking_handler_counts_as_not_recovered_and_the_others_still_run() {
    let handler = ErrorHandler::new();
    handler.register(ErrorType::TaskException, |_| -> bool { panic!("handler bug") });
    handler.register(ErrorType::TaskException, |_| ());
    let event = handler.handle(&Flaky(0), None, None);
    assert_eq!((event.handlers_run, event.recovered), (2, false));
    handler.register(ErrorType::TaskException, |_| true);
    assert!(handler.handle(&Flaky(0), None, None).recovered);
}

#[test]
fn set_severity_overrides_the_default_for_that_type_only() {
    let handler = ErrorHandler::new();
    handler.set_severity(ErrorType::TaskException, Severity::Critical);
    assert_eq!(handler.handle(&Flaky(0), None, None).severity, Severity::Critical);
    let oom = std::io::Error::from(std::io::ErrorKind::OutOfMemory);
    assert_eq!(handler.handle(&oom, None, None).severity, Severity::Critical);
    let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
    assert_eq!(handler.handle(&timed_out, None, None).severity, Severity::High);
}

#[test]
fn stats_count_failures_per_type_and_recoveries_across_clones() {
    let handler = ErrorHandler::new();
    handler.register(ErrorType::Timeout, |_| Recovery::Recovered);
    let clone = handler.clone();
    let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
    handler.handle(&timed_out, None, None);
    clone.handle(&timed_out, None, None);
    clone.handle(&Flaky(0), None, None);

    let stats = handler.stats();
    assert_eq!(stats.total, 3);
    assert_eq!(stats.recovered, 2);
    assert_eq!(stats.count(ErrorType::Timeout), 2);
    assert_eq!(stats.count(ErrorType::TaskException), 1);
    assert_eq!(stats.count(ErrorType::Panic), 0);
    assert_eq!(stats.by_severity.get(&Severity::High), Some(&2));
    assert_eq!(stats.by_severity.get(&Severity::Low), Some(&1));
    assert_eq!(clone.stats(), stats);
}

#[test]
fn the_async_error_event_carries_type_severity_recovery_and_location() {
    let (capture, _guard) = capture();
    let handler = ErrorHandler::new();
    handler.register(ErrorType::ResourceExhaustion, |_| true);
    let oom = std::io::Error::from(std::io::ErrorKind::OutOfMemory);
    tracing::info_span!("work").in_scope(|| handler.handle(&oom, Some("load"), Some("Ingest")));
    handler.handle(&Flaky(3), None, None);

    let captured: Captured = capture.snapshot();
    let events: Vec<_> = captured.events_named("pocketflow.async_error").collect();
    assert_eq!(events.len(), 2);
    let (work, _) = captured.spans_named("work").next().unwrap();
    assert_eq!(events[0].span, Some(work));
    assert_eq!(events[0].level, tracing::Level::WARN);
    let fields = &events[0].fields;
    assert_eq!(field(fields, "error_type"), Some("resource_exhaustion"));
    assert_eq!(field(fields, "severity"), Some("critical"));
    assert_eq!(field(fields, "recovered"), Some("true"));
    assert_eq!(field(fields, "handlers"), Some("1"));
    assert_eq!(field(fields, "node"), Some("load"));
    assert_eq!(field(fields, "flow"), Some("Ingest"));
    assert_eq!(field(fields, "error"), Some(oom.to_string().as_str()));

    let fields = &events[1].fields;
    assert_eq!(field(fields, "error_type"), Some("task_exception"));
    assert_eq!(field(fields, "recovered"), Some("false"));
    assert_eq!(field(fields, "handlers"), Some("0"));
    assert_eq!(field(fields, "node"), None, "no node given, no node field");
    assert_eq!(field(fields, "flow"), None);
}

#[tokio::test(start_paused = true)]
async fn the_handlers_timeout_and_retry_helpers_handle_their_final_failure() {
    let (capture, _guard) = capture();
    let handler = ErrorHandler::new();
    let nodes = Arc::new(std::sync::Mutex::new(Vec::new()));
    for error_type in [ErrorType::Timeout, ErrorType::TaskException] {
        let nodes = Arc::clone(&nodes);
        handler.register(error_type, move |event| nodes.lock().unwrap().push(event.node.clone()));
    }

    assert_eq!(handler.with_timeout("fine", ms(10), async { 1 }).await.unwrap(), 1);
    let late = handler.with_timeout("late", ms(10), std::future::pending::<()>()).await;
    assert!(matches!(late, Err(FlowError::Timeout { .. })));

    let calls = AtomicUsize::new(0);
    let failed = handler
        .safe_execute("flaky", &RetryPolicy::new(3), |attempt| {
            calls.fetch_add(1, Ordering::Relaxed);
            async move { Err::<(), _>(Flaky(attempt)) }
        })
        .await;
    assert_eq!(failed.unwrap_err().downcast_ref::<Flaky>(), Some(&Flaky(2)));
    assert_eq!(calls.load(Ordering::Relaxed), 3);

    assert_eq!(*nodes.lock().unwrap(), [Some("late".to_owned()), Some("flaky".to_owned())]);
    let stats = handler.stats();
    assert_eq!((stats.total, stats.count(ErrorType::Timeout), stats.count(ErrorType::TaskException)), (2, 1, 1));
    assert_eq!(capture.snapshot().events_named("pocketflow.async_error").count(), 2, "once per final failure");
}

/// The caught-signal mask of this process (`SigCgt` in
/// `/proc/self/status`): bit `n - 1` is set when signal `n` has a handler.
#[cfg(target_os = "linux")]
fn caught_signals() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("SigCgt:")).unwrap();
    u64::from_str_radix(line.trim_start_matches("SigCgt:").trim(), 16).unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn the_handler_leaves_signal_handling_alone() {
    // Python's AsyncErrorHandler replaces SIGINT and SIGTERM handlers in
    // its constructor; this one installs nothing.
    const SIGINT: u64 = 1 << (2 - 1);
    const SIGTERM: u64 = 1 << (15 - 1);
    let before = caught_signals();
    let handler = ErrorHandler::new();
    handler.register(ErrorType::Cancellation, |_| true);
    handler.handle(&Flaky(0), None, None);
    let after = caught_signals();
    assert_eq!(after & (SIGINT | SIGTERM), 0, "no SIGINT/SIGTERM handler");
    assert_eq!(before & (SIGINT | SIGTERM), after & (SIGINT | SIGTERM));
}

#[test]
fn default_severities_are_pythons_where_python_has_the_type() {
    // Python's AsyncErrorHandler: CancelledError medium, TimeoutError high,
    // generic exceptions low, MemoryError critical, EVENT_LOOP_CLOSED critical.
    let python = [
        (ErrorType::Cancellation, Severity::Medium),
        (ErrorType::Timeout, Severity::High),
        (ErrorType::TaskException, Severity::Low),
        (ErrorType::ResourceExhaustion, Severity::Critical),
        (ErrorType::RuntimeShutdown, Severity::Critical),
    ];
    let handler = ErrorHandler::new();
    for (error_type, severity) in python {
        assert_eq!(error_type.default_severity(), severity, "{error_type:?}");
        assert_eq!(handler.severity(error_type), severity, "{error_type:?}");
    }
    // No Python counterpart: a panic and a miswired flow are serious, not fatal.
    assert_eq!(ErrorType::Panic.default_severity(), Severity::High);
    assert_eq!(ErrorType::Configuration.default_severity(), Severity::High);
}

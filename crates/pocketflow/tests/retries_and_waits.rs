//! Retries, waits and fallbacks: rules PocketFlow's tests do not pin.
//!
//! - `max_retries` is the total number of `exec` attempts; N failed attempts
//!   make N-1 waits, none after the last (exact virtual time on a paused
//!   tokio clock for async nodes and for a sync node inside an `AsyncFlow`;
//!   lower bounds only for a sync node sleeping its thread).
//! - The fallback receives the LAST error, with `ctx.attempt() ==
//!   max_retries - 1`.
//! - Only `exec` is retried: errors in `prep`/`post` propagate at once as
//!   `FlowError::Node { phase: Prep | Post }`.
//! - Batch nodes restart the attempt count for every item.
//! - `max_retries() == 0` is `FlowError::NoAttempts` (deliberate difference:
//!   Python skips `exec` and hands `post` a `None`).
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ValueError;
use pocketflow::{
    Action, AsyncBatchNode, AsyncFlow, AsyncNode, BatchNode, BoxError, Ctx, FlowError, Node, Phase, SharedStore,
};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// What happened, in order: `exec@<attempt>` or `fallback@<attempt>: <error>`.
type Log = Arc<Mutex<Vec<String>>>;

fn record(log: &Log, entry: impl Into<String>) {
    log.lock().unwrap().push(entry.into());
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// The log without its ` t=<ms>` stamps, for sync runs on the real clock.
fn untimed(log: &Log) -> Vec<String> {
    let strip = |entry: &String| match entry.split_once(" t=") {
        Some((head, tail)) => format!("{head}{}", tail.find(':').map_or("", |i| &tail[i..])),
        None => entry.clone(),
    };
    log.lock().unwrap().iter().map(strip).collect()
}

/// Fails every attempt before `succeed_at` (never succeeds if `None`) with
/// `ValueError("attempt <n>")`; logs each attempt and the fallback with its
/// virtual time (tokio clock) in ms.
struct Flaky {
    max_retries: usize,
    wait: Duration,
    succeed_at: Option<usize>,
    log: Log,
    start: tokio::time::Instant,
}

impl Flaky {
    fn new(max_retries: usize, wait: Duration, succeed_at: Option<usize>) -> (Self, Log) {
        let log = Log::default();
        let node = Self { max_retries, wait, succeed_at, log: Arc::clone(&log), start: tokio::time::Instant::now() };
        (node, log)
    }

    fn attempt(&self, ctx: &Ctx<'_>) -> Result<String, BoxError> {
        let at = self.start.elapsed().as_millis();
        record(&self.log, format!("exec@{} t={at}", ctx.attempt()));
        if Some(ctx.attempt()) == self.succeed_at {
            return Ok(format!("ok@{}", ctx.attempt()));
        }
        Err(ValueError::boxed(format!("attempt {}", ctx.attempt())))
    }

    fn fallback(&self, ctx: &Ctx<'_>, error: &BoxError) -> Result<String, BoxError> {
        let at = self.start.elapsed().as_millis();
        let value_error = error.downcast_ref::<ValueError>().expect("the exec error, unwrapped");
        record(&self.log, format!("fallback@{}/{} t={at}: {}", ctx.attempt(), ctx.max_retries(), value_error.0));
        assert!(ctx.is_last_attempt());
        Ok("fallback".into())
    }
}

impl Node for Flaky {
    type Prep = ();
    type Exec = String;
    fn max_retries(&self) -> usize {
        self.max_retries
    }
    fn wait(&self) -> Duration {
        self.wait
    }
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, ctx: &Ctx<'_>, _: &()) -> Result<String, BoxError> {
        self.attempt(ctx)
    }
    fn exec_fallback(&self, ctx: &Ctx<'_>, _: &(), error: BoxError) -> Result<String, BoxError> {
        self.fallback(ctx, &error)
    }
    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), out: String) -> Result<Action, BoxError> {
        shared.set("out", out)?;
        Ok(Action::NONE)
    }
}

/// The same node as an `AsyncNode`.
struct AsyncFlaky(Flaky);

impl AsyncNode for AsyncFlaky {
    type Prep = ();
    type Exec = String;
    fn max_retries(&self) -> usize {
        self.0.max_retries
    }
    fn wait(&self) -> Duration {
        self.0.wait
    }
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, ctx: &Ctx<'_>, _: &()) -> Result<String, BoxError> {
        tokio::task::yield_now().await;
        self.0.attempt(ctx)
    }
    async fn exec_fallback(&self, ctx: &Ctx<'_>, _: &(), error: BoxError) -> Result<String, BoxError> {
        self.0.fallback(ctx, &error)
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), out: String) -> Result<Action, BoxError> {
        shared.set("out", out)?;
        Ok(Action::NONE)
    }
}

// --- N attempts, N-1 waits ---

#[test]
fn sync_node_sleeps_between_attempts() {
    // A sync node run from sync code sleeps its thread: only lower bounds
    // are reliable here; the exact count of waits is pinned below on the
    // paused tokio clock.
    struct Timed {
        times: Mutex<Vec<std::time::Instant>>,
    }
    impl Node for Timed {
        type Prep = ();
        type Exec = ();
        fn max_retries(&self) -> usize {
            3
        }
        fn wait(&self) -> Duration {
            MS(30)
        }
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            self.times.lock().unwrap().push(std::time::Instant::now());
            Err(ValueError::boxed("always"))
        }
        fn exec_fallback(&self, _: &Ctx<'_>, _: &(), _: BoxError) -> Result<(), BoxError> {
            Ok(())
        }
    }

    let node = Timed { times: Mutex::new(Vec::new()) };
    let start = std::time::Instant::now();
    node.run(&SharedStore::new()).expect("fallback recovers");
    let total = start.elapsed();
    let times = node.times.lock().unwrap().clone();
    assert_eq!(times.len(), 3);
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= MS(30), "a wait between attempts");
    }
    assert!(total >= MS(60), "two waits: {total:?}");
}

#[tokio::test(start_paused = true)]
async fn async_node_three_attempts_wait_twice_exactly() {
    let (node, log) = Flaky::new(3, MS(100), None);
    let start = tokio::time::Instant::now();
    let shared = SharedStore::new();
    AsyncFlaky(node).run(&shared).await.expect("fallback recovers");
    assert_eq!(
        entries(&log),
        ["exec@0 t=0", "exec@1 t=100", "exec@2 t=200", "fallback@2/3 t=200: attempt 2"],
        "no wait after the last attempt"
    );
    assert_eq!(start.elapsed(), MS(200));
    assert_eq!(shared.get::<String>("out").unwrap(), "fallback");
}

#[tokio::test(start_paused = true)]
async fn sync_node_in_async_flow_waits_on_the_tokio_clock() {
    // Were the sync node to sleep its thread, the paused clock would not
    // move; exactly 200 ms of virtual time proves the waits are tokio timers.
    let (node, log) = Flaky::new(3, MS(100), None);
    let mut flow = AsyncFlow::new();
    flow.start(node);
    let start = tokio::time::Instant::now();
    let shared = SharedStore::new();
    flow.run(&shared).await.expect("fallback recovers");
    assert_eq!(entries(&log), ["exec@0 t=0", "exec@1 t=100", "exec@2 t=200", "fallback@2/3 t=200: attempt 2"]);
    assert_eq!(start.elapsed(), MS(200));
    assert_eq!(shared.get::<String>("out").unwrap(), "fallback");
}

#[tokio::test(start_paused = true)]
async fn success_on_a_retry_stops_waiting_and_skips_the_fallback() {
    let (node, log) = Flaky::new(5, MS(100), Some(1));
    let start = tokio::time::Instant::now();
    let shared = SharedStore::new();
    AsyncFlaky(node).run(&shared).await.expect("second attempt succeeds");
    assert_eq!(entries(&log), ["exec@0 t=0", "exec@1 t=100"]);
    assert_eq!(start.elapsed(), MS(100));
    assert_eq!(shared.get::<String>("out").unwrap(), "ok@1");
}

#[tokio::test(start_paused = true)]
async fn a_single_attempt_never_waits() {
    let (node, log) = Flaky::new(1, MS(100), None);
    let start = tokio::time::Instant::now();
    AsyncFlaky(node).run(&SharedStore::new()).await.expect("fallback recovers");
    assert_eq!(entries(&log), ["exec@0 t=0", "fallback@0/1 t=0: attempt 0"]);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

// --- The fallback gets the last error and the last attempt ---

#[test]
fn sync_fallback_receives_the_last_error() {
    let (node, log) = Flaky::new(4, Duration::ZERO, None);
    node.run(&SharedStore::new()).expect("fallback recovers");
    assert_eq!(untimed(&log), ["exec@0", "exec@1", "exec@2", "exec@3", "fallback@3/4: attempt 3"]);
}

#[tokio::test(start_paused = true)]
async fn async_fallback_receives_the_last_error() {
    let (node, log) = Flaky::new(4, Duration::ZERO, None);
    AsyncFlaky(node).run(&SharedStore::new()).await.expect("fallback recovers");
    assert_eq!(entries(&log).last().unwrap(), "fallback@3/4 t=0: attempt 3");
}

#[test]
fn default_fallback_returns_the_last_exec_error() {
    struct NoFallback(AtomicUsize);
    impl Node for NoFallback {
        type Prep = ();
        type Exec = ();
        fn max_retries(&self) -> usize {
            3
        }
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Err(ValueError::boxed(format!("attempt {n}")))
        }
    }
    let err = NoFallback(AtomicUsize::new(0)).run(&SharedStore::new()).expect_err("default fallback re-raises");
    assert_eq!(err.downcast_ref::<ValueError>(), Some(&ValueError("attempt 2".into())));
    // The default fallback re-raises exec's error, so the failure is
    // reported in exec, where it happened.
    assert_eq!(err.phase(), Some(Phase::Exec));
    assert!(err.to_string().contains("failed in exec"), "{err}");
}

#[test]
fn a_failing_fallback_fails_the_run_in_the_fallback_phase() {
    struct BadFallback;
    impl Node for BadFallback {
        type Prep = ();
        type Exec = ();
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Err(ValueError::boxed("exec"))
        }
        fn exec_fallback(&self, _: &Ctx<'_>, _: &(), _: BoxError) -> Result<(), BoxError> {
            Err(ValueError::boxed("fallback"))
        }
    }
    let err = BadFallback.run(&SharedStore::new()).expect_err("fallback fails");
    assert!(matches!(&err, FlowError::Node { node, phase: Phase::Fallback, .. } if node == "BadFallback"), "{err:?}");
    assert_eq!(err.downcast_ref::<ValueError>(), Some(&ValueError("fallback".into())));
}

// --- Only exec is retried ---

/// Counts hook calls; fails in the configured phase.
struct FailsIn {
    phase: Phase,
    prep: AtomicUsize,
    exec: AtomicUsize,
    post: AtomicUsize,
}

impl FailsIn {
    fn new(phase: Phase) -> Self {
        Self { phase, prep: AtomicUsize::new(0), exec: AtomicUsize::new(0), post: AtomicUsize::new(0) }
    }
    fn hit(&self, counter: &AtomicUsize, phase: Phase) -> Result<(), BoxError> {
        counter.fetch_add(1, Ordering::SeqCst);
        if phase == self.phase { Err(ValueError::boxed(format!("{phase} failed"))) } else { Ok(()) }
    }
    fn counts(&self) -> [usize; 3] {
        [self.prep.load(Ordering::SeqCst), self.exec.load(Ordering::SeqCst), self.post.load(Ordering::SeqCst)]
    }
}

impl Node for FailsIn {
    type Prep = ();
    type Exec = ();
    fn max_retries(&self) -> usize {
        3
    }
    fn prep(&self, ctx: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        assert_eq!(ctx.attempt(), 0);
        self.hit(&self.prep, Phase::Prep)
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        self.hit(&self.exec, Phase::Exec)
    }
    fn exec_fallback(&self, _: &Ctx<'_>, _: &(), error: BoxError) -> Result<(), BoxError> {
        Err(error)
    }
    fn post(&self, ctx: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        assert_eq!(ctx.attempt(), 0, "post sees no attempt number");
        self.hit(&self.post, Phase::Post).map(|()| Action::NONE)
    }
}

struct AsyncFailsIn(FailsIn);

impl AsyncNode for AsyncFailsIn {
    type Prep = ();
    type Exec = ();
    fn max_retries(&self) -> usize {
        3
    }
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        self.0.hit(&self.0.prep, Phase::Prep)
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        self.0.hit(&self.0.exec, Phase::Exec)
    }
    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        self.0.hit(&self.0.post, Phase::Post).map(|()| Action::NONE)
    }
}

fn assert_failed_in(err: &FlowError, expected: Phase) {
    assert!(matches!(err, FlowError::Node { phase, .. } if *phase == expected), "{err:?}");
    assert_eq!(err.downcast_ref::<ValueError>(), Some(&ValueError(format!("{expected} failed"))));
}

#[test]
fn prep_errors_are_not_retried() {
    let node = FailsIn::new(Phase::Prep);
    let err = node.run(&SharedStore::new()).expect_err("prep fails");
    assert_failed_in(&err, Phase::Prep);
    assert_eq!(err.node(), "FailsIn");
    assert_eq!(node.counts(), [1, 0, 0]);
}

#[test]
fn post_errors_are_not_retried() {
    let node = FailsIn::new(Phase::Post);
    let err = node.run(&SharedStore::new()).expect_err("post fails");
    assert_failed_in(&err, Phase::Post);
    assert_eq!(node.counts(), [1, 1, 1]);
}

#[test]
fn exec_errors_are_retried() {
    let node = FailsIn::new(Phase::Exec);
    let err = node.run(&SharedStore::new()).expect_err("exec fails every time");
    assert_eq!(err.downcast_ref::<ValueError>(), Some(&ValueError("exec failed".into())));
    assert_eq!(node.counts(), [1, 3, 0]);
}

#[tokio::test(start_paused = true)]
async fn async_prep_and_post_errors_are_not_retried() {
    let node = AsyncFailsIn(FailsIn::new(Phase::Prep));
    let err = node.run(&SharedStore::new()).await.expect_err("prep fails");
    assert_failed_in(&err, Phase::Prep);
    assert_eq!(node.0.counts(), [1, 0, 0]);

    let node = AsyncFailsIn(FailsIn::new(Phase::Post));
    let err = node.run(&SharedStore::new()).await.expect_err("post fails");
    assert_failed_in(&err, Phase::Post);
    assert_eq!(node.0.counts(), [1, 1, 1]);
}

#[test]
fn prep_error_inside_a_flow_stops_the_flow() {
    let mut flow = pocketflow::Flow::new();
    let failing = flow.start(FailsIn::new(Phase::Prep));
    let after = flow.add(common::NumberNode(1));
    flow.link(failing >> after);
    let shared = SharedStore::new();
    let err = flow.run(&shared).expect_err("prep fails");
    assert_failed_in(&err, Phase::Prep);
    assert!(!shared.contains_key("current"), "the next node did not run");
}

// --- Batch nodes count attempts per item ---

/// Items: `a` succeeds, `b` fails twice then succeeds, `c` always fails
/// (fallback), `d` succeeds: its first attempt is attempt 0 again.
fn batch_exec(log: &Log, ctx: &Ctx<'_>, item: &str) -> Result<String, BoxError> {
    record(log, format!("{item}@{} #{}", ctx.attempt(), ctx.item_index().unwrap()));
    let fails = match item {
        "b" => ctx.attempt() < 2,
        "c" => true,
        _ => false,
    };
    if fails {
        Err(ValueError::boxed(format!("{item} attempt {}", ctx.attempt())))
    } else {
        Ok(format!("{item}@{}", ctx.attempt()))
    }
}

fn batch_fallback(log: &Log, ctx: &Ctx<'_>, item: &str, error: &BoxError) -> Result<String, BoxError> {
    record(log, format!("fallback {item}@{}: {error}", ctx.attempt()));
    Ok(format!("fallback {item}"))
}

const BATCH_LOG: [&str; 10] = [
    "a@0 #0",
    "b@0 #1",
    "b@1 #1",
    "b@2 #1",
    "c@0 #2",
    "c@1 #2",
    "c@2 #2",
    "fallback c@2: ValueError: c attempt 2",
    "d@0 #3",
    "outputs: a@0, b@2, fallback c, d@0",
];

struct Letters {
    log: Log,
    wait: Duration,
}

impl BatchNode for Letters {
    type Item = String;
    type Output = String;
    fn max_retries(&self) -> usize {
        3
    }
    fn wait(&self) -> Duration {
        self.wait
    }
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<String>, BoxError> {
        Ok(["a", "b", "c", "d"].map(String::from).to_vec())
    }
    fn exec(&self, ctx: &Ctx<'_>, item: &String) -> Result<String, BoxError> {
        batch_exec(&self.log, ctx, item)
    }
    fn exec_fallback(&self, ctx: &Ctx<'_>, item: &String, error: BoxError) -> Result<String, BoxError> {
        batch_fallback(&self.log, ctx, item, &error)
    }
    fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: Vec<String>, outputs: Vec<String>) -> Result<Action, BoxError> {
        record(&self.log, format!("outputs: {}", outputs.join(", ")));
        Ok(Action::NONE)
    }
}

struct AsyncLetters(Letters);

impl AsyncBatchNode for AsyncLetters {
    type Item = String;
    type Output = String;
    fn max_retries(&self) -> usize {
        3
    }
    fn wait(&self) -> Duration {
        self.0.wait
    }
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<String>, BoxError> {
        Ok(["a", "b", "c", "d"].map(String::from).to_vec())
    }
    async fn exec(&self, ctx: &Ctx<'_>, item: &String) -> Result<String, BoxError> {
        batch_exec(&self.0.log, ctx, item)
    }
    async fn exec_fallback(&self, ctx: &Ctx<'_>, item: &String, error: BoxError) -> Result<String, BoxError> {
        batch_fallback(&self.0.log, ctx, item, &error)
    }
    async fn post(
        &self,
        _: &Ctx<'_>,
        _: &SharedStore,
        _: Vec<String>,
        outputs: Vec<String>,
    ) -> Result<Action, BoxError> {
        record(&self.0.log, format!("outputs: {}", outputs.join(", ")));
        Ok(Action::NONE)
    }
}

#[test]
fn batch_node_restarts_attempts_for_every_item() {
    let node = Letters { log: Log::default(), wait: Duration::ZERO };
    node.run(&SharedStore::new()).expect("batch runs");
    assert_eq!(entries(&node.log), BATCH_LOG);
}

#[tokio::test(start_paused = true)]
async fn async_batch_node_restarts_attempts_and_waits_per_item() {
    let node = AsyncLetters(Letters { log: Log::default(), wait: MS(10) });
    let start = tokio::time::Instant::now();
    node.run(&SharedStore::new()).await.expect("batch runs");
    assert_eq!(entries(&node.0.log), BATCH_LOG);
    // `b` waits twice, `c` waits twice (not after its last attempt).
    assert_eq!(start.elapsed(), MS(40));
}

#[tokio::test(start_paused = true)]
async fn sync_batch_node_in_async_flow_waits_per_item_on_the_tokio_clock() {
    let log = Log::default();
    let mut flow = AsyncFlow::new();
    flow.start(Letters { log: Arc::clone(&log), wait: MS(10) });
    let start = tokio::time::Instant::now();
    flow.run(&SharedStore::new()).await.expect("batch runs");
    assert_eq!(entries(&log), BATCH_LOG);
    assert_eq!(start.elapsed(), MS(40));
}

// --- Zero attempts ---

#[test]
fn zero_max_retries_is_an_error_not_a_silent_skip() {
    // Deliberate difference: Python skips exec and gives post `None`; a
    // typed exec result cannot be conjured, so the run fails before prep.
    let (node, log) = Flaky::new(0, Duration::ZERO, None);
    let shared = SharedStore::new();
    let err = node.run(&shared).expect_err("no attempts");
    assert!(matches!(&err, FlowError::NoAttempts { node } if node == "Flaky"), "{err:?}");
    assert_eq!(err.phase(), None);
    assert!(entries(&log).is_empty());
    assert!(!shared.contains_key("out"), "post did not run");
}

#[tokio::test(start_paused = true)]
async fn zero_max_retries_fails_async_and_batch_nodes_and_stops_the_flow() {
    let (node, _) = Flaky::new(0, Duration::ZERO, None);
    let err = AsyncFlaky(node).run(&SharedStore::new()).await.expect_err("no attempts");
    assert!(matches!(err, FlowError::NoAttempts { .. }), "{err:?}");

    struct ZeroBatch;
    impl BatchNode for ZeroBatch {
        type Item = ();
        type Output = ();
        fn max_retries(&self) -> usize {
            0
        }
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<()>, BoxError> {
            Ok(vec![])
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
    }
    // Even with no items (no exec call needed), zero attempts is refused.
    let err = ZeroBatch.run(&SharedStore::new()).expect_err("no attempts");
    assert!(matches!(&err, FlowError::NoAttempts { node } if node == "ZeroBatch"), "{err:?}");

    let mut flow = AsyncFlow::new();
    let zero = flow.start(ZeroBatch);
    let after = flow.add(common::NumberNode(1));
    flow.link(zero >> after);
    let shared = SharedStore::new();
    let err = flow.run(&shared).await.expect_err("no attempts");
    assert!(matches!(err, FlowError::NoAttempts { .. }), "{err:?}");
    assert!(!shared.contains_key("current"));
}

/// A runtime built without `enable_time` cannot make timers; the retry wait
/// then sleeps the thread instead of panicking inside the engine.
#[test]
fn retry_waits_work_on_a_runtime_without_timers() {
    struct FailsOnce(AtomicUsize);
    impl AsyncNode for FailsOnce {
        type Prep = ();
        type Exec = usize;
        fn max_retries(&self) -> usize {
            2
        }
        fn wait(&self) -> Duration {
            Duration::from_millis(5)
        }
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        async fn exec(&self, ctx: &Ctx<'_>, _: &()) -> Result<usize, BoxError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if ctx.attempt() == 0 { Err(ValueError::boxed("first attempt fails")) } else { Ok(ctx.attempt()) }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let node = FailsOnce(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    runtime.block_on(node.run(&SharedStore::new())).unwrap();
    assert_eq!(node.0.load(Ordering::SeqCst), 2);
    assert!(started.elapsed() >= Duration::from_millis(5), "the wait still happened");
}

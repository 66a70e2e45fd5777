//! Parallel batch items (and parallel batch-flow runs) are independent.
//!
//! - Each item counts its own attempts. (Python shares `cur_retry` between
//!   concurrent items, so one item can fall back after its first failure
//!   because another item has already retried: the race of open PR #148.)
//! - The first item to fail for good cancels the others (their futures are
//!   dropped; deliberate difference: Python's `gather` lets them run on) and
//!   the node, and the flow around it, returns that error.
//! - Results keep the items' order, whatever order they finish in.
//! - `max_concurrency` caps the number of items in flight.
//!
//! All timing is virtual (paused tokio clock), so it is exact.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ValueError;
use pocketflow::{
    Action, AsyncFlow, AsyncNode, AsyncParallelBatchFlow, AsyncParallelBatchNode, BoxError, Ctx, Params, SharedStore,
};
use tokio::time::Instant;

const MS: fn(u64) -> Duration = Duration::from_millis;

type Log = Arc<Mutex<Vec<String>>>;

fn record(log: &Log, entry: impl Into<String>) {
    log.lock().unwrap().push(entry.into());
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// Logs `dropped <item>` if the future holding it is dropped before
/// `finish` is called: that is how a cancelled item shows.
struct CancelGuard {
    item: u64,
    log: Log,
    finished: bool,
}

impl CancelGuard {
    fn new(item: u64, log: &Log) -> Self {
        Self { item, log: Arc::clone(log), finished: false }
    }
    fn finish(mut self) {
        self.finished = true;
        record(&self.log, format!("finished {}", self.item));
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.finished {
            record(&self.log, format!("dropped {}", self.item));
        }
    }
}

// --- Attempts per item ---

#[tokio::test(start_paused = true)]
async fn each_item_counts_its_own_attempts() {
    // The race Python has: with max_retries=2, item "a" fails at once and
    // retries (setting the shared cur_retry to 1) while "b" is still in its
    // first attempt; "b" then fails and is taken for its last attempt.
    struct Racy {
        log: Log,
    }
    impl AsyncParallelBatchNode for Racy {
        type Item = String;
        type Output = String;
        fn max_retries(&self) -> usize {
            2
        }
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<String>, BoxError> {
            Ok(vec!["a".into(), "b".into()])
        }
        async fn exec(&self, ctx: &Ctx<'_>, item: &String) -> Result<String, BoxError> {
            record(&self.log, format!("{item}@{}", ctx.attempt()));
            if item == "b" {
                tokio::time::sleep(MS(10)).await;
            }
            if ctx.attempt() == 0 {
                return Err(ValueError::boxed(format!("{item} first attempt")));
            }
            Ok(format!("{item} ok"))
        }
        async fn exec_fallback(&self, ctx: &Ctx<'_>, item: &String, _: BoxError) -> Result<String, BoxError> {
            record(&self.log, format!("fallback {item}@{}", ctx.attempt()));
            Ok(format!("{item} fell back"))
        }
        async fn post(
            &self,
            _: &Ctx<'_>,
            shared: &SharedStore,
            _: Vec<String>,
            out: Vec<String>,
        ) -> Result<Action, BoxError> {
            shared.set("out", out)?;
            Ok(Action::NONE)
        }
    }

    let node = Racy { log: Log::default() };
    let shared = SharedStore::new();
    node.run(&shared).await.unwrap();
    // "a" fails and retries (attempt 1) before "b" has finished attempt 0;
    // "b" still gets its own attempt 1 and no fallback runs.
    assert_eq!(entries(&node.log), ["a@0", "a@1", "b@0", "b@1"]);
    assert_eq!(shared.get::<Vec<String>>("out").unwrap(), ["a ok", "b ok"]);
}

#[tokio::test(start_paused = true)]
async fn many_interleaved_items_each_get_every_attempt() {
    /// Item i sleeps i ms per attempt and fails its first two attempts.
    struct Staggered {
        attempts: Mutex<Vec<Vec<usize>>>,
    }
    impl AsyncParallelBatchNode for Staggered {
        type Item = usize;
        type Output = usize;
        fn max_retries(&self) -> usize {
            3
        }
        fn wait(&self) -> Duration {
            MS(7)
        }
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<usize>, BoxError> {
            Ok((0..10).collect())
        }
        async fn exec(&self, ctx: &Ctx<'_>, item: &usize) -> Result<usize, BoxError> {
            assert_eq!(ctx.item_index(), Some(*item));
            self.attempts.lock().unwrap()[*item].push(ctx.attempt());
            tokio::time::sleep(MS(*item as u64)).await;
            if ctx.attempt() < 2 { Err(ValueError::boxed("not yet")) } else { Ok(item * 10) }
        }
        async fn post(
            &self,
            _: &Ctx<'_>,
            shared: &SharedStore,
            _: Vec<usize>,
            out: Vec<usize>,
        ) -> Result<Action, BoxError> {
            shared.set("out", out)?;
            Ok(Action::NONE)
        }
    }

    let node = Staggered { attempts: Mutex::new(vec![Vec::new(); 10]) };
    let shared = SharedStore::new();
    let start = Instant::now();
    node.run(&shared).await.expect("every item succeeds on its third attempt");
    for (item, attempts) in node.attempts.lock().unwrap().iter().enumerate() {
        assert_eq!(attempts, &[0, 1, 2], "item {item}");
    }
    assert_eq!(shared.get::<Vec<usize>>("out").unwrap(), (0..10).map(|i| i * 10).collect::<Vec<_>>());
    // The slowest item: three 9 ms attempts and two 7 ms waits, overlapped
    // with everyone else's.
    assert_eq!(start.elapsed(), MS(3 * 9 + 2 * 7));
}

#[tokio::test(start_paused = true)]
async fn one_item_falling_back_does_not_affect_the_others() {
    struct OneBad;
    impl AsyncParallelBatchNode for OneBad {
        type Item = u64;
        type Output = String;
        fn max_retries(&self) -> usize {
            2
        }
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
            Ok(vec![0, 1, 2])
        }
        async fn exec(&self, ctx: &Ctx<'_>, item: &u64) -> Result<String, BoxError> {
            tokio::time::sleep(MS(10)).await;
            if *item == 1 {
                return Err(ValueError::boxed(format!("bad {}", ctx.attempt())));
            }
            Ok(format!("{item}@{}", ctx.attempt()))
        }
        async fn exec_fallback(&self, ctx: &Ctx<'_>, item: &u64, e: BoxError) -> Result<String, BoxError> {
            Ok(format!("fallback {item}@{}: {e}", ctx.attempt()))
        }
        async fn post(
            &self,
            _: &Ctx<'_>,
            shared: &SharedStore,
            _: Vec<u64>,
            out: Vec<String>,
        ) -> Result<Action, BoxError> {
            shared.set("out", out)?;
            Ok(Action::NONE)
        }
    }
    let shared = SharedStore::new();
    OneBad.run(&shared).await.unwrap();
    assert_eq!(shared.get::<Vec<String>>("out").unwrap(), ["0@0", "fallback 1@1: ValueError: bad 1", "2@0"]);
}

#[tokio::test(start_paused = true)]
async fn retry_waits_of_parallel_items_overlap() {
    struct FailOnce;
    impl AsyncParallelBatchNode for FailOnce {
        type Item = u64;
        type Output = u64;
        fn max_retries(&self) -> usize {
            2
        }
        fn wait(&self) -> Duration {
            MS(100)
        }
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
            Ok((0..8).collect())
        }
        async fn exec(&self, ctx: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
            if ctx.attempt() == 0 { Err(ValueError::boxed("once")) } else { Ok(*item) }
        }
    }
    let start = Instant::now();
    FailOnce.run(&SharedStore::new()).await.unwrap();
    assert_eq!(start.elapsed(), MS(100), "eight 100 ms waits, all at once");
}

// --- The first failure cancels the rest ---

/// Item `fail` fails after 10 ms; the others take 100 ms.
struct FailFast {
    fail: u64,
    log: Log,
}

impl AsyncParallelBatchNode for FailFast {
    type Item = u64;
    type Output = u64;
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok((0..5).collect())
    }
    async fn exec(&self, _: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
        let guard = CancelGuard::new(*item, &self.log);
        if *item == self.fail {
            tokio::time::sleep(MS(10)).await;
            guard.finish();
            return Err(ValueError::boxed(format!("item {item}")));
        }
        tokio::time::sleep(MS(100)).await;
        guard.finish();
        Ok(*item)
    }
    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: Vec<u64>, _: Vec<u64>) -> Result<Action, BoxError> {
        record(&self.log, "post");
        Ok(Action::NONE)
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_failure_cancels_the_other_items() {
    let node = FailFast { fail: 2, log: Log::default() };
    let start = Instant::now();
    let err = node.run(&SharedStore::new()).await.expect_err("item 2 fails");
    assert_eq!(start.elapsed(), MS(10), "the node fails as soon as item 2 does");
    assert_eq!(err.downcast_ref::<ValueError>(), Some(&ValueError("item 2".into())));

    // Give any survivor ample time to finish: none does.
    tokio::time::sleep(MS(1_000)).await;
    let mut log = entries(&node.log);
    log.sort();
    assert_eq!(log, ["dropped 0", "dropped 1", "dropped 3", "dropped 4", "finished 2"]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_parallel_node_fails_its_flow() {
    let log = Log::default();
    let mut flow = AsyncFlow::new();
    let batch = flow.start(FailFast { fail: 4, log: Arc::clone(&log) });
    let after = flow.add(common::NumberNode(1));
    flow.link(batch >> after);

    let shared = SharedStore::new();
    let start = Instant::now();
    let err = flow.run(&shared).await.expect_err("item 4 fails");
    assert_eq!(start.elapsed(), MS(10));
    assert_eq!(err.node(), "FailFast");
    assert_eq!(err.downcast_ref::<ValueError>(), Some(&ValueError("item 4".into())));
    tokio::time::sleep(MS(1_000)).await;
    assert!(!entries(&log).contains(&"post".to_owned()), "post did not run");
    assert_eq!(entries(&log).iter().filter(|e| e.starts_with("dropped")).count(), 4);
    assert!(!shared.contains_key("current"), "the next node did not run");
}

#[tokio::test(start_paused = true)]
async fn a_failed_parallel_batch_flow_run_cancels_the_other_runs() {
    /// Run `id` 1 fails at 10 ms; the others finish at 100 ms.
    struct Run {
        log: Log,
    }
    impl AsyncNode for Run {
        type Prep = u64;
        type Exec = ();
        async fn prep(&self, ctx: &Ctx<'_>, _: &SharedStore) -> Result<u64, BoxError> {
            Ok(ctx.params().get_as("id")?)
        }
        async fn exec(&self, _: &Ctx<'_>, id: &u64) -> Result<(), BoxError> {
            let guard = CancelGuard::new(*id, &self.log);
            tokio::time::sleep(MS(if *id == 1 { 10 } else { 100 })).await;
            guard.finish();
            if *id == 1 { Err(ValueError::boxed("run 1")) } else { Ok(()) }
        }
    }
    struct Hooks(Log);
    impl pocketflow::AsyncBatchFlowHooks for Hooks {
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<Params>, BoxError> {
            Ok((0..4u64).map(|id| Params::new().with("id", id)).collect())
        }
        async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: Vec<Params>) -> Result<Action, BoxError> {
            record(&self.0, "batch post");
            Ok(Action::NONE)
        }
    }

    let log = Log::default();
    let mut graph = AsyncFlow::new();
    graph.start(Run { log: Arc::clone(&log) });
    let flow = AsyncParallelBatchFlow::new(graph, Hooks(Arc::clone(&log)));
    let start = Instant::now();
    let err = flow.run(&SharedStore::new()).await.expect_err("run 1 fails");
    assert_eq!(start.elapsed(), MS(10));
    assert_eq!(err.downcast_ref::<ValueError>(), Some(&ValueError("run 1".into())));
    tokio::time::sleep(MS(1_000)).await;
    let mut log = entries(&log);
    log.sort();
    assert_eq!(log, ["dropped 0", "dropped 2", "dropped 3", "finished 1"], "no batch post, no survivor");
}

// --- Order and concurrency ---

#[tokio::test(start_paused = true)]
async fn results_keep_the_items_order() {
    /// Item i takes (6 - i) * 10 ms, so they finish in reverse order.
    struct Reverse {
        log: Log,
    }
    impl AsyncParallelBatchNode for Reverse {
        type Item = u64;
        type Output = u64;
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
            Ok((0..6).collect())
        }
        async fn exec(&self, _: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
            tokio::time::sleep(MS((6 - item) * 10)).await;
            record(&self.log, item.to_string());
            Ok(item * 100)
        }
        async fn post(
            &self,
            _: &Ctx<'_>,
            shared: &SharedStore,
            items: Vec<u64>,
            out: Vec<u64>,
        ) -> Result<Action, BoxError> {
            shared.set("items", items)?;
            shared.set("out", out)?;
            Ok(Action::NONE)
        }
    }
    let node = Reverse { log: Log::default() };
    let shared = SharedStore::new();
    node.run(&shared).await.unwrap();
    assert_eq!(entries(&node.log), ["5", "4", "3", "2", "1", "0"]);
    assert_eq!(shared.get::<Vec<u64>>("items").unwrap(), [0, 1, 2, 3, 4, 5]);
    assert_eq!(shared.get::<Vec<u64>>("out").unwrap(), [0, 100, 200, 300, 400, 500]);
}

/// Ten 100 ms items; tracks how many are in flight at once.
struct Limited {
    limit: Option<usize>,
    in_flight: AtomicUsize,
    max_seen: AtomicUsize,
}

impl Limited {
    fn new(limit: Option<usize>) -> Self {
        Self { limit, in_flight: AtomicUsize::new(0), max_seen: AtomicUsize::new(0) }
    }
}

impl AsyncParallelBatchNode for Limited {
    type Item = u64;
    type Output = u64;
    fn max_concurrency(&self) -> Option<usize> {
        self.limit
    }
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok((0..10).collect())
    }
    async fn exec(&self, _: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_seen.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(MS(100)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(item * 2)
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Vec<u64>, out: Vec<u64>) -> Result<Action, BoxError> {
        shared.set("out", out)?;
        Ok(Action::NONE)
    }
}

async fn run_limited(limit: Option<usize>) -> (usize, Duration) {
    let node = Limited::new(limit);
    let shared = SharedStore::new();
    let start = Instant::now();
    node.run(&shared).await.unwrap();
    assert_eq!(shared.get::<Vec<u64>>("out").unwrap(), (0..10).map(|i| i * 2).collect::<Vec<_>>());
    (node.max_seen.load(Ordering::SeqCst), start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn max_concurrency_caps_items_in_flight() {
    // 10 items, 3 at a time: 4 rounds of 100 ms.
    assert_eq!(run_limited(Some(3)).await, (3, MS(400)));
}

#[tokio::test(start_paused = true)]
async fn max_concurrency_of_one_runs_items_one_by_one() {
    assert_eq!(run_limited(Some(1)).await, (1, MS(1_000)));
}

#[tokio::test(start_paused = true)]
async fn no_max_concurrency_runs_every_item_at_once() {
    assert_eq!(run_limited(None).await, (10, MS(100)));
}

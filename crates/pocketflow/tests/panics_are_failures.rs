//! A panicking hook is a failure of the run, not of the process.
//!
//! A panic in `prep`, `exec`, `exec_fallback` or `post` (of a sync or async
//! node, a batch item, a parallel batch item, or a flow's own hooks) is
//! caught and returned as `FlowError::Panicked { node, phase, message }`.
//! The run stops there, as for an error, but a panic is a bug rather than a
//! failed attempt: it is neither retried nor handed to the fallback.
//!
//! (The default panic hook still prints each caught panic to stderr.)
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pocketflow::{
    Action, AsyncFlow, AsyncNode, AsyncParallelBatchFlow, AsyncParallelBatchNode, BatchFlow, BatchNode, BoxError, Ctx,
    Flow, FlowError, FlowHooks, Node, Params, Phase, SharedStore,
};

/// Panics in `phase` with `"boom in <phase>"`; counts exec and fallback calls.
struct Panicky {
    phase: Phase,
    exec_calls: AtomicUsize,
    fallback_calls: AtomicUsize,
}

impl Panicky {
    fn new(phase: Phase) -> Self {
        Self { phase, exec_calls: AtomicUsize::new(0), fallback_calls: AtomicUsize::new(0) }
    }
    fn maybe_panic(&self, phase: Phase) {
        if phase == self.phase {
            panic!("boom in {phase}");
        }
    }
    fn exec_hook(&self) -> Result<(), BoxError> {
        self.exec_calls.fetch_add(1, Ordering::SeqCst);
        self.maybe_panic(Phase::Exec);
        if self.phase == Phase::Fallback {
            return Err("fail so the fallback runs".into());
        }
        Ok(())
    }
    fn fallback_hook(&self, error: BoxError) -> Result<(), BoxError> {
        self.fallback_calls.fetch_add(1, Ordering::SeqCst);
        self.maybe_panic(Phase::Fallback);
        Err(error)
    }
}

impl Node for Panicky {
    type Prep = ();
    type Exec = ();
    fn max_retries(&self) -> usize {
        3
    }
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        self.maybe_panic(Phase::Prep);
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        self.exec_hook()
    }
    fn exec_fallback(&self, _: &Ctx<'_>, _: &(), error: BoxError) -> Result<(), BoxError> {
        self.fallback_hook(error)
    }
    fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        self.maybe_panic(Phase::Post);
        Ok(Action::NONE)
    }
}

struct AsyncPanicky(Panicky);

impl AsyncNode for AsyncPanicky {
    type Prep = ();
    type Exec = ();
    fn max_retries(&self) -> usize {
        3
    }
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        tokio::task::yield_now().await;
        self.0.maybe_panic(Phase::Prep);
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        tokio::task::yield_now().await;
        self.0.exec_hook()
    }
    async fn exec_fallback(&self, _: &Ctx<'_>, _: &(), error: BoxError) -> Result<(), BoxError> {
        tokio::task::yield_now().await;
        self.0.fallback_hook(error)
    }
    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        tokio::task::yield_now().await;
        self.0.maybe_panic(Phase::Post);
        Ok(Action::NONE)
    }
}

fn assert_panicked(err: &FlowError, node_name: &str, expected_phase: Phase, expected_message: &str) {
    match err {
        FlowError::Panicked { node, phase, message } => {
            assert_eq!(node, node_name);
            assert_eq!(*phase, expected_phase);
            assert_eq!(message, expected_message);
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(err.phase(), Some(expected_phase));
    assert_eq!(err.to_string(), format!("node `{node_name}` panicked in {expected_phase}: {expected_message}"));
}

const PHASES: [Phase; 4] = [Phase::Prep, Phase::Exec, Phase::Fallback, Phase::Post];

#[test]
fn a_panic_in_any_sync_phase_is_a_panicked_error() {
    for phase in PHASES {
        let node = Panicky::new(phase);
        let err = node.run(&SharedStore::new()).expect_err("the hook panics");
        assert_panicked(&err, "Panicky", phase, &format!("boom in {phase}"));
    }
}

#[tokio::test]
async fn a_panic_in_any_async_phase_is_a_panicked_error() {
    for phase in PHASES {
        let node = AsyncPanicky(Panicky::new(phase));
        let err = node.run(&SharedStore::new()).await.expect_err("the hook panics");
        assert_panicked(&err, "AsyncPanicky", phase, &format!("boom in {phase}"));
    }
}

#[test]
fn a_panicking_exec_is_neither_retried_nor_handed_to_the_fallback() {
    let node = Panicky::new(Phase::Exec);
    node.run(&SharedStore::new()).expect_err("exec panics");
    assert_eq!(node.exec_calls.load(Ordering::SeqCst), 1, "max_retries is 3, yet one attempt");
    assert_eq!(node.fallback_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_panicking_async_exec_is_neither_retried_nor_handed_to_the_fallback() {
    let node = AsyncPanicky(Panicky::new(Phase::Exec));
    node.run(&SharedStore::new()).await.expect_err("exec panics");
    assert_eq!(node.0.exec_calls.load(Ordering::SeqCst), 1);
    assert_eq!(node.0.fallback_calls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_panic_stops_the_flow_and_names_the_node() {
    let mut flow = Flow::new();
    let first = flow.start(common::NumberNode(1));
    let bad = flow.add_named("bad step", Panicky::new(Phase::Post));
    let after = flow.add(common::AddNode(100));
    flow.link(first >> bad >> after);
    let shared = SharedStore::new();
    let err = flow.run(&shared).expect_err("post panics");
    assert_panicked(&err, "bad step", Phase::Post, "boom in post");
    assert_eq!(common::current(&shared), 1, "the node after the panic did not run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_an_async_flow_on_a_multi_thread_runtime() {
    let mut inner = AsyncFlow::new();
    inner.start(AsyncPanicky(Panicky::new(Phase::Prep)));
    let mut outer = AsyncFlow::new();
    let first = outer.start(common::NumberNode(1));
    let inner = outer.add(inner);
    let after = outer.add(common::AddNode(100));
    outer.link(first >> inner >> after);
    let shared = SharedStore::new();
    let err = outer.run(&shared).await.expect_err("a nested node panics");
    assert_panicked(&err, "AsyncPanicky", Phase::Prep, "boom in prep");
    assert_eq!(common::current(&shared), 1);
    // The runtime and the store are fine afterwards.
    tokio::time::sleep(Duration::from_millis(1)).await;
    shared.set("still", "usable").unwrap();
}

#[test]
fn panic_payloads_become_the_message() {
    struct Formatted;
    impl Node for Formatted {
        type Prep = ();
        type Exec = ();
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            let n = 42;
            panic!("formatted {n}");
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
    }
    struct NotAString;
    impl Node for NotAString {
        type Prep = ();
        type Exec = ();
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            std::panic::panic_any(42_u8)
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
    }
    let err = Formatted.run(&SharedStore::new()).unwrap_err();
    assert_panicked(&err, "Formatted", Phase::Prep, "formatted 42");
    let err = NotAString.run(&SharedStore::new()).unwrap_err();
    assert_panicked(&err, "NotAString", Phase::Prep, "non-string panic payload");
}

#[test]
fn a_panic_inside_a_store_update_leaves_the_store_usable() {
    struct PanicsMidUpdate;
    impl Node for PanicsMidUpdate {
        type Prep = ();
        type Exec = ();
        fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
            shared.update("n", |_| panic!("while holding the store's lock"));
            Ok(())
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
    }
    let shared = SharedStore::from_iter([("n", 1)]);
    let err = PanicsMidUpdate.run(&shared).unwrap_err();
    assert_panicked(&err, "PanicsMidUpdate", Phase::Prep, "while holding the store's lock");
    assert_eq!(shared.get::<i64>("n").unwrap(), 1);
    shared.set("n", 2).unwrap();
    assert_eq!(shared.get::<i64>("n").unwrap(), 2);
}

// --- Batch items ---

#[test]
fn a_panicking_batch_item_fails_the_batch_node() {
    struct Items(Mutex<Vec<u64>>);
    impl BatchNode for Items {
        type Item = u64;
        type Output = u64;
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
            Ok(vec![0, 1, 2])
        }
        fn exec(&self, _: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
            self.0.lock().unwrap().push(*item);
            assert_ne!(*item, 1, "item one is bad");
            Ok(*item)
        }
    }
    let node = Items(Mutex::new(Vec::new()));
    let err = node.run(&SharedStore::new()).unwrap_err();
    let FlowError::Panicked { phase: Phase::Exec, message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("item one is bad"), "{message}");
    assert_eq!(*node.0.lock().unwrap(), [0, 1], "item 2 never ran");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_parallel_item_fails_the_node_and_cancels_the_others() {
    struct Items {
        finished: Arc<Mutex<Vec<u64>>>,
    }
    impl AsyncParallelBatchNode for Items {
        type Item = u64;
        type Output = u64;
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
            Ok((0..4).collect())
        }
        async fn exec(&self, _: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
            if *item == 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                panic!("parallel item {item} panicked");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.finished.lock().unwrap().push(*item);
            Ok(*item)
        }
    }
    let finished = Arc::new(Mutex::new(Vec::new()));
    let node = Items { finished: Arc::clone(&finished) };
    let start = tokio::time::Instant::now();
    let err = node.run(&SharedStore::new()).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(5));
    assert_panicked(&err, "Items", Phase::Exec, "parallel item 3 panicked");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(finished.lock().unwrap().is_empty(), "the other items were cancelled");
}

// --- Flow-level hooks ---

#[test]
fn a_panic_in_flow_hooks_names_the_flow() {
    struct PanickyHooks(Phase);
    impl FlowHooks for PanickyHooks {
        type Prep = ();
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            assert_ne!(self.0, Phase::Prep, "flow prep");
            Ok(())
        }
        fn post(&self, _: &Ctx<'_>, _: &SharedStore, (): (), last: Action) -> Result<Action, BoxError> {
            assert_ne!(self.0, Phase::Post, "flow post");
            Ok(last)
        }
    }
    for phase in [Phase::Prep, Phase::Post] {
        let mut flow = Flow::named("Hooked").with_hooks(PanickyHooks(phase));
        flow.start(common::NumberNode(7));
        let shared = SharedStore::new();
        let err = flow.run(&shared).unwrap_err();
        let FlowError::Panicked { node, phase: got, .. } = &err else { panic!("{err:?}") };
        assert_eq!((node.as_str(), *got), ("Hooked", phase));
        assert_eq!(shared.contains_key("current"), phase == Phase::Post, "nodes run only after prep");
    }
}

#[test]
fn a_panic_in_batch_flow_prep_names_the_batch_flow() {
    let mut graph = Flow::named("Batches");
    graph.start(common::NumberNode(1));
    let batch = BatchFlow::new(graph, |_: &Ctx<'_>, _: &SharedStore| -> Result<Vec<Params>, BoxError> {
        panic!("no batches today")
    });
    let err = batch.run(&SharedStore::new()).unwrap_err();
    assert_panicked(&err, "Batches", Phase::Prep, "no batches today");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_parallel_batch_flow_run_fails_the_batch() {
    let mut graph = AsyncFlow::named("Runs");
    graph.start(AsyncPanicky(Panicky::new(Phase::Post)));
    let batch = AsyncParallelBatchFlow::new(graph, |_: &Ctx<'_>, _: &SharedStore| -> Result<Vec<Params>, BoxError> {
        Ok(vec![Params::new().with("id", 0), Params::new().with("id", 1)])
    });
    let err = batch.run(&SharedStore::new()).await.unwrap_err();
    assert_panicked(&err, "AsyncPanicky", Phase::Post, "boom in post");
}

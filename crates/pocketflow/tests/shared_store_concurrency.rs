//! The `SharedStore` under concurrent writers: `update` and `with_map_mut`
//! are atomic read-modify-writes, so no increment is lost, whether the
//! writers are concurrent runs of a parallel batch flow on one task, flows
//! on several worker threads of a multi-thread runtime, or sync flows on
//! several OS threads.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use pocketflow::{
    Action, AsyncBatchFlowHooks, AsyncFlow, AsyncNode, AsyncParallelBatchFlow, BatchFlow, BoxError, Ctx, Flow, Node,
    Params, SharedStore,
};
use serde_json::json;

fn increment(shared: &SharedStore, key: &str) {
    shared.update(key, |v| *v = json!(v.as_i64().unwrap_or(0) + 1));
}

/// Increments `counter` in `prep` and in `post`, yielding in between so
/// concurrent runs interleave; moves one unit from `a` to `b` atomically and
/// checks that `a + b` never looks inconsistent.
struct Increment;

impl AsyncNode for Increment {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        increment(shared, "counter");
        tokio::task::yield_now().await;
        let id: u64 = ctx.params().get_as("id")?;
        common::list_push(shared, "ids", id);
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        tokio::task::yield_now().await;
        Ok(())
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        shared.with_map_mut(|map| {
            let a = map["a"].as_i64().unwrap();
            let b = map["b"].as_i64().unwrap();
            map.insert("a".into(), json!(a - 1));
            map.insert("b".into(), json!(b + 1));
        });
        let total = shared.with_map(|map| map["a"].as_i64().unwrap() + map["b"].as_i64().unwrap());
        assert_eq!(total, 1_000_000, "a transfer was seen half done");
        tokio::task::yield_now().await;
        increment(shared, "counter");
        Ok(Action::NONE)
    }
}

fn parallel_flow(runs: u64, first_id: u64) -> AsyncParallelBatchFlow<SharedStore, impl AsyncBatchFlowHooks + use<>> {
    let mut graph = AsyncFlow::new();
    graph.start(Increment);
    AsyncParallelBatchFlow::new(graph, move |_: &Ctx<'_>, _: &SharedStore| -> Result<Vec<Params>, BoxError> {
        Ok((first_id..first_id + runs).map(|id| Params::new().with("id", id)).collect())
    })
}

fn store() -> SharedStore {
    SharedStore::from_iter([("a", 1_000_000), ("b", 0)])
}

fn check(shared: &SharedStore, runs: u64) {
    assert_eq!(shared.get::<u64>("counter").unwrap(), 2 * runs, "no increment lost");
    let mut ids: Vec<u64> = shared.get("ids").unwrap();
    ids.sort_unstable();
    assert_eq!(ids, (0..runs).collect::<Vec<_>>(), "no push lost or doubled");
    assert_eq!(shared.get::<u64>("b").unwrap(), runs);
    assert_eq!(shared.get::<u64>("a").unwrap(), 1_000_000 - runs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_parallel_batch_runs_lose_no_update() {
    let shared = store();
    parallel_flow(2_000, 0).run(&shared).await.unwrap();
    check(&shared, 2_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_flows_on_several_worker_threads_lose_no_update() {
    let shared = Arc::new(store());
    let mut tasks = Vec::new();
    for task in 0..8 {
        let shared = Arc::clone(&shared);
        let flow = parallel_flow(250, task * 250);
        tasks.push(tokio::spawn(async move { flow.run(&shared).await }));
    }
    for task in tasks {
        task.await.expect("the task did not panic").expect("the flow ran");
    }
    check(&shared, 2_000);
}

#[test]
fn sync_batch_flows_on_several_os_threads_lose_no_update() {
    struct SyncIncrement;
    impl Node for SyncIncrement {
        type Prep = ();
        type Exec = ();
        fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
            increment(shared, "counter");
            Ok(())
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            std::thread::yield_now();
            Ok(())
        }
        fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
            increment(shared, "counter");
            Ok(Action::NONE)
        }
    }

    let mut graph = Flow::new();
    graph.start(SyncIncrement);
    let batch = BatchFlow::new(graph, |_: &Ctx<'_>, _: &SharedStore| -> Result<Vec<Params>, BoxError> {
        Ok(vec![Params::new(); 500])
    });
    let shared = SharedStore::new();
    // One flow, one store, eight threads at once: both are `Sync`.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| batch.run(&shared).unwrap());
        }
    });
    assert_eq!(shared.get::<u64>("counter").unwrap(), 8 * 500 * 2);
}

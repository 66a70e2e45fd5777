//! Sync and async pieces mix inside an `AsyncFlow` (Python's
//! `_orch_async` awaits async nodes and calls sync ones directly).
//!
//! - Sync nodes, sync batch nodes, sync sub-flows and sync batch flows run
//!   inside an `AsyncFlow`, and the parent routes on their results.
//! - `AsyncFlow`s nest in `AsyncFlow`s; the parent routes on the nested
//!   flow's result, which its `post` hook may replace.
//! - The other way round is a compile error, not a runtime one (deliberate
//!   difference: Python raises `RuntimeError("Use run_async.")`): a sync
//!   `Flow` only accepts `Node`, `BatchNode`, `Flow` and `BatchFlow`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{AddNode, MultiplyNode, NumberNode, current, value};
use pocketflow::{
    Action, AsyncBatchFlow, AsyncBatchNode, AsyncFlow, AsyncFlowHooks, AsyncNode, AsyncParallelBatchFlow,
    AsyncParallelBatchNode, BatchFlow, BatchNode, BoxError, Ctx, Flow, FlowHooks, Node, Params, SharedStore,
};
use serde_json::json;

fn bump(shared: &SharedStore, f: impl FnOnce(i64) -> i64) {
    shared.update("current", |v| *v = json!(f(v.as_i64().unwrap_or(0))));
}

/// Multiplies `current` after an await.
struct AsyncMultiply(i64);

impl AsyncNode for AsyncMultiply {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        bump(shared, |c| c * self.0);
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Returns `"positive"` or `"negative"` after an await.
struct AsyncCheck;

impl AsyncNode for AsyncCheck {
    type Prep = i64;
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<i64, BoxError> {
        Ok(shared.get("current")?)
    }
    async fn exec(&self, _: &Ctx<'_>, _: &i64) -> Result<(), BoxError> {
        tokio::task::yield_now().await;
        Ok(())
    }
    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, n: i64, (): ()) -> Result<Action, BoxError> {
        Ok(if n >= 0 { "positive".into() } else { "negative".into() })
    }
}

/// Returns a fixed action from a sync `post`.
struct Signal(&'static str);

impl Node for Signal {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
    fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        Ok(self.0.into())
    }
}

#[tokio::test(start_paused = true)]
async fn sync_nodes_inside_an_async_flow() {
    let mut flow = AsyncFlow::new();
    let n = flow.start(NumberNode(5)); // sync
    let double = flow.add(AsyncMultiply(2)); // async
    let minus = flow.add(AddNode(-20)); // sync
    let check = flow.add(AsyncCheck); // async, branches
    let pos = flow.add(Signal("was positive")); // sync
    let neg = flow.add(Signal("was negative")); // sync
    flow.link(n >> double >> minus >> check);
    flow.link(check.on("positive") >> pos);
    flow.link(check.on("negative") >> neg);

    let shared = SharedStore::new();
    assert_eq!(flow.run(&shared).await.unwrap(), "was negative");
    assert_eq!(current(&shared), -10);
}

#[tokio::test(start_paused = true)]
async fn a_sync_sub_flow_inside_an_async_flow() {
    // Sync flow with its own hooks: post gets the last action and replaces it.
    struct Rename;
    impl FlowHooks for Rename {
        type Prep = &'static str;
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<&'static str, BoxError> {
            Ok("flowprep")
        }
        fn post(
            &self,
            _: &Ctx<'_>,
            shared: &SharedStore,
            prep: &'static str,
            last: Action,
        ) -> Result<Action, BoxError> {
            shared.set("sync_post_saw", (prep, last.to_string()))?;
            Ok("sync_done".into())
        }
    }
    let mut sync_flow = Flow::named("SyncPart").with_hooks(Rename);
    let n = sync_flow.start(NumberNode(5));
    let add = sync_flow.add(AddNode(3));
    let act = sync_flow.add(Signal("act1"));
    sync_flow.link(n >> add >> act);

    let mut flow = AsyncFlow::new();
    let sync_part = flow.start(sync_flow);
    let mul = flow.add(AsyncMultiply(2));
    let wrong = flow.add(AddNode(1_000));
    flow.link(sync_part.on("sync_done") >> mul);
    flow.link(sync_part.on("act1") >> wrong);

    let shared = SharedStore::new();
    assert!(flow.run(&shared).await.unwrap().is_none());
    assert_eq!(current(&shared), 16);
    // Python verified: post received ('flowprep', 'act1').
    assert_eq!(value(&shared, "sync_post_saw"), json!(["flowprep", "act1"]));
}

#[tokio::test(start_paused = true)]
async fn async_flows_nest_three_levels_and_route_on_results() {
    struct MiddlePost;
    impl AsyncFlowHooks for MiddlePost {
        type Prep = ();
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        async fn post(&self, _: &Ctx<'_>, _: &SharedStore, (): (), last: Action) -> Result<Action, BoxError> {
            tokio::task::yield_now().await;
            Ok(format!("middle saw {last}").into())
        }
    }

    let mut innermost = AsyncFlow::named("Innermost");
    let n = innermost.start(NumberNode(-3));
    let check = innermost.add(AsyncCheck);
    innermost.link(n >> check);

    let mut middle = AsyncFlow::named("Middle").with_hooks(MiddlePost);
    let inner = middle.start(innermost);
    let abs = middle.add(MultiplyNode(-1));
    middle.link(inner.on("negative") >> abs);

    let mut outer = AsyncFlow::named("Outer");
    let middle = outer.start(middle);
    let done = outer.add(AsyncMultiply(10));
    outer.link(middle.on("middle saw None") >> done);

    let shared = SharedStore::new();
    let report = outer.run_report(&shared).await.unwrap();
    assert_eq!(current(&shared), 30);
    assert!(report.action.is_none());
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[tokio::test(start_paused = true)]
async fn a_sync_batch_flow_inside_an_async_flow() {
    struct Double;
    impl Node for Double {
        type Prep = ();
        type Exec = ();
        fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
            let key: String = ctx.params().get_as("key")?;
            let n: i64 = shared.get(&key)?;
            common::map_insert(shared, "doubled", &key, n * 2);
            Ok(())
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
        fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
            Ok("discarded".into())
        }
    }
    struct Sum;
    impl AsyncNode for Sum {
        type Prep = i64;
        type Exec = ();
        async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<i64, BoxError> {
            let doubled = value(shared, "doubled");
            Ok(doubled.as_object().unwrap().values().filter_map(serde_json::Value::as_i64).sum())
        }
        async fn exec(&self, _: &Ctx<'_>, _: &i64) -> Result<(), BoxError> {
            Ok(())
        }
        async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, sum: i64, (): ()) -> Result<Action, BoxError> {
            shared.set("sum", sum)?;
            Ok(Action::NONE)
        }
    }

    let mut graph = Flow::new();
    graph.start(Double);
    let batch = BatchFlow::new(graph, |_: &Ctx<'_>, _: &SharedStore| -> Result<Vec<Params>, BoxError> {
        Ok(["a", "b", "c"].iter().map(|k| Params::new().with("key", *k)).collect())
    });

    let mut flow = AsyncFlow::new();
    let batch = flow.start(batch);
    let sum = flow.add(Sum);
    // The batch flow's result is its post's (default Action::NONE); the
    // runs' own "discarded" actions are dropped, so `>>` is followed.
    flow.link(batch >> sum);

    let shared = SharedStore::from_iter([("a", 1), ("b", 2), ("c", 3)]);
    flow.run(&shared).await.unwrap();
    assert_eq!(value(&shared, "doubled"), json!({"a": 2, "b": 4, "c": 6}));
    assert_eq!(shared.get::<i64>("sum").unwrap(), 12);
}

#[tokio::test(start_paused = true)]
async fn every_batch_node_kind_in_one_async_flow() {
    struct SyncSquares;
    impl BatchNode for SyncSquares {
        type Item = i64;
        type Output = i64;
        fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<i64>, BoxError> {
            Ok(shared.get("numbers")?)
        }
        fn exec(&self, _: &Ctx<'_>, n: &i64) -> Result<i64, BoxError> {
            Ok(n * n)
        }
        fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Vec<i64>, out: Vec<i64>) -> Result<Action, BoxError> {
            shared.set("numbers", out)?;
            Ok(Action::NONE)
        }
    }
    struct AsyncPlusOne;
    impl AsyncBatchNode for AsyncPlusOne {
        type Item = i64;
        type Output = i64;
        async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<i64>, BoxError> {
            Ok(shared.get("numbers")?)
        }
        async fn exec(&self, _: &Ctx<'_>, n: &i64) -> Result<i64, BoxError> {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(n + 1)
        }
        async fn post(
            &self,
            _: &Ctx<'_>,
            shared: &SharedStore,
            _: Vec<i64>,
            out: Vec<i64>,
        ) -> Result<Action, BoxError> {
            shared.set("numbers", out)?;
            Ok(Action::NONE)
        }
    }
    struct ParallelNegate;
    impl AsyncParallelBatchNode for ParallelNegate {
        type Item = i64;
        type Output = i64;
        async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<i64>, BoxError> {
            Ok(shared.get("numbers")?)
        }
        async fn exec(&self, _: &Ctx<'_>, n: &i64) -> Result<i64, BoxError> {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(-n)
        }
        async fn post(
            &self,
            _: &Ctx<'_>,
            shared: &SharedStore,
            _: Vec<i64>,
            out: Vec<i64>,
        ) -> Result<Action, BoxError> {
            shared.set("numbers", out)?;
            Ok(Action::NONE)
        }
    }

    let mut flow = AsyncFlow::new();
    let a = flow.start(SyncSquares);
    let b = flow.add(AsyncPlusOne);
    let c = flow.add(ParallelNegate);
    flow.link(a >> b >> c);

    let shared = SharedStore::from_iter([("numbers", vec![1, 2, 3])]);
    let start = tokio::time::Instant::now();
    flow.run(&shared).await.unwrap();
    assert_eq!(shared.get::<Vec<i64>>("numbers").unwrap(), [-2, -5, -10]);
    // Three sequential 10 ms items, then three parallel ones.
    assert_eq!(start.elapsed(), Duration::from_millis(40));
}

#[tokio::test(start_paused = true)]
async fn async_batch_flows_and_sync_flows_chain_in_an_async_flow() {
    struct Tag;
    impl AsyncNode for Tag {
        type Prep = ();
        type Exec = ();
        async fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
            let tag: String = ctx.params().get_as("tag")?;
            tokio::time::sleep(Duration::from_millis(10)).await;
            common::list_push(shared, "tags", tag);
            Ok(())
        }
        async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
    }
    fn tags(prefix: &'static str) -> impl Fn(&Ctx<'_>, &SharedStore) -> Result<Vec<Params>, BoxError> + Send + Sync {
        move |_: &Ctx<'_>, _: &SharedStore| {
            Ok((0..3).map(|i| Params::new().with("tag", format!("{prefix}{i}"))).collect())
        }
    }

    let mut par_graph = AsyncFlow::new();
    par_graph.start(Tag);
    let parallel = AsyncParallelBatchFlow::new(par_graph, tags("p"));
    let mut seq_graph = AsyncFlow::new();
    seq_graph.start(Tag);
    let sequential = AsyncBatchFlow::new(seq_graph, tags("s"));
    let mut sync_flow = Flow::new();
    sync_flow.start(Signal("sync flow done"));

    let mut flow = AsyncFlow::new();
    let p = flow.start(parallel);
    let s = flow.add(sequential);
    let f = flow.add(sync_flow);
    flow.link(p >> s >> f);

    let shared = SharedStore::new();
    let start = tokio::time::Instant::now();
    assert_eq!(flow.run(&shared).await.unwrap(), "sync flow done");
    assert_eq!(start.elapsed(), Duration::from_millis(10 + 3 * 10), "parallel runs overlap, sequential ones do not");
    let tags = shared.get::<Vec<String>>("tags").unwrap();
    let mut parallel_tags = tags[..3].to_vec();
    parallel_tags.sort();
    assert_eq!(parallel_tags, ["p0", "p1", "p2"]);
    assert_eq!(tags[3..], ["s0", "s1", "s2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_flow_holding_every_step_kind_can_be_spawned() {
    // `tokio::spawn` needs a `Send + 'static` future: the run of an
    // AsyncFlow holding sync nodes, a sync sub-flow, a sync batch flow and
    // async nodes qualifies.
    let mut sync_flow = Flow::new();
    sync_flow.start(AddNode(1));
    let mut batch_graph = Flow::new();
    batch_graph.start(AddNode(10));
    let batch = BatchFlow::new(batch_graph, |_: &Ctx<'_>, _: &SharedStore| -> Result<Vec<Params>, BoxError> {
        Ok(vec![Params::new(); 2])
    });

    let mut flow = AsyncFlow::new();
    let n = flow.start(NumberNode(1));
    let s = flow.add(sync_flow);
    let b = flow.add(batch);
    let m = flow.add(AsyncMultiply(3));
    flow.link(n >> s >> b >> m);

    let shared = std::sync::Arc::new(SharedStore::new());
    let task_shared = std::sync::Arc::clone(&shared);
    let action = tokio::spawn(async move { flow.run(&task_shared).await }).await.unwrap().unwrap();
    assert!(action.is_none());
    assert_eq!(current(&shared), (1 + 1 + 20) * 3);
}

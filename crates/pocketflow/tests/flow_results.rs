//! What a run returns, and what a parent flow routes on.
//!
//! - A node run alone returns its `post`'s action as is: `Action::NONE`
//!   stays NONE (PocketFlow's docs say "default"; its code returns `None`).
//! - A flow returns its last node's action as is, or what its `post` hook
//!   makes of it (`post` receives its `prep` value and that last action).
//! - A batch flow (sync, async, parallel) discards its runs' actions and
//!   returns its hooks' `post` action: `Action::NONE` by default. `post`
//!   gets the entries `prep` returned.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{NumberNode, current};
use pocketflow::{
    Action, AsyncBatchFlow, AsyncBatchFlowHooks, AsyncFlow, AsyncParallelBatchFlow, BatchFlow, BatchFlowHooks,
    BoxError, Ctx, Flow, FlowHooks, Node, Params, SharedStore,
};

struct Returns(&'static str);

impl Node for Returns {
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

#[test]
fn a_node_run_alone_returns_its_posts_action_as_is() {
    let shared = SharedStore::new();
    let none = NumberNode(1).run(&shared).unwrap();
    assert!(none.is_none());
    assert_ne!(none, Action::DEFAULT);
    assert_eq!(none.route_key(), "default", "it would still follow the default edge");
    assert_eq!(Returns("x").run(&shared).unwrap(), "x");
}

#[test]
fn a_flows_post_gets_prep_and_the_last_action_and_sets_the_result() {
    struct Hooks;
    impl FlowHooks for Hooks {
        type Prep = String;
        fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
            assert!(!shared.contains_key("current"), "prep runs before the first node");
            Ok("flowprep".into())
        }
        fn post(&self, _: &Ctx<'_>, shared: &SharedStore, prep: String, last: Action) -> Result<Action, BoxError> {
            assert_eq!(current(shared), 1, "post runs after the last node");
            Ok(format!("{prep}+{last}").into())
        }
    }
    let mut flow = Flow::new().with_hooks(Hooks);
    let n = flow.start(NumberNode(1));
    let last = flow.add(Returns("act1"));
    flow.link(n >> last);
    assert_eq!(flow.run(&SharedStore::new()).unwrap(), "flowprep+act1");
}

/// Batch hooks with two entries whose `post` reports how many it got.
struct TwoEntries;

impl BatchFlowHooks for TwoEntries {
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<Params>, BoxError> {
        Ok(vec![Params::new().with("i", 0), Params::new().with("i", 1)])
    }
    fn post(&self, _: &Ctx<'_>, _: &SharedStore, entries: Vec<Params>) -> Result<Action, BoxError> {
        Ok(format!("{} entries", entries.len()).into())
    }
}

impl AsyncBatchFlowHooks for TwoEntries {
    async fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Params>, BoxError> {
        BatchFlowHooks::prep(self, ctx, shared)
    }
    async fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, entries: Vec<Params>) -> Result<Action, BoxError> {
        BatchFlowHooks::post(self, ctx, shared, entries)
    }
}

fn two_entries(_: &Ctx<'_>, _: &SharedStore) -> Result<Vec<Params>, BoxError> {
    Ok(vec![Params::new(); 2])
}

fn returns_run() -> Flow {
    let mut graph = Flow::new();
    graph.start(Returns("run action"));
    graph
}

fn async_returns_run() -> AsyncFlow {
    let mut graph = AsyncFlow::new();
    graph.start(Returns("run action"));
    graph
}

#[test]
fn a_batch_flow_discards_run_actions_and_returns_its_post_action() {
    let shared = SharedStore::new();
    assert!(BatchFlow::new(returns_run(), two_entries).run(&shared).unwrap().is_none());
    assert_eq!(BatchFlow::new(returns_run(), TwoEntries).run(&shared).unwrap(), "2 entries");
}

#[tokio::test]
async fn async_batch_flows_discard_run_actions_and_return_their_post_action() {
    let shared = SharedStore::new();
    assert!(AsyncBatchFlow::new(async_returns_run(), two_entries).run(&shared).await.unwrap().is_none());
    assert!(AsyncParallelBatchFlow::new(async_returns_run(), two_entries).run(&shared).await.unwrap().is_none());
    assert_eq!(AsyncBatchFlow::new(async_returns_run(), TwoEntries).run(&shared).await.unwrap(), "2 entries");
    assert_eq!(AsyncParallelBatchFlow::new(async_returns_run(), TwoEntries).run(&shared).await.unwrap(), "2 entries");
}

#[test]
fn a_parent_routes_on_a_nested_batch_flows_post_action() {
    let mut outer = Flow::new();
    let batch = outer.start(BatchFlow::new(returns_run(), TwoEntries));
    let wrong = outer.add(NumberNode(-1));
    let right = outer.add(NumberNode(1));
    outer.link(batch.on("run action") >> wrong);
    outer.link(batch.on("2 entries") >> right);
    let shared = SharedStore::new();
    outer.run(&shared).unwrap();
    assert_eq!(current(&shared), 1);
}

//! Port of PocketFlow's `tests/test_async_flow.py`.
//!
//! Python tests (5). `TestAsyncNode`: test_async_number_node_direct_call,
//! test_async_increment_node_direct_call. `TestAsyncFlow`:
//! test_simple_async_flow, test_async_flow_branching,
//! test_async_composition_with_action_propagation.
//!
//! Python's `run_async` is `run(..).await` on the async traits. The
//! `asyncio.sleep(0.01)`s are `tokio::time::sleep`s on a paused clock.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::current;
use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Ctx, Node, SharedStore};
use serde_json::json;

async fn sleep_10ms() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Sets `current` in `prep_async`; `post_async` returns `"number_set"`.
struct AsyncNumberNode(i64);

impl AsyncNode for AsyncNumberNode {
    type Prep = &'static str;
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<&'static str, BoxError> {
        shared.set("current", self.0)?;
        Ok("set_number")
    }
    async fn exec(&self, _: &Ctx<'_>, _: &&'static str) -> Result<(), BoxError> {
        Ok(())
    }
    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: &'static str, _: ()) -> Result<Action, BoxError> {
        sleep_10ms().await;
        Ok("number_set".into())
    }
}

/// `current = current.get(0) + 1`; `post_async` returns `"done"`.
struct AsyncIncrementNode;

impl AsyncNode for AsyncIncrementNode {
    type Prep = &'static str;
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<&'static str, BoxError> {
        shared.update("current", |v| *v = json!(v.as_i64().unwrap_or(0) + 1));
        Ok("incremented")
    }
    async fn exec(&self, _: &Ctx<'_>, _: &&'static str) -> Result<(), BoxError> {
        Ok(())
    }
    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: &'static str, _: ()) -> Result<Action, BoxError> {
        sleep_10ms().await;
        Ok("done".into())
    }
}

/// Stores its signal in `last_async_signal_emitted` and returns it.
struct AsyncSignalNode(&'static str);

impl AsyncNode for AsyncSignalNode {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        sleep_10ms().await;
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        shared.set("last_async_signal_emitted", self.0)?;
        sleep_10ms().await;
        Ok(self.0.into())
    }
}

/// Records the outer path taken in `async_path_taken`.
struct AsyncPathNode(&'static str);

impl AsyncNode for AsyncPathNode {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        sleep_10ms().await;
        shared.set("async_path_taken", self.0)?;
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        sleep_10ms().await;
        Ok(Action::NONE)
    }
}

// --- TestAsyncNode ---

#[tokio::test(start_paused = true)]
async fn async_number_node_direct_call() {
    let shared = SharedStore::new();
    let condition = AsyncNumberNode(42).run(&shared).await.expect("node runs");
    assert_eq!(current(&shared), 42);
    assert_eq!(condition, "number_set");
}

#[tokio::test(start_paused = true)]
async fn async_increment_node_direct_call() {
    let shared = SharedStore::from_iter([("current", 10)]);
    let condition = AsyncIncrementNode.run(&shared).await.expect("node runs");
    assert_eq!(current(&shared), 11);
    assert_eq!(condition, "done");
}

// --- TestAsyncFlow ---

#[tokio::test(start_paused = true)]
async fn simple_async_flow() {
    let mut flow = AsyncFlow::new();
    let start = flow.start(AsyncNumberNode(5));
    let inc = flow.add(AsyncIncrementNode);
    flow.link(start.on("number_set") >> inc);

    let shared = SharedStore::new();
    flow.run(&shared).await.expect("flow runs");
    assert_eq!(current(&shared), 6);
}

#[tokio::test(start_paused = true)]
async fn async_flow_branching() {
    // Python gives this AsyncNode a sync `exec` to show it is ignored (only
    // `exec_async` runs); a Rust AsyncNode has no sync hooks to ignore.
    struct BranchingAsyncNode;
    impl AsyncNode for BranchingAsyncNode {
        type Prep = ();
        type Exec = ();
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
        async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
            sleep_10ms().await;
            Ok(if shared.get::<i64>("value")? >= 0 { "positive_branch".into() } else { "negative_branch".into() })
        }
    }

    // Sync nodes: Python's `exec` writes `shared` through a closure; a Rust
    // `exec` cannot see the store, so the write is in `post`.
    struct PathNode(&'static str);
    impl Node for PathNode {
        type Prep = ();
        type Exec = ();
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
        fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
            shared.set("path", self.0)?;
            Ok(Action::NONE)
        }
    }

    let mut flow = AsyncFlow::new();
    let start = flow.start(BranchingAsyncNode);
    let positive = flow.add(PathNode("positive")); // Python's PositiveNode
    let negative = flow.add(PathNode("negative")); // Python's NegativeNode
    flow.link(start.on("positive_branch") >> positive);
    flow.link(start.on("negative_branch") >> negative);

    let shared = SharedStore::from_iter([("value", 10)]);
    flow.run(&shared).await.expect("flow runs");
    assert_eq!(shared.get::<String>("path").unwrap(), "positive", "Should have taken the positive branch");
}

#[tokio::test(start_paused = true)]
async fn async_composition_with_action_propagation() {
    let mut inner = AsyncFlow::new();
    let start = inner.start(AsyncNumberNode(200));
    let end = inner.add(AsyncSignalNode("async_inner_done"));
    inner.link(start.on("number_set") >> end);

    let mut outer = AsyncFlow::new();
    let inner = outer.start(inner);
    let path_a = outer.add(AsyncPathNode("AsyncA"));
    let path_b = outer.add(AsyncPathNode("AsyncB"));
    outer.link(inner.on("async_inner_done") >> path_b);
    outer.link(inner.on("other_action") >> path_a);

    let shared = SharedStore::new();
    let last = outer.run(&shared).await.expect("flow runs");
    assert_eq!(current(&shared), 200);
    assert_eq!(shared.get::<String>("last_async_signal_emitted").unwrap(), "async_inner_done");
    assert_eq!(shared.get::<String>("async_path_taken").unwrap(), "AsyncB");
    assert!(last.is_none());
}

//! Port of PocketFlow's `tests/test_async_batch_flow.py`.
//!
//! Python tests (5): test_basic_async_batch_processing,
//! test_empty_async_batch, test_async_error_handling,
//! test_nested_async_flow, test_custom_async_parameters.
//!
//! Python subclasses `AsyncBatchFlow` to override `prep_async`; here that is
//! an `AsyncBatchFlowHooks` impl passed to `AsyncBatchFlow::new`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{ValueError, map_insert, value};
use pocketflow::{
    Action, AsyncBatchFlow, AsyncBatchFlowHooks, AsyncFlow, AsyncNode, BoxError, Ctx, Params, SharedStore,
};
use serde_json::json;

async fn sleep_10ms() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

fn input(shared: &SharedStore, key: &str) -> Result<i64, BoxError> {
    value(shared, "input_data")[key].as_i64().ok_or_else(|| format!("input_data[{key}] missing").into())
}

/// `prep_async`: `[{'key': k} for k in shared['input_data'].keys()]`, or
/// with `'multiplier': i + 1` too.
struct PerKey {
    with_multiplier: bool,
}

impl AsyncBatchFlowHooks for PerKey {
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Params>, BoxError> {
        let data = value(shared, "input_data");
        let keys = data.as_object().ok_or("input_data is not a map")?.keys();
        Ok(keys
            .enumerate()
            .map(|(i, k)| {
                let entry = Params::new().with("key", k.as_str());
                if self.with_multiplier { entry.with("multiplier", i + 1) } else { entry }
            })
            .collect())
    }
}

const PER_KEY: PerKey = PerKey { with_multiplier: false };

/// `prep_async` sets `results[key] = data`; `post_async` doubles it.
struct AsyncDataProcessNode;

impl AsyncNode for AsyncDataProcessNode {
    type Prep = i64;
    type Exec = ();
    async fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<i64, BoxError> {
        let key: String = ctx.params().get_as("key")?;
        let data = input(shared, &key)?;
        map_insert(shared, "results", &key, data);
        Ok(data)
    }
    async fn exec(&self, _: &Ctx<'_>, _: &i64) -> Result<(), BoxError> {
        Ok(())
    }
    async fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, data: i64, _: ()) -> Result<Action, BoxError> {
        sleep_10ms().await;
        let key: String = ctx.params().get_as("key")?;
        map_insert(shared, "results", &key, data * 2);
        Ok("processed".into())
    }
}

fn single<N: AsyncNode>(node: N) -> AsyncFlow {
    let mut flow = AsyncFlow::new();
    flow.start(node);
    flow
}

fn store(input_data: serde_json::Value) -> SharedStore {
    SharedStore::from_iter([("input_data", input_data)])
}

#[tokio::test(start_paused = true)]
async fn basic_async_batch_processing() {
    let shared = store(json!({"a": 1, "b": 2, "c": 3}));
    AsyncBatchFlow::new(single(AsyncDataProcessNode), PER_KEY).run(&shared).await.expect("flow runs");
    assert_eq!(value(&shared, "results"), json!({"a": 2, "b": 4, "c": 6}));
}

#[tokio::test(start_paused = true)]
async fn empty_async_batch() {
    let shared = store(json!({}));
    AsyncBatchFlow::new(single(AsyncDataProcessNode), PER_KEY).run(&shared).await.expect("flow runs");
    assert!(!shared.contains_key("results"));
}

#[tokio::test(start_paused = true)]
async fn async_error_handling() {
    struct AsyncErrorNode;
    impl AsyncNode for AsyncErrorNode {
        type Prep = ();
        type Exec = ();
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
        async fn post(&self, ctx: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
            let key: String = ctx.params().get_as("key")?;
            if key == "error_key" {
                return Err(ValueError::boxed(format!("Async error processing key: {key}")));
            }
            Ok("processed".into())
        }
    }

    let shared = store(json!({"normal_key": 1, "error_key": 2, "another_key": 3}));
    let err = AsyncBatchFlow::new(single(AsyncErrorNode), PER_KEY).run(&shared).await.expect_err("a ValueError");
    assert_eq!(err.downcast_ref::<ValueError>(), Some(&ValueError("Async error processing key: error_key".into())));
}

#[tokio::test(start_paused = true)]
async fn nested_async_flow() {
    struct AsyncInnerNode;
    impl AsyncNode for AsyncInnerNode {
        type Prep = ();
        type Exec = ();
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
        async fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
            let key: String = ctx.params().get_as("key")?;
            map_insert(shared, "intermediate_results", &key, input(shared, &key)? + 1);
            sleep_10ms().await;
            Ok("next".into())
        }
    }

    struct AsyncOuterNode;
    impl AsyncNode for AsyncOuterNode {
        type Prep = ();
        type Exec = ();
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
        async fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
            let key: String = ctx.params().get_as("key")?;
            let intermediate = value(shared, "intermediate_results")[key.as_str()].as_i64().ok_or("missing")?;
            map_insert(shared, "results", &key, intermediate * 2);
            sleep_10ms().await;
            Ok("done".into())
        }
    }

    let mut flow = AsyncFlow::new();
    let inner = flow.start(AsyncInnerNode);
    let outer = flow.add(AsyncOuterNode);
    flow.link(inner.on("next") >> outer);

    let shared = store(json!({"x": 1, "y": 2}));
    AsyncBatchFlow::new(flow, PER_KEY).run(&shared).await.expect("flow runs");
    assert_eq!(value(&shared, "results"), json!({"x": 4, "y": 6}));
}

#[tokio::test(start_paused = true)]
async fn custom_async_parameters() {
    struct CustomParamAsyncNode;
    impl AsyncNode for CustomParamAsyncNode {
        type Prep = ();
        type Exec = ();
        async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
        async fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
            let key: String = ctx.params().get_as("key")?;
            let multiplier: i64 = ctx.params().get_as("multiplier").unwrap_or(1);
            sleep_10ms().await;
            map_insert(shared, "results", &key, input(shared, &key)? * multiplier);
            Ok("done".into())
        }
    }

    let shared = store(json!({"a": 1, "b": 2, "c": 3}));
    AsyncBatchFlow::new(single(CustomParamAsyncNode), PerKey { with_multiplier: true })
        .run(&shared)
        .await
        .expect("flow runs");
    assert_eq!(value(&shared, "results"), json!({"a": 1, "b": 4, "c": 9}));
}

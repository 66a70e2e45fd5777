//! Port of PocketFlow's `tests/test_async_parallel_batch_flow.py`.
//!
//! Python tests (4). `TestAsyncParallelBatchFlow`: test_parallel_batch_flow,
//! test_error_handling, test_multiple_batch_sizes.
//! `TestNestedAsyncParallelBatchFlow`: test_nested_parallel_batch_flow.
//!
//! `shared['processed_numbers']` is a JSON map here, so its integer batch
//! ids are the string keys `"0"`, `"1"`, … The wall-clock check (`< 0.2 s`)
//! is an exact virtual-time check on a paused tokio clock.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{ValueError, group_items_prep, groups_prep, map_insert, map_list_push, value};
use pocketflow::{
    Action, AsyncBatchFlowHooks, AsyncFlow, AsyncNode, AsyncParallelBatchFlow, AsyncParallelBatchNode, BoxError, Ctx,
    Params, SharedStore,
};
use serde_json::json;
use tokio::time::Instant;

/// Processes `shared['batches'][params['batch_id']]`: sleeps `delay` per
/// number and doubles it; `post` stores `processed_numbers[batch_id]`.
struct AsyncParallelNumberProcessor {
    delay: Duration,
    /// Python's `ErrorProcessor` subclass: fail on 2, no sleep.
    fail_on_two: bool,
}

impl AsyncParallelNumberProcessor {
    fn new(delay_ms: u64) -> Self {
        Self { delay: Duration::from_millis(delay_ms), fail_on_two: false }
    }
}

impl AsyncParallelBatchNode for AsyncParallelNumberProcessor {
    type Item = i64;
    type Output = i64;

    async fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<i64>, BoxError> {
        let batch_id: usize = ctx.params().get_as("batch_id")?;
        Ok(serde_json::from_value(value(shared, "batches")[batch_id].clone())?)
    }
    async fn exec(&self, _: &Ctx<'_>, number: &i64) -> Result<i64, BoxError> {
        if self.fail_on_two {
            if *number == 2 {
                return Err(ValueError::boxed(format!("Error processing item {number}")));
            }
            return Ok(*number);
        }
        tokio::time::sleep(self.delay).await;
        Ok(number * 2)
    }
    async fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, _: Vec<i64>, out: Vec<i64>) -> Result<Action, BoxError> {
        let batch_id: usize = ctx.params().get_as("batch_id")?;
        map_insert(shared, "processed_numbers", &batch_id.to_string(), out);
        Ok("processed".into())
    }
}

/// Sums `processed_numbers[0..len]` into `total`.
struct AsyncAggregatorNode;

impl AsyncNode for AsyncAggregatorNode {
    type Prep = Vec<i64>;
    type Exec = i64;

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<i64>, BoxError> {
        let processed = value(shared, "processed_numbers");
        let processed = processed.as_object().cloned().unwrap_or_default();
        let mut all = Vec::new();
        for i in 0..processed.len() {
            let batch: Vec<i64> = serde_json::from_value(processed.get(&i.to_string()).ok_or("KeyError")?.clone())?;
            all.extend(batch);
        }
        Ok(all)
    }
    async fn exec(&self, _: &Ctx<'_>, all: &Vec<i64>) -> Result<i64, BoxError> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(all.iter().sum())
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Vec<i64>, total: i64) -> Result<Action, BoxError> {
        shared.set("total", total)?;
        Ok("aggregated".into())
    }
}

/// `prep_async`: `[{'batch_id': i} for i in range(len(shared['batches']))]`.
fn per_batch(_: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Params>, BoxError> {
    let len = value(shared, "batches").as_array().ok_or("batches is not a list")?.len();
    Ok((0..len).map(|i| Params::new().with("batch_id", i)).collect())
}

fn processor_then_aggregator(delay_ms: u64) -> AsyncParallelBatchFlow<SharedStore, impl AsyncBatchFlowHooks> {
    let mut flow = AsyncFlow::new();
    let processor = flow.start(AsyncParallelNumberProcessor::new(delay_ms));
    let aggregator = flow.add(AsyncAggregatorNode);
    flow.link(processor.on("processed") >> aggregator);
    AsyncParallelBatchFlow::new(flow, per_batch)
}

#[tokio::test(start_paused = true)]
async fn parallel_batch_flow() {
    let shared = SharedStore::from_iter([("batches", json!([[1, 2, 3], [4, 5, 6], [7, 8, 9]]))]);
    let flow = processor_then_aggregator(100);

    let start = Instant::now();
    flow.run(&shared).await.expect("flow runs");
    let elapsed = start.elapsed();

    assert_eq!(value(&shared, "processed_numbers"), json!({"0": [2, 4, 6], "1": [8, 10, 12], "2": [14, 16, 18]}));
    assert_eq!(shared.get::<i64>("total").unwrap(), 90);
    // Batches and their items all run at once: one 100 ms processor delay
    // plus one 10 ms aggregator delay (Python: < 0.2 s).
    assert_eq!(elapsed, Duration::from_millis(110));
}

#[tokio::test(start_paused = true)]
async fn error_handling() {
    let mut flow = AsyncFlow::new();
    flow.start(AsyncParallelNumberProcessor { delay: Duration::ZERO, fail_on_two: true });
    let flow = AsyncParallelBatchFlow::new(flow, per_batch);

    let shared = SharedStore::from_iter([("batches", json!([[1, 2, 3], [4, 5, 6]]))]);
    let err = flow.run(&shared).await.expect_err("item 2 fails");
    assert_eq!(err.downcast_ref::<ValueError>(), Some(&ValueError("Error processing item 2".into())));
}

#[tokio::test(start_paused = true)]
async fn multiple_batch_sizes() {
    let shared = SharedStore::from_iter([("batches", json!([[1], [2, 3, 4], [5, 6], [7, 8, 9, 10]]))]);
    processor_then_aggregator(50).run(&shared).await.expect("flow runs");
    assert_eq!(
        value(&shared, "processed_numbers"),
        json!({"0": [2], "1": [4, 6, 8], "2": [10, 12], "3": [14, 16, 18, 20]})
    );
    assert_eq!(shared.get::<i64>("total").unwrap(), 110);
}

// --- TestNestedAsyncParallelBatchFlow ---

struct AsyncItemNode;

impl AsyncNode for AsyncItemNode {
    type Prep = i64;
    type Exec = i64;
    async fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<i64, BoxError> {
        let group: String = ctx.params().get_as("group")?;
        let item: usize = ctx.params().get_as("item")?;
        value(shared, "groups")[group.as_str()][item].as_i64().ok_or_else(|| "missing item".into())
    }
    async fn exec(&self, _: &Ctx<'_>, n: &i64) -> Result<i64, BoxError> {
        Ok(n * 2)
    }
    async fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, _: i64, doubled: i64) -> Result<Action, BoxError> {
        let group: String = ctx.params().get_as("group")?;
        map_list_push(shared, "results", &group, doubled);
        Ok(Action::NONE)
    }
}

// InnerAsyncParallelBatchFlow.prep_async / OuterAsyncParallelBatchFlow.prep_async:
// `common::group_items_prep` / `common::groups_prep`.

#[tokio::test(start_paused = true)]
async fn nested_parallel_batch_flow() {
    let mut inner_graph = AsyncFlow::new();
    inner_graph.start(AsyncItemNode);
    let inner = AsyncParallelBatchFlow::new(inner_graph, group_items_prep);
    let mut outer_graph = AsyncFlow::new();
    outer_graph.start(inner);
    let outer = AsyncParallelBatchFlow::new(outer_graph, groups_prep);

    let shared = SharedStore::from_iter([("groups", json!({"A": [1, 2], "B": [3, 4]}))]);
    outer.run(&shared).await.expect("flow runs");

    let results = value(&shared, "results");
    let results = results.as_object().unwrap();
    let mut keys: Vec<_> = results.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, vec!["A", "B"]);
    // assertCountEqual: same elements, any order.
    for (group, expected) in [("A", vec![2, 4]), ("B", vec![6, 8])] {
        let mut got: Vec<i64> = serde_json::from_value(results[group].clone()).unwrap();
        got.sort_unstable();
        assert_eq!(got, expected, "group {group}");
    }
}

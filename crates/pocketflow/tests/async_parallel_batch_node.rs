//! Port of PocketFlow's `tests/test_async_parallel_batch_node.py`.
//!
//! Python tests (6): test_parallel_processing, test_empty_input,
//! test_single_item, test_large_batch, test_error_handling,
//! test_concurrent_execution.
//!
//! Python checks wall-clock time (`< 0.2 s`) and completion order; here the
//! tokio clock is paused, so sleeps advance virtual time exactly and the
//! tests assert exact elapsed times.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ValueError;
use pocketflow::{Action, AsyncParallelBatchNode, BoxError, Ctx, SharedStore};
use tokio::time::Instant;

fn input_numbers(shared: &SharedStore) -> Result<Vec<i64>, BoxError> {
    Ok(if shared.contains_key("input_numbers") { shared.get("input_numbers")? } else { Vec::new() })
}

/// Sleeps `delay` per item and doubles it; `post` stores `processed_numbers`.
struct AsyncParallelNumberProcessor {
    delay: Duration,
}

impl Default for AsyncParallelNumberProcessor {
    fn default() -> Self {
        Self { delay: Duration::from_millis(100) }
    }
}

impl AsyncParallelBatchNode for AsyncParallelNumberProcessor {
    type Item = i64;
    type Output = i64;

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<i64>, BoxError> {
        input_numbers(shared)
    }
    async fn exec(&self, _: &Ctx<'_>, number: &i64) -> Result<i64, BoxError> {
        tokio::time::sleep(self.delay).await;
        Ok(number * 2)
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Vec<i64>, out: Vec<i64>) -> Result<Action, BoxError> {
        shared.set("processed_numbers", out)?;
        Ok("processed".into())
    }
}

fn processed(shared: &SharedStore) -> Vec<i64> {
    shared.get("processed_numbers").unwrap()
}

#[tokio::test(start_paused = true)]
async fn parallel_processing() {
    let shared = SharedStore::from_iter([("input_numbers", (0..5).collect::<Vec<i64>>())]);
    let processor = AsyncParallelNumberProcessor { delay: Duration::from_millis(100) };

    let start = Instant::now();
    let action = processor.run(&shared).await.expect("node runs");
    let elapsed = start.elapsed();

    assert_eq!(action, "processed");
    assert_eq!(processed(&shared), vec![0, 2, 4, 6, 8]);
    // Five 100 ms items in parallel take one delay, not five (Python: < 0.2 s).
    assert_eq!(elapsed, Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn empty_input() {
    let shared = SharedStore::from_iter([("input_numbers", Vec::<i64>::new())]);
    AsyncParallelNumberProcessor::default().run(&shared).await.expect("node runs");
    assert_eq!(processed(&shared), Vec::<i64>::new());
}

#[tokio::test(start_paused = true)]
async fn single_item() {
    let shared = SharedStore::from_iter([("input_numbers", vec![42])]);
    AsyncParallelNumberProcessor::default().run(&shared).await.expect("node runs");
    assert_eq!(processed(&shared), vec![84]);
}

#[tokio::test(start_paused = true)]
async fn large_batch() {
    let shared = SharedStore::from_iter([("input_numbers", (0..100).collect::<Vec<i64>>())]);
    let start = Instant::now();
    AsyncParallelNumberProcessor { delay: Duration::from_millis(10) }.run(&shared).await.expect("node runs");
    assert_eq!(processed(&shared), (0..100).map(|x| x * 2).collect::<Vec<i64>>());
    assert_eq!(start.elapsed(), Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn error_handling() {
    struct ErrorProcessor;
    impl AsyncParallelBatchNode for ErrorProcessor {
        type Item = i64;
        type Output = i64;
        async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<i64>, BoxError> {
            input_numbers(shared)
        }
        async fn exec(&self, _: &Ctx<'_>, item: &i64) -> Result<i64, BoxError> {
            if *item == 2 {
                return Err(ValueError::boxed(format!("Error processing item {item}")));
            }
            Ok(*item)
        }
    }

    let shared = SharedStore::from_iter([("input_numbers", vec![1, 2, 3])]);
    let err = ErrorProcessor.run(&shared).await.expect_err("item 2 fails");
    assert_eq!(err.downcast_ref::<ValueError>(), Some(&ValueError("Error processing item 2".into())));
}

#[tokio::test(start_paused = true)]
async fn concurrent_execution() {
    /// Even items take 100 ms, odd ones 50 ms; logs (item, finish time).
    struct OrderTrackingProcessor {
        start: Instant,
        execution_order: Arc<Mutex<Vec<(i64, Duration)>>>,
    }
    impl AsyncParallelBatchNode for OrderTrackingProcessor {
        type Item = i64;
        type Output = i64;
        async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<i64>, BoxError> {
            input_numbers(shared)
        }
        async fn exec(&self, _: &Ctx<'_>, item: &i64) -> Result<i64, BoxError> {
            let delay = if item % 2 == 0 { 100 } else { 50 };
            tokio::time::sleep(Duration::from_millis(delay)).await;
            self.execution_order.lock().unwrap().push((*item, self.start.elapsed()));
            Ok(*item)
        }
    }

    let execution_order = Arc::new(Mutex::new(Vec::new()));
    let processor = OrderTrackingProcessor { start: Instant::now(), execution_order: Arc::clone(&execution_order) };
    let shared = SharedStore::from_iter([("input_numbers", (0..4).collect::<Vec<i64>>())]);
    processor.run(&shared).await.expect("node runs");

    let log = execution_order.lock().unwrap().clone();
    let index = |item: i64| log.iter().position(|(i, _)| *i == item).unwrap();
    // Python's assertions: odd items finish before even ones.
    assert!(index(1) < index(0), "{log:?}");
    assert!(index(3) < index(2), "{log:?}");
    // And exactly when: odd items at 50 ms, even items at 100 ms.
    let mut finished: Vec<_> = log.clone();
    finished.sort_by_key(|(item, _)| *item);
    let ms = Duration::from_millis;
    assert_eq!(finished, vec![(0, ms(100)), (1, ms(50)), (2, ms(100)), (3, ms(50))]);
}

//! Port of PocketFlow's `tests/test_fall_back.py`.
//!
//! Python tests (10). Sync (`TestExecFallback`): test_successful_execution,
//! test_fallback_after_failure, test_fallback_in_flow,
//! test_no_fallback_implementation, test_retry_before_fallback.
//! Async (`TestAsyncExecFallback`): test_async_successful_execution,
//! test_async_fallback_after_failure, test_async_fallback_in_flow,
//! test_async_no_fallback_implementation, test_async_retry_before_fallback.
//!
//! Python's `max_retries` constructor argument is a struct field returned
//! by the `max_retries()` trait method; `self.attempt_count += 1` is an
//! atomic counter because hooks take `&self`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ValueError, list_push, value};
use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Ctx, Flow, Node, SharedStore};
use serde_json::{Value, json};

struct FallbackNode {
    should_fail: bool,
    max_retries: usize,
    attempt_count: AtomicUsize,
}

impl FallbackNode {
    fn new(should_fail: bool, max_retries: usize) -> Self {
        Self { should_fail, max_retries, attempt_count: AtomicUsize::new(0) }
    }
}

/// `if 'results' not in shared: shared['results'] = []`
fn ensure_results(shared: &SharedStore) {
    shared.update("results", |v| {
        if v.is_null() {
            *v = json!([]);
        }
    });
}

impl Node for FallbackNode {
    type Prep = ();
    type Exec = String;

    fn max_retries(&self) -> usize {
        self.max_retries
    }
    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        ensure_results(shared);
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<String, BoxError> {
        self.attempt_count.fetch_add(1, Ordering::SeqCst);
        if self.should_fail {
            return Err(ValueError::boxed("Intentional failure"));
        }
        Ok("success".into())
    }
    fn exec_fallback(&self, _: &Ctx<'_>, _: &(), _: BoxError) -> Result<String, BoxError> {
        Ok("fallback".into())
    }
    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), result: String) -> Result<Action, BoxError> {
        let attempts = self.attempt_count.load(Ordering::SeqCst);
        list_push(shared, "results", json!({"attempts": attempts, "result": result}));
        Ok(Action::NONE)
    }
}

struct AsyncFallbackNode {
    should_fail: bool,
    max_retries: usize,
    attempt_count: AtomicUsize,
}

impl AsyncFallbackNode {
    fn new(should_fail: bool, max_retries: usize) -> Self {
        Self { should_fail, max_retries, attempt_count: AtomicUsize::new(0) }
    }
}

impl AsyncNode for AsyncFallbackNode {
    type Prep = ();
    type Exec = String;

    fn max_retries(&self) -> usize {
        self.max_retries
    }
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        ensure_results(shared);
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<String, BoxError> {
        self.attempt_count.fetch_add(1, Ordering::SeqCst);
        if self.should_fail {
            return Err(ValueError::boxed("Intentional async failure"));
        }
        Ok("success".into())
    }
    async fn exec_fallback(&self, _: &Ctx<'_>, _: &(), _: BoxError) -> Result<String, BoxError> {
        tokio::time::sleep(Duration::from_millis(10)).await; // simulate async work
        Ok("async_fallback".into())
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), result: String) -> Result<Action, BoxError> {
        let attempts = self.attempt_count.load(Ordering::SeqCst);
        list_push(shared, "results", json!({"attempts": attempts, "result": result}));
        Ok(Action::NONE)
    }
}

/// The one entry of `shared['results']`.
fn only_result(shared: &SharedStore) -> Value {
    let results = value(shared, "results");
    let results = results.as_array().expect("results is a list");
    assert_eq!(results.len(), 1, "{results:?}");
    results[0].clone()
}

// --- TestExecFallback ---

#[test]
fn successful_execution() {
    let shared = SharedStore::new();
    FallbackNode::new(false, 1).run(&shared).expect("node runs");
    assert_eq!(only_result(&shared), json!({"attempts": 1, "result": "success"}));
}

#[test]
fn fallback_after_failure() {
    let shared = SharedStore::new();
    FallbackNode::new(true, 2).run(&shared).expect("node runs");
    assert_eq!(only_result(&shared), json!({"attempts": 2, "result": "fallback"}));
}

#[test]
fn fallback_in_flow() {
    struct ResultNode;
    impl Node for ResultNode {
        type Prep = Value;
        type Exec = Value;
        fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Value, BoxError> {
            Ok(shared.get_value("results").unwrap_or_else(|| json!([])))
        }
        fn exec(&self, _: &Ctx<'_>, results: &Value) -> Result<Value, BoxError> {
            Ok(results.clone())
        }
        fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Value, results: Value) -> Result<Action, BoxError> {
            shared.insert("final_result", results);
            Ok(Action::NONE)
        }
    }

    let mut flow = Flow::new();
    let fallback = flow.start(FallbackNode::new(true, 1));
    let result = flow.add(ResultNode);
    flow.link(fallback >> result);

    let shared = SharedStore::new();
    flow.run(&shared).expect("flow runs");
    assert_eq!(only_result(&shared)["result"], "fallback");
    assert_eq!(value(&shared, "final_result"), json!([{"attempts": 1, "result": "fallback"}]));
}

#[test]
fn no_fallback_implementation() {
    struct NoFallbackNode;
    impl Node for NoFallbackNode {
        type Prep = ();
        type Exec = Value;
        fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
            ensure_results(shared);
            Ok(())
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<Value, BoxError> {
            Err(ValueError::boxed("Test error"))
        }
        fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), result: Value) -> Result<Action, BoxError> {
            list_push(shared, "results", json!({"result": result}));
            Ok(Action::NONE)
        }
    }

    let shared = SharedStore::new();
    let err = NoFallbackNode.run(&shared).expect_err("the default fallback re-raises");
    assert_eq!(err.downcast_ref::<ValueError>(), Some(&ValueError("Test error".into())));
    assert_eq!(value(&shared, "results"), json!([]), "post never ran");
}

#[test]
fn retry_before_fallback() {
    let shared = SharedStore::new();
    FallbackNode::new(true, 3).run(&shared).expect("node runs");
    assert_eq!(only_result(&shared), json!({"attempts": 3, "result": "fallback"}));
}

// --- TestAsyncExecFallback ---

#[tokio::test(start_paused = true)]
async fn async_successful_execution() {
    let shared = SharedStore::new();
    AsyncFallbackNode::new(false, 1).run(&shared).await.expect("node runs");
    assert_eq!(only_result(&shared), json!({"attempts": 1, "result": "success"}));
}

#[tokio::test(start_paused = true)]
async fn async_fallback_after_failure() {
    let shared = SharedStore::new();
    AsyncFallbackNode::new(true, 2).run(&shared).await.expect("node runs");
    assert_eq!(only_result(&shared), json!({"attempts": 2, "result": "async_fallback"}));
}

#[tokio::test(start_paused = true)]
async fn async_fallback_in_flow() {
    struct AsyncResultNode;
    impl AsyncNode for AsyncResultNode {
        type Prep = Value;
        type Exec = Value;
        async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Value, BoxError> {
            // shared_storage['results'][-1]['result']
            let results = value(shared, "results");
            Ok(results.as_array().and_then(|r| r.last()).ok_or("no results")?["result"].clone())
        }
        async fn exec(&self, _: &Ctx<'_>, result: &Value) -> Result<Value, BoxError> {
            Ok(result.clone())
        }
        async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Value, result: Value) -> Result<Action, BoxError> {
            shared.insert("final_result", result);
            Ok("done".into())
        }
    }

    let mut flow = AsyncFlow::new();
    let fallback = flow.start(AsyncFallbackNode::new(true, 1));
    let result = flow.add(AsyncResultNode);
    flow.link(fallback >> result);

    let shared = SharedStore::new();
    flow.run(&shared).await.expect("flow runs");
    assert_eq!(only_result(&shared)["result"], "async_fallback");
    assert_eq!(value(&shared, "final_result"), "async_fallback");
}

#[tokio::test(start_paused = true)]
async fn async_no_fallback_implementation() {
    struct NoFallbackAsyncNode;
    impl AsyncNode for NoFallbackAsyncNode {
        type Prep = ();
        type Exec = Value;
        async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
            ensure_results(shared);
            Ok(())
        }
        async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<Value, BoxError> {
            Err(ValueError::boxed("Test async error"))
        }
        async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), result: Value) -> Result<Action, BoxError> {
            list_push(shared, "results", json!({"result": result}));
            Ok(Action::NONE)
        }
    }

    let shared = SharedStore::new();
    let err = NoFallbackAsyncNode.run(&shared).await.expect_err("the default fallback re-raises");
    assert_eq!(err.downcast_ref::<ValueError>(), Some(&ValueError("Test async error".into())));
    assert_eq!(value(&shared, "results"), json!([]), "post never ran");
}

#[tokio::test(start_paused = true)]
async fn async_retry_before_fallback() {
    let shared = SharedStore::new();
    let result = AsyncFallbackNode::new(true, 3).run(&shared).await.expect("node runs");
    assert!(result.is_none());
    assert_eq!(only_result(&shared), json!({"attempts": 3, "result": "async_fallback"}));
}

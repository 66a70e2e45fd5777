//! Port of PocketFlow's `tests/test_batch_flow.py`.
//!
//! Python tests (7): test_basic_batch_processing, test_empty_input,
//! test_single_item, test_error_handling, test_nested_flow,
//! test_custom_parameters, test_nested_batch_flow.
//!
//! Python subclasses `BatchFlow` to override `prep`; here the batch flow's
//! `prep` is a plain function passed to `BatchFlow::new`. Python reads
//! `self.params`; Rust reads `ctx.params()`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ValueError, group_items_prep, groups_prep, map_insert, map_list_push, value};
use pocketflow::{Action, BatchFlow, BoxError, Ctx, Flow, Node, Params, Phase, SharedStore};
use serde_json::json;

/// `results[key] = input_data[key] * 2`, in `prep`.
struct DataProcessNode;

impl Node for DataProcessNode {
    type Prep = ();
    type Exec = ();
    fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        let key: String = ctx.params().get_as("key")?;
        let data = input(shared, &key)?;
        map_insert(shared, "results", &key, data * 2);
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Fails in `prep` for `error_key`, else sets `results[key] = true`.
struct ErrorProcessNode;

impl Node for ErrorProcessNode {
    type Prep = ();
    type Exec = ();
    fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        let key: String = ctx.params().get_as("key")?;
        if key == "error_key" {
            return Err(ValueError::boxed(format!("Error processing key: {key}")));
        }
        map_insert(shared, "results", &key, true);
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

/// `shared["input_data"][key]`.
fn input(shared: &SharedStore, key: &str) -> Result<i64, BoxError> {
    value(shared, "input_data")[key].as_i64().ok_or_else(|| format!("input_data[{key}] missing").into())
}

/// `[{'key': k} for k in shared['input_data'].keys()]`. (The store's JSON
/// maps iterate in key order; every test's keys are already sorted, so
/// this is also Python's insertion order.)
fn one_entry_per_key(_: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Params>, BoxError> {
    let data = value(shared, "input_data");
    let keys = data.as_object().ok_or("input_data is not a map")?.keys();
    Ok(keys.map(|k| Params::new().with("key", k.as_str())).collect())
}

fn store(input_data: serde_json::Value) -> SharedStore {
    SharedStore::from_iter([("input_data", input_data)])
}

fn single(node: impl Node) -> Flow {
    let mut flow = Flow::new();
    flow.start(node);
    flow
}

#[test]
fn basic_batch_processing() {
    let shared = store(json!({"a": 1, "b": 2, "c": 3}));
    BatchFlow::new(single(DataProcessNode), one_entry_per_key).run(&shared).expect("flow runs");
    assert_eq!(value(&shared, "results"), json!({"a": 2, "b": 4, "c": 6}));
}

#[test]
fn empty_input() {
    let shared = store(json!({}));
    BatchFlow::new(single(DataProcessNode), one_entry_per_key).run(&shared).expect("flow runs");
    // shared_storage.get('results', {}) == {}
    assert!(!shared.contains_key("results"));
}

#[test]
fn single_item() {
    let shared = store(json!({"single": 5}));
    BatchFlow::new(single(DataProcessNode), one_entry_per_key).run(&shared).expect("flow runs");
    assert_eq!(value(&shared, "results"), json!({"single": 10}));
}

#[test]
fn error_handling() {
    let shared = store(json!({"normal_key": 1, "error_key": 2, "another_key": 3}));
    let err = BatchFlow::new(single(ErrorProcessNode), one_entry_per_key).run(&shared).expect_err("a ValueError");
    let value_error = err.downcast_ref::<ValueError>().expect("the ValueError the node raised");
    assert_eq!(value_error.0, "Error processing key: error_key");
    assert_eq!(err.phase(), Some(Phase::Prep));
}

#[test]
fn nested_flow() {
    // Python writes `shared` from `exec` through a closure over the test's
    // dict; a Rust `exec` cannot see the store, so the writes are in `post`.
    struct InnerNode;
    impl Node for InnerNode {
        type Prep = ();
        type Exec = ();
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
        fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
            let key: String = ctx.params().get_as("key")?;
            map_insert(shared, "intermediate_results", &key, input(shared, &key)? + 1);
            Ok(Action::NONE)
        }
    }

    struct OuterNode;
    impl Node for OuterNode {
        type Prep = ();
        type Exec = ();
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
        fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
            let key: String = ctx.params().get_as("key")?;
            let intermediate = value(shared, "intermediate_results")[key.as_str()].as_i64().ok_or("missing")?;
            map_insert(shared, "results", &key, intermediate * 2);
            Ok(Action::NONE)
        }
    }

    let mut flow = Flow::new();
    let inner = flow.start(InnerNode);
    let outer = flow.add(OuterNode);
    flow.link(inner >> outer);

    let shared = store(json!({"x": 1, "y": 2}));
    BatchFlow::new(flow, one_entry_per_key).run(&shared).expect("flow runs");
    assert_eq!(value(&shared, "results"), json!({"x": 4, "y": 6}));
}

#[test]
fn custom_parameters() {
    struct CustomParamNode;
    impl Node for CustomParamNode {
        type Prep = ();
        type Exec = ();
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
        // Python does this in `exec`; see `nested_flow`.
        fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
            let key: String = ctx.params().get_as("key")?;
            let multiplier: i64 = ctx.params().get_as("multiplier").unwrap_or(1);
            map_insert(shared, "results", &key, input(shared, &key)? * multiplier);
            Ok(Action::NONE)
        }
    }

    fn with_multipliers(_: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Params>, BoxError> {
        let data = value(shared, "input_data");
        let keys = data.as_object().ok_or("input_data is not a map")?.keys();
        Ok(keys.enumerate().map(|(i, k)| Params::new().with("key", k.as_str()).with("multiplier", i + 1)).collect())
    }

    let shared = store(json!({"a": 1, "b": 2, "c": 3}));
    BatchFlow::new(single(CustomParamNode), with_multipliers).run(&shared).expect("flow runs");
    assert_eq!(value(&shared, "results"), json!({"a": 1, "b": 4, "c": 9}));
}

#[test]
fn nested_batch_flow() {
    struct ItemNode;
    impl Node for ItemNode {
        type Prep = i64;
        type Exec = i64;
        fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<i64, BoxError> {
            let group: String = ctx.params().get_as("group")?;
            let item: usize = ctx.params().get_as("item")?;
            value(shared, "groups")[group.as_str()][item].as_i64().ok_or_else(|| "missing item".into())
        }
        fn exec(&self, _: &Ctx<'_>, n: &i64) -> Result<i64, BoxError> {
            Ok(n * 2)
        }
        fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, _: i64, doubled: i64) -> Result<Action, BoxError> {
            let group: String = ctx.params().get_as("group")?;
            map_list_push(shared, "results", &group, doubled);
            Ok(Action::NONE)
        }
    }

    // InnerBatchFlow.prep reads its own `self.params['group']`, which the
    // outer batch flow set: `common::group_items_prep`.

    let inner = BatchFlow::new(single(ItemNode), group_items_prep);
    let mut outer_graph = Flow::new();
    outer_graph.start(inner);
    let outer = BatchFlow::new(outer_graph, groups_prep);

    let shared = SharedStore::from_iter([("groups", json!({"A": [1, 2], "B": [3, 4]}))]);
    outer.run(&shared).expect("flow runs");
    assert_eq!(value(&shared, "results"), json!({"A": [2, 4], "B": [6, 8]}));
}

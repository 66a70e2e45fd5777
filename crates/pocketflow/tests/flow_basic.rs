//! Port of PocketFlow's `tests/test_flow_basic.py`.
//!
//! Python tests (8): test_start_method_initialization,
//! test_start_method_chaining, test_sequence_with_rshift,
//! test_branching_positive, test_branching_negative,
//! test_cycle_until_negative_ends_with_signal,
//! test_flow_ends_warning_default_missing,
//! test_flow_ends_warning_specific_missing.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{AddNode, MultiplyNode, NumberNode, current};
use pocketflow::{Action, BoxError, Ctx, Flow, FlowWarning, Node, SharedStore};

struct CheckPositiveNode;

impl Node for CheckPositiveNode {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        Ok(if shared.get::<i64>("current")? >= 0 { "positive".into() } else { "negative".into() })
    }
}

/// A placeholder node (Python's `NoOpNode`).
struct NoOpNode;

impl Node for NoOpNode {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Returns `"specific_action"` from `post` (Python's local `ActionNode`).
struct ActionNode;

impl Node for ActionNode {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
    fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        Ok("specific_action".into())
    }
}

struct EndSignalNode(&'static str);

impl Node for EndSignalNode {
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
fn start_method_initialization() {
    let mut flow = Flow::new();
    flow.start(NumberNode(5));
    let shared = SharedStore::new();
    let last = flow.run(&shared).expect("flow runs");
    assert_eq!(current(&shared), 5);
    assert!(last.is_none());
}

#[test]
fn start_method_chaining() {
    let mut flow = Flow::new();
    let n5 = flow.start(NumberNode(5));
    let add = flow.add(AddNode(3));
    let mul = flow.add(MultiplyNode(2));
    flow.connect(n5, add).connect(add, mul);
    let shared = SharedStore::new();
    assert!(flow.run(&shared).expect("flow runs").is_none());
    assert_eq!(current(&shared), 16);
}

#[test]
fn sequence_with_rshift() {
    let mut flow = Flow::new();
    let n1 = flow.start(NumberNode(5));
    let n2 = flow.add(AddNode(3));
    let n3 = flow.add(MultiplyNode(2));
    flow.link(n1 >> n2 >> n3);
    let shared = SharedStore::new();
    assert!(flow.run(&shared).expect("flow runs").is_none());
    assert_eq!(current(&shared), 16);
}

/// Builds `NumberNode(start) >> check`, `positive -> +10`, `negative -> -20`.
fn branching_flow(start: i64) -> Flow {
    let mut flow = Flow::new();
    let n = flow.start(NumberNode(start));
    let check = flow.add(CheckPositiveNode);
    let add_if_positive = flow.add(AddNode(10));
    let add_if_negative = flow.add(AddNode(-20));
    flow.link(n >> check);
    flow.link(check.on("positive") >> add_if_positive);
    flow.link(check.on("negative") >> add_if_negative);
    flow
}

#[test]
fn branching_positive() {
    let shared = SharedStore::new();
    let last = branching_flow(5).run(&shared).expect("flow runs");
    assert_eq!(current(&shared), 15);
    assert!(last.is_none());
}

#[test]
fn branching_negative() {
    let shared = SharedStore::new();
    let last = branching_flow(-5).run(&shared).expect("flow runs");
    assert_eq!(current(&shared), -25);
    assert!(last.is_none());
}

#[test]
fn cycle_until_negative_ends_with_signal() {
    let mut flow = Flow::new();
    let n = flow.start(NumberNode(10));
    let check = flow.add(CheckPositiveNode);
    let sub = flow.add(AddNode(-3));
    let end = flow.add(EndSignalNode("cycle_done"));
    flow.link(n >> check);
    flow.link(check.on("positive") >> sub);
    flow.link(sub >> check);
    flow.link(check.on("negative") >> end);
    let shared = SharedStore::new();
    assert_eq!(flow.run(&shared).expect("flow runs"), "cycle_done");
    assert_eq!(current(&shared), -2);
}

#[test]
fn flow_ends_warning_default_missing() {
    let mut flow = Flow::new();
    let n = flow.start(NumberNode(5));
    let other = flow.add(NumberNode(0));
    flow.link(n.on("specific_action") >> other);
    let shared = SharedStore::new();
    let report = flow.run_report(&shared).expect("flow runs");
    assert!(report.action.is_none());
    assert_eq!(report.warnings.len(), 1);
    assert!(matches!(report.warnings[0], FlowWarning::MissingSuccessor { .. }));
    assert_eq!(report.warnings[0].to_string(), "Flow ends: 'None' not found in ['specific_action']");
}

#[test]
fn flow_ends_warning_specific_missing() {
    let mut flow = Flow::new();
    let start = flow.start(ActionNode);
    let next = flow.add(NoOpNode);
    flow.link(start >> next);
    let shared = SharedStore::new();
    let report = flow.run_report(&shared).expect("flow runs");
    assert_eq!(report.action, "specific_action");
    assert_eq!(report.warnings.len(), 1);
    assert!(matches!(report.warnings[0], FlowWarning::MissingSuccessor { .. }));
    assert_eq!(report.warnings[0].to_string(), "Flow ends: 'specific_action' not found in ['default']");
}

//! Port of PocketFlow's `tests/test_flow_composition.py`.
//!
//! Python tests (4): test_flow_as_node, test_nested_flow,
//! test_flow_chaining_flows, test_composition_with_action_propagation.
//!
//! In Python a flow's successors are set on the flow object (`f1 >> add`)
//! and followed by whichever flow runs it. In Rust the flow is moved into its
//! parent with `parent.add(flow)`/`parent.start(flow)`, and its successors are
//! edges from that `NodeId` in the parent.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{AddNode, MultiplyNode, NumberNode, current};
use pocketflow::{Action, BoxError, Ctx, Flow, Node, SharedStore};

/// Stores its signal in `last_signal_emitted` and returns it from `post`.
struct SignalNode(&'static str);

impl Node for SignalNode {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        shared.set("last_signal_emitted", self.0)?;
        Ok(self.0.into())
    }
}

/// Records which outer path was taken in `path_taken`.
struct PathNode(&'static str);

impl Node for PathNode {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        shared.set("path_taken", self.0)?;
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

#[test]
fn flow_as_node() {
    // f1 = Flow(start=NumberNode(5)); f1 >> AddNode(10) >> MultiplyNode(2)
    let mut f1 = Flow::new();
    f1.start(NumberNode(5));
    // f2 = Flow(start=f1): f2 runs f1, then follows f1's successors.
    let mut f2 = Flow::new();
    let f1 = f2.start(f1);
    let add = f2.add(AddNode(10));
    let mul = f2.add(MultiplyNode(2));
    f2.link(f1 >> add >> mul);
    // f3 = Flow(start=f2)
    let mut f3 = Flow::new();
    f3.start(f2);

    let shared = SharedStore::new();
    f3.run(&shared).expect("flow runs");
    assert_eq!(current(&shared), 30);
}

#[test]
fn nested_flow() {
    // inner_flow = Flow(start=NumberNode(5)); inner_flow >> AddNode(3)
    let mut inner = Flow::new();
    inner.start(NumberNode(5));
    // middle_flow = Flow(start=inner_flow); middle_flow >> MultiplyNode(4)
    let mut middle = Flow::new();
    let inner = middle.start(inner);
    let add = middle.add(AddNode(3));
    middle.link(inner >> add);
    // wrapper_flow = Flow(start=middle_flow)
    let mut wrapper = Flow::new();
    let middle = wrapper.start(middle);
    let mul = wrapper.add(MultiplyNode(4));
    wrapper.link(middle >> mul);

    let shared = SharedStore::new();
    wrapper.run(&shared).expect("flow runs");
    assert_eq!(current(&shared), 32);
}

#[test]
fn flow_chaining_flows() {
    // flow1: NumberNode(10) >> AddNode(10)
    let mut flow1 = Flow::new();
    let n = flow1.start(NumberNode(10));
    let add = flow1.add(AddNode(10));
    flow1.link(n >> add);
    // flow2: MultiplyNode(2)
    let mut flow2 = Flow::new();
    flow2.start(MultiplyNode(2));
    // flow1 >> flow2; wrapper_flow = Flow(start=flow1)
    let mut wrapper = Flow::new();
    let flow1 = wrapper.start(flow1);
    let flow2 = wrapper.add(flow2);
    wrapper.link(flow1 >> flow2);

    let shared = SharedStore::new();
    wrapper.run(&shared).expect("flow runs");
    assert_eq!(current(&shared), 40);
}

#[test]
fn composition_with_action_propagation() {
    let mut inner = Flow::new();
    let start = inner.start(NumberNode(100));
    let end = inner.add(SignalNode("inner_done"));
    inner.link(start >> end);

    let mut outer = Flow::new();
    let inner = outer.start(inner);
    let path_a = outer.add(PathNode("A"));
    let path_b = outer.add(PathNode("B"));
    outer.link(inner.on("inner_done") >> path_b);
    outer.link(inner.on("other_action") >> path_a);

    let shared = SharedStore::new();
    let last = outer.run(&shared).expect("flow runs");
    assert_eq!(current(&shared), 100);
    assert_eq!(shared.get::<String>("last_signal_emitted").unwrap(), "inner_done");
    assert_eq!(shared.get::<String>("path_taken").unwrap(), "B");
    assert!(last.is_none());
}

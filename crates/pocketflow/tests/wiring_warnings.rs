//! Wiring mistakes and what PocketFlow reports as `UserWarning`s.
//!
//! - Overwriting a successor is a `FlowWarning::OverwrittenSuccessor` in
//!   `flow.warnings()`; the new successor replaces the old one.
//! - A `NodeId` from another flow makes `run()` return
//!   `FlowError::InvalidGraph` (nothing runs, nothing panics).
//! - A flow with no start node returns `Action::NONE` with a `NoStartNode`
//!   warning.
//! - Run-time warnings (`MissingSuccessor`, `NoStartNode`) from nested flows
//!   and from every run of a batch flow reach the top-level `RunReport`.
//! - An action with no successors at all ends the flow silently; the empty
//!   action routes like `None`, to `"default"`.
//! - A report keeps the first `MAX_KEPT_WARNINGS` warnings of a run and
//!   counts every one by kind, so a loop that warns on every turn does not
//!   grow it.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{AddNode, NumberNode, current};
use std::sync::atomic::{AtomicUsize, Ordering};

use pocketflow::{
    Action, AsyncFlow, AsyncParallelBatchFlow, BatchFlow, BoxError, Ctx, Flow, FlowError, FlowWarning,
    MAX_KEPT_WARNINGS, Node, Params, SharedStore,
};

/// Returns a fixed action.
struct Returns(Action);

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
        Ok(self.0.clone())
    }
}

// --- Overwritten successors ---

#[test]
fn overwriting_a_successor_warns_and_the_new_one_wins() {
    let mut flow = Flow::new();
    let start = flow.start(NumberNode(1));
    let old = flow.add(AddNode(10));
    let new = flow.add(AddNode(100));
    flow.link(start >> old);
    assert!(flow.warnings().is_empty());
    flow.link(start >> new);

    let expected = FlowWarning::OverwrittenSuccessor { node: "NumberNode".into(), action: "default".into() };
    assert_eq!(flow.warnings(), [expected]);
    assert_eq!(flow.warnings()[0].kind(), "overwritten_successor");
    assert_eq!(flow.warnings()[0].to_string(), "Overwriting successor for action 'default'");

    let shared = SharedStore::new();
    let report = flow.run_report(&shared).unwrap();
    assert_eq!(current(&shared), 101, "the new successor ran, the old one did not");
    assert!(report.warnings.is_empty(), "wiring warnings stay on the flow, not in the run report");
}

#[test]
fn overwriting_a_named_action_warns_with_that_action_and_node_name() {
    let mut flow = AsyncFlow::<SharedStore>::new();
    let check = flow.add_named("checker", Returns("go".into()));
    let a = flow.add(NumberNode(1));
    let b = flow.add(NumberNode(2));
    flow.connect_on(check, "go", a);
    flow.connect_on(check, "stop", b);
    flow.link(check.on("go") >> b);
    assert_eq!(flow.warnings(), [FlowWarning::OverwrittenSuccessor { node: "checker".into(), action: "go".into() }]);
    assert_eq!(flow.warnings()[0].to_string(), "Overwriting successor for action 'go'");
}

// --- Node ids from another flow ---

#[test]
fn a_node_id_from_another_flow_is_an_invalid_graph_error() {
    let mut other = Flow::new();
    let foreign = other.add(AddNode(100)); // index 0, like `start` below

    let mut flow = Flow::named("Mine");
    let start = flow.start(NumberNode(1));
    flow.link(start >> foreign);

    let shared = SharedStore::new();
    let err = flow.run(&shared).expect_err("the graph is invalid");
    let FlowError::InvalidGraph { flow: name, reason } = &err else { panic!("{err:?}") };
    assert_eq!(name, "Mine");
    assert!(reason.contains("belongs to another flow"), "{reason}");
    assert_eq!(err.node(), "Mine");
    assert_eq!(err.phase(), None);
    assert!(!shared.contains_key("current"), "nothing ran");
    // The other flow is unaffected.
    other.set_start(foreign);
    shared.set("current", 1).unwrap();
    other.run(&shared).unwrap();
    assert_eq!(current(&shared), 101);
}

#[tokio::test]
async fn a_foreign_start_node_in_an_async_flow_is_an_invalid_graph_error() {
    let mut other = AsyncFlow::<SharedStore>::new();
    let foreign = other.add(NumberNode(5));
    let mut flow = AsyncFlow::<SharedStore>::named("Mine");
    flow.add(NumberNode(1));
    flow.set_start(foreign);
    let shared = SharedStore::new();
    let err = flow.run(&shared).await.expect_err("the graph is invalid");
    assert!(
        matches!(&err, FlowError::InvalidGraph { flow, reason } if flow == "Mine" && reason.contains("start")),
        "{err:?}"
    );
    assert!(!shared.contains_key("current"));
}

#[test]
fn an_invalid_nested_flow_fails_its_parent() {
    let mut stray = Flow::new();
    let foreign = stray.add(AddNode(1));
    let mut inner = Flow::named("Inner");
    let n = inner.start(NumberNode(1));
    inner.connect(n, foreign);

    let mut outer = Flow::named("Outer");
    let first = outer.start(NumberNode(7));
    let inner = outer.add(inner);
    outer.link(first >> inner);
    let shared = SharedStore::new();
    let err = outer.run(&shared).expect_err("the nested graph is invalid");
    assert!(matches!(&err, FlowError::InvalidGraph { flow, .. } if flow == "Inner"), "{err:?}");
    assert_eq!(current(&shared), 7, "the outer flow ran up to the invalid one");
}

// --- No start node ---

#[test]
fn a_flow_without_a_start_node_does_nothing_and_warns() {
    let mut flow = Flow::named("Empty");
    flow.add(NumberNode(1)); // added, but never made the start
    let shared = SharedStore::new();
    let report = flow.run_report(&shared).unwrap();
    assert!(report.action.is_none());
    assert_eq!(report.warnings, [FlowWarning::NoStartNode { flow: "Empty".into() }]);
    assert_eq!(report.warnings[0].kind(), "no_start_node");
    assert_eq!(report.warnings[0].to_string(), "Flow 'Empty' has no start node; nothing ran");
    assert!(!shared.contains_key("current"));
}

#[tokio::test]
async fn an_async_flow_without_a_start_node_does_nothing_and_warns() {
    let flow = AsyncFlow::<SharedStore>::new();
    let report = flow.run_report(&SharedStore::new()).await.unwrap();
    assert!(report.action.is_none());
    assert_eq!(report.warnings, [FlowWarning::NoStartNode { flow: "AsyncFlow".into() }]);
}

#[test]
fn an_empty_nested_flow_warns_and_the_parent_goes_on() {
    let mut outer = Flow::new();
    let empty = outer.start(Flow::named("Hollow"));
    let after = outer.add(NumberNode(3));
    outer.link(empty >> after);
    let shared = SharedStore::new();
    let report = outer.run_report(&shared).unwrap();
    assert_eq!(current(&shared), 3);
    assert_eq!(report.warnings, [FlowWarning::NoStartNode { flow: "Hollow".into() }]);
}

// --- Missing successors ---

#[test]
fn missing_successor_warnings_from_a_nested_flow_reach_the_top_level_report() {
    let mut inner = Flow::new();
    let signal = inner.add_named("signaller", Returns("unexpected".into()));
    inner.set_start(signal);
    let next = inner.add(NumberNode(1));
    inner.connect_on(signal, "expected", next);
    inner.connect_on(signal, "also_expected", next);

    let mut outer = Flow::new();
    let inner = outer.start(inner);
    let on_unexpected = outer.add(NumberNode(42));
    outer.link(inner.on("unexpected") >> on_unexpected);

    let shared = SharedStore::new();
    let report = outer.run_report(&shared).unwrap();
    assert_eq!(current(&shared), 42, "the parent routed on the inner flow's last action");
    assert_eq!(
        report.warnings,
        [FlowWarning::MissingSuccessor {
            node: "signaller".into(),
            action: "unexpected".into(),
            available: vec!["expected".into(), "also_expected".into()],
        }]
    );
    assert_eq!(report.warnings[0].to_string(), "Flow ends: 'unexpected' not found in ['expected', 'also_expected']");
    assert_eq!(report.warnings[0].kind(), "missing_successor");
}

#[test]
fn a_parent_warns_when_a_nested_flows_result_has_no_successor() {
    let mut inner = Flow::named("Inner");
    inner.start(NumberNode(1)); // the inner flow's result: Action::NONE
    let mut outer = Flow::new();
    let inner = outer.start(inner);
    let next = outer.add(NumberNode(2));
    outer.link(inner.on("x") >> next);
    let shared = SharedStore::new();
    let report = outer.run_report(&shared).unwrap();
    assert_eq!(current(&shared), 1);
    assert_eq!(report.warnings.len(), 1);
    assert!(matches!(&report.warnings[0], FlowWarning::MissingSuccessor { node, .. } if node == "Inner"));
    assert_eq!(report.warnings[0].to_string(), "Flow ends: 'None' not found in ['x']");
}

#[test]
fn a_nested_flows_wiring_warnings_move_to_its_parent() {
    // Wiring warnings stay visible after the flow is moved into its parent:
    // the parent adopts them. They are wiring-time warnings, so runs do not
    // report them again.
    let mut inner = Flow::named("Inner");
    let a = inner.start(NumberNode(1));
    let b = inner.add(NumberNode(2));
    inner.connect(a, b).connect(a, b);
    assert_eq!(inner.warnings().len(), 1);
    let mut outer = Flow::new();
    outer.start(inner);
    assert_eq!(outer.warnings().len(), 1);
    assert!(
        matches!(&outer.warnings()[0], FlowWarning::OverwrittenSuccessor { node, action } if node == "NumberNode" && action == "default")
    );
    assert!(outer.run_report(&SharedStore::new()).unwrap().warnings.is_empty());
}

#[test]
fn every_batch_run_reports_its_own_warning() {
    let mut graph = Flow::new();
    let s = graph.start(Returns("nowhere".into()));
    let n = graph.add(NumberNode(1));
    graph.link(s >> n);
    let batch = BatchFlow::new(graph, |_: &Ctx<'_>, _: &SharedStore| -> Result<Vec<Params>, BoxError> {
        Ok(vec![Params::new(); 3])
    });
    let report = batch.run_report(&SharedStore::new()).unwrap();
    assert_eq!(report.warnings.len(), 3);
    assert!(report.warnings.iter().all(|w| w.to_string() == "Flow ends: 'nowhere' not found in ['default']"));
}

#[tokio::test]
async fn every_parallel_batch_run_reports_its_own_warning() {
    let mut graph = AsyncFlow::new();
    let s = graph.start(Returns(Action::NONE));
    let n = graph.add(NumberNode(1));
    graph.connect_on(s, "only", n);
    let batch = AsyncParallelBatchFlow::new(graph, |_: &Ctx<'_>, _: &SharedStore| -> Result<Vec<Params>, BoxError> {
        Ok((0..5).map(|i| Params::new().with("i", i)).collect())
    });
    let report = batch.run_report(&SharedStore::new()).await.unwrap();
    assert_eq!(report.warnings.len(), 5);
    assert!(report.warnings.iter().all(|w| w.to_string() == "Flow ends: 'None' not found in ['only']"));
}

#[test]
fn an_action_with_no_successors_at_all_ends_the_flow_silently() {
    let mut flow = Flow::new();
    let n = flow.start(NumberNode(1));
    let last = flow.add(Returns("anything".into()));
    flow.link(n >> last);
    let report = flow.run_report(&SharedStore::new()).unwrap();
    assert_eq!(report.action, "anything", "the flow returns the last action, raw");
    assert!(report.warnings.is_empty());
}

#[test]
fn the_empty_action_routes_to_default_and_is_returned_raw() {
    let mut flow = Flow::new();
    let empty = flow.start(Returns(Action::new("")));
    let set = flow.add(NumberNode(9));
    let last = flow.add(Returns(Action::new("")));
    flow.link(empty >> set >> last);
    let shared = SharedStore::new();
    let report = flow.run_report(&shared).unwrap();
    assert_eq!(current(&shared), 9, "\"\" followed the default edge");
    // The flow's result is the last action as returned: "", not None and
    // not "default".
    assert_eq!(report.action, "");
    assert!(report.warnings.is_empty());
}

/// Python's spelling, `a - "action" >> b`, builds the same edge as
/// `a.on("action") >> b` (clippy's `precedence` lint wants the parentheses).
#[test]
fn python_minus_spelling_builds_the_same_edge() {
    let mut flow = Flow::new();
    let a = flow.start(NumberNode(1));
    let b = flow.add(AddNode(10));
    assert_eq!((a - "go") >> b, a.on("go") >> b);
    flow.link((a - "go") >> b);
    assert!(flow.warnings().is_empty());
}

/// Returns `again` until it has run `left` times, then `stop`.
struct Countdown {
    left: AtomicUsize,
}

impl Node for Countdown {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
    fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        Ok(if self.left.fetch_sub(1, Ordering::Relaxed) > 1 { "again".into() } else { "stop".into() })
    }
}

#[test]
fn a_loop_that_warns_every_turn_keeps_the_first_warnings_and_counts_them_all() {
    const TURNS: usize = 3 * MAX_KEPT_WARNINGS;
    // Inner: the countdown, whose only successor is for "elsewhere", so each
    // turn warns; Loop: Inner -again-> Inner, so the last turn ("stop")
    // warns there too.
    let mut inner = Flow::named("Inner");
    let countdown = inner.start(Countdown { left: AtomicUsize::new(TURNS) });
    let number = inner.add(NumberNode(1));
    inner.connect_on(countdown, "elsewhere", number);
    let mut outer = Flow::named("Loop");
    let inner = outer.start(inner);
    outer.connect_on(inner, "again", inner);

    let report = outer.run_report(&SharedStore::new()).unwrap();
    assert_eq!(report.action, "stop");
    assert_eq!(report.warnings.len(), MAX_KEPT_WARNINGS);
    assert_eq!(report.warnings[0].to_string(), "Flow ends: 'again' not found in ['elsewhere']");
    let counts = &report.warning_counts;
    let total = TURNS as u64 + 1;
    assert_eq!(counts.total, total);
    assert_eq!(counts.not_kept, total - MAX_KEPT_WARNINGS as u64);
    assert_eq!(counts.of_kind("missing_successor"), total);
    assert_eq!(counts.by_kind.len(), 1, "{counts:?}");
}

#[test]
fn a_report_with_few_warnings_keeps_them_all_and_counts_them_by_kind() {
    let report = Flow::<SharedStore>::named("Empty").run_report(&SharedStore::new()).unwrap();
    assert_eq!(report.warnings.len(), 1);
    assert_eq!((report.warning_counts.total, report.warning_counts.not_kept), (1, 0));
    assert_eq!(report.warning_counts.of_kind("no_start_node"), 1);
}

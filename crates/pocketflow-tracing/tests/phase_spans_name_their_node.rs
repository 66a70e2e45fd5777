//! Exported phase spans carry their node's name: `Fetch.exec`, not `exec`,
//! so that Langfuse's flat list of observations and Jaeger's list of
//! operations tell one node's attempts from another's. The owner is the
//! nearest `node` or `flow` span: an `exec` under an item of the batch node
//! `Classify` is `Classify.exec`, a flow's own hooks are `<flow>.prep`. The
//! phase alone stays in `pocketflow.span`; user spans keep their names.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::borrow::Cow;

use pocketflow::{
    Action, AsyncFlow, AsyncFlowHooks, BatchFlow, BatchFlowHooks, BatchNode, BoxError, Ctx, Flow, Node, Params,
    SharedStore,
};
use pocketflow_test_support::otlp::{ReceivedSpan, ReceivedTrace};

use common::{MarkerNode, all_spans, block_on, export, span_named, store};

/// The phase a span records in `pocketflow.span`.
fn phase(span: &ReceivedSpan) -> &str {
    span.attr_str("pocketflow.span").unwrap_or_default()
}

/// `(name, pocketflow.span)` of `parent`'s children, in order.
fn children(trace: &ReceivedTrace, parent: &ReceivedSpan) -> Vec<(String, String)> {
    trace.children(&parent.span_id).iter().map(|s| (s.name.clone(), phase(s).to_owned())).collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(name, phase)| ((*name).to_owned(), (*phase).to_owned())).collect()
}

/// Fails its only attempt; the fallback answers; calls a user function
/// from `exec`.
struct Flaky;

impl Node for Flaky {
    type Prep = ();
    type Exec = ();

    fn name(&self) -> Cow<'static, str> {
        "Flaky".into()
    }

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        let _user = tracing::info_span!("call_model").entered();
        Err("model timed out".into())
    }

    fn exec_fallback(&self, _: &Ctx<'_>, (): &(), _: BoxError) -> Result<(), BoxError> {
        Ok(())
    }

    fn post(&self, _: &Ctx<'_>, _: &SharedStore, (): (), (): ()) -> Result<Action, BoxError> {
        Ok(Action::NONE)
    }
}

#[test]
fn a_sync_nodes_phases_are_named_after_it_and_user_spans_keep_their_names() {
    let ((), traces) = export(
        |b| b,
        || {
            let mut flow = Flow::named("Pipeline");
            let fetch = flow.start(MarkerNode("FetchSources"));
            let flaky = flow.add(Flaky);
            flow.link(fetch >> flaky);
            flow.run(&store("m")).unwrap();
        },
    );
    assert_eq!(traces.len(), 1);
    let trace = &traces[0];
    let tree = trace.tree();

    let fetch = span_named(&traces, "FetchSources");
    assert_eq!(
        children(trace, fetch),
        pairs(&[("FetchSources.prep", "prep"), ("FetchSources.exec", "exec"), ("FetchSources.post", "post")]),
        "{tree}"
    );
    let flaky = span_named(&traces, "Flaky");
    assert_eq!(
        children(trace, flaky),
        pairs(&[
            ("Flaky.prep", "prep"),
            ("Flaky.exec", "exec"),
            ("Flaky.fallback", "fallback"),
            ("Flaky.post", "post")
        ]),
        "{tree}"
    );
    // The flow and its nodes keep their own names; a user span inside exec
    // keeps its name too, and has no `pocketflow.span`.
    assert_eq!(span_named(&traces, "Pipeline").attr_str("pocketflow.span"), Some("flow"));
    assert_eq!(fetch.attr_str("pocketflow.span"), Some("node"));
    let user = span_named(&traces, "call_model");
    assert_eq!(trace.path(user), ["Pipeline", "Flaky", "Flaky.exec", "call_model"], "{tree}");
    assert_eq!(user.attr_str("pocketflow.span"), None);
    // No phase is exported under its bare name any more.
    for span in &trace.spans {
        assert!(!["prep", "exec", "fallback", "post", "item"].contains(&span.name.as_str()), "{tree}");
    }
}

/// A batch node of two items.
struct Classify;

impl BatchNode for Classify {
    type Item = u32;
    type Output = u32;

    fn name(&self) -> Cow<'static, str> {
        "Classify".into()
    }

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u32>, BoxError> {
        Ok(vec![1, 2])
    }

    fn exec(&self, _: &Ctx<'_>, item: &u32) -> Result<u32, BoxError> {
        Ok(item * 2)
    }
}

#[test]
fn a_batch_nodes_items_and_the_attempts_under_them_are_named_after_the_node() {
    let ((), traces) = export(
        |b| b,
        || {
            let mut flow = Flow::named("Triage");
            flow.start(Classify);
            flow.run(&SharedStore::new()).unwrap();
        },
    );
    let trace = &traces[0];
    let tree = trace.tree();
    let classify = span_named(&traces, "Classify");
    assert_eq!(
        children(trace, classify),
        pairs(&[
            ("Classify.prep", "prep"),
            ("Classify.item", "item"),
            ("Classify.item", "item"),
            ("Classify.post", "post")
        ]),
        "{tree}"
    );
    let items: Vec<&ReceivedSpan> = trace.spans.iter().filter(|s| phase(s) == "item").collect();
    assert_eq!(items.len(), 2, "{tree}");
    for item in items {
        assert_eq!(children(trace, item), pairs(&[("Classify.exec", "exec")]), "an exec under an item: {tree}");
    }
}

/// Hooks of an `AsyncFlow`: `prep` and `post` do work of their own.
struct Hooks;

impl AsyncFlowHooks for Hooks {
    type Prep = u32;

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<u32, BoxError> {
        Ok(7)
    }

    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: u32, last: Action) -> Result<Action, BoxError> {
        Ok(last)
    }
}

/// One parameter set per letter.
struct PerLetter;

impl BatchFlowHooks for PerLetter {
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<Params>, BoxError> {
        Ok(["a", "b"].into_iter().map(|letter| Params::new().with("letter", letter)).collect())
    }
}

#[test]
fn a_flows_own_hooks_and_items_are_named_after_the_flow() {
    let ((), traces) = export(
        |b| b,
        || {
            let mut flow = AsyncFlow::named("Research").with_hooks(Hooks);
            flow.start(common::AsyncMarkerNode("Summarize"));
            block_on(flow.run(&store("m"))).unwrap();

            let mut inner = Flow::named("PerFile");
            inner.start(MarkerNode("Load"));
            BatchFlow::new(inner, PerLetter).run(&store("m")).unwrap();
        },
    );
    assert_eq!(traces.len(), 2);

    let research = span_named(&traces, "Research");
    let trace = traces.iter().find(|t| t.trace_id == research.trace_id).unwrap();
    assert_eq!(
        children(trace, research),
        pairs(&[("Research.prep", "prep"), ("Summarize", "node"), ("Research.post", "post")]),
        "{}",
        trace.tree()
    );
    let summarize = span_named(&traces, "Summarize");
    assert_eq!(
        children(trace, summarize),
        pairs(&[("Summarize.prep", "prep"), ("Summarize.exec", "exec"), ("Summarize.post", "post")]),
        "{}",
        trace.tree()
    );

    let batch = span_named(&traces, "PerFile");
    let trace = traces.iter().find(|t| t.trace_id == batch.trace_id).unwrap();
    let tree = trace.tree();
    assert_eq!(
        children(trace, batch),
        pairs(&[
            ("PerFile.prep", "prep"),
            ("PerFile.item", "item"),
            ("PerFile.item", "item"),
            ("PerFile.post", "post")
        ]),
        "{tree}"
    );
    // A node run for an item owns its own phases.
    let loads: Vec<&ReceivedSpan> = all_spans(&traces).filter(|s| s.name == "Load").collect();
    assert_eq!(loads.len(), 2, "{tree}");
    for load in loads {
        assert_eq!(trace.parent(load).map(|p| p.name.as_str()), Some("PerFile.item"), "{tree}");
        assert_eq!(
            children(trace, load),
            pairs(&[("Load.prep", "prep"), ("Load.exec", "exec"), ("Load.post", "post")]),
            "{tree}"
        );
    }
}

#[test]
fn with_exec_switched_off_a_nested_flow_under_it_still_names_its_own_phases() {
    // `Outer`'s node runs the flow `Inner` from its exec, which is not
    // recorded: `Inner` hangs from the node, and its phases are its nodes'.
    struct RunsInner;

    impl Node for RunsInner {
        type Prep = ();
        type Exec = ();

        fn name(&self) -> Cow<'static, str> {
            "RunsInner".into()
        }

        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }

        fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
            let mut inner = Flow::named("Inner");
            inner.start(MarkerNode("Load"));
            inner.run(&store("m"))?;
            Ok(())
        }

        fn post(&self, _: &Ctx<'_>, _: &SharedStore, (): (), (): ()) -> Result<Action, BoxError> {
            Ok(Action::NONE)
        }
    }

    let ((), traces) = export(
        |b| b.trace_exec(false),
        || {
            let mut outer = Flow::named("Outer");
            outer.start(RunsInner);
            outer.run(&SharedStore::new()).unwrap();
        },
    );
    let trace = &traces[0];
    let tree = trace.tree();
    let runs_inner = span_named(&traces, "RunsInner");
    assert_eq!(
        children(trace, runs_inner),
        pairs(&[("RunsInner.prep", "prep"), ("Inner", "flow"), ("RunsInner.post", "post")]),
        "{tree}"
    );
    let load = span_named(&traces, "Load");
    assert_eq!(children(trace, load), pairs(&[("Load.prep", "prep"), ("Load.post", "post")]), "{tree}");
}

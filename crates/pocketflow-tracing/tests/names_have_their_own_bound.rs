//! Names (of spans, flows, nodes, the trace) are bounded by
//! `MAX_NAME_BYTES`, not by the payload cap: a tiny
//! `POCKETFLOW_MAX_PAYLOAD_BYTES` cuts inputs and outputs but leaves names,
//! and the run's identifiers, whole; a name longer than the bound is cut on
//! a character boundary and marked.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::borrow::Cow;

use pocketflow::{Action, BoxError, Ctx, Flow, Node, RunOptions, SharedStore, TraceParent};
use pocketflow_tracing::MAX_NAME_BYTES;

use common::{MarkerNode, export, span_named, store};

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A node named at run time.
struct Named(String);

impl Node for Named {
    type Prep = ();
    type Exec = ();

    fn name(&self) -> Cow<'static, str> {
        Cow::Owned(self.0.clone())
    }

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        Ok(())
    }

    fn post(&self, _: &Ctx<'_>, _: &SharedStore, (): (), (): ()) -> Result<Action, BoxError> {
        Ok(Action::NONE)
    }
}

#[test]
fn a_tiny_payload_cap_cuts_inputs_but_not_names_or_run_identifiers() {
    let ((), traces) = export(
        |b| b.max_payload_bytes(5),
        || {
            let mut flow = Flow::named("SupportTicketTriage");
            let classify = flow.start(MarkerNode("ClassifyTicket"));
            let answer = flow.add(MarkerNode("AnswerCustomer"));
            flow.link(classify >> answer);
            let options =
                RunOptions::new().session_id("session-0123456789").parent(CALLER.parse::<TraceParent>().unwrap());
            flow.run_with(&store("a-long-marker"), options).unwrap();
        },
    );
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "the traceparent was not cut");
    let flow = span_named(&traces, "SupportTicketTriage");
    assert_eq!(flow.attr_str("pocketflow.flow.name"), Some("SupportTicketTriage"));
    for span in &traces[0].spans {
        assert_eq!(span.attr_str("langfuse.trace.name"), Some("SupportTicketTriage"), "{}", span.name);
        assert_eq!(span.attr_str("langfuse.session.id"), Some("session-0123456789"), "{}", span.name);
    }
    for name in ["ClassifyTicket", "AnswerCustomer"] {
        let node = span_named(&traces, name);
        assert_eq!(node.attr_str("pocketflow.node.name"), Some(name));
        let input = node.attr_str("langfuse.observation.input").unwrap();
        assert!(input.starts_with("\"a-lo…[truncated"), "the payload cap still applies to inputs: {input}");
    }
}

#[test]
fn a_name_longer_than_the_bound_is_cut_on_a_character_boundary_and_marked() {
    // Two-byte characters, so that the bound falls inside one.
    let long = "é".repeat(MAX_NAME_BYTES);
    let short = "ü".repeat(MAX_NAME_BYTES / 2);
    let ((), traces) = export(
        |b| b,
        || {
            let mut flow = Flow::named(long.clone());
            let first = flow.start(Named(long.clone()));
            let second = flow.add(Named(short.clone()));
            flow.link(first >> second);
            flow.run(&SharedStore::new()).unwrap();
        },
    );
    let spans: Vec<_> = traces.iter().flat_map(|t| &t.spans).collect();
    let cut: Vec<_> = spans
        .iter()
        .filter(|s| s.name.starts_with('é') && matches!(s.attr_str("pocketflow.span"), Some("flow" | "node")))
        .collect();
    assert_eq!(cut.len(), 2, "the flow and its first node");
    for span in cut {
        assert!(span.name.len() <= MAX_NAME_BYTES, "{} bytes", span.name.len());
        assert!(span.name.len() > MAX_NAME_BYTES - 8, "cut near the bound: {} bytes", span.name.len());
        let kept = span.name.strip_suffix('…').expect("marked as cut");
        assert!(long.starts_with(kept), "a prefix of the name");
        assert_eq!(span.attr_str("langfuse.trace.name"), Some(span.name.as_str()), "the trace name too");
    }
    let exact = span_named(&traces, &short);
    assert_eq!(exact.name.len(), MAX_NAME_BYTES, "a name of exactly the bound is kept whole");

    // A phase is named `<node>.<phase>` within the bound too: its node's
    // name is cut further (one mark), so that the phase still shows.
    let phases: Vec<_> = spans.iter().filter(|s| s.attr_str("pocketflow.span") == Some("exec")).collect();
    assert_eq!(phases.len(), 2, "one exec per node");
    for span in phases {
        assert!(span.name.len() <= MAX_NAME_BYTES, "{} bytes: {}", span.name.len(), span.name);
        let owner = span.name.strip_suffix(".exec").expect("named after its node");
        let kept = owner.strip_suffix('…').expect("the node's name, cut and marked once");
        assert!(!kept.ends_with('…'), "one mark: {}", span.name);
        assert!(kept.len() > MAX_NAME_BYTES - 16, "cut near the bound: {} bytes", span.name.len());
        let node = if kept.starts_with('é') { &long } else { &short };
        assert!(node.starts_with(kept), "a prefix of the node's name: {}", span.name);
    }
}

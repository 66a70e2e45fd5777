//! Traces that cross processes: a run's root span with a W3C `traceparent`
//! joins the caller's trace under the caller's span, following its
//! sampling decision; `links` become span links; and
//! `current_traceparent()` inside a run gives the context to send on, so
//! that a run started with it lands in the same trace.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use pocketflow::{Action, BoxError, Ctx, Flow, Node, SharedStore, TraceParent};
use pocketflow_test_support::otlp::AttrValue;
use pocketflow_tracing::Sampler;

use common::{export, span_named};

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const NOT_SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

/// A root `flow` span continuing `traceparent`, with one node in it.
fn run_with_parent(name: &str, traceparent: &str) {
    tracing::info_span!(target: "pocketflow", "flow", name, kind = "Flow", traceparent)
        .in_scope(|| tracing::info_span!(target: "pocketflow", "node", name = "Step", kind = "Node").in_scope(|| {}));
}

#[test]
fn a_root_with_a_traceparent_joins_the_callers_trace_under_the_callers_span() {
    let ((), traces) = export(|b| b, || run_with_parent("Continued", SAMPLED));
    assert_eq!(traces.len(), 1);
    let trace = &traces[0];
    assert_eq!(trace.trace_id, CALLER_TRACE, "{}", trace.tree());
    let root = span_named(&traces, "Continued");
    assert_eq!(root.parent_span_id.as_deref(), Some(CALLER_SPAN));
    assert_eq!(root.attr_str("pocketflow.context.remote_parent"), Some(SAMPLED));
    assert_eq!(root.attr("langfuse.internal.as_root"), Some(&AttrValue::Bool(true)));
    assert!(root.attr("traceparent").is_none(), "not left as a raw attribute");
    let step = span_named(&traces, "Step");
    assert_eq!(step.parent_span_id.as_deref(), Some(root.span_id.as_str()));
    assert!(step.attr("pocketflow.context.remote_parent").is_none(), "only on the root");
}

#[test]
fn a_remote_parent_that_did_not_sample_is_followed_and_nothing_of_the_run_is_recorded() {
    let ((), traces) = export(
        |b| b,
        || {
            run_with_parent("Dropped", NOT_SAMPLED);
            run_with_parent("Kept", SAMPLED);
        },
    );
    assert_eq!(traces.len(), 1, "only the sampled run");
    let names: Vec<&str> = traces[0].spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{}", traces[0].tree());
    assert!(names.contains(&"Kept") && names.contains(&"Step") && !names.contains(&"Dropped"), "{names:?}");
}

#[test]
fn a_sampled_remote_parent_is_recorded_even_when_the_local_sampler_drops_everything() {
    let ((), traces) = export(
        |b| b.sampler(Sampler::AlwaysOff),
        || {
            run_with_parent("Kept", SAMPLED);
            tracing::info_span!(target: "pocketflow", "flow", name = "Local", kind = "Flow").in_scope(|| {});
        },
    );
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].trace_id, CALLER_TRACE);
    assert_eq!(traces[0].spans.len(), 2, "{}", traces[0].tree());
}

#[test]
fn an_invalid_traceparent_is_ignored_and_the_run_starts_a_new_trace() {
    // Version ff is forbidden: the caller's ids in it must not be used.
    let invalid = format!("ff-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let ((), traces) = export(|b| b, || run_with_parent("Fresh", &invalid));
    assert_eq!(traces.len(), 1);
    assert_ne!(traces[0].trace_id, CALLER_TRACE);
    let root = span_named(&traces, "Fresh");
    assert_eq!(root.parent_span_id, None, "a root of its own");
    assert!(root.attr("pocketflow.context.remote_parent").is_none());
    assert_eq!(traces[0].roots().len(), 1);
}

#[test]
fn the_remote_parent_attribute_needs_trace_async_context_but_the_parent_is_honoured_without_it() {
    let ((), traces) = export(|b| b.trace_async_context(false), || run_with_parent("Continued", SAMPLED));
    assert_eq!(traces[0].trace_id, CALLER_TRACE);
    let root = span_named(&traces, "Continued");
    assert_eq!(root.parent_span_id.as_deref(), Some(CALLER_SPAN));
    assert!(root.attr("pocketflow.context.remote_parent").is_none());
}

#[test]
fn links_become_span_links_and_invalid_ones_are_skipped() {
    let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let links = format!("{SAMPLED} not-a-link {other}");
    let ((), traces) = export(
        |b| b,
        || {
            tracing::info_span!(target: "pocketflow", "flow", name = "Linked", kind = "Flow", links = links.as_str())
                .in_scope(|| {});
        },
    );
    let root = span_named(&traces, "Linked");
    assert_eq!(
        root.links,
        [
            (CALLER_TRACE.to_owned(), CALLER_SPAN.to_owned()),
            ("0af7651916cd43dd8448eb211c80319c".to_owned(), "b7ad6b7169203331".to_owned()),
        ]
    );
    assert_ne!(traces[0].trace_id, CALLER_TRACE, "a link is not a parent");
    assert!(root.attr("links").is_none());
}

/// Hands the run's context on, as a call to another service would.
struct CallService;

impl Node for CallService {
    type Prep = ();
    type Exec = (String, Vec<(String, String)>);

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<Self::Exec, BoxError> {
        let parent = pocketflow_tracing::current_traceparent().ok_or("no current traceparent")?;
        let mut headers = Vec::new();
        pocketflow_tracing::inject(&mut headers);
        Ok((parent.to_string(), headers))
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), sent: Self::Exec) -> Result<Action, BoxError> {
        shared.set("traceparent", sent.0)?;
        shared.set("headers", sent.1)?;
        Ok(Action::NONE)
    }
}

#[test]
fn current_traceparent_inside_exec_lets_a_second_run_continue_the_same_trace_under_exec() {
    let (sent, traces) = export(
        |b| b,
        || {
            assert_eq!(pocketflow_tracing::current_traceparent(), None, "outside any run");
            let mut flow = Flow::named("Caller");
            flow.start(CallService);
            let shared = SharedStore::new();
            flow.run(&shared).unwrap();
            let sent: String = shared.get("traceparent").unwrap();
            let headers: Vec<(String, String)> = shared.get("headers").unwrap();
            assert_eq!(headers, [("traceparent".to_owned(), sent.clone())], "inject adds the same value");
            // The service called: a run whose root continues the context.
            run_with_parent("Callee", &sent);
            sent
        },
    );
    let parent: TraceParent = sent.parse().unwrap();
    assert!(parent.is_sampled());
    assert_eq!(traces.len(), 1, "one trace: {traces:#?}");
    let trace = &traces[0];
    let exec = trace.spans.iter().find(|s| s.name == "exec").unwrap();
    let callee = span_named(&traces, "Callee");
    assert_eq!(callee.trace_id, exec.trace_id, "{}", trace.tree());
    assert_eq!(callee.parent_span_id.as_deref(), Some(exec.span_id.as_str()), "{}", trace.tree());
    assert_eq!(sent, format!("00-{}-{}-01", exec.trace_id, exec.span_id));
}

#[test]
fn current_traceparent_in_an_unrecorded_phase_names_the_nearest_recorded_span() {
    let (sent, traces) = export(
        |b| b.trace_exec(false),
        || {
            let mut flow = Flow::named("Caller");
            flow.start(CallService);
            let shared = SharedStore::new();
            flow.run(&shared).unwrap();
            shared.get::<String>("traceparent").unwrap()
        },
    );
    let node = span_named(&traces, "CallService");
    assert_eq!(sent, format!("00-{}-{}-01", node.trace_id, node.span_id));
}

#[test]
fn current_traceparent_in_an_unsampled_run_keeps_its_trace_id_and_says_not_sampled() {
    let (sent, traces) = export(
        |b| b,
        || {
            tracing::info_span!(target: "pocketflow", "flow", name = "Dropped", kind = "Flow", traceparent = NOT_SAMPLED)
            .in_scope(pocketflow_tracing::current_traceparent)
        },
    );
    assert!(traces.is_empty());
    let sent = sent.unwrap();
    assert!(!sent.is_sampled());
    assert_eq!(sent.to_string()[3..35], *CALLER_TRACE);
}

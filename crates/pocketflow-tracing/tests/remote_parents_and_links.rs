//! Traces that cross processes: a run's root span with a W3C `traceparent`
//! joins the caller's trace under the caller's span, following its
//! sampling decision; `links` become span links; and
//! `current_traceparent()` inside a run gives the context to send on, so
//! that a run started with it lands in the same trace.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use pocketflow::{Action, BoxError, Ctx, Flow, Node, RunOptions, SharedStore, TraceParent};
use pocketflow_test_support::otlp::{AttrValue, ReceivedSpan};
use pocketflow_tracing::Sampler;

use common::{Step, all_spans, export, span_named};

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const NOT_SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

/// Spans of one run of a flow of one node: the flow, the node, `prep`,
/// `exec`, `post`.
const SPANS_PER_RUN: usize = 5;

/// A top-level run of a flow named `name`, with one node `Step`, that
/// continues the caller's `traceparent`.
fn run_with_parent(name: &'static str, traceparent: &str) {
    let mut flow = Flow::named(name);
    flow.start(Step("Step"));
    let options = RunOptions::new().parent(traceparent.parse().unwrap());
    flow.run_with(&SharedStore::new(), options).unwrap();
}

/// A top-level run of a flow named `name`, with one node `Step`.
fn run(name: &'static str) {
    let mut flow = Flow::named(name);
    flow.start(Step("Step"));
    flow.run(&SharedStore::new()).unwrap();
}

fn context_events(span: &ReceivedSpan) -> Vec<(Option<&str>, Option<&str>)> {
    span.events
        .iter()
        .filter(|e| e.name == "pocketflow.context")
        .map(|e| {
            let field = |key: &str| e.attributes.get(key).and_then(AttrValue::as_str);
            (field("action"), field("task"))
        })
        .collect()
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
    assert_eq!(context_events(root), [(Some("continued"), Some(SAMPLED))]);
    assert_eq!(trace.spans.len(), SPANS_PER_RUN, "{}", trace.tree());
    let step = span_named(&traces, "Step");
    assert_eq!(step.parent_span_id.as_deref(), Some(root.span_id.as_str()));
    for span in trace.spans.iter().filter(|s| s.span_id != root.span_id) {
        assert!(span.attr("pocketflow.context.remote_parent").is_none(), "only on the root, not on {}", span.name);
    }
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
    assert_eq!(names.len(), SPANS_PER_RUN, "{}", traces[0].tree());
    assert_eq!(span_named(&traces, "Kept").parent_span_id.as_deref(), Some(CALLER_SPAN));
    assert!(!names.contains(&"Dropped"), "{names:?}");
}

#[test]
fn a_sampled_remote_parent_is_recorded_even_when_the_local_sampler_drops_everything() {
    let ((), traces) = export(
        |b| b.sampler(Sampler::AlwaysOff),
        || {
            run_with_parent("Kept", SAMPLED);
            run("Local");
        },
    );
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].trace_id, CALLER_TRACE);
    assert_eq!(traces[0].spans.len(), SPANS_PER_RUN, "{}", traces[0].tree());
    assert!(all_spans(&traces).all(|s| s.name != "Local"));
}

// The engine records only a parsed `TraceParent`, so it never emits an
// invalid `traceparent` or link: the two tests below build the root span by
// hand to pin what the layer does with a value it cannot trust, from any
// other emitter of the documented schema.

/// A hand-built root `flow` span with `traceparent`, with one node in it.
fn hand_built_run_with_parent(name: &str, traceparent: &str) {
    tracing::info_span!(target: "pocketflow", "flow", name, kind = "Flow", traceparent)
        .in_scope(|| tracing::info_span!(target: "pocketflow", "node", name = "Step", kind = "Node").in_scope(|| {}));
}

#[test]
fn an_invalid_traceparent_is_ignored_and_the_run_starts_a_new_trace() {
    // Version ff is forbidden: the caller's ids in it must not be used.
    let invalid = format!("ff-{CALLER_TRACE}-{CALLER_SPAN}-01");
    assert!(invalid.parse::<TraceParent>().is_err(), "not a value the engine can record");
    let ((), traces) = export(|b| b, || hand_built_run_with_parent("Fresh", &invalid));
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
    assert_eq!(root.attr("langfuse.internal.as_root"), Some(&AttrValue::Bool(true)));
    assert!(root.attr("pocketflow.context.remote_parent").is_none());
    assert!(context_events(root).is_empty(), "nor the `continued` event");
}

const OTHER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn both_links() -> [(String, String); 2] {
    [
        (CALLER_TRACE.to_owned(), CALLER_SPAN.to_owned()),
        ("0af7651916cd43dd8448eb211c80319c".to_owned(), "b7ad6b7169203331".to_owned()),
    ]
}

#[test]
fn links_become_span_links_of_the_root_only() {
    let ((), traces) = export(
        |b| b,
        || {
            let mut flow = Flow::named("Linked");
            flow.start(Step("Step"));
            let options = RunOptions::new().link(SAMPLED.parse().unwrap()).link(OTHER.parse().unwrap());
            flow.run_with(&SharedStore::new(), options).unwrap();
        },
    );
    assert_eq!(traces.len(), 1);
    let root = span_named(&traces, "Linked");
    assert_eq!(root.links, both_links());
    assert_ne!(traces[0].trace_id, CALLER_TRACE, "a link is not a parent");
    assert_eq!(root.parent_span_id, None);
    assert!(root.attr("links").is_none());
    for span in all_spans(&traces).filter(|s| s.span_id != root.span_id) {
        assert!(span.links.is_empty(), "{}", span.name);
    }
}

#[test]
fn invalid_links_are_skipped() {
    // Hand-built: see `hand_built_run_with_parent`.
    let links = format!("{SAMPLED} not-a-link {OTHER}");
    let ((), traces) = export(
        |b| b,
        || {
            tracing::info_span!(target: "pocketflow", "flow", name = "Linked", kind = "Flow", links = links.as_str())
                .in_scope(|| {});
        },
    );
    let root = span_named(&traces, "Linked");
    assert_eq!(root.links, both_links());
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
    let exec = trace.spans.iter().find(|s| s.attr_str("pocketflow.span") == Some("exec")).unwrap();
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
            let mut flow = Flow::named("Dropped");
            flow.start(CallService);
            let shared = SharedStore::new();
            flow.run_with(&shared, RunOptions::new().parent(NOT_SAMPLED.parse().unwrap())).unwrap();
            shared.get::<String>("traceparent").unwrap()
        },
    );
    assert!(traces.is_empty());
    let sent: TraceParent = sent.parse().unwrap();
    assert!(!sent.is_sampled());
    assert_eq!(sent.to_string()[3..35], *CALLER_TRACE);
}

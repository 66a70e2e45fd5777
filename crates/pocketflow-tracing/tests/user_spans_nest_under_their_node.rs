//! A user's own `#[instrument]` function called from `exec` is exported in
//! the run's trace, under that `exec` span, with its events; an ERROR event
//! marks it failed. Spans outside any flow are not exported. And the layer
//! works next to a `fmt` layer, each with its own per-layer filter, on one
//! registry. Subscribers are thread-local (the flows are sync), so the
//! tests share this binary.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::borrow::Cow;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use common::{SPANS_PER_RUN, WAIT, assert_marker_run, otlp, store, two_step_flow};
use pocketflow::{Action, BoxError, Ctx, Flow, Node, SharedStore};
use pocketflow_test_support::otlp::{OtlpReceiver, ReceivedSpan, ReceivedTrace, StatusCode};
use pocketflow_tracing::{PocketflowLayer, Protocol, TracingGuard};
use tracing::Level;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;

/// The target of this file's own spans and events.
const HERE: &str = module_path!();

/// Spans of one run of [`lookup_flow`]: the flow; `node`, `prep`, `exec`,
/// `post`; and the user's `lookup` span.
const LOOKUP_RUN_SPANS: usize = 1 + 4 + 1;

fn layer(receiver: &OtlpReceiver) -> (PocketflowLayer, TracingGuard) {
    otlp(&receiver.endpoint(), Protocol::Grpc).build().unwrap().layer().unwrap()
}

/// The user's code: looks `query` up, and reports how it went.
#[tracing::instrument]
fn lookup(query: &str, fail: bool) -> String {
    if fail {
        tracing::error!(error = "quota exceeded", retry_after_s = 30, "lookup failed");
        format!("{query}: unavailable")
    } else {
        tracing::info!(hits = 3, "looked up");
        format!("{query}: 3 hits")
    }
}

/// Calls [`lookup`] from `exec`; a failed lookup is handled, so the node
/// succeeds either way.
struct Search {
    fail: bool,
}

impl Node for Search {
    type Prep = String;
    type Exec = String;

    fn name(&self) -> Cow<'static, str> {
        "Search".into()
    }

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get("query")?)
    }

    fn exec(&self, _: &Ctx<'_>, query: &String) -> Result<String, BoxError> {
        Ok(lookup(query, self.fail))
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, answer: String) -> Result<Action, BoxError> {
        shared.set("answer", answer)?;
        Ok(Action::NONE)
    }
}

fn lookup_flow(fail: bool) -> Flow {
    let mut flow = Flow::named("Lookup");
    flow.start(Search { fail });
    flow
}

fn run_lookup(fail: bool) {
    let shared = SharedStore::from_iter([("query", "rust tracing")]);
    lookup_flow(fail).run(&shared).unwrap();
}

/// The one `lookup` span of `trace`, after checking it hangs under the
/// `exec` span of the `Search` node.
fn lookup_span(trace: &ReceivedTrace, fail: bool) -> &ReceivedSpan {
    let tree = trace.tree();
    let lookups: Vec<&ReceivedSpan> = trace.spans.iter().filter(|s| s.name == "lookup").collect();
    assert_eq!(lookups.len(), 1, "{tree}");
    let lookup = lookups[0];
    assert_eq!(trace.path(lookup), ["Lookup", "Search", "Search.exec", "lookup"], "{tree}");
    let exec = trace.parent(lookup).unwrap();
    assert_eq!(exec.attr_str("pocketflow.span"), Some("exec"), "{tree}");
    assert_eq!(lookup.attr_str("code.namespace"), Some(HERE), "{lookup:?}");
    assert_eq!(lookup.attr_str("query"), Some("rust tracing"), "{lookup:?}");
    assert_eq!(lookup.attr("fail").and_then(|v| v.as_bool()), Some(fail), "{lookup:?}");
    assert_eq!(lookup.attr_str("langfuse.trace.name"), Some("Lookup"), "{lookup:?}");
    assert_eq!(lookup.attr_str("langfuse.observation.type"), Some("span"), "{lookup:?}");
    assert_eq!(lookup.attr_str("pocketflow.span"), None, "{lookup:?}");
    lookup
}

/// Runs the lookup flow once (its search failing or not) and returns what
/// the receiver got: one whole trace, with the failed lookup's error event
/// also as an event observation.
fn export_lookup(fail: bool) -> Vec<ReceivedTrace> {
    let receiver = OtlpReceiver::grpc().unwrap();
    let (layer, guard) = layer(&receiver);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || run_lookup(fail));
    let report = guard.shutdown();
    let spans = LOOKUP_RUN_SPANS + usize::from(fail);
    assert_eq!((report.stats.exported, report.stats.dropped), (spans as u64, 0), "{report}");

    assert_eq!(receiver.wait_for_spans(spans, WAIT).len(), spans);
    let traces = receiver.traces();
    assert_eq!(traces.len(), 1);
    common::assert_whole(&traces[0], spans);
    traces
}

/// Every span except `except` succeeded.
fn assert_others_ok(trace: &ReceivedTrace, except: &str) {
    for span in trace.spans.iter().filter(|s| s.name != except) {
        assert_eq!(span.status.code, StatusCode::Unset, "{} failed:\n{}", span.name, trace.tree());
    }
}

#[test]
fn an_instrumented_function_called_from_exec_is_exported_under_exec_with_its_events() {
    let traces = export_lookup(false);
    let lookup = lookup_span(&traces[0], false);
    assert_eq!(lookup.status.code, StatusCode::Unset, "{lookup:?}");
    let events: Vec<&str> = lookup.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(events, ["looked up"], "{lookup:?}");
    let event = &lookup.events[0];
    assert_eq!(event.attributes.get("level").and_then(|v| v.as_str()), Some("INFO"), "{event:?}");
    assert_eq!(event.attributes.get("hits").and_then(|v| v.as_i64()), Some(3), "{event:?}");
    assert_others_ok(&traces[0], "");
}

#[test]
fn an_error_event_in_an_instrumented_function_marks_its_span_failed_and_only_it() {
    let traces = export_lookup(true);
    let lookup = lookup_span(&traces[0], true);
    assert_eq!(lookup.status.code, StatusCode::Error, "{lookup:?}");
    assert_eq!(lookup.status.message, "quota exceeded", "{lookup:?}");
    let failed = &lookup.events[0];
    assert_eq!(failed.name, "lookup failed", "{lookup:?}");
    assert_eq!(failed.attributes.get("level").and_then(|v| v.as_str()), Some("ERROR"), "{failed:?}");
    assert_eq!(failed.attributes.get("retry_after_s").and_then(|v| v.as_i64()), Some(30), "{failed:?}");
    let exception = lookup.events.iter().find(|e| e.name == "exception").expect("an exception event");
    assert_eq!(
        exception.attributes.get("exception.message").and_then(|v| v.as_str()),
        Some("quota exceeded"),
        "{exception:?}"
    );
    // The node handled the failed lookup: nothing above it failed.
    assert_others_ok(&traces[0], "lookup");
    // Langfuse shows no span events: the error is also an event
    // observation under the span, ERROR as the span is.
    let observation = traces[0].children(&lookup.span_id).into_iter().next().expect("an event observation");
    assert_eq!(observation.name, "lookup failed");
    assert_eq!(observation.attr_str("langfuse.observation.type"), Some("event"));
    assert_eq!(observation.attr_str("langfuse.observation.level"), Some("ERROR"));
    assert_eq!(observation.attr_str("langfuse.observation.status_message"), Some("lookup failed: quota exceeded"));
    assert_eq!(observation.attr("langfuse.observation.metadata.retry_after_s").and_then(|v| v.as_i64()), Some(30));
    assert_eq!(observation.start_unix_nano, observation.end_unix_nano);
    assert_eq!(observation.start_unix_nano, failed.time_unix_nano);
}

#[test]
fn spans_opened_outside_any_flow_are_not_exported() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let (layer, guard) = layer(&receiver);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // Alone, outside any flow.
        tracing::info_span!("startup", version = 1).in_scope(|| {
            tracing::info!("starting");
            let _ = lookup("warm-up", false);
            tracing::error!("an error outside any flow");
        });
        // Around a flow: the flow is still the root of its own trace.
        tracing::info_span!("request", id = 7).in_scope(|| {
            tracing::info!("handling request");
            two_step_flow("Inside").run(&store("inside")).unwrap();
        });
        // Opened after the flow.
        let _ = lookup("after", true);
    });
    let report = guard.shutdown();
    assert_eq!((report.stats.exported, report.stats.dropped), (SPANS_PER_RUN as u64, 0), "{report}");

    let spans = receiver.wait_for_spans(SPANS_PER_RUN, WAIT);
    assert_eq!(spans.len(), SPANS_PER_RUN, "{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    let traces = receiver.traces();
    assert_eq!(traces.len(), 1);
    assert_marker_run(&traces[0], "Inside", "inside");
    let outside_events = ["starting", "looked up", "an error outside any flow", "handling request", "lookup failed"];
    for span in &spans {
        assert!(!["startup", "request", "lookup"].contains(&span.name.as_str()), "exported {span:?}");
        for event in &span.events {
            assert!(!outside_events.contains(&event.name.as_str()), "exported {event:?} on {}", span.name);
        }
    }
}

/// A `fmt` writer into a buffer the test reads.
#[derive(Debug, Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

#[test]
fn the_layer_composes_with_a_fmt_layer_and_per_layer_filters_on_one_registry() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let (layer, guard) = layer(&receiver);
    let printed = Buffer::default();
    let writer = printed.clone();
    // fmt prints this file's INFO and the engine's WARN and above; the
    // layer takes everything down to DEBUG (the engine's lifecycle events).
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(move || writer.clone())
        .with_filter(Targets::new().with_target(HERE, Level::INFO).with_target("pocketflow", Level::WARN));
    let subscriber = tracing_subscriber::registry().with(fmt).with(layer.with_filter(LevelFilter::DEBUG));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("before the flows");
        run_lookup(false);
        two_step_flow("Plain").run(&store("plain")).unwrap();
        tracing::trace!("too fine for either layer");
    });
    let report = guard.shutdown();
    let total = LOOKUP_RUN_SPANS + SPANS_PER_RUN;
    assert_eq!((report.stats.exported, report.stats.dropped), (total as u64, 0), "{report}");

    // fmt printed what its filter lets through, and nothing else.
    let text = printed.text();
    assert!(text.contains("before the flows"), "{text}");
    assert!(text.contains("looked up"), "{text}");
    assert!(text.contains("lookup{query=\"rust tracing\" fail=false}"), "{text}");
    assert!(!text.contains("pocketflow.lifecycle") && !text.contains("state="), "{text}");
    assert!(!text.contains("too fine"), "{text}");

    // The export is as complete as with the layer alone.
    assert_eq!(receiver.wait_for_spans(total, WAIT).len(), total);
    let traces = receiver.traces();
    assert_eq!(traces.len(), 2);
    let lookup_trace = traces.iter().find(|t| t.roots().iter().any(|r| r.name == "Lookup")).unwrap();
    common::assert_whole(lookup_trace, LOOKUP_RUN_SPANS);
    let lookup = lookup_span(lookup_trace, false);
    assert_eq!(lookup.events.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["looked up"]);
    let node = lookup_trace.spans.iter().find(|s| s.name == "Search").unwrap();
    assert!(
        node.events.iter().any(|e| e.name == "pocketflow.lifecycle"),
        "the DEBUG lifecycle events passed the layer's filter: {node:?}"
    );
    let plain = traces.iter().find(|t| t.roots().iter().any(|r| r.name == "Plain")).unwrap();
    assert_marker_run(plain, "Plain", "plain");
}

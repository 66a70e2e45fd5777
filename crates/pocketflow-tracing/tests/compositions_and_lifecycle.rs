//! `composition` spans (flows run together) map like flows: named after
//! their `name`, type `chain`, their own `pocketflow.composition.*`
//! attributes, a trace of their own when nothing above them is recorded.
//! Lifecycle stats become `pocketflow.lifecycle.*` attributes, and a span's
//! lifecycle events stay bounded however often its future suspends.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use pocketflow_test_support::otlp::{AttrValue, ReceivedSpan, StatusCode};
use pocketflow_tracing::ObservationType;
use tracing::field::Empty;

use common::{export, lifecycle, span_named};

/// A composition of `flows` flows, as the engine records it: options at
/// creation, results when it ends.
fn composition(name: &str, flows: &[&str], failed: usize) {
    let span = tracing::info_span!(
        target: "pocketflow",
        "composition",
        name,
        kind = "parallel",
        count = flows.len(),
        limit = 0_usize,
        failed = Empty,
        output = Empty,
        error = Empty,
        session_id = "composed-session",
        polls = Empty,
        suspensions = Empty,
        running_ms = Empty,
        suspended_ms = Empty,
    );
    span.in_scope(|| {
        for flow in flows {
            tracing::info_span!(target: "pocketflow", "flow", name = *flow, kind = "AsyncFlow").in_scope(|| {
                tracing::info_span!(target: "pocketflow", "node", name = "Step", kind = "AsyncNode").in_scope(|| {});
            });
        }
    });
    span.record("failed", failed);
    span.record("output", "[{\"ok\":null},{\"error\":\"boom\"}]");
    if failed > 0 {
        span.record("error", "1 of 2 composed flows failed");
    }
}

#[test]
fn a_root_composition_is_named_after_its_name_and_starts_the_trace_of_its_flows() {
    let ((), traces) = export(|b| b, || composition("Fanout", &["A", "B"], 1));
    assert_eq!(traces.len(), 1, "one trace");
    let trace = &traces[0];
    assert_eq!(trace.spans.len(), 5, "{}", trace.tree());
    let root = trace.roots()[0];
    assert_eq!(root.name, "Fanout");
    assert_eq!(root.attr_str("pocketflow.span"), Some("composition"));
    assert_eq!(root.attr_str("pocketflow.composition.name"), Some("Fanout"));
    assert_eq!(root.attr_str("pocketflow.composition.kind"), Some("parallel"));
    assert_eq!(root.attr("pocketflow.composition.count"), Some(&AttrValue::Int(2)));
    assert_eq!(root.attr("pocketflow.composition.limit"), Some(&AttrValue::Int(0)));
    assert_eq!(root.attr("pocketflow.composition.failed"), Some(&AttrValue::Int(1)));
    assert_eq!(root.attr_str("langfuse.observation.type"), Some("chain"));
    assert_eq!(root.attr_str("openinference.span.kind"), Some("CHAIN"));
    assert_eq!(root.attr_str("langfuse.observation.output"), Some("[{\"ok\":null},{\"error\":\"boom\"}]"));
    assert_eq!(root.attr_str("output.mime_type"), Some("application/json"));
    assert_eq!(root.status.code, StatusCode::Error);
    assert_eq!(root.status.message, "1 of 2 composed flows failed");
    assert!(root.events.iter().any(|e| e.name == "exception"));
    let flows: Vec<&str> = trace.children(&root.span_id).iter().map(|s| s.name.as_str()).collect();
    assert_eq!(flows, ["A", "B"], "{}", trace.tree());
    for span in &trace.spans {
        assert_eq!(span.attr_str("langfuse.trace.name"), Some("Fanout"), "{}", span.name);
        assert_eq!(span.attr_str("langfuse.session.id"), Some("composed-session"), "{}", span.name);
    }
}

#[test]
fn a_composition_takes_its_observation_type_from_the_config_by_name() {
    let ((), traces) =
        export(|b| b.observation_type("Fanout", ObservationType::Agent), || composition("Fanout", &["A"], 0));
    let root = span_named(&traces, "Fanout");
    assert_eq!(root.attr_str("langfuse.observation.type"), Some("agent"));
    assert_eq!(root.status.code, StatusCode::Unset);
}

#[test]
fn a_composition_inside_a_flow_hangs_under_it_in_the_flows_trace() {
    let ((), traces) = export(
        |b| b,
        || {
            tracing::info_span!(target: "pocketflow", "flow", name = "Outer", kind = "AsyncFlow")
                .in_scope(|| composition("Fanout", &["A", "B"], 0));
        },
    );
    assert_eq!(traces.len(), 1);
    let trace = &traces[0];
    let outer = span_named(&traces, "Outer");
    let fanout = span_named(&traces, "Fanout");
    assert_eq!(fanout.parent_span_id.as_deref(), Some(outer.span_id.as_str()), "{}", trace.tree());
    assert_eq!(fanout.attr_str("langfuse.trace.name"), Some("Outer"));
    // Not the root: its session is its own observation metadata.
    assert_eq!(fanout.attr_str("langfuse.observation.metadata.session_id"), Some("composed-session"));
    assert!(fanout.attr("langfuse.session.id").is_none());
}

fn stats(span: &ReceivedSpan) -> (Option<i64>, Option<i64>, Option<&AttrValue>, Option<&AttrValue>) {
    (
        span.attr("pocketflow.lifecycle.polls").and_then(AttrValue::as_i64),
        span.attr("pocketflow.lifecycle.suspensions").and_then(AttrValue::as_i64),
        span.attr("pocketflow.lifecycle.running_ms"),
        span.attr("pocketflow.lifecycle.suspended_ms"),
    )
}

#[test]
fn lifecycle_stats_recorded_at_the_end_become_lifecycle_attributes() {
    let ((), traces) = export(
        |b| b,
        || {
            let with_stats = |span: tracing::Span, polls: u64| {
                span.in_scope(|| {});
                span.record("polls", polls);
                span.record("suspensions", polls - 1);
                span.record("running_ms", 1.5_f64);
                span.record("suspended_ms", 0.25_f64);
                span
            };
            let stat_fields = |name: &'static str| match name {
                "composition" => {
                    tracing::info_span!(target: "pocketflow", "composition", name = "C", kind = "nested", count = 1_usize, limit = 1_usize, polls = Empty, suspensions = Empty, running_ms = Empty, suspended_ms = Empty)
                }
                "flow" => {
                    tracing::info_span!(target: "pocketflow", "flow", name = "F", kind = "AsyncFlow", polls = Empty, suspensions = Empty, running_ms = Empty, suspended_ms = Empty)
                }
                "node" => {
                    tracing::info_span!(target: "pocketflow", "node", name = "N", kind = "AsyncBatchNode", polls = Empty, suspensions = Empty, running_ms = Empty, suspended_ms = Empty)
                }
                _ => {
                    tracing::info_span!(target: "pocketflow", "item", index = 0_usize, polls = Empty, suspensions = Empty, running_ms = Empty, suspended_ms = Empty)
                }
            };
            let composition = stat_fields("composition");
            let _c = composition.enter();
            let flow = stat_fields("flow");
            let _f = flow.enter();
            let node = stat_fields("node");
            let _n = node.enter();
            let item = with_stats(stat_fields("item"), 4);
            drop(item);
            drop(_n);
            let _node = with_stats(node, 3);
            drop(_f);
            let _flow = with_stats(flow, 2);
            drop(_c);
            let _composition = with_stats(composition, 5);
        },
    );
    for (name, polls) in [("C", 5), ("F", 2), ("N", 3), ("item", 4)] {
        let span = span_named(&traces, name);
        let (p, s, running, suspended) = stats(span);
        assert_eq!((p, s), (Some(polls), Some(polls - 1)), "{name}");
        assert_eq!(running, Some(&AttrValue::Double(1.5)), "{name}");
        assert_eq!(suspended, Some(&AttrValue::Double(0.25)), "{name}");
        assert!(span.attr("polls").is_none(), "{name}: no raw field");
    }
}

fn lifecycle_states(span: &ReceivedSpan) -> Vec<&str> {
    span.events
        .iter()
        .filter(|e| e.name == "pocketflow.lifecycle")
        .filter_map(|e| e.attributes.get("state").and_then(AttrValue::as_str))
        .collect()
}

/// A node whose future suspends `suspensions` times, with the engine's
/// lifecycle events, ending `completed`.
fn suspending_node(suspensions: usize) {
    tracing::info_span!(target: "pocketflow", "flow", name = "F", kind = "AsyncFlow").in_scope(|| {
        // The flow's own few transitions: under any cap of 3 or more.
        for state in ["created", "starting", "running"] {
            lifecycle(state);
        }
        tracing::info_span!(target: "pocketflow", "node", name = "Busy", kind = "AsyncNode").in_scope(|| {
            for state in ["created", "starting", "running"] {
                lifecycle(state);
            }
            for _ in 0..suspensions {
                for state in ["suspended", "resuming", "running"] {
                    lifecycle(state);
                }
            }
            tracing::event!(name: "pocketflow.retry", target: "pocketflow", tracing::Level::WARN, attempt = 0, "an ordinary event");
            lifecycle("completing");
            lifecycle("completed");
        });
    });
}

#[test]
fn a_span_whose_future_suspends_a_hundred_thousand_times_keeps_the_first_lifecycle_events_and_its_final_state() {
    const SUSPENSIONS: usize = 100_000;
    let ((), traces) = export(|b| b, || suspending_node(SUSPENSIONS));
    let node = span_named(&traces, "Busy");
    let states = lifecycle_states(node);
    let emitted = 3 + 3 * SUSPENSIONS + 2;
    assert_eq!(states.len(), 33, "the default cap, 32, and the final state");
    assert_eq!(states[..4], ["created", "starting", "running", "suspended"]);
    assert_eq!(states.last(), Some(&"completed"));
    assert_eq!(
        node.attr("pocketflow.lifecycle.dropped_events").and_then(AttrValue::as_i64),
        Some(i64::try_from(emitted - 33).unwrap())
    );
    assert!(node.events.iter().any(|e| e.name == "pocketflow.retry"), "other events are not affected");
    assert_eq!(node.dropped_events_count, 0, "within the per-span event cap");
}

#[test]
fn the_lifecycle_cap_is_configurable_and_only_spans_over_it_report_drops() {
    let ((), traces) = export(|b| b.max_lifecycle_events_per_span(4), || suspending_node(2));
    let node = span_named(&traces, "Busy");
    assert_eq!(lifecycle_states(node), ["created", "starting", "running", "suspended", "completed"]);
    assert_eq!(node.attr("pocketflow.lifecycle.dropped_events").and_then(AttrValue::as_i64), Some(6));
    let flow = span_named(&traces, "F");
    assert_eq!(lifecycle_states(flow), ["created", "starting", "running"]);
    assert!(flow.attr("pocketflow.lifecycle.dropped_events").is_none());
}

#[test]
fn the_per_span_event_cap_still_applies_to_lifecycle_events() {
    let ((), traces) = export(|b| b.max_events_per_span(10), || suspending_node(1_000));
    let node = span_named(&traces, "Busy");
    assert_eq!(node.events.len(), 10);
    assert!(node.dropped_events_count > 0);
}

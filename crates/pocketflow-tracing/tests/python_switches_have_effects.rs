//! The five switches of the Python `TracingConfig` each change what is
//! exported: every test runs the same spans with the switch on and off.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use pocketflow_test_support::otlp::{AttrValue, ReceivedSpan, ReceivedTrace};
use pocketflow_tracing::TracingConfigBuilder;
use tracing::Level;

use common::{export, lifecycle, span_named};

fn event_names(span: &ReceivedSpan) -> Vec<&str> {
    span.events.iter().map(|e| e.name.as_str()).collect()
}

fn both(
    switch: impl Fn(TracingConfigBuilder, bool) -> TracingConfigBuilder,
    work: impl Fn(),
) -> (Vec<ReceivedTrace>, Vec<ReceivedTrace>) {
    let ((), on) = export(|b| switch(b, true), &work);
    let ((), off) = export(|b| switch(b, false), &work);
    (on, off)
}

#[test]
fn trace_async_lifecycle_switches_lifecycle_events() {
    let (on, off) = both(TracingConfigBuilder::trace_async_lifecycle, || {
        tracing::info_span!(target: "pocketflow", "flow", name = "F", kind = "AsyncFlow").in_scope(|| {
            for state in ["created", "starting", "running", "completed"] {
                lifecycle(state);
            }
        });
    });
    assert_eq!(event_names(span_named(&on, "F")), ["pocketflow.lifecycle"; 4]);
    assert!(event_names(span_named(&off, "F")).is_empty());
}

#[test]
fn trace_async_context_switches_context_events() {
    let (on, off) = both(TracingConfigBuilder::trace_async_context, || {
        tracing::info_span!(target: "pocketflow", "flow", name = "F", kind = "AsyncFlow").in_scope(|| {
            tracing::event!(
                name: "pocketflow.context",
                target: "pocketflow",
                Level::DEBUG,
                action = "spawned",
                task = "fetch",
                "task spawned with the run's context"
            );
        });
    });
    let event = &span_named(&on, "F").events[0];
    assert_eq!(event.name, "pocketflow.context");
    assert_eq!(event.attributes.get("task").and_then(AttrValue::as_str), Some("fetch"));
    assert!(span_named(&off, "F").events.is_empty());
    // The remote-parent attribute: `remote_parents_and_links.rs`.
}

/// A root flow with `concurrent = 3`, holding a composition of two flows;
/// then a root composition of one flow.
fn concurrent_runs() {
    tracing::info_span!(target: "pocketflow", "flow", name = "Outer", kind = "AsyncFlow", concurrent = 3_u64).in_scope(
        || {
            lifecycle("created");
            tracing::info_span!(target: "pocketflow", "composition", name = "Inner", kind = "parallel", count = 2_usize, limit = 0_usize)
                .in_scope(|| {
                    // The composition's own transitions, as the engine reports them.
                    lifecycle("created");
                    lifecycle("completed");
                    for name in ["A", "B"] {
                        tracing::info_span!(target: "pocketflow", "flow", name, kind = "AsyncFlow").in_scope(|| {});
                    }
                });
        },
    );
    tracing::info_span!(target: "pocketflow", "composition", name = "Top", kind = "batch", count = 1_usize, limit = 1_usize, concurrent = 1_u64)
        .in_scope(|| tracing::info_span!(target: "pocketflow", "flow", name = "C", kind = "AsyncFlow").in_scope(|| {}));
}

#[test]
fn trace_concurrent_flows_switches_composition_spans_and_the_concurrent_runs_attribute() {
    let (on, off) = both(TracingConfigBuilder::trace_concurrent_flows, concurrent_runs);

    assert_eq!(on.len(), 2, "Outer's trace and Top's");
    let outer = span_named(&on, "Outer");
    assert_eq!(outer.attr("pocketflow.concurrent_runs"), Some(&AttrValue::Int(3)));
    let inner = span_named(&on, "Inner");
    assert_eq!(inner.parent_span_id.as_deref(), Some(outer.span_id.as_str()));
    assert_eq!(span_named(&on, "A").parent_span_id.as_deref(), Some(inner.span_id.as_str()));
    let top = span_named(&on, "Top");
    assert_eq!(top.attr("pocketflow.concurrent_runs"), Some(&AttrValue::Int(1)));
    assert_eq!(span_named(&on, "C").parent_span_id.as_deref(), Some(top.span_id.as_str()));

    let all: Vec<&ReceivedSpan> = off.iter().flat_map(|t| &t.spans).collect();
    assert!(all.iter().all(|s| s.attr_str("pocketflow.span") != Some("composition")), "{all:#?}");
    assert!(all.iter().all(|s| s.attr("pocketflow.concurrent_runs").is_none() && s.attr("concurrent").is_none()));
    let outer = span_named(&off, "Outer");
    let states: Vec<_> =
        outer.events.iter().filter_map(|e| e.attributes.get("state").and_then(|v| v.as_str())).collect();
    assert_eq!(states, ["created"], "a switched-off composition's transitions are not its parent's");
    for name in ["A", "B"] {
        let flow = span_named(&off, name);
        assert_eq!(flow.parent_span_id.as_deref(), Some(outer.span_id.as_str()), "{name} hangs from Outer");
        assert_eq!(flow.trace_id, outer.trace_id);
    }
    let c = span_named(&off, "C");
    assert_eq!(c.parent_span_id, None, "with no recorded ancestor, C is a root");
    assert_eq!(c.attr_str("langfuse.trace.name"), Some("C"));
    assert_eq!(off.len(), 2, "Outer's trace and C's");
}

/// A node whose `exec` fails with a timeout, handled by an error handler.
fn failing_node() {
    tracing::info_span!(target: "pocketflow", "flow", name = "F", kind = "AsyncFlow").in_scope(|| {
        tracing::info_span!(target: "pocketflow", "node", name = "N", kind = "AsyncNode").in_scope(|| {
            tracing::info_span!(target: "pocketflow", "exec", attempt = 0_usize, error = "deadline passed").in_scope(
                || {
                    tracing::event!(
                        name: "pocketflow.error",
                        target: "pocketflow",
                        Level::ERROR,
                        node = "N",
                        phase = "exec",
                        panic = false,
                        error_type = "timeout",
                        error = "deadline passed",
                        "node failed"
                    );
                },
            );
            tracing::event!(
                name: "pocketflow.async_error",
                target: "pocketflow",
                Level::WARN,
                error_type = "task_exception",
                severity = "high",
                recovered = true,
                handlers = 1_u64,
                node = "N",
                flow = "F",
                error = "deadline passed",
                "error handled"
            );
        });
    });
}

#[test]
fn async_error_recovery_switches_async_error_events_and_error_type() {
    let (on, off) = both(TracingConfigBuilder::async_error_recovery, failing_node);

    let exec = span_named(&on, "exec");
    assert_eq!(exec.attr_str("error.type"), Some("timeout"));
    let node = span_named(&on, "N");
    assert_eq!(node.attr_str("error.type"), Some("task_exception"));
    assert_eq!(event_names(node), ["pocketflow.async_error"]);
    assert!(span_named(&on, "F").attr("error.type").is_none(), "only where the failure was reported");

    let exec = span_named(&off, "exec");
    assert!(exec.attr("error.type").is_none());
    assert!(event_names(exec).contains(&"pocketflow.error"), "the error itself is still reported");
    let node = span_named(&off, "N");
    assert!(node.attr("error.type").is_none());
    assert!(node.events.is_empty());
}

fn timed_nodes() {
    let flow = tracing::info_span!(target: "pocketflow", "flow", name = "F", kind = "Flow");
    let _flow = flow.enter();
    tracing::info_span!(target: "pocketflow", "node", name = "Slow", kind = "Node").in_scope(|| {
        tracing::info_span!(target: "pocketflow", "exec", attempt = 0_usize)
            .in_scope(|| std::thread::sleep(Duration::from_millis(30)));
    });
    // Over the threshold too, but neither a flow nor a node: never marked slow.
    tracing::info_span!(target: "pocketflow", "node", name = "Fast", kind = "BatchNode").in_scope(|| {
        tracing::info_span!(target: "pocketflow", "item", index = 0_usize)
            .in_scope(|| std::thread::sleep(Duration::from_millis(30)));
    });
    tracing::info_span!(target: "pocketflow", "composition", name = "Comp", kind = "nested", count = 0_usize, limit = 1_usize)
        .in_scope(|| std::thread::sleep(Duration::from_millis(30)));
}

#[test]
fn performance_monitoring_switches_durations_and_slow_node_marks() {
    let threshold =
        |b: TracingConfigBuilder, on: bool| b.performance_monitoring(on).slow_node_threshold(Duration::from_millis(20));
    let (on, off) = both(threshold, timed_nodes);

    for name in ["F", "Slow", "Fast", "item", "Comp"] {
        let span = span_named(&on, name);
        let Some(AttrValue::Double(ms)) = span.attr("pocketflow.duration_ms") else {
            panic!("{name} has no duration: {span:#?}");
        };
        let measured = span.duration().as_secs_f64() * 1000.0;
        assert!((ms - measured).abs() < 0.01, "{name}: {ms} ms vs {measured} ms");
    }
    assert!(span_named(&on, "exec").attr("pocketflow.duration_ms").is_none(), "phases are not timed");
    for name in ["F", "Slow"] {
        let span = span_named(&on, name);
        assert_eq!(span.attr("pocketflow.slow"), Some(&AttrValue::Bool(true)), "{name}");
        let event = span.events.iter().find(|e| e.name == "pocketflow.slow_node").unwrap();
        assert!(matches!(event.attributes.get("duration_ms"), Some(AttrValue::Double(ms)) if *ms >= 20.0));
        assert_eq!(event.attributes.get("threshold_ms"), Some(&AttrValue::Double(20.0)));
    }
    for name in ["item", "Comp"] {
        let span = span_named(&on, name);
        assert!(span.duration() >= Duration::from_millis(20), "{name} lasts past the threshold");
        assert!(span.attr("pocketflow.slow").is_none(), "only flows and nodes are marked slow: {name}");
        assert!(span.events.iter().all(|e| e.name != "pocketflow.slow_node"), "{name}");
    }

    for span in off.iter().flat_map(|t| &t.spans) {
        assert!(span.attr("pocketflow.duration_ms").is_none(), "{}", span.name);
        assert!(span.attr("pocketflow.slow").is_none(), "{}", span.name);
        assert!(span.events.iter().all(|e| e.name != "pocketflow.slow_node"), "{}", span.name);
    }
}

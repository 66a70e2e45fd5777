//! The quickstart, exported as Langfuse reads it, is not a failed trace:
//! it recovers from every failure, so no observation is ERROR (Langfuse
//! marks a whole trace failed when one is). What went wrong on the way is
//! still visible where it happened: the failed attempts and the nodes that
//! recovered or fell back are WARNING with their messages
//! (`langfuse.observation.level`, `langfuse.observation.status_message`),
//! while the OpenTelemetry status of the failed attempts stays ERROR for
//! Jaeger. Each retry is also an event observation at the moment it was
//! decided, since Langfuse shows no span events. Absent payloads are left
//! out, never sent as `null`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use pocketflow_test_support::otlp::{OtlpReceiver, ReceivedSpan, ReceivedTrace, StatusCode};

fn quickstart_trace() -> ReceivedTrace {
    let receiver = OtlpReceiver::grpc().unwrap();
    let endpoint = receiver.endpoint();
    common::run_example("quickstart", &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]);
    receiver.wait_for_spans(usize::MAX, Duration::from_millis(200));
    let mut traces = receiver.traces();
    assert_eq!(traces.len(), 1);
    traces.remove(0)
}

/// The level Langfuse gives the observation: `langfuse.observation.level`
/// when set, else ERROR for a span whose status is ERROR (Langfuse's OTLP
/// ingestion rule), else none (DEFAULT).
fn level(span: &ReceivedSpan) -> Option<&str> {
    match span.attr_str("langfuse.observation.level") {
        Some(level) => Some(level),
        None if span.status.code == StatusCode::Error => Some("ERROR"),
        None => None,
    }
}

fn message(span: &ReceivedSpan) -> &str {
    span.attr_str("langfuse.observation.status_message").unwrap_or_default()
}

/// The `exec` spans under the node named `node`, in attempt order.
fn attempts<'a>(trace: &'a ReceivedTrace, node: &str) -> Vec<&'a ReceivedSpan> {
    let node = trace.spans.iter().find(|s| s.name == node).unwrap();
    let mut execs: Vec<&ReceivedSpan> =
        trace.children(&node.span_id).into_iter().filter(|s| s.attr_str("pocketflow.span") == Some("exec")).collect();
    execs.sort_by_key(|s| s.attributes.get("pocketflow.attempt").and_then(|a| a.as_i64()));
    execs
}

#[test]
fn a_run_that_recovered_has_no_error_observation() {
    let trace = quickstart_trace();
    let tree = trace.tree();
    for span in &trace.spans {
        assert_ne!(level(span), Some("ERROR"), "{} is ERROR in a run that recovered:\n{tree}", span.name);
    }
    let root = &trace.roots()[0];
    assert_eq!(level(root), None, "the flow itself went well");
    assert_eq!(root.status.code, StatusCode::Unset);
}

#[test]
fn failed_attempts_are_warnings_with_their_messages_and_keep_the_error_status() {
    let trace = quickstart_trace();
    let draft = attempts(&trace, "DraftRefunds");
    assert_eq!(draft.len(), 3, "{}", trace.tree());
    for (attempt, span) in draft[..2].iter().enumerate() {
        assert_eq!(level(span), Some("WARNING"), "attempt {attempt}");
        assert_eq!(message(span), format!("model timed out (attempt {} of 3)", attempt + 1));
        assert_eq!(span.status.code, StatusCode::Error, "Jaeger still sees the failed attempt");
    }
    assert_eq!(level(draft[2]), None, "the attempt that worked");
    assert_eq!(draft[2].status.code, StatusCode::Unset);
}

#[test]
fn nodes_that_recovered_or_fell_back_say_so() {
    let trace = quickstart_trace();
    let node = |name: &str| trace.spans.iter().find(|s| s.name == name).unwrap();

    let draft = node("DraftRefunds");
    assert_eq!(level(draft), Some("WARNING"));
    assert_eq!(message(draft), "recovered after 2 failed attempts: model timed out (attempt 2 of 3)");

    let summarize = node("Summarize");
    assert_eq!(level(summarize), Some("WARNING"));
    assert_eq!(message(summarize), "fell back after 2 failed attempts: summarization model unavailable (503)");
    assert_eq!(summarize.status.code, StatusCode::Unset);

    for quiet in ["LoadTickets", "Classify"] {
        assert_eq!(level(node(quiet)), None, "{quiet} had nothing go wrong");
    }
}

#[test]
fn absent_payloads_are_left_out_not_sent_as_null() {
    let trace = quickstart_trace();
    for span in &trace.spans {
        for key in ["langfuse.observation.input", "langfuse.observation.output", "input.value", "output.value"] {
            assert_ne!(span.attr_str(key), Some("null"), "{} sends {key} = null", span.name);
        }
        assert_ne!(
            span.attr_str("pocketflow.action"),
            Some("None"),
            "{}: the default action is not an action",
            span.name
        );
    }
    // What is there is still there: the flow's input and output.
    let root = &trace.roots()[0];
    assert!(root.attr_str("langfuse.observation.output").is_some_and(|o| o.contains("refund")));
}

#[test]
fn each_retry_is_an_event_observation_at_the_moment_it_happened() {
    let trace = quickstart_trace();
    let events: Vec<&ReceivedSpan> =
        trace.spans.iter().filter(|s| s.attr_str("langfuse.observation.type") == Some("event")).collect();
    let names: Vec<&str> = events.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 3, "{}", trace.tree());
    for event in events {
        let attempt = trace.parent(event).expect("under the attempt that failed");
        assert_eq!(attempt.attr_str("pocketflow.span"), Some("exec"));
        let node = attempt.name.trim_end_matches(".exec");
        assert_eq!(event.name, format!("{node}.retry"));
        assert_eq!(level(event), Some("WARNING"), "a retry is a problem the run got over");
        assert_eq!(event.status.code, StatusCode::Unset);
        assert_eq!(event.start_unix_nano, event.end_unix_nano, "a point in time");
        let retry = attempt.events.iter().find(|e| e.name == "pocketflow.retry").expect("the span event stays");
        assert_eq!(event.start_unix_nano, retry.time_unix_nano);
        let error = attempt.status.message.as_str();
        assert_eq!(message(event), format!("exec attempt failed; retrying: {error}"));
        assert_eq!(event.attr_str("langfuse.observation.metadata.error"), Some(error));
        assert!(event.attr("langfuse.observation.metadata.wait_ms").is_some());
        assert_eq!(event.attr_str("langfuse.trace.name"), Some("TicketTriage"));
    }
}

//! The quickstart, run as a user runs it (the example binary, configured
//! only by environment variables), exports its trace where the environment
//! says: a tree on stderr with nothing set, OTLP/gRPC or OTLP/HTTP to a
//! collector, or Langfuse's OTLP route with its auth and ingestion headers.
//!
//! `cargo test` builds the examples before running tests; this test runs the
//! built `quickstart` binary against in-process OTLP receivers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::process::Output;
use std::time::Duration;

use pocketflow_test_support::otlp::{OtlpReceiver, ReceivedTrace};

const OBSERVATION_TYPES: [&str; 10] =
    ["span", "chain", "agent", "tool", "generation", "retriever", "embedding", "evaluator", "guardrail", "event"];

/// Runs the quickstart with exactly `vars` as its tracing environment.
fn run(vars: &[(&str, &str)]) -> Output {
    common::run_example("quickstart", vars)
}

fn single_trace(receiver: &OtlpReceiver) -> ReceivedTrace {
    // The quickstart shuts tracing down before it exits, so everything has
    // arrived by now; the wait only covers the receiver's own bookkeeping.
    receiver.wait_for_spans(usize::MAX, Duration::from_millis(200));
    let traces = receiver.traces();
    assert_eq!(traces.len(), 1, "one trace per run");
    let trace = traces.into_iter().next().unwrap();
    let tree = trace.tree();
    assert_eq!(trace.roots().len(), 1, "{tree}");
    assert_eq!(trace.roots()[0].parent_span_id, None);
    assert_eq!(trace.roots()[0].name, "TicketTriage");
    assert!(trace.orphans().is_empty(), "{tree}");
    assert!(trace.depth() >= 3, "flow > node > phase:\n{tree}");
    for span in &trace.spans {
        let observation = span.attr_str("langfuse.observation.type").unwrap_or_default();
        assert!(OBSERVATION_TYPES.contains(&observation), "{}: {observation:?}", span.name);
    }
    trace
}

#[test]
fn with_no_environment_the_trace_tree_goes_to_stderr() {
    let output = run(&[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TicketTriage [chain]"), "{stderr}");
    assert!(stderr.contains("├─ Classify [span]"), "{stderr}");
    assert!(stderr.contains("spans exported, 0 dropped"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("flow finished with action"), "the program's own output stays on stdout: {stdout}");
}

#[test]
fn an_otlp_grpc_endpoint_receives_one_trace_with_session_and_user_on_every_span() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let endpoint = receiver.endpoint();
    run(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("POCKETFLOW_SESSION_ID", "session-42"),
        ("POCKETFLOW_USER_ID", "user-7"),
    ]);
    let trace = single_trace(&receiver);
    for span in &trace.spans {
        assert_eq!(span.attr_str("langfuse.session.id"), Some("session-42"), "{}", span.name);
        assert_eq!(span.attr_str("langfuse.user.id"), Some("user-7"), "{}", span.name);
    }
}

#[test]
fn an_otlp_http_endpoint_receives_one_trace_at_v1_traces() {
    let receiver = OtlpReceiver::http().unwrap();
    let endpoint = receiver.endpoint();
    run(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
    single_trace(&receiver);
    assert!(receiver.requests().iter().all(|r| r.path == "/v1/traces"));
}

#[test]
fn langfuse_keys_alone_send_to_the_langfuse_route() {
    let receiver = OtlpReceiver::http().unwrap();
    let host = receiver.endpoint();
    run(&[
        ("LANGFUSE_PUBLIC_KEY", "pk-lf-1234"),
        ("LANGFUSE_SECRET_KEY", "sk-lf-5678"),
        ("LANGFUSE_HOST", host.as_str()),
        // Meant for a collector; must not replace Langfuse's credentials.
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20collector-token,x-team=search"),
    ]);
    single_trace(&receiver);
    for request in receiver.requests() {
        assert_eq!(request.path, "/api/public/otel/v1/traces");
        // base64("pk-lf-1234:sk-lf-5678")
        assert_eq!(
            request.headers.get("authorization").map(String::as_str),
            Some("Basic cGstbGYtMTIzNDpzay1sZi01Njc4")
        );
        assert_eq!(request.headers.get("x-langfuse-ingestion-version").map(String::as_str), Some("4"));
    }
}

#[test]
fn an_invalid_variable_stops_the_program_with_its_name() {
    let output = std::process::Command::new(common::example("quickstart"))
        .env("OTEL_TRACES_SAMPLER", "sometimes")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OTEL_TRACES_SAMPLER"), "{stderr}");
}

/// The quickstart's trace as Langfuse and Jaeger list it: each phase span
/// named after its node (an `exec` under one of `Classify`'s items is
/// `Classify.exec`), the phase alone in `pocketflow.span`.
#[test]
fn phase_spans_are_exported_under_their_nodes_names() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let endpoint = receiver.endpoint();
    run(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]);
    let trace = single_trace(&receiver);
    let tree = trace.tree();
    let expected = "\
TicketTriage
  LoadTickets
    LoadTickets.prep
    LoadTickets.exec
    LoadTickets.post
  Classify
    Classify.prep
    Classify.item
      Classify.exec
    Classify.item
      Classify.exec
    Classify.item
      Classify.exec
    Classify.post
  DraftRefunds
    DraftRefunds.prep
    DraftRefunds.exec
      DraftRefunds.retry
    DraftRefunds.exec
      DraftRefunds.retry
    DraftRefunds.exec
    DraftRefunds.post
  Summarize
    Summarize.prep
    Summarize.exec
      Summarize.retry
    Summarize.exec
    Summarize.fallback
    Summarize.post
";
    assert_eq!(tree.trim_end(), expected.trim_end(), "{tree}");
    for span in &trace.spans {
        let phase = span.attr_str("pocketflow.span").unwrap();
        if phase == "event" {
            assert!(span.name.ends_with(".retry"), "{}", span.name);
        } else if let Some((_, suffix)) = span.name.split_once('.') {
            assert_eq!(suffix, phase, "{}", span.name);
        } else {
            assert!(["flow", "node"].contains(&phase), "{}: {phase}", span.name);
        }
    }
}

/// The console tree shows events on their spans, so the console alone gets
/// no event observations: it exports exactly the spans an OTLP endpoint
/// gets, less those.
#[test]
fn the_console_alone_exports_no_event_observations() {
    let output = run(&[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = stderr.lines().rev().find(|l| l.contains("spans exported")).unwrap();
    let console: usize = report.split_whitespace().find_map(|w| w.parse().ok()).unwrap();

    let receiver = OtlpReceiver::grpc().unwrap();
    let endpoint = receiver.endpoint();
    run(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]);
    let trace = single_trace(&receiver);
    let events = trace.spans.iter().filter(|s| s.attr_str("pocketflow.span") == Some("event")).count();
    assert!(events > 0);
    assert_eq!(console, trace.spans.len() - events, "{report}");
}

//! The comprehensive async example, run as a user runs it, against an
//! in-process OTLP receiver: what issue 4 asks of it. Its three concurrent
//! research runs arrive as three traces of their own (plus the follow-up
//! composition's), each with one root and no orphan, flow > node > phase
//! deep, with suspend and resume events from the real polling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use pocketflow_test_support::otlp::{AttrValue, OtlpReceiver, ReceivedTrace};

fn export(receiver: &OtlpReceiver, vars: &[(&str, &str)]) -> Vec<ReceivedTrace> {
    let endpoint = receiver.endpoint();
    let mut all = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
    all.extend_from_slice(vars);
    let output = common::run_example("comprehensive_async_example", &all);
    // The example shuts tracing down before it exits and says what it sent:
    // every span it exported must have arrived, and none been dropped.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = stderr.lines().rev().find(|l| l.contains("spans exported")).expect("a shutdown report");
    let numbers: Vec<usize> = report.split_whitespace().filter_map(|w| w.trim_end_matches(',').parse().ok()).collect();
    // "N spans exported, M dropped", then maybe "; K of the exported are
    // event observations".
    let [exported, dropped, ..] = numbers[..] else { panic!("unexpected report: {report}") };
    assert_eq!(dropped, 0, "{report}");
    assert_eq!(receiver.wait_for_spans(exported, Duration::from_secs(10)).len(), exported, "{report}");
    receiver.traces()
}

#[test]
fn concurrent_research_runs_export_separate_whole_traces_with_suspend_and_resume_events() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let traces = export(&receiver, &[]);

    let research: Vec<&ReceivedTrace> =
        traces.iter().filter(|t| t.roots().first().is_some_and(|r| r.name == "ResearchFlow")).collect();
    assert_eq!(research.len(), 3, "one trace per concurrent run");
    let mut sessions = BTreeSet::new();
    for trace in &research {
        let tree = trace.tree();
        assert_eq!(trace.roots().len(), 1, "{tree}");
        assert!(trace.orphans().is_empty(), "{tree}");
        assert!(trace.depth() >= 3, "flow > node > phase:\n{tree}");
        let root = trace.roots()[0];
        assert_eq!(root.parent_span_id, None);
        sessions.insert(root.attr_str("langfuse.session.id").unwrap().to_owned());
        // The run's session, user and the decorator's tags are on every span.
        let research = AttrValue::String("research".to_owned());
        for span in &trace.spans {
            assert_eq!(span.attr_str("langfuse.session.id"), root.attr_str("langfuse.session.id"), "{}", span.name);
            assert_eq!(span.attr_str("langfuse.user.id"), Some("example-user"), "{}", span.name);
            let tags = span.attr("langfuse.trace.tags");
            assert!(
                matches!(tags, Some(AttrValue::Array(tags)) if tags.contains(&research)),
                "{}: {tags:?}",
                span.name
            );
        }
        let states: BTreeSet<&str> = trace
            .spans
            .iter()
            .flat_map(|s| &s.events)
            .filter(|e| e.name == "pocketflow.lifecycle")
            .filter_map(|e| e.attributes.get("state").and_then(|v| v.as_str()))
            .collect();
        assert!(states.contains("suspended") && states.contains("resuming"), "{states:?}\n{tree}");
        // The nested flow, the parallel batch, the timeout, the context
        // carried into spawned tasks and the fallback are all in the trace.
        let names: BTreeSet<&str> = trace.spans.iter().map(|s| s.name.as_str()).collect();
        for name in ["Normalize", "FetchSources", "Enrich", "SummarizeSources", "Analysis", "Score"] {
            assert!(names.contains(name), "{name} missing:\n{tree}");
        }
        let events: BTreeSet<&str> = trace.spans.iter().flat_map(|s| &s.events).map(|e| e.name.as_str()).collect();
        for event in ["pocketflow.timeout", "pocketflow.async_error", "pocketflow.context", "pocketflow.retry"] {
            assert!(events.contains(event), "{event} missing:\n{tree}");
        }
    }
    assert_eq!(sessions.len(), 3, "each run has its own session: {sessions:?}");
    assert!(
        research.iter().any(|t| t.spans.iter().any(|s| s.attr_str("pocketflow.span") == Some("fallback"))),
        "the quantum run falls back"
    );

    let follow_ups = traces.iter().find(|t| t.roots().first().is_some_and(|r| r.name == "FollowUps")).unwrap();
    let root = follow_ups.roots()[0];
    assert_eq!(root.attr_str("pocketflow.composition.kind"), Some("batch"));
    assert_eq!(follow_ups.spans.iter().filter(|s| s.name == "FollowUpFlow").count(), 2, "{}", follow_ups.tree());
    // A composition's input is what its flows started with.
    let input: serde_json::Value = serde_json::from_str(root.attr_str("langfuse.observation.input").unwrap()).unwrap();
    let flows: Vec<&str> = input.as_array().unwrap().iter().filter_map(|e| e["flow"].as_str()).collect();
    assert_eq!(flows, ["FollowUpFlow", "FollowUpFlow"], "{input}");
}

/// Langfuse shows no span events: the timeouts, async errors and retries of
/// the research runs are also event observations, where and when they
/// happened, none ERROR in runs that got over them.
#[test]
fn timeouts_async_errors_and_retries_are_event_observations_for_langfuse() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let traces = export(&receiver, &[]);
    let mut kinds = BTreeSet::new();
    for trace in &traces {
        for span in trace.spans.iter().filter(|s| s.attr_str("langfuse.observation.type") == Some("event")) {
            let parent = trace.parent(span).expect("under the span where it happened");
            let event_name = span.attr_str("pocketflow.event.name").unwrap();
            assert_eq!(span.start_unix_nano, span.end_unix_nano, "a point in time");
            assert!(
                parent.events.iter().any(|e| e.name == event_name && e.time_unix_nano == span.start_unix_nano),
                "{}: the span event stays for Jaeger, at the same time",
                span.name
            );
            assert!(span.attr_str("langfuse.observation.status_message").is_some_and(|m| !m.is_empty()));
            kinds.insert(span.name.rsplit('.').next().unwrap().to_owned());
            if trace.roots()[0].status.code != pocketflow_test_support::otlp::StatusCode::Error {
                assert_eq!(span.attr_str("langfuse.observation.level"), Some("WARNING"), "{}", span.name);
            }
        }
    }
    for kind in ["timeout", "async_error", "retry"] {
        assert!(kinds.contains(kind), "no {kind} event observation: {kinds:?}");
    }
}

#[test]
fn with_no_environment_every_trace_prints_as_a_tree() {
    let output = common::run_example("comprehensive_async_example", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("ResearchFlow [chain]").count(), 3, "{stderr}");
    assert!(stderr.contains("FollowUps [chain]"), "{stderr}");
    assert!(stderr.contains("⏱ timeout: related_topics"), "{stderr}");
    assert!(stderr.contains("0 dropped"), "{stderr}");
}

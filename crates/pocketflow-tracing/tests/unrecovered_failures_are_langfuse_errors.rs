//! A failure the run did not recover from is ERROR in Langfuse
//! (`langfuse.observation.level`), on the node and on the flow, with its
//! message as the status message; the failed attempts on the way are
//! WARNING, since a retry could still have saved the node. With error
//! details off, the levels stay and the messages go.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use pocketflow::{Action, BoxError, Ctx, Flow, Node, SharedStore};
use pocketflow_test_support::otlp::{ReceivedSpan, ReceivedTrace};

use common::{all_spans, export, span_named};

const MESSAGE: &str = "the model is down";

/// A node whose two attempts both fail with [`MESSAGE`], and no fallback.
struct AlwaysDown;

impl Node for AlwaysDown {
    type Prep = ();
    type Exec = ();

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "AlwaysDown".into()
    }

    fn max_retries(&self) -> usize {
        2
    }

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        Err(MESSAGE.into())
    }

    fn post(&self, _: &Ctx<'_>, _: &SharedStore, (): (), (): ()) -> Result<Action, BoxError> {
        Ok(Action::NONE)
    }
}

fn run_failing_flow() {
    let mut flow = Flow::named("Outage");
    flow.start(AlwaysDown);
    assert!(flow.run(&SharedStore::new()).is_err());
}

fn level(span: &ReceivedSpan) -> Option<&str> {
    span.attr_str("langfuse.observation.level")
}

fn execs(traces: &[ReceivedTrace]) -> Vec<&ReceivedSpan> {
    all_spans(traces).filter(|s| s.attr_str("pocketflow.span") == Some("exec")).collect()
}

#[test]
fn the_node_and_the_flow_are_errors_and_the_attempts_warnings() {
    let ((), traces) = export(|b| b, run_failing_flow);
    for name in ["Outage", "AlwaysDown"] {
        let span = span_named(&traces, name);
        assert_eq!(level(span), Some("ERROR"), "{name}");
        let message = span.attr_str("langfuse.observation.status_message").unwrap_or_default();
        assert!(message.contains(MESSAGE), "{name}: {message:?}");
    }
    let attempts = execs(&traces);
    assert_eq!(attempts.len(), 2);
    for attempt in attempts {
        assert_eq!(level(attempt), Some("WARNING"));
        assert_eq!(attempt.attr_str("langfuse.observation.status_message"), Some(MESSAGE));
    }
}

#[test]
fn with_error_details_off_the_levels_stay_without_messages() {
    let ((), traces) = export(|b| b.trace_errors(false), run_failing_flow);
    assert_eq!(level(span_named(&traces, "AlwaysDown")), Some("ERROR"));
    assert_eq!(level(execs(&traces)[0]), Some("WARNING"));
    for span in all_spans(&traces) {
        assert!(span.attr("langfuse.observation.status_message").is_none(), "{}: {span:#?}", span.name);
    }
}

fn event_observations(traces: &[ReceivedTrace]) -> Vec<&ReceivedSpan> {
    all_spans(traces).filter(|s| s.attr_str("langfuse.observation.type") == Some("event")).collect()
}

#[test]
fn the_retry_before_a_failure_is_a_warning_event_observation_under_its_attempt() {
    let ((), traces) = export(|b| b, run_failing_flow);
    let events = event_observations(&traces);
    assert_eq!(events.len(), 1, "one retry between the two attempts");
    let retry = events[0];
    assert_eq!(retry.name, "AlwaysDown.retry");
    assert_eq!(level(retry), Some("WARNING"), "a retry is not where the run failed");
    assert_eq!(
        retry.attr_str("langfuse.observation.status_message"),
        Some(format!("exec attempt failed; retrying: {MESSAGE}").as_str())
    );
    assert_eq!(retry.attr("langfuse.observation.metadata.attempt").and_then(|v| v.as_i64()), Some(0));
    let first_attempt =
        execs(&traces).into_iter().find(|s| s.attr("pocketflow.attempt").and_then(|a| a.as_i64()) == Some(0));
    assert_eq!(retry.parent_span_id.as_deref(), first_attempt.map(|s| s.span_id.as_str()));
}

#[test]
fn event_observations_can_be_switched_off_and_the_span_events_stay() {
    let ((), traces) = export(|b| b.event_observations(false), run_failing_flow);
    assert!(event_observations(&traces).is_empty());
    assert!(all_spans(&traces).flat_map(|s| &s.events).any(|e| e.name == "pocketflow.retry"));
}

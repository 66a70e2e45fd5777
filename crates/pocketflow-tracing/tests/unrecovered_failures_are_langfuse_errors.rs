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

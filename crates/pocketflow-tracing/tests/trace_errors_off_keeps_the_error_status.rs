//! `POCKETFLOW_TRACE_ERRORS=false` (`trace_errors(false)`) removes error
//! details, the messages and `exception` events, and nothing else: a span
//! that failed still has the OpenTelemetry status ERROR, as
//! `docs/configuration.md` says. Checked on a real engine flow exported to
//! an OTLP receiver.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use pocketflow::{Action, BoxError, Ctx, Flow, Node, SharedStore};
use pocketflow_test_support::otlp::{ReceivedSpan, ReceivedTrace, StatusCode};

use common::{export, span_named};

const MESSAGE: &str = "the model is down";

/// A node whose `exec` always fails with [`MESSAGE`].
struct Fails;

impl Node for Fails {
    type Prep = ();
    type Exec = ();

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "Fails".into()
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
    let mut flow = Flow::named("Broken");
    flow.start(Fails);
    assert!(flow.run(&SharedStore::new()).is_err());
}

/// The spans the failure went through: the flow, the node, its `exec`.
fn failed_spans(traces: &[ReceivedTrace]) -> [&ReceivedSpan; 3] {
    [span_named(traces, "Broken"), span_named(traces, "Fails"), span_named(traces, "Fails.exec")]
}

#[test]
fn with_trace_errors_off_failed_spans_keep_the_error_status_without_the_message() {
    let ((), traces) = export(|b| b.trace_errors(false), run_failing_flow);
    for span in failed_spans(&traces) {
        assert_eq!(span.status.code, StatusCode::Error, "{} still failed: {span:#?}", span.name);
        assert_eq!(span.status.message, "", "{} has no description", span.name);
        assert!(span.events.iter().all(|e| e.name != "exception"), "{}: {:?}", span.name, span.events);
    }
    let error_event = traces
        .iter()
        .flat_map(|t| &t.spans)
        .flat_map(|s| &s.events)
        .find(|e| e.name == "pocketflow.error")
        .expect("the failure is still reported");
    assert!(!error_event.attributes.contains_key("error"), "{error_event:?}");
    for span in traces.iter().flat_map(|t| &t.spans) {
        let shown = format!("{span:?}");
        assert!(!shown.contains(MESSAGE), "the message leaked into {}: {shown}", span.name);
        assert!(span.attr("error").is_none(), "{}", span.name);
    }
}

#[test]
fn with_trace_errors_on_failed_spans_carry_the_message_and_an_exception_event() {
    let ((), traces) = export(|b| b, run_failing_flow);
    for span in failed_spans(&traces) {
        assert_eq!(span.status.code, StatusCode::Error, "{}", span.name);
        assert!(span.status.message.contains(MESSAGE), "{}: {:?}", span.name, span.status);
        let exception = span.events.iter().find(|e| e.name == "exception").expect("an exception event");
        let message = exception.attributes.get("exception.message").and_then(|v| v.as_str()).unwrap_or_default();
        assert!(message.contains(MESSAGE), "{message}");
    }
}

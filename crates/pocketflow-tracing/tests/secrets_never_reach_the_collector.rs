//! Secrets in a run (node inputs, the shared store, error messages) reach
//! neither a real OTLP receiver nor the console tree, with the default key
//! list: flows run on the real engine, through the layer, to the receiver.
//!
//! Every secret contains `zz-secret`; a test fails if that text appears
//! anywhere in what was received, and checks that `[REDACTED]` stands where
//! each secret was (so that it cannot pass by recording nothing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Ctx, ErrorHandler, Flow, Node, SharedStore, with_timeout};
use pocketflow_test_support::otlp::{ReceivedSpan, ReceivedTrace};
use pocketflow_tracing::{ConsoleExporter, TracingConfig};
use serde_json::{Value, json};

use common::export;

const LEAK: &str = "zz-secret";

/// The node input of issue 9: an escaped quote before the secrets.
fn node_input() -> Value {
    json!({"note": "he said \"hi", "api_key": "sk-zz-secret-1", "nested": {"password": "zz-secret-2"}})
}

/// The shared store of issue 9: the flow's input and output.
fn shared_store() -> SharedStore {
    SharedStore::from_iter([
        ("comment", Value::from("odd \" quote")),
        ("password", Value::from("zz-secret-3")),
        ("token", Value::from("zz-secret-4")),
    ])
}

/// Reads [`node_input`] in `prep`; its `exec` gets it too.
struct Login;

impl Node for Login {
    type Prep = Value;
    type Exec = String;

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Value, BoxError> {
        Ok(node_input())
    }

    fn exec(&self, _: &Ctx<'_>, _: &Value) -> Result<String, BoxError> {
        Ok("logged in".to_owned())
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Value, out: String) -> Result<Action, BoxError> {
        shared.set("status", out)?;
        Ok(Action::NONE)
    }
}

/// Fails twice, with credentials in each message, and reports an async
/// error with one too.
struct CallUpstream;

impl Node for CallUpstream {
    type Prep = ();
    type Exec = ();

    fn max_retries(&self) -> usize {
        2
    }

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, ctx: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        if ctx.attempt() == 0 {
            let refused = std::io::Error::other("upstream refused password=zz-secret-5");
            ErrorHandler::new().handle(&refused, Some("CallUpstream"), Some("Failing"));
            Err("401: Bearer zz-secret-6 rejected".into())
        } else {
            Err("connect https://app:zz-secret-7@db.example.com/x failed, api-key: zz-secret-8".into())
        }
    }
}

/// Times out on a name that holds a URL with a password.
struct SlowFetch;

impl AsyncNode for SlowFetch {
    type Prep = ();
    type Exec = ();

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        // Whatever the machine's speed, an hour's sleep loses to 1 ms.
        let late = tokio::time::sleep(Duration::from_secs(3600));
        with_timeout("GET https://svc:zz-secret-9@slow.example.com", Duration::from_millis(1), late).await?;
        Ok(())
    }
}

fn all_spans(traces: &[ReceivedTrace]) -> Vec<&ReceivedSpan> {
    traces.iter().flat_map(|trace| &trace.spans).collect()
}

/// Fails when any secret reached the receiver: in a name, attribute,
/// event or status.
fn assert_no_leak(traces: &[ReceivedTrace]) {
    for span in all_spans(traces) {
        let everything = format!("{span:?}");
        assert!(!everything.contains(LEAK), "span {} leaks a secret: {everything}", span.name);
    }
}

fn span<'a>(traces: &'a [ReceivedTrace], name: &str) -> &'a ReceivedSpan {
    let spans = all_spans(traces);
    spans.into_iter().find(|span| span.name == name).unwrap_or_else(|| panic!("no span {name}"))
}

fn json_attr(span: &ReceivedSpan, key: &str) -> Value {
    let text = span.attr_str(key).unwrap_or_else(|| panic!("{} has no {key}", span.name));
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{} {key} is not JSON ({error}): {text}", span.name))
}

#[test]
fn secrets_in_node_inputs_and_the_shared_store_are_redacted() {
    let (result, traces) = export(
        |config| config,
        || {
            let mut flow = Flow::named("Secrets");
            flow.start(Login);
            flow.run(&shared_store())
        },
    );
    result.unwrap();
    assert_no_leak(&traces);

    let login = span(&traces, "Login");
    let expected = json!({"note": "he said \"hi", "api_key": "[REDACTED]", "nested": {"password": "[REDACTED]"}});
    assert_eq!(json_attr(login, "langfuse.observation.input"), expected);
    assert_eq!(json_attr(login, "input.value"), expected);

    let flow = span(&traces, "Secrets");
    let store = json!({"comment": "odd \" quote", "password": "[REDACTED]", "token": "[REDACTED]"});
    assert_eq!(json_attr(flow, "langfuse.observation.input"), store);
    let mut output = store;
    output["status"] = json!("logged in");
    assert_eq!(json_attr(flow, "langfuse.observation.output"), output);
}

#[test]
fn a_payload_cut_by_the_size_cap_inside_a_secret_keeps_none_of_it() {
    let long_secret = format!("zz-secret-{}", "x".repeat(400));
    let long_url = format!("connect https://app:zz-secret-{}@db.example.com failed", "y".repeat(400));
    let (result, traces) = export(
        |config| config.max_payload_bytes(100),
        || {
            let shared = shared_store();
            shared.set("password", &long_secret).unwrap();
            let mut flow = Flow::named("Cut");
            flow.start(Failing(long_url.clone()));
            flow.run(&shared)
        },
    );
    assert!(result.is_err());
    assert_no_leak(&traces);

    let flow = span(&traces, "Cut");
    let input = flow.attr_str("langfuse.observation.input").unwrap();
    assert!(input.starts_with(r#"{"comment":"odd \" quote","password":"[REDACTED]""#), "{input}");
    let message = &flow.status.message;
    assert!(message.contains("app:[REDACTED]"), "{message}");
}

/// Fails with the message it holds.
struct Failing(String);

impl Node for Failing {
    type Prep = ();
    type Exec = ();

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Err(self.0.clone().into())
    }
}

#[test]
fn credentials_in_error_messages_are_masked_everywhere_they_are_recorded() {
    let (result, traces) = export(
        |config| config,
        || {
            let mut flow = Flow::named("Failing");
            flow.start(CallUpstream);
            flow.run(&SharedStore::new())
        },
    );
    assert!(result.is_err());
    assert_no_leak(&traces);

    let attempts: Vec<&ReceivedSpan> =
        all_spans(&traces).into_iter().filter(|s| s.attr_str("pocketflow.span") == Some("exec")).collect();
    assert_eq!(attempts.len(), 2);
    let first = attempts.iter().find(|s| s.attr("pocketflow.attempt").and_then(|a| a.as_i64()) == Some(0)).unwrap();
    assert_eq!(first.status.message, "401: Bearer [REDACTED] rejected");
    let async_error = first.events.iter().find(|e| e.name == "pocketflow.async_error").expect("an async error");
    assert_eq!(async_error.attributes["error"].as_str(), Some("upstream refused password=[REDACTED]"));

    let retry = all_spans(&traces)
        .into_iter()
        .flat_map(|s| &s.events)
        .find(|e| e.name == "pocketflow.retry")
        .expect("a retry event");
    assert_eq!(retry.attributes["error"].as_str(), Some("401: Bearer [REDACTED] rejected"));
    let expected = "connect https://app:[REDACTED]@db.example.com/x failed, api-key: [REDACTED]";
    for failed in [span(&traces, "CallUpstream"), span(&traces, "Failing")] {
        assert!(failed.status.message.contains(expected), "{}: {}", failed.name, failed.status.message);
        let exception = failed.events.iter().find(|e| e.name == "exception").expect("an exception event");
        let message = exception.attributes["exception.message"].as_str().unwrap();
        assert!(message.contains(expected), "{}: {message}", failed.name);
    }
}

#[test]
fn a_timeout_named_after_a_url_with_a_password_is_masked() {
    let (result, traces) = export(
        |config| config,
        || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let mut flow = AsyncFlow::named("Slow");
            flow.start(SlowFetch);
            runtime.block_on(flow.run(&SharedStore::new()))
        },
    );
    assert!(result.is_err(), "{result:?}");
    assert_no_leak(&traces);

    let timeout = all_spans(&traces)
        .into_iter()
        .flat_map(|s| &s.events)
        .find(|e| e.name == "pocketflow.timeout")
        .expect("a timeout event");
    assert_eq!(timeout.attributes["name"].as_str(), Some("GET https://svc:[REDACTED]@slow.example.com"));
    assert!(span(&traces, "Slow").status.message.contains("svc:[REDACTED]@"));
}

#[test]
fn the_console_tree_prints_masked_errors() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let buffer = common::Printed::default();
    let (layer, guard) =
        TracingConfig::builder().build().unwrap().layer_with_exporter(ConsoleExporter::new(buffer.clone())).unwrap();
    let result = tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let mut flow = Flow::named("Failing");
        flow.start(CallUpstream);
        flow.run(&shared_store())
    });
    assert!(result.is_err());
    assert!(guard.shutdown().completed);
    let text = buffer.text();
    assert!(!text.contains(LEAK), "the console leaks a secret:\n{text}");
    assert!(text.contains("Bearer [REDACTED]") && text.contains("app:[REDACTED]@"), "{text}");
}

#[test]
fn a_configured_key_list_replaces_the_defaults() {
    let (result, traces) = export(
        |config| config.redact_keys(vec!["Customer-SSN".to_owned()]),
        || {
            let shared = SharedStore::from_iter([("customer_ssn", "zz-secret-10"), ("password", "shown")]);
            let mut flow = Flow::named("Replaced");
            flow.start(Failing("failed for customerSsn=zz-secret-11, password=shown".to_owned()));
            flow.run(&shared)
        },
    );
    assert!(result.is_err());
    assert_no_leak(&traces);
    let flow = span(&traces, "Replaced");
    assert_eq!(
        json_attr(flow, "langfuse.observation.input"),
        json!({"customer_ssn": "[REDACTED]", "password": "shown"})
    );
    assert!(flow.status.message.contains("customerSsn=[REDACTED], password=shown"), "{}", flow.status.message);
}

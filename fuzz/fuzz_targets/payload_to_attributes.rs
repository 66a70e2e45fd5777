//! Payloads to span attributes, through the public path: a flow over a
//! store holding the input (as JSON when it parses, else as text) and known
//! secrets, and a node that fails with the input as its error, traced by
//! the layer into an exporter that keeps what it gets. Every string it
//! gets must be bounded by the payload cap (or the name bound) plus the
//! truncation mark, and no secret may reach it.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use libfuzzer_sys::fuzz_target;
use opentelemetry::{Array, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use pocketflow::{Action, BoxError, Ctx, Flow, Node, SharedStore};
use pocketflow_tracing::{MAX_NAME_BYTES, TracingConfig, TracingGuard};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt as _;

const SECRET: &str = "FUZZSECRET";
const CAP: usize = 512;
/// `…[truncated: over N bytes]` and the like.
const MARK: usize = 64;

#[derive(Debug, Clone, Default)]
struct Keep(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Keep {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend(batch);
        Ok(())
    }
}

struct Harness {
    dispatch: tracing::Dispatch,
    guard: TracingGuard,
    kept: Keep,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let kept = Keep::default();
        let config = TracingConfig::builder().max_payload_bytes(CAP).progress(false).build().expect("config");
        let (layer, guard) = config.layer_with_exporter(kept.clone()).expect("layer");
        Harness { dispatch: tracing::Dispatch::new(tracing_subscriber::registry().with(layer)), guard, kept }
    })
}

/// Fails with the input as its error, a credential after it.
struct Fails(String);

impl Node for Fails {
    type Prep = ();
    type Exec = ();

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        Err(format!("{} password={SECRET}-error", self.0).into())
    }

    fn post(&self, _: &Ctx<'_>, _: &SharedStore, (): (), (): ()) -> Result<Action, BoxError> {
        Ok(Action::NONE)
    }
}

fn check_text(what: &str, text: &str, check_secret: bool) {
    assert!(text.len() <= CAP.max(MAX_NAME_BYTES) + MARK, "{what} is {} bytes: {text:.200}", text.len());
    if check_secret {
        assert!(!text.contains(SECRET), "{what} shows a secret: {text}");
    }
}

fn check_value(what: &str, value: &Value, check_secret: bool) {
    match value {
        Value::String(text) => check_text(what, text.as_str(), check_secret),
        Value::Array(Array::String(items)) => {
            for item in items {
                check_text(what, item.as_str(), check_secret);
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let check_secret = !text.contains(SECRET);
    let input = serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|_| json!(text));
    let store = SharedStore::new();
    store.insert("input", input);
    store.insert("password", json!(format!("{SECRET}-password")));
    store.insert("settings", json!({"api_key": format!("{SECRET}-key"), "nested": [{"token": format!("{SECRET}-token")}]}));
    let mut flow = Flow::named("Fuzz");
    flow.start(Fails(text));

    let harness = harness();
    let _ = tracing::dispatcher::with_default(&harness.dispatch, || flow.run(&store));
    assert!(harness.guard.flush(), "the export thread answered");
    let spans = std::mem::take(&mut *harness.kept.0.lock().unwrap_or_else(PoisonError::into_inner));

    assert!(!spans.is_empty(), "nothing was exported");
    for span in &spans {
        check_text("a span name", &span.name, check_secret);
        if let opentelemetry::trace::Status::Error { description } = &span.status {
            check_text("a status description", description, check_secret);
        }
        for attribute in &span.attributes {
            assert!(!attribute.key.as_str().is_empty(), "an empty attribute key");
            check_value(attribute.key.as_str(), &attribute.value, check_secret);
        }
        for event in span.events.iter() {
            for attribute in &event.attributes {
                check_value(attribute.key.as_str(), &attribute.value, check_secret);
            }
        }
    }
});

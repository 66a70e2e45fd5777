//! A flow over a big store records its input and output at the payload
//! cap without serializing or copying the whole store: once the layer has
//! the start it needs, the engine's JSON is refused the rest. The cut is
//! marked with a lower bound of the value's length, and redaction still
//! sees a secret that begins before the cut and runs far past it.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use pocketflow::{Action, BoxError, Ctx, Flow, Node};
use serde::ser::{Serialize, SerializeSeq, Serializer};

use common::{export, span_named};

/// The default payload cap.
const CAP: usize = 64 * 1024;
/// Chunks of the document, and their size: 10 MB in all.
const CHUNKS: usize = 10 * 1024;
const CHUNK: usize = 1024;

/// A store holding a 10 MB document, which counts how many of its chunks
/// were serialized.
#[derive(serde::Serialize)]
struct BigStore {
    /// Fills the store up to just before the cap.
    filler: String,
    /// Starts before the cap and runs 30 KB past it: longer than what the
    /// layer reads past the cap for redaction.
    api_key: String,
    document: Document,
}

struct Document {
    serialized: AtomicUsize,
}

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let chunk = "d".repeat(CHUNK);
        let mut seq = serializer.serialize_seq(Some(CHUNKS))?;
        for _ in 0..CHUNKS {
            self.serialized.fetch_add(1, Ordering::Relaxed);
            seq.serialize_element(&chunk)?;
        }
        seq.end()
    }
}

/// A node that does nothing, over any store.
struct Pass;

impl<S: Send + Sync + 'static> Node<S> for Pass {
    type Prep = ();
    type Exec = ();

    fn prep(&self, _: &Ctx<'_>, _: &S) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        Ok(())
    }

    fn post(&self, _: &Ctx<'_>, _: &S, (): (), (): ()) -> Result<Action, BoxError> {
        Ok(Action::NONE)
    }
}

#[test]
fn a_10_mb_store_is_cut_at_the_cap_after_a_fraction_of_it_is_serialized() {
    let store = BigStore {
        filler: "f".repeat(CAP - 100),
        api_key: format!("sk-{}", "k".repeat(30 * 1024)),
        document: Document { serialized: AtomicUsize::new(0) },
    };
    let mut flow = Flow::named("BigStoreFlow");
    flow.start(Pass);

    let (result, traces) = export(|b| b, || flow.run(&store));
    result.unwrap();

    // The store is recorded twice (input and output). Whole, that is
    // 2 × 10,240 chunks; cut, only what fits in the cap and the margin.
    let serialized = store.document.serialized.load(Ordering::Relaxed);
    assert!(serialized < 200, "{serialized} chunks of the document were serialized");

    let root = span_named(&traces, "BigStoreFlow");
    for key in ["langfuse.observation.input", "langfuse.observation.output"] {
        let value = root.attr_str(key).unwrap_or_else(|| panic!("no {key}"));
        assert!(value.len() <= CAP + 64, "{key} is {} bytes", value.len());
        assert!(value.starts_with("{\"filler\":\"fff"), "{key}: {}", &value[..40]);
        assert!(!value.contains("sk-k"), "{key} leaks the start of the key");
        assert!(value.contains("\"api_key\":\"[REDACTED]"), "{key}: …{}", &value[value.len() - 120..]);
        let mark = value.rsplit_once("…[truncated: over ").map(|(_, mark)| mark);
        let seen: usize = mark.and_then(|m| m.strip_suffix(" bytes]")).and_then(|n| n.parse().ok()).unwrap_or(0);
        assert!(seen > CAP, "{key} ends without a lower-bound mark: …{}", &value[value.len() - 60..]);
    }
}

#[test]
fn a_store_under_the_cap_is_recorded_whole() {
    #[derive(serde::Serialize)]
    struct SmallStore {
        text: String,
    }
    // Bigger than the engine's 64 KiB buffer, so streamed, yet under a
    // raised cap: recorded whole, with no mark.
    let store = SmallStore { text: "é".repeat(50 * 1024) };
    let mut flow = Flow::named("SmallStoreFlow");
    flow.start(Pass);

    let (result, traces) = export(|b| b.max_payload_bytes(512 * 1024), || flow.run(&store));
    result.unwrap();

    let input = span_named(&traces, "SmallStoreFlow").attr_str("langfuse.observation.input").unwrap();
    assert_eq!(input, serde_json::to_string(&serde_json::json!({ "text": store.text })).unwrap());
}

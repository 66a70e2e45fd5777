//! Inputs and outputs are recorded as JSON only when a subscriber asks for
//! them: with no subscriber, or with a layer that ignores `input`/`output`,
//! no value is ever serialized.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use pocketflow::{Action, BoxError, Ctx, Flow, Node};
use pocketflow_test_support::Capture;
use serde::{Serialize, Serializer};
use tracing_subscriber::layer::SubscriberExt;

static SERIALIZED: AtomicUsize = AtomicUsize::new(0);

/// A value that counts how often it is serialized.
struct Counted(u32);

impl Serialize for Counted {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SERIALIZED.fetch_add(1, Ordering::SeqCst);
        serializer.serialize_u32(self.0)
    }
}

/// A typed store that counts its serializations too.
struct Store(u32);

impl Serialize for Store {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SERIALIZED.fetch_add(1, Ordering::SeqCst);
        serializer.serialize_u32(self.0)
    }
}

struct Double;

impl Node<Store> for Double {
    type Prep = Counted;
    type Exec = Counted;
    fn prep(&self, _: &Ctx<'_>, store: &Store) -> Result<Counted, BoxError> {
        Ok(Counted(store.0))
    }
    fn exec(&self, _: &Ctx<'_>, prep: &Counted) -> Result<Counted, BoxError> {
        Ok(Counted(prep.0 * 2))
    }
    fn post(&self, _: &Ctx<'_>, _: &Store, _: Counted, _: Counted) -> Result<Action, BoxError> {
        Ok(Action::NONE)
    }
}

fn flow() -> Flow<Store> {
    let mut flow = Flow::named("Lazy");
    let a = flow.start(Double);
    let b = flow.add(Double);
    flow.link(a >> b);
    flow
}

#[test]
fn values_are_serialized_only_when_a_layer_formats_them() {
    let flow = flow();
    let store = Store(21);

    flow.run(&store).unwrap();
    assert_eq!(SERIALIZED.load(Ordering::SeqCst), 0, "no subscriber: nothing serialized");

    let ignoring = Capture::ignoring(&["input", "output"]);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(ignoring.clone()), || flow.run(&store))
        .unwrap();
    assert_eq!(SERIALIZED.load(Ordering::SeqCst), 0, "inputs/outputs ignored: nothing serialized");
    let captured = ignoring.snapshot();
    assert_eq!(captured.spans_named("node").count(), 2, "the spans themselves were recorded");

    let all = Capture::new();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(all.clone()), || flow.run(&store)).unwrap();
    assert!(SERIALIZED.load(Ordering::SeqCst) > 0, "a layer that formats them gets JSON");
    let captured = all.snapshot();
    let (_, first) = captured.spans_named("node").next().unwrap();
    assert_eq!(first.fields["input"], "21");
    assert_eq!(first.fields["output"], "42");
    let (_, root) = captured.spans_named("flow").next().unwrap();
    assert_eq!(root.fields["input"], "21", "the flow records the store");
}

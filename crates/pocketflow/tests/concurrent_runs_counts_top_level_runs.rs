//! `concurrent` (exported as `pocketflow.concurrent_runs`) is the number of
//! top-level runs in flight in the process when a run started, itself
//! included, and it is recorded only on the outermost span of a top-level
//! run. Flows run inside another run (a composition's flows, a flow run
//! from a node's `exec`) neither count nor record it.
//!
//! The count is process-wide by design, so this file holds a single test:
//! it is its own process, and no other test's runs can change the figures.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;
use std::sync::Arc;

use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Composition, Ctx, SharedStore};
use pocketflow_test_support::{Capture, Captured};
use tokio::sync::Barrier;
use tracing_subscriber::layer::SubscriberExt;

/// Waits at `barrier` in `exec`, so the runs that share it overlap.
struct Meet {
    barrier: Arc<Barrier>,
}

impl AsyncNode for Meet {
    type Prep = ();
    type Exec = ();

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        self.barrier.wait().await;
        Ok(())
    }
}

/// Runs the flow `Inner` from its `exec`: a run inside a run.
struct RunsInner;

impl AsyncNode for RunsInner {
    type Prep = ();
    type Exec = ();

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        flow("Inner", 1).run(&SharedStore::new()).await?;
        Ok(())
    }

    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        Ok(Action::NONE)
    }
}

fn flow(name: impl Into<Cow<'static, str>>, meet: usize) -> AsyncFlow {
    let mut flow = AsyncFlow::named(name);
    flow.start(Meet { barrier: Arc::new(Barrier::new(meet)) });
    flow
}

fn flow_meeting(name: &'static str, barrier: &Arc<Barrier>) -> AsyncFlow {
    let mut flow = AsyncFlow::named(name);
    flow.start(Meet { barrier: Arc::clone(barrier) });
    flow
}

/// `concurrent` of the `flow` or `composition` span named `name`.
fn concurrent(captured: &Captured, span: &str, name: &str) -> Option<String> {
    let mut found = captured.spans_named(span).filter(|(_, s)| s.fields.get("name").map(String::as_str) == Some(name));
    let (_, found_span) = found.next().unwrap_or_else(|| panic!("no {span} span named {name}"));
    assert!(found.next().is_none(), "one {span} span named {name}");
    assert!(found_span.declared.contains(&"concurrent"), "{span} spans declare the field");
    found_span.fields.get("concurrent").cloned()
}

#[tokio::test(flavor = "current_thread")]
async fn only_top_level_runs_count_and_record_the_runs_in_flight() {
    let capture = Capture::new();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

    // Three top-level runs that wait for each other: in flight together.
    let barrier = Arc::new(Barrier::new(3));
    let (a, b, c) = (flow_meeting("A", &barrier), flow_meeting("B", &barrier), flow_meeting("C", &barrier));
    let (store_a, store_b, store_c) = (SharedStore::new(), SharedStore::new(), SharedStore::new());
    let (ra, rb, rc) = tokio::join!(a.run(&store_a), b.run(&store_b), c.run(&store_c));
    for result in [ra, rb, rc] {
        result.unwrap();
    }

    // A top-level composition of two flows that wait for each other.
    let both = Arc::new(Barrier::new(2));
    let (d, e) = (flow_meeting("D", &both), flow_meeting("E", &both));
    let (store_d, store_e) = (SharedStore::new(), SharedStore::new());
    let results = Composition::parallel("Together").run([d.run(&store_d), e.run(&store_e)]).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    // A flow run from a node's `exec`.
    let mut outer = AsyncFlow::named("Outer");
    outer.start(RunsInner);
    outer.run(&SharedStore::new()).await.unwrap();

    // Every run has ended: the next top-level run is alone again.
    flow("Last", 1).run(&SharedStore::new()).await.unwrap();

    let captured = capture.snapshot();
    let mut counts: Vec<String> = ["A", "B", "C"].iter().map(|n| concurrent(&captured, "flow", n).unwrap()).collect();
    counts.sort();
    assert_eq!(counts, ["1", "2", "3"], "the three overlapping runs see 1, 2 and 3 in flight");

    assert_eq!(concurrent(&captured, "composition", "Together").as_deref(), Some("1"));
    assert_eq!(concurrent(&captured, "flow", "D"), None, "a composition's flow is not a top-level run");
    assert_eq!(concurrent(&captured, "flow", "E"), None, "a composition's flow is not a top-level run");

    assert_eq!(concurrent(&captured, "flow", "Outer").as_deref(), Some("1"));
    assert_eq!(concurrent(&captured, "flow", "Inner"), None, "a flow run from a node is not a top-level run");

    assert_eq!(concurrent(&captured, "flow", "Last").as_deref(), Some("1"), "nested runs left no count behind");
}

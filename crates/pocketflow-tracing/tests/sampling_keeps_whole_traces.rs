//! The sampler decides once per trace, at its root: a kept trace is kept
//! whole (nested flows, phases, the user's own spans), a dropped one leaves
//! no span behind, not even an orphan. Subscribers are thread-local (the
//! flows are sync), so the tests share this binary.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::{MarkerNode, WAIT, assert_whole, otlp, store};
use pocketflow::{Action, BoxError, Ctx, Flow, Node, SharedStore};
use pocketflow_test_support::otlp::OtlpReceiver;
use pocketflow_tracing::{Protocol, Sampler, ShutdownReport};
use tracing_subscriber::layer::SubscriberExt as _;

const RUNS: usize = 200;

/// Spans of one run of [`nested_flow`]: `Outer`; `Fetch` with its three
/// phases and the user's `fetch_page` span under `exec`; `Inner`; `Load`
/// with its three phases.
const SPANS_PER_RUN: usize = 1 + (4 + 1) + 1 + 4;

#[tracing::instrument]
fn fetch_page(marker: &str) -> usize {
    tracing::info!("fetched");
    marker.len()
}

/// Calls the user's instrumented [`fetch_page`] from `exec`.
struct Fetch;

impl Node for Fetch {
    type Prep = String;
    type Exec = usize;

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get(common::MARKER)?)
    }

    fn exec(&self, _: &Ctx<'_>, marker: &String) -> Result<usize, BoxError> {
        Ok(fetch_page(marker))
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, size: usize) -> Result<Action, BoxError> {
        shared.set("size", size)?;
        Ok(Action::NONE)
    }
}

/// `Outer`: `Fetch >> Inner`, where `Inner` is a nested flow of one `Load`.
fn nested_flow() -> Flow {
    let mut inner = Flow::named("Inner");
    inner.start(MarkerNode("Load"));
    let mut outer = Flow::named("Outer");
    let fetch = outer.start(Fetch);
    let inner = outer.add(inner);
    outer.link(fetch >> inner);
    outer
}

/// Runs [`RUNS`] nested flows, each with its own marker, under `sampler`.
fn run_sampled(receiver: &OtlpReceiver, sampler: Sampler) -> ShutdownReport {
    let (layer, guard) = otlp(&receiver.endpoint(), Protocol::Grpc).sampler(sampler).build().unwrap().layer().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..RUNS {
            nested_flow().run(&store(&format!("run-{i}"))).unwrap();
        }
    });
    guard.shutdown()
}

#[test]
fn a_half_ratio_keeps_some_traces_and_every_kept_trace_is_whole() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let report = run_sampled(&receiver, Sampler::TraceIdRatio(0.5));
    assert!(report.completed, "{report}");
    // Unsampled spans are never recorded, so never counted as dropped.
    assert_eq!(report.stats.dropped, 0, "{report}");
    let exported = usize::try_from(report.stats.exported).unwrap();
    assert_eq!(exported % SPANS_PER_RUN, 0, "a partial trace was exported: {report}");
    let kept = exported / SPANS_PER_RUN;
    assert!(0 < kept && kept < RUNS, "kept {kept} of {RUNS} traces");
    // Binomial(200, 0.5): outside 40..=160 is beyond 8 standard deviations.
    assert!((40..=160).contains(&kept), "kept {kept} of {RUNS} traces at a 0.5 ratio");

    assert_eq!(receiver.wait_for_spans(exported, WAIT).len(), exported);
    let traces = receiver.traces();
    assert_eq!(traces.len(), kept);
    let mut markers = BTreeSet::new();
    for trace in &traces {
        let root = assert_whole(trace, SPANS_PER_RUN);
        let tree = trace.tree();
        assert_eq!(root.name, "Outer", "{tree}");
        let marker = trace
            .spans
            .iter()
            .find(|s| s.name == "Load")
            .and_then(|load| load.attr_str("langfuse.observation.input"))
            .unwrap_or_default()
            .to_owned();
        assert!(markers.insert(marker.clone()), "two traces of run {marker}");
        let paths: BTreeSet<Vec<String>> = trace.spans.iter().map(|s| trace.path(s)).collect();
        for expected in [
            &["Outer", "Fetch", "Fetch.exec", "fetch_page"][..],
            &["Outer", "Fetch", "Fetch.prep"],
            &["Outer", "Fetch", "Fetch.post"],
            &["Outer", "Inner", "Load", "Load.prep"],
            &["Outer", "Inner", "Load", "Load.exec"],
            &["Outer", "Inner", "Load", "Load.post"],
        ] {
            let expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
            assert!(paths.contains(&expected), "no {expected:?} in\n{tree}");
        }
        for span in &trace.spans {
            assert_eq!(span.attr_str("langfuse.trace.name"), Some("Outer"), "{tree}");
        }
    }
}

#[test]
fn always_off_exports_nothing() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let report = run_sampled(&receiver, Sampler::AlwaysOff);
    assert!(report.completed, "{report}");
    assert_eq!((report.stats.exported, report.stats.dropped), (0, 0), "{report}");
    assert!(receiver.requests().is_empty(), "{:?}", receiver.requests());
}

#[test]
fn always_on_and_a_ratio_of_one_keep_every_trace() {
    for sampler in [Sampler::AlwaysOn, Sampler::TraceIdRatio(1.0)] {
        let receiver = OtlpReceiver::grpc().unwrap();
        let report = run_sampled(&receiver, sampler);
        let total = RUNS * SPANS_PER_RUN;
        assert_eq!((report.stats.exported, report.stats.dropped), (total as u64, 0), "{sampler:?}: {report}");
        assert_eq!(receiver.wait_for_spans(total, WAIT).len(), total, "{sampler:?}");
        let traces = receiver.traces();
        assert_eq!(traces.len(), RUNS, "{sampler:?}");
        for trace in &traces {
            assert_whole(trace, SPANS_PER_RUN);
        }
    }
}

//! A hundred async flows run at once on a multi-thread runtime, their
//! nodes suspending and resuming on whichever worker is free: each run
//! still arrives at the collector as exactly one trace of its own, with no
//! span of another run in it. The layer is the global subscriber in the
//! first test (it must be, to see spans on the runtime's worker threads);
//! the only other test sets its subscriber for its own thread, which takes
//! precedence there.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::{AsyncMarkerNode, NODES, SPANS_PER_RUN, WAIT, assert_marker_run, async_two_step_flow, otlp, store};
use pocketflow::AsyncFlow;
use pocketflow_test_support::otlp::{OtlpReceiver, ReceivedTrace};
use pocketflow_tracing::Protocol;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

const RUNS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_flows_on_a_multi_thread_runtime_each_export_one_whole_trace_of_their_own() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let (layer, guard) = otlp(&receiver.endpoint(), Protocol::Grpc)
        // Small batches, sent while the runs are still going.
        .max_export_batch_size(64)
        .scheduled_delay(std::time::Duration::from_millis(20))
        .build()
        .unwrap()
        .layer()
        .unwrap();
    tracing_subscriber::registry().with(layer).try_init().unwrap();

    let handles: Vec<_> = (0..RUNS)
        .map(|i| {
            tokio::spawn(async move {
                let marker = format!("run-{i}");
                let flow = async_two_step_flow(marker.clone());
                let shared = store(&marker);
                flow.run(&shared).await.unwrap();
                // The run saw its own marker in both nodes.
                assert_eq!(shared.get::<String>("Answer").unwrap(), format!("{marker}/Answer"));
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }

    let total = RUNS * SPANS_PER_RUN;
    let report = guard.shutdown();
    assert!(report.completed, "{report}");
    assert_eq!(report.stats.exported, total as u64, "{report}");
    assert_eq!(report.stats.dropped, 0, "{report}");

    let spans = receiver.wait_for_spans(total, WAIT);
    assert_eq!(spans.len(), total, "spans received");
    let traces = receiver.traces();
    assert_eq!(traces.len(), RUNS, "one trace per run");

    let mut markers = BTreeSet::new();
    for trace in &traces {
        let roots = trace.roots();
        let name = roots.first().map(|root| root.name.clone()).unwrap_or_default();
        // The flow is named after its marker, and its store holds it.
        assert_marker_run(trace, &name, &name);
        assert!(markers.insert(name.clone()), "two traces for {name}");
    }
    let expected: BTreeSet<String> = (0..RUNS).map(|i| format!("run-{i}")).collect();
    assert_eq!(markers, expected);

    // The runs really were in flight together: some run started before
    // another had ended (else this test would prove nothing about mixing).
    let mut windows: Vec<(u64, u64)> =
        traces.iter().flat_map(|t| t.roots()).map(|r| (r.start_unix_nano, r.end_unix_nano)).collect();
    windows.sort_unstable();
    let overlapping = windows.windows(2).filter(|pair| pair[1].0 < pair[0].1).count();
    assert!(overlapping > 0, "no two runs overlapped: {windows:?}");
}

/// The `kind`s of the `pocketflow.warning` events on `trace`'s root.
fn root_warnings(trace: &ReceivedTrace) -> Vec<String> {
    let roots = trace.roots();
    let Some(root) = roots.first() else { return Vec::new() };
    root.events
        .iter()
        .filter(|e| e.name == "pocketflow.warning")
        .filter_map(|e| e.attributes.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_wiring_warning_never_lands_in_another_flows_trace() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let (layer, guard) = otlp(&receiver.endpoint(), Protocol::Grpc).build().unwrap().layer().unwrap();
    // This thread only; the runtime is current-thread, so both tasks run here.
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));

    // `Rewired` is built with an overwritten successor, then waits before
    // running; `Plain` starts its run in the meantime.
    let rewired = tokio::spawn(async {
        let mut flow = AsyncFlow::named("Rewired");
        let load = flow.start(AsyncMarkerNode(NODES[0]));
        let answer = flow.add(AsyncMarkerNode(NODES[1]));
        flow.connect(load, answer);
        flow.connect(load, answer);
        assert_eq!(flow.warnings().len(), 1);
        tokio::task::yield_now().await;
        flow.run(&store("Rewired")).await.unwrap();
    });
    let plain = tokio::spawn(async { async_two_step_flow("Plain").run(&store("Plain")).await.unwrap() });
    rewired.await.unwrap();
    plain.await.unwrap();
    let report = guard.shutdown();
    assert_eq!(report.stats.exported, 2 * SPANS_PER_RUN as u64, "{report}");

    receiver.wait_for_spans(2 * SPANS_PER_RUN, WAIT);
    let traces = receiver.traces();
    let trace = |name: &str| {
        traces.iter().find(|t| t.roots().iter().any(|r| r.name == name)).unwrap_or_else(|| panic!("no {name} trace"))
    };
    assert_eq!(root_warnings(trace("Plain")), Vec::<String>::new(), "Rewired's warning landed in Plain's trace");
    // Raised at wiring time, outside any run, it belongs to no trace; the
    // flow keeps it (`warnings()`, asserted above).
    assert_eq!(root_warnings(trace("Rewired")), Vec::<String>::new());
}

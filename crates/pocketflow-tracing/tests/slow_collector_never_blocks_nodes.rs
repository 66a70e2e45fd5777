//! A collector that never answers, refuses every batch, or is not there at
//! all never holds up a flow for long: spans go through a small bounded
//! queue; under the default policy a full queue makes the flow wait once
//! (the export thread making no room, later spans are dropped without
//! waiting), and what cannot be exported is dropped and counted. Whatever
//! happens, the shutdown report accounts for every span the flows produced,
//! as exported, as one of the three kinds of dropped, or as in flight when
//! shutdown gave up on an export still being retried or unanswered (which
//! the collector may have: not counted as lost).
//!
//! No wall-clock thresholds: the flows completing, and `shutdown` returning,
//! are the assertions. Subscribers are thread-local, so the tests share
//! this binary.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{SPANS_PER_RUN, otlp, store, two_step_flow};
use pocketflow_test_support::otlp::OtlpReceiver;
use pocketflow_tracing::{Protocol, ShutdownReport};
use tracing_subscriber::layer::SubscriberExt as _;

const RUNS: usize = 60;
const PRODUCED: u64 = (RUNS * SPANS_PER_RUN) as u64;

/// Runs [`RUNS`] flows exporting to `endpoint` through a queue of 8, each
/// try given up after `export_timeout` and each batch after `retry_time`,
/// and shuts down.
fn run_against(endpoint: &str, protocol: Protocol, export_timeout: Duration, retry_time: Duration) -> ShutdownReport {
    let (layer, guard) = otlp(endpoint, protocol)
        .max_queue_size(8)
        .max_export_batch_size(4)
        .scheduled_delay(Duration::from_millis(10))
        .export_timeout(export_timeout)
        .export_retry_time(retry_time)
        .shutdown_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
        .layer()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..RUNS {
            let marker = format!("run-{i}");
            let shared = store(&marker);
            two_step_flow(marker.clone()).run(&shared).unwrap();
            assert_eq!(shared.get::<String>("Answer").unwrap(), format!("{marker}/Answer"));
        }
    });
    guard.shutdown()
}

/// Every span is accounted for, and some were lost.
fn assert_accounted(report: &ShutdownReport) {
    let s = report.stats;
    assert!(s.dropped > 0, "{report}");
    assert_eq!(s.dropped, s.dropped_queue_full + s.failed_export + s.unflushed, "{report}: {s:?}");
    assert_eq!(s.exported + s.dropped + s.in_flight, PRODUCED, "{report}: {s:?}");
    // One exporter: its own counts are the pipeline's (in spans handed to it).
    let [otlp] = report.exporters.as_slice() else { panic!("{:?}", report.exporters) };
    assert_eq!((otlp.exported, otlp.failed_export, otlp.in_flight), (s.exported, s.failed_export, s.in_flight));
}

/// Long enough that no batch is given up while the test runs.
const RETRY_ALL_ALONG: Duration = Duration::from_secs(600);
/// Short enough that every batch is given up before shutdown.
const RETRY_BRIEFLY: Duration = Duration::from_millis(300);

#[test]
fn a_collector_that_never_answers_drops_spans_at_the_queue_instead_of_blocking_nodes() {
    // Accepts connections (the kernel's backlog does) and never reads or
    // answers: the first export waits for its timeout, longer than the flows
    // can take, so the queue fills however fast or slow the machine is.
    // Shutdown gives up at its own deadline and does not wait for it.
    let blackhole = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", blackhole.local_addr().unwrap());
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        let report = run_against(&endpoint, protocol, Duration::from_secs(600), RETRY_ALL_ALONG);
        assert_accounted(&report);
        assert_eq!(report.stats.exported, 0, "{protocol:?}: {report}");
        // The exporter was stuck while the flows ran, so the queue filled.
        assert!(report.stats.dropped_queue_full > 0, "{protocol:?}: {report}");
        assert!(!report.completed, "the stuck export outlived the shutdown deadline: {report}");
        // The unanswered exports are not called lost: the collector may
        // have them.
        assert!(report.stats.in_flight > 0 && report.stats.failed_export == 0, "{protocol:?}: {report}");
    }
    drop(blackhole);
}

#[test]
fn a_collector_answering_503_to_every_batch_fails_them_all_and_the_flows_finish() {
    let receiver = OtlpReceiver::http_responding(503).unwrap();
    let report = run_against(&receiver.endpoint(), Protocol::HttpProtobuf, Duration::from_millis(200), RETRY_BRIEFLY);
    assert_accounted(&report);
    assert_eq!(report.stats.exported, 0, "{report}");
    assert!(report.stats.failed_export > 0, "{report}");
    assert!(report.exporters[0].retried > 0, "503 is retried: {report:?}");
    assert!(!receiver.requests().is_empty(), "the exporter never reached the collector");
    assert!(receiver.spans().is_empty());
}

#[test]
fn a_collector_answering_503_past_shutdown_leaves_its_batches_in_flight_not_lost() {
    let receiver = OtlpReceiver::http_responding(503).unwrap();
    let report = run_against(&receiver.endpoint(), Protocol::HttpProtobuf, Duration::from_millis(200), RETRY_ALL_ALONG);
    assert_accounted(&report);
    assert_eq!((report.stats.exported, report.stats.failed_export), (0, 0), "{report}");
    assert!(report.stats.in_flight > 0, "{report}");
    assert!(!report.completed, "{report}");
}

#[test]
fn no_collector_at_all_fails_every_export_and_the_flows_finish() {
    // Port 1 on loopback: nothing listens, connections are refused.
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let report = run_against("http://127.0.0.1:1", protocol, Duration::from_millis(200), RETRY_BRIEFLY);
        assert_accounted(&report);
        assert_eq!(report.stats.exported, 0, "{protocol:?}: {report}");
        assert!(report.stats.failed_export > 0, "{protocol:?}: {report}");
    }
}

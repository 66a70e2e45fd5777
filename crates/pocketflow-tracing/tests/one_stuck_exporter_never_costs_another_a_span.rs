//! Each exporter runs on its own. With OTLP to a healthy collector and
//! Langfuse at a host that accepts connections and never answers, the
//! collector still gets every span: Langfuse's exports wait in its own
//! queue, and once that is full its spans are dropped (and counted) for it
//! alone, while OTLP goes on, even through a burst much larger than the
//! pipeline's queue. The shutdown report lists each exporter, and every
//! count adds up, for each exporter and overall.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{SPANS_PER_RUN, WAIT, run_and_shut_down};
use pocketflow_test_support::otlp::OtlpReceiver;
use pocketflow_tracing::{ExporterKind, ExporterStats, Protocol, Secret, TracingConfig, TracingConfigBuilder};

const RUNS: usize = 200;
const PRODUCED: u64 = (RUNS * SPANS_PER_RUN) as u64;

fn handed(stats: &ExporterStats) -> u64 {
    stats.exported + stats.failed_export + stats.dropped_queue_full + stats.in_flight
}

/// OTLP to a healthy receiver and Langfuse at a host that accepts
/// connections (the kernel's backlog does) and never answers; each try to
/// Langfuse times out and is retried, until shutdown.
fn otlp_and_a_silent_langfuse() -> (OtlpReceiver, TcpListener, TracingConfigBuilder) {
    let receiver = OtlpReceiver::grpc().unwrap();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = TracingConfig::builder()
        .exporters(vec![ExporterKind::Otlp, ExporterKind::Langfuse])
        .protocol(Protocol::Grpc)
        .otlp_endpoint(receiver.endpoint())
        .langfuse_public_key("pk-lf-test")
        .langfuse_secret_key(Secret::new("sk-lf-test"))
        .langfuse_host(format!("http://{}", silent.local_addr().unwrap()))
        .export_timeout(Duration::from_millis(300))
        .max_export_batch_size(50)
        .shutdown_timeout(Duration::from_secs(3));
    (receiver, silent, config)
}

#[test]
fn a_langfuse_that_never_answers_costs_the_collector_nothing() {
    let (receiver, _silent, config) = otlp_and_a_silent_langfuse();
    let config = config.build().unwrap();

    let report = run_and_shut_down(config, RUNS);

    let [otlp, langfuse] = report.exporters.as_slice() else { panic!("{report:?}") };
    assert_eq!((otlp.name.as_str(), langfuse.name.as_str()), ("otlp", "langfuse"));
    assert_eq!((otlp.exported, handed(otlp)), (PRODUCED, PRODUCED), "{report}");
    assert_eq!(receiver.wait_for_spans(PRODUCED as usize, WAIT).len() as u64, PRODUCED);
    assert_eq!((langfuse.exported, handed(langfuse)), (0, PRODUCED), "{report}");
    // Overall, a span counts as exported only where every exporter took it.
    let s = report.stats;
    assert_eq!(s.exported, 0, "{report}");
    assert_eq!(s.recorded(), PRODUCED, "{report}");
    assert_eq!(s.failed_export + s.in_flight, PRODUCED, "{report}");
    assert!(report.to_string().contains("langfuse: 0 exported"), "{report}");
}

#[test]
fn a_burst_through_a_small_queue_with_a_stuck_langfuse_still_reaches_the_collector_whole() {
    // A queue far smaller than the burst: the collector's exporter must
    // not wait behind Langfuse's, whose tries now hang.
    let (receiver, _silent, config) = otlp_and_a_silent_langfuse();
    let config = config.export_timeout(Duration::from_secs(30)).max_queue_bytes(128 * 1024).build().unwrap();

    let report = run_and_shut_down(config, 2 * RUNS);

    let produced = 2 * PRODUCED;
    let [otlp, langfuse] = report.exporters.as_slice() else { panic!("{report:?}") };
    assert_eq!(report.stats.dropped_queue_full, 0, "the shared queue dropped spans: {report}");
    assert_eq!((otlp.exported, handed(otlp)), (produced, produced), "{report}");
    assert_eq!(receiver.wait_for_spans(produced as usize, WAIT).len() as u64, produced);
    assert_eq!((langfuse.exported, handed(langfuse)), (0, produced), "{report}");
    assert!(langfuse.dropped_queue_full > 0, "Langfuse's own queue never filled: {report}");
    let s = report.stats;
    assert_eq!((s.exported, s.recorded()), (0, produced), "{report}");
}

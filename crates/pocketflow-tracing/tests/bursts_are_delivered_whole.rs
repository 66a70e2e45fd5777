//! A burst of spans much larger than the old 2,048-span queue, sent to a
//! backend that accepts slowly, is delivered whole under the default
//! queue-full policy (the closing span's thread waits for room), even when
//! the queue's memory bound is far smaller than the burst; and whatever the
//! policy, the shutdown report accounts for every span produced, as
//! exported or dropped.
//!
//! No wall-clock thresholds: the receiver's delay only makes the export
//! thread the bottleneck; the assertions are on counts.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{SPANS_PER_RUN, WAIT, otlp, store, two_step_flow};
use pocketflow_test_support::otlp::OtlpReceiver;
use pocketflow_tracing::{Protocol, QueueFullPolicy, ShutdownReport, TracingConfigBuilder};
use tracing_subscriber::layer::SubscriberExt as _;

/// 1,000 runs of 9 spans: 9,000 spans, four times the old default queue.
const RUNS: usize = 1_000;
const PRODUCED: u64 = (RUNS * SPANS_PER_RUN) as u64;

/// Every answer comes this long after its request.
const SLOW: Duration = Duration::from_millis(25);

/// Runs the burst as fast as the flows go against `receiver`, with
/// `configure`'s settings on top of the defaults; returns the report and
/// the spans that arrived.
fn burst(
    receiver: &OtlpReceiver,
    configure: impl FnOnce(TracingConfigBuilder) -> TracingConfigBuilder,
) -> (ShutdownReport, usize) {
    let (layer, guard) =
        configure(otlp(&receiver.endpoint(), Protocol::HttpProtobuf)).build().unwrap().layer().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..RUNS {
            let marker = format!("burst-{i}");
            two_step_flow(marker.clone()).run(&store(&marker)).unwrap();
        }
    });
    let report = guard.shutdown();
    let arrived = receiver.wait_for_spans(usize::try_from(report.stats.exported).unwrap(), WAIT).len();
    (report, arrived)
}

/// Every span produced is exported, dropped or (at a shutdown that gave up)
/// in flight, and the drops add up.
fn assert_accounted(report: &ShutdownReport) {
    let s = report.stats;
    assert_eq!(s.dropped, s.dropped_queue_full + s.failed_export + s.unflushed, "{report}: {s:?}");
    assert_eq!(s.recorded(), PRODUCED, "{report}: {s:?}");
    assert_eq!(s.exported - s.event_observations + s.dropped + s.in_flight, PRODUCED, "{report}: {s:?}");
}

#[test]
fn a_burst_four_times_the_old_queue_is_delivered_whole_with_default_settings() {
    let receiver = OtlpReceiver::http_slow(SLOW).unwrap();
    let (report, arrived) = burst(&receiver, |b| b);
    assert_accounted(&report);
    assert!(report.completed, "{report}");
    assert_eq!((report.stats.exported, report.stats.dropped), (PRODUCED, 0), "{report}");
    assert_eq!(arrived as u64, PRODUCED);
}

#[test]
fn a_queue_far_smaller_than_the_burst_makes_the_flows_wait_instead_of_losing_spans() {
    let receiver = OtlpReceiver::http_slow(SLOW).unwrap();
    // About 64 spans' worth of memory, and small batches: the burst is
    // over a hundred times the queue.
    let (report, arrived) = burst(&receiver, |b| b.max_queue_bytes(64 * 1024).max_export_batch_size(64));
    assert_accounted(&report);
    assert_eq!((report.stats.exported, report.stats.dropped), (PRODUCED, 0), "{report}");
    assert_eq!(arrived as u64, PRODUCED);
}

#[test]
fn with_the_drop_policies_the_same_queue_loses_spans_and_counts_every_one() {
    for policy in [QueueFullPolicy::DropNewest, QueueFullPolicy::DropOldest] {
        let receiver = OtlpReceiver::http_slow(SLOW).unwrap();
        let (report, arrived) =
            burst(&receiver, |b| b.max_queue_bytes(64 * 1024).max_export_batch_size(64).queue_full(policy));
        assert_accounted(&report);
        assert!(report.stats.dropped_queue_full > 0, "{policy:?}: {report}");
        assert_eq!(arrived as u64, report.stats.exported, "{policy:?}: {report}");
    }
}

#[test]
fn a_backend_that_never_answers_costs_the_flows_one_wait_then_spans_are_dropped_and_counted() {
    // Accepts connections (the kernel's backlog does) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let (layer, guard) = otlp(&endpoint, Protocol::HttpProtobuf)
        .max_queue_bytes(64 * 1024)
        .max_export_batch_size(64)
        .queue_full(QueueFullPolicy::Wait(Duration::from_millis(200)))
        .export_timeout(Duration::from_millis(300))
        .shutdown_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .layer()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..RUNS {
            let marker = format!("outage-{i}");
            two_step_flow(marker.clone()).run(&store(&marker)).unwrap();
        }
    });
    // The flows all finished (a wait per span would have taken half an
    // hour); every span is accounted for.
    let report = guard.shutdown();
    assert_accounted(&report);
    assert_eq!(report.stats.exported, 0, "{report}");
    assert!(report.stats.dropped_queue_full > 0, "{report}");
}

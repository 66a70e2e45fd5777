//! A collector that starts after the program, or stops and comes back,
//! still gets every span: a batch
//! whose export fails because nothing listens yet is kept and tried again
//! (with backoff, for up to the retry time), and the spans behind it wait
//! in the queue. The test starts the receiver only once the exporter has
//! retried at least once, so the first tries really failed; it then checks
//! that every span arrived and that the counts say so.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::{SPANS_PER_RUN, WAIT, otlp, store, two_step_flow};
use pocketflow_test_support::otlp::OtlpReceiver;
use pocketflow_tracing::{Protocol, TracingGuard};
use tracing_subscriber::layer::SubscriberExt as _;

const RUNS: usize = 20;
const PRODUCED: u64 = (RUNS * SPANS_PER_RUN) as u64;

/// A loopback address nothing listens on (yet).
fn free_address() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap()
}

/// Waits until the exporter has retried, or [`WAIT`] passed.
fn wait_for_a_retry(guard: &TracingGuard) -> u64 {
    let start = Instant::now();
    loop {
        let retried = guard.exporter_stats().first().map_or(0, |stats| stats.retried);
        if retried > 0 || start.elapsed() > WAIT {
            return retried;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_span_reaches_a_collector_started_after_the_flows_ran() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let addr = free_address();
        let (layer, guard) = otlp(&format!("http://{addr}"), protocol)
            .max_export_batch_size(64)
            .scheduled_delay(Duration::from_millis(10))
            .build()
            .unwrap()
            .layer()
            .unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            for i in 0..RUNS {
                let marker = format!("late-{i}");
                two_step_flow(marker.clone()).run(&store(&marker)).unwrap();
            }
        });
        assert!(wait_for_a_retry(&guard) > 0, "{protocol:?}: no export was retried: {:?}", guard.exporter_stats());
        assert_eq!(guard.stats().exported, 0, "{protocol:?}: exported before the collector started");

        let receiver = match protocol {
            Protocol::Grpc => OtlpReceiver::grpc_at(addr),
            _ => OtlpReceiver::http_at(addr),
        }
        .unwrap();
        let report = guard.shutdown();

        assert!(report.completed, "{protocol:?}: {report}");
        assert_eq!((report.stats.exported, report.stats.dropped), (PRODUCED, 0), "{protocol:?}: {report}");
        let [otlp] = report.exporters.as_slice() else { panic!("{:?}", report.exporters) };
        assert_eq!((otlp.exported, otlp.failed_export, otlp.in_flight), (PRODUCED, 0, 0), "{otlp:?}");
        assert!(otlp.retried > 0, "{otlp:?}");
        assert_eq!(receiver.wait_for_spans(PRODUCED as usize, WAIT).len() as u64, PRODUCED, "{protocol:?}");
    }
}

#[test]
fn a_collector_that_stops_and_comes_back_gets_every_span_once() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let addr = free_address();
        let start = |addr| match protocol {
            Protocol::Grpc => OtlpReceiver::grpc_at(addr),
            _ => OtlpReceiver::http_at(addr),
        };
        let first = start(addr).unwrap();
        let (layer, guard) = otlp(&format!("http://{addr}"), protocol)
            .max_export_batch_size(64)
            .scheduled_delay(Duration::from_millis(10))
            .build()
            .unwrap()
            .layer()
            .unwrap();
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        let run = |prefix: &str| {
            tracing::dispatcher::with_default(&dispatch, || {
                for i in 0..RUNS {
                    let marker = format!("{prefix}-{i}");
                    two_step_flow(marker.clone()).run(&store(&marker)).unwrap();
                }
            });
        };
        run("before");
        assert!(guard.flush(), "{protocol:?}: the first half was not flushed");
        assert_eq!(first.wait_for_spans(PRODUCED as usize, WAIT).len() as u64, PRODUCED, "{protocol:?}");
        drop(first);

        run("during");
        assert!(wait_for_a_retry(&guard) > 0, "{protocol:?}: no export was retried: {:?}", guard.exporter_stats());
        let second = start(addr).unwrap();
        drop(dispatch);
        let report = guard.shutdown();

        assert!(report.completed, "{protocol:?}: {report}");
        assert_eq!((report.stats.exported, report.stats.dropped), (2 * PRODUCED, 0), "{protocol:?}: {report}");
        let spans = second.wait_for_spans(PRODUCED as usize, WAIT);
        assert_eq!(spans.len() as u64, PRODUCED, "{protocol:?}: every span of the outage, once");
        // Only the outage's runs, each flow once: nothing from before was sent again.
        let flows = |prefix: &str| spans.iter().filter(|span| span.name.starts_with(prefix)).count();
        assert_eq!((flows("during-"), flows("before-")), (RUNS, 0), "{protocol:?}");
    }
}

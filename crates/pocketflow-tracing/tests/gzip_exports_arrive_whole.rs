//! With `otlp_gzip(true)`, requests go out compressed over both protocols,
//! a compressed answer is read, and every span arrives.
//!
//! The receiver here answers in gzip only to a client that says it reads
//! gzip; the real Collector answers a compressed request in gzip regardless,
//! which `e2e/run.sh` covers (`e2e-quickstart-grpc-gzip`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{SPANS_PER_RUN, otlp, store, two_step_flow};
use pocketflow_test_support::otlp::OtlpReceiver;
use pocketflow_tracing::Protocol;
use tracing_subscriber::layer::SubscriberExt as _;

const RUNS: usize = 3;

#[test]
fn gzipped_exports_arrive_whole_over_grpc_and_http() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = match protocol {
            Protocol::Grpc => OtlpReceiver::grpc(),
            _ => OtlpReceiver::http(),
        }
        .unwrap();
        let (layer, guard) = otlp(&receiver.endpoint(), protocol).otlp_gzip(true).build().unwrap().layer().unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            for i in 0..RUNS {
                let marker = format!("run-{i}");
                two_step_flow(marker.clone()).run(&store(&marker)).unwrap();
            }
        });
        let report = guard.shutdown();
        let produced = (RUNS * SPANS_PER_RUN) as u64;
        assert_eq!((report.stats.exported, report.stats.dropped), (produced, 0), "{protocol:?}: {report}");
        let spans = receiver.wait_for_spans(RUNS * SPANS_PER_RUN, Duration::from_secs(10));
        assert_eq!(spans.len(), RUNS * SPANS_PER_RUN, "{protocol:?}");
        if protocol == Protocol::HttpProtobuf {
            let requests = receiver.requests();
            assert!(requests.iter().all(|r| r.content_encoding.as_deref() == Some("gzip")), "{requests:?}");
        }
    }
}

//! Load tests, opt-in (`#[ignore]`; run in release, as CI does):
//!
//! ```sh
//! cargo test --release -p pocketflow-tracing --test a_million_spans_reach_the_collector_at_shutdown -- --ignored
//! ```
//!
//! - A million spans produced as fast as the flows go, then `shutdown()`:
//!   the collector (a counting gRPC receiver) gets every one, and the report
//!   says so, whether shutdown is called from a plain thread, inside a
//!   current-thread runtime, or inside a multi-thread runtime.
//! - `soak_`: a million flow runs with export on keep resident memory flat
//!   and leave no file descriptor or thread behind after shutdown. It takes
//!   about a minute and is not run by CI; its figures are in
//!   docs/reliability.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{AsyncStep, SPANS_PER_RUN, otlp, store, two_step_flow};
use pocketflow::{AsyncFlow, SharedStore};
use pocketflow_test_support::otlp::OtlpReceiver;
use pocketflow_tracing::{PocketflowLayer, Protocol, ShutdownReport, TracingGuard};
use tracing::instrument::WithSubscriber as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// Runs of the two-step flow: just over a million spans.
const RUNS: usize = 1_000_000 / SPANS_PER_RUN + 1;
const PRODUCED: u64 = (RUNS * SPANS_PER_RUN) as u64;

fn layer(receiver: &OtlpReceiver) -> (PocketflowLayer, TracingGuard) {
    otlp(&receiver.endpoint(), Protocol::Grpc)
        .shutdown_timeout(Duration::from_secs(120))
        .build()
        .unwrap()
        .layer()
        .unwrap()
}

fn assert_all_delivered(report: &ShutdownReport, receiver: &OtlpReceiver) {
    assert!(report.completed, "{report}");
    assert_eq!((report.stats.exported, report.stats.dropped, report.stats.in_flight), (PRODUCED, 0, 0), "{report}");
    // The receiver counted each span as it answered the export, so the
    // count is final once shutdown returned.
    assert_eq!(receiver.span_count() as u64, PRODUCED, "{report}");
}

#[test]
#[ignore = "load test: run in release with --ignored"]
fn from_a_plain_thread() {
    let receiver = OtlpReceiver::grpc_counting().unwrap();
    let (layer, guard) = layer(&receiver);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..RUNS {
            two_step_flow("Million").run(&store(&i.to_string())).unwrap();
        }
    });
    assert_all_delivered(&guard.shutdown(), &receiver);
}

/// Two async nodes that never wait: [`SPANS_PER_RUN`] spans a run, as
/// fast as the runtime polls them.
fn async_flow() -> AsyncFlow {
    let mut flow = AsyncFlow::named("Million");
    let load = flow.start(AsyncStep("Load"));
    let answer = flow.add(AsyncStep("Answer"));
    flow.link(load >> answer);
    flow
}

async fn run_async_flows() {
    let store = SharedStore::new();
    for _ in 0..RUNS {
        async_flow().run(&store).await.unwrap();
    }
}

#[test]
#[ignore = "load test: run in release with --ignored"]
fn inside_a_current_thread_runtime() {
    let receiver = OtlpReceiver::grpc_counting().unwrap();
    let (layer, guard) = layer(&receiver);
    let subscriber = tracing_subscriber::registry().with(layer);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = runtime.block_on(async move {
        run_async_flows().with_subscriber(subscriber).await;
        guard.shutdown()
    });
    assert_all_delivered(&report, &receiver);
}

#[test]
#[ignore = "load test: run in release with --ignored"]
fn inside_a_multi_thread_runtime() {
    let receiver = OtlpReceiver::grpc_counting().unwrap();
    let (layer, guard) = layer(&receiver);
    let subscriber = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let report = runtime.block_on(async move {
        // Four tasks at once, spawned with the subscriber.
        let mut tasks = Vec::new();
        for part in 0..4 {
            let subscriber = subscriber.clone();
            tasks.push(tokio::spawn(
                async move {
                    let store = SharedStore::new();
                    for _ in (part..RUNS).step_by(4) {
                        async_flow().run(&store).await.unwrap();
                        tokio::task::yield_now().await;
                    }
                }
                .with_subscriber(subscriber),
            ));
        }
        for task in tasks {
            task.await.unwrap();
        }
        guard.shutdown()
    });
    assert_all_delivered(&report, &receiver);
}

/// Resident memory in KiB, from `/proc/self/statm`.
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

fn count_entries(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
#[ignore = "soak test (about a minute): run in release with --ignored soak_"]
fn soak_a_million_runs_keep_memory_flat_and_leak_nothing() {
    const SOAK_RUNS: usize = 1_000_000;
    let fds_before = count_entries("/proc/self/fd");
    let threads_before = count_entries("/proc/self/task");
    let receiver = OtlpReceiver::grpc_counting().unwrap();
    let (layer, guard) = layer(&receiver);
    let mut rss = Vec::new();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..SOAK_RUNS {
            two_step_flow("Soak").run(&store(&i.to_string())).unwrap();
            if (i + 1) % 100_000 == 0 {
                rss.push(rss_kib());
            }
        }
    });
    let report = guard.shutdown();
    let produced = (SOAK_RUNS * SPANS_PER_RUN) as u64;
    assert_eq!((report.stats.exported, report.stats.dropped), (produced, 0), "{report}");
    assert_eq!(receiver.span_count() as u64, produced);
    drop(receiver);
    let (fds_after, threads_after) = (count_entries("/proc/self/fd"), count_entries("/proc/self/task"));
    println!(
        "soak: RSS every 100,000 runs (KiB): {rss:?}; fds {fds_before} -> {fds_after}; threads {threads_before} -> {threads_after}"
    );
    // Flat: the last reading within 16 MiB of the first (after warm-up).
    let (first, last) = (rss[0], *rss.last().unwrap());
    assert!(last <= first + 16 * 1024, "memory grew from {first} KiB to {last} KiB: {rss:?}");
    assert_eq!(fds_after, fds_before, "file descriptors leaked");
    assert!(threads_after <= threads_before, "threads left behind: {threads_before} -> {threads_after}");
}

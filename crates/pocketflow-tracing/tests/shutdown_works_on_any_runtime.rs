//! `TracingGuard::shutdown` flushes and returns wherever it is called: on a
//! current-thread runtime, on the single worker of a multi-thread runtime,
//! and with no runtime at all. The OpenTelemetry SDK's batch processor
//! deadlocks in the first two when its exporter needs the very runtime the
//! caller is blocking; this crate exports from its own thread.
//!
//! The scheduled delay is long, so nothing is sent before `shutdown`: the
//! spans that reach the collector are the ones `shutdown` flushed. Each
//! test installs its subscriber for its own thread or future only, so they
//! share this binary.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{SPANS_PER_RUN, WAIT, assert_marker_run, async_two_step_flow, otlp, store, two_step_flow};
use pocketflow_test_support::otlp::OtlpReceiver;
use pocketflow_tracing::{PocketflowLayer, Protocol, ShutdownReport, TracingGuard};
use tracing::Dispatch;
use tracing::instrument::WithSubscriber as _;
use tracing_subscriber::layer::SubscriberExt as _;

const RUNS: usize = 3;

/// A layer exporting to `receiver` only when flushed.
fn layer(receiver: &OtlpReceiver) -> (PocketflowLayer, TracingGuard) {
    otlp(&receiver.endpoint(), Protocol::Grpc)
        .scheduled_delay(Duration::from_secs(3600))
        .shutdown_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .layer()
        .unwrap()
}

fn dispatch(layer: PocketflowLayer) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(layer))
}

/// The report says every span was exported, and the collector has them
/// all, as whole traces.
fn assert_flushed(report: ShutdownReport, receiver: &OtlpReceiver, flow_name: &str) {
    let total = RUNS * SPANS_PER_RUN;
    assert!(report.completed, "{report}");
    assert_eq!(report.stats.exported, total as u64, "{report}");
    assert_eq!(report.stats.dropped, 0, "{report}");
    assert_eq!(receiver.wait_for_spans(total, WAIT).len(), total);
    let traces = receiver.traces();
    assert_eq!(traces.len(), RUNS);
    for trace in &traces {
        assert_marker_run(trace, flow_name, flow_name);
    }
}

async fn run_async_flows(name: &str) {
    for _ in 0..RUNS {
        async_two_step_flow(name.to_owned()).run(&store(name)).await.unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_on_a_current_thread_runtime_flushes_and_returns() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let (layer, guard) = layer(&receiver);
    run_async_flows("current-thread").with_subscriber(dispatch(layer)).await;
    assert!(receiver.requests().is_empty(), "exported before shutdown: {:?}", receiver.requests());

    // Blocks the runtime's only thread, which the exporter must not need.
    let report = guard.shutdown();
    assert_flushed(report, &receiver, "current-thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn shutdown_on_the_only_worker_of_a_multi_thread_runtime_flushes_and_returns() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let (layer, guard) = layer(&receiver);
    let dispatch = dispatch(layer);
    // Both the runs and the shutdown happen in a task on the one worker.
    let report = tokio::spawn(
        async move {
            run_async_flows("one-worker").await;
            guard.shutdown()
        }
        .with_subscriber(dispatch),
    )
    .await
    .unwrap();
    assert_flushed(report, &receiver, "one-worker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_in_a_blocking_task_of_a_multi_thread_runtime_flushes_and_returns() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let (layer, guard) = layer(&receiver);
    run_async_flows("blocking-task").with_subscriber(dispatch(layer)).await;
    let report = tokio::task::spawn_blocking(move || guard.shutdown()).await.unwrap();
    assert_flushed(report, &receiver, "blocking-task");
}

#[test]
fn shutdown_with_no_runtime_flushes_and_returns() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let (layer, guard) = layer(&receiver);
    tracing::dispatcher::with_default(&dispatch(layer), || {
        for _ in 0..RUNS {
            two_step_flow("no-runtime").run(&store("no-runtime")).unwrap();
        }
    });
    assert!(receiver.requests().is_empty(), "exported before shutdown: {:?}", receiver.requests());
    let report = guard.shutdown();
    assert_flushed(report, &receiver, "no-runtime");
}

#[test]
fn shutdown_after_the_runtime_that_ran_the_flows_is_gone_flushes_and_returns() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let (layer, guard) = layer(&receiver);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run_async_flows("runtime-gone").with_subscriber(dispatch(layer)));
    drop(runtime);
    let report = guard.shutdown();
    assert_flushed(report, &receiver, "runtime-gone");
}

#[test]
fn dropping_the_guard_with_no_runtime_flushes() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let (layer, guard) = layer(&receiver);
    tracing::dispatcher::with_default(&dispatch(layer), || {
        for _ in 0..RUNS {
            two_step_flow("dropped").run(&store("dropped")).unwrap();
        }
    });
    drop(guard);
    let total = RUNS * SPANS_PER_RUN;
    assert_eq!(receiver.wait_for_spans(total, WAIT).len(), total);
    for trace in &receiver.traces() {
        assert_marker_run(trace, "dropped", "dropped");
    }
}

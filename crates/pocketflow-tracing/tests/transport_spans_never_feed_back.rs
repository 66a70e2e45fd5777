//! The exporter's own transport (tonic, h2, hyper, tower, reqwest) is
//! instrumented with `tracing`. Were those spans recorded, every export
//! would produce more spans to export. Here the layer is the global
//! subscriber, next to a layer that sees everything at TRACE level, while
//! flows run and the exporter sends many small batches, first over gRPC,
//! then over HTTP: the collector receives exactly the flows' spans, and the
//! export thread emits nothing any layer sees. Alone in its binary: it
//! installs the global subscriber.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use common::{NODES, SPANS_PER_RUN, WAIT, assert_marker_run, otlp, store};
use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Ctx, SharedStore};
use pocketflow_test_support::otlp::{OtlpReceiver, ReceivedSpan};
use pocketflow_tracing::{PocketflowLayer, Protocol, TracingGuard};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, reload};

/// The crates whose telemetry must never be exported.
const TRANSPORT: [&str; 6] = ["h2", "hyper", "tonic", "tower", "reqwest", "opentelemetry"];

/// The export thread's name (`pipeline.rs`).
const EXPORT_THREAD: &str = "pocketflow-tracing-export";

const RUNS_PER_PHASE: usize = 12;

fn is_transport(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    TRANSPORT.iter().any(|krate| lower.starts_with(krate) || lower.contains(&format!("{krate}::")))
        || ["framedread", "framedwrite", "hpack", "poll_next", "poll_ready"].iter().any(|n| lower.contains(n))
}

/// A span or an event the subscriber saw, and on which thread.
#[derive(Debug, Clone)]
struct Seen {
    thread: String,
    target: String,
    name: String,
}

/// Records every span and event the subscriber is given, at every level.
#[derive(Debug, Clone, Default)]
struct SeeEverything(Arc<Mutex<Vec<Seen>>>);

impl SeeEverything {
    fn push(&self, meta: &Metadata<'_>) {
        let thread = std::thread::current().name().unwrap_or("<unnamed>").to_owned();
        let seen = Seen { thread, target: meta.target().to_owned(), name: meta.name().to_owned() };
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(seen);
    }

    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl<S: Subscriber> Layer<S> for SeeEverything {
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, _: &tracing::span::Id, _: Context<'_, S>) {
        self.push(attrs.metadata());
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        self.push(event.metadata());
    }
}

/// A node whose `exec` does what a node calling a gRPC or HTTP service
/// would: its client's spans and events (with the transport crates'
/// targets) open inside the node. They must not be exported either.
#[derive(Debug, Clone, Copy)]
struct CallsAService(&'static str);

impl AsyncNode for CallsAService {
    type Prep = String;
    type Exec = String;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        self.0.into()
    }

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get(common::MARKER)?)
    }

    async fn exec(&self, _: &Ctx<'_>, marker: &String) -> Result<String, BoxError> {
        {
            let read = tracing::trace_span!(target: "h2::codec::framed_read", "FramedRead::poll_next");
            let _in_read = read.enter();
            tracing::trace!(target: "h2::hpack::decoder", "decoding headers");
            tracing::debug!(target: "hyper_util::client::legacy::pool", "checkout");
        }
        let call = tracing::debug_span!(target: "tonic::transport::channel", "send");
        let _in_call = call.enter();
        tracing::debug!(target: "tower::buffer::worker", "service.ready=true processing request");
        tracing::debug!(target: "reqwest::connect", "starting new connection");
        drop(_in_call);
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(format!("{marker}/{}", self.0))
    }

    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, out: String) -> Result<Action, BoxError> {
        shared.set(self.0, out)?;
        Ok(Action::NONE)
    }
}

fn flow(name: String) -> AsyncFlow {
    let mut flow = AsyncFlow::named(name);
    let load = flow.start(CallsAService(NODES[0]));
    let answer = flow.add(CallsAService(NODES[1]));
    flow.link(load >> answer);
    flow
}

/// Many small batches, sent while the flows run.
fn layer(receiver: &OtlpReceiver, protocol: Protocol) -> (PocketflowLayer, TracingGuard) {
    otlp(&receiver.endpoint(), protocol)
        .max_export_batch_size(3)
        .scheduled_delay(Duration::from_millis(5))
        .build()
        .unwrap()
        .layer()
        .unwrap()
}

/// Runs the phase's flows concurrently, shuts the guard down, and checks
/// that `receiver` got exactly their spans.
async fn run_phase(phase: &str, receiver: &OtlpReceiver, guard: TracingGuard) {
    let handles: Vec<_> = (0..RUNS_PER_PHASE)
        .map(|i| {
            let marker = format!("{phase}-{i}");
            tokio::spawn(async move { flow(marker.clone()).run(&store(&marker)).await.unwrap() })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    let total = RUNS_PER_PHASE * SPANS_PER_RUN;
    let report = guard.shutdown();
    assert!(report.completed, "{phase}: {report}");
    assert_eq!((report.stats.exported, report.stats.dropped), (total as u64, 0), "{phase}: {report}");

    let spans = receiver.wait_for_spans(total, WAIT);
    assert_eq!(spans.len(), total, "{phase}: spans received");
    let requests = receiver.requests();
    assert!(requests.len() >= 2, "{phase}: expected several export requests, got {}", requests.len());
    assert!(requests.iter().all(|r| r.error.is_none()), "{phase}: {requests:?}");
    assert_no_transport(phase, &spans);

    let traces = receiver.traces();
    assert_eq!(traces.len(), RUNS_PER_PHASE, "{phase}: traces");
    let mut markers = BTreeSet::new();
    for trace in &traces {
        let name = trace.roots().first().map(|root| root.name.clone()).unwrap_or_default();
        assert_marker_run(trace, &name, &name);
        markers.insert(name);
    }
    let expected: BTreeSet<String> = (0..RUNS_PER_PHASE).map(|i| format!("{phase}-{i}")).collect();
    assert_eq!(markers, expected, "{phase}");
}

fn assert_no_transport(phase: &str, spans: &[ReceivedSpan]) {
    for span in spans {
        assert_eq!(span.scope_name, "pocketflow", "{phase}: {span:?}");
        assert!(!is_transport(&span.name), "{phase}: transport span exported: {span:?}");
        if let Some(namespace) = span.attr_str("code.namespace") {
            assert!(!is_transport(namespace), "{phase}: transport span exported: {span:?}");
        }
        for event in &span.events {
            assert!(!is_transport(&event.name), "{phase}: transport event exported on {}: {event:?}", span.name);
            for value in event.attributes.values().filter_map(|v| v.as_str()) {
                assert!(!is_transport(value), "{phase}: transport event exported on {}: {event:?}", span.name);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_telemetry_is_never_exported_nor_emitted_by_the_export_thread_over_grpc_then_http() {
    let everything = SeeEverything::default();
    let grpc = OtlpReceiver::grpc().unwrap();
    let (grpc_layer, grpc_guard) = layer(&grpc, Protocol::Grpc);
    let (ours, handle) = reload::Layer::new(Some(grpc_layer));
    tracing_subscriber::registry().with(ours).with(everything.clone()).try_init().unwrap();

    run_phase("grpc", &grpc, grpc_guard).await;

    let http = OtlpReceiver::http().unwrap();
    let (http_layer, http_guard) = layer(&http, Protocol::HttpProtobuf);
    handle.reload(Some(http_layer)).unwrap();
    run_phase("http", &http, http_guard).await;
    assert!(http.requests().iter().all(|r| r.path == "/v1/traces"), "{:?}", http.requests());
    // Nothing reached the gRPC receiver after its phase.
    assert_eq!(grpc.spans().len(), RUNS_PER_PHASE * SPANS_PER_RUN);

    let seen = everything.seen();
    // The capture is live: it saw the flows, and transport telemetry (the
    // nodes' simulated client calls, the gRPC receiver's own h2 server).
    assert!(seen.iter().any(|s| s.target == "pocketflow" && s.name == "flow"), "no flow span seen");
    let transport: Vec<&Seen> = seen.iter().filter(|s| is_transport(&s.target)).collect();
    assert!(!transport.is_empty(), "no transport telemetry seen at all: the check below would be vacuous");
    assert!(
        transport.iter().any(|s| s.thread.starts_with("otlp-grpc-receiver")),
        "the receiver's h2 server emitted nothing: {:?}",
        transport.iter().map(|s| (&s.thread, &s.target)).collect::<BTreeSet<_>>()
    );
    // The export thread sends with no subscriber: nothing from it reaches
    // any layer.
    let from_export: Vec<&Seen> = seen.iter().filter(|s| s.thread == EXPORT_THREAD).collect();
    assert!(from_export.is_empty(), "the export thread emitted telemetry: {from_export:?}");
}

/*
    FIGURES: filled in after measuring.
*/
#![allow(missing_docs)]

use std::error::Error;
use std::fmt::Display;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use pocketflow::{Action, BoxError, Ctx, Flow, Node};
use pocketflow_test_support::Capture;
use pocketflow_tracing::TracingConfig;
use serde::Serialize;
use tracing_subscriber::layer::SubscriberExt as _;

/// Nodes in the chain.
const NODES: usize = 10;
/// Spans per run: one `flow`, and `node`, `prep`, `exec`, `post` per node.
const SPANS: u64 = 1 + 4 * NODES as u64;
/// Lifecycle events per run: `created`, `starting`, `running`, `completed`
/// on the flow; the same plus `completing` on each node.
const EVENTS: usize = 4 + 5 * NODES;
/// The default queue of both pipelines (ours and the SDK's
/// `BatchSpanProcessor`), and a big one.
const DEFAULT_QUEUE: usize = 2048;
const BIG_QUEUE: usize = 1 << 16;

/// The store: one counter, recorded as the flow's input and output JSON.
#[derive(Debug, Default, Serialize)]
struct Store {
    n: AtomicU64,
}

/// A small serde value, so that every `input`/`output` field is an object.
#[derive(Debug, Serialize)]
struct Value {
    step: u64,
    label: &'static str,
}

/// A trivial node: reads the counter, adds one, writes it back.
struct Step;

impl Node<Store> for Step {
    type Prep = Value;
    type Exec = Value;
    fn prep(&self, _: &Ctx<'_>, shared: &Store) -> Result<Value, BoxError> {
        Ok(Value { step: shared.n.load(Ordering::Relaxed), label: "prep" })
    }
    fn exec(&self, _: &Ctx<'_>, prep: &Value) -> Result<Value, BoxError> {
        Ok(Value { step: prep.step + 1, label: "exec" })
    }
    fn post(&self, _: &Ctx<'_>, shared: &Store, _: Value, exec: Value) -> Result<Action, BoxError> {
        shared.n.store(exec.step, Ordering::Relaxed);
        Ok(Action::NONE)
    }
}

/// `Step` >> `Step` >> … ten times.
fn chain_flow() -> Flow<Store> {
    let mut flow = Flow::named("Chain");
    let mut previous = flow.start(Step);
    for _ in 1..NODES {
        let next = flow.add(Step);
        flow.connect(previous, next);
        previous = next;
    }
    flow
}

/// The same exporter type behind both pipelines: accepts every batch and
/// counts its spans.
#[derive(Debug, Clone, Default)]
struct NoopExporter {
    spans: Arc<AtomicU64>,
}

impl NoopExporter {
    fn exported(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }
}

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.spans.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// How the flow is run while measuring.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Back to back, as fast as the thread goes: the export side may fall
    /// behind, and spans are then dropped at the queue.
    FreeRunning,
    /// In chunks of `CHUNK` runs (fewer spans than the queue holds), each
    /// followed by an untimed flush: nothing is ever dropped, and the export
    /// thread works while the next chunk runs.
    Drained,
}

/// Runs per chunk in [`Mode::Drained`]: as many as the default queue holds.
const CHUNK: u64 = DEFAULT_QUEUE as u64 / SPANS;

impl Mode {
    fn label(self, queue: usize) -> String {
        match self {
            Self::FreeRunning => format!("queue_{queue}"),
            Self::Drained => format!("queue_{queue}_drained"),
        }
    }
}

#[inline(never)]
fn run_once(flow: &Flow<Store>, store: &Store) {
    store.n.store(0, Ordering::Relaxed);
    let _ = black_box(flow.run(black_box(store)));
}

/// Runs the flow under `dispatch` until criterion is done, and returns the
/// number of runs (warm-up included), so that the caller knows how many spans
/// were created. `flush` waits until the export side has taken every span.
fn measure(
    group: &mut Group<'_>,
    id: &str,
    dispatch: &tracing::Dispatch,
    mode: Mode,
    flush: &dyn Fn(),
    flow: &Flow<Store>,
    store: &Store,
) -> u64 {
    let mut runs = 0u64;
    tracing::dispatcher::with_default(dispatch, || {
        group.bench_function(id, |b| match mode {
            Mode::FreeRunning => b.iter(|| {
                runs += 1;
                run_once(flow, store);
            }),
            Mode::Drained => b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(CHUNK);
                    let start = Instant::now();
                    for _ in 0..chunk {
                        run_once(flow, store);
                    }
                    timed += start.elapsed();
                    flush();
                    left -= chunk;
                }
                runs += iters;
                timed
            }),
        });
    });
    runs
}

fn ours(
    group: &mut Group<'_>,
    flow: &Flow<Store>,
    store: &Store,
    queue: usize,
    mode: Mode,
) -> Result<(), Box<dyn Error>> {
    let exporter = NoopExporter::default();
    let (layer, guard) =
        TracingConfig::builder().max_queue_size(queue).build()?.layer_with_exporter(exporter.clone())?;
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let id = format!("pocketflow_tracing/{}", mode.label(queue));
    // A failed flush shows up as drops in the counts below.
    let flush = || {
        let _ = guard.flush();
    };
    let runs = measure(group, &id, &dispatch, mode, &flush, flow, store);
    drop(dispatch);
    let live = guard.stats();
    let report = guard.shutdown();
    let created = runs * SPANS;
    println!(
        "{id}: {created} spans created; at the end of the run {} exported, {} dropped (queue full); after shutdown \
         {} exported, {} dropped ({:.1}%); the exporter saw {}",
        live.exported,
        live.dropped_queue_full,
        report.stats.exported,
        report.stats.dropped,
        percent(report.stats.dropped, created),
        exporter.exported(),
    );
    Ok(())
}

fn tracing_opentelemetry(
    group: &mut Group<'_>,
    flow: &Flow<Store>,
    store: &Store,
    queue: usize,
    mode: Mode,
) -> Result<(), Box<dyn Error>> {
    let exporter = NoopExporter::default();
    let processor = BatchSpanProcessor::builder(exporter.clone())
        .with_batch_config(BatchConfigBuilder::default().with_max_queue_size(queue).build())
        .build();
    let provider = SdkTracerProvider::builder().with_span_processor(processor).build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("pocketflow"));
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let id = format!("tracing_opentelemetry/{}", mode.label(queue));
    // A failed flush shows up as drops in the counts below.
    let flush = || {
        let _ = provider.force_flush();
    };
    let runs = measure(group, &id, &dispatch, mode, &flush, flow, store);
    drop(dispatch);
    let at_end = exporter.exported();
    provider.shutdown()?;
    let created = runs * SPANS;
    let dropped = created.saturating_sub(exporter.exported());
    println!(
        "{id}: {created} spans created; {at_end} exported at the end of the run; after shutdown {} exported, \
         {dropped} dropped ({:.1}%)",
        exporter.exported(),
        percent(dropped, created),
    );
    Ok(())
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

/// Checks, once, that a run emits exactly `SPANS` spans and `EVENTS`
/// lifecycle events, all closed.
fn check_run(flow: &Flow<Store>, store: &Store) -> Result<(), Box<dyn Error>> {
    let capture = Capture::new();
    store.n.store(0, Ordering::Relaxed);
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(capture.clone()));
    tracing::dispatcher::with_default(&dispatch, || flow.run(store))?;
    let captured = capture.snapshot();
    let spans = captured.spans.len() as u64;
    let closed = captured.spans.iter().filter(|s| s.closed).count() as u64;
    let lifecycle = captured.events_named(pocketflow::telemetry::event_names::LIFECYCLE).count();
    if spans != SPANS || closed != SPANS || lifecycle != EVENTS || captured.events.len() != EVENTS {
        return Err(format!(
            "expected {SPANS} closed spans and {EVENTS} lifecycle events per run, got {spans} spans ({closed} \
             closed), {lifecycle} lifecycle events of {} events",
            captured.events.len()
        )
        .into());
    }
    if store.n.load(Ordering::Relaxed) != NODES as u64 {
        return Err("the chain did not run every node".into());
    }
    Ok(())
}

fn layer_overhead(c: &mut Criterion) {
    let flow = chain_flow();
    let store = Store::default();
    let mut group = c.benchmark_group("layer_overhead");
    group.throughput(Throughput::Elements(SPANS));

    // First, before any dispatcher exists: every callsite is disabled.
    group.bench_function("no_subscriber", |b| b.iter(|| run_once(&flow, &store)));

    must(check_run(&flow, &store), "one traced run emits the expected spans");

    // A registry with no layer: what any subscriber pays before a layer runs.
    let registry = tracing::Dispatch::new(tracing_subscriber::registry());
    measure(&mut group, "registry_only", &registry, Mode::FreeRunning, &|| {}, &flow, &store);
    drop(registry);

    for (queue, mode) in
        [(DEFAULT_QUEUE, Mode::FreeRunning), (BIG_QUEUE, Mode::FreeRunning), (DEFAULT_QUEUE, Mode::Drained)]
    {
        must(ours(&mut group, &flow, &store, queue, mode), "the pocketflow-tracing setup runs");
        must(tracing_opentelemetry(&mut group, &flow, &store, queue, mode), "the tracing-opentelemetry setup runs");
    }
    group.finish();
}

#[allow(clippy::panic, reason = "a benchmark whose setup fails must stop, not report numbers")]
fn must<E: Display>(result: Result<(), E>, what: &str) {
    if let Err(error) = result {
        panic!("{what}: {error}");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30);
    targets = layer_overhead
}
criterion_main!(benches);

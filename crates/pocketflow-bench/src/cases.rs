//! The cases: each builds its own subscriber (scoped with
//! `tracing::dispatcher::with_default`, never a global one), runs its
//! workload, shuts the pipeline down and returns one [`Record`].

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use pocketflow::FlowError;
use pocketflow_test_support::Capture;
use pocketflow_test_support::otlp::OtlpReceiver;
use pocketflow_tracing::{
    ConfigError, ExporterKind, PocketflowLayer, Protocol, ShutdownReport, TracingConfig, TracingConfigBuilder,
    TracingError,
};
use tracing::Dispatch;
use tracing::instrument::WithSubscriber as _;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::collector::{self, Collector, CollectorError};
use crate::report::{self, Record, ms, per, rate};
use crate::workload::{self, ChainStore, Counter, DiscardingExporter, SPANS_PER_CHAIN};

/// How long a case waits for spans still on their way after shutdown.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);
/// The engine cases first run this fraction of their runs untimed, to warm
/// caches and the allocator up.
const WARM_UP_SHARE: u64 = 10;
/// Nodes timed at each end of the long run.
const LONG_RUN_WINDOW: u64 = 10_000;

/// Why a case could not produce figures.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CaseError {
    /// The tracing config was refused.
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// The tracing pipeline did not start.
    #[error("tracing: {0}")]
    Tracing(#[from] TracingError),
    /// A flow failed.
    #[error("flow: {0}")]
    Flow(#[from] FlowError),
    /// The SDK pipeline failed.
    #[error("opentelemetry sdk: {0}")]
    Sdk(#[from] opentelemetry_sdk::error::OTelSdkError),
    /// The collector failed.
    #[error("collector: {0}")]
    Collector(#[from] CollectorError),
    /// A receiver, runtime or `/proc` read failed.
    #[error("io: {0}")]
    Io(#[from] io::Error),
    /// The workload did not do what the case counts on.
    #[error("check failed: {0}")]
    Check(String),
}

/// Problem sizes: `--quick` keeps the whole run under two minutes on two
/// cores; the full sizes give steadier figures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// Runs of the engine loop.
    pub(crate) engine_runs: u64,
    /// Nodes per engine loop run.
    pub(crate) engine_nodes: u64,
    /// Chain runs for the layer, SDK, receiver and collector cases.
    pub(crate) chain_runs: u64,
    /// Flows in the burst (fixed by the case's name).
    pub(crate) burst_flows: u64,
    /// Flows run at once (fixed by the case's name).
    pub(crate) concurrent_flows: u64,
    /// Nodes in the long run.
    pub(crate) long_run_nodes: u64,
    /// Runs of the chain over a 10 MB store.
    pub(crate) store_runs: u64,
}

impl Sizes {
    /// The sizes for `--quick`.
    pub(crate) const QUICK: Self = Self {
        engine_runs: 1000,
        engine_nodes: 1000,
        chain_runs: 5000,
        burst_flows: 5000,
        concurrent_flows: 1000,
        long_run_nodes: 200_000,
        store_runs: 10,
    };
    /// The full sizes.
    pub(crate) const FULL: Self = Self {
        engine_runs: 10_000,
        engine_nodes: 1000,
        chain_runs: 25_000,
        burst_flows: 5000,
        concurrent_flows: 1000,
        long_run_nodes: 1_000_000,
        store_runs: 50,
    };
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), CaseError> {
    if ok { Ok(()) } else { Err(CaseError::Check(what())) }
}

/// `engine_sync`: the sync loop with no subscriber at all.
pub(crate) fn engine_sync(sizes: Sizes) -> Result<Record, CaseError> {
    let flow = workload::sync_loop();
    let store = Counter::for_nodes(sizes.engine_nodes);
    flow.run(&store)?;
    let ticks = Counter::ticks_for(sizes.engine_nodes);
    check(store.ticks_done() == ticks, || format!("the loop ticked {} times, not {ticks}", store.ticks_done()))?;
    for _ in 0..sizes.engine_runs / WARM_UP_SHARE {
        store.reset(sizes.engine_nodes);
        flow.run(std::hint::black_box(&store))?;
    }
    let start = Instant::now();
    for _ in 0..sizes.engine_runs {
        store.reset(sizes.engine_nodes);
        flow.run(std::hint::black_box(&store))?;
    }
    let elapsed = start.elapsed();
    Ok(engine_record("engine_sync", sizes, elapsed))
}

/// `engine_async`: the async loop on a current-thread runtime, no subscriber.
pub(crate) fn engine_async(sizes: Sizes) -> Result<Record, CaseError> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let flow = workload::async_loop();
    let store = Counter::for_nodes(sizes.engine_nodes);
    rt.block_on(flow.run(&store))?;
    let ticks = Counter::ticks_for(sizes.engine_nodes);
    check(store.ticks_done() == ticks, || format!("the loop ticked {} times, not {ticks}", store.ticks_done()))?;
    for _ in 0..sizes.engine_runs / WARM_UP_SHARE {
        store.reset(sizes.engine_nodes);
        rt.block_on(flow.run(std::hint::black_box(&store)))?;
    }
    let start = Instant::now();
    for _ in 0..sizes.engine_runs {
        store.reset(sizes.engine_nodes);
        rt.block_on(flow.run(std::hint::black_box(&store)))?;
    }
    let elapsed = start.elapsed();
    Ok(engine_record("engine_async", sizes, elapsed))
}

fn engine_record(case: &str, sizes: Sizes, elapsed: Duration) -> Record {
    let nodes = sizes.engine_runs * sizes.engine_nodes;
    Record {
        runs: Some(sizes.engine_runs),
        nodes: Some(nodes),
        ns_per_node: per(elapsed, nodes),
        run_ms: Some(ms(elapsed)),
        ..Record::new(case)
    }
}

/// Checks, once, that a chain run emits [`SPANS_PER_CHAIN`] spans, all
/// closed, so that every traced case's span counts are right.
pub(crate) fn check_chain() -> Result<(), CaseError> {
    let capture = Capture::new();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(capture.clone()));
    let flow = workload::chain();
    let store = ChainStore::default();
    tracing::dispatcher::with_default(&dispatch, || flow.run(&store))?;
    let captured = capture.snapshot();
    let spans = captured.spans.len() as u64;
    let closed = captured.spans.iter().filter(|span| span.closed).count() as u64;
    check(spans == SPANS_PER_CHAIN && closed == SPANS_PER_CHAIN, || {
        format!("a chain run emitted {spans} spans ({closed} closed), expected {SPANS_PER_CHAIN}")
    })?;
    check(store.steps() == workload::CHAIN_NODES, || format!("the chain ran {} nodes", store.steps()))
}

/// What a traced run of chains measured.
struct Traced {
    runs: u64,
    /// The runs alone.
    run: Duration,
    /// From the first run to the end of the shutdown.
    total: Duration,
    report: ShutdownReport,
}

impl Traced {
    fn spans(&self) -> u64 {
        self.runs * SPANS_PER_CHAIN
    }

    /// The record, given what the far end received and when the last of it
    /// arrived (from the first run).
    fn record(&self, case: &str, delivered: u64, deliver: Duration) -> Record {
        let stats = &self.report.stats;
        let mut notes = Vec::new();
        if stats.recorded() != self.spans() {
            notes.push(format!(
                "the pipeline accounted for {} of {} spans ({} exported + {} dropped)",
                stats.recorded(),
                self.spans(),
                stats.exported,
                stats.dropped
            ));
        }
        if delivered != stats.exported {
            notes.push(format!("the pipeline reported {} exported, the far end counted {delivered}", stats.exported));
        }
        if !self.report.completed {
            notes.push("shutdown timed out".to_owned());
        }
        Record {
            runs: Some(self.runs),
            spans: Some(self.spans()),
            ns_per_span: per(self.run, self.spans()),
            spans_per_sec: rate(delivered, deliver),
            delivered: Some(delivered),
            dropped: Some(stats.dropped),
            dropped_queue_full: Some(stats.dropped_queue_full),
            failed_export: Some(stats.failed_export),
            unflushed: Some(stats.unflushed),
            run_ms: Some(ms(self.run)),
            deliver_ms: Some(ms(deliver)),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
            ..Record::new(case)
        }
    }
}

/// Runs `runs` chains back to back under `dispatch`, which it drops
/// after; returns the result, the time the runs took, and the store.
fn time_chains(dispatch: Dispatch, runs: u64) -> (Result<(), FlowError>, Duration, ChainStore) {
    let flow = workload::chain();
    let store = ChainStore::default();
    let start = Instant::now();
    let result = tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..runs {
            store.reset();
            flow.run(&store)?;
        }
        Ok::<_, FlowError>(())
    });
    let run = start.elapsed();
    drop(dispatch);
    (result, run, store)
}

/// Runs `runs` chains back to back under the layer, then shuts it down.
fn run_chains(layer: PocketflowLayer, guard: pocketflow_tracing::TracingGuard, runs: u64) -> Result<Traced, CaseError> {
    let start = Instant::now();
    let (result, run, store) = time_chains(Dispatch::new(tracing_subscriber::registry().with(layer)), runs);
    let report = guard.shutdown();
    let total = start.elapsed();
    result?;
    check(store.steps() == workload::CHAIN_NODES, || format!("the chain ran {} nodes", store.steps()))?;
    Ok(Traced { runs, run, total, report })
}

/// `layer_noop`: the pocketflow-tracing layer, default settings, into an
/// exporter that discards.
pub(crate) fn layer_noop(sizes: Sizes) -> Result<Record, CaseError> {
    layer_noop_with("layer_noop", TracingConfig::builder(), sizes)
}

/// `layer_noop_phases_off`: the same with `prep`, `exec` and `post` spans
/// switched off, so that only the flow and node spans are exported: what a
/// phase span the layer does not record still costs.
pub(crate) fn layer_noop_phases_off(sizes: Sizes) -> Result<Record, CaseError> {
    let config = TracingConfig::builder().trace_prep(false).trace_exec(false).trace_post(false);
    layer_noop_with("layer_noop_phases_off", config, sizes)
}

fn layer_noop_with(case: &str, config: TracingConfigBuilder, sizes: Sizes) -> Result<Record, CaseError> {
    let exporter = DiscardingExporter::default();
    let (layer, guard) = config.build()?.layer_with_exporter(exporter.clone())?;
    let traced = run_chains(layer, guard, sizes.chain_runs)?;
    Ok(traced.record(case, exporter.received(), traced.total))
}

/// `store_10mb`: the chain over a store that also holds a 10 MB document,
/// under the layer into a discarding exporter, against the same runs with
/// no subscriber. The flow records its whole store as input and output, so
/// this is what recording a big store costs.
pub(crate) fn store_10mb(sizes: Sizes) -> Result<Record, CaseError> {
    const DOCUMENT: usize = 10 << 20;
    let runs = sizes.store_runs;
    let flow = workload::chain();
    let store = ChainStore::with_document(DOCUMENT);
    let timed = |dispatch: &Dispatch| -> Result<Duration, CaseError> {
        let start = Instant::now();
        tracing::dispatcher::with_default(dispatch, || {
            for _ in 0..runs {
                store.reset();
                flow.run(&store)?;
            }
            Ok::<_, FlowError>(())
        })?;
        Ok(start.elapsed())
    };
    let bare = timed(&Dispatch::none())?;
    let exporter = DiscardingExporter::default();
    let (layer, guard) = TracingConfig::builder().build()?.layer_with_exporter(exporter.clone())?;
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let start = Instant::now();
    let run = timed(&dispatch)?;
    drop(dispatch);
    let report = guard.shutdown();
    let total = start.elapsed();
    let nodes = runs * workload::CHAIN_NODES;
    let traced = Traced { runs, run, total, report };
    let mut record = traced.record("store_10mb", exporter.received(), total);
    record.nodes = Some(nodes);
    record.ns_per_node = per(run, nodes);
    record.note = Some(format!(
        "{:.1} ms per run traced, {:.1} ms with no subscriber",
        run.as_secs_f64() * 1e3 / runs as f64,
        bare.as_secs_f64() * 1e3 / runs as f64
    ));
    Ok(record)
}

/// `tracing_opentelemetry_noop`: tracing-opentelemetry on the SDK's
/// thread-based `BatchSpanProcessor` (its defaults: queue 2048, batch 512,
/// delay 5 s), into the same discarding exporter.
pub(crate) fn tracing_opentelemetry_noop(sizes: Sizes) -> Result<Record, CaseError> {
    let exporter = DiscardingExporter::default();
    let processor = BatchSpanProcessor::builder(exporter.clone()).build();
    let provider = SdkTracerProvider::builder().with_span_processor(processor).build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("pocketflow"));
    let runs = sizes.chain_runs;
    let start = Instant::now();
    let (result, run, _) = time_chains(Dispatch::new(tracing_subscriber::registry().with(layer)), runs);
    let shutdown = provider.shutdown();
    let total = start.elapsed();
    result?;
    shutdown?;
    let spans = runs * SPANS_PER_CHAIN;
    let delivered = exporter.received();
    Ok(Record {
        runs: Some(runs),
        spans: Some(spans),
        ns_per_span: per(run, spans),
        spans_per_sec: rate(delivered, total),
        delivered: Some(delivered),
        dropped: Some(spans.saturating_sub(delivered)),
        run_ms: Some(ms(run)),
        deliver_ms: Some(ms(total)),
        note: Some("dropped = created - delivered (the SDK does not count its drops)".to_owned()),
        ..Record::new("tracing_opentelemetry_noop")
    })
}

/// Spans an in-process receiver accepted, from its request log (cheaper
/// than copying every decoded span).
fn received(receiver: &OtlpReceiver) -> u64 {
    receiver.requests().iter().filter(|request| request.error.is_none()).map(|request| request.span_count as u64).sum()
}

/// The default config sending OTLP over `protocol` to `endpoint`.
fn otlp_config(protocol: Protocol, endpoint: String) -> Result<TracingConfig, ConfigError> {
    TracingConfig::builder().exporters(vec![ExporterKind::Otlp]).protocol(protocol).otlp_endpoint(endpoint).build()
}

/// `layer_otlp_grpc`, `layer_otlp_http` and `burst_5000_flows`: `runs`
/// chains through the layer's OTLP exporter to an in-process receiver.
pub(crate) fn layer_otlp(case: &str, protocol: Protocol, runs: u64) -> Result<Record, CaseError> {
    let receiver = match protocol {
        Protocol::HttpProtobuf => OtlpReceiver::http()?,
        _ => OtlpReceiver::grpc()?,
    };
    let (layer, guard) = otlp_config(protocol, receiver.endpoint())?.layer()?;
    let traced = run_chains(layer, guard, runs)?;
    // Every export was answered before shutdown returned: the count is final.
    Ok(traced.record(case, received(&receiver), traced.total))
}

/// `collector_grpc`, `collector_http`: the same through the real collector,
/// counted by the collector's own `otelcol_receiver_accepted_spans`.
pub(crate) fn collector_case(case: &str, protocol: Protocol, runs: u64) -> Result<Record, CaseError> {
    collector_case_with(case, protocol, runs, None)
}

/// [`collector_case`] with `batch` spans per export instead of the default
/// (the sweeps of `--plots`).
pub(crate) fn collector_case_with(
    case: &str,
    protocol: Protocol,
    runs: u64,
    batch: Option<usize>,
) -> Result<Record, CaseError> {
    let binary = match collector::find_binary() {
        Ok(binary) => binary,
        Err(reason) => return Ok(Record::skipped(case, reason)),
    };
    let collector = Collector::start(&binary, case)?;
    let endpoint = match protocol {
        Protocol::HttpProtobuf => collector.http_endpoint(),
        _ => collector.grpc_endpoint(),
    };
    let mut config =
        TracingConfig::builder().exporters(vec![ExporterKind::Otlp]).protocol(protocol).otlp_endpoint(endpoint);
    if let Some(batch) = batch {
        config = config.max_export_batch_size(batch);
    }
    let (layer, guard) = config.build()?.layer()?;
    let (own_cpu, collector_cpu) = (report::cpu_ms("self")?, collector.cpu_ms()?);
    let start = Instant::now();
    let traced = run_chains(layer, guard, runs)?;
    let delivered = collector.wait_for_accepted(traced.report.stats.exported, ARRIVAL_TIMEOUT)?;
    let deliver = start.elapsed();
    let own_cpu = report::cpu_ms("self")? - own_cpu;
    let collector_cpu = collector.cpu_ms()? - collector_cpu;
    let refused = collector.refused_spans()?;
    let mut record = traced.record(case, delivered, deliver);
    // Where the two cores went: the flows and the export thread (this
    // process), and the collector.
    let mut notes = vec![format!("CPU: this process {own_cpu:.0} ms, the collector {collector_cpu:.0} ms")];
    if refused > 0 {
        notes.push(format!("the collector refused {refused} spans"));
    }
    notes.extend(record.note.take());
    record.note = Some(notes.join("; "));
    Ok(record)
}

/// `concurrent_1000`: that many async chains spawned at once on a
/// two-worker tokio runtime, under the layer into a discarding exporter.
/// Each step yields once, so the flows interleave.
pub(crate) fn concurrent(sizes: Sizes) -> Result<Record, CaseError> {
    concurrent_flows("concurrent_1000", sizes.concurrent_flows)
}

/// `flows` async chains spawned at once, as [`concurrent`] (the sweeps of
/// `--plots` vary `flows`).
pub(crate) fn concurrent_flows(case: &str, flows: u64) -> Result<Record, CaseError> {
    let exporter = DiscardingExporter::default();
    let (layer, guard) = TracingConfig::builder().build()?.layer_with_exporter(exporter.clone())?;
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build()?;
    let flow = Arc::new(workload::async_chain());
    let start = Instant::now();
    let outcome: Result<Vec<u64>, CaseError> = rt.block_on(async {
        let handles: Vec<_> = (0..flows)
            .map(|_| {
                let flow = Arc::clone(&flow);
                // The subscriber goes with each task to whichever worker
                // polls it.
                tokio::spawn(
                    async move {
                        let store = ChainStore::default();
                        flow.run(&store).await.map(|_| store.steps())
                    }
                    .with_subscriber(dispatch.clone()),
                )
            })
            .collect();
        let mut steps = Vec::with_capacity(handles.len());
        for handle in handles {
            steps.push(handle.await.map_err(|e| CaseError::Check(format!("a flow task failed: {e}")))??);
        }
        Ok(steps)
    });
    let run = start.elapsed();
    drop(dispatch);
    drop(rt);
    let report = guard.shutdown();
    let total = start.elapsed();
    let steps = outcome?;
    check(steps.iter().all(|&s| s == workload::CHAIN_NODES), || "a flow did not run every node".to_owned())?;
    let traced = Traced { runs: flows, run, total, report };
    let mut record = traced.record(case, exporter.received(), total);
    record.note = Some(
        [Some("ns_per_span is wall-clock over both workers".to_owned()), record.note]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; "),
    );
    Ok(record)
}

/// `long_run`: one sync loop of `long_run_nodes` nodes under the layer into
/// a discarding exporter: peak RSS, and the time per node at both ends.
pub(crate) fn long_run(sizes: Sizes) -> Result<Record, CaseError> {
    loop_run("long_run", sizes.long_run_nodes)
}

/// One sync loop of `nodes` nodes under the layer, as [`long_run`] (the
/// sweeps of `--plots` vary `nodes`).
pub(crate) fn loop_run(case: &str, nodes: u64) -> Result<Record, CaseError> {
    let ticks = Counter::ticks_for(nodes);
    let window = LONG_RUN_WINDOW / 2;
    check(ticks > 2 * window + 1, || format!("{nodes} nodes are too few to time both ends"))?;
    let reset = report::reset_peak_rss();
    let rss_before = report::rss_mb()?;
    let exporter = DiscardingExporter::default();
    let (layer, guard) = TracingConfig::builder().build()?.layer_with_exporter(exporter.clone())?;
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let flow = workload::sync_loop();
    let store = Counter::for_nodes(nodes);
    // Tick k ends node 2k: ticks 1 to 1 + window span the first 10,000
    // nodes after the first Check, the last window ticks the last 10,000
    // before the final Check and Done.
    store.mark_at(vec![1, 1 + window, ticks - window, ticks]);
    let start = Instant::now();
    let result = tracing::dispatcher::with_default(&dispatch, || flow.run(&store));
    let run = start.elapsed();
    drop(dispatch);
    let report = guard.shutdown();
    let total = start.elapsed();
    result?;
    let peak = report::peak_rss_mb()?;
    let marks = store.marks();
    check(store.ticks_done() == ticks && marks.len() == 4, || {
        format!("the loop ticked {} of {ticks} times, {} marks", store.ticks_done(), marks.len())
    })?;
    let (first, last) = match marks.as_slice() {
        [a, b, c, d] => (b.duration_since(*a), d.duration_since(*c)),
        _ => return Err(CaseError::Check("marks".to_owned())),
    };
    let spans = 1 + 4 * nodes;
    let stats = report.stats;
    let mut notes = vec![format!("RSS {rss_before} MB when the case started")];
    if let Err(e) = reset {
        notes.push(format!("the peak could not be reset ({e}): it may be an earlier case's"));
    }
    if !report.completed {
        notes.push("shutdown timed out".to_owned());
    }
    if stats.recorded() != spans || exporter.received() != stats.exported {
        notes.push(format!(
            "{} exported + {} dropped of {spans} spans; the exporter saw {}",
            stats.exported,
            stats.dropped,
            exporter.received()
        ));
    }
    Ok(Record {
        runs: Some(1),
        nodes: Some(nodes),
        ns_per_node: per(run, nodes),
        ns_per_node_first_10k: per(first, LONG_RUN_WINDOW),
        ns_per_node_last_10k: per(last, LONG_RUN_WINDOW),
        spans: Some(spans),
        ns_per_span: per(run, spans),
        spans_per_sec: rate(exporter.received(), total),
        delivered: Some(exporter.received()),
        dropped: Some(stats.dropped),
        dropped_queue_full: Some(stats.dropped_queue_full),
        run_ms: Some(ms(run)),
        deliver_ms: Some(ms(total)),
        peak_rss_mb: Some(peak),
        note: Some(notes.join("; ")),
        ..Record::new(case)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_run_emits_the_spans_the_cases_count() {
        assert!(matches!(check_chain(), Ok(())), "{:?}", check_chain());
    }
}

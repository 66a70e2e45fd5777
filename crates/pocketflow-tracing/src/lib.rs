//! OpenTelemetry tracing for [`pocketflow`] flows: every flow run becomes a
//! trace, every node a span with its phases nested under it, and the trace
//! goes to Langfuse, to any OTLP collector or backend (Jaeger, Phoenix,
//! Tempo…), or, with nothing configured, to your terminal.
//!
//! # Quick start
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Reads the environment (see below); with nothing set, prints each
//! // finished trace as a tree on stderr.
//! let tracing = pocketflow_tracing::init()?;
//!
//! // ... build and run flows ...
//!
//! // Flushes what is queued and says what happened to it.
//! eprintln!("{}", tracing.shutdown());
//! # Ok(()) }
//! ```
//!
//! Where the traces go depends on the environment (`docs/configuration.md`
//! lists every variable):
//!
//! | set | exporter |
//! |---|---|
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` (and `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` or `http/protobuf`) | OTLP to that collector or backend |
//! | `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY` (and `LANGFUSE_HOST`) | straight to Langfuse |
//! | nothing | a tree of each trace on stderr |
//! | `POCKETFLOW_TRACING_EXPORTER=console,otlp` | exactly those |
//!
//! # With other layers
//!
//! [`TracingConfig::layer`] gives the layer and its guard, to compose with
//! `fmt`, filters, or your own layers on a `Registry`:
//!
//! ```no_run
//! use pocketflow_tracing::TracingConfig;
//! use tracing_subscriber::prelude::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (layer, guard) = TracingConfig::builder()
//!     .session_id("chat-42")
//!     .user_id("ada")
//!     .tag("triage")
//!     .from_env()?           // code beats the environment
//!     .layer()?;
//! tracing_subscriber::registry().with(layer).init();
//! # drop(guard); Ok(()) }
//! ```
//!
//! # What is recorded
//!
//! The engine's spans (`flow`, `node`, `prep`, `exec`, `fallback`, `post`,
//! `item`, `composition`; see `docs/span-schema.md`) and any span opened inside them, such
//! as your own `#[instrument]` function called from `exec`, nested under the
//! node that called it. Each span carries the attributes Langfuse reads:
//! `langfuse.trace.name` and the trace-wide session, user, tags, metadata,
//! environment and release; `langfuse.observation.type` (`chain` for flows,
//! for nodes what their `observation()` declares, `span` by default;
//! `generation` for [`Generation`]s, with model, usage, cost and messages);
//! inputs and outputs as
//! JSON in `langfuse.observation.input`/`output`. The same spans carry
//! OpenInference's `openinference.span.kind` and `input.value`/`output.value`,
//! so Phoenix reads them too. Errors set the span status to ERROR and add an
//! `exception` event; retries, fallbacks and lifecycle transitions are span
//! events.
//!
//! # Secrets
//!
//! The values of sensitive keys (`redact_keys`, by default
//! [`DEFAULT_REDACT_KEYS`]) are replaced by `"[REDACTED]"` in inputs and
//! outputs. Keys match without case, with `-`, `_`, `.` and whitespace
//! ignored, and as a suffix, so `openai_api_key` matches `api_key`. This
//! works at any depth, inside JSON held in string values, and before the
//! size cap cuts a payload. In error text (status messages,
//! `exception.message`, events' fields), `Bearer`/`Basic` credentials,
//! `key=value` / `key: value` for those keys, and URL passwords are masked.
//! This happens before any exporter sees the span, so the console tree is
//! covered too. The full rules, and what they do not cover, are in
//! `docs/configuration.md` ("Redaction").
//!
//! # Runs across processes
//!
//! A run continues a caller's trace when its root span carries the
//! caller's W3C `traceparent` (`RunOptions::parent` in the engine; the
//! caller's sampling decision is followed), and links to other traces with
//! `RunOptions::link`. The other way round, [`current_traceparent`] gives
//! the context of the span your code runs in (say, in `exec`), and
//! [`inject`] adds it as a `traceparent` header to an outgoing request, so
//! the service called joins the run's trace.
//!
//! A run's own session, user, tags and metadata (`RunOptions`) apply to its
//! whole trace and win over the config's; tags and metadata are merged.
//!
//! # What it costs, and what it never does
//!
//! On the application's threads the layer records ids, timestamps and field
//! values, and hands each closed span to a bounded queue without blocking.
//! Mapping, redaction (except of a value over the size cap, redacted before
//! it is cut) and export run on a dedicated thread with its own
//! runtime, so a slow or absent collector never slows a node (spans are
//! dropped and counted when the queue is full), [`TracingGuard::shutdown`]
//! works from any runtime flavour, and the exporter's own HTTP/gRPC
//! telemetry never lands in your traces.

mod config;
mod diagnostics;
mod endpoint;
mod env;
mod error;
mod exporter;
mod generation;
mod lane;
mod layer;
mod mapping;
mod pipeline;
mod progress;
mod propagation;
mod record;
mod redact;
mod spool;
mod tls;

use opentelemetry_sdk::trace::SpanExporter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use config::{
    DEFAULT_EXCLUDED_TARGETS, DEFAULT_EXPORT_RETRY_TIME, DEFAULT_EXPORT_TIMEOUT, DEFAULT_MAX_CONCURRENT_EXPORTS,
    DEFAULT_MAX_EVENTS_PER_SPAN, DEFAULT_MAX_EXPORT_BATCH_SIZE, DEFAULT_MAX_LIFECYCLE_EVENTS_PER_SPAN,
    DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_QUEUE_BYTES, DEFAULT_QUEUE_FULL_WAIT, DEFAULT_REDACT_KEYS,
    DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_SLOW_NODE_THRESHOLD, DEFAULT_SPOOL_MAX_BYTES, ExporterKind,
    LANGFUSE_DEFAULT_HOST, MAX_CONCURRENT_EXPORTS, MAX_EXPORT_BATCH_BYTES, MAX_NAME_BYTES, MAX_QUEUE_BYTES,
    MAX_QUEUE_SIZE, MAX_SPOOL_BYTES, ObservationType, Protocol, QueueFullPolicy, Sampler, Secret, TracingConfig,
    TracingConfigBuilder,
};
pub use error::{ConfigError, ResponseError, TracingError};
pub use exporter::{ConsoleExporter, LangfuseExporter};
pub use generation::{Cost, Generation, Message, Pricing, Role, TARGET as GENERATION_TARGET, Usage};
pub use lane::ExporterStats;
pub use layer::PocketflowLayer;
pub use mapping::SCOPE_NAME;
pub use pipeline::{ExportStats, ShutdownReport, TracingGuard};
#[doc(hidden)]
pub use progress::{BarSummary, BatchSummary, ProgressProbe};
pub use progress::{BatchProgress, PROGRESS_SHOW_AFTER};
pub use propagation::{current_traceparent, inject};

/// The name prefix of this crate's own diagnostics, the lines it writes on
/// stderr (`pocketflow_tracing.export_failed: …`).
pub const DIAGNOSTICS_TARGET: &str = "pocketflow_tracing";

/// Reads the config from the environment and installs the layer as the
/// global subscriber. Keep the guard until the program ends.
///
/// # Errors
/// [`TracingError::Config`] naming an invalid variable,
/// [`TracingError::Exporter`], or [`TracingError::AlreadyInstalled`] when a
/// global subscriber exists (add [`TracingConfig::layer`] to it instead).
pub fn init() -> Result<TracingGuard, TracingError> {
    TracingConfig::from_env()?.init()
}

impl TracingConfig {
    /// The layer and the guard of its export thread, for a subscriber you
    /// assemble yourself.
    ///
    /// # Errors
    /// [`TracingError::Exporter`] when an exporter cannot be built (a
    /// missing Langfuse key, an invalid header), [`TracingError::Thread`].
    pub fn layer(self) -> Result<(PocketflowLayer, TracingGuard), TracingError> {
        if self.exporters.iter().all(|kind| *kind == ExporterKind::None) {
            // Nothing would receive the spans: record nothing.
            return Ok(self.inactive());
        }
        let config = self.clone();
        // The console tree shows events on their spans: event
        // observations are for what leaves the process.
        let leaves = self.exporters.iter().any(|kind| matches!(kind, ExporterKind::Otlp | ExporterKind::Langfuse));
        self.start(leaves, move || exporter::ExporterSet::from_config(&config))
    }

    /// Like [`layer`](Self::layer), sending to `exporter` instead of the
    /// configured exporters: any OpenTelemetry `SpanExporter` works.
    ///
    /// # Errors
    /// [`TracingError::Thread`] when the export thread cannot start.
    pub fn layer_with_exporter(
        self,
        exporter: impl SpanExporter + 'static,
    ) -> Result<(PocketflowLayer, TracingGuard), TracingError> {
        self.start(true, move || {
            let mut set = exporter::ExporterSet::default();
            set.push("custom", exporter);
            Ok(set)
        })
    }

    /// Installs the layer as the global subscriber, with the
    /// [`BatchProgress`] bars unless [`progress`](TracingConfigBuilder::progress)
    /// is off.
    ///
    /// # Errors
    /// As [`layer`](Self::layer), or [`TracingError::AlreadyInstalled`].
    pub fn init(self) -> Result<TracingGuard, TracingError> {
        let progress = self.progress_layer();
        let (layer, guard) = self.layer()?;
        tracing_subscriber::registry()
            .with(layer)
            .with(progress)
            .try_init()
            .map_err(|_| TracingError::AlreadyInstalled)?;
        Ok(guard)
    }

    /// The progress bars for long batches this config asks for: a
    /// [`BatchProgress`] (inert off a terminal and in CI), or `None` when
    /// [`progress`](TracingConfigBuilder::progress) is off. For a
    /// subscriber you assemble yourself next to [`layer`](Self::layer).
    pub fn progress_layer(&self) -> Option<BatchProgress> {
        self.progress.then(BatchProgress::new)
    }

    /// Starts the export thread; `leaves`: some exporter sends spans out of
    /// the process (event observations are made only then).
    fn start(
        self,
        leaves: bool,
        build: impl FnOnce() -> Result<exporter::ExporterSet, TracingError> + Send + 'static,
    ) -> Result<(PocketflowLayer, TracingGuard), TracingError> {
        if self.disabled {
            return Ok(self.inactive());
        }
        let mapper = mapping::Mapper::new(&self, leaves);
        let (sink, guard) = pipeline::start(&self.batch, self.otlp.timeout, mapper, self.record.debug, build)?;
        Ok((PocketflowLayer::new(&self, sink, true), guard))
    }

    fn inactive(&self) -> (PocketflowLayer, TracingGuard) {
        (PocketflowLayer::new(self, pipeline::SpanSink::disabled(), false), TracingGuard::disabled())
    }
}

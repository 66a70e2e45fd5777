//! [`TracingConfig`]: what to record, where to send it, and how.
//!
//! A config is built in code with [`TracingConfig::builder`], from the
//! environment with [`TracingConfig::from_env`], or both: values set in code
//! win, the environment fills in the rest
//! (`TracingConfig::builder().session_id("s-1").from_env()`). Every variable
//! is listed in `docs/configuration.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::ConfigError;

/// A secret (a Langfuse secret key, a header value): `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// Where finished traces go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExporterKind {
    /// A readable tree of each finished trace, on stderr.
    Console,
    /// OTLP to a collector or backend ([`Protocol`] picks gRPC or HTTP).
    Otlp,
    /// OTLP/HTTP straight to Langfuse's `/api/public/otel/v1/traces`.
    Langfuse,
    /// Nothing: the layer records nothing and no export thread runs.
    None,
}

impl ExporterKind {
    /// The name used in `POCKETFLOW_TRACING_EXPORTER`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Otlp => "otlp",
            Self::Langfuse => "langfuse",
            Self::None => "none",
        }
    }
}

impl fmt::Display for ExporterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP/gRPC over tonic (`grpc`), the default; port 4317 by convention.
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`); port 4318.
    HttpProtobuf,
}

impl Protocol {
    /// The value used in `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Which traces are kept. Decided once per trace, at its root span, from the
/// trace id, so every span of a kept trace is kept.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Sampler {
    /// Keep every trace (`always_on`, `parentbased_always_on`).
    #[default]
    AlwaysOn,
    /// Keep none (`always_off`, `parentbased_always_off`).
    AlwaysOff,
    /// Keep this fraction of traces, 0.0 to 1.0 (`traceidratio`,
    /// `parentbased_traceidratio`, with `OTEL_TRACES_SAMPLER_ARG`).
    TraceIdRatio(f64),
}

/// Langfuse's observation types, as `langfuse.observation.type` spells them:
/// the engine's [`pocketflow::Observation`], the same kinds a node declares.
///
/// Flows are `chain` and nodes `span` unless the node declares another kind
/// or the config maps their name to one
/// ([`TracingConfigBuilder::observation_type`]); LLM calls made through
/// [`crate::Generation`] are `generation`.
pub type ObservationType = pocketflow::Observation;

/// The default Langfuse host when only keys are set.
pub const LANGFUSE_DEFAULT_HOST: &str = "https://cloud.langfuse.com";

/// Keys whose values are replaced by `"[REDACTED]"` in recorded inputs and
/// outputs, and whose `key=value` / `key: value` is masked in error text,
/// unless the config says otherwise. A key matches when, with `-`, `_`, `.`
/// and whitespace removed and letters lowercased, it ends with one of these:
/// `API-Key`, `apiKey` and `openai_api_key` all match `api_key`. The rules
/// are in `docs/configuration.md` ("Redaction").
pub const DEFAULT_REDACT_KEYS: [&str; 14] = [
    "api_key",
    "apikey",
    "x-api-key",
    "authorization",
    "password",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "secret_key",
    "client_secret",
    "private_key",
    "cookie",
    "set-cookie",
];

/// Targets whose spans and events are never recorded: the exporter's own
/// transport stack. Recording them would feed the exporter's traffic back
/// into the traces it exports. A prefix covers the crate, its modules, and
/// the crates named after it (`hyper` covers `hyper::proto` and `hyper_util`).
pub const DEFAULT_EXCLUDED_TARGETS: [&str; 6] = ["h2", "hyper", "tonic", "tower", "reqwest", "opentelemetry"];

/// Tracing configuration. Build one with [`TracingConfig::builder`] or
/// [`TracingConfig::from_env`]; install it with [`TracingConfig::init`] or
/// [`TracingConfig::layer`].
#[derive(Debug, Clone)]
pub struct TracingConfig {
    pub(crate) record: RecordSettings,
    pub(crate) trace: TraceAttributes,
    pub(crate) sampler: Sampler,
    pub(crate) exporters: Vec<ExporterKind>,
    pub(crate) otlp: OtlpSettings,
    pub(crate) langfuse: LangfuseSettings,
    pub(crate) batch: BatchSettings,
    pub(crate) observation_types: BTreeMap<String, ObservationType>,
    pub(crate) excluded_targets: Vec<String>,
    pub(crate) disabled: bool,
    /// Progress bars for long batches, on a terminal.
    pub(crate) progress: bool,
}

/// What is recorded on spans.
#[derive(Debug, Clone)]
pub(crate) struct RecordSettings {
    pub(crate) inputs: bool,
    pub(crate) outputs: bool,
    pub(crate) errors: bool,
    pub(crate) prep: bool,
    pub(crate) exec: bool,
    pub(crate) post: bool,
    pub(crate) async_lifecycle: bool,
    pub(crate) async_context: bool,
    pub(crate) concurrent_flows: bool,
    pub(crate) async_error_recovery: bool,
    pub(crate) performance_monitoring: bool,
    pub(crate) event_observations: bool,
    pub(crate) debug: bool,
    pub(crate) max_payload_bytes: usize,
    pub(crate) redact_keys: Vec<String>,
    pub(crate) max_events_per_span: usize,
    pub(crate) max_lifecycle_events_per_span: usize,
    pub(crate) slow_node_threshold: Duration,
}

/// Trace-wide attributes: Langfuse wants them on every span.
#[derive(Debug, Clone, Default)]
pub(crate) struct TraceAttributes {
    pub(crate) session_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) service_name: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) resource: Vec<(String, String)>,
}

#[derive(Clone)]
pub(crate) struct OtlpSettings {
    /// The full traces URL (already with `/v1/traces` for HTTP).
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Protocol,
    pub(crate) headers: Vec<(String, Secret)>,
    pub(crate) timeout: Duration,
    pub(crate) gzip: bool,
    pub(crate) tls: crate::tls::OtlpTls,
}

#[derive(Clone)]
pub(crate) struct LangfuseSettings {
    pub(crate) public_key: Option<String>,
    pub(crate) secret_key: Option<Secret>,
    pub(crate) host: String,
}

// By hand, so that a password in an endpoint URL is never shown.
impl fmt::Debug for OtlpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSettings")
            .field("endpoint", &self.endpoint.as_deref().map(crate::endpoint::mask_credentials))
            .field("protocol", &self.protocol)
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .field("gzip", &self.gzip)
            .field("tls", &self.tls)
            .finish()
    }
}

impl fmt::Debug for LangfuseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LangfuseSettings")
            .field("public_key", &self.public_key)
            .field("secret_key", &self.secret_key)
            .field("host", &crate::endpoint::mask_credentials(&self.host))
            .finish()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct BatchSettings {
    pub(crate) max_queue_size: usize,
    pub(crate) max_queue_bytes: usize,
    pub(crate) queue_full: QueueFullPolicy,
    pub(crate) max_export_batch_size: usize,
    pub(crate) max_concurrent_exports: usize,
    pub(crate) scheduled_delay: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) retry_time: Duration,
    /// Where undeliverable batches wait on disk; `None`: no spool.
    pub(crate) spool_dir: Option<PathBuf>,
    pub(crate) spool_max_bytes: usize,
}

/// What happens to a finished span when the export queue is full (its
/// byte bound, [`TracingConfigBuilder::max_queue_bytes`], or its span
/// bound). Every span dropped is counted in [`crate::ExportStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueFullPolicy {
    /// The closing span's thread waits, up to this long, for the export
    /// thread to make room: a burst slows the flow down instead of losing
    /// spans. When the export thread makes no room in that time (a
    /// collector that is down), the span is dropped, and so is every span
    /// after it, without waiting, until the export thread takes spans
    /// again: an outage costs one wait, not one per span. The default,
    /// with [`DEFAULT_QUEUE_FULL_WAIT`]; `POCKETFLOW_QUEUE_FULL=wait`.
    Wait(Duration),
    /// The new span is dropped; the application never waits.
    /// `POCKETFLOW_QUEUE_FULL=drop_newest`.
    DropNewest,
    /// The oldest queued spans are dropped to make room; the application
    /// never waits. `POCKETFLOW_QUEUE_FULL=drop_oldest`.
    DropOldest,
}

impl Default for QueueFullPolicy {
    fn default() -> Self {
        Self::Wait(DEFAULT_QUEUE_FULL_WAIT)
    }
}

impl TracingConfig {
    /// A builder with nothing set: [`TracingConfigBuilder::build`] gives the
    /// defaults, [`TracingConfigBuilder::from_env`] reads the environment for
    /// what the code left unset.
    pub fn builder() -> TracingConfigBuilder {
        TracingConfigBuilder::default()
    }

    /// The config described by the environment variables (see
    /// `docs/configuration.md`), defaults for the rest.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first variable whose value is invalid.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder().from_env()
    }

    /// The exporters this config sends to, in order.
    pub fn exporters(&self) -> &[ExporterKind] {
        &self.exporters
    }

    /// The OTLP protocol used when the `otlp` exporter is on.
    pub fn protocol(&self) -> Protocol {
        self.otlp.protocol
    }

    /// The full URL OTLP spans are sent to (`…/v1/traces` for HTTP), if set.
    pub fn otlp_endpoint(&self) -> Option<&str> {
        self.otlp.endpoint.as_deref()
    }

    /// The URL the `langfuse` exporter posts to.
    pub fn langfuse_endpoint(&self) -> String {
        format!("{}/api/public/otel/v1/traces", self.langfuse.host.trim_end_matches('/'))
    }

    /// The session id put on every span, if any.
    pub fn session_id(&self) -> Option<&str> {
        self.trace.session_id.as_deref()
    }

    /// The user id put on every span, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.trace.user_id.as_deref()
    }

    /// The sampler.
    pub fn sampler(&self) -> Sampler {
        self.sampler
    }

    /// Whether tracing is off altogether (`OTEL_SDK_DISABLED=true`).
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Whether [`init`](Self::init) adds the [`crate::BatchProgress`] bars
    /// (`POCKETFLOW_PROGRESS`); they draw only on a terminal.
    pub fn progress(&self) -> bool {
        self.progress
    }
}

impl Default for TracingConfig {
    /// The defaults: record everything, console exporter.
    fn default() -> Self {
        // Without environment, `build` has nothing that can fail.
        TracingConfigBuilder::default().resolve(&|_| None).unwrap_or_else(|_| Self::fallback())
    }
}

impl TracingConfig {
    fn fallback() -> Self {
        Self {
            record: RecordSettings::default(),
            trace: TraceAttributes::default(),
            sampler: Sampler::AlwaysOn,
            exporters: vec![ExporterKind::Console],
            otlp: OtlpSettings {
                endpoint: None,
                protocol: Protocol::Grpc,
                headers: Vec::new(),
                timeout: DEFAULT_EXPORT_TIMEOUT,
                gzip: false,
                tls: crate::tls::OtlpTls::default(),
            },
            langfuse: LangfuseSettings { public_key: None, secret_key: None, host: LANGFUSE_DEFAULT_HOST.to_owned() },
            batch: BatchSettings::default(),
            observation_types: BTreeMap::new(),
            excluded_targets: DEFAULT_EXCLUDED_TARGETS.iter().map(|t| (*t).to_owned()).collect(),
            disabled: false,
            progress: true,
        }
    }
}

impl Default for RecordSettings {
    fn default() -> Self {
        Self {
            inputs: true,
            outputs: true,
            errors: true,
            prep: true,
            exec: true,
            post: true,
            async_lifecycle: true,
            async_context: true,
            concurrent_flows: true,
            async_error_recovery: true,
            performance_monitoring: false,
            event_observations: true,
            debug: false,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            redact_keys: DEFAULT_REDACT_KEYS.iter().map(|k| (*k).to_owned()).collect(),
            max_events_per_span: DEFAULT_MAX_EVENTS_PER_SPAN,
            max_lifecycle_events_per_span: DEFAULT_MAX_LIFECYCLE_EVENTS_PER_SPAN,
            slow_node_threshold: DEFAULT_SLOW_NODE_THRESHOLD,
        }
    }
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_queue_size: MAX_QUEUE_SIZE,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            queue_full: QueueFullPolicy::default(),
            max_export_batch_size: DEFAULT_MAX_EXPORT_BATCH_SIZE,
            max_concurrent_exports: DEFAULT_MAX_CONCURRENT_EXPORTS,
            scheduled_delay: Duration::from_millis(1000),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            retry_time: DEFAULT_EXPORT_RETRY_TIME,
            spool_dir: None,
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
        }
    }
}

/// Default cap on a recorded input or output, in bytes of JSON.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Default cap on events kept per span; the rest are counted as dropped.
pub const DEFAULT_MAX_EVENTS_PER_SPAN: usize = 128;
/// Default cap on `pocketflow.lifecycle` events kept per span. A future
/// that suspends a million times would otherwise hold a million events; the
/// final state (`completed`, `failed`, `cancelled`) is kept beyond the cap.
pub const DEFAULT_MAX_LIFECYCLE_EVENTS_PER_SPAN: usize = 32;
/// Largest span queue accepted (`OTEL_BSP_MAX_QUEUE_SIZE`,
/// `max_queue_size`), and the default: 1,048,576 spans. The queue grows as
/// spans wait and is never allocated up front; what bounds it by default is
/// its memory, [`DEFAULT_MAX_QUEUE_BYTES`]. The export batch size must not
/// exceed the queue size.
pub const MAX_QUEUE_SIZE: usize = 1 << 20;
/// Default bound on the memory the span queue holds: 32 MiB
/// (`POCKETFLOW_MAX_QUEUE_MB`, `max_queue_bytes`), estimated from each
/// span's fields, text and events as allocated. With the batches in
/// flight, a process streaming spans flat out peaks under 64 MB
/// (`pocketflow-bench`'s `long_run`: 51–58 MB across runs, `docs/performance.md`).
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 32 << 20;
/// Largest queue memory bound accepted: 16 GiB.
pub const MAX_QUEUE_BYTES: usize = 16 << 30;
/// Default wait for room in a full queue ([`QueueFullPolicy::Wait`]).
pub const DEFAULT_QUEUE_FULL_WAIT: Duration = Duration::from_secs(1);
/// Default spans per export (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`): with 4
/// exports in flight, 1,024 delivered the most spans per second to the
/// OpenTelemetry Collector over both protocols in `pocketflow-bench
/// --plots` (`docs/performance.md`).
pub const DEFAULT_MAX_EXPORT_BATCH_SIZE: usize = 1024;
/// A batch is also cut at this many bytes (estimated, before encoding), so
/// that a request stays under the 4 MiB that gRPC servers accept by
/// default (the OpenTelemetry Collector's `max_recv_msg_size_mib`).
pub const MAX_EXPORT_BATCH_BYTES: usize = 3 << 20;
/// Default exports in flight at once (`OTEL_BSP_MAX_CONCURRENT_EXPORTS`):
/// the next batch is mapped and sent while the collector answers the last.
pub const DEFAULT_MAX_CONCURRENT_EXPORTS: usize = 4;
/// Most exports in flight accepted.
pub const MAX_CONCURRENT_EXPORTS: usize = 64;
/// Default deadline of [`crate::TracingGuard::shutdown`]
/// (`POCKETFLOW_SHUTDOWN_TIMEOUT_MS`, `shutdown_timeout`). Shutdown drains
/// the queue for as long as exports make progress, up to this.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default size cap of each exporter's spool (`POCKETFLOW_SPOOL_MAX_MB`,
/// `spool_max_bytes`): 256 MiB.
pub const DEFAULT_SPOOL_MAX_BYTES: usize = 256 << 20;
/// Largest spool accepted: 1 TiB.
pub const MAX_SPOOL_BYTES: usize = 1 << 40;
/// Default retry time of one batch (`POCKETFLOW_EXPORT_RETRY_TIME_MS`,
/// `export_retry_time`), as the Collector's `retry_on_failure.max_elapsed_time`:
/// a collector down for less than this, or started after the program, still
/// gets the batch.
pub const DEFAULT_EXPORT_RETRY_TIME: Duration = Duration::from_secs(300);
/// Longest span, node, flow or trace name recorded, in bytes; a longer one
/// is cut on a character boundary and ends with `…`. Names are bounded on
/// their own, whatever the payload cap: they identify spans in every
/// backend, and a name of kilobytes is a mistake, not data.
pub const MAX_NAME_BYTES: usize = 256;
/// Default duration from which a `flow` or `node` run counts as slow when
/// performance monitoring is on.
pub const DEFAULT_SLOW_NODE_THRESHOLD: Duration = Duration::from_millis(5000);
/// Default deadline of one export call.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a [`TracingConfig`]. Every setter records a value set in code; a
/// value set in code beats the environment in
/// [`from_env`](TracingConfigBuilder::from_env).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct TracingConfigBuilder {
    pub(crate) trace_inputs: Option<bool>,
    pub(crate) trace_outputs: Option<bool>,
    pub(crate) trace_errors: Option<bool>,
    pub(crate) trace_prep: Option<bool>,
    pub(crate) trace_exec: Option<bool>,
    pub(crate) trace_post: Option<bool>,
    pub(crate) trace_async_lifecycle: Option<bool>,
    pub(crate) trace_async_context: Option<bool>,
    pub(crate) trace_concurrent_flows: Option<bool>,
    pub(crate) async_error_recovery: Option<bool>,
    pub(crate) performance_monitoring: Option<bool>,
    pub(crate) event_observations: Option<bool>,
    pub(crate) debug: Option<bool>,
    pub(crate) session_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) service_name: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) metadata: Option<BTreeMap<String, String>>,
    pub(crate) resource: Option<Vec<(String, String)>>,
    pub(crate) sampler: Option<Sampler>,
    pub(crate) max_payload_bytes: Option<usize>,
    pub(crate) redact_keys: Option<Vec<String>>,
    pub(crate) max_events_per_span: Option<usize>,
    pub(crate) max_lifecycle_events_per_span: Option<usize>,
    pub(crate) slow_node_threshold: Option<Duration>,
    pub(crate) exporters: Option<Vec<ExporterKind>>,
    pub(crate) otlp_endpoint: Option<String>,
    pub(crate) otlp_traces_endpoint: Option<String>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) otlp_headers: Option<Vec<(String, Secret)>>,
    pub(crate) export_timeout: Option<Duration>,
    pub(crate) otlp_gzip: Option<bool>,
    pub(crate) otlp_certificate: Option<PathBuf>,
    pub(crate) otlp_client_certificate: Option<PathBuf>,
    pub(crate) otlp_client_key: Option<PathBuf>,
    pub(crate) max_queue_bytes: Option<usize>,
    pub(crate) queue_full: Option<QueueFullPolicy>,
    pub(crate) max_concurrent_exports: Option<usize>,
    pub(crate) langfuse_public_key: Option<String>,
    pub(crate) langfuse_secret_key: Option<Secret>,
    pub(crate) langfuse_host: Option<String>,
    pub(crate) max_queue_size: Option<usize>,
    pub(crate) max_export_batch_size: Option<usize>,
    pub(crate) scheduled_delay: Option<Duration>,
    pub(crate) shutdown_timeout: Option<Duration>,
    pub(crate) export_retry_time: Option<Duration>,
    pub(crate) spool_dir: Option<PathBuf>,
    pub(crate) spool_max_bytes: Option<usize>,
    pub(crate) observation_types: BTreeMap<String, ObservationType>,
    pub(crate) excluded_targets: Option<Vec<String>>,
    pub(crate) disabled: Option<bool>,
    pub(crate) progress: Option<bool>,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = Some(value);
            self
        }
    )*};
}

macro_rules! string_setters {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<String>) -> Self {
            self.$name = Some(value.into());
            self
        }
    )*};
}

impl TracingConfigBuilder {
    setters! {
        /// Record inputs (`input` fields) as `langfuse.observation.input` and
        /// `input.value`. Default on; `POCKETFLOW_TRACE_INPUTS`.
        trace_inputs: bool;
        /// Record outputs. Default on; `POCKETFLOW_TRACE_OUTPUTS`.
        trace_outputs: bool;
        /// Record error messages (the status description, the `error`
        /// field of spans and events) and `exception` events. Off, a failed
        /// span still has the OpenTelemetry status ERROR, with no
        /// description; `error.type` (a category, not a message) follows
        /// [`async_error_recovery`](Self::async_error_recovery). Default on;
        /// `POCKETFLOW_TRACE_ERRORS`.
        trace_errors: bool;
        /// Record `prep` spans. Default on; `POCKETFLOW_TRACE_PREP`.
        trace_prep: bool;
        /// Record `exec` and `fallback` spans. Default on; `POCKETFLOW_TRACE_EXEC`.
        trace_exec: bool;
        /// Record `post` spans. Default on; `POCKETFLOW_TRACE_POST`.
        trace_post: bool;
        /// Record lifecycle transitions (`pocketflow.lifecycle` events). The
        /// `pocketflow.lifecycle.*` statistics attributes are recorded
        /// either way. Default on; `POCKETFLOW_TRACE_ASYNC_LIFECYCLE`.
        trace_async_lifecycle: bool;
        /// Record how a run's context crosses async boundaries:
        /// `pocketflow.context` events (a task spawned with the run's
        /// context, a remote trace continued), and
        /// `pocketflow.context.remote_parent` on a root that continues a
        /// remote trace. A remote parent is honoured either way. Default on;
        /// `POCKETFLOW_TRACE_ASYNC_CONTEXT`.
        trace_async_context: bool;
        /// Record flows run together: `composition` spans (off: their flows
        /// hang from the nearest recorded ancestor, or start their own
        /// traces; a root composition's run options and remote parent then
        /// reach none of them, so set those on the flows) and
        /// `pocketflow.concurrent_runs` on roots. Default on;
        /// `POCKETFLOW_TRACE_CONCURRENT_FLOWS`.
        trace_concurrent_flows: bool;
        /// Record how async failures were handled: `pocketflow.async_error`
        /// events, and `error.type` (`timeout`, `panic`, …) on the span where
        /// a failure was reported. Default on; `POCKETFLOW_ASYNC_ERROR_RECOVERY`.
        async_error_recovery: bool;
        /// Record timings: `pocketflow.duration_ms` on flow, node, item and
        /// composition spans, and a `pocketflow.slow_node` event with
        /// `pocketflow.slow = true` on flows and nodes that took at least
        /// [`slow_node_threshold`](Self::slow_node_threshold). Default off;
        /// `POCKETFLOW_PERFORMANCE_MONITORING`.
        performance_monitoring: bool;
        /// Export each retry, timeout, async error, warning and user
        /// warning or error event also as a Langfuse event observation: a
        /// zero-length child span (`langfuse.observation.type = "event"`,
        /// `pocketflow.span = "event"`) with the event's level, message and
        /// fields, because Langfuse drops span events. The span events stay
        /// for Jaeger and Phoenix; the shipped collector configs drop the
        /// event observations from the Jaeger pipeline, and an exporter
        /// straight to Jaeger or Phoenix wants this off. The console tree
        /// never shows them. Default on; `POCKETFLOW_EVENT_OBSERVATIONS`.
        event_observations: bool;
        /// Print export diagnostics on stderr, and lifecycle events in the
        /// console tree. Default off; `POCKETFLOW_TRACING_DEBUG`.
        debug: bool;
        /// Trace-wide tags (`langfuse.trace.tags`). `POCKETFLOW_TAGS` (comma list).
        tags: Vec<String>;
        /// Trace-wide metadata (`langfuse.trace.metadata.<key>`).
        /// `POCKETFLOW_METADATA` (`k=v,k2=v2`).
        metadata: BTreeMap<String, String>;
        /// Extra resource attributes. `OTEL_RESOURCE_ATTRIBUTES`.
        resource: Vec<(String, String)>;
        /// Which traces to keep. `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`.
        sampler: Sampler;
        /// Cap on a recorded input, output, error message or other text
        /// field, in bytes; longer values are cut and marked. Names have
        /// their own bound, [`MAX_NAME_BYTES`]. Default 64 KiB;
        /// `POCKETFLOW_MAX_PAYLOAD_BYTES`.
        max_payload_bytes: usize;
        /// Sensitive keys: their values are redacted in inputs and outputs
        /// (at any depth, also in JSON held in a string), and their
        /// `key=value` / `key: value` masked in error text. A key matches
        /// when, with `-`, `_`, `.` and whitespace removed and letters
        /// lowercased, it ends with one of these. Replaces the default
        /// [`DEFAULT_REDACT_KEYS`]; an empty list turns redaction and
        /// masking off. `POCKETFLOW_REDACT_KEYS` (comma list, empty for none).
        redact_keys: Vec<String>;
        /// Cap on events kept per span. Default 128; `POCKETFLOW_MAX_EVENTS_PER_SPAN`.
        max_events_per_span: usize;
        /// Cap on repeated `pocketflow.lifecycle` cycles (`running`,
        /// `suspended`, `resuming`) kept per span; the first transition to
        /// each state and the final one are always kept, and the span's
        /// `pocketflow.lifecycle.polls` and `.suspensions` count every
        /// cycle. Default 32; `POCKETFLOW_MAX_LIFECYCLE_EVENTS`.
        max_lifecycle_events_per_span: usize;
        /// With performance monitoring on, flows and nodes that take at
        /// least this long are marked slow. Default 5 s;
        /// `POCKETFLOW_SLOW_NODE_THRESHOLD_MS`.
        slow_node_threshold: Duration;
        /// Exporters, in order. Default: chosen from what is configured
        /// (see `docs/configuration.md`); `POCKETFLOW_TRACING_EXPORTER`.
        exporters: Vec<ExporterKind>;
        /// OTLP protocol. Default gRPC; `OTEL_EXPORTER_OTLP_PROTOCOL`.
        protocol: Protocol;
        /// Headers sent with every OTLP export: valid HTTP header names
        /// (not ending in `-bin` for gRPC) with printable ASCII values.
        /// `OTEL_EXPORTER_OTLP_HEADERS`.
        otlp_headers: Vec<(String, Secret)>;
        /// Deadline of one try of an export (retries have their own bound,
        /// [`export_retry_time`](Self::export_retry_time)). Default 10 s;
        /// `OTEL_EXPORTER_OTLP_TIMEOUT` (ms).
        export_timeout: Duration;
        /// gzip OTLP requests. Default off (Langfuse: always on);
        /// `OTEL_EXPORTER_OTLP_COMPRESSION`.
        otlp_gzip: bool;
        /// Langfuse secret key. `LANGFUSE_SECRET_KEY`.
        langfuse_secret_key: Secret;
        /// Spans the export queue holds at most. Default and maximum
        /// [`MAX_QUEUE_SIZE`]: the queue is bounded by its memory first
        /// ([`max_queue_bytes`](Self::max_queue_bytes)). When it is full,
        /// [`queue_full`](Self::queue_full) decides. `OTEL_BSP_MAX_QUEUE_SIZE`.
        max_queue_size: usize;
        /// Memory the export queue holds at most, in bytes (estimated from
        /// each span's text and events). Default
        /// [`DEFAULT_MAX_QUEUE_BYTES`] (32 MiB), at most [`MAX_QUEUE_BYTES`];
        /// `POCKETFLOW_MAX_QUEUE_MB` (in MiB).
        max_queue_bytes: usize;
        /// What happens to a span when the queue is full. Default: wait up
        /// to 1 s for room ([`QueueFullPolicy::Wait`]);
        /// `POCKETFLOW_QUEUE_FULL`, `POCKETFLOW_QUEUE_FULL_WAIT_MS`.
        queue_full: QueueFullPolicy;
        /// Spans per export, at most; a batch is also cut at
        /// [`MAX_EXPORT_BATCH_BYTES`]. Default 1024 (lowered to the queue
        /// size when the queue is smaller); a value set larger than the
        /// queue size is an error. `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`.
        max_export_batch_size: usize;
        /// Exports in flight at once. Default 4, at most
        /// [`MAX_CONCURRENT_EXPORTS`]; `OTEL_BSP_MAX_CONCURRENT_EXPORTS`.
        max_concurrent_exports: usize;
        /// Longest wait before a partial batch is exported. Default 1 s;
        /// `OTEL_BSP_SCHEDULE_DELAY` (ms).
        scheduled_delay: Duration;
        /// How long shutdown may take at most: it exports what is queued
        /// for as long as exports make progress, and gives up at this
        /// deadline (or when exports stop making progress for the export
        /// timeout), counting what is left as unflushed. Also the deadline
        /// of [`TracingGuard::flush`](crate::TracingGuard::flush). Default
        /// [`DEFAULT_SHUTDOWN_TIMEOUT`] (30 s); `POCKETFLOW_SHUTDOWN_TIMEOUT_MS`.
        shutdown_timeout: Duration;
        /// How long one batch is retried after a transient failure (a
        /// collector down or not up yet, a 503, a `Retry-After`): tries go
        /// on with backoff from 100 ms to 5 s until the next would start
        /// past this. The batch stays in memory meanwhile, and the queue
        /// fills behind it within its bound. Default
        /// [`DEFAULT_EXPORT_RETRY_TIME`] (300 s);
        /// `POCKETFLOW_EXPORT_RETRY_TIME_MS`.
        export_retry_time: Duration;
        /// Size cap of each exporter's spool, in bytes; over it, the oldest
        /// unsent batches are evicted and counted. Default
        /// [`DEFAULT_SPOOL_MAX_BYTES`] (256 MiB), at most [`MAX_SPOOL_BYTES`];
        /// `POCKETFLOW_SPOOL_MAX_MB` (in MiB).
        spool_max_bytes: usize;
        /// Targets never recorded. Default [`DEFAULT_EXCLUDED_TARGETS`].
        excluded_targets: Vec<String>;
        /// Turn tracing off: nothing is recorded or exported. `OTEL_SDK_DISABLED`.
        disabled: bool;
        /// Show a progress bar on stderr for each batch node or batch flow
        /// that runs longer than a second ([`crate::BatchProgress`], added by
        /// [`TracingConfig::init`]). Drawn only when stderr is a terminal
        /// and `CI` is unset, so it is safe to leave on. Independent of
        /// [`disabled`](Self::disabled). Default on; `POCKETFLOW_PROGRESS`.
        progress: bool;
    }

    string_setters! {
        /// Session id on every span (`langfuse.session.id`, `session.id`).
        /// `POCKETFLOW_SESSION_ID`.
        session_id;
        /// User id on every span (`langfuse.user.id`, `user.id`). `POCKETFLOW_USER_ID`.
        user_id;
        /// `service.name`. Default `pocketflow`; `OTEL_SERVICE_NAME`.
        service_name;
        /// Deployment environment (`langfuse.environment`,
        /// `deployment.environment.name`). `POCKETFLOW_ENVIRONMENT`, `LANGFUSE_TRACING_ENVIRONMENT`.
        environment;
        /// Release (`langfuse.release`). `POCKETFLOW_RELEASE`, `LANGFUSE_RELEASE`.
        release;
        /// Version (`langfuse.version`, `service.version`). `POCKETFLOW_VERSION`.
        version;
        /// OTLP base endpoint; `/v1/traces` is appended for HTTP. An
        /// `http://` or `https://` URL with a host and, if any, a port from 1
        /// to 65535. `OTEL_EXPORTER_OTLP_ENDPOINT`.
        otlp_endpoint;
        /// OTLP traces endpoint, used as given (checked as
        /// [`otlp_endpoint`](Self::otlp_endpoint) is).
        /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
        otlp_traces_endpoint;
        /// Langfuse public key. `LANGFUSE_PUBLIC_KEY`.
        langfuse_public_key;
        /// Langfuse host. Default `https://cloud.langfuse.com`;
        /// `LANGFUSE_HOST` or `LANGFUSE_BASE_URL`.
        langfuse_host;
    }

    /// The CA certificate (a PEM file, one or more certificates) that an
    /// OTLP server's certificate must chain to; the system's roots are then
    /// not trusted. Needs an `https://` endpoint. Read and checked when the
    /// config is built. `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE`,
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`.
    pub fn otlp_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.otlp_certificate = Some(path.into());
        self
    }

    /// The client certificate (PEM) presented to the OTLP server, for
    /// mutual TLS; needs [`otlp_client_key`](Self::otlp_client_key).
    /// `OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE`,
    /// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`.
    pub fn otlp_client_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.otlp_client_certificate = Some(path.into());
        self
    }

    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of
    /// [`otlp_client_certificate`](Self::otlp_client_certificate).
    /// `OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY`, `OTEL_EXPORTER_OTLP_CLIENT_KEY`.
    pub fn otlp_client_key(mut self, path: impl Into<PathBuf>) -> Self {
        self.otlp_client_key = Some(path.into());
        self
    }

    /// Turns the durable spool on, in `dir` (a folder per exporter is made
    /// in it): a batch the OTLP or Langfuse backend does not take within a
    /// short retry (2 s) is written to disk instead of being retried in
    /// memory, and sent, oldest first, before the next batch once the
    /// backend is back, and at flush and shutdown; what shutdown cannot
    /// send stays for the next start. Off by default;
    /// `POCKETFLOW_SPOOL_DIR`.
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// Adds one trace-wide metadata entry.
    pub fn metadata_entry(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.get_or_insert_with(BTreeMap::new).insert(key.into(), value.into());
        self
    }

    /// Adds one trace-wide tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.get_or_insert_with(Vec::new).push(tag.into());
        self
    }

    /// Records flows or nodes with this `name` as `observation_type` in
    /// Langfuse (for example a node that calls a tool as
    /// [`ObservationType::Tool`], a flow that plans as [`ObservationType::Agent`]).
    pub fn observation_type(mut self, name: impl Into<String>, observation_type: ObservationType) -> Self {
        self.observation_types.insert(name.into(), observation_type);
        self
    }

    /// The config from the values set in code and defaults; the environment
    /// is not read.
    ///
    /// # Errors
    /// A [`ConfigError`] when a value set in code is invalid (a sampling
    /// ratio outside 0..=1, an endpoint that is not a URL, a zero queue size,
    /// a queue size above [`MAX_QUEUE_SIZE`], a header that cannot be sent).
    pub fn build(self) -> Result<TracingConfig, ConfigError> {
        self.resolve(&|_| None)
    }

    /// The config from the values set in code, the environment for what the
    /// code left unset, and defaults for the rest.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid variable or value.
    pub fn from_env(self) -> Result<TracingConfig, ConfigError> {
        self.resolve(&|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables from `vars`
    /// instead of the process environment (for tests and for configs kept
    /// in a file).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid variable or value.
    pub fn from_vars<K, V>(self, vars: impl IntoIterator<Item = (K, V)>) -> Result<TracingConfig, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars: BTreeMap<String, String> = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self.resolve(&|name| vars.get(name).cloned())
    }

    pub(crate) fn resolve(self, env: &dyn Fn(&str) -> Option<String>) -> Result<TracingConfig, ConfigError> {
        crate::env::resolve(self, env)
    }
}

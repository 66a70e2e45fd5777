//! Resolving a [`TracingConfigBuilder`] into a [`TracingConfig`]: a value set
//! in code wins, then the environment, then the defaults.
//!
//! Variables are read in a fixed order (the order of the table in
//! `docs/configuration.md`) and the first invalid one is reported. A variable
//! whose setting was made in code is not read at all. Every value is trimmed,
//! and a blank value counts as unset (except `POCKETFLOW_REDACT_KEYS`, where
//! a blank value means "redact nothing").

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{
    BatchSettings, DEFAULT_EXCLUDED_TARGETS, DEFAULT_EXPORT_TIMEOUT, DEFAULT_QUEUE_FULL_WAIT, ExporterKind,
    LANGFUSE_DEFAULT_HOST, LangfuseSettings, MAX_CONCURRENT_EXPORTS, MAX_QUEUE_BYTES, MAX_QUEUE_SIZE, MAX_SPOOL_BYTES,
    OtlpSettings, Protocol, QueueFullPolicy, RecordSettings, Sampler, Secret, TraceAttributes, TracingConfig,
    TracingConfigBuilder,
};
use crate::endpoint;
use crate::error::ConfigError;
use crate::tls::{self, OtlpTls, PemKind};

/// The service name when neither code nor the environment names one.
const DEFAULT_SERVICE_NAME: &str = "pocketflow";
/// The OTLP endpoints used when the `otlp` exporter is on and none is set.
const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/traces";
/// What an error shows instead of a value that may carry credentials.
const HIDDEN: &str = "***";

const EXPECTED_BOOL: &str = "true or false";
const EXPECTED_POSITIVE: &str = "a positive integer";
const EXPECTED_MILLIS: &str = "a positive integer (milliseconds)";
const EXPECTED_PAIRS: &str = "comma-separated key=value pairs with percent-encoded values (%2C for a comma)";
const EXPECTED_METADATA: &str = "comma-separated key=value pairs";
const EXPECTED_EXPORTERS: &str =
    "a comma-separated list of console, otlp, langfuse, or none alone (for example \"console,otlp\")";
const EXPECTED_SAMPLER: &str = "one of always_on, always_off, traceidratio, parentbased_always_on, \
     parentbased_always_off, parentbased_traceidratio (jaeger_remote is not supported)";
const EXPECTED_RATIO: &str = "a number from 0 to 1";
const EXPECTED_PROTOCOL: &str = "grpc or http/protobuf";
const EXPECTED_PROTOCOL_NO_JSON: &str = "grpc or http/protobuf (http/json is not supported: use http/protobuf)";
const EXPECTED_COMPRESSION: &str = "gzip or none";

/// Resolves `builder` against `env` (a variable lookup, `None` when unset).
pub(crate) fn resolve(
    builder: TracingConfigBuilder,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TracingConfig, ConfigError> {
    let vars = Vars(env);
    let mut b = builder;
    let requested = requested_exporters(b.exporters.take(), &vars)?;
    let disabled = or_env(b.disabled, || vars.bool("OTEL_SDK_DISABLED"))?.unwrap_or(false);
    let record = record_settings(&b, &vars)?;
    let excluded_targets = b
        .excluded_targets
        .take()
        .or_else(|| vars.list("POCKETFLOW_TRACING_EXCLUDED_TARGETS"))
        .unwrap_or_else(|| owned(&DEFAULT_EXCLUDED_TARGETS));
    let progress = or_env(b.progress, || vars.bool("POCKETFLOW_PROGRESS"))?.unwrap_or(true);
    let trace = trace_attributes(&b, &vars)?;
    let sampler = sampler(b.sampler, &vars)?;
    let mut otlp = otlp_settings(&b, &vars)?;
    let langfuse = langfuse_settings(&b, &vars)?;
    let batch = batch_settings(&b, &vars)?;
    let exporters = if disabled { vec![ExporterKind::None] } else { choose_exporters(requested, &otlp, &langfuse)? };
    if exporters.contains(&ExporterKind::Otlp) {
        let endpoint = otlp.endpoint.get_or_insert_with(|| default_endpoint(otlp.protocol).to_owned());
        // TLS asked for and a plain endpoint: refuse rather than send in clear.
        if let Some(source) = otlp.tls.source()
            && !endpoint.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
        {
            return Err(ConfigError::TlsNeedsHttps {
                name: source.to_owned(),
                url: endpoint::mask_credentials(endpoint).into_owned(),
            });
        }
    }
    Ok(TracingConfig {
        record,
        trace,
        sampler,
        exporters,
        otlp,
        langfuse,
        batch,
        observation_types: b.observation_types,
        excluded_targets,
        disabled,
        progress,
    })
}

/// The environment, read through the lookup given to [`resolve`].
struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    /// The trimmed value of `var`, or `None` when it is unset or blank.
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var).map(|value| value.trim().to_owned()).filter(|value| !value.is_empty())
    }

    /// The first of `vars` that is set, with its name.
    fn first(&self, vars: &[&'static str]) -> Option<(&'static str, String)> {
        vars.iter().find_map(|var| self.get(var).map(|value| (*var, value)))
    }

    fn first_string(&self, vars: &[&'static str]) -> Option<String> {
        self.first(vars).map(|(_, value)| value)
    }

    fn bool(&self, var: &str) -> Result<Option<bool>, ConfigError> {
        self.get(var).map(|value| parse_bool(&value).ok_or_else(|| invalid(var, &value, EXPECTED_BOOL))).transpose()
    }

    /// A `usize` greater than zero.
    fn positive(&self, var: &str) -> Result<Option<usize>, ConfigError> {
        self.get(var)
            .map(|value| parse_positive(&value).ok_or_else(|| invalid(var, &value, EXPECTED_POSITIVE)))
            .transpose()
    }

    /// A `usize` from 1 to `max`. A larger number, even one too large for
    /// any integer type, is [`ConfigError::TooLarge`] (naming the bound);
    /// anything but a positive integer is [`ConfigError::InvalidVar`].
    fn count(&self, var: &str, max: usize) -> Result<Option<usize>, ConfigError> {
        self.get(var)
            .map(|value| {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(var, &value, EXPECTED_POSITIVE));
                }
                match value.parse::<usize>() {
                    Ok(0) => Err(invalid(var, &value, EXPECTED_POSITIVE)),
                    Ok(n) if n <= max => Ok(n),
                    _ => Err(ConfigError::TooLarge { name: var.to_owned(), value, max }),
                }
            })
            .transpose()
    }

    /// A positive number of milliseconds, from the first of `vars` that is set.
    fn millis(&self, vars: &[&'static str]) -> Result<Option<Duration>, ConfigError> {
        self.first(vars)
            .map(|(var, value)| {
                let millis = parse_positive(&value).and_then(|n| u64::try_from(n).ok());
                millis.map(Duration::from_millis).ok_or_else(|| invalid(var, &value, EXPECTED_MILLIS))
            })
            .transpose()
    }

    /// A comma-separated list, items trimmed, empty items dropped.
    fn list(&self, var: &str) -> Option<Vec<String>> {
        self.get(var).map(|value| split_list(&value))
    }

    /// An endpoint URL (see [`endpoint::problem`]).
    fn url(&self, var: &str) -> Result<Option<String>, ConfigError> {
        self.get(var).map(|value| check_url(var, &value)).transpose()
    }

    /// `k=v,k2=v2` with percent-encoded values; `secret` hides the value in
    /// errors.
    fn pairs(&self, var: &str, secret: bool) -> Result<Option<Vec<(String, String)>>, ConfigError> {
        self.get(var)
            .map(|value| {
                parse_pairs(&value, true)
                    .ok_or_else(|| invalid(var, if secret { HIDDEN } else { &value }, EXPECTED_PAIRS))
            })
            .transpose()
    }
}

/// The value set in code if any; otherwise what `read` finds in the
/// environment (which is not read at all when the code set the value).
fn or_env<T>(code: Option<T>, read: impl FnOnce() -> Result<Option<T>, ConfigError>) -> Result<Option<T>, ConfigError> {
    match code {
        Some(value) => Ok(Some(value)),
        None => read(),
    }
}

fn invalid(var: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::InvalidVar { var: var.to_owned(), value: value.to_owned(), expected: expected.to_owned() }
}

fn invalid_setting(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting, reason: reason.into() }
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn record_settings(b: &TracingConfigBuilder, vars: &Vars<'_>) -> Result<RecordSettings, ConfigError> {
    let d = RecordSettings::default();
    let flag = |code: Option<bool>, var: &str, default: bool| -> Result<bool, ConfigError> {
        Ok(or_env(code, || vars.bool(var))?.unwrap_or(default))
    };
    Ok(RecordSettings {
        inputs: flag(b.trace_inputs, "POCKETFLOW_TRACE_INPUTS", d.inputs)?,
        outputs: flag(b.trace_outputs, "POCKETFLOW_TRACE_OUTPUTS", d.outputs)?,
        errors: flag(b.trace_errors, "POCKETFLOW_TRACE_ERRORS", d.errors)?,
        prep: flag(b.trace_prep, "POCKETFLOW_TRACE_PREP", d.prep)?,
        exec: flag(b.trace_exec, "POCKETFLOW_TRACE_EXEC", d.exec)?,
        post: flag(b.trace_post, "POCKETFLOW_TRACE_POST", d.post)?,
        async_lifecycle: flag(b.trace_async_lifecycle, "POCKETFLOW_TRACE_ASYNC_LIFECYCLE", d.async_lifecycle)?,
        async_context: flag(b.trace_async_context, "POCKETFLOW_TRACE_ASYNC_CONTEXT", d.async_context)?,
        concurrent_flows: flag(b.trace_concurrent_flows, "POCKETFLOW_TRACE_CONCURRENT_FLOWS", d.concurrent_flows)?,
        async_error_recovery: flag(b.async_error_recovery, "POCKETFLOW_ASYNC_ERROR_RECOVERY", d.async_error_recovery)?,
        performance_monitoring: flag(
            b.performance_monitoring,
            "POCKETFLOW_PERFORMANCE_MONITORING",
            d.performance_monitoring,
        )?,
        event_observations: flag(b.event_observations, "POCKETFLOW_EVENT_OBSERVATIONS", d.event_observations)?,
        debug: flag(b.debug, "POCKETFLOW_TRACING_DEBUG", d.debug)?,
        max_payload_bytes: or_env(b.max_payload_bytes, || vars.positive("POCKETFLOW_MAX_PAYLOAD_BYTES"))?
            .unwrap_or(d.max_payload_bytes),
        max_events_per_span: or_env(b.max_events_per_span, || vars.positive("POCKETFLOW_MAX_EVENTS_PER_SPAN"))?
            .unwrap_or(d.max_events_per_span),
        max_lifecycle_events_per_span: positive_setting(
            b.max_lifecycle_events_per_span,
            "max_lifecycle_events_per_span",
            vars,
            "POCKETFLOW_MAX_LIFECYCLE_EVENTS",
        )?
        .unwrap_or(d.max_lifecycle_events_per_span),
        slow_node_threshold: duration_setting(
            b.slow_node_threshold,
            "slow_node_threshold",
            vars,
            &["POCKETFLOW_SLOW_NODE_THRESHOLD_MS"],
        )?
        .unwrap_or(d.slow_node_threshold),
        redact_keys: b.redact_keys.clone().or_else(|| redact_keys(vars)).unwrap_or(d.redact_keys),
    })
}

/// `POCKETFLOW_REDACT_KEYS`: unlike other variables, set-but-blank means
/// "redact nothing" rather than unset.
fn redact_keys(vars: &Vars<'_>) -> Option<Vec<String>> {
    (vars.0)("POCKETFLOW_REDACT_KEYS").map(|value| split_list(&value))
}

fn trace_attributes(b: &TracingConfigBuilder, vars: &Vars<'_>) -> Result<TraceAttributes, ConfigError> {
    let session_id = b.session_id.clone().or_else(|| vars.get("POCKETFLOW_SESSION_ID"));
    let user_id = b.user_id.clone().or_else(|| vars.get("POCKETFLOW_USER_ID"));
    let service_name = b.service_name.clone().or_else(|| vars.get("OTEL_SERVICE_NAME"));
    let mut resource =
        or_env(b.resource.clone(), || vars.pairs("OTEL_RESOURCE_ATTRIBUTES", false))?.unwrap_or_default();
    let resource_service_name = take_service_name(&mut resource);
    let environment = b
        .environment
        .clone()
        .or_else(|| vars.first_string(&["POCKETFLOW_ENVIRONMENT", "LANGFUSE_TRACING_ENVIRONMENT"]));
    let release = b.release.clone().or_else(|| vars.first_string(&["POCKETFLOW_RELEASE", "LANGFUSE_RELEASE"]));
    let version = b.version.clone().or_else(|| vars.get("POCKETFLOW_VERSION"));
    let tags = b.tags.clone().or_else(|| vars.list("POCKETFLOW_TAGS")).unwrap_or_default();
    let metadata = or_env(b.metadata.clone(), || metadata(vars))?.unwrap_or_default();
    Ok(TraceAttributes {
        session_id,
        user_id,
        service_name: Some(service_name.or(resource_service_name).unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned())),
        environment,
        release,
        version,
        tags,
        metadata,
        resource: dedup_last_wins(resource),
    })
}

/// Removes every `service.name` from `resource` and returns the last one:
/// the service name lives in [`TraceAttributes::service_name`] only.
fn take_service_name(resource: &mut Vec<(String, String)>) -> Option<String> {
    let mut found = None;
    resource.retain(|(key, value)| {
        let is_service_name = key == "service.name";
        if is_service_name {
            found = Some(value.clone());
        }
        !is_service_name
    });
    found
}

/// `POCKETFLOW_METADATA`: `k=v` pairs, values taken as written.
fn metadata(vars: &Vars<'_>) -> Result<Option<BTreeMap<String, String>>, ConfigError> {
    const VAR: &str = "POCKETFLOW_METADATA";
    vars.get(VAR)
        .map(|value| {
            let pairs = parse_pairs(&value, false).ok_or_else(|| invalid(VAR, &value, EXPECTED_METADATA))?;
            Ok(pairs.into_iter().collect())
        })
        .transpose()
}

fn sampler(code: Option<Sampler>, vars: &Vars<'_>) -> Result<Sampler, ConfigError> {
    const VAR: &str = "OTEL_TRACES_SAMPLER";
    if let Some(sampler) = code {
        return check_sampler(sampler);
    }
    let Some(value) = vars.get(VAR) else {
        return Ok(Sampler::AlwaysOn);
    };
    match value.to_ascii_lowercase().as_str() {
        "always_on" | "parentbased_always_on" => Ok(Sampler::AlwaysOn),
        "always_off" | "parentbased_always_off" => Ok(Sampler::AlwaysOff),
        "traceidratio" | "parentbased_traceidratio" => Ok(Sampler::TraceIdRatio(sampler_ratio(vars)?)),
        _ => Err(invalid(VAR, &value, EXPECTED_SAMPLER)),
    }
}

/// `OTEL_TRACES_SAMPLER_ARG`, 1.0 when unset.
fn sampler_ratio(vars: &Vars<'_>) -> Result<f64, ConfigError> {
    const VAR: &str = "OTEL_TRACES_SAMPLER_ARG";
    let Some(value) = vars.get(VAR) else {
        return Ok(1.0);
    };
    value.parse::<f64>().ok().filter(|ratio| is_ratio(*ratio)).ok_or_else(|| invalid(VAR, &value, EXPECTED_RATIO))
}

fn check_sampler(sampler: Sampler) -> Result<Sampler, ConfigError> {
    match sampler {
        Sampler::TraceIdRatio(ratio) if !is_ratio(ratio) => {
            Err(invalid_setting("sampler", format!("the ratio {ratio} is not a number from 0 to 1")))
        }
        sampler => Ok(sampler),
    }
}

/// Whether `ratio` is in 0..=1 (NaN is not).
fn is_ratio(ratio: f64) -> bool {
    (0.0..=1.0).contains(&ratio)
}

fn otlp_settings(b: &TracingConfigBuilder, vars: &Vars<'_>) -> Result<OtlpSettings, ConfigError> {
    let protocol = or_env(b.protocol, || protocol(vars))?.unwrap_or_default();
    let endpoint = otlp_endpoint(b, vars, protocol)?;
    let headers = match &b.otlp_headers {
        Some(headers) => {
            check_headers(
                "otlp_headers",
                headers.iter().map(|(name, value)| (name.as_str(), value.expose())),
                protocol,
            )?;
            headers.clone()
        }
        None => headers(vars, protocol)?.unwrap_or_default(),
    };
    let timeout = duration_setting(
        b.export_timeout,
        "export_timeout",
        vars,
        &["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"],
    )?;
    let gzip = or_env(b.otlp_gzip, || compression(vars))?.unwrap_or(false);
    let tls = otlp_tls(b, vars)?;
    Ok(OtlpSettings { endpoint, protocol, headers, timeout: timeout.unwrap_or(DEFAULT_EXPORT_TIMEOUT), gzip, tls })
}

/// The CA, client certificate and client key files: each from code, else
/// its `_TRACES_` variable, else the general one. The files are read and
/// checked here.
fn otlp_tls(b: &TracingConfigBuilder, vars: &Vars<'_>) -> Result<OtlpTls, ConfigError> {
    let file = |set: &Option<PathBuf>, setting: &str, traces_var: &'static str, var: &'static str| {
        set.clone()
            .map(|path| (setting.to_owned(), path))
            .or_else(|| vars.first(&[traces_var, var]).map(|(var, path)| (var.to_owned(), PathBuf::from(path))))
    };
    let ca = file(
        &b.otlp_certificate,
        "otlp_certificate",
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
    )
    .map(|(source, path)| tls::read_pem(&source, &path, PemKind::Certificates))
    .transpose()?;
    let client = tls::client_identity(
        file(
            &b.otlp_client_certificate,
            "otlp_client_certificate",
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        ),
        file(
            &b.otlp_client_key,
            "otlp_client_key",
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        ),
    )?;
    Ok(OtlpTls { ca, client })
}

fn protocol(vars: &Vars<'_>) -> Result<Option<Protocol>, ConfigError> {
    vars.first(&["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"])
        .map(|(var, value)| match value.to_ascii_lowercase().as_str() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Err(invalid(var, &value, EXPECTED_PROTOCOL_NO_JSON)),
            _ => Err(invalid(var, &value, EXPECTED_PROTOCOL)),
        })
        .transpose()
}

/// The full traces URL: a traces endpoint is used as given, a base endpoint
/// gets `/v1/traces` for HTTP. Code beats the environment.
fn otlp_endpoint(b: &TracingConfigBuilder, vars: &Vars<'_>, protocol: Protocol) -> Result<Option<String>, ConfigError> {
    if let Some(url) = &b.otlp_traces_endpoint {
        return check_url("otlp_traces_endpoint", url).map(Some);
    }
    if let Some(url) = &b.otlp_endpoint {
        return check_url("otlp_endpoint", url).map(|url| Some(traces_url(&url, protocol)));
    }
    if let Some(url) = vars.url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")? {
        return Ok(Some(url));
    }
    Ok(vars.url("OTEL_EXPORTER_OTLP_ENDPOINT")?.map(|url| traces_url(&url, protocol)))
}

/// A base endpoint's traces URL: `/v1/traces` appended for HTTP (without a
/// double slash), as given for gRPC.
fn traces_url(base: &str, protocol: Protocol) -> String {
    match protocol {
        Protocol::Grpc => base.to_owned(),
        Protocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
    }
}

pub(crate) fn default_endpoint(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Grpc => DEFAULT_GRPC_ENDPOINT,
        Protocol::HttpProtobuf => DEFAULT_HTTP_ENDPOINT,
    }
}

/// `OTEL_EXPORTER_OTLP_HEADERS`, then `OTEL_EXPORTER_OTLP_TRACES_HEADERS`,
/// which wins per header name (compared case-insensitively).
fn headers(vars: &Vars<'_>, protocol: Protocol) -> Result<Option<Vec<(String, Secret)>>, ConfigError> {
    let read = |var: &str| -> Result<Option<Vec<(String, String)>>, ConfigError> {
        let pairs = vars.pairs(var, true)?;
        if let Some(pairs) = &pairs {
            check_headers(var, pairs.iter().map(|(name, value)| (name.as_str(), value.as_str())), protocol)?;
        }
        Ok(pairs)
    };
    let general = read("OTEL_EXPORTER_OTLP_HEADERS")?;
    let traces = read("OTEL_EXPORTER_OTLP_TRACES_HEADERS")?;
    if general.is_none() && traces.is_none() {
        return Ok(None);
    }
    let mut headers: Vec<(String, Secret)> = Vec::new();
    for (name, value) in general.into_iter().flatten().chain(traces.into_iter().flatten()) {
        match headers.iter_mut().find(|(existing, _)| existing.eq_ignore_ascii_case(&name)) {
            Some(slot) => slot.1 = Secret::new(value),
            None => headers.push((name, Secret::new(value))),
        }
    }
    Ok(Some(headers))
}

/// Checks that every header can be sent, by gRPC and HTTP alike: the OTLP
/// library would drop a bad one silently over HTTP. The error names the
/// header, never its value.
fn check_headers<'h>(
    source: &str,
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    protocol: Protocol,
) -> Result<(), ConfigError> {
    for (name, value) in headers {
        let problem = if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            Some("the name is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)")
        } else if protocol == Protocol::Grpc && name.to_ascii_lowercase().ends_with("-bin") {
            Some("gRPC reserves names ending in -bin for binary metadata")
        } else if !value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
            // gRPC's ASCII metadata; HTTP would take other bytes, but
            // servers read them differently.
            Some("the value holds a character other than printable ASCII, space or tab")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ConfigError::InvalidHeader {
                name: source.to_owned(),
                header: name.to_owned(),
                problem: problem.to_owned(),
            });
        }
    }
    Ok(())
}

fn compression(vars: &Vars<'_>) -> Result<Option<bool>, ConfigError> {
    vars.first(&["OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"])
        .map(|(var, value)| match value.to_ascii_lowercase().as_str() {
            "gzip" => Ok(true),
            "none" => Ok(false),
            _ => Err(invalid(var, &value, EXPECTED_COMPRESSION)),
        })
        .transpose()
}

fn langfuse_settings(b: &TracingConfigBuilder, vars: &Vars<'_>) -> Result<LangfuseSettings, ConfigError> {
    let public_key = b.langfuse_public_key.clone().or_else(|| vars.get("LANGFUSE_PUBLIC_KEY"));
    let secret_key = b.langfuse_secret_key.clone().or_else(|| vars.get("LANGFUSE_SECRET_KEY").map(Secret::new));
    let host = match &b.langfuse_host {
        Some(host) => Some(check_url("langfuse_host", host)?),
        None => match vars.url("LANGFUSE_HOST")? {
            Some(host) => Some(host),
            None => vars.url("LANGFUSE_BASE_URL")?,
        },
    };
    let host = host.as_deref().unwrap_or(LANGFUSE_DEFAULT_HOST).trim_end_matches('/').to_owned();
    Ok(LangfuseSettings { public_key, secret_key, host })
}

/// The queue and batch sizes, both at most [`MAX_QUEUE_SIZE`]. A batch
/// size that was asked for must fit in the queue; the default one is
/// lowered to a smaller queue (only the queue size was asked for).
fn batch_settings(b: &TracingConfigBuilder, vars: &Vars<'_>) -> Result<BatchSettings, ConfigError> {
    const QUEUE_VAR: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
    const BATCH_VAR: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
    let d = BatchSettings::default();
    let max_queue_size = bounded_setting(b.max_queue_size, "max_queue_size", vars, QUEUE_VAR, MAX_QUEUE_SIZE)?
        .unwrap_or(d.max_queue_size);
    let batch = bounded_setting(b.max_export_batch_size, "max_export_batch_size", vars, BATCH_VAR, MAX_QUEUE_SIZE)?;
    let max_export_batch_size = match batch {
        Some(batch) if batch > max_queue_size => {
            let name = if b.max_export_batch_size.is_some() { "max_export_batch_size" } else { BATCH_VAR };
            return Err(ConfigError::BatchLargerThanQueue { name: name.to_owned(), batch, queue: max_queue_size });
        }
        Some(batch) => batch,
        None => d.max_export_batch_size.min(max_queue_size),
    };
    let scheduled_delay = duration_setting(b.scheduled_delay, "scheduled_delay", vars, &["OTEL_BSP_SCHEDULE_DELAY"])?;
    let max_queue_bytes =
        byte_setting(b.max_queue_bytes, "max_queue_bytes", vars, "POCKETFLOW_MAX_QUEUE_MB", MAX_QUEUE_BYTES)?
            .unwrap_or(d.max_queue_bytes);
    let max_concurrent_exports = bounded_setting(
        b.max_concurrent_exports,
        "max_concurrent_exports",
        vars,
        "OTEL_BSP_MAX_CONCURRENT_EXPORTS",
        MAX_CONCURRENT_EXPORTS,
    )?
    .unwrap_or(d.max_concurrent_exports);
    let shutdown_timeout =
        duration_setting(b.shutdown_timeout, "shutdown_timeout", vars, &["POCKETFLOW_SHUTDOWN_TIMEOUT_MS"])?;
    let retry_time =
        duration_setting(b.export_retry_time, "export_retry_time", vars, &["POCKETFLOW_EXPORT_RETRY_TIME_MS"])?;
    let spool_dir = b.spool_dir.clone().or_else(|| vars.get("POCKETFLOW_SPOOL_DIR").map(PathBuf::from));
    let spool_max_bytes =
        byte_setting(b.spool_max_bytes, "spool_max_bytes", vars, "POCKETFLOW_SPOOL_MAX_MB", MAX_SPOOL_BYTES)?
            .unwrap_or(d.spool_max_bytes);
    Ok(BatchSettings {
        max_queue_size,
        max_queue_bytes,
        queue_full: queue_full(b.queue_full, vars)?,
        max_export_batch_size,
        max_concurrent_exports,
        scheduled_delay: scheduled_delay.unwrap_or(d.scheduled_delay),
        shutdown_timeout: shutdown_timeout.unwrap_or(d.shutdown_timeout),
        retry_time: retry_time.unwrap_or(d.retry_time),
        spool_dir,
        spool_max_bytes,
    })
}

/// The queue-full policy set in code, or `POCKETFLOW_QUEUE_FULL` (`wait`,
/// `drop_newest`, `drop_oldest`) with `POCKETFLOW_QUEUE_FULL_WAIT_MS`.
fn queue_full(code: Option<QueueFullPolicy>, vars: &Vars<'_>) -> Result<QueueFullPolicy, ConfigError> {
    const VAR: &str = "POCKETFLOW_QUEUE_FULL";
    const WAIT_VAR: &str = "POCKETFLOW_QUEUE_FULL_WAIT_MS";
    if let Some(policy) = code {
        return match policy {
            QueueFullPolicy::Wait(wait) if wait.is_zero() => {
                Err(invalid_setting("queue_full", "the wait must be greater than zero"))
            }
            policy => Ok(policy),
        };
    }
    let wait = vars.millis(&[WAIT_VAR])?.unwrap_or(DEFAULT_QUEUE_FULL_WAIT);
    let Some(value) = vars.get(VAR) else { return Ok(QueueFullPolicy::Wait(wait)) };
    match value.trim().to_ascii_lowercase().as_str() {
        "wait" => Ok(QueueFullPolicy::Wait(wait)),
        "drop_newest" => Ok(QueueFullPolicy::DropNewest),
        "drop_oldest" => Ok(QueueFullPolicy::DropOldest),
        _ => Err(invalid(VAR, &value, "wait, drop_newest or drop_oldest")),
    }
}

/// A count set in code (zero is an error) or read from `var`.
fn positive_setting(
    code: Option<usize>,
    setting: &'static str,
    vars: &Vars<'_>,
    var: &str,
) -> Result<Option<usize>, ConfigError> {
    match code {
        Some(0) => Err(invalid_setting(setting, "must be greater than zero")),
        Some(n) => Ok(Some(n)),
        None => vars.positive(var),
    }
}

/// A count set in code or read from `var`, from 1 to `max`.
fn bounded_setting(
    code: Option<usize>,
    setting: &'static str,
    vars: &Vars<'_>,
    var: &str,
    max: usize,
) -> Result<Option<usize>, ConfigError> {
    match code {
        Some(0) => Err(invalid_setting(setting, "must be greater than zero")),
        Some(n) if n > max => Err(ConfigError::TooLarge { name: setting.to_owned(), value: n.to_string(), max }),
        Some(n) => Ok(Some(n)),
        None => vars.count(var, max),
    }
}

/// A size in bytes set in code (from 1 to `max`), or in MiB in `var`.
fn byte_setting(
    code: Option<usize>,
    setting: &'static str,
    vars: &Vars<'_>,
    var: &str,
    max: usize,
) -> Result<Option<usize>, ConfigError> {
    match code {
        Some(_) => bounded_setting(code, setting, vars, var, max),
        None => Ok(vars.count(var, max >> 20)?.map(|mb| mb << 20)),
    }
}

/// A duration set in code (which must not be zero), else the first of
/// `names` set in the environment, in milliseconds.
fn duration_setting(
    code: Option<Duration>,
    setting: &'static str,
    vars: &Vars<'_>,
    names: &[&'static str],
) -> Result<Option<Duration>, ConfigError> {
    match code {
        Some(duration) if duration.is_zero() => Err(invalid_setting(setting, "must be greater than zero")),
        Some(duration) => Ok(Some(duration)),
        None => vars.millis(names),
    }
}

/// `url` if it can be an endpoint; else an error naming `name` (a variable
/// or a setting) and the URL without its password.
fn check_url(name: &str, url: &str) -> Result<String, ConfigError> {
    endpoint::check(name, url).map(|()| url.to_owned())
}

/// The exporters asked for in code or `POCKETFLOW_TRACING_EXPORTER`; `None`
/// lets [`choose_exporters`] pick.
fn requested_exporters(
    code: Option<Vec<ExporterKind>>,
    vars: &Vars<'_>,
) -> Result<Option<Vec<ExporterKind>>, ConfigError> {
    if let Some(kinds) = code {
        let kinds = dedup(kinds);
        return if none_misused(&kinds) {
            Err(invalid_setting("exporters", "the list must not be empty, and ExporterKind::None must be alone"))
        } else {
            Ok(Some(kinds))
        };
    }
    vars.get("POCKETFLOW_TRACING_EXPORTER").map(|value| parse_exporters(&value)).transpose()
}

fn parse_exporters(value: &str) -> Result<Vec<ExporterKind>, ConfigError> {
    const VAR: &str = "POCKETFLOW_TRACING_EXPORTER";
    let mut kinds = Vec::new();
    for name in split_list(value) {
        let kind = match name.to_ascii_lowercase().as_str() {
            "console" => ExporterKind::Console,
            "otlp" => ExporterKind::Otlp,
            "langfuse" => ExporterKind::Langfuse,
            "none" => ExporterKind::None,
            _ => return Err(invalid(VAR, value, EXPECTED_EXPORTERS)),
        };
        kinds.push(kind);
    }
    let kinds = dedup(kinds);
    if none_misused(&kinds) { Err(invalid(VAR, value, EXPECTED_EXPORTERS)) } else { Ok(kinds) }
}

/// An empty list, or `None` together with real exporters.
fn none_misused(kinds: &[ExporterKind]) -> bool {
    kinds.is_empty() || (kinds.len() > 1 && kinds.contains(&ExporterKind::None))
}

fn dedup(kinds: Vec<ExporterKind>) -> Vec<ExporterKind> {
    let mut unique = Vec::with_capacity(kinds.len());
    for kind in kinds {
        if !unique.contains(&kind) {
            unique.push(kind);
        }
    }
    unique
}

/// The requested exporters, or the automatic choice (an OTLP endpoint →
/// `otlp`; both Langfuse keys → `langfuse`; otherwise `console`). Langfuse
/// needs both keys.
fn choose_exporters(
    requested: Option<Vec<ExporterKind>>,
    otlp: &OtlpSettings,
    langfuse: &LangfuseSettings,
) -> Result<Vec<ExporterKind>, ConfigError> {
    let has_keys = langfuse.public_key.is_some() && langfuse.secret_key.is_some();
    let exporters = requested.unwrap_or_else(|| {
        vec![if otlp.endpoint.is_some() {
            ExporterKind::Otlp
        } else if has_keys {
            ExporterKind::Langfuse
        } else {
            ExporterKind::Console
        }]
    });
    if exporters.contains(&ExporterKind::Langfuse) {
        if langfuse.public_key.is_none() {
            return Err(ConfigError::MissingLangfuseKey { missing: "LANGFUSE_PUBLIC_KEY" });
        }
        if langfuse.secret_key.is_none() {
            return Err(ConfigError::MissingLangfuseKey { missing: "LANGFUSE_SECRET_KEY" });
        }
    }
    Ok(exporters)
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_positive(value: &str) -> Option<usize> {
    value.parse::<usize>().ok().filter(|n| *n > 0)
}

fn split_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

/// `k=v,k2=v2`: keys and values trimmed, empty items skipped, values
/// percent-decoded when `decode`. `None` when an item has no `=`, a key is
/// empty, or a value is not valid percent-encoding.
fn parse_pairs(value: &str, decode: bool) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (key, value) = item.split_once('=')?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return None;
        }
        let value = if decode { percent_decode(value)? } else { value.to_owned() };
        pairs.push((key.to_owned(), value));
    }
    Some(pairs)
}

/// Keeps one entry per key, at its first position, with its last value.
fn dedup_last_wins(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut unique: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        match unique.iter_mut().find(|(existing, _)| *existing == key) {
            Some(slot) => slot.1 = value,
            None => unique.push((key, value)),
        }
    }
    unique
}

/// Decodes `%XX` escapes (as `OTEL_RESOURCE_ATTRIBUTES` and
/// `OTEL_EXPORTER_OTLP_HEADERS` values use). `None` for a `%` not followed
/// by two hex digits, or bytes that are not UTF-8. `+` is kept as is.
fn percent_decode(value: &str) -> Option<String> {
    let mut decoded = Vec::with_capacity(value.len());
    let mut bytes = value.bytes();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let high = hex_digit(bytes.next()?)?;
            let low = hex_digit(bytes.next()?)?;
            decoded.push(high << 4 | low);
        } else {
            decoded.push(byte);
        }
    }
    String::from_utf8(decoded).ok()
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).and_then(|digit| u8::try_from(digit).ok())
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn resolve_vars(vars: &[(&str, &str)]) -> Result<TracingConfig, ConfigError> {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        resolve(TracingConfigBuilder::default(), &|name| vars.get(name).cloned())
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Cb%3Dc%20d").as_deref(), Some("a,b=c d"));
        assert_eq!(percent_decode("%e2%9C%93").as_deref(), Some("\u{2713}"));
        assert_eq!(percent_decode("plain+text").as_deref(), Some("plain+text"));
        assert_eq!(percent_decode("100%"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
    }

    #[test]
    fn each_record_flag_lands_in_its_field() {
        type Field = fn(&RecordSettings) -> bool;
        let flags: [(&str, Field); 13] = [
            ("POCKETFLOW_TRACE_INPUTS", |r| r.inputs),
            ("POCKETFLOW_TRACE_OUTPUTS", |r| r.outputs),
            ("POCKETFLOW_TRACE_ERRORS", |r| r.errors),
            ("POCKETFLOW_TRACE_PREP", |r| r.prep),
            ("POCKETFLOW_TRACE_EXEC", |r| r.exec),
            ("POCKETFLOW_TRACE_POST", |r| r.post),
            ("POCKETFLOW_TRACE_ASYNC_LIFECYCLE", |r| r.async_lifecycle),
            ("POCKETFLOW_TRACE_ASYNC_CONTEXT", |r| r.async_context),
            ("POCKETFLOW_TRACE_CONCURRENT_FLOWS", |r| r.concurrent_flows),
            ("POCKETFLOW_ASYNC_ERROR_RECOVERY", |r| r.async_error_recovery),
            ("POCKETFLOW_PERFORMANCE_MONITORING", |r| r.performance_monitoring),
            ("POCKETFLOW_EVENT_OBSERVATIONS", |r| r.event_observations),
            ("POCKETFLOW_TRACING_DEBUG", |r| r.debug),
        ];
        for (var, field) in flags {
            for (value, expected) in [("true", true), (" Off ", false), ("YES", true), ("0", false)] {
                let config = resolve_vars(&[(var, value)]);
                assert_eq!(config.as_ref().map(|c| field(&c.record)), Ok(expected), "{var}={value}");
            }
        }
    }

    #[test]
    fn numbers_lists_and_maps() {
        let config = resolve_vars(&[
            ("POCKETFLOW_MAX_PAYLOAD_BYTES", "100"),
            ("POCKETFLOW_MAX_EVENTS_PER_SPAN", "7"),
            ("POCKETFLOW_MAX_LIFECYCLE_EVENTS", "5"),
            ("POCKETFLOW_SLOW_NODE_THRESHOLD_MS", "40"),
            ("POCKETFLOW_REDACT_KEYS", "ssn, card ,,"),
            ("POCKETFLOW_TRACING_EXCLUDED_TARGETS", "noisy"),
            ("POCKETFLOW_TAGS", " a, ,b "),
            ("POCKETFLOW_METADATA", "team=core, tier = gold"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=billing,host.name=a%2Cb,host.name=c"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Basic%20abc,x-a=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-A=2"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "50"),
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
        ]);
        let c = config.expect("valid variables");
        assert_eq!((c.record.max_payload_bytes, c.record.max_events_per_span), (100, 7));
        assert_eq!(c.record.max_lifecycle_events_per_span, 5);
        assert_eq!(c.record.slow_node_threshold, Duration::from_millis(40));
        assert_eq!(c.record.redact_keys, ["ssn", "card"]);
        assert_eq!(c.excluded_targets, ["noisy"]);
        assert_eq!(c.trace.tags, ["a", "b"]);
        assert_eq!(c.trace.metadata.get("tier").map(String::as_str), Some("gold"));
        assert_eq!(c.trace.service_name.as_deref(), Some("billing"));
        assert_eq!(c.trace.resource, [("host.name".to_owned(), "c".to_owned())]);
        let headers: Vec<(&str, &str)> = c.otlp.headers.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
        assert_eq!(headers, [("authorization", "Basic abc"), ("x-a", "2")]);
        assert_eq!((c.otlp.timeout, c.otlp.gzip), (Duration::from_millis(2500), true));
        assert_eq!((c.batch.max_queue_size, c.batch.max_export_batch_size), (100, 50));
        assert_eq!(c.batch.scheduled_delay, Duration::from_millis(250));
    }

    #[test]
    fn the_queue_bound_policy_concurrency_and_shutdown_deadline() {
        let c = resolve_vars(&[
            ("POCKETFLOW_MAX_QUEUE_MB", "8"),
            ("POCKETFLOW_QUEUE_FULL", "Drop_Oldest"),
            ("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "2"),
            ("POCKETFLOW_SHUTDOWN_TIMEOUT_MS", "1500"),
        ])
        .expect("valid variables");
        assert_eq!((c.batch.max_queue_bytes, c.batch.queue_full), (8 << 20, QueueFullPolicy::DropOldest));
        assert_eq!((c.batch.max_concurrent_exports, c.batch.shutdown_timeout), (2, Duration::from_millis(1500)));
        let wait = |vars: &[(&str, &str)]| resolve_vars(vars).map(|c| c.batch.queue_full);
        assert_eq!(
            wait(&[("POCKETFLOW_QUEUE_FULL", "wait"), ("POCKETFLOW_QUEUE_FULL_WAIT_MS", "250")]),
            Ok(QueueFullPolicy::Wait(Duration::from_millis(250)))
        );
        assert_eq!(wait(&[("POCKETFLOW_QUEUE_FULL", "drop_newest")]), Ok(QueueFullPolicy::DropNewest));
        for (var, value) in [
            ("POCKETFLOW_QUEUE_FULL", "block"),
            ("POCKETFLOW_QUEUE_FULL_WAIT_MS", "0"),
            ("POCKETFLOW_MAX_QUEUE_MB", "0"),
            ("POCKETFLOW_MAX_QUEUE_MB", "16385"),
            ("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "65"),
            ("POCKETFLOW_SHUTDOWN_TIMEOUT_MS", "soon"),
        ] {
            let error = resolve_vars(&[(var, value)]).expect_err(value).to_string();
            assert!(error.contains(var), "{var}={value}: {error}");
        }
    }

    #[test]
    fn service_name_sources() {
        let name = |vars: &[(&str, &str)]| resolve_vars(vars).expect("valid variables").trace.service_name;
        let resource = ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource,team=a");
        assert_eq!(name(&[]).as_deref(), Some("pocketflow"));
        assert_eq!(name(&[resource]).as_deref(), Some("from-resource"));
        assert_eq!(name(&[resource, ("OTEL_SERVICE_NAME", "svc")]).as_deref(), Some("svc"));
        let config = resolve_vars(&[resource, ("OTEL_SERVICE_NAME", "svc")]).expect("valid variables");
        assert_eq!(config.trace.resource, [("team".to_owned(), "a".to_owned())], "service.name is lifted out");
    }

    #[test]
    fn defaults_and_blank_redact_keys() {
        let c = resolve_vars(&[("POCKETFLOW_REDACT_KEYS", "")]).expect("valid variables");
        assert!(c.record.redact_keys.is_empty());
        assert_eq!(c.trace.service_name.as_deref(), Some("pocketflow"));
        assert_eq!(c.excluded_targets.len(), DEFAULT_EXCLUDED_TARGETS.len());
        assert_eq!(c.otlp.timeout, DEFAULT_EXPORT_TIMEOUT);
        assert_eq!(c.batch.max_export_batch_size, 1024);
        assert_eq!((c.batch.max_queue_size, c.batch.max_queue_bytes), (MAX_QUEUE_SIZE, 32 << 20));
        assert_eq!(c.batch.queue_full, QueueFullPolicy::Wait(Duration::from_secs(1)));
        assert_eq!((c.batch.max_concurrent_exports, c.batch.shutdown_timeout), (4, Duration::from_secs(30)));
        assert_eq!(c.record.max_lifecycle_events_per_span, 32);
        assert_eq!(c.record.slow_node_threshold, Duration::from_millis(5000));
    }
}

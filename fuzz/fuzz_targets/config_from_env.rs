//! The configuration parser on arbitrary environments: every variable it
//! reads, with any value. It must never panic, and neither the config's
//! `Debug` nor an error's text may show a secret (the Langfuse secret key,
//! an OTLP header's value).
//!
//! Input: lines of `<byte choosing the variable><value>`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketflow_tracing::TracingConfig;

const VARS: &[&str] = &[
    "POCKETFLOW_TRACING_EXPORTER",
    "OTEL_SDK_DISABLED",
    "POCKETFLOW_TRACE_INPUTS",
    "POCKETFLOW_TRACE_OUTPUTS",
    "POCKETFLOW_TRACE_ERRORS",
    "POCKETFLOW_TRACE_PREP",
    "POCKETFLOW_MAX_PAYLOAD_BYTES",
    "POCKETFLOW_REDACT_KEYS",
    "POCKETFLOW_MAX_EVENTS_PER_SPAN",
    "POCKETFLOW_MAX_LIFECYCLE_EVENTS",
    "POCKETFLOW_SLOW_NODE_THRESHOLD_MS",
    "POCKETFLOW_SESSION_ID",
    "POCKETFLOW_USER_ID",
    "POCKETFLOW_TAGS",
    "POCKETFLOW_METADATA",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_HOST",
    "POCKETFLOW_MAX_QUEUE_MB",
    "POCKETFLOW_QUEUE_FULL",
    "POCKETFLOW_QUEUE_FULL_WAIT_MS",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_MAX_CONCURRENT_EXPORTS",
    "OTEL_BSP_SCHEDULE_DELAY",
    "POCKETFLOW_SHUTDOWN_TIMEOUT_MS",
    "POCKETFLOW_EXPORT_RETRY_TIME_MS",
];

/// Marks the secrets the harness sets.
const SECRET: &str = "FUZZSECRET";

fuzz_target!(|data: &[u8]| {
    let mut vars: Vec<(String, String)> = Vec::new();
    for line in data.split(|byte| *byte == b'\n') {
        let Some((&choice, value)) = line.split_first() else { continue };
        let name = VARS[usize::from(choice) % VARS.len()];
        vars.push((name.to_owned(), String::from_utf8_lossy(value).into_owned()));
    }
    // A secret the fuzzer wrote itself may be shown where it is not one.
    let check = !vars.iter().any(|(_, value)| value.contains(SECRET));
    vars.push(("LANGFUSE_SECRET_KEY".to_owned(), format!("sk-lf-{SECRET}-key")));
    if !vars.iter().any(|(name, _)| name.contains("HEADERS")) {
        vars.push(("OTEL_EXPORTER_OTLP_HEADERS".to_owned(), format!("authorization=Bearer%20{SECRET}-header")));
    }
    let shown = match TracingConfig::builder().from_vars(vars) {
        Ok(config) => format!("{config:?}"),
        Err(error) => format!("{error} {error:?}"),
    };
    if check {
        assert!(!shown.contains(SECRET), "a secret is shown: {shown}");
    }
});

//! `TracingConfig` from environment variables (read through `from_vars`, so
//! the process environment is never touched): parsing, precedence (code >
//! environment > defaults), the automatic exporter choice, and errors that
//! name the variable. `docs/configuration.md` documents the same behaviour.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use pocketflow_tracing::{ConfigError, ExporterKind, Protocol, Sampler, TracingConfig};

fn config(vars: &[(&str, &str)]) -> TracingConfig {
    TracingConfig::builder().from_vars(vars.iter().copied()).unwrap_or_else(|e| panic!("{vars:?}: {e}"))
}

fn error(vars: &[(&str, &str)]) -> ConfigError {
    match TracingConfig::builder().from_vars(vars.iter().copied()) {
        Ok(config) => panic!("{vars:?} should be rejected, got {config:?}"),
        Err(e) => e,
    }
}

/// The error names `var` and is an `InvalidVar`.
fn assert_invalid_var(vars: &[(&str, &str)], var: &str) -> String {
    let err = error(vars);
    assert!(matches!(&err, ConfigError::InvalidVar { var: v, .. } if v == var), "{vars:?}: {err:?}");
    let message = err.to_string();
    assert!(message.contains(var), "{message}");
    message
}

/// The error is an `InvalidEndpoint` naming `var`.
fn assert_invalid_endpoint(vars: &[(&str, &str)], var: &str) -> String {
    let err = error(vars);
    assert!(matches!(&err, ConfigError::InvalidEndpoint { name, .. } if name == var), "{vars:?}: {err:?}");
    let message = err.to_string();
    assert!(message.contains(var), "{message}");
    message
}

const BOOL_VARS: [&str; 15] = [
    "POCKETFLOW_TRACE_INPUTS",
    "POCKETFLOW_TRACE_OUTPUTS",
    "POCKETFLOW_TRACE_ERRORS",
    "POCKETFLOW_TRACE_PREP",
    "POCKETFLOW_TRACE_EXEC",
    "POCKETFLOW_TRACE_POST",
    "POCKETFLOW_TRACE_ASYNC_LIFECYCLE",
    "POCKETFLOW_TRACE_ASYNC_CONTEXT",
    "POCKETFLOW_TRACE_CONCURRENT_FLOWS",
    "POCKETFLOW_ASYNC_ERROR_RECOVERY",
    "POCKETFLOW_PERFORMANCE_MONITORING",
    "POCKETFLOW_EVENT_OBSERVATIONS",
    "POCKETFLOW_TRACING_DEBUG",
    "OTEL_SDK_DISABLED",
    "POCKETFLOW_PROGRESS",
];

#[test]
fn defaults_without_variables() {
    let c = config(&[]);
    assert_eq!(c.exporters(), [ExporterKind::Console]);
    assert_eq!(c.sampler(), Sampler::AlwaysOn);
    assert_eq!(c.protocol(), Protocol::Grpc);
    assert_eq!(c.otlp_endpoint(), None);
    assert_eq!(c.langfuse_endpoint(), "https://cloud.langfuse.com/api/public/otel/v1/traces");
    assert_eq!((c.session_id(), c.user_id()), (None, None));
    assert!(!c.is_disabled());

    let built = TracingConfig::builder().build().unwrap();
    assert_eq!(built.exporters(), [ExporterKind::Console]);
    assert_eq!(TracingConfig::default().exporters(), [ExporterKind::Console]);
}

#[test]
fn bool_vars_accept_true_and_false_spellings() {
    for var in BOOL_VARS {
        for value in ["true", "false", "TRUE", "False", "1", "0", "yes", "no", "on", "OFF", " true ", "", "  "] {
            config(&[(var, value)]);
        }
    }
}

#[test]
fn bool_vars_reject_anything_else_naming_the_variable() {
    for var in BOOL_VARS {
        for value in ["maybe", "2", "enabled", "t"] {
            let message = assert_invalid_var(&[(var, value)], var);
            assert!(message.contains("true or false"), "{message}");
        }
    }
}

#[test]
fn otel_sdk_disabled_turns_everything_off() {
    for value in ["true", "1", "on"] {
        let c = config(&[("OTEL_SDK_DISABLED", value), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]);
        assert!(c.is_disabled());
        assert_eq!(c.exporters(), [ExporterKind::None]);
    }
    let c = config(&[("OTEL_SDK_DISABLED", "false")]);
    assert!(!c.is_disabled());
    assert_eq!(c.exporters(), [ExporterKind::Console]);

    // Disabled: a Langfuse exporter without keys is not an error, nothing is sent.
    let c = config(&[("OTEL_SDK_DISABLED", "true"), ("POCKETFLOW_TRACING_EXPORTER", "langfuse")]);
    assert_eq!(c.exporters(), [ExporterKind::None]);

    let c = TracingConfig::builder().disabled(true).build().unwrap();
    assert!(c.is_disabled());
    assert_eq!(c.exporters(), [ExporterKind::None]);
    let c = TracingConfig::builder().disabled(false).from_vars([("OTEL_SDK_DISABLED", "true")]).unwrap();
    assert!(!c.is_disabled());
}

#[test]
fn progress_is_on_by_default_and_code_beats_env() {
    assert!(config(&[]).progress());
    for (value, on) in [("false", false), ("0", false), ("off", false), ("true", true), ("yes", true)] {
        assert_eq!(config(&[("POCKETFLOW_PROGRESS", value)]).progress(), on, "{value}");
    }
    let c = TracingConfig::builder().progress(true).from_vars([("POCKETFLOW_PROGRESS", "false")]).unwrap();
    assert!(c.progress());
    // Set in code, the variable is not read: an invalid value is no error.
    let c = TracingConfig::builder().progress(false).from_vars([("POCKETFLOW_PROGRESS", "sometimes")]).unwrap();
    assert!(!c.progress());
    // Independent of tracing being off.
    assert!(config(&[("OTEL_SDK_DISABLED", "true")]).progress());
}

#[test]
fn strings_from_the_environment_and_code_beats_env() {
    let c = config(&[("POCKETFLOW_SESSION_ID", "env-session"), ("POCKETFLOW_USER_ID", " env-user ")]);
    assert_eq!(c.session_id(), Some("env-session"));
    assert_eq!(c.user_id(), Some("env-user"));

    let c = TracingConfig::builder()
        .session_id("code")
        .from_vars([("POCKETFLOW_SESSION_ID", "env"), ("POCKETFLOW_USER_ID", "env-user")])
        .unwrap();
    assert_eq!(c.session_id(), Some("code"));
    assert_eq!(c.user_id(), Some("env-user"));

    // An empty value counts as unset.
    assert_eq!(config(&[("POCKETFLOW_SESSION_ID", "")]).session_id(), None);
}

#[test]
fn a_variable_set_in_code_is_not_read() {
    let c = TracingConfig::builder()
        .trace_inputs(false)
        .sampler(Sampler::AlwaysOff)
        .protocol(Protocol::HttpProtobuf)
        .exporters(vec![ExporterKind::Console])
        .from_vars([
            ("POCKETFLOW_TRACE_INPUTS", "not-a-bool"),
            ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("POCKETFLOW_TRACING_EXPORTER", "carrier-pigeon"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ])
        .unwrap();
    assert_eq!(c.sampler(), Sampler::AlwaysOff);
    assert_eq!(c.protocol(), Protocol::HttpProtobuf);
    assert_eq!(c.exporters(), [ExporterKind::Console]);
    assert_eq!(c.otlp_endpoint(), Some("http://collector:4318/v1/traces"));
}

#[test]
fn automatic_exporter_choice() {
    let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
    let public = ("LANGFUSE_PUBLIC_KEY", "pk-lf-public");
    let secret = ("LANGFUSE_SECRET_KEY", "sk-lf-secret");

    let c = config(&[endpoint]);
    assert_eq!(c.exporters(), [ExporterKind::Otlp]);
    assert_eq!(c.otlp_endpoint(), Some("http://collector:4317"));

    let c = config(&[public, secret]);
    assert_eq!(c.exporters(), [ExporterKind::Langfuse]);
    assert_eq!(c.langfuse_endpoint(), "https://cloud.langfuse.com/api/public/otel/v1/traces");

    assert_eq!(config(&[]).exporters(), [ExporterKind::Console]);
    assert_eq!(config(&[public]).exporters(), [ExporterKind::Console], "one key is not enough");
    assert_eq!(config(&[endpoint, public, secret]).exporters(), [ExporterKind::Otlp]);

    let c = TracingConfig::builder().otlp_endpoint("http://code:4317").build().unwrap();
    assert_eq!(c.exporters(), [ExporterKind::Otlp]);
    let c = TracingConfig::builder().langfuse_public_key("pk").langfuse_secret_key("sk".into()).build().unwrap();
    assert_eq!(c.exporters(), [ExporterKind::Langfuse]);
}

#[test]
fn exporter_variable() {
    let c = config(&[("POCKETFLOW_TRACING_EXPORTER", "console,otlp")]);
    assert_eq!(c.exporters(), [ExporterKind::Console, ExporterKind::Otlp]);
    assert_eq!(c.otlp_endpoint(), Some("http://localhost:4317"), "default gRPC endpoint");

    let c = config(&[("POCKETFLOW_TRACING_EXPORTER", "otlp"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
    assert_eq!(c.otlp_endpoint(), Some("http://localhost:4318/v1/traces"), "default HTTP endpoint");

    let c = config(&[("POCKETFLOW_TRACING_EXPORTER", " OTLP , console,otlp ")]);
    assert_eq!(c.exporters(), [ExporterKind::Otlp, ExporterKind::Console], "trimmed, case-insensitive, deduplicated");

    assert_eq!(config(&[("POCKETFLOW_TRACING_EXPORTER", "none")]).exporters(), [ExporterKind::None]);
    assert_eq!(config(&[("POCKETFLOW_TRACING_EXPORTER", "none")]).otlp_endpoint(), None);

    for bad in ["none,console", "console,jaeger", ","] {
        let message = assert_invalid_var(&[("POCKETFLOW_TRACING_EXPORTER", bad)], "POCKETFLOW_TRACING_EXPORTER");
        assert!(message.contains("console, otlp, langfuse"), "{message}");
    }

    let err = TracingConfig::builder().exporters(vec![]).build().unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { setting: "exporters", .. }), "{err:?}");
    let err = TracingConfig::builder().exporters(vec![ExporterKind::None, ExporterKind::Otlp]).build().unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { setting: "exporters", .. }), "{err:?}");
}

#[test]
fn langfuse_exporter_needs_both_keys() {
    let err = error(&[("POCKETFLOW_TRACING_EXPORTER", "langfuse"), ("LANGFUSE_PUBLIC_KEY", "pk-lf-public")]);
    assert_eq!(err, ConfigError::MissingLangfuseKey { missing: "LANGFUSE_SECRET_KEY" });
    assert!(err.to_string().contains("LANGFUSE_SECRET_KEY"), "{err}");

    let err = error(&[("POCKETFLOW_TRACING_EXPORTER", "console,langfuse"), ("LANGFUSE_SECRET_KEY", "sk-lf-secret")]);
    assert_eq!(err, ConfigError::MissingLangfuseKey { missing: "LANGFUSE_PUBLIC_KEY" });
    assert!(!err.to_string().contains("sk-lf-secret"), "{err}");

    let err = TracingConfig::builder().exporters(vec![ExporterKind::Langfuse]).build().unwrap_err();
    assert_eq!(err, ConfigError::MissingLangfuseKey { missing: "LANGFUSE_PUBLIC_KEY" });
}

#[test]
fn langfuse_host() {
    let keys = [("LANGFUSE_PUBLIC_KEY", "pk"), ("LANGFUSE_SECRET_KEY", "sk")];
    let with = |extra: &[(&'static str, &'static str)]| [&keys[..], extra].concat();

    let c = config(&with(&[("LANGFUSE_BASE_URL", "https://us.cloud.langfuse.com/")]));
    assert_eq!(c.langfuse_endpoint(), "https://us.cloud.langfuse.com/api/public/otel/v1/traces");

    let c = config(&with(&[("LANGFUSE_HOST", "http://localhost:3000"), ("LANGFUSE_BASE_URL", "https://ignored")]));
    assert_eq!(c.langfuse_endpoint(), "http://localhost:3000/api/public/otel/v1/traces");

    let c = TracingConfig::builder().langfuse_host("https://jp.cloud.langfuse.com").from_vars(with(&[])).unwrap();
    assert_eq!(c.langfuse_endpoint(), "https://jp.cloud.langfuse.com/api/public/otel/v1/traces");

    let message = assert_invalid_endpoint(&with(&[("LANGFUSE_HOST", "cloud.langfuse.com")]), "LANGFUSE_HOST");
    assert!(message.contains("http://"), "{message}");
    assert_invalid_endpoint(&[("LANGFUSE_BASE_URL", "ftp://langfuse")], "LANGFUSE_BASE_URL");
    let err = TracingConfig::builder().langfuse_host("cloud.langfuse.com").build().unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidEndpoint { name, .. } if name == "langfuse_host"), "{err:?}");
}

#[test]
fn otlp_endpoints() {
    let http = ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");

    let c = config(&[http, ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
    assert_eq!(c.otlp_endpoint(), Some("http://collector:4318/v1/traces"));
    let c = config(&[http, ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://cloud.langfuse.com/api/public/otel/")]);
    assert_eq!(c.otlp_endpoint(), Some("https://cloud.langfuse.com/api/public/otel/v1/traces"), "no double slash");

    let c = config(&[http, ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/custom")]);
    assert_eq!(c.otlp_endpoint(), Some("http://collector:4318/custom"), "the traces endpoint is used as given");

    let c = config(&[
        http,
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/v1/traces"),
    ]);
    assert_eq!(c.otlp_endpoint(), Some("http://traces:4318/v1/traces"), "the traces endpoint wins");

    let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]);
    assert_eq!(c.otlp_endpoint(), Some("http://collector:4317"), "gRPC: as given");

    let c = TracingConfig::builder()
        .otlp_endpoint("http://code:4318")
        .protocol(Protocol::HttpProtobuf)
        .from_vars([("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env:4318/v1/traces")])
        .unwrap();
    assert_eq!(c.otlp_endpoint(), Some("http://code:4318/v1/traces"), "code beats env, and is appended for HTTP");
    let c = TracingConfig::builder()
        .otlp_endpoint("http://base:4318")
        .otlp_traces_endpoint("http://code:4318/traces")
        .protocol(Protocol::HttpProtobuf)
        .build()
        .unwrap();
    assert_eq!(c.otlp_endpoint(), Some("http://code:4318/traces"));

    assert_invalid_endpoint(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")], "OTEL_EXPORTER_OTLP_ENDPOINT");
    assert_invalid_endpoint(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://")], "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let err = TracingConfig::builder().otlp_endpoint("localhost:4317").build().unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidEndpoint { name, .. } if name == "otlp_endpoint"), "{err:?}");
}

#[test]
fn otlp_protocol() {
    let c = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "HTTP/Protobuf")]);
    assert_eq!(c.protocol(), Protocol::HttpProtobuf);
    let c = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")]);
    assert_eq!(c.protocol(), Protocol::Grpc, "the traces variable wins");

    let message = assert_invalid_var(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")], "OTEL_EXPORTER_OTLP_PROTOCOL");
    assert!(message.contains("not supported") && message.contains("http/protobuf"), "{message}");
    assert_invalid_var(&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")], "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
    assert_invalid_var(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "udp")], "OTEL_EXPORTER_OTLP_PROTOCOL");
}

#[test]
fn sampler() {
    let sampler = |vars: &[(&str, &str)]| config(vars).sampler();
    assert_eq!(sampler(&[("OTEL_TRACES_SAMPLER", "always_on")]), Sampler::AlwaysOn);
    assert_eq!(sampler(&[("OTEL_TRACES_SAMPLER", "ALWAYS_OFF")]), Sampler::AlwaysOff);
    assert_eq!(sampler(&[("OTEL_TRACES_SAMPLER", "parentbased_always_on")]), Sampler::AlwaysOn);
    assert_eq!(sampler(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")]), Sampler::AlwaysOff);
    assert_eq!(
        sampler(&[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.25")]),
        Sampler::TraceIdRatio(0.25)
    );
    assert_eq!(sampler(&[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")]), Sampler::TraceIdRatio(1.0));
    assert_eq!(
        sampler(&[("OTEL_TRACES_SAMPLER", "always_on"), ("OTEL_TRACES_SAMPLER_ARG", "junk")]),
        Sampler::AlwaysOn,
        "the argument is only read for the ratio samplers"
    );

    for ratio in ["1.5", "-0.1", "NaN", "half"] {
        let vars = [("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", ratio)];
        assert_invalid_var(&vars, "OTEL_TRACES_SAMPLER_ARG");
    }
    for name in ["jaeger_remote", "parentbased_jaeger_remote", "sometimes"] {
        let message = assert_invalid_var(&[("OTEL_TRACES_SAMPLER", name)], "OTEL_TRACES_SAMPLER");
        assert!(message.contains("parentbased_traceidratio"), "lists the accepted values: {message}");
    }

    for ratio in [1.5, -0.1, f64::NAN] {
        let err = TracingConfig::builder().sampler(Sampler::TraceIdRatio(ratio)).build().unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { setting: "sampler", .. }), "{err:?}");
    }
}

#[test]
fn headers_are_parsed_and_never_shown() {
    let c = config(&[
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Basic%20cGstbGY6c2stbGY=,x-tenant=acme"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=traces-tenant"),
        ("LANGFUSE_PUBLIC_KEY", "pk-lf-public"),
        ("LANGFUSE_SECRET_KEY", "sk-lf-secret"),
    ]);
    let shown = format!("{c:?}");
    assert!(shown.contains("authorization") && shown.contains("x-tenant"), "header names are shown: {shown}");
    for secret in ["cGstbGY6c2stbGY", "acme", "traces-tenant", "sk-lf-secret"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }

    for bad in ["authorization", "authorization=Bearer%2", "=token-without-name"] {
        let message = assert_invalid_var(&[("OTEL_EXPORTER_OTLP_HEADERS", bad)], "OTEL_EXPORTER_OTLP_HEADERS");
        assert!(message.contains("***") && !message.contains("Bearer"), "{message}");
    }
    assert_invalid_var(&[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x")], "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
}

#[test]
fn resource_attributes_are_percent_decoded() {
    let c = config(&[("OTEL_RESOURCE_ATTRIBUTES", "team=a%2Cb%3Dc,region=eu%20west")]);
    let shown = format!("{c:?}");
    assert!(shown.contains("\"a,b=c\"") && shown.contains("\"eu west\""), "{shown}");

    assert_invalid_var(&[("OTEL_RESOURCE_ATTRIBUTES", "team=a,novalue")], "OTEL_RESOURCE_ATTRIBUTES");
    assert_invalid_var(&[("OTEL_RESOURCE_ATTRIBUTES", "growth=100%")], "OTEL_RESOURCE_ATTRIBUTES");
    assert_invalid_var(&[("POCKETFLOW_METADATA", "team")], "POCKETFLOW_METADATA");
}

#[test]
fn numbers() {
    for var in [
        "POCKETFLOW_MAX_PAYLOAD_BYTES",
        "POCKETFLOW_MAX_EVENTS_PER_SPAN",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "OTEL_BSP_MAX_CONCURRENT_EXPORTS",
        "POCKETFLOW_MAX_QUEUE_MB",
    ] {
        config(&[(var, "42")]);
        for bad in ["0", "-1", "1.5", "lots"] {
            let message = assert_invalid_var(&[(var, bad)], var);
            assert!(message.contains("a positive integer"), "{message}");
        }
    }
    for var in [
        "OTEL_BSP_SCHEDULE_DELAY",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "POCKETFLOW_SHUTDOWN_TIMEOUT_MS",
        "POCKETFLOW_QUEUE_FULL_WAIT_MS",
    ] {
        config(&[(var, "1500")]);
        assert_invalid_var(&[(var, "1.5s")], var);
        assert_invalid_var(&[(var, "0")], var);
    }
    // The default batch (1024) is lowered to a smaller queue; a batch asked
    // for must fit (config_rejects_bad_values.rs).
    config(&[("OTEL_BSP_MAX_QUEUE_SIZE", "10")]);

    for (builder, setting) in [
        (TracingConfig::builder().max_queue_size(0), "max_queue_size"),
        (TracingConfig::builder().max_export_batch_size(0), "max_export_batch_size"),
        (TracingConfig::builder().export_timeout(Duration::ZERO), "export_timeout"),
        (TracingConfig::builder().scheduled_delay(Duration::ZERO), "scheduled_delay"),
    ] {
        let err = builder.build().unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { setting: s, .. } if s == setting), "{err:?}");
    }
    TracingConfig::builder().max_queue_size(100).max_export_batch_size(10).build().unwrap();
}

#[test]
fn compression() {
    for value in ["gzip", "GZIP", "none"] {
        config(&[("OTEL_EXPORTER_OTLP_COMPRESSION", value)]);
    }
    assert_invalid_var(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")], "OTEL_EXPORTER_OTLP_COMPRESSION");
    assert_invalid_var(&[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "br")], "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION");
}

#[test]
fn lifecycle_cap_and_slow_threshold_are_positive_numbers() {
    for var in ["POCKETFLOW_MAX_LIFECYCLE_EVENTS", "POCKETFLOW_SLOW_NODE_THRESHOLD_MS"] {
        for bad in ["0", "-3", "1.5", "5s", "many"] {
            let message = assert_invalid_var(&[(var, bad)], var);
            assert!(message.contains("positive integer"), "{message}");
        }
        config(&[(var, "7")]);
    }
    let zero_cap = TracingConfig::builder().max_lifecycle_events_per_span(0).build();
    assert!(matches!(zero_cap, Err(ConfigError::Invalid { setting: "max_lifecycle_events_per_span", .. })));
    let zero_threshold = TracingConfig::builder().slow_node_threshold(std::time::Duration::ZERO).build();
    assert!(matches!(zero_threshold, Err(ConfigError::Invalid { setting: "slow_node_threshold", .. })));
}

#[test]
fn the_first_invalid_variable_is_reported() {
    // Record settings are read before OTLP settings.
    let vars = [("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), ("POCKETFLOW_TRACE_INPUTS", "maybe")];
    assert_invalid_var(&vars, "POCKETFLOW_TRACE_INPUTS");
}

#[test]
fn every_variable_is_documented_and_accepted() {
    const DOC: &str = include_str!("../../../docs/configuration.md");
    let valid: [(&str, &str); 55] = [
        ("POCKETFLOW_TRACING_EXPORTER", "console"),
        ("OTEL_SDK_DISABLED", "false"),
        ("POCKETFLOW_TRACE_INPUTS", "true"),
        ("POCKETFLOW_TRACE_OUTPUTS", "true"),
        ("POCKETFLOW_TRACE_ERRORS", "true"),
        ("POCKETFLOW_TRACE_PREP", "true"),
        ("POCKETFLOW_TRACE_EXEC", "true"),
        ("POCKETFLOW_TRACE_POST", "true"),
        ("POCKETFLOW_TRACE_ASYNC_LIFECYCLE", "true"),
        ("POCKETFLOW_TRACE_ASYNC_CONTEXT", "true"),
        ("POCKETFLOW_TRACE_CONCURRENT_FLOWS", "true"),
        ("POCKETFLOW_ASYNC_ERROR_RECOVERY", "true"),
        ("POCKETFLOW_PERFORMANCE_MONITORING", "false"),
        ("POCKETFLOW_EVENT_OBSERVATIONS", "true"),
        ("POCKETFLOW_TRACING_DEBUG", "false"),
        ("POCKETFLOW_MAX_PAYLOAD_BYTES", "1024"),
        ("POCKETFLOW_MAX_EVENTS_PER_SPAN", "10"),
        ("POCKETFLOW_MAX_LIFECYCLE_EVENTS", "8"),
        ("POCKETFLOW_SLOW_NODE_THRESHOLD_MS", "250"),
        ("POCKETFLOW_REDACT_KEYS", "password"),
        ("POCKETFLOW_TRACING_EXCLUDED_TARGETS", "h2,hyper,tonic"),
        ("POCKETFLOW_PROGRESS", "true"),
        ("POCKETFLOW_SESSION_ID", "s"),
        ("POCKETFLOW_USER_ID", "u"),
        ("OTEL_SERVICE_NAME", "svc"),
        ("OTEL_RESOURCE_ATTRIBUTES", "k=v"),
        ("POCKETFLOW_ENVIRONMENT", "prod"),
        ("LANGFUSE_TRACING_ENVIRONMENT", "prod"),
        ("POCKETFLOW_RELEASE", "r1"),
        ("LANGFUSE_RELEASE", "r1"),
        ("POCKETFLOW_VERSION", "1.0"),
        ("POCKETFLOW_TAGS", "a,b"),
        ("POCKETFLOW_METADATA", "k=v"),
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://localhost:4317"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "k=v"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "k=v"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1000"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ("LANGFUSE_PUBLIC_KEY", "pk"),
        ("LANGFUSE_SECRET_KEY", "sk"),
        ("LANGFUSE_HOST", "https://cloud.langfuse.com"),
        ("LANGFUSE_BASE_URL", "https://cloud.langfuse.com"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("POCKETFLOW_MAX_QUEUE_MB", "32"),
        ("POCKETFLOW_QUEUE_FULL", "wait"),
        ("POCKETFLOW_QUEUE_FULL_WAIT_MS", "500"),
        ("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "2"),
        ("POCKETFLOW_SHUTDOWN_TIMEOUT_MS", "20000"),
    ];
    for (var, _) in valid {
        assert!(DOC.contains(&format!("`{var}`")), "{var} is missing from docs/configuration.md");
    }
    for var in ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_SCHEDULE_DELAY"] {
        assert!(DOC.contains(&format!("`{var}`")), "{var} is missing from docs/configuration.md");
    }
    let c = config(&valid);
    assert_eq!(c.exporters(), [ExporterKind::Console]);
    assert_eq!(c.sampler(), Sampler::TraceIdRatio(0.5));
}

//! Values that used to be accepted and then lied (spans sent to port 80 and
//! reported as exported, headers dropped without a word) or crashed (a
//! queue size that asks for terabytes) are refused when the config is
//! built, with a typed error naming the variable or setting, the value
//! (never a password or a header value) and what was wrong. Variables are
//! passed with `from_vars`; the process environment is never touched.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use pocketflow_tracing::{
    ConfigError, LangfuseExporter, MAX_QUEUE_SIZE, Protocol, Secret, TracingConfig, TracingConfigBuilder, TracingError,
};

const ENDPOINT_VARS: [&str; 4] =
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "LANGFUSE_HOST", "LANGFUSE_BASE_URL"];
const PROTOCOLS: [&str; 2] = ["grpc", "http/protobuf"];

fn error(builder: TracingConfigBuilder, vars: &[(&str, &str)]) -> ConfigError {
    match builder.from_vars(vars.iter().copied()) {
        Ok(config) => panic!("{vars:?} should be rejected, got {config:?}"),
        Err(e) => e,
    }
}

fn assert_invalid_endpoint(err: &ConfigError, name: &str, url: &str) {
    match err {
        ConfigError::InvalidEndpoint { name: n, url: u, problem } => {
            assert_eq!((n.as_str(), u.as_str()), (name, url), "{err}");
            assert!(!problem.is_empty());
        }
        other => panic!("expected InvalidEndpoint for {name}={url}, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(name) && message.contains(url), "{message}");
}

#[test]
fn endpoints_with_a_port_out_of_range_or_not_a_number_are_refused_for_every_variable_and_transport() {
    for protocol in PROTOCOLS {
        for var in ENDPOINT_VARS {
            for url in ["http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://collector:0", "https://host:65536/x"]
            {
                let err = error(TracingConfig::builder(), &[("OTEL_EXPORTER_OTLP_PROTOCOL", protocol), (var, url)]);
                assert_invalid_endpoint(&err, var, url);
                assert!(err.to_string().contains("1 to 65535"), "{err}");
            }
        }
    }
}

#[test]
fn endpoints_without_a_host_or_an_http_scheme_are_refused() {
    for var in ENDPOINT_VARS {
        for url in ["http://", "http:///v1/traces", "https://:4317", "collector:4317", "grpc://collector:4317"] {
            assert_invalid_endpoint(&error(TracingConfig::builder(), &[(var, url)]), var, url);
        }
    }
}

#[test]
fn endpoints_set_in_code_are_checked_as_the_variables_are() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let url = "http://127.0.0.1:99999";
        let base = || TracingConfig::builder().protocol(protocol);
        assert_invalid_endpoint(&base().otlp_endpoint(url).build().unwrap_err(), "otlp_endpoint", url);
        assert_invalid_endpoint(&base().otlp_traces_endpoint(url).build().unwrap_err(), "otlp_traces_endpoint", url);
        assert_invalid_endpoint(&base().langfuse_host(url).build().unwrap_err(), "langfuse_host", url);
    }
    let err = LangfuseExporter::new("pk", "sk", "http://langfuse:abc", Duration::from_secs(1)).unwrap_err();
    match err {
        TracingError::Config(err) => assert_invalid_endpoint(&err, "LangfuseExporter::new host", "http://langfuse:abc"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_password_in_an_endpoint_is_masked_in_errors_and_debug() {
    let with_password = "http://ada:s3cr3t@collector:99999";
    for var in ENDPOINT_VARS {
        let err = error(TracingConfig::builder(), &[(var, with_password)]);
        assert_invalid_endpoint(&err, var, "http://ada:***@collector:99999");
        assert!(!format!("{err} {err:?}").contains("s3cr3t"), "{err:?}");
    }
    let err = TracingConfig::builder().otlp_endpoint(with_password).build().unwrap_err();
    assert!(!format!("{err} {err:?}").contains("s3cr3t"), "{err:?}");

    let config = TracingConfig::builder()
        .from_vars([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ada:s3cr3t@collector:4317"),
            ("LANGFUSE_HOST", "https://bob:hunter2@langfuse.example.com"),
        ])
        .unwrap();
    let shown = format!("{config:?}");
    assert!(shown.contains("ada:***@collector:4317") && shown.contains("bob:***@langfuse"), "{shown}");
    assert!(!shown.contains("s3cr3t") && !shown.contains("hunter2"), "{shown}");
    assert_eq!(config.otlp_endpoint(), Some("http://ada:s3cr3t@collector:4317"), "the URL itself is kept");

    let exporter = LangfuseExporter::new(
        "pk",
        Secret::new("sk"),
        "https://bob:hunter2@langfuse.example.com",
        Duration::from_secs(1),
    )
    .unwrap();
    let shown = format!("{exporter:?}");
    assert!(shown.contains("bob:***@") && !shown.contains("hunter2"), "{shown}");
}

#[test]
fn queue_and_batch_sizes_above_the_bound_name_the_variable_the_value_and_the_bound() {
    for var in ["OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] {
        for value in ["100000000000", "18446744073709551615", "340282366920938463463374607431768211456", "1048577"] {
            let err = error(TracingConfig::builder(), &[(var, value)]);
            assert_eq!(
                err,
                ConfigError::TooLarge { name: var.to_owned(), value: value.to_owned(), max: MAX_QUEUE_SIZE },
                "{var}={value}"
            );
            let message = err.to_string();
            assert!(message.contains(var) && message.contains(value) && message.contains("1048576"), "{message}");
        }
    }
    let err = TracingConfig::builder().max_queue_size(usize::MAX).build().unwrap_err();
    assert!(matches!(&err, ConfigError::TooLarge { name, .. } if name == "max_queue_size"), "{err:?}");
    let err = TracingConfig::builder().max_export_batch_size(MAX_QUEUE_SIZE + 1).build().unwrap_err();
    assert!(matches!(&err, ConfigError::TooLarge { name, .. } if name == "max_export_batch_size"), "{err:?}");

    let at_the_bound = [
        ("OTEL_BSP_MAX_QUEUE_SIZE", MAX_QUEUE_SIZE.to_string()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", MAX_QUEUE_SIZE.to_string()),
    ];
    TracingConfig::builder().from_vars(at_the_bound).unwrap();
}

#[test]
fn a_batch_larger_than_the_queue_is_refused_and_the_default_batch_is_lowered_to_a_small_queue() {
    let err = error(
        TracingConfig::builder(),
        &[("OTEL_BSP_MAX_QUEUE_SIZE", "10"), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512")],
    );
    assert_eq!(
        err,
        ConfigError::BatchLargerThanQueue { name: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE".to_owned(), batch: 512, queue: 10 }
    );
    let err = error(
        TracingConfig::builder(),
        &[("OTEL_BSP_MAX_QUEUE_SIZE", "2048"), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096")],
    );
    assert!(matches!(err, ConfigError::BatchLargerThanQueue { batch: 4096, queue: 2048, .. }), "{err:?}");
    let err = TracingConfig::builder().max_queue_size(10).max_export_batch_size(100).build().unwrap_err();
    assert!(matches!(&err, ConfigError::BatchLargerThanQueue { name, .. } if name == "max_export_batch_size"));

    // Only the queue was asked for: the default batch (1024) fits itself to it.
    TracingConfig::builder().from_vars([("OTEL_BSP_MAX_QUEUE_SIZE", "10")]).unwrap();
    TracingConfig::builder().max_queue_size(10).max_export_batch_size(10).build().unwrap();
}

#[test]
fn invalid_headers_are_refused_for_http_as_for_grpc_naming_the_header_never_its_value() {
    let bad = [
        ("bad header=s3cr3t", "bad header"),
        ("x-token=s3cr3t%0Abcc", "x-token"),
        ("x-token=caf%C3%A9-s3cr3t", "x-token"),
        ("x(token)=s3cr3t", "x(token)"),
    ];
    for protocol in PROTOCOLS {
        for var in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"] {
            for (value, header) in bad {
                let err = error(TracingConfig::builder(), &[("OTEL_EXPORTER_OTLP_PROTOCOL", protocol), (var, value)]);
                match &err {
                    ConfigError::InvalidHeader { name, header: h, .. } => {
                        assert_eq!((name.as_str(), h.as_str()), (var, header), "{err}");
                    }
                    other => panic!("{protocol} {var}={value}: {other:?}"),
                }
                assert!(!format!("{err} {err:?}").contains("s3cr3t"), "{err:?}");
            }
        }
        let protocol = if protocol == "grpc" { Protocol::Grpc } else { Protocol::HttpProtobuf };
        let err = TracingConfig::builder()
            .protocol(protocol)
            .otlp_headers(vec![("x-token".to_owned(), Secret::new("line\nbreak-s3cr3t"))])
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, ConfigError::InvalidHeader { name, header, .. } if name == "otlp_headers" && header == "x-token")
        );
        assert!(!format!("{err} {err:?}").contains("s3cr3t"), "{err:?}");
    }
    // gRPC keeps names ending in -bin for binary metadata; HTTP can send them.
    let vars = [("OTEL_EXPORTER_OTLP_HEADERS", "x-trace-bin=abc")];
    let err = error(TracingConfig::builder(), &vars);
    assert!(matches!(&err, ConfigError::InvalidHeader { header, .. } if header == "x-trace-bin"), "{err:?}");
    TracingConfig::builder().protocol(Protocol::HttpProtobuf).from_vars(vars).unwrap();
    TracingConfig::builder()
        .from_vars([("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20abc,x-tenant=acme")])
        .unwrap();
}

//! OTLP over TLS with certificates made by the test (a CA, a server
//! certificate for `localhost`, a client certificate): an exporter given
//! the CA delivers everything, over gRPC and HTTP; one without it sends
//! nothing and counts every span as failed, without trying again; a server
//! that asks for a client certificate gets one when the config names it
//! (mutual TLS) and refuses the exporter otherwise. The OpenTelemetry
//! variables (`OTEL_EXPORTER_OTLP_CERTIFICATE`, `_CLIENT_CERTIFICATE`,
//! `_CLIENT_KEY`, and their `_TRACES_` forms, which win) do the same as the
//! builder. TLS files given with a plain `http://` endpoint are an error,
//! not an export in clear.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{SPANS_PER_RUN, WAIT, otlp, run_and_shut_down};
use pocketflow_test_support::otlp::OtlpReceiver;
use pocketflow_test_support::tls::TestPki;
use pocketflow_tracing::{ConfigError, ExporterKind, Protocol, ShutdownReport, TracingConfig, TracingConfigBuilder};

const RUNS: usize = 3;
const PRODUCED: u64 = (RUNS * SPANS_PER_RUN) as u64;

/// Runs [`RUNS`] flows under `config` and shuts down. Nothing is exported
/// before the shutdown, so the spans go in one batch.
fn run(config: TracingConfigBuilder) -> ShutdownReport {
    let config = config.export_timeout(Duration::from_secs(5)).scheduled_delay(Duration::from_secs(3600));
    run_and_shut_down(config.build().unwrap(), RUNS)
}

fn receiver(protocol: Protocol, pki: &TestPki, mutual: bool) -> OtlpReceiver {
    let tls = if mutual { pki.server_requiring_client_certs() } else { pki.server() };
    match protocol {
        Protocol::Grpc => OtlpReceiver::grpc_tls(&tls).unwrap(),
        _ => OtlpReceiver::https(&tls).unwrap(),
    }
}

fn assert_delivered(report: &ShutdownReport, receiver: &OtlpReceiver) {
    assert_eq!(report.stats.exported, PRODUCED, "{report}");
    assert_eq!(report.stats.dropped, 0, "{report}");
    assert_eq!(receiver.wait_for_spans(PRODUCED as usize, WAIT).len() as u64, PRODUCED);
}

fn assert_refused(report: &ShutdownReport, receiver: &OtlpReceiver) {
    assert_eq!(report.stats.exported, 0, "{report}");
    assert_eq!(report.stats.failed_export, PRODUCED, "every span is counted as failed: {report}");
    assert!(receiver.spans().is_empty(), "spans arrived over an untrusted connection");
}

#[test]
fn with_the_ca_everything_arrives_over_grpc_and_http() {
    let pki = TestPki::new().unwrap();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = receiver(protocol, &pki, false);
        assert!(receiver.endpoint().starts_with("https://"));
        let report = run(otlp(&receiver.endpoint(), protocol).otlp_certificate(pki.ca_path()));
        assert_delivered(&report, &receiver);
    }
}

#[test]
fn without_the_ca_nothing_is_sent_and_it_is_tried_once() {
    let pki = TestPki::new().unwrap();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = receiver(protocol, &pki, false);
        let report = run(otlp(&receiver.endpoint(), protocol));
        assert_refused(&report, &receiver);
    }
    // The HTTP receiver sees each handshake: one, not one per retry.
    let receiver = receiver(Protocol::HttpProtobuf, &pki, false);
    run(otlp(&receiver.endpoint(), Protocol::HttpProtobuf));
    let failures = receiver.tls_failures();
    assert_eq!(failures.len(), 1, "an untrusted certificate was tried again: {failures:?}");
}

#[test]
fn a_ca_that_did_not_sign_the_server_certificate_is_not_trusted() {
    let pki = TestPki::new().unwrap();
    let other = TestPki::new().unwrap();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = receiver(protocol, &pki, false);
        let report = run(otlp(&receiver.endpoint(), protocol).otlp_certificate(other.ca_path()));
        assert_refused(&report, &receiver);
    }
}

#[test]
fn mutual_tls_delivers_with_the_client_certificate_and_is_refused_without() {
    let pki = TestPki::new().unwrap();
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = receiver(protocol, &pki, true);
        let report = run(otlp(&receiver.endpoint(), protocol)
            .otlp_certificate(pki.ca_path())
            .otlp_client_certificate(pki.client_cert_path())
            .otlp_client_key(pki.client_key_path()));
        assert_delivered(&report, &receiver);

        let receiver = self::receiver(protocol, &pki, true);
        let report = run(otlp(&receiver.endpoint(), protocol).otlp_certificate(pki.ca_path()));
        assert_refused(&report, &receiver);
    }
}

#[test]
fn the_opentelemetry_variables_configure_mutual_tls() {
    let pki = TestPki::new().unwrap();
    let path = |p: std::path::PathBuf| p.display().to_string();
    for (protocol, name) in [(Protocol::Grpc, "grpc"), (Protocol::HttpProtobuf, "http/protobuf")] {
        let receiver = receiver(protocol, &pki, true);
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", name.to_owned()),
            // The _TRACES_ form wins: the general one is never read.
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem".to_owned()),
            ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", path(pki.ca_path())),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", path(pki.client_cert_path())),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", path(pki.client_key_path())),
        ];
        let config = TracingConfig::builder()
            .exporters(vec![ExporterKind::Otlp])
            .export_timeout(Duration::from_secs(5))
            .scheduled_delay(Duration::from_secs(3600))
            .from_vars(vars)
            .unwrap();
        assert_delivered(&run_and_shut_down(config, RUNS), &receiver);
    }
}

#[test]
fn tls_files_with_a_plain_endpoint_are_an_error_naming_the_setting() {
    let pki = TestPki::new().unwrap();
    let error = otlp("http://localhost:4317", Protocol::Grpc).otlp_certificate(pki.ca_path()).build().unwrap_err();
    assert!(matches!(&error, ConfigError::TlsNeedsHttps { name, .. } if name == "otlp_certificate"), "{error}");

    let error = TracingConfig::builder()
        .from_vars([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.internal:4317".to_owned()),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", pki.client_cert_path().display().to_string()),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", pki.client_key_path().display().to_string()),
        ])
        .unwrap_err();
    assert!(error.to_string().contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"), "{error}");
    assert!(error.to_string().contains("https://"), "{error}");
}

#[test]
fn unusable_tls_files_are_errors_naming_the_variable_and_the_path() {
    let pki = TestPki::new().unwrap();
    let not_a_cert = pki.dir().join("notes.txt");
    std::fs::write(&not_a_cert, "hello").unwrap();
    let cases = [
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.dir().join("missing.pem"), "cannot be read"),
        ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", not_a_cert.clone(), "no PEM certificate"),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", pki.client_cert_path(), "not a private key"),
    ];
    for (var, path, problem) in cases {
        let mut vars = vec![("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), "https://localhost:4317".to_owned())];
        if var.contains("CLIENT_KEY") {
            vars.push((
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE".to_owned(),
                pki.client_cert_path().display().to_string(),
            ));
        }
        vars.push((var.to_owned(), path.display().to_string()));
        let error = TracingConfig::builder().from_vars(vars).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, ConfigError::TlsFile { .. }), "{var}: {error:?}");
        assert!(text.contains(var) && text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(problem), "{var}: {text}");
    }

    let error = TracingConfig::builder()
        .otlp_endpoint("https://localhost:4317")
        .otlp_client_key(pki.client_key_path())
        .build()
        .unwrap_err();
    assert!(matches!(error, ConfigError::ClientCertificateHalf { .. }), "{error:?}");
    assert!(!format!("{error:?}").contains("PRIVATE KEY"));
}

//! `python_otel_grpc`, `python_otel_http`: the same 10-node chain in Python
//! PocketFlow (PyPI `pocketflow` 0.0.3) with the OpenTelemetry Python SDK,
//! to the same real collector as `collector_grpc`/`collector_http`, so that
//! one run gives the ratio. The script is `python/loop_flow_otel.py`; the
//! interpreter is `POCKETFLOW_BENCH_PYTHON`, else `python3`, and it must
//! import `pocketflow` and the SDK's OTLP exporters (else the case is
//! skipped, saying how to install them).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::cases::CaseError;
use crate::collector::{self, Collector};
use crate::report::{Record, ms, rate};

/// How long the collector may take to count what the SDK sent.
const ARRIVAL: Duration = Duration::from_secs(5);

/// What the script prints.
#[derive(Debug, Deserialize)]
struct ScriptLine {
    spans: u64,
    produce_seconds: f64,
    ns_per_span: f64,
}

fn interpreter() -> PathBuf {
    std::env::var_os("POCKETFLOW_BENCH_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from)
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python").join("loop_flow_otel.py")
}

/// Whether `python` can run the script; the reason when it cannot.
fn usable(python: &PathBuf) -> Result<(), String> {
    let probe = Command::new(python)
        .args(["-c", "import pocketflow, opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http"])
        .output();
    match probe {
        Ok(output) if output.status.success() => Ok(()),
        _ => Err(format!(
            "{} cannot import pocketflow and the OpenTelemetry SDK; set POCKETFLOW_BENCH_PYTHON to a Python with \
             `pip install pocketflow==0.0.3 opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc \
             opentelemetry-exporter-otlp-proto-http`",
            python.display()
        )),
    }
}

/// Runs `flows` chains in Python against the real collector over `protocol`
/// (`grpc` or `http`).
pub(crate) fn python_case(case: &str, protocol: &str, flows: u64) -> Result<Record, CaseError> {
    let binary = match collector::find_binary() {
        Ok(binary) => binary,
        Err(reason) => return Ok(Record::skipped(case, reason)),
    };
    let python = interpreter();
    if let Err(reason) = usable(&python) {
        return Ok(Record::skipped(case, reason));
    }
    let collector = Collector::start(&binary, case)?;
    let endpoint = if protocol == "http" { collector.http_endpoint() } else { collector.grpc_endpoint() };
    let start = Instant::now();
    let output = Command::new(&python)
        .arg(script())
        .args(["--flows", &flows.to_string(), "--endpoint", &endpoint, "--protocol", protocol])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .output()?;
    let finished = start.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|line| line.starts_with('{'));
    let parsed: ScriptLine = match line.map(serde_json::from_str) {
        Some(Ok(parsed)) if output.status.success() => parsed,
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(CaseError::Check(format!("the Python script failed: {stdout} {stderr}")));
        }
    };
    // The SDK has shut down (it flushes); what it sent is counted once it
    // settles at the collector.
    let delivered = collector.wait_for_accepted(parsed.spans, ARRIVAL)?;
    let mut record = Record::new(case);
    record.runs = Some(flows);
    record.spans = Some(parsed.spans);
    record.ns_per_span = Some(parsed.ns_per_span);
    record.delivered = Some(delivered);
    record.dropped = Some(parsed.spans.saturating_sub(delivered));
    record.spans_per_sec = rate(delivered, finished);
    record.run_ms = Some(parsed.produce_seconds * 1000.0);
    record.deliver_ms = Some(ms(finished));
    record.note = Some("dropped = created - delivered (the SDK does not count its drops)".to_owned());
    Ok(record)
}

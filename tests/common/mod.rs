//! Running the example binaries as a user runs them: built by `cargo test`,
//! configured only by environment variables.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The built example `name`.
pub fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let debug = deps.parent().and_then(|d| d.parent()).unwrap();
    let binary = debug.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run this through `cargo test`, which builds the examples",
        binary.display()
    );
    binary
}

/// Runs example `name` with exactly `vars` as its tracing environment and
/// checks that it succeeded.
pub fn run_example(name: &str, vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(example(name));
    for (var, _) in std::env::vars() {
        if var.starts_with("OTEL_") || var.starts_with("LANGFUSE_") || var.starts_with("POCKETFLOW_") {
            command.env_remove(var);
        }
    }
    command.envs(vars.iter().copied());
    let output = command.output().unwrap();
    assert!(output.status.success(), "{name} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Runs `work` with a `PocketflowLayer` exporting to an in-process OTLP/gRPC
/// receiver as this thread's subscriber (with `configure` applied to the
/// config), shuts tracing down, and returns the traces received.
pub fn export<R>(
    configure: impl FnOnce(pocketflow_tracing::TracingConfigBuilder) -> pocketflow_tracing::TracingConfigBuilder,
    work: impl FnOnce() -> R,
) -> (R, Vec<pocketflow_test_support::otlp::ReceivedTrace>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let receiver = pocketflow_test_support::otlp::OtlpReceiver::grpc().unwrap();
    let builder = pocketflow_tracing::TracingConfig::builder()
        .exporters(vec![pocketflow_tracing::ExporterKind::Otlp])
        .protocol(pocketflow_tracing::Protocol::Grpc)
        .otlp_endpoint(receiver.endpoint());
    let (layer, guard) = configure(builder).build().unwrap().layer().unwrap();
    let result = tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), work);
    let report = guard.shutdown();
    assert!(report.completed, "{report}");
    assert_eq!(report.stats.dropped, 0, "{report}");
    let exported = usize::try_from(report.stats.exported).unwrap();
    let spans = receiver.wait_for_spans(exported, std::time::Duration::from_secs(10));
    assert_eq!(spans.len(), exported, "every exported span arrived");
    (result, receiver.traces())
}

/// Runs `future` to its end on a current-thread runtime with a paused clock.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(future)
}

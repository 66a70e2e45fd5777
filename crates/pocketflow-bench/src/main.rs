//! Runs every benchmark case of the pocketflow engine and its tracing
//! layer in one process and prints one JSON object per case on stdout.
//!
//! ```text
//! cargo run --release -p pocketflow-bench -- --quick      # < 2 min on 2 cores
//! cargo run --release -p pocketflow-bench                 # bigger sizes
//! cargo run --release -p pocketflow-bench -- --only long_run,layer_noop
//! ```
//!
//! See this crate's README for what each case measures.

mod cases;
mod collector;
mod plots;
mod python;
mod report;
mod workload;

use std::process::ExitCode;

use pocketflow_tracing::Protocol;

use cases::{CaseError, Sizes};
use report::Record;

/// Every case, in the order they run. The engine cases come first, before
/// any dispatcher exists, so that every callsite is off for them (as in
/// the criterion bench); the long run comes next, so that its peak memory
/// starts from a small heap.
const CASES: [&str; 15] = [
    "engine_sync",
    "engine_async",
    "long_run",
    "layer_noop",
    "layer_noop_phases_off",
    "tracing_opentelemetry_noop",
    "layer_otlp_grpc",
    "layer_otlp_http",
    "collector_grpc",
    "collector_http",
    "burst_5000_flows",
    "concurrent_1000",
    "store_10mb",
    "python_otel_grpc",
    "python_otel_http",
];

const USAGE: &str = "usage: pocketflow-bench [--quick] [--only CASE[,CASE...]] [--plots DIR]\n\
    cases: engine_sync engine_async long_run layer_noop layer_noop_phases_off tracing_opentelemetry_noop layer_otlp_grpc \
    layer_otlp_http collector_grpc collector_http burst_5000_flows concurrent_1000 store_10mb python_otel_grpc \
    python_otel_http\n\
    collector cases use $POCKETFLOW_OTELCOL or target/otel/pocketflow-otelcol";

/// What the command line asked for.
#[derive(Debug, PartialEq)]
struct Args {
    quick: bool,
    only: Option<Vec<String>>,
    /// Run the sweeps and write their SVG plots here, instead of the cases.
    plots: Option<std::path::PathBuf>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args { quick: false, only: None, plots: None };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => parsed.quick = true,
            "--only" => {
                let list = args.next().ok_or("--only needs a list of cases")?;
                let names: Vec<String> = list.split(',').map(str::to_owned).collect();
                if let Some(unknown) = names.iter().find(|name| !CASES.contains(&name.as_str())) {
                    return Err(format!("unknown case {unknown:?}"));
                }
                parsed.only = Some(names);
            }
            "--plots" => parsed.plots = Some(args.next().ok_or("--plots needs a directory")?.into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sizes = if args.quick { Sizes::QUICK } else { Sizes::FULL };
    if let Some(dir) = &args.plots {
        pocketflow_test_support::keep_interest_dynamic();
        return match plots::write_plots(dir, args.quick) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("pocketflow-bench: plots: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let wanted = |case: &str| args.only.as_ref().is_none_or(|only| only.iter().any(|name| name == case));
    let mut failed = false;
    let mut traced_ready = false;
    for case in CASES {
        if !wanted(case) {
            continue;
        }
        let is_engine = case.starts_with("engine_");
        if !is_engine && !traced_ready {
            // From here on every callsite asks the current thread's
            // subscriber (the interest the receivers and `Capture` would
            // set anyway): every traced case runs under the same rule.
            pocketflow_test_support::keep_interest_dynamic();
            if let Err(error) = cases::check_chain() {
                failed = true;
                print(&Record::failed("check_chain", error));
                break;
            }
            traced_ready = true;
        }
        eprintln!("pocketflow-bench: {case}…");
        let record = run(case, sizes).unwrap_or_else(|error| {
            failed = true;
            Record::failed(case, error)
        });
        print(&record);
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn run(case: &str, sizes: Sizes) -> Result<Record, CaseError> {
    match case {
        "engine_sync" => cases::engine_sync(sizes),
        "engine_async" => cases::engine_async(sizes),
        "long_run" => cases::long_run(sizes),
        "layer_noop" => cases::layer_noop(sizes),
        "layer_noop_phases_off" => cases::layer_noop_phases_off(sizes),
        "store_10mb" => cases::store_10mb(sizes),
        "tracing_opentelemetry_noop" => cases::tracing_opentelemetry_noop(sizes),
        "layer_otlp_grpc" => cases::layer_otlp(case, Protocol::Grpc, sizes.chain_runs),
        "layer_otlp_http" => cases::layer_otlp(case, Protocol::HttpProtobuf, sizes.chain_runs),
        "collector_grpc" => cases::collector_case(case, Protocol::Grpc, sizes.chain_runs),
        "collector_http" => cases::collector_case(case, Protocol::HttpProtobuf, sizes.chain_runs),
        "burst_5000_flows" => cases::layer_otlp(case, Protocol::Grpc, sizes.burst_flows),
        "concurrent_1000" => cases::concurrent(sizes),
        "python_otel_grpc" => python::python_case(case, "grpc", sizes.burst_flows),
        "python_otel_http" => python::python_case(case, "http", sizes.burst_flows),
        other => Err(CaseError::Check(format!("no case {other}"))),
    }
}

fn print(record: &Record) {
    if let Err(error) = record.print() {
        eprintln!("pocketflow-bench: cannot write to stdout: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn the_command_line_is_read() {
        assert_eq!(args(&[]), Ok(Args { quick: false, only: None, plots: None }));
        assert_eq!(
            args(&["--quick", "--only", "long_run,layer_noop"]),
            Ok(Args { quick: true, only: Some(vec!["long_run".into(), "layer_noop".into()]), plots: None })
        );
        assert_eq!(args(&["--plots", "docs/images"]).map(|a| a.plots), Ok(Some("docs/images".into())));
        assert!(args(&["--plots"]).is_err());
        assert!(args(&["--only", "nope"]).is_err());
        assert!(args(&["--only", "check_chain"]).is_err());
        assert!(args(&["--only"]).is_err());
        assert!(args(&["--slow"]).is_err());
    }
}

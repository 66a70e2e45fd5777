//! The end-to-end run on the real binaries: the repository's examples export
//! OTLP to the OpenTelemetry Collector built from `collector/`, started with
//! the files of `collector-config/` as they are (only endpoints, ports and
//! directories come from the environment); the collector forwards to a real
//! Jaeger v2 and to a Langfuse-contract receiver; the traces are read back
//! and checked. Three scenarios:
//!
//! 1. **through the agent** (`agent.yaml`): every span of every exporting
//!    example (one run each) reaches the Langfuse-contract receiver under Langfuse's contract, and
//!    each trace reads back whole from Jaeger's query API (one root, the same
//!    parentage, names, service, attributes, events as span logs);
//! 2. **Langfuse outage**: the receiver is down for 10 s while examples run
//!    and the agent is restarted; when it is back, everything arrives from
//!    the agent's persistent queue, and Jaeger never missed a span;
//! 3. **scale-out** (`agent-loadbalancing.yaml` in front of two
//!    `gateway.yaml`): each trace arrives whole at exactly one gateway, and
//!    the two together hold every span.
//!
//! Usage (e2e/run.sh builds the binaries and passes them):
//!
//! ```text
//! pocketflow-e2e --collector BIN --jaeger BIN --examples DIR --exporting-examples A,B,.. --work DIR
//! ```

mod check;
mod examples;
mod jaeger;
mod langfuse;
mod scenarios;
mod services;

use std::path::PathBuf;
use std::process::ExitCode;

use examples::Examples;

/// Why the run failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum E2eError {
    /// An operating-system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A service did not start or stop.
    #[error("{name} {what}; the end of its log:\n{log_tail}")]
    Service {
        /// The service.
        name: String,
        /// What went wrong.
        what: String,
        /// The end of its log.
        log_tail: String,
    },
    /// A check failed.
    #[error("{0}")]
    Check(String),
    /// The command line is wrong.
    #[error(
        "{0}\nusage: pocketflow-e2e --collector BIN --jaeger BIN --examples DIR --exporting-examples A,B,.. --work DIR"
    )]
    Usage(String),
}

/// What the run needs from its caller.
#[derive(Debug)]
pub(crate) struct Setup {
    /// `collector-config/`.
    pub(crate) configs: PathBuf,
    /// Jaeger's test config.
    pub(crate) jaeger_config: PathBuf,
    /// The collector binary.
    pub(crate) collector: PathBuf,
    /// The Jaeger binary.
    pub(crate) jaeger: PathBuf,
    /// The built examples.
    pub(crate) examples: Examples,
    /// The examples that export (those that install tracing with
    /// `pocketflow_tracing::init()`), all run through the agent.
    pub(crate) exporting_examples: Vec<String>,
    /// Logs and queue directories.
    pub(crate) work: PathBuf,
}

impl Setup {
    fn from_args() -> Result<Self, E2eError> {
        let mut args = std::env::args().skip(1);
        let (mut collector, mut jaeger, mut examples, mut work, mut exporting) = (None, None, None, None, None);
        while let Some(flag) = args.next() {
            let slot = match flag.as_str() {
                "--collector" => &mut collector,
                "--jaeger" => &mut jaeger,
                "--examples" => &mut examples,
                "--work" => &mut work,
                "--exporting-examples" => &mut exporting,
                other => return Err(E2eError::Usage(format!("unknown argument {other:?}"))),
            };
            let value = args.next().ok_or_else(|| E2eError::Usage(format!("{flag} needs a value")))?;
            *slot = Some(PathBuf::from(value));
        }
        let need =
            |value: Option<PathBuf>, flag: &str| value.ok_or_else(|| E2eError::Usage(format!("{flag} is missing")));
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let work = need(work, "--work")?;
        std::fs::create_dir_all(&work)
            .map_err(|source| E2eError::Io { what: format!("creating {}", work.display()), source })?;
        Ok(Self {
            configs: repo.join("collector-config"),
            jaeger_config: repo.join("e2e/jaeger/config.yaml"),
            collector: need(collector, "--collector")?,
            jaeger: need(jaeger, "--jaeger")?,
            examples: Examples::new(need(examples, "--examples")?),
            exporting_examples: need(exporting, "--exporting-examples")?
                .to_string_lossy()
                .split(',')
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect(),
            work,
        })
    }
}

fn main() -> ExitCode {
    let outcome = Setup::from_args().and_then(|setup| scenarios::run_all(&setup));
    match outcome {
        Ok(()) => {
            println!("e2e-collector: every check passed");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("e2e-collector: FAIL: {error}");
            ExitCode::FAILURE
        }
    }
}

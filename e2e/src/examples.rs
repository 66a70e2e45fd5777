//! Runs the repository's examples as a user does: the built example
//! binary, configured only by environment variables, exporting OTLP.

use std::path::PathBuf;
use std::process::Command;

use crate::E2eError;

/// One finished example run.
#[derive(Debug, Clone)]
pub(crate) struct ExampleRun {
    /// Spans the example says it exported (its shutdown line).
    pub(crate) exported: usize,
}

/// The directory of built examples (`target/debug/examples`).
#[derive(Debug, Clone)]
pub(crate) struct Examples {
    dir: PathBuf,
}

impl Examples {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Runs `name` exporting OTLP to `endpoint` (`protocol` as
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` spells it) as service `service_name`,
    /// and checks that it finished and dropped nothing.
    pub(crate) fn run(
        &self,
        name: &str,
        endpoint: &str,
        protocol: &str,
        service_name: &str,
    ) -> Result<ExampleRun, E2eError> {
        self.run_with(name, endpoint, protocol, service_name, &[])
    }

    /// [`Self::run`] with more environment variables.
    pub(crate) fn run_with(
        &self,
        name: &str,
        endpoint: &str,
        protocol: &str,
        service_name: &str,
        extra: &[(&str, &str)],
    ) -> Result<ExampleRun, E2eError> {
        let program = self.dir.join(name);
        let mut command = Command::new(&program);
        command.env_clear();
        for key in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        let output = command
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env("OTEL_SERVICE_NAME", service_name)
            .envs(extra.iter().copied())
            .output()
            .map_err(|source| E2eError::Io { what: format!("running {}", program.display()), source })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(E2eError::Check(format!("example {name} failed ({}):\n{stderr}", output.status)));
        }
        let exported = shutdown_counts(&stderr).ok_or_else(|| {
            E2eError::Check(format!("example {name} printed no `tracing shut down:` line:\n{stderr}"))
        })?;
        match exported {
            (exported, 0) if exported > 0 => Ok(ExampleRun { exported }),
            (exported, dropped) => Err(E2eError::Check(format!(
                "example {name} exported {exported} span(s) and dropped {dropped}:\n{stderr}"
            ))),
        }
    }

    /// Whether the example binary exists.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.dir.join(name).is_file()
    }
}

/// `(exported, dropped)` from `tracing shut down: N spans exported, M dropped`.
fn shutdown_counts(stderr: &str) -> Option<(usize, usize)> {
    let line = stderr.lines().rev().find_map(|line| line.strip_prefix("tracing shut down: "))?;
    let (exported, rest) = line.split_once(" spans exported, ")?;
    let dropped = rest.split_whitespace().next()?;
    Some((exported.parse().ok()?, dropped.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::shutdown_counts;

    #[test]
    fn reads_the_shutdown_line() {
        let stderr = "trace abc\nTicketTriage\ntracing shut down: 26 spans exported, 0 dropped\n";
        assert_eq!(shutdown_counts(stderr), Some((26, 0)));
        let failed = "tracing shut down: 3 spans exported, 2 dropped (0 queue full, 2 export failed, 0 unflushed)";
        assert_eq!(shutdown_counts(failed), Some((3, 2)));
        assert_eq!(shutdown_counts("no such line"), None);
    }
}

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

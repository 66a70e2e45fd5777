//! Every example in `examples/` runs to success as a user runs it: the
//! built binary, in a scrubbed environment (no `OTEL_*`, `LANGFUSE_*` or
//! `POCKETFLOW_*` from the caller), so each one that installs tracing with
//! `pocketflow_tracing::init()` prints its trace as a tree on stderr and
//! ends with a shutdown line that dropped nothing.
//!
//! The examples are found by listing the directory, so a new example is
//! covered without touching this file. The test runs `cargo build
//! --examples` first (a no-op when they are up to date), so it never runs a
//! binary older than the code it was built from, also when run alone
//! (`cargo test --test examples_run`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A safety net against an example that hangs, not a timing assertion:
/// each example finishes in well under a second.
const HANG: Duration = Duration::from_secs(120);

/// An example: its name and source file.
struct Example {
    name: String,
    source: PathBuf,
}

/// Every example target in `examples/`: `NAME.rs`, or `NAME/main.rs`.
fn examples() -> Vec<Example> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut found: Vec<Example> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter_map(|path| {
            if path.extension().is_some_and(|ext| ext == "rs") {
                let name = path.file_stem()?.to_str()?.to_owned();
                Some(Example { name, source: path })
            } else if path.join("main.rs").is_file() {
                let name = path.file_name()?.to_str()?.to_owned();
                Some(Example { name, source: path.join("main.rs") })
            } else {
                None
            }
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// The profile directory this test was built into (`<target>/debug`):
/// the test binary is `<target>/<profile>/deps/examples_run-<hash>`,
/// wherever `CARGO_TARGET_DIR` (or its absence) put `<target>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("unexpected test path {}", exe.display()))
}

fn binary(profile_dir: &Path, name: &str) -> PathBuf {
    profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Whether cargo set `var` for this test (the variables it gives a crate),
/// rather than the caller for cargo. Handing these to a nested cargo
/// would make build scripts that watch them (ring watches
/// `CARGO_MANIFEST_DIR`) rerun, and rebuild their dependents twice, once
/// here and once in the next outer build.
fn set_by_cargo_for_the_test(var: &str) -> bool {
    const EXACT: [&str; 9] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    EXACT.contains(&var) || var.starts_with("CARGO_PKG_") || var.starts_with("CARGO_BIN_EXE_")
}

/// Builds the examples with the cargo running this test (`CARGO`), in the
/// caller's environment (this test's, less what cargo added for it), so it
/// uses the same target directory, flags and toolchain, and for the
/// profile this test was built with.
fn build_examples(profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command.current_dir(env!("CARGO_MANIFEST_DIR")).args(["build", "--examples", "-p", env!("CARGO_PKG_NAME")]);
    for (var, _) in std::env::vars_os() {
        if var.to_str().is_some_and(set_by_cargo_for_the_test) {
            command.env_remove(var);
        }
    }
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let output = command.output().unwrap_or_else(|error| panic!("cannot run cargo to build the examples: {error}"));
    assert!(output.status.success(), "cargo build --examples failed:\n{}", String::from_utf8_lossy(&output.stderr));
}

/// What one run of an example printed; `status` is `None` if it hung.
struct Run {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            pipe.read_to_end(&mut bytes).unwrap();
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `binary` with nothing of this process's environment but what finds
/// programs and the home directory.
fn run(binary: &Path) -> Run {
    let mut command = Command::new(binary);
    command.env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for var in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(var) {
            command.env(var, value);
        }
    }
    let mut child = command.spawn().unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
    let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > HANG {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    Run { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

/// What is wrong with an example's run, if anything. An example whose
/// source installs tracing with `pocketflow_tracing::init()` must print the
/// console trace: a `trace …` header line, and as its last line on stderr
/// the shutdown report with nothing dropped.
fn problems(example: &Example, run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    match run.status {
        None => problems.push(format!("still running after {HANG:?}; killed")),
        Some(status) if !status.success() => problems.push(format!("exited with {status}")),
        Some(_) => {}
    }
    let source = std::fs::read_to_string(&example.source).unwrap();
    if source.contains("pocketflow_tracing::init()") {
        let lines: Vec<&str> = run.stderr.lines().filter(|line| !line.trim().is_empty()).collect();
        let header = lines.iter().position(|line| line.starts_with("trace "));
        let last = lines.last().copied().unwrap_or_default();
        if header.is_none() {
            problems.push("no console trace (a line starting with `trace `) on stderr".to_owned());
        }
        if !(last.starts_with("tracing shut down: ") && last.ends_with(" spans exported, 0 dropped")) {
            problems.push(format!(
                "stderr does not end with `tracing shut down: … spans exported, 0 dropped`; its last line: {last:?}"
            ));
        }
    }
    problems
}

#[test]
fn every_example_runs_and_prints_its_trace() {
    let examples = examples();
    assert!(examples.iter().any(|e| e.name == "quickstart"), "examples/ not found or without the quickstart");

    let profile_dir = profile_dir();
    // Always: cargo knows whether the binaries are up to date with the
    // examples and with every crate they use (a no-op when they are).
    build_examples(&profile_dir);

    let mut report = String::new();
    for example in &examples {
        let binary = binary(&profile_dir, &example.name);
        assert!(binary.is_file(), "{} was not built at {}", example.name, binary.display());
        let run = run(&binary);
        let problems = problems(example, &run);
        if !problems.is_empty() {
            let _ = writeln!(report, "== {}: {}", example.name, problems.join("; "));
            let _ = writeln!(report, "-- stdout:\n{}\n-- stderr:\n{}", run.stdout, run.stderr);
        }
    }
    assert!(report.is_empty(), "examples failed:\n{report}");
}

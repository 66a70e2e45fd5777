//! Off a terminal the default `BatchProgress` is inert: with stderr piped
//! (as in CI logs, or `2> file`), it draws nothing, even for a batch, and
//! writes nothing to stderr. The test runs itself again as a child process
//! whose stderr is a pipe, so the answer does not depend on where the test
//! harness's own stderr goes.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};

use pocketflow::{BatchNode, BoxError, Ctx, SharedStore};
use pocketflow_tracing::BatchProgress;
use tracing_subscriber::layer::SubscriberExt;

/// Set in the child process.
const CHILD: &str = "POCKETFLOW_PROGRESS_INERT_CHILD";
const TEST: &str = "the_default_layer_is_inert_when_stderr_is_piped";

struct Items(u64);

impl BatchNode for Items {
    type Item = u64;
    type Output = u64;
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok((0..self.0).collect())
    }
    fn exec(&self, _: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
        Ok(*item)
    }
}

#[test]
fn the_default_layer_is_inert_when_stderr_is_piped() {
    if std::env::var_os(CHILD).is_some() {
        let progress = BatchProgress::new();
        println!("active={}", progress.is_active());
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(progress));
        Items(100).run(&SharedStore::new()).unwrap();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove("CI")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(stdout.contains("active=false"), "{stdout}");
    assert!(stderr.is_empty(), "nothing drawn on a piped stderr: {stderr:?}");
}

#[test]
fn an_inert_layer_says_so() {
    assert!(!BatchProgress::inert().is_active());
}

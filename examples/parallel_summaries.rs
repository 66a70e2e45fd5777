//! Summarize documents concurrently with an `AsyncParallelBatchNode`, at
//! most three at a time, and watch the spans go by on a `tracing` `fmt`
//! subscriber: any subscriber sees the engine's spans, no setup in the nodes.
//!
//! ```text
//! cargo run --example parallel_summaries
//! ```
#![allow(missing_docs)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pocketflow::{Action, AsyncFlow, AsyncParallelBatchNode, BoxError, Ctx, SharedStore};
use tracing_subscriber::fmt::format::FmtSpan;

/// Stands in for a model call: takes 100 ms, then "summarizes".
async fn summarize(text: &str) -> String {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    format!("{}…", words.join(" "))
}

struct SummarizeAll;

impl AsyncParallelBatchNode for SummarizeAll {
    type Item = String;
    type Output = String;

    fn max_concurrency(&self) -> Option<usize> {
        Some(3)
    }

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<String>, BoxError> {
        Ok(shared.get("documents")?)
    }

    async fn exec(&self, _: &Ctx<'_>, text: &String) -> Result<String, BoxError> {
        Ok(summarize(text).await)
    }

    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: Vec<String>,
        out: Vec<String>,
    ) -> Result<Action, BoxError> {
        shared.set("summaries", out)?;
        Ok(Action::NONE)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // One line per span as it closes, with its fields and duration.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_span_events(FmtSpan::CLOSE)
        .with_target(false)
        .without_time()
        .init();

    let documents: Vec<String> = (1..=6).map(|i| format!("doc{i} on concurrency")).collect();
    let shared = SharedStore::new();
    if let Err(error) = shared.set("documents", documents) {
        eprintln!("cannot store the documents: {error}");
        return ExitCode::FAILURE;
    }

    let mut flow = AsyncFlow::named("ParallelSummaries");
    flow.start(SummarizeAll);

    let started = Instant::now();
    match flow.run(&shared).await {
        Ok(_) => {
            // Six 100 ms calls, three at a time: about 200 ms, not 600 ms.
            println!("summarized 6 documents in {:?}", started.elapsed());
            println!("summaries: {}", shared.get_value("summaries").unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("flow failed: {error}");
            ExitCode::FAILURE
        }
    }
}

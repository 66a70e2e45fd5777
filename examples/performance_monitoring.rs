//! The async migration guide's "Advanced Features 4. Performance
//! Monitoring": how long a flow and each of its nodes took, split into
//! time running and time suspended (waiting on I/O, timers, other tasks),
//! printed as a table, and a warning for a slow run.
//!
//! It replaces this Python:
//!
//! ```python
//! @trace_flow(flow_name="MonitoredFlow")
//! class MonitoredFlow(AsyncFlow):
//!     async def prep_async(self, shared):
//!         shared["start_time"] = time.time()
//!         return await super().prep_async(shared)
//!     async def post_async(self, shared, prep_res, exec_res):
//!         duration = time.time() - shared["start_time"]
//!         if duration > 5.0:
//!             print(f"⚠️ Slow execution detected: {duration:.2f}s")
//!         return await super().post_async(shared, prep_res, exec_res)
//! ```
//!
//! In Rust nothing is timed by hand: `run_report` (or `run_with`) returns a
//! [`RunStats`] with one [`NodeStats`] per flow, node and batch node's items,
//! however many times each ran (a loop's node is one entry), with its
//! polls, suspensions, and running and suspended time (total, min, max,
//! mean). The same figures are on each span (`pocketflow.lifecycle.*`).
//! To have the tracer flag slow spans too, add
//! `POCKETFLOW_PERFORMANCE_MONITORING=true POCKETFLOW_SLOW_NODE_THRESHOLD_MS=25`:
//! the tree then shows a 🐢 line on each slow node.
//!
//! Last, it prints the flow's graph as a Mermaid flowchart annotated with
//! the same statistics (`to_mermaid_with_stats`): paste it into any Mermaid
//! renderer (a ```` ```mermaid ```` block on GitHub) to see where the time went.
//! The trace's root span carries it too (`pocketflow.flow.graph`).
//!
//! ```text
//! cargo run --example performance_monitoring
//! POCKETFLOW_PERFORMANCE_MONITORING=true POCKETFLOW_SLOW_NODE_THRESHOLD_MS=25 cargo run --example performance_monitoring
//! ```
#![allow(missing_docs)]

use std::process::ExitCode;
use std::time::Duration;

use pocketflow::{
    Action, AsyncFlow, AsyncNode, AsyncParallelBatchNode, BoxError, Ctx, Node, NodeStats, RunStats, Scope, SharedStore,
    trace_flow,
};

/// The guide's 5 s, scaled to this example's timings.
const SLOW_RUN: Duration = Duration::from_millis(60);

/// Splits the documents into words: sync, CPU only, never suspends.
struct Tokenize;

impl Node for Tokenize {
    type Prep = Vec<String>;
    type Exec = Vec<Vec<String>>;

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<String>, BoxError> {
        Ok(shared.get("documents")?)
    }

    fn exec(&self, _: &Ctx<'_>, documents: &Vec<String>) -> Result<Vec<Vec<String>>, BoxError> {
        Ok(documents.iter().map(|d| d.split_whitespace().map(str::to_lowercase).collect()).collect())
    }

    fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: Vec<String>,
        tokens: Vec<Vec<String>>,
    ) -> Result<Action, BoxError> {
        shared.set("tokens", tokens)?;
        Ok(Action::NONE)
    }
}

/// "Embeds" each document with a simulated model call (15 ms), two at a
/// time: mostly suspended.
struct Embed;

impl AsyncParallelBatchNode for Embed {
    type Item = Vec<String>;
    type Output = u64;

    fn max_concurrency(&self) -> Option<usize> {
        Some(2)
    }

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Vec<String>>, BoxError> {
        Ok(shared.get("tokens")?)
    }

    async fn exec(&self, _: &Ctx<'_>, tokens: &Vec<String>) -> Result<u64, BoxError> {
        tokio::time::sleep(Duration::from_millis(15)).await;
        Ok(tokens.iter().map(|t| t.bytes().map(u64::from).sum::<u64>()).sum())
    }

    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: Vec<Vec<String>>,
        out: Vec<u64>,
    ) -> Result<Action, BoxError> {
        shared.set("embeddings", out)?;
        Ok(Action::NONE)
    }
}

/// Re-ranks in three passes (a loop on the "again" action): one stats
/// entry with three runs.
struct Rerank;

impl AsyncNode for Rerank {
    type Prep = (Vec<u64>, u64);
    type Exec = Vec<u64>;

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(Vec<u64>, u64), BoxError> {
        let passes = shared.get::<u64>("passes").unwrap_or(0);
        Ok((shared.get("embeddings")?, passes))
    }

    async fn exec(&self, _: &Ctx<'_>, (scores, _): &(Vec<u64>, u64)) -> Result<Vec<u64>, BoxError> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut ranked = scores.clone();
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ranked)
    }

    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        (_, passes): (Vec<u64>, u64),
        ranked: Vec<u64>,
    ) -> Result<Action, BoxError> {
        shared.set("embeddings", ranked)?;
        shared.set("passes", passes + 1)?;
        Ok(if passes + 1 < 3 { "again".into() } else { Action::NONE })
    }
}

/// Publishes the top score.
struct Publish;

impl AsyncNode for Publish {
    type Prep = Vec<u64>;
    type Exec = u64;

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok(shared.get("embeddings")?)
    }

    async fn exec(&self, _: &Ctx<'_>, ranked: &Vec<u64>) -> Result<u64, BoxError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        ranked.first().copied().ok_or_else(|| "nothing to publish".into())
    }

    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Vec<u64>, top: u64) -> Result<Action, BoxError> {
        shared.set("published", top)?;
        Ok(Action::NONE)
    }
}

#[trace_flow(flow_name = "MonitoredFlow")]
fn monitored_flow() -> AsyncFlow {
    let mut flow = AsyncFlow::new();
    let tokenize = flow.start(Tokenize);
    let embed = flow.add(Embed);
    let rerank = flow.add(Rerank);
    let publish = flow.add(Publish);
    flow.link(tokenize >> embed >> rerank >> publish);
    flow.link(rerank.on("again") >> rerank);
    flow
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn print_table(stats: &RunStats) {
    println!(
        "{:<22} {:<6} {:>4} {:>5} {:>5} {:>12} {:>12} {:>14} {:>12}",
        "path", "scope", "runs", "polls", "susp", "running ms", "max run ms", "suspended ms", "mean wall ms"
    );
    for entry in &stats.entries {
        let NodeStats { path, scope, runs, polls, suspensions, running, suspended, .. } = entry;
        let scope = match scope {
            Scope::Flow => "flow",
            Scope::Node => "node",
            Scope::Item => "items",
            Scope::Composition => "comp",
        };
        let mean_wall = running.mean() + suspended.mean();
        println!(
            "{path:<22} {scope:<6} {runs:>4} {polls:>5} {suspensions:>5} {:>12.2} {:>12.2} {:>14.2} {:>12.2}",
            ms(running.total),
            ms(running.max),
            ms(suspended.total),
            ms(mean_wall)
        );
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let tracing = match pocketflow_tracing::init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("tracing could not start: {error}");
            return ExitCode::FAILURE;
        }
    };

    let documents: Vec<String> = (1..=6).map(|i| format!("Document {i} about async tracing in Rust")).collect();
    let shared = SharedStore::from_iter([("documents", documents)]);
    let monitored = monitored_flow();
    let report = monitored.run_report(&shared).await;

    // Flush the trace before printing, and say what was sent.
    eprintln!("{}", tracing.shutdown());

    let report = match report {
        Ok(report) => report,
        Err(error) => {
            eprintln!("flow failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    print_table(&report.stats);

    // The guide's check, from the flow's own entry instead of a clock in
    // the store: its time running plus suspended is its wall time.
    let Some(flow) = report.stats.at("MonitoredFlow") else {
        eprintln!("no statistics for the flow");
        return ExitCode::FAILURE;
    };
    let wall = flow.running.total + flow.suspended.total;
    if wall > SLOW_RUN {
        println!("⚠️ Slow execution detected: {:.1} ms (threshold {} ms)", ms(wall), SLOW_RUN.as_millis());
    } else {
        println!("flow took {:.1} ms", ms(wall));
    }
    let busiest = report.stats.entries.iter().filter(|s| s.scope == Scope::Node).max_by_key(|s| s.suspended.total);
    if let Some(node) = busiest {
        println!(
            "most time waiting: {} ({:.1} ms suspended over {} run(s))",
            node.path,
            ms(node.suspended.total),
            node.runs
        );
    }

    // The flow's graph, each step annotated with its runs and time.
    println!("\n{}", monitored.to_mermaid_with_stats(&report.stats));

    // One entry per place in the flow, however many times it ran.
    let runs = |path: &str| report.stats.at(path).map(|s| s.runs);
    if runs("MonitoredFlow/Rerank") == Some(3) && runs("MonitoredFlow/Embed[*]") == Some(6) {
        ExitCode::SUCCESS
    } else {
        eprintln!("unexpected statistics: Rerank should have 3 runs, Embed's items 6");
        ExitCode::FAILURE
    }
}

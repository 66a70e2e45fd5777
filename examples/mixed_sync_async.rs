//! The async migration guide's "Common Migration Patterns 1. Mixed
//! Sync/Async Flows": migrate one node at a time, with sync nodes still in
//! the async flow.
//!
//! It replaces this Python:
//!
//! ```python
//! @trace_flow(flow_name="MixedFlow")
//! class MixedFlow(AsyncFlow):
//!     def __init__(self):
//!         sync_node = SyncProcessingNode()      # Still synchronous
//!         async_node = AsyncProcessingNode()    # Now asynchronous
//!         sync_node.next(async_node)
//!         super().__init__(start=sync_node)
//! ```
//!
//! In Rust a sync [`Node`] goes into an [`AsyncFlow`] as it is, and its
//! retry waits use tokio's timer, so they do not block the runtime (here a
//! single-threaded one, with a ticker task that keeps ticking while the
//! sync node waits to retry). The other way round, an async node in a sync
//! `Flow`, does not compile. An async node that has blocking work to do
//! hands it to `spawn_blocking`, carrying the run's context with
//! `pocketflow::current()` and `RunContext::in_scope`, so the spans it opens
//! land under the node (the guide's "Mixed Sync/Async Deadlocks" fix).
//!
//! ```text
//! cargo run --example mixed_sync_async
//! POCKETFLOW_TRACING_DEBUG=true cargo run --example mixed_sync_async   # shows suspends and resumes
//! ```
#![allow(missing_docs)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Ctx, Node, SharedStore, trace_flow};

/// Still synchronous: parses CSV lines. Its first attempt finds the file
/// locked; the retry, 20 ms later, succeeds.
struct SyncProcessingNode;

impl Node for SyncProcessingNode {
    type Prep = String;
    type Exec = Vec<(String, u32)>;

    fn max_retries(&self) -> usize {
        2
    }

    fn wait(&self) -> Duration {
        Duration::from_millis(20)
    }

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get("csv")?)
    }

    fn exec(&self, ctx: &Ctx<'_>, csv: &String) -> Result<Vec<(String, u32)>, BoxError> {
        if ctx.attempt() == 0 {
            return Err("inventory.csv is locked by another process".into());
        }
        csv.lines()
            .map(|line| {
                let (item, count) = line.split_once(',').ok_or_else(|| format!("bad line `{line}`"))?;
                Ok((item.trim().to_owned(), count.trim().parse()?))
            })
            .collect()
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, rows: Vec<(String, u32)>) -> Result<Action, BoxError> {
        shared.set("rows", rows)?;
        Ok(Action::NONE)
    }
}

/// A checksum over the rows: stands in for blocking work (a native
/// library, a file hash) that must not run on the runtime's threads.
fn checksum(rows: &[(String, u32)]) -> u64 {
    let _span = tracing::info_span!("checksum", rows = rows.len()).entered();
    rows.iter().flat_map(|(item, count)| item.bytes().map(move |b| u64::from(b) * u64::from(*count))).sum()
}

/// Now asynchronous: looks prices up in a simulated service, and runs the
/// blocking checksum on tokio's blocking pool with the run's context.
struct AsyncProcessingNode;

impl AsyncNode for AsyncProcessingNode {
    type Prep = Vec<(String, u32)>;
    type Exec = (u32, u64);

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<(String, u32)>, BoxError> {
        Ok(shared.get("rows")?)
    }

    async fn exec(&self, _: &Ctx<'_>, rows: &Vec<(String, u32)>) -> Result<(u32, u64), BoxError> {
        tokio::time::sleep(Duration::from_millis(15)).await; // the price service
        let value = rows.iter().map(|(item, count)| count * if item == "widget" { 3 } else { 5 }).sum();
        let context = pocketflow::current().ok_or("no run context inside a node")?;
        let rows = rows.clone();
        let sum = tokio::task::spawn_blocking(move || context.in_scope(|| checksum(&rows))).await?;
        Ok((value, sum))
    }

    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: Vec<(String, u32)>,
        (value, sum): (u32, u64),
    ) -> Result<Action, BoxError> {
        shared.set("stock_value", value)?;
        shared.set("checksum", sum)?;
        Ok(Action::NONE)
    }
}

/// Still synchronous: formats the report.
struct SyncReportNode;

impl Node for SyncReportNode {
    type Prep = (u32, u64);
    type Exec = String;

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(u32, u64), BoxError> {
        Ok((shared.get("stock_value")?, shared.get("checksum")?))
    }

    fn exec(&self, _: &Ctx<'_>, (value, sum): &(u32, u64)) -> Result<String, BoxError> {
        Ok(format!("stock value {value} (checksum {sum})"))
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (u32, u64), report: String) -> Result<Action, BoxError> {
        shared.set("report", report)?;
        Ok(Action::NONE)
    }
}

#[trace_flow(flow_name = "MixedFlow")]
fn mixed_flow() -> AsyncFlow {
    let mut flow = AsyncFlow::new();
    let sync_node = flow.start(SyncProcessingNode); // still synchronous
    let async_node = flow.add(AsyncProcessingNode); // now asynchronous
    let report = flow.add(SyncReportNode);
    flow.link(sync_node >> async_node >> report);
    flow
}

// One thread: if a sync node's retry wait blocked it, nothing else could run.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let tracing = match pocketflow_tracing::init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("tracing could not start: {error}");
            return ExitCode::FAILURE;
        }
    };

    // A task sharing the thread with the flow, ticking every 2 ms.
    let ticks = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ticks);
    let ticker = tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(2));
        loop {
            interval.tick().await;
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });

    let shared = SharedStore::from_iter([("csv", "widget, 4\ngadget, 2\nwidget, 1")]);
    let flow = mixed_flow();
    let result = flow.run_report(&shared).await;
    ticker.abort();

    // Flush the trace before printing, and say what was sent.
    eprintln!("{}", tracing.shutdown());

    match result {
        Ok(report) => {
            println!("{}", shared.get::<String>("report").unwrap_or_default());
            let waited = report.stats.at("MixedFlow/SyncProcessingNode").map(|s| s.suspended.total).unwrap_or_default();
            println!(
                "the sync node was suspended {:.1} ms waiting to retry; the ticker on the same thread ticked {} times during the run",
                waited.as_secs_f64() * 1e3,
                ticks.load(Ordering::Relaxed)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("flow failed: {error}");
            ExitCode::FAILURE
        }
    }
}

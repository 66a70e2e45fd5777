//! The async migration guide's "Common Migration Patterns 2. Batch
//! Processing Migration": a batch processed item by item (before), then
//! concurrently with a limit (after), with the same results.
//!
//! It replaces this Python:
//!
//! ```python
//! def process_batch(items):                     # before
//!     return [process_item(item) for item in items]
//!
//! async def process_batch_async(items):         # after
//!     return await asyncio.gather(*[process_item_async(item) for item in items])
//! ```
//!
//! In Rust the batch is a node: before, a sync [`BatchNode`] run once per
//! file by a [`BatchFlow`] (one file after another, one line after
//! another); after, an [`AsyncParallelBatchNode`] whose `max_concurrency`
//! bounds how many lines are in flight per file (`asyncio.gather` has no
//! bound), run by an [`AsyncParallelBatchFlow`] that processes the files at
//! once. Every item has its own `item` span and its own retries; results
//! keep the items' order. (To bound how many whole flows run at once, use
//! `Composition::batch(..).limit(n)`.)
//!
//! ```text
//! cargo run --example batch_processing
//! ```
//!
//! A number makes each file that many times longer. From about 20 on, the
//! sync run takes seconds, and on a terminal `pocketflow_tracing::init()`
//! shows a live progress bar per batch while it runs (the batch flow's
//! files, each file's lines: done of total, rate, failures, elapsed), cleared
//! when the batch ends (`POCKETFLOW_PROGRESS=false` turns them off; add
//! `POCKETFLOW_TRACING_EXPORTER=none` to skip the long trace tree):
//!
//! ```text
//! cargo run --example batch_processing -- 20
//! ```
#![allow(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pocketflow::{
    Action, AsyncBatchFlowHooks, AsyncFlow, AsyncParallelBatchFlow, AsyncParallelBatchNode, BatchFlow, BatchFlowHooks,
    BatchNode, BoxError, Ctx, Flow, Params, SharedStore, trace_flow,
};

/// How long processing one line takes (a model call, a lookup).
const PER_ITEM: Duration = Duration::from_millis(10);
/// Lines in flight at once per file, after the migration.
const LIMIT: usize = 3;

/// Python's `process_item`: the work on one line, without the waiting.
fn process_item(line: &str) -> String {
    let (level, message) = line.split_once(' ').unwrap_or(("INFO", line));
    format!("{}: {} word(s)", level.to_lowercase(), message.split_whitespace().count())
}

/// The files, one per batch-flow run: six lines each, `repeat` times over.
fn files(repeat: usize) -> BTreeMap<String, Vec<String>> {
    let lines = |prefix: &str| -> Vec<String> {
        ["ERROR disk full", "INFO started", "WARN slow request to /api", "INFO stopped", "ERROR timeout", "INFO ok"]
            .repeat(repeat)
            .iter()
            .map(|line| format!("{line} ({prefix})"))
            .collect()
    };
    BTreeMap::from([("app.log".to_owned(), lines("app")), ("worker.log".to_owned(), lines("worker"))])
}

/// The batch flow's `prep`: one parameter set per file in the store.
struct PerFile;

fn per_file(shared: &SharedStore) -> Result<Vec<Params>, BoxError> {
    let files: BTreeMap<String, Vec<String>> = shared.get("files")?;
    Ok(files.keys().map(|file| Params::new().with("file", file.as_str())).collect())
}

impl BatchFlowHooks for PerFile {
    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Params>, BoxError> {
        per_file(shared)
    }
}

impl AsyncBatchFlowHooks for PerFile {
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Params>, BoxError> {
        per_file(shared)
    }
}

/// The lines of the file this run's params name.
fn lines_of(ctx: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<String>, BoxError> {
    let file: String = ctx.params().get_as("file")?;
    let mut files: BTreeMap<String, Vec<String>> = shared.get("files")?;
    Ok(files.remove(&file).ok_or_else(|| format!("no file `{file}`"))?)
}

fn store_results(ctx: &Ctx<'_>, shared: &SharedStore, results: Vec<String>) -> Result<Action, BoxError> {
    let file: String = ctx.params().get_as("file")?;
    shared.set(format!("results/{file}"), results)?;
    Ok(Action::NONE)
}

/// Before: the lines one after another, blocking the thread on each.
mod before {
    use super::*;

    pub(crate) struct ProcessLines;

    impl BatchNode for ProcessLines {
        type Item = String;
        type Output = String;

        fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<String>, BoxError> {
            lines_of(ctx, shared)
        }

        fn exec(&self, _: &Ctx<'_>, line: &String) -> Result<String, BoxError> {
            std::thread::sleep(PER_ITEM);
            Ok(process_item(line))
        }

        fn post(
            &self,
            ctx: &Ctx<'_>,
            shared: &SharedStore,
            _: Vec<String>,
            out: Vec<String>,
        ) -> Result<Action, BoxError> {
            store_results(ctx, shared, out)
        }
    }

    #[trace_flow(flow_name = "LogBatch", tags = ["before", "sync"])]
    pub(crate) fn log_batch() -> BatchFlow<SharedStore, PerFile> {
        let mut per_file = Flow::new();
        per_file.start(ProcessLines);
        BatchFlow::new(per_file, PerFile)
    }
}

/// After: the lines of each file concurrently, at most `LIMIT` at once,
/// and the files at once.
mod after {
    use super::*;

    /// Lines in flight per file now, and the most seen at once.
    pub(crate) type InFlight = Arc<Mutex<HashMap<String, (usize, usize)>>>;

    pub(crate) struct ProcessLines {
        pub(crate) in_flight: InFlight,
    }

    impl ProcessLines {
        fn count(&self, ctx: &Ctx<'_>, change: isize) -> Result<(), BoxError> {
            let file: String = ctx.params().get_as("file")?;
            let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            let (now, peak) = in_flight.entry(file).or_default();
            *now = now.checked_add_signed(change).ok_or("in-flight count went below zero")?;
            *peak = (*peak).max(*now);
            Ok(())
        }
    }

    /// Python's `process_item_async`.
    async fn process_item_async(line: &str) -> String {
        tokio::time::sleep(PER_ITEM).await;
        process_item(line)
    }

    impl AsyncParallelBatchNode for ProcessLines {
        type Item = String;
        type Output = String;

        fn max_concurrency(&self) -> Option<usize> {
            Some(LIMIT)
        }

        async fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<String>, BoxError> {
            lines_of(ctx, shared)
        }

        async fn exec(&self, ctx: &Ctx<'_>, line: &String) -> Result<String, BoxError> {
            self.count(ctx, 1)?;
            let result = process_item_async(line).await;
            self.count(ctx, -1)?;
            Ok(result)
        }

        async fn post(
            &self,
            ctx: &Ctx<'_>,
            shared: &SharedStore,
            _: Vec<String>,
            out: Vec<String>,
        ) -> Result<Action, BoxError> {
            store_results(ctx, shared, out)
        }
    }

    #[trace_flow(flow_name = "LogBatch", tags = ["after", "async"])]
    pub(crate) fn log_batch(in_flight: InFlight) -> AsyncParallelBatchFlow<SharedStore, PerFile> {
        let mut per_file = AsyncFlow::new();
        per_file.start(ProcessLines { in_flight });
        AsyncParallelBatchFlow::new(per_file, PerFile)
    }
}

fn results(shared: &SharedStore, repeat: usize) -> BTreeMap<String, Vec<String>> {
    files(repeat)
        .into_keys()
        .map(|file| (file.clone(), shared.get(&format!("results/{file}")).unwrap_or_default()))
        .collect()
}

fn main() -> ExitCode {
    let repeat = match std::env::args().nth(1).map(|arg| arg.parse::<usize>()) {
        None => 1,
        Some(Ok(repeat)) if repeat > 0 => repeat,
        Some(_) => {
            eprintln!("usage: batch_processing [how many times longer each file is, 1 or more]");
            return ExitCode::FAILURE;
        }
    };
    let tracing = match pocketflow_tracing::init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("tracing could not start: {error}");
            return ExitCode::FAILURE;
        }
    };

    // Before: a sync batch flow on this thread.
    let sync_shared = SharedStore::from_iter([("files", serde_json::to_value(files(repeat)).unwrap_or_default())]);
    let started = Instant::now();
    let sync_result = before::log_batch().run(&sync_shared);
    let sync_took = started.elapsed();

    // After: the async parallel batch flow on a runtime.
    let in_flight = after::InFlight::default();
    let async_shared = SharedStore::from_iter([("files", serde_json::to_value(files(repeat)).unwrap_or_default())]);
    let started = Instant::now();
    let async_result =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(BoxError::from).and_then(|runtime| {
            runtime.block_on(after::log_batch(Arc::clone(&in_flight)).run(&async_shared)).map_err(BoxError::from)
        });
    let async_took = started.elapsed();

    // Flush the traces before printing, and say what was sent.
    eprintln!("{}", tracing.shutdown());

    if let Err(error) = sync_result {
        eprintln!("sync batch failed: {error}");
        return ExitCode::FAILURE;
    }
    if let Err(error) = async_result {
        eprintln!("async batch failed: {error}");
        return ExitCode::FAILURE;
    }
    let (before, after) = (results(&sync_shared, repeat), results(&async_shared, repeat));
    let items: usize = before.values().map(Vec::len).sum();
    println!("before (BatchFlow + BatchNode):                         {items} lines in {sync_took:.0?}");
    println!("after (AsyncParallelBatchFlow + AsyncParallelBatchNode): {items} lines in {async_took:.0?}");
    for (file, lines) in &after {
        let peak = in_flight.lock().unwrap_or_else(PoisonError::into_inner).get(file).map_or(0, |(_, peak)| *peak);
        println!(
            "  {file}: {} results, at most {peak} line(s) in flight (limit {LIMIT}); first: {:?}",
            lines.len(),
            lines.first()
        );
    }
    let within_limit =
        in_flight.lock().unwrap_or_else(PoisonError::into_inner).values().all(|(_, peak)| *peak <= LIMIT);
    if before != after || items == 0 {
        eprintln!("the results differ:\n  before {before:?}\n  after  {after:?}");
        ExitCode::FAILURE
    } else if !within_limit {
        eprintln!("more than {LIMIT} lines of one file were in flight at once");
        ExitCode::FAILURE
    } else {
        println!("same results, in the same order");
        ExitCode::SUCCESS
    }
}

//! The async migration guide's "Advanced Features 1. Concurrent Flow
//! Execution": five runs of one flow at once, each its own trace with its
//! own session.
//!
//! It replaces this Python:
//!
//! ```python
//! @trace_flow(flow_name="ConcurrentFlow")
//! class ConcurrentFlow(AsyncFlow): ...
//!
//! flows = [ConcurrentFlow() for _ in range(5)]
//! shared_data = [{"input": f"data_{i}"} for i in range(5)]
//! results = await asyncio.gather(*[flow.run_async(shared) for flow, shared in zip(flows, shared_data)])
//! ```
//!
//! In Rust, `join_all` plays `asyncio.gather`, and `run_with` gives each run
//! its own `RunOptions` (a session per run here). Each run is a trace of its
//! own; the context never mixes between them: inside a node,
//! `pocketflow::current()` names that run's flow, node and session, right
//! after every await. (`Composition::parallel` would put all five under one
//! trace instead; see the `nested_composition` example.)
//!
//! ```text
//! cargo run --example concurrent_flows
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… cargo run --example concurrent_flows
//! ```
#![allow(missing_docs)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Ctx, RunOptions, SharedStore, trace_flow};

/// Counts the fetches in flight, and the most at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

/// Fetches the run's input from a simulated service whose latency depends
/// on the input, so the runs finish in a different order than they start.
struct Fetch {
    gauge: Arc<Gauge>,
}

impl AsyncNode for Fetch {
    type Prep = String;
    type Exec = String;

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get("input")?)
    }

    async fn exec(&self, _: &Ctx<'_>, input: &String) -> Result<String, BoxError> {
        let now = self.gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.gauge.peak.fetch_max(now, Ordering::SeqCst);
        let index: u64 = input.trim_start_matches("data_").parse()?;
        tokio::time::sleep(Duration::from_millis(60 - 10 * index)).await;
        self.gauge.now.fetch_sub(1, Ordering::SeqCst);
        Ok(format!("{input} fetched"))
    }

    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, value: String) -> Result<Action, BoxError> {
        shared.set("value", value)?;
        Ok(Action::NONE)
    }
}

/// Records which run it is in, as the run's context says after an await:
/// what Python's `AsyncTraceContext.get_current_context()` gives.
struct Record;

impl AsyncNode for Record {
    type Prep = ();
    type Exec = (String, String);

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(String, String), BoxError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let context = pocketflow::current().ok_or("no run context inside a node")?;
        let session = context.options().session().cloned().unwrap_or_default();
        Ok((session, context.path()))
    }

    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: (),
        (session, path): (String, String),
    ) -> Result<Action, BoxError> {
        shared.set("seen_session", session)?;
        shared.set("seen_path", path)?;
        Ok(Action::NONE)
    }
}

/// Python's `@trace_flow(flow_name="ConcurrentFlow") class ConcurrentFlow(AsyncFlow)`.
#[trace_flow(flow_name = "ConcurrentFlow", user_id = "example-user")]
fn concurrent_flow(gauge: Arc<Gauge>) -> AsyncFlow {
    let mut flow = AsyncFlow::new();
    let fetch = flow.start(Fetch { gauge });
    let record = flow.add(Record);
    flow.link(fetch >> record);
    flow
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

    let gauge = Arc::new(Gauge::default());
    let runs = (0..5).map(|i| {
        let flow = concurrent_flow(Arc::clone(&gauge));
        let shared = SharedStore::from_iter([("input", format!("data_{i}"))]);
        let session = format!("concurrent-{i}");
        async move {
            let report = flow.run_with(&shared, RunOptions::new().session_id(session.as_str())).await;
            (session, shared, report)
        }
    });
    // `asyncio.gather(*[flow.run_async(shared) ...])`: five traces.
    let results = futures_util::future::join_all(runs).await;

    // Flush the traces before printing, and say what was sent.
    eprintln!("{}", tracing.shutdown());

    let mut failed = false;
    println!("{:<14} {:<14} {:<23} result", "session", "seen in node", "path");
    for (session, shared, report) in results {
        if let Err(error) = report {
            failed = true;
            println!("{session:<14} failed: {error}");
            continue;
        }
        let seen = shared.get::<String>("seen_session").unwrap_or_default();
        let path = shared.get::<String>("seen_path").unwrap_or_default();
        let value = shared.get::<String>("value").unwrap_or_default();
        println!("{session:<14} {seen:<14} {path:<23} {value}");
        if seen != session {
            failed = true;
            println!("  the run's context named another session");
        }
    }
    println!("fetches in flight at once: at most {}", gauge.peak.load(Ordering::SeqCst));
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

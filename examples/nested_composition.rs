//! The async migration guide's "Advanced Features 3. Nested Flow
//! Composition": a flow that runs another flow when it succeeds, flows
//! nested in flows as steps, and flows composed in parallel under one trace.
//!
//! It replaces this Python:
//!
//! ```python
//! @trace_flow(flow_name="MainFlow")
//! class MainFlow(AsyncFlow):
//!     async def run_async(self, shared):
//!         result = await super().run_async(shared)
//!         if result == "success":
//!             analysis_result = await AnalysisFlow().run_async(shared)
//!             shared["analysis"] = analysis_result
//!         return result
//!
//! await manager.execute_parallel_flows(flows, flow_names)   # AsyncFlowCompositionManager
//! ```
//!
//! In Rust the follow-up goes where the decision is made: in the `post` of
//! the flow's hooks (`AsyncFlowHooks`), so `AnalysisFlow`'s span is a child
//! of `MainFlow`'s, in the same trace. A flow is also a step of another
//! flow as it is (`outer.add(inner)`, a sync `Flow` inside an `AsyncFlow`
//! included). `Composition::parallel(..).limit(n)` runs several flows under
//! one `composition` span, at most `n` at once, and returns every result
//! (one failure does not lose the others).
//!
//! ```text
//! cargo run --example nested_composition
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 cargo run --example nested_composition
//! ```
#![allow(missing_docs)]

use std::process::ExitCode;
use std::time::Duration;

use pocketflow::{
    Action, AsyncFlow, AsyncFlowHooks, AsyncNode, BoxError, Composition, Ctx, Flow, FlowError, Node, RunOptions,
    SharedStore, trace_flow,
};
use serde_json::Value;

/// Sums the sales; "success" when there were any.
struct Process;

impl AsyncNode for Process {
    type Prep = Vec<i64>;
    type Exec = i64;

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<i64>, BoxError> {
        Ok(shared.get("sales")?)
    }

    async fn exec(&self, _: &Ctx<'_>, sales: &Vec<i64>) -> Result<i64, BoxError> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(sales.iter().sum())
    }

    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, sales: Vec<i64>, total: i64) -> Result<Action, BoxError> {
        shared.set("total", total)?;
        Ok(if sales.is_empty() { "empty".into() } else { "success".into() })
    }
}

/// Grades the total: the one node of `AnalysisFlow`.
struct Grade;

impl AsyncNode for Grade {
    type Prep = i64;
    type Exec = &'static str;

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<i64, BoxError> {
        Ok(shared.get("total")?)
    }

    async fn exec(&self, _: &Ctx<'_>, total: &i64) -> Result<&'static str, BoxError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(if *total >= 1000 { "above_target" } else { "below_target" })
    }

    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: i64, grade: &'static str) -> Result<Action, BoxError> {
        Ok(grade.into()) // the flow's result: its last node's action
    }
}

fn analysis_flow() -> AsyncFlow {
    let mut flow = AsyncFlow::named("AnalysisFlow");
    flow.start(Grade);
    flow
}

/// `MainFlow`'s own `post`: Python's overridden `run_async`.
struct RunAnalysisOnSuccess;

impl AsyncFlowHooks for RunAnalysisOnSuccess {
    type Prep = ();

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), result: Action) -> Result<Action, BoxError> {
        if result == "success" {
            // Runs inside MainFlow's run: a child span in the same trace.
            let analysis_result = analysis_flow().run(shared).await?;
            shared.set("analysis", analysis_result.to_string())?;
        }
        Ok(result)
    }
}

#[trace_flow(flow_name = "MainFlow")]
fn main_flow() -> AsyncFlow<SharedStore, RunAnalysisOnSuccess> {
    let mut flow = AsyncFlow::new();
    flow.start(Process);
    flow.with_hooks(RunAnalysisOnSuccess)
}

/// Loads a region's sales from a simulated warehouse.
struct Load;

impl AsyncNode for Load {
    type Prep = String;
    type Exec = Vec<i64>;

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get("region")?)
    }

    async fn exec(&self, _: &Ctx<'_>, region: &String) -> Result<Vec<i64>, BoxError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        match region.as_str() {
            "emea" => Ok(vec![400, -20, 350]),
            "americas" => Ok(vec![900, 300, -5]),
            "apac" => Ok(vec![150, 200]),
            other => Err(format!("no warehouse for region `{other}`").into()),
        }
    }

    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, sales: Vec<i64>) -> Result<Action, BoxError> {
        shared.set("sales", sales)?;
        Ok(Action::NONE)
    }
}

/// Drops refunds (negative lines): the one node of the sync `Clean` flow.
struct DropRefunds;

impl Node for DropRefunds {
    type Prep = Vec<i64>;
    type Exec = Vec<i64>;

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<i64>, BoxError> {
        Ok(shared.get("sales")?)
    }

    fn exec(&self, _: &Ctx<'_>, sales: &Vec<i64>) -> Result<Vec<i64>, BoxError> {
        Ok(sales.iter().copied().filter(|amount| *amount >= 0).collect())
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Vec<i64>, kept: Vec<i64>) -> Result<Action, BoxError> {
        shared.set("sales", kept)?;
        Ok(Action::NONE)
    }
}

/// Per region: load, then the sync `Clean` flow as a step, then
/// `MainFlow` itself as a step (which runs `AnalysisFlow` in turn).
fn region_flow(region: &str) -> AsyncFlow {
    let mut clean = Flow::named("Clean");
    clean.start(DropRefunds);

    let mut flow = AsyncFlow::named(format!("RegionFlow[{region}]"));
    let load = flow.start(Load);
    let clean = flow.add(clean);
    let main = flow.add(main_flow());
    flow.link(load >> clean >> main);
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

    // 1. The guide's MainFlow on its own: one trace, AnalysisFlow inside it.
    let shared = SharedStore::from_iter([("sales", vec![600, 550])]);
    let main_result = main_flow().run(&shared).await;
    let analysis = shared.get_value("analysis");

    // 2. Three region flows (each nesting two flows) composed in
    //    parallel, two at a time: one more trace, under a composition span.
    let regions = ["emea", "americas", "apac"];
    let runs: Vec<(AsyncFlow, SharedStore)> =
        regions.iter().map(|region| (region_flow(region), SharedStore::from_iter([("region", *region)]))).collect();
    let results = Composition::parallel("RegionalReports")
        .limit(2)
        .options(RunOptions::new().session_id("regional-reports"))
        .run(runs.iter().map(|(flow, shared)| async move {
            flow.run(shared).await?;
            Ok::<_, FlowError>((shared.get_value("total"), shared.get_value("analysis")))
        }))
        .await;

    // Flush the traces before printing, and say what was sent.
    eprintln!("{}", tracing.shutdown());

    let mut failed = false;
    match main_result {
        Ok(result) => {
            println!("MainFlow: {result}, analysis: {}", analysis.as_ref().and_then(Value::as_str).unwrap_or("none"))
        }
        Err(error) => {
            failed = true;
            println!("MainFlow failed: {error}");
        }
    }
    for (region, result) in regions.iter().zip(results) {
        match result {
            Ok((Some(total), Some(Value::String(analysis)))) => {
                println!("{region:<9} total {total:>5}, analysis: {analysis}");
            }
            Ok(missing) => {
                failed = true;
                println!("{region:<9} finished without a total and an analysis: {missing:?}");
            }
            Err(error) => {
                failed = true;
                println!("{region:<9} failed: {error}");
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

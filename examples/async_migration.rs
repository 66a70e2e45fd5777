//! The async migration guide's "Migration Steps" 2 to 4: one node and flow
//! written sync (before) and async (after), both run, both traced.
//!
//! It replaces this Python:
//!
//! ```python
//! class DataProcessingNode(Node):            # before
//!     def exec(self, prep_res): return process_data(prep_res)
//! class DataProcessingNode(AsyncNode):       # after
//!     async def exec_async(self, prep_res): return await async_process_data(prep_res)
//!
//! @trace_flow(flow_name="DataProcessingFlow")
//! class DataProcessingFlow(AsyncFlow): ...   # plus optional prep_async / post_async
//!
//! result = flow.run(shared)                          # before
//! result = asyncio.run(flow.run_async(shared))       # after
//! ```
//!
//! In Rust a sync node implements [`Node`] and an async one [`AsyncNode`]
//! (the same three hooks, `async fn`); `#[trace_flow]` goes on the function
//! that builds the flow; a flow's own `prep`/`post` are hooks
//! (`AsyncFlow::with_hooks`), not a subclass. The sync flow runs on the
//! calling thread; the async one on a tokio runtime, which `main` builds
//! the way `asyncio.run` starts an event loop.
//!
//! ```text
//! cargo run --example async_migration
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 cargo run --example async_migration
//! ```
#![allow(missing_docs)]

use std::process::ExitCode;
use std::time::Duration;

use pocketflow::{Action, AsyncFlow, AsyncFlowHooks, AsyncNode, BoxError, Ctx, Flow, Node, SharedStore, trace_flow};
use serde::{Deserialize, Serialize};

/// What processing a text yields; both versions must produce the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Processed {
    words: usize,
    upper: String,
}

/// The work itself, shared by both versions: Python's `process_data`.
fn process_data(input: &str) -> Processed {
    Processed { words: input.split_whitespace().count(), upper: input.to_uppercase() }
}

/// Python's `async_process_data`: the same work behind an await, standing
/// in for a call to a service (the sleep is where the node suspends).
async fn async_process_data(input: &str) -> Processed {
    tokio::time::sleep(Duration::from_millis(20)).await;
    process_data(input)
}

fn report(processed: &Processed) -> String {
    format!("{} word(s): {}", processed.words, processed.upper)
}

/// Before: the synchronous version.
mod before {
    use super::*;

    pub(crate) struct DataProcessingNode;

    impl Node for DataProcessingNode {
        type Prep = String;
        type Exec = Processed;

        fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
            Ok(shared.get("input_data")?)
        }

        fn exec(&self, _: &Ctx<'_>, input: &String) -> Result<Processed, BoxError> {
            Ok(process_data(input))
        }

        fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, out: Processed) -> Result<Action, BoxError> {
            shared.set("output", out)?;
            Ok(Action::NONE) // Python's "default"
        }
    }

    pub(crate) struct OutputNode;

    impl Node for OutputNode {
        type Prep = Processed;
        type Exec = String;

        fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Processed, BoxError> {
            Ok(shared.get("output")?)
        }

        fn exec(&self, _: &Ctx<'_>, processed: &Processed) -> Result<String, BoxError> {
            Ok(report(processed))
        }

        fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Processed, line: String) -> Result<Action, BoxError> {
            shared.set("report", line)?;
            Ok("done".into())
        }
    }

    /// Python's `@trace_flow(flow_name="DataProcessingFlow") class DataProcessingFlow(Flow)`.
    #[trace_flow(flow_name = "DataProcessingFlow", tags = ["sync"])]
    pub(crate) fn data_processing_flow() -> Flow {
        let mut flow = Flow::new();
        let node1 = flow.start(DataProcessingNode);
        let node2 = flow.add(OutputNode);
        flow.link(node1 >> node2);
        flow
    }
}

/// After: the asynchronous version, node for node.
mod after {
    use super::*;

    pub(crate) struct DataProcessingNode;

    impl AsyncNode for DataProcessingNode {
        type Prep = String;
        type Exec = Processed;

        async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
            Ok(shared.get("input_data")?)
        }

        async fn exec(&self, _: &Ctx<'_>, input: &String) -> Result<Processed, BoxError> {
            Ok(async_process_data(input).await)
        }

        async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, out: Processed) -> Result<Action, BoxError> {
            shared.set("output", out)?;
            Ok(Action::NONE)
        }
    }

    pub(crate) struct OutputNode;

    impl AsyncNode for OutputNode {
        type Prep = Processed;
        type Exec = String;

        async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Processed, BoxError> {
            Ok(shared.get("output")?)
        }

        async fn exec(&self, _: &Ctx<'_>, processed: &Processed) -> Result<String, BoxError> {
            Ok(report(processed))
        }

        async fn post(
            &self,
            _: &Ctx<'_>,
            shared: &SharedStore,
            _: Processed,
            line: String,
        ) -> Result<Action, BoxError> {
            shared.set("report", line)?;
            Ok("done".into())
        }
    }

    /// The guide's optional flow-level `prep_async` / `post_async`: each
    /// gets its own `prep` / `post` span under the flow.
    pub(crate) struct DataProcessingHooks;

    impl AsyncFlowHooks for DataProcessingHooks {
        /// The input's length, handed from `prep` to `post`.
        type Prep = usize;

        async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<usize, BoxError> {
            let input: String = shared.get("input_data")?;
            if input.trim().is_empty() {
                return Err("input_data is empty".into());
            }
            Ok(input.len())
        }

        async fn post(
            &self,
            _: &Ctx<'_>,
            shared: &SharedStore,
            chars: usize,
            last: Action,
        ) -> Result<Action, BoxError> {
            shared.set("input_chars", chars)?;
            Ok(last) // the flow's result: the last node's action, as `super().post_async` returns
        }
    }

    /// Python's `@trace_flow(flow_name="DataProcessingFlow") class DataProcessingFlow(AsyncFlow)`.
    #[trace_flow(flow_name = "DataProcessingFlow", tags = ["async"])]
    pub(crate) fn data_processing_flow() -> AsyncFlow<SharedStore, DataProcessingHooks> {
        let mut flow = AsyncFlow::new();
        let node1 = flow.start(DataProcessingNode); // now async
        let node2 = flow.add(OutputNode); // now async
        flow.link(node1 >> node2);
        flow.with_hooks(DataProcessingHooks)
    }
}

/// Python's `async def main(): return await flow.run_async(shared)`.
async fn async_main(input: &str) -> Result<(Action, SharedStore), pocketflow::FlowError> {
    let flow = after::data_processing_flow();
    let shared = SharedStore::from_iter([("input_data", input)]);
    let result = flow.run(&shared).await?;
    Ok((result, shared))
}

fn main() -> ExitCode {
    let tracing = match pocketflow_tracing::init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("tracing could not start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let input = "the quick brown fox jumps";

    // Before: `result = flow.run(shared)`, on this thread, no runtime.
    let flow = before::data_processing_flow();
    let sync_shared = SharedStore::from_iter([("input_data", input)]);
    let sync_result = flow.run(&sync_shared);

    // After: `asyncio.run(main())`: a runtime, then the async flow on it.
    let async_result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BoxError::from)
        .and_then(|runtime| runtime.block_on(async_main(input)).map_err(BoxError::from));

    // Flush the traces before printing, and say what was sent.
    eprintln!("{}", tracing.shutdown());

    let (sync_action, async_action, async_shared) = match (sync_result, async_result) {
        (Ok(sync_action), Ok((async_action, async_shared))) => (sync_action, async_action, async_shared),
        (Err(error), _) => {
            eprintln!("sync flow failed: {error}");
            return ExitCode::FAILURE;
        }
        (_, Err(error)) => {
            eprintln!("async flow failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    let sync_output = sync_shared.get::<Processed>("output");
    let async_output = async_shared.get::<Processed>("output");
    println!("before (sync Flow):  {sync_action} → {}", sync_shared.get_value("report").unwrap_or_default());
    println!("after (AsyncFlow):   {async_action} → {}", async_shared.get_value("report").unwrap_or_default());
    println!("after, flow-level post saw {} input chars", async_shared.get_value("input_chars").unwrap_or_default());
    match (sync_output, async_output) {
        (Ok(sync_output), Ok(async_output)) if sync_output == async_output && sync_action == async_action => {
            println!("both versions produced the same output");
            ExitCode::SUCCESS
        }
        (sync_output, async_output) => {
            eprintln!("the versions disagree: sync {sync_output:?}, async {async_output:?}");
            ExitCode::FAILURE
        }
    }
}

#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod action;
mod async_flow;
mod async_node;
pub mod compose;
mod context;
mod current;
mod error;
mod flow;
mod graph;
mod hooks;
mod lifecycle;
mod mermaid;
mod node;
mod observation;
mod options;
mod params;
mod recovery;
mod run;
mod stats;
mod step;
mod store;
pub mod telemetry;
mod traceparent;
mod warning;

pub use action::{Action, DEFAULT_ACTION};
pub use async_flow::{AsyncBatchFlow, AsyncFlow, AsyncParallelBatchFlow};
pub use async_node::{AsyncBatchNode, AsyncNode, AsyncParallelBatchNode};
pub use compose::{BatchComposition, Composition, NestedComposition, ParallelComposition};
pub use context::Ctx;
pub use current::{InContext, RunContext, Scope, Task, current, spawn};
pub use error::{BoxError, DataError, ErrorType, FlowError, Phase, Severity};
pub use flow::{BatchFlow, Flow};
pub use graph::{NodeId, Transition, Wiring};
pub use hooks::{AsyncBatchFlowHooks, AsyncFlowHooks, BatchFlowHooks, FlowHooks, NoHooks};
pub use lifecycle::NodeState;
pub use node::{BatchNode, Node};
pub use observation::Observation;
pub use options::{RunOptions, TraceFlow};
pub use params::Params;
/// Names the flow a function builds and sets its run options: Python's
/// `@trace_flow(flow_name=…, session_id=…, user_id=…)` class decorator, put
/// on the function that builds the flow.
///
/// ```
/// use pocketflow::{Action, BoxError, Ctx, Flow, Node, SharedStore, TraceFlow, trace_flow};
///
/// struct Load;
///
/// impl Node for Load {
///     type Prep = ();
///     type Exec = ();
///     fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
///         Ok(())
///     }
///     fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
///         Ok(())
///     }
///     fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
///         shared.set("loaded", true)?;
///         Ok(Action::NONE)
///     }
/// }
///
/// // Python: @trace_flow(session_id="chat-42") on `class DataProcessingFlow(Flow)`.
/// #[trace_flow(session_id = "chat-42", user_id = "ada", tags = ["beta"], metadata(plan = "pro", retries = 3))]
/// fn data_processing_flow() -> Flow {
///     let mut flow = Flow::new();
///     flow.start(Load);
///     flow
/// }
///
/// let flow = data_processing_flow();
/// assert_eq!(flow.name(), "DataProcessingFlow"); // the fn name, UpperCamelCase
/// assert_eq!(flow.run_options().session().map(String::as_str), Some("chat-42"));
/// assert_eq!(flow.run_options().tag_list(), ["beta"]);
///
/// let shared = SharedStore::new();
/// flow.run(&shared)?; // its `flow` span is named "DataProcessingFlow"
/// assert!(shared.get::<bool>("loaded")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `flow_name = "…"` overrides the name; options set in the body are kept
/// unless the attribute sets the same one (tags and metadata are merged).
#[cfg(feature = "macros")]
pub use pocketflow_macros::trace_flow;
pub use recovery::{
    AsyncErrorEvent, Backoff, ErrorHandler, ErrorStats, Recovery, RetryPolicy, safe_execute, with_timeout,
};
pub use run::{MAX_NESTING_DEPTH, RunReport};
pub use stats::{NodeStats, RunStats, TimeStats};
pub use step::{IntoAsyncStep, IntoSyncStep, StepParts, kinds};
pub use store::SharedStore;
pub use traceparent::{TraceParent, TraceParentError};
pub use warning::{FlowWarning, MAX_KEPT_WARNINGS, WarningCounts};

#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod action;
mod async_flow;
mod async_node;
mod context;
mod error;
mod flow;
mod graph;
mod hooks;
mod lifecycle;
mod node;
mod options;
mod params;
mod recovery;
mod run;
mod step;
mod store;
pub mod telemetry;
mod traceparent;
mod warning;

pub use action::{Action, DEFAULT_ACTION};
pub use async_flow::{AsyncBatchFlow, AsyncFlow, AsyncParallelBatchFlow};
pub use async_node::{AsyncBatchNode, AsyncNode, AsyncParallelBatchNode};
pub use context::Ctx;
pub use error::{BoxError, DataError, ErrorType, FlowError, Phase, Severity};
pub use flow::{BatchFlow, Flow};
pub use graph::{NodeId, Transition, Wiring};
pub use hooks::{AsyncBatchFlowHooks, AsyncFlowHooks, BatchFlowHooks, FlowHooks, NoHooks};
pub use lifecycle::{LifecycleStats, NodeState};
pub use node::{BatchNode, Node};
pub use options::{RunOptions, TraceFlow};
pub use params::Params;
pub use recovery::{
    AsyncErrorEvent, Backoff, ErrorHandler, ErrorStats, Recovery, RetryPolicy, safe_execute, with_timeout,
};
pub use run::RunReport;
pub use step::{IntoAsyncStep, IntoSyncStep, StepParts, kinds};
pub use store::SharedStore;
pub use traceparent::{TraceParent, TraceParentError};
pub use warning::FlowWarning;

//! What a flow's graph holds: any node kind or nested flow, behind one
//! object-safe interface. Users never name these traits; they pass nodes to
//! `Flow::add`, which picks the right wrapper by the node's trait.
#![allow(
    clippy::ptr_arg,
    reason = "node names are passed as `&Cow` because the run context clones them, which is free for a static name"
)]

use std::borrow::Cow;

use futures_util::future::BoxFuture;

use crate::action::Action;
use crate::async_node::{AsyncBatchNode, AsyncNode, AsyncParallelBatchNode};
use crate::error::FlowError;
use crate::mermaid::Shape;
use crate::node::{BatchNode, Node};
use crate::params::Params;
use crate::run::ops::{AsyncBatchOps, AsyncOps, ParallelBatchOps, SyncBatchOps, SyncOps};
use crate::run::{RunEnv, async_node, sync_node};
use crate::warning::FlowWarning;

/// A step that can run inside an async flow.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a step of an async flow",
    note = "steps are made by `AsyncFlow::add`/`start` from a node or a flow; implement one of the node traits instead"
)]
pub trait AsyncStep<S>: Send + Sync {
    /// Runs the step under `name` with the enclosing orchestration's params.
    fn run_async<'a>(
        &'a self,
        name: &'a Cow<'static, str>,
        env: &'a RunEnv,
        params: &'a Params,
        shared: &'a S,
    ) -> BoxFuture<'a, Result<Action, FlowError>>;

    /// Moves the steps this one holds (a nested flow's nodes) into `out`;
    /// a node holds none. Dropping a flow takes its nest apart with this in
    /// a loop ([`drop_nested`]), so a nest of any depth is dropped without
    /// a stack frame per level.
    fn take_steps(&mut self, out: &mut Vec<Box<dyn AsyncStep<S>>>) {
        let _ = out;
    }

    /// What the step is, for drawing its flow's graph (`to_mermaid`).
    fn shape(&self) -> Shape<'_>;
}

/// Drops `steps` and every step nested in them, breadth first, in a loop:
/// each step gives up the steps it holds before it is dropped, so no drop
/// recurses into another flow.
pub(crate) fn drop_nested<S>(mut steps: Vec<Box<dyn AsyncStep<S>>>) {
    while let Some(mut step) = steps.pop() {
        step.take_steps(&mut steps);
    }
}

/// A step that can also run inside a sync flow.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a step of a sync flow",
    note = "steps are made by `Flow::add`/`start` from a `Node`, `BatchNode` or sync flow; async nodes and flows run in an `AsyncFlow`"
)]
pub trait SyncStep<S>: AsyncStep<S> {
    /// Runs the step under `name` with the enclosing orchestration's params.
    fn run_sync(
        &self,
        name: &Cow<'static, str>,
        env: &RunEnv,
        params: &Params,
        shared: &S,
    ) -> Result<Action, FlowError>;
}

/// A step ready to be added to a graph: its name, its boxed form, and the
/// wiring warnings it carries (a nested flow's), which its new parent adopts.
#[derive(Debug)]
pub struct StepParts<T: ?Sized> {
    pub(crate) name: Cow<'static, str>,
    pub(crate) step: Box<T>,
    pub(crate) warnings: Vec<FlowWarning>,
}

/// Something a sync [`Flow`](crate::Flow) can hold: a [`Node`], a
/// [`BatchNode`], a `Flow` or a `BatchFlow`. `M` only tells the impls apart.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot run in a sync `Flow`",
    label = "not a `Node`, `BatchNode`, `Flow` or `BatchFlow`",
    note = "a sync `Flow` holds only sync nodes and flows; an `AsyncNode`, `AsyncBatchNode`, `AsyncParallelBatchNode` or async flow runs in an `AsyncFlow`: use `AsyncFlow::new().start(..)`, which also takes every sync node and flow",
    note = "a node's shared-store type must be the flow's: `impl Node<MyStore> for ..` for a `Flow<MyStore>`"
)]
pub trait IntoSyncStep<S, M> {
    /// The step's name and its boxed form.
    fn into_sync_step(self) -> StepParts<dyn SyncStep<S>>;
}

/// Something an [`AsyncFlow`](crate::AsyncFlow) can hold: every node kind
/// and every flow kind, sync or async. `M` only tells the impls apart.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot run in an `AsyncFlow`",
    label = "not a node or flow",
    note = "an `AsyncFlow` holds anything that implements `Node`, `BatchNode`, `AsyncNode`, `AsyncBatchNode` or `AsyncParallelBatchNode` for its shared-store type, and every kind of flow over that store"
)]
pub trait IntoAsyncStep<S, M> {
    /// The step's name and its boxed form.
    fn into_async_step(self) -> StepParts<dyn AsyncStep<S>>;
}

/// Markers that let one `add` method take every kind of node.
pub mod kinds {
    /// A [`Node`](crate::Node).
    #[derive(Debug)]
    pub struct AsNode;
    /// A [`BatchNode`](crate::BatchNode).
    #[derive(Debug)]
    pub struct AsBatchNode;
    /// An [`AsyncNode`](crate::AsyncNode).
    #[derive(Debug)]
    pub struct AsAsyncNode;
    /// An [`AsyncBatchNode`](crate::AsyncBatchNode).
    #[derive(Debug)]
    pub struct AsAsyncBatchNode;
    /// An [`AsyncParallelBatchNode`](crate::AsyncParallelBatchNode).
    #[derive(Debug)]
    pub struct AsAsyncParallelBatchNode;
    /// Any flow.
    #[derive(Debug)]
    pub struct AsFlow;
}

/// Declares a step wrapper for one node kind: its async run (through the
/// kind's ops adapter) and its `IntoAsyncStep` impl.
macro_rules! node_step {
    ($step:ident, $trait:ident, $ops:ident, $runner:ident, $marker:ident, $kind:literal) => {
        pub(crate) struct $step<N>(N);

        impl<S: Sync, N: $trait<S>> AsyncStep<S> for $step<N> {
            fn run_async<'a>(
                &'a self,
                name: &'a Cow<'static, str>,
                _: &'a RunEnv,
                params: &'a Params,
                shared: &'a S,
            ) -> BoxFuture<'a, Result<Action, FlowError>> {
                async_node::$runner($ops(&self.0), name, params, shared)
            }

            fn shape(&self) -> Shape<'_> {
                Shape::Node { kind: $kind }
            }
        }

        impl<S: Sync + 'static, N: $trait<S>> IntoAsyncStep<S, kinds::$marker> for N {
            fn into_async_step(self) -> StepParts<dyn AsyncStep<S>> {
                StepParts { name: self.name(), step: Box::new($step(self)), warnings: Vec::new() }
            }
        }
    };
}

/// Adds the sync run and `IntoSyncStep` to a sync node kind's wrapper.
macro_rules! sync_node_step {
    ($step:ident, $trait:ident, $runner:ident, $marker:ident) => {
        impl<S: Sync, N: $trait<S>> SyncStep<S> for $step<N> {
            fn run_sync(
                &self,
                name: &Cow<'static, str>,
                _: &RunEnv,
                params: &Params,
                shared: &S,
            ) -> Result<Action, FlowError> {
                sync_node::$runner(&self.0, name, params, shared)
            }
        }

        impl<S: Sync + 'static, N: $trait<S>> IntoSyncStep<S, kinds::$marker> for N {
            fn into_sync_step(self) -> StepParts<dyn SyncStep<S>> {
                StepParts { name: self.name(), step: Box::new($step(self)), warnings: Vec::new() }
            }
        }
    };
}

node_step!(NodeStep, Node, SyncOps, run_node, AsNode, "Node");
node_step!(BatchNodeStep, BatchNode, SyncBatchOps, run_batch_node, AsBatchNode, "BatchNode");
node_step!(AsyncNodeStep, AsyncNode, AsyncOps, run_node, AsAsyncNode, "AsyncNode");
node_step!(AsyncBatchNodeStep, AsyncBatchNode, AsyncBatchOps, run_batch_node, AsAsyncBatchNode, "AsyncBatchNode");
node_step!(
    ParallelBatchNodeStep,
    AsyncParallelBatchNode,
    ParallelBatchOps,
    run_batch_node,
    AsAsyncParallelBatchNode,
    "AsyncParallelBatchNode"
);
sync_node_step!(NodeStep, Node, run_node, AsNode);
sync_node_step!(BatchNodeStep, BatchNode, run_batch_node, AsBatchNode);

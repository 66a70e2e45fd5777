//! What a flow's graph holds: any node kind or nested flow, behind one
//! object-safe interface. Users never name these traits; they pass nodes to
//! `Flow::add`, which picks the right wrapper by the node's trait.

use std::borrow::Cow;

use futures_util::future::BoxFuture;

use crate::action::Action;
use crate::async_node::{AsyncBatchNode, AsyncNode, AsyncParallelBatchNode};
use crate::error::FlowError;
use crate::node::{BatchNode, Node};
use crate::params::Params;
use crate::run::ops::{AsyncBatchOps, AsyncOps, ParallelBatchOps, SyncBatchOps, SyncOps};
use crate::run::{RunEnv, async_node, sync_node};

/// A step that can run inside an async flow.
pub trait AsyncStep<S>: Send + Sync {
    /// Runs the step under `name` with the enclosing orchestration's params.
    fn run_async<'a>(
        &'a self,
        name: &'a str,
        env: &'a RunEnv,
        params: &'a Params,
        shared: &'a S,
    ) -> BoxFuture<'a, Result<Action, FlowError>>;
}

/// A step that can also run inside a sync flow.
pub trait SyncStep<S>: AsyncStep<S> {
    /// Runs the step under `name` with the enclosing orchestration's params.
    fn run_sync(&self, name: &str, env: &RunEnv, params: &Params, shared: &S) -> Result<Action, FlowError>;
}

/// Something a sync [`Flow`](crate::Flow) can hold: a [`Node`], a
/// [`BatchNode`], a `Flow` or a `BatchFlow`. `M` only tells the impls apart.
pub trait IntoSyncStep<S, M> {
    /// The step's name and its boxed form.
    fn into_sync_step(self) -> (Cow<'static, str>, Box<dyn SyncStep<S>>);
}

/// Something an [`AsyncFlow`](crate::AsyncFlow) can hold: every node kind
/// and every flow kind, sync or async. `M` only tells the impls apart.
pub trait IntoAsyncStep<S, M> {
    /// The step's name and its boxed form.
    fn into_async_step(self) -> (Cow<'static, str>, Box<dyn AsyncStep<S>>);
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

pub(crate) struct NodeStep<N>(N);
pub(crate) struct BatchNodeStep<N>(N);
pub(crate) struct AsyncNodeStep<N>(N);
pub(crate) struct AsyncBatchNodeStep<N>(N);
pub(crate) struct ParallelBatchNodeStep<N>(N);

impl<S: Sync, N: Node<S>> AsyncStep<S> for NodeStep<N> {
    fn run_async<'a>(
        &'a self,
        name: &'a str,
        _: &'a RunEnv,
        params: &'a Params,
        shared: &'a S,
    ) -> BoxFuture<'a, Result<Action, FlowError>> {
        async_node::run_node(SyncOps(&self.0), name, params, shared)
    }
}

impl<S: Sync, N: Node<S>> SyncStep<S> for NodeStep<N> {
    fn run_sync(&self, name: &str, _: &RunEnv, params: &Params, shared: &S) -> Result<Action, FlowError> {
        sync_node::run_node(&self.0, name, params, shared)
    }
}

impl<S: Sync, N: BatchNode<S>> AsyncStep<S> for BatchNodeStep<N> {
    fn run_async<'a>(
        &'a self,
        name: &'a str,
        _: &'a RunEnv,
        params: &'a Params,
        shared: &'a S,
    ) -> BoxFuture<'a, Result<Action, FlowError>> {
        async_node::run_batch_node(SyncBatchOps(&self.0), name, params, shared)
    }
}

impl<S: Sync, N: BatchNode<S>> SyncStep<S> for BatchNodeStep<N> {
    fn run_sync(&self, name: &str, _: &RunEnv, params: &Params, shared: &S) -> Result<Action, FlowError> {
        sync_node::run_batch_node(&self.0, name, params, shared)
    }
}

impl<S: Sync, N: AsyncNode<S>> AsyncStep<S> for AsyncNodeStep<N> {
    fn run_async<'a>(
        &'a self,
        name: &'a str,
        _: &'a RunEnv,
        params: &'a Params,
        shared: &'a S,
    ) -> BoxFuture<'a, Result<Action, FlowError>> {
        async_node::run_node(AsyncOps(&self.0), name, params, shared)
    }
}

impl<S: Sync, N: AsyncBatchNode<S>> AsyncStep<S> for AsyncBatchNodeStep<N> {
    fn run_async<'a>(
        &'a self,
        name: &'a str,
        _: &'a RunEnv,
        params: &'a Params,
        shared: &'a S,
    ) -> BoxFuture<'a, Result<Action, FlowError>> {
        async_node::run_batch_node(AsyncBatchOps(&self.0), name, params, shared)
    }
}

impl<S: Sync, N: AsyncParallelBatchNode<S>> AsyncStep<S> for ParallelBatchNodeStep<N> {
    fn run_async<'a>(
        &'a self,
        name: &'a str,
        _: &'a RunEnv,
        params: &'a Params,
        shared: &'a S,
    ) -> BoxFuture<'a, Result<Action, FlowError>> {
        async_node::run_batch_node(ParallelBatchOps(&self.0), name, params, shared)
    }
}

impl<S: Sync + 'static, N: Node<S>> IntoSyncStep<S, kinds::AsNode> for N {
    fn into_sync_step(self) -> (Cow<'static, str>, Box<dyn SyncStep<S>>) {
        (self.name(), Box::new(NodeStep(self)))
    }
}

impl<S: Sync + 'static, N: BatchNode<S>> IntoSyncStep<S, kinds::AsBatchNode> for N {
    fn into_sync_step(self) -> (Cow<'static, str>, Box<dyn SyncStep<S>>) {
        (self.name(), Box::new(BatchNodeStep(self)))
    }
}

impl<S: Sync + 'static, N: Node<S>> IntoAsyncStep<S, kinds::AsNode> for N {
    fn into_async_step(self) -> (Cow<'static, str>, Box<dyn AsyncStep<S>>) {
        (self.name(), Box::new(NodeStep(self)))
    }
}

impl<S: Sync + 'static, N: BatchNode<S>> IntoAsyncStep<S, kinds::AsBatchNode> for N {
    fn into_async_step(self) -> (Cow<'static, str>, Box<dyn AsyncStep<S>>) {
        (self.name(), Box::new(BatchNodeStep(self)))
    }
}

impl<S: Sync + 'static, N: AsyncNode<S>> IntoAsyncStep<S, kinds::AsAsyncNode> for N {
    fn into_async_step(self) -> (Cow<'static, str>, Box<dyn AsyncStep<S>>) {
        (self.name(), Box::new(AsyncNodeStep(self)))
    }
}

impl<S: Sync + 'static, N: AsyncBatchNode<S>> IntoAsyncStep<S, kinds::AsAsyncBatchNode> for N {
    fn into_async_step(self) -> (Cow<'static, str>, Box<dyn AsyncStep<S>>) {
        (self.name(), Box::new(AsyncBatchNodeStep(self)))
    }
}

impl<S: Sync + 'static, N: AsyncParallelBatchNode<S>> IntoAsyncStep<S, kinds::AsAsyncParallelBatchNode> for N {
    fn into_async_step(self) -> (Cow<'static, str>, Box<dyn AsyncStep<S>>) {
        (self.name(), Box::new(ParallelBatchNodeStep(self)))
    }
}

//! One async view of every node kind, so a single runner serves them all.
#![allow(
    clippy::manual_async_fn,
    reason = "an `async fn` would capture the store type `S`, which these futures never borrow"
)]

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::action::Action;
use crate::async_node::{AsyncBatchNode, AsyncNode, AsyncParallelBatchNode};
use crate::context::Ctx;
use crate::error::BoxError;
use crate::node::{BatchNode, Node};
use crate::observation::Observation;

/// The hooks of a single-item node, as futures.
pub(crate) trait NodeOps<S>: Sync {
    type Prep: Serialize + Send + Sync;
    type Exec: Serialize + Send;
    const KIND: &'static str;

    fn observation(&self) -> Observation;
    fn max_retries(&self) -> usize;
    fn wait(&self) -> Duration;
    fn prep<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
    ) -> impl Future<Output = Result<Self::Prep, BoxError>> + Send + 'a;
    fn exec<'a>(
        &'a self,
        ctx: Ctx<'a>,
        prep: &'a Self::Prep,
    ) -> impl Future<Output = Result<Self::Exec, BoxError>> + Send + 'a;
    fn fallback<'a>(
        &'a self,
        ctx: Ctx<'a>,
        prep: &'a Self::Prep,
        error: BoxError,
    ) -> impl Future<Output = Result<Self::Exec, BoxError>> + Send + 'a;
    fn post<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
        prep: Self::Prep,
        exec: Self::Exec,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send + 'a;
}

/// How a batch runs its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Concurrency {
    Sequential,
    /// All at once, or at most this many.
    Parallel(Option<usize>),
}

/// The hooks of a batch node, as futures.
pub(crate) trait BatchOps<S>: Sync {
    type Item: Serialize + Send + Sync;
    type Output: Serialize + Send;
    const KIND: &'static str;

    fn observation(&self) -> Observation;
    fn max_retries(&self) -> usize;
    fn wait(&self) -> Duration;
    fn concurrency(&self) -> Concurrency;
    fn prep<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
    ) -> impl Future<Output = Result<Vec<Self::Item>, BoxError>> + Send + 'a;
    fn exec<'a>(
        &'a self,
        ctx: Ctx<'a>,
        item: &'a Self::Item,
    ) -> impl Future<Output = Result<Self::Output, BoxError>> + Send + 'a;
    fn fallback<'a>(
        &'a self,
        ctx: Ctx<'a>,
        item: &'a Self::Item,
        error: BoxError,
    ) -> impl Future<Output = Result<Self::Output, BoxError>> + Send + 'a;
    fn post<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
        items: Vec<Self::Item>,
        outputs: Vec<Self::Output>,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send + 'a;
}

/// A sync [`Node`] seen through [`NodeOps`]: each hook runs when its future
/// is first polled.
pub(crate) struct SyncOps<'n, N>(pub(crate) &'n N);
/// An [`AsyncNode`] seen through [`NodeOps`].
pub(crate) struct AsyncOps<'n, N>(pub(crate) &'n N);
/// A sync [`BatchNode`] seen through [`BatchOps`].
pub(crate) struct SyncBatchOps<'n, N>(pub(crate) &'n N);
/// An [`AsyncBatchNode`] seen through [`BatchOps`].
pub(crate) struct AsyncBatchOps<'n, N>(pub(crate) &'n N);
/// An [`AsyncParallelBatchNode`] seen through [`BatchOps`].
pub(crate) struct ParallelBatchOps<'n, N>(pub(crate) &'n N);

impl<S: Sync, N: Node<S>> NodeOps<S> for SyncOps<'_, N> {
    type Prep = N::Prep;
    type Exec = N::Exec;
    const KIND: &'static str = "Node";

    fn observation(&self) -> Observation {
        self.0.observation()
    }
    fn max_retries(&self) -> usize {
        self.0.max_retries()
    }
    fn wait(&self) -> Duration {
        self.0.wait()
    }
    fn prep<'a>(&'a self, ctx: Ctx<'a>, shared: &'a S) -> impl Future<Output = Result<N::Prep, BoxError>> + Send + 'a {
        async move { self.0.prep(&ctx, shared) }
    }
    fn exec<'a>(
        &'a self,
        ctx: Ctx<'a>,
        prep: &'a N::Prep,
    ) -> impl Future<Output = Result<N::Exec, BoxError>> + Send + 'a {
        async move { self.0.exec(&ctx, prep) }
    }
    fn fallback<'a>(
        &'a self,
        ctx: Ctx<'a>,
        prep: &'a N::Prep,
        error: BoxError,
    ) -> impl Future<Output = Result<N::Exec, BoxError>> + Send + 'a {
        async move { self.0.exec_fallback(&ctx, prep, error) }
    }
    fn post<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
        prep: N::Prep,
        exec: N::Exec,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send + 'a {
        async move { self.0.post(&ctx, shared, prep, exec) }
    }
}

impl<S: Sync, N: AsyncNode<S>> NodeOps<S> for AsyncOps<'_, N> {
    type Prep = N::Prep;
    type Exec = N::Exec;
    const KIND: &'static str = "AsyncNode";

    fn observation(&self) -> Observation {
        self.0.observation()
    }
    fn max_retries(&self) -> usize {
        self.0.max_retries()
    }
    fn wait(&self) -> Duration {
        self.0.wait()
    }
    fn prep<'a>(&'a self, ctx: Ctx<'a>, shared: &'a S) -> impl Future<Output = Result<N::Prep, BoxError>> + Send + 'a {
        async move { self.0.prep(&ctx, shared).await }
    }
    fn exec<'a>(
        &'a self,
        ctx: Ctx<'a>,
        prep: &'a N::Prep,
    ) -> impl Future<Output = Result<N::Exec, BoxError>> + Send + 'a {
        async move { self.0.exec(&ctx, prep).await }
    }
    fn fallback<'a>(
        &'a self,
        ctx: Ctx<'a>,
        prep: &'a N::Prep,
        error: BoxError,
    ) -> impl Future<Output = Result<N::Exec, BoxError>> + Send + 'a {
        async move { self.0.exec_fallback(&ctx, prep, error).await }
    }
    fn post<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
        prep: N::Prep,
        exec: N::Exec,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send + 'a {
        async move { self.0.post(&ctx, shared, prep, exec).await }
    }
}

macro_rules! batch_ops {
    ($adapter:ident, $trait:ident, $kind:literal, |$node:ident| $concurrency:expr, $($aw:tt)*) => {
        impl<S: Sync, N: $trait<S>> BatchOps<S> for $adapter<'_, N> {
            type Item = N::Item;
            type Output = N::Output;
            const KIND: &'static str = $kind;

            fn observation(&self) -> Observation {
                self.0.observation()
            }
            fn max_retries(&self) -> usize {
                self.0.max_retries()
            }
            fn wait(&self) -> Duration {
                self.0.wait()
            }
            fn concurrency(&self) -> Concurrency {
                let $node = self.0;
                $concurrency
            }
            fn prep<'a>(&'a self, ctx: Ctx<'a>, shared: &'a S) -> impl Future<Output = Result<Vec<N::Item>, BoxError>> + Send + 'a {
                async move { self.0.prep(&ctx, shared)$($aw)* }
            }
            fn exec<'a>(&'a self, ctx: Ctx<'a>, item: &'a N::Item) -> impl Future<Output = Result<N::Output, BoxError>> + Send + 'a {
                async move { self.0.exec(&ctx, item)$($aw)* }
            }
            fn fallback<'a>(
                &'a self,
                ctx: Ctx<'a>,
                item: &'a N::Item,
                error: BoxError,
            ) -> impl Future<Output = Result<N::Output, BoxError>> + Send + 'a {
                async move { self.0.exec_fallback(&ctx, item, error)$($aw)* }
            }
            fn post<'a>(
                &'a self,
                ctx: Ctx<'a>,
                shared: &'a S,
                items: Vec<N::Item>,
                outputs: Vec<N::Output>,
            ) -> impl Future<Output = Result<Action, BoxError>> + Send + 'a {
                async move { self.0.post(&ctx, shared, items, outputs)$($aw)* }
            }
        }
    };
}

batch_ops!(SyncBatchOps, BatchNode, "BatchNode", |_node| Concurrency::Sequential,);
batch_ops!(AsyncBatchOps, AsyncBatchNode, "AsyncBatchNode", |_node| Concurrency::Sequential, .await);
batch_ops!(
    ParallelBatchOps,
    AsyncParallelBatchNode,
    "AsyncParallelBatchNode",
    |node| Concurrency::Parallel(node.max_concurrency()),
    .await
);

use crate::hooks::{AsyncBatchFlowHooks, AsyncFlowHooks, BatchFlowHooks, FlowHooks};
use crate::params::Params;

/// A flow's hooks, as futures.
pub(crate) trait FlowHooksOps<S>: Sync {
    type Prep: Serialize + Send + Sync;
    const NOOP: bool;

    fn prep<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
    ) -> impl Future<Output = Result<Self::Prep, BoxError>> + Send + 'a;
    fn post<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
        prep: Self::Prep,
        last: Action,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send + 'a;
}

/// A batch flow's hooks, as futures.
pub(crate) trait BatchHooksOps<S>: Sync {
    fn prep<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
    ) -> impl Future<Output = Result<Vec<Params>, BoxError>> + Send + 'a;
    fn post<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
        batches: Vec<Params>,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send + 'a;
}

/// Sync [`FlowHooks`] seen through [`FlowHooksOps`].
pub(crate) struct SyncFlowHooksOps<'h, H>(pub(crate) &'h H);
/// [`AsyncFlowHooks`] seen through [`FlowHooksOps`].
pub(crate) struct AsyncFlowHooksOps<'h, H>(pub(crate) &'h H);
/// Sync [`BatchFlowHooks`] seen through [`BatchHooksOps`].
pub(crate) struct SyncBatchHooksOps<'h, H>(pub(crate) &'h H);
/// [`AsyncBatchFlowHooks`] seen through [`BatchHooksOps`].
pub(crate) struct AsyncBatchHooksOps<'h, H>(pub(crate) &'h H);

impl<S: Sync, H: FlowHooks<S>> FlowHooksOps<S> for SyncFlowHooksOps<'_, H> {
    type Prep = H::Prep;
    const NOOP: bool = H::NOOP;

    fn prep<'a>(&'a self, ctx: Ctx<'a>, shared: &'a S) -> impl Future<Output = Result<H::Prep, BoxError>> + Send + 'a {
        async move { self.0.prep(&ctx, shared) }
    }
    fn post<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
        prep: H::Prep,
        last: Action,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send + 'a {
        async move { self.0.post(&ctx, shared, prep, last) }
    }
}

impl<S: Sync, H: AsyncFlowHooks<S>> FlowHooksOps<S> for AsyncFlowHooksOps<'_, H> {
    type Prep = H::Prep;
    const NOOP: bool = H::NOOP;

    fn prep<'a>(&'a self, ctx: Ctx<'a>, shared: &'a S) -> impl Future<Output = Result<H::Prep, BoxError>> + Send + 'a {
        async move { self.0.prep(&ctx, shared).await }
    }
    fn post<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
        prep: H::Prep,
        last: Action,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send + 'a {
        async move { self.0.post(&ctx, shared, prep, last).await }
    }
}

impl<S: Sync, H: BatchFlowHooks<S>> BatchHooksOps<S> for SyncBatchHooksOps<'_, H> {
    fn prep<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
    ) -> impl Future<Output = Result<Vec<Params>, BoxError>> + Send + 'a {
        async move { self.0.prep(&ctx, shared) }
    }
    fn post<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
        batches: Vec<Params>,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send + 'a {
        async move { self.0.post(&ctx, shared, batches) }
    }
}

impl<S: Sync, H: AsyncBatchFlowHooks<S>> BatchHooksOps<S> for AsyncBatchHooksOps<'_, H> {
    fn prep<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
    ) -> impl Future<Output = Result<Vec<Params>, BoxError>> + Send + 'a {
        async move { self.0.prep(&ctx, shared).await }
    }
    fn post<'a>(
        &'a self,
        ctx: Ctx<'a>,
        shared: &'a S,
        batches: Vec<Params>,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send + 'a {
        async move { self.0.post(&ctx, shared, batches).await }
    }
}

//! Asynchronous nodes: [`AsyncNode`], [`AsyncBatchNode`] and
//! [`AsyncParallelBatchNode`].
//!
//! The hooks return `impl Future + Send`, so implementations can simply be
//! `async fn`s, and flows can run on a multi-threaded runtime.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::action::Action;
use crate::context::Ctx;
use crate::error::{BoxError, FlowError};
use crate::observation::Observation;
use crate::params::Params;
use crate::run::async_node;
use crate::store::SharedStore;

/// The async form of [`Node`](crate::Node): the same phases, retries,
/// waits (`tokio::time::sleep`) and fallback, with `async` hooks.
///
/// ```
/// use pocketflow::{Action, AsyncNode, BoxError, Ctx, SharedStore};
///
/// struct Fetch;
///
/// impl AsyncNode for Fetch {
///     type Prep = String;
///     type Exec = usize;
///
///     async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
///         Ok(shared.get("url")?)
///     }
///     async fn exec(&self, _: &Ctx<'_>, url: &String) -> Result<usize, BoxError> {
///         tokio::task::yield_now().await; // a real node would await I/O here
///         Ok(url.len())
///     }
///     async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, len: usize) -> Result<Action, BoxError> {
///         shared.set("len", len)?;
///         Ok("fetched".into())
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let shared = SharedStore::from_iter([("url", "https://example.com")]);
/// assert_eq!(Fetch.run(&shared).await?, "fetched");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an `AsyncNode`",
    label = "not an `AsyncNode`",
    note = "a sync `Node` runs with `.run(&shared)`, and is added to a `Flow` or an `AsyncFlow` as it is"
)]
pub trait AsyncNode<S = SharedStore>: Send + Sync + 'static {
    /// What `prep` hands to `exec` and `post`.
    type Prep: Serialize + Send + Sync;
    /// What `exec` (or the fallback) returns.
    type Exec: Serialize + Send;

    /// The name used in spans and errors; by default the type's name.
    fn name(&self) -> Cow<'static, str> {
        crate::run::short_type_name::<Self>()
    }

    /// What the node is, for observability tools: recorded on its `node`
    /// span as the `observation` field (default [`Observation::Span`]).
    fn observation(&self) -> Observation {
        Observation::Span
    }

    /// Total exec attempts (default 1).
    fn max_retries(&self) -> usize {
        1
    }

    /// The pause between failed attempts (default none).
    fn wait(&self) -> Duration {
        Duration::ZERO
    }

    /// Reads what the node needs from the shared store.
    fn prep(&self, ctx: &Ctx<'_>, shared: &S) -> impl Future<Output = Result<Self::Prep, BoxError>> + Send;

    /// Does the work. Retried on error up to `max_retries` attempts.
    fn exec(&self, ctx: &Ctx<'_>, prep: &Self::Prep) -> impl Future<Output = Result<Self::Exec, BoxError>> + Send;

    /// Runs once after the last failed attempt. The default returns the
    /// error, failing the run.
    fn exec_fallback(
        &self,
        ctx: &Ctx<'_>,
        prep: &Self::Prep,
        error: BoxError,
    ) -> impl Future<Output = Result<Self::Exec, BoxError>> + Send {
        let _ = (ctx, prep);
        async move { Err(error) }
    }

    /// Writes results and picks the action (default [`Action::NONE`]).
    fn post(
        &self,
        ctx: &Ctx<'_>,
        shared: &S,
        prep: Self::Prep,
        exec: Self::Exec,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send {
        let _ = (ctx, shared, prep, exec);
        async { Ok(Action::NONE) }
    }

    /// Runs this node alone with empty params (Python's `run_async`).
    fn run(&self, shared: &S) -> impl Future<Output = Result<Action, FlowError>> + Send
    where
        Self: Sized,
        S: Sync,
    {
        async move { self.run_with_params(shared, &Params::new()).await }
    }

    /// Runs this node alone with the given params.
    fn run_with_params(&self, shared: &S, params: &Params) -> impl Future<Output = Result<Action, FlowError>> + Send
    where
        Self: Sized,
        S: Sync,
    {
        async move { async_node::run_node(async_node::AsyncOps(self), &self.name(), params, shared).await }
    }
}

macro_rules! async_batch_node_trait {
    ($(#[$doc:meta])* $name:ident, $runner:ident, { $($extra:tt)* }) => {
        $(#[$doc])*
        pub trait $name<S = SharedStore>: Send + Sync + 'static {
            /// One unit of work.
            type Item: Serialize + Send + Sync;
            /// The result for one item.
            type Output: Serialize + Send;

            /// The name used in spans and errors; by default the type's name.
            fn name(&self) -> Cow<'static, str> {
                crate::run::short_type_name::<Self>()
            }

            /// What the node is, for observability tools: recorded on its
            /// `node` span as the `observation` field (default [`Observation::Span`]).
            fn observation(&self) -> Observation {
                Observation::Span
            }

            /// Total exec attempts per item (default 1).
            fn max_retries(&self) -> usize {
                1
            }

            /// The pause between failed attempts (default none).
            fn wait(&self) -> Duration {
                Duration::ZERO
            }

            $($extra)*

            /// Produces the items.
            fn prep(&self, ctx: &Ctx<'_>, shared: &S) -> impl Future<Output = Result<Vec<Self::Item>, BoxError>> + Send;

            /// Processes one item. Retried on error; each item counts its own attempts.
            fn exec(&self, ctx: &Ctx<'_>, item: &Self::Item) -> impl Future<Output = Result<Self::Output, BoxError>> + Send;

            /// Runs once for an item whose last attempt failed. The default
            /// returns the error, failing the run.
            fn exec_fallback(
                &self,
                ctx: &Ctx<'_>,
                item: &Self::Item,
                error: BoxError,
            ) -> impl Future<Output = Result<Self::Output, BoxError>> + Send {
                let _ = (ctx, item);
                async move { Err(error) }
            }

            /// Receives every item and its result, in order, and picks the action.
            fn post(
                &self,
                ctx: &Ctx<'_>,
                shared: &S,
                items: Vec<Self::Item>,
                outputs: Vec<Self::Output>,
            ) -> impl Future<Output = Result<Action, BoxError>> + Send {
                let _ = (ctx, shared, items, outputs);
                async { Ok(Action::NONE) }
            }

            /// Runs this node alone with empty params.
            fn run(&self, shared: &S) -> impl Future<Output = Result<Action, FlowError>> + Send
            where
                Self: Sized,
                S: Sync,
            {
                async move { self.run_with_params(shared, &Params::new()).await }
            }

            /// Runs this node alone with the given params.
            fn run_with_params(&self, shared: &S, params: &Params) -> impl Future<Output = Result<Action, FlowError>> + Send
            where
                Self: Sized,
                S: Sync,
            {
                async move { async_node::run_batch_node(async_node::$runner(self), &self.name(), params, shared).await }
            }
        }
    };
}

async_batch_node_trait!(
    /// The async form of [`BatchNode`](crate::BatchNode): items run one after
    /// another, each with its own retries and fallback.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not an `AsyncBatchNode`",
        label = "not an `AsyncBatchNode`",
        note = "a sync `BatchNode` runs with `.run(&shared)`, and is added to a `Flow` or an `AsyncFlow` as it is"
    )]
    AsyncBatchNode,
    AsyncBatchOps,
    {}
);

async_batch_node_trait!(
    /// Like [`AsyncBatchNode`], but every item's `exec` runs concurrently
    /// (at most [`max_concurrency`](AsyncParallelBatchNode::max_concurrency)
    /// at a time, if set). Results keep the items' order.
    ///
    /// Each item counts its own attempts (the Python original shares one
    /// counter between concurrent items). When an item fails for good, the
    /// items still running are cancelled (their futures dropped, their spans
    /// marked `cancelled`) and the error is returned: no task keeps running
    /// unobserved.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not an `AsyncParallelBatchNode`",
        label = "not an `AsyncParallelBatchNode`",
        note = "a sync `BatchNode` runs with `.run(&shared)`, and is added to a `Flow` or an `AsyncFlow` as it is"
    )]
    AsyncParallelBatchNode,
    ParallelBatchOps,
    {
        /// At most this many items run at once; `None` (the default) runs
        /// them all at once, as `asyncio.gather` does.
        fn max_concurrency(&self) -> Option<usize> {
            None
        }
    }
);

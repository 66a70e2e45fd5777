//! A flow's own `prep` and `post`: what subclassing `Flow` gives in Python.

use std::future::Future;

use serde::Serialize;

use crate::action::Action;
use crate::context::Ctx;
use crate::error::BoxError;
use crate::params::Params;
use crate::store::SharedStore;

/// The `prep`/`post` of a [`Flow`](crate::Flow). `prep` runs before the
/// first node; `post` receives its result and the last node's action, and
/// its return value is the flow's result (and, for a nested flow, the
/// action the parent routes on). A flow's `exec` is never called.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not the hooks of a sync `Flow`",
    label = "not `FlowHooks`",
    note = "hooks with async `prep`/`post` implement `AsyncFlowHooks` and go on an `AsyncFlow`: `AsyncFlow::new().with_hooks(..)`"
)]
pub trait FlowHooks<S = SharedStore>: Send + Sync + 'static {
    /// What `prep` hands to `post`.
    type Prep: Serialize + Send + Sync;

    /// Hooks that do nothing get no `prep`/`post` spans.
    #[doc(hidden)]
    const NOOP: bool = false;

    /// Runs before the flow's first node.
    ///
    /// # Errors
    /// Any error stops the flow before any node runs.
    fn prep(&self, ctx: &Ctx<'_>, shared: &S) -> Result<Self::Prep, BoxError>;

    /// Runs after the last node with its action; the default returns it.
    ///
    /// # Errors
    /// Any error fails the flow.
    fn post(&self, ctx: &Ctx<'_>, shared: &S, prep: Self::Prep, last: Action) -> Result<Action, BoxError> {
        let _ = (ctx, shared, prep);
        Ok(last)
    }
}

/// The async `prep`/`post` of an [`AsyncFlow`](crate::AsyncFlow).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not the hooks of an `AsyncFlow`",
    label = "not `AsyncFlowHooks`",
    note = "hooks with sync `prep`/`post` implement `FlowHooks` and go on a sync `Flow`: `Flow::new().with_hooks(..)`"
)]
pub trait AsyncFlowHooks<S = SharedStore>: Send + Sync + 'static {
    /// What `prep` hands to `post`.
    type Prep: Serialize + Send + Sync;

    /// Hooks that do nothing get no `prep`/`post` spans.
    #[doc(hidden)]
    const NOOP: bool = false;

    /// Runs before the flow's first node.
    fn prep(&self, ctx: &Ctx<'_>, shared: &S) -> impl Future<Output = Result<Self::Prep, BoxError>> + Send;

    /// Runs after the last node with its action; the default returns it.
    fn post(
        &self,
        ctx: &Ctx<'_>,
        shared: &S,
        prep: Self::Prep,
        last: Action,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send {
        let _ = (ctx, shared, prep);
        async move { Ok(last) }
    }
}

/// No flow-level hooks: the flow's result is its last node's action.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl<S> FlowHooks<S> for NoHooks {
    type Prep = ();
    const NOOP: bool = true;

    fn prep(&self, _: &Ctx<'_>, _: &S) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<S: Sync> AsyncFlowHooks<S> for NoHooks {
    type Prep = ();
    const NOOP: bool = true;

    async fn prep(&self, _: &Ctx<'_>, _: &S) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The `prep`/`post` of a [`BatchFlow`](crate::BatchFlow): `prep` returns
/// one [`Params`] per run of the flow; each run gets the flow's params with
/// that entry's keys set over them. `post` gets the list back; its action is
/// the batch flow's result (by default [`Action::NONE`]: the runs' own
/// actions are discarded, as in PocketFlow).
///
/// A plain closure `|ctx: &Ctx<'_>, shared: &S| -> Result<Vec<Params>, BoxError>`
/// works as batch hooks.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not the hooks of a sync `BatchFlow`",
    label = "not `BatchFlowHooks`",
    note = "a closure `|ctx: &Ctx<'_>, shared: &S| -> Result<Vec<Params>, BoxError>` works as batch hooks",
    note = "hooks with an async `prep` implement `AsyncBatchFlowHooks` and go on an `AsyncBatchFlow` or `AsyncParallelBatchFlow`"
)]
pub trait BatchFlowHooks<S = SharedStore>: Send + Sync + 'static {
    /// The parameter sets, one per run.
    ///
    /// # Errors
    /// Any error stops the batch before any run.
    fn prep(&self, ctx: &Ctx<'_>, shared: &S) -> Result<Vec<Params>, BoxError>;

    /// Runs after every run.
    ///
    /// # Errors
    /// Any error fails the batch flow.
    fn post(&self, ctx: &Ctx<'_>, shared: &S, batches: Vec<Params>) -> Result<Action, BoxError> {
        let _ = (ctx, shared, batches);
        Ok(Action::NONE)
    }
}

/// The async `prep`/`post` of an [`AsyncBatchFlow`](crate::AsyncBatchFlow)
/// or [`AsyncParallelBatchFlow`](crate::AsyncParallelBatchFlow); see
/// [`BatchFlowHooks`]. A plain closure works here too.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not the hooks of an async batch flow",
    label = "not `AsyncBatchFlowHooks`",
    note = "a closure `|ctx: &Ctx<'_>, shared: &S| -> Result<Vec<Params>, BoxError>` works as batch hooks",
    note = "hooks with a sync `prep` and `post` implement `BatchFlowHooks`, for a sync `BatchFlow`"
)]
pub trait AsyncBatchFlowHooks<S = SharedStore>: Send + Sync + 'static {
    /// The parameter sets, one per run.
    fn prep(&self, ctx: &Ctx<'_>, shared: &S) -> impl Future<Output = Result<Vec<Params>, BoxError>> + Send;

    /// Runs after every run.
    fn post(
        &self,
        ctx: &Ctx<'_>,
        shared: &S,
        batches: Vec<Params>,
    ) -> impl Future<Output = Result<Action, BoxError>> + Send {
        let _ = (ctx, shared, batches);
        async { Ok(Action::NONE) }
    }
}

impl<S, F> BatchFlowHooks<S> for F
where
    F: Fn(&Ctx<'_>, &S) -> Result<Vec<Params>, BoxError> + Send + Sync + 'static,
{
    fn prep(&self, ctx: &Ctx<'_>, shared: &S) -> Result<Vec<Params>, BoxError> {
        self(ctx, shared)
    }
}

impl<S: Sync, F> AsyncBatchFlowHooks<S> for F
where
    F: Fn(&Ctx<'_>, &S) -> Result<Vec<Params>, BoxError> + Send + Sync + 'static,
{
    async fn prep(&self, ctx: &Ctx<'_>, shared: &S) -> Result<Vec<Params>, BoxError> {
        self(ctx, shared)
    }
}

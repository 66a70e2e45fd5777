//! Synchronous nodes: [`Node`] and [`BatchNode`].

use std::borrow::Cow;
use std::time::Duration;

use serde::Serialize;

use crate::action::Action;
use crate::context::Ctx;
use crate::error::{BoxError, FlowError};
use crate::observation::Observation;
use crate::params::Params;
use crate::run::sync_node;
use crate::store::SharedStore;

/// A unit of work: `prep` reads the shared store, `exec` does the work
/// (retried), `post` writes results back and picks the next action.
///
/// `max_retries` is the total number of `exec` attempts (1 = no retry);
/// [`wait`](Node::wait) passes between attempts, not after the last; when
/// every attempt fails, [`exec_fallback`](Node::exec_fallback) receives the
/// last error, and its result stands in for `exec`'s. Only `exec` is retried:
/// an error in `prep` or `post` ends the run at once.
///
/// ```
/// use pocketflow::{Action, BoxError, Ctx, Node, SharedStore};
///
/// struct Greet;
///
/// impl Node for Greet {
///     type Prep = String;
///     type Exec = String;
///
///     fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
///         Ok(shared.get("name")?)
///     }
///     fn exec(&self, _: &Ctx<'_>, name: &String) -> Result<String, BoxError> {
///         Ok(format!("Hello, {name}!"))
///     }
///     fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, greeting: String) -> Result<Action, BoxError> {
///         shared.set("greeting", greeting)?;
///         Ok(Action::NONE)
///     }
/// }
///
/// let shared = SharedStore::from_iter([("name", "Ada")]);
/// Greet.run(&shared)?;
/// assert_eq!(shared.get::<String>("greeting")?, "Hello, Ada!");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Node`",
    label = "not a sync `Node`",
    note = "an `AsyncNode` runs with `.run(&shared).await` or in an `AsyncFlow`, not where a sync `Node` is needed",
    note = "a `Node` is implemented for one shared-store type: `impl Node<MyStore> for ..` (`SharedStore` when none is named)"
)]
pub trait Node<S = SharedStore>: Send + Sync + 'static {
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

    /// Total exec attempts (PocketFlow's `max_retries`, default 1).
    fn max_retries(&self) -> usize {
        1
    }

    /// The pause between failed attempts (default none).
    fn wait(&self) -> Duration {
        Duration::ZERO
    }

    /// Reads what the node needs from the shared store.
    ///
    /// # Errors
    /// Any error stops the run; `prep` is not retried.
    fn prep(&self, ctx: &Ctx<'_>, shared: &S) -> Result<Self::Prep, BoxError>;

    /// Does the work. Retried on error up to `max_retries` attempts.
    ///
    /// # Errors
    /// An error triggers the next attempt, or the fallback after the last.
    fn exec(&self, ctx: &Ctx<'_>, prep: &Self::Prep) -> Result<Self::Exec, BoxError>;

    /// Runs once after the last failed attempt, with its error. The default
    /// returns that error, failing the run.
    ///
    /// # Errors
    /// An error here fails the run.
    fn exec_fallback(&self, ctx: &Ctx<'_>, prep: &Self::Prep, error: BoxError) -> Result<Self::Exec, BoxError> {
        let _ = (ctx, prep);
        Err(error)
    }

    /// Writes results to the shared store and picks the next action. The
    /// default returns [`Action::NONE`], which follows `"default"`.
    ///
    /// # Errors
    /// Any error stops the run.
    fn post(&self, ctx: &Ctx<'_>, shared: &S, prep: Self::Prep, exec: Self::Exec) -> Result<Action, BoxError> {
        let _ = (ctx, shared, prep, exec);
        Ok(Action::NONE)
    }

    /// Runs this node alone with empty params and returns `post`'s action.
    /// Successors only run inside a [`Flow`](crate::Flow).
    ///
    /// # Errors
    /// The first hook error or panic, as a [`FlowError`].
    fn run(&self, shared: &S) -> Result<Action, FlowError>
    where
        Self: Sized,
    {
        self.run_with_params(shared, &Params::new())
    }

    /// Runs this node alone with the given params.
    ///
    /// # Errors
    /// The first hook error or panic, as a [`FlowError`].
    fn run_with_params(&self, shared: &S, params: &Params) -> Result<Action, FlowError>
    where
        Self: Sized,
    {
        sync_node::run_node(self, &self.name(), params, shared)
    }
}

/// A node whose `prep` returns a list of items: `exec` runs on each item in
/// turn, each with its own retries and fallback, and `post` receives all the
/// results in order. An empty list runs no `exec` at all.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `BatchNode`",
    label = "not a sync `BatchNode`",
    note = "an `AsyncBatchNode` or `AsyncParallelBatchNode` runs with `.run(&shared).await` or in an `AsyncFlow`, not where a sync `BatchNode` is needed"
)]
pub trait BatchNode<S = SharedStore>: Send + Sync + 'static {
    /// One unit of work.
    type Item: Serialize + Send + Sync;
    /// The result for one item.
    type Output: Serialize + Send;

    /// The name used in spans and errors; by default the type's name.
    fn name(&self) -> Cow<'static, str> {
        crate::run::short_type_name::<Self>()
    }

    /// What the node is, for observability tools: recorded on its `node`
    /// span as the `observation` field (default [`Observation::Span`]).
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

    /// Produces the items.
    ///
    /// # Errors
    /// Any error stops the run.
    fn prep(&self, ctx: &Ctx<'_>, shared: &S) -> Result<Vec<Self::Item>, BoxError>;

    /// Processes one item. Retried on error.
    ///
    /// # Errors
    /// An error triggers the next attempt, or the fallback after the last.
    fn exec(&self, ctx: &Ctx<'_>, item: &Self::Item) -> Result<Self::Output, BoxError>;

    /// Runs once for an item whose last attempt failed. The default returns
    /// the error, failing the run.
    ///
    /// # Errors
    /// An error here fails the run.
    fn exec_fallback(&self, ctx: &Ctx<'_>, item: &Self::Item, error: BoxError) -> Result<Self::Output, BoxError> {
        let _ = (ctx, item);
        Err(error)
    }

    /// Receives every item and its result, in order, and picks the action.
    ///
    /// # Errors
    /// Any error stops the run.
    fn post(
        &self,
        ctx: &Ctx<'_>,
        shared: &S,
        items: Vec<Self::Item>,
        outputs: Vec<Self::Output>,
    ) -> Result<Action, BoxError> {
        let _ = (ctx, shared, items, outputs);
        Ok(Action::NONE)
    }

    /// Runs this node alone with empty params.
    ///
    /// # Errors
    /// The first hook error or panic, as a [`FlowError`].
    fn run(&self, shared: &S) -> Result<Action, FlowError>
    where
        Self: Sized,
    {
        self.run_with_params(shared, &Params::new())
    }

    /// Runs this node alone with the given params.
    ///
    /// # Errors
    /// The first hook error or panic, as a [`FlowError`].
    fn run_with_params(&self, shared: &S, params: &Params) -> Result<Action, FlowError>
    where
        Self: Sized,
    {
        sync_node::run_batch_node(self, &self.name(), params, shared)
    }
}

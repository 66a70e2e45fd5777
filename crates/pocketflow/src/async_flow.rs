//! Async flows: [`AsyncFlow`], [`AsyncBatchFlow`] and
//! [`AsyncParallelBatchFlow`].

use std::borrow::Cow;
use std::fmt;

use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::action::Action;
use crate::error::FlowError;
use crate::flow::wiring_methods;
use crate::graph::{Graph, NodeId, Wiring};
use crate::hooks::{AsyncBatchFlowHooks, AsyncFlowHooks, NoHooks};
use crate::mermaid::{FlowShape, Shape, mermaid_methods};
use crate::options::{RunOptions, TraceFlow};
use crate::params::Params;
use crate::run::ops::{AsyncBatchHooksOps, AsyncFlowHooksOps, Concurrency};
use crate::run::orchestrate::{FlowMeta, run_batch_flow_async, run_flow_async};
use crate::run::{RunEnv, RunReport};
use crate::step::{AsyncStep, IntoAsyncStep, StepParts, drop_nested, kinds};
use crate::store::SharedStore;
use crate::warning::FlowWarning;

/// A flow that awaits its nodes. It holds every node kind: async nodes,
/// and sync nodes and sync flows too, so a flow can move to async one node
/// at a time. Sync nodes run on the calling task; their retry waits use
/// tokio's timer, so they never block the runtime (Python blocks the event
/// loop with `time.sleep`). Flows nest at most
/// [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH) deep on one thread;
/// past that, a run returns [`FlowError::NestingTooDeep`].
///
/// ```
/// use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Ctx, SharedStore};
///
/// struct Wait;
/// impl AsyncNode for Wait {
///     type Prep = ();
///     type Exec = &'static str;
///     async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> { Ok(()) }
///     async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<&'static str, BoxError> {
///         tokio::time::sleep(std::time::Duration::from_millis(1)).await;
///         Ok("done")
///     }
///     async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), out: &'static str) -> Result<Action, BoxError> {
///         shared.set("out", out)?;
///         Ok(Action::NONE)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut flow = AsyncFlow::named("Waiting");
/// flow.start(Wait);
/// let shared = SharedStore::new();
/// flow.run(&shared).await?;
/// assert_eq!(shared.get::<String>("out")?, "done");
/// # Ok(())
/// # }
/// ```
pub struct AsyncFlow<S = SharedStore, H = NoHooks> {
    pub(crate) name: Cow<'static, str>,
    pub(crate) graph: Graph<dyn AsyncStep<S>>,
    pub(crate) params: Params,
    pub(crate) options: RunOptions,
    hooks: H,
}

impl<S> AsyncFlow<S, NoHooks> {
    /// An empty flow named `AsyncFlow`.
    pub fn new() -> Self {
        Self::named("AsyncFlow")
    }

    /// An empty flow with a name.
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            graph: Graph::new(),
            params: Params::new(),
            options: RunOptions::new(),
            hooks: NoHooks,
        }
    }
}

impl<S> Default for AsyncFlow<S, NoHooks> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, H> AsyncFlow<S, H> {
    wiring_methods!(IntoAsyncStep, into_async_step);

    pub(crate) fn meta(&self, kind: &'static str) -> FlowMeta<'_> {
        FlowMeta { name: &self.name, kind, options: &self.options, graph: &self.graph }
    }

    fn flow_shape(&self) -> FlowShape<'_> {
        self.meta("AsyncFlow").shape()
    }

    mermaid_methods!();

    /// The flow with its own async `prep`/`post`.
    pub fn with_hooks<H2: AsyncFlowHooks<S>>(mut self, hooks: H2) -> AsyncFlow<S, H2> {
        // `AsyncFlow` has a `Drop`, so its fields are taken, not moved out.
        AsyncFlow {
            name: std::mem::take(&mut self.name),
            graph: std::mem::replace(&mut self.graph, Graph::new()),
            params: std::mem::take(&mut self.params),
            options: std::mem::take(&mut self.options),
            hooks,
        }
    }
}

impl<S: Serialize + Send + Sync + 'static, H: AsyncFlowHooks<S>> AsyncFlow<S, H> {
    /// Runs the flow with its own params (Python's `run_async`).
    ///
    /// # Errors
    /// The first node error or panic, which stops the flow.
    pub async fn run(&self, shared: &S) -> Result<Action, FlowError> {
        self.execute(shared, None, false).await.map(|report| report.action)
    }

    /// Runs the flow and also returns the warnings it raised.
    ///
    /// # Errors
    /// The first node error or panic, which stops the flow.
    pub async fn run_report(&self, shared: &S) -> Result<RunReport, FlowError> {
        self.execute(shared, None, true).await
    }

    /// Runs the flow with options for this run (session, user, tags,
    /// metadata, a remote parent), laid over the flow's own
    /// ([`TraceFlow::with_run_options`]), and returns the report.
    ///
    /// # Errors
    /// The first node error or panic, which stops the run.
    pub async fn run_with(&self, shared: &S, options: RunOptions) -> Result<RunReport, FlowError> {
        self.execute(shared, Some(options), true).await
    }

    async fn execute(
        &self,
        shared: &S,
        options: Option<RunOptions>,
        collect_stats: bool,
    ) -> Result<RunReport, FlowError> {
        let env = RunEnv::for_run(&self.options, options, collect_stats);
        let action = self.run_async(&self.name, &env, &self.params, shared).await?;
        Ok(env.report(action))
    }
}

impl<S: Serialize + Send + Sync + 'static, H: AsyncFlowHooks<S>> AsyncStep<S> for AsyncFlow<S, H> {
    fn run_async<'a>(
        &'a self,
        _: &'a Cow<'static, str>,
        env: &'a RunEnv,
        params: &'a Params,
        shared: &'a S,
    ) -> BoxFuture<'a, Result<Action, FlowError>> {
        run_flow_async(self.meta("AsyncFlow"), &self.graph, AsyncFlowHooksOps(&self.hooks), env, params, shared)
    }

    fn shape(&self) -> Shape<'_> {
        Shape::Flow(self.flow_shape())
    }

    fn take_steps(&mut self, out: &mut Vec<Box<dyn AsyncStep<S>>>) {
        out.extend(self.graph.drain_steps());
    }
}

/// A nest of flows is dropped in a loop, not by recursion (see `Flow`'s).
impl<S, H> Drop for AsyncFlow<S, H> {
    fn drop(&mut self) {
        drop_nested(self.graph.drain_steps().collect());
    }
}

impl<S: Serialize + Send + Sync + 'static, H: AsyncFlowHooks<S>> IntoAsyncStep<S, kinds::AsFlow> for AsyncFlow<S, H> {
    fn into_async_step(self) -> StepParts<dyn AsyncStep<S>> {
        StepParts { name: self.name.clone(), warnings: self.graph.warnings().to_vec(), step: Box::new(self) }
    }
}

impl<S, H> fmt::Debug for AsyncFlow<S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncFlow").field("name", &self.name).field("params", &self.params).finish_non_exhaustive()
    }
}

macro_rules! async_batch_flow {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $concurrency:expr) => {
        $(#[$doc])*
        pub struct $name<S, H> {
            flow: AsyncFlow<S, NoHooks>,
            hooks: H,
        }

        impl<S, H: AsyncBatchFlowHooks<S>> $name<S, H> {
            /// Runs `flow`'s graph once per parameter set from `hooks`. The
            /// batch flow takes `flow`'s name and params.
            pub fn new(flow: AsyncFlow<S, NoHooks>, hooks: H) -> Self {
                Self { flow, hooks }
            }

            /// Replaces the batch flow's params; each set's keys are laid over them.
            pub fn set_params(&mut self, params: Params) -> &mut Self {
                self.flow.params = params;
                self
            }

            /// The flow's name.
            pub fn name(&self) -> &str {
                &self.flow.name
            }

            fn flow_shape(&self) -> FlowShape<'_> {
                self.flow.meta($kind).shape()
            }

            mermaid_methods!();

            /// Renames the flow.
            #[must_use]
            pub fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
                self.flow.name = name.into();
                self
            }
        }

        impl<S: Serialize + Send + Sync + 'static, H: AsyncBatchFlowHooks<S>> $name<S, H> {
            /// Runs every parameter set and returns `post`'s action (by
            /// default [`Action::NONE`]).
            ///
            /// # Errors
            /// The first node error or panic, which stops the batch.
            pub async fn run(&self, shared: &S) -> Result<Action, FlowError> {
                self.execute(shared, None, false).await.map(|report| report.action)
            }

            /// Runs the batch and also returns the warnings it raised and
            /// the statistics of each run.
            ///
            /// # Errors
            /// The first node error or panic, which stops the batch.
            pub async fn run_report(&self, shared: &S) -> Result<RunReport, FlowError> {
                self.execute(shared, None, true).await
            }

            /// Runs the batch with options for this run, laid over the
            /// flow's own, and returns the report.
            ///
            /// # Errors
            /// The first node error or panic, which stops the batch.
            pub async fn run_with(&self, shared: &S, options: RunOptions) -> Result<RunReport, FlowError> {
                self.execute(shared, Some(options), true).await
            }

            async fn execute(
                &self,
                shared: &S,
                options: Option<RunOptions>,
                collect_stats: bool,
            ) -> Result<RunReport, FlowError> {
                let env = RunEnv::for_run(&self.flow.options, options, collect_stats);
                let action = self.run_async(&self.flow.name, &env, &self.flow.params, shared).await?;
                Ok(env.report(action))
            }
        }

        impl<S: Serialize + Send + Sync + 'static, H: AsyncBatchFlowHooks<S>> AsyncStep<S> for $name<S, H> {
            fn run_async<'a>(
                &'a self,
                _: &'a Cow<'static, str>,
                env: &'a RunEnv,
                params: &'a Params,
                shared: &'a S,
            ) -> BoxFuture<'a, Result<Action, FlowError>> {
                run_batch_flow_async(
                    self.flow.meta($kind),
                    $concurrency,
                    &self.flow.graph,
                    AsyncBatchHooksOps(&self.hooks),
                    env,
                    params,
                    shared,
                )
            }

            fn take_steps(&mut self, out: &mut Vec<Box<dyn AsyncStep<S>>>) {
                self.flow.take_steps(out);
            }

            fn shape(&self) -> Shape<'_> {
                Shape::Flow(self.flow_shape())
            }
        }

        impl<S: Serialize + Send + Sync + 'static, H: AsyncBatchFlowHooks<S>> IntoAsyncStep<S, kinds::AsFlow> for $name<S, H> {
            fn into_async_step(self) -> StepParts<dyn AsyncStep<S>> {
                StepParts { name: self.flow.name.clone(), warnings: self.flow.graph.warnings().to_vec(), step: Box::new(self) }
            }
        }

        impl<S, H> fmt::Debug for $name<S, H> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("flow", &self.flow).finish_non_exhaustive()
            }
        }
    };
}

async_batch_flow!(
    /// The async form of [`BatchFlow`](crate::BatchFlow): the graph runs
    /// once per parameter set, one run after another.
    AsyncBatchFlow,
    "AsyncBatchFlow",
    Concurrency::Sequential
);

async_batch_flow!(
    /// Like [`AsyncBatchFlow`], but all runs go at once. Each run gets its
    /// own params; they share the store. When a run fails, the others are
    /// cancelled (their futures dropped, their spans marked `cancelled`)
    /// and the error is returned.
    AsyncParallelBatchFlow,
    "AsyncParallelBatchFlow",
    Concurrency::Parallel(None)
);

crate::flow::trace_flow_impl!(AsyncFlow);
crate::flow::trace_flow_impl!(AsyncBatchFlow via flow);
crate::flow::trace_flow_impl!(AsyncParallelBatchFlow via flow);

//! Sync flows: [`Flow`] and [`BatchFlow`].

use std::borrow::Cow;
use std::fmt;

use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::action::Action;
use crate::error::FlowError;
use crate::graph::{Graph, NodeId, Wiring};
use crate::hooks::{BatchFlowHooks, FlowHooks, NoHooks};
use crate::mermaid::{FlowShape, Shape, mermaid_methods};
use crate::options::{RunOptions, TraceFlow};
use crate::params::Params;
use crate::run::ops::{Concurrency, SyncBatchHooksOps, SyncFlowHooksOps};
use crate::run::orchestrate::{FlowMeta, run_batch_flow_async, run_batch_flow_sync, run_flow_async, run_flow_sync};
use crate::run::{RunEnv, RunReport};
use crate::step::{AsyncStep, IntoSyncStep, StepParts, SyncStep, drop_nested, kinds};
use crate::store::SharedStore;
use crate::warning::FlowWarning;

/// The wiring methods shared by [`Flow`] and [`AsyncFlow`](crate::AsyncFlow).
macro_rules! wiring_methods {
    ($into:ident, $method:ident) => {
        /// Adds a node (or a nested flow) and returns its id. Its name in
        /// spans is the node's [`name`](crate::Node::name). A nested flow's
        /// wiring warnings become this flow's.
        pub fn add<N, M>(&mut self, node: N) -> NodeId
        where
            N: $into<S, M>,
        {
            self.graph.add(node.$method())
        }

        /// Adds a node under a name of your choosing.
        pub fn add_named<N, M>(&mut self, name: impl Into<Cow<'static, str>>, node: N) -> NodeId
        where
            N: $into<S, M>,
        {
            self.graph.add(StepParts { name: name.into(), ..node.$method() })
        }

        /// Adds a node and makes it the start node (PocketFlow's `start`).
        pub fn start<N, M>(&mut self, node: N) -> NodeId
        where
            N: $into<S, M>,
        {
            let id = self.add(node);
            self.graph.set_start(id);
            id
        }

        /// Makes an added node the start node.
        pub fn set_start(&mut self, id: NodeId) -> &mut Self {
            self.graph.set_start(id);
            self
        }

        /// `from >> to`: run `to` after `from` returns the default action
        /// (or none). Replacing a successor is a
        /// [`FlowWarning::OverwrittenSuccessor`].
        pub fn connect(&mut self, from: NodeId, to: NodeId) -> &mut Self {
            self.graph.connect(from, Cow::Borrowed(crate::action::DEFAULT_ACTION), to);
            self
        }

        /// `from - action >> to`: run `to` after `from` returns `action`.
        pub fn connect_on(&mut self, from: NodeId, action: impl Into<Cow<'static, str>>, to: NodeId) -> &mut Self {
            self.graph.connect(from, action.into(), to);
            self
        }

        /// Adds edges written with operators: `flow.link(a >> b >> c)`,
        /// `flow.link(check.on("retry") >> a)`.
        pub fn link(&mut self, wiring: Wiring) -> &mut Self {
            self.graph.link(wiring);
            self
        }

        /// Warnings raised while wiring, such as overwritten successors.
        pub fn warnings(&self) -> &[FlowWarning] {
            self.graph.warnings()
        }

        /// Replaces the flow's params (PocketFlow's `set_params`). They are
        /// used when this flow runs at the top level; a parent flow's params
        /// replace them when it is nested.
        pub fn set_params(&mut self, params: Params) -> &mut Self {
            self.params = params;
            self
        }

        /// The flow's own params.
        pub fn params(&self) -> &Params {
            &self.params
        }

        /// The flow's name, used in spans and errors.
        pub fn name(&self) -> &str {
            &self.name
        }

        /// Renames the flow.
        #[must_use]
        pub fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
            self.name = name.into();
            self
        }
    };
}
pub(crate) use wiring_methods;

/// A graph of nodes run one after another, each picking the next by the
/// action its `post` returns. A flow is itself a node: add it to another
/// flow and it runs as one step, its result choosing the parent's next step.
/// Flows nest at most [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH) deep
/// on one thread; past that, a run returns [`FlowError::NestingTooDeep`].
///
/// ```
/// use pocketflow::{Action, BoxError, Ctx, Flow, Node, SharedStore};
///
/// struct Add(i64);
/// impl Node for Add {
///     type Prep = ();
///     type Exec = ();
///     fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
///         shared.update("n", |v| *v = (v.as_i64().unwrap_or(0) + self.0).into());
///         Ok(())
///     }
///     fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> { Ok(()) }
/// }
///
/// struct Check;
/// impl Node for Check {
///     type Prep = i64;
///     type Exec = ();
///     fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<i64, BoxError> { Ok(shared.get("n")?) }
///     fn exec(&self, _: &Ctx<'_>, _: &i64) -> Result<(), BoxError> { Ok(()) }
///     fn post(&self, _: &Ctx<'_>, _: &SharedStore, n: i64, _: ()) -> Result<Action, BoxError> {
///         Ok(if n < 10 { "again".into() } else { "done".into() })
///     }
/// }
///
/// let mut flow = Flow::named("Count");
/// let add = flow.start(Add(3));
/// let check = flow.add(Check);
/// flow.link(add >> check);
/// flow.link(check.on("again") >> add); // loops are fine
///
/// let shared = SharedStore::new();
/// assert_eq!(flow.run(&shared)?, "done");
/// assert_eq!(shared.get::<i64>("n")?, 12);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Flow<S = SharedStore, H = NoHooks> {
    pub(crate) name: Cow<'static, str>,
    pub(crate) graph: Graph<dyn SyncStep<S>>,
    pub(crate) params: Params,
    pub(crate) options: RunOptions,
    hooks: H,
}

impl<S> Flow<S, NoHooks> {
    /// An empty flow named `Flow`.
    pub fn new() -> Self {
        Self::named("Flow")
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

impl<S> Default for Flow<S, NoHooks> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, H> Flow<S, H> {
    wiring_methods!(IntoSyncStep, into_sync_step);

    fn meta(&self, kind: &'static str) -> FlowMeta<'_> {
        FlowMeta { name: &self.name, kind, options: &self.options, graph: &self.graph }
    }

    fn flow_shape(&self) -> FlowShape<'_> {
        self.meta("Flow").shape()
    }

    mermaid_methods!();

    /// The flow with its own `prep`/`post`.
    pub fn with_hooks<H2: FlowHooks<S>>(mut self, hooks: H2) -> Flow<S, H2> {
        // `Flow` has a `Drop`, so its fields are taken, not moved out.
        Flow {
            name: std::mem::take(&mut self.name),
            graph: std::mem::replace(&mut self.graph, Graph::new()),
            params: std::mem::take(&mut self.params),
            options: std::mem::take(&mut self.options),
            hooks,
        }
    }
}

impl<S: Serialize + Send + Sync + 'static, H: FlowHooks<S>> Flow<S, H> {
    /// Runs the flow with its own params and returns its result: by
    /// default the last node's action.
    ///
    /// # Errors
    /// The first node error or panic, which stops the flow.
    pub fn run(&self, shared: &S) -> Result<Action, FlowError> {
        self.execute(shared, None, false).map(|report| report.action)
    }

    /// Runs the flow and also returns the warnings it raised and the
    /// statistics of each node run.
    ///
    /// # Errors
    /// The first node error or panic, which stops the flow.
    pub fn run_report(&self, shared: &S) -> Result<RunReport, FlowError> {
        self.execute(shared, None, true)
    }

    /// Runs the flow with options for this run (session, user, tags,
    /// metadata, a remote parent), laid over the flow's own
    /// ([`TraceFlow::with_run_options`]), and returns the report.
    ///
    /// # Errors
    /// The first node error or panic, which stops the run.
    pub fn run_with(&self, shared: &S, options: RunOptions) -> Result<RunReport, FlowError> {
        self.execute(shared, Some(options), true)
    }

    fn execute(&self, shared: &S, options: Option<RunOptions>, collect_stats: bool) -> Result<RunReport, FlowError> {
        let env = RunEnv::for_run(&self.options, options, collect_stats);
        let action = run_flow_sync(self.meta("Flow"), &self.graph, &self.hooks, &env, &self.params, shared)?;
        Ok(env.report(action))
    }
}

impl<S: Serialize + Send + Sync + 'static, H: FlowHooks<S>> AsyncStep<S> for Flow<S, H> {
    fn run_async<'a>(
        &'a self,
        _: &'a Cow<'static, str>,
        env: &'a RunEnv,
        params: &'a Params,
        shared: &'a S,
    ) -> BoxFuture<'a, Result<Action, FlowError>> {
        run_flow_async(self.meta("Flow"), &self.graph, SyncFlowHooksOps(&self.hooks), env, params, shared)
    }

    fn shape(&self) -> Shape<'_> {
        Shape::Flow(self.flow_shape())
    }

    fn take_steps(&mut self, out: &mut Vec<Box<dyn AsyncStep<S>>>) {
        out.extend(self.graph.drain_steps().map(|step| step as Box<dyn AsyncStep<S>>));
    }
}

/// A nest of flows is dropped in a loop, not by recursion: a flow nested
/// thousands deep would otherwise overflow the stack on its way out.
impl<S, H> Drop for Flow<S, H> {
    fn drop(&mut self) {
        let steps = self.graph.drain_steps().map(|step| step as Box<dyn AsyncStep<S>>).collect();
        drop_nested(steps);
    }
}

impl<S: Serialize + Send + Sync + 'static, H: FlowHooks<S>> SyncStep<S> for Flow<S, H> {
    fn run_sync(&self, _: &Cow<'static, str>, env: &RunEnv, params: &Params, shared: &S) -> Result<Action, FlowError> {
        run_flow_sync(self.meta("Flow"), &self.graph, &self.hooks, env, params, shared)
    }
}

impl<S: Serialize + Send + Sync + 'static, H: FlowHooks<S>> IntoSyncStep<S, kinds::AsFlow> for Flow<S, H> {
    fn into_sync_step(self) -> StepParts<dyn SyncStep<S>> {
        StepParts { name: self.name.clone(), warnings: self.graph.warnings().to_vec(), step: Box::new(self) }
    }
}

impl<S: Serialize + Send + Sync + 'static, H: FlowHooks<S>> crate::step::IntoAsyncStep<S, kinds::AsFlow>
    for Flow<S, H>
{
    fn into_async_step(self) -> StepParts<dyn AsyncStep<S>> {
        StepParts { name: self.name.clone(), warnings: self.graph.warnings().to_vec(), step: Box::new(self) }
    }
}

impl<S, H> fmt::Debug for Flow<S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flow").field("name", &self.name).field("params", &self.params).finish_non_exhaustive()
    }
}

/// A flow run once per parameter set its hooks' `prep` returns, one after
/// another, each run with the batch flow's params overridden by the set's
/// keys (PocketFlow's `BatchFlow`).
///
/// ```
/// use pocketflow::{BatchFlow, BoxError, Ctx, Flow, Node, Params, SharedStore};
///
/// struct Double;
/// impl Node for Double {
///     type Prep = ();
///     type Exec = ();
///     fn prep(&self, ctx: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
///         let key: String = ctx.params().get_as("key")?;
///         let n: i64 = shared.get(&key)?;
///         shared.set(format!("{key}_doubled"), n * 2)?;
///         Ok(())
///     }
///     fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> { Ok(()) }
/// }
///
/// let mut inner = Flow::new();
/// inner.start(Double);
/// let batch = BatchFlow::new(inner, |_: &Ctx<'_>, _: &SharedStore| {
///     Ok(vec![Params::new().with("key", "a"), Params::new().with("key", "b")])
/// });
///
/// let shared = SharedStore::from_iter([("a", 1), ("b", 2)]);
/// batch.run(&shared)?;
/// assert_eq!(shared.get::<i64>("b_doubled")?, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BatchFlow<S, H> {
    flow: Flow<S, NoHooks>,
    hooks: H,
}

impl<S, H: BatchFlowHooks<S>> BatchFlow<S, H> {
    /// Runs `flow`'s graph once per parameter set from `hooks`. The batch
    /// flow takes `flow`'s name and params.
    pub fn new(flow: Flow<S, NoHooks>, hooks: H) -> Self {
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
        self.flow.meta("BatchFlow").shape()
    }

    mermaid_methods!();

    /// Renames the flow.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.flow.name = name.into();
        self
    }
}

impl<S: Serialize + Send + Sync + 'static, H: BatchFlowHooks<S>> BatchFlow<S, H> {
    /// Runs every parameter set in turn and returns `post`'s action (by
    /// default [`Action::NONE`]).
    ///
    /// # Errors
    /// The first node error or panic, which stops the batch.
    pub fn run(&self, shared: &S) -> Result<Action, FlowError> {
        self.execute(shared, None, false).map(|report| report.action)
    }

    /// Runs the batch and also returns the warnings it raised and the
    /// statistics of each run.
    ///
    /// # Errors
    /// The first node error or panic, which stops the batch.
    pub fn run_report(&self, shared: &S) -> Result<RunReport, FlowError> {
        self.execute(shared, None, true)
    }

    /// Runs the flow with options for this run (session, user, tags,
    /// metadata, a remote parent), laid over the flow's own
    /// ([`TraceFlow::with_run_options`]), and returns the report.
    ///
    /// # Errors
    /// The first node error or panic, which stops the run.
    pub fn run_with(&self, shared: &S, options: RunOptions) -> Result<RunReport, FlowError> {
        self.execute(shared, Some(options), true)
    }

    fn execute(&self, shared: &S, options: Option<RunOptions>, collect_stats: bool) -> Result<RunReport, FlowError> {
        let env = RunEnv::for_run(&self.flow.options, options, collect_stats);
        let action = self.run_sync(&self.flow.name, &env, &self.flow.params, shared)?;
        Ok(env.report(action))
    }
}

impl<S: Serialize + Send + Sync + 'static, H: BatchFlowHooks<S>> AsyncStep<S> for BatchFlow<S, H> {
    fn run_async<'a>(
        &'a self,
        _: &'a Cow<'static, str>,
        env: &'a RunEnv,
        params: &'a Params,
        shared: &'a S,
    ) -> BoxFuture<'a, Result<Action, FlowError>> {
        run_batch_flow_async(
            self.flow.meta("BatchFlow"),
            Concurrency::Sequential,
            &self.flow.graph,
            SyncBatchHooksOps(&self.hooks),
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

impl<S: Serialize + Send + Sync + 'static, H: BatchFlowHooks<S>> SyncStep<S> for BatchFlow<S, H> {
    fn run_sync(&self, _: &Cow<'static, str>, env: &RunEnv, params: &Params, shared: &S) -> Result<Action, FlowError> {
        run_batch_flow_sync(self.flow.meta("BatchFlow"), &self.flow.graph, &self.hooks, env, params, shared)
    }
}

impl<S: Serialize + Send + Sync + 'static, H: BatchFlowHooks<S>> IntoSyncStep<S, kinds::AsFlow> for BatchFlow<S, H> {
    fn into_sync_step(self) -> StepParts<dyn SyncStep<S>> {
        StepParts { name: self.flow.name.clone(), warnings: self.flow.graph.warnings().to_vec(), step: Box::new(self) }
    }
}

impl<S: Serialize + Send + Sync + 'static, H: BatchFlowHooks<S>> crate::step::IntoAsyncStep<S, kinds::AsFlow>
    for BatchFlow<S, H>
{
    fn into_async_step(self) -> StepParts<dyn AsyncStep<S>> {
        StepParts { name: self.flow.name.clone(), warnings: self.flow.graph.warnings().to_vec(), step: Box::new(self) }
    }
}

impl<S, H> fmt::Debug for BatchFlow<S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchFlow").field("flow", &self.flow).finish_non_exhaustive()
    }
}

/// [`TraceFlow`] for a flow kind that has `name` and `options` fields, or
/// that wraps such a flow in a field named `flow`.
macro_rules! trace_flow_impl {
    ($ty:ident) => {
        impl<S, H> TraceFlow for $ty<S, H> {
            fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
                self.name = name.into();
                self
            }
            fn with_run_options(mut self, options: RunOptions) -> Self {
                self.options = options;
                self
            }
            fn run_options(&self) -> &RunOptions {
                &self.options
            }
        }
    };
    ($ty:ident via flow) => {
        impl<S, H> TraceFlow for $ty<S, H> {
            fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
                self.flow.name = name.into();
                self
            }
            fn with_run_options(mut self, options: RunOptions) -> Self {
                self.flow.options = options;
                self
            }
            fn run_options(&self) -> &RunOptions {
                &self.flow.options
            }
        }
    };
}
pub(crate) use trace_flow_impl;

trace_flow_impl!(Flow);
trace_flow_impl!(BatchFlow via flow);

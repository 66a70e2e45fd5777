//! Running a flow: its hooks around the walk through its graph.

use futures_util::future::try_join_all;
use serde::Serialize;
use tracing::Span;

use super::async_node;
use super::attempts::item_start;
use super::ops::{BatchHooksOps, Concurrency, FlowHooksOps};
use super::sync_node::{phase, within};
use super::{RunEnv, fail, nesting, record_action};
use crate::action::Action;
use crate::context::Ctx;
use crate::current::{Scope, Site};
use crate::error::{FlowError, Phase};
use crate::graph::Graph;
use crate::hooks::{BatchFlowHooks, FlowHooks};
use crate::lifecycle::traced;
use crate::mermaid::{FlowShape, GraphView, Mermaid, RunGraph};
use crate::options::RunOptions;
use crate::params::Params;
use crate::step::{AsyncStep, SyncStep};
use crate::telemetry;
use crate::warning::FlowWarning;
use futures_util::future::BoxFuture;
use std::borrow::Cow;

fn check_wiring<T: ?Sized>(flow: &str, graph: &Graph<T>) -> Result<(), FlowError> {
    match graph.wiring_error() {
        Some(reason) => {
            let error = FlowError::InvalidGraph { flow: flow.to_owned(), reason };
            fail(&Span::current(), &error);
            Err(error)
        }
        None => Ok(()),
    }
}

/// PocketFlow's `_orch`: run from the start node, following actions, until
/// an action has no successor; return that last action.
pub(crate) fn walk_sync<S>(
    flow: &str,
    graph: &Graph<dyn SyncStep<S>>,
    env: &RunEnv,
    params: &Params,
    shared: &S,
) -> Result<Action, FlowError> {
    check_wiring(flow, graph)?;
    let Some(mut current) = graph.start() else {
        env.warn(FlowWarning::NoStartNode { flow: flow.to_owned() });
        return Ok(Action::NONE);
    };
    loop {
        let action = current.step.run_sync(&current.name, env, params, shared)?;
        match graph.next(current, &action, env) {
            Some(next) => current = next,
            None => return Ok(action),
        }
    }
}

/// PocketFlow's `_orch_async`.
pub(crate) async fn walk_async<S, T: ?Sized + AsyncStep<S>>(
    flow: &str,
    graph: &Graph<T>,
    env: &RunEnv,
    params: &Params,
    shared: &S,
) -> Result<Action, FlowError> {
    check_wiring(flow, graph)?;
    let Some(mut current) = graph.start() else {
        env.warn(FlowWarning::NoStartNode { flow: flow.to_owned() });
        return Ok(Action::NONE);
    };
    loop {
        let action = current.step.run_async(&current.name, env, params, shared).await?;
        match graph.next(current, &action, env) {
            Some(next) => current = next,
            None => return Ok(action),
        }
    }
}

/// What a flow is, for its span: name, kind, and its own run options.
#[derive(Clone, Copy)]
pub(crate) struct FlowMeta<'a> {
    pub(crate) name: &'a Cow<'static, str>,
    pub(crate) kind: &'static str,
    pub(crate) options: &'a RunOptions,
    pub(crate) graph: &'a dyn GraphView,
}

impl<'a> FlowMeta<'a> {
    /// The flow, for drawing its graph.
    pub(crate) fn shape(self) -> FlowShape<'a> {
        FlowShape { name: self.name, kind: self.kind, graph: self.graph }
    }
}

/// The flow's span and context frame; an error when the flow would run
/// nested too deep.
fn begin<S: Serialize>(meta: FlowMeta<'_>, env: &RunEnv, shared: &S) -> Result<(Span, Site, bool), FlowError> {
    nesting::check(meta.name)?;
    let outermost = env.outermost_pending();
    let recorded = env.span_options(meta.options);
    let span = telemetry::flow_span(meta.name, meta.kind, recorded);
    if outermost && !span.is_disabled() {
        // Drawn once per flow (until the flow is changed), not per run.
        let graph = Mermaid { root: meta.shape(), stats: None };
        let drawn = meta.graph.drawn().get_or_init(|| crate::graph::DrawnGraph {
            name: meta.name.to_string(),
            kind: meta.kind,
            text: graph.to_string(),
        });
        if drawn.name == *meta.name && drawn.kind == meta.kind {
            telemetry::record_graph(&span, &drawn.text);
        } else {
            telemetry::record_graph(&span, &graph);
        }
    }
    if let Some((options, Some(_))) = recorded {
        telemetry::continued(&span, options);
    }
    telemetry::record_json(&span, "input", shared);
    let frame = Site::new(Scope::Flow, meta.name.clone(), None, Some(env.run()));
    Ok((span, frame, outermost))
}

/// Records the graph again when the run's outermost flow has ended, annotated
/// with the run's statistics, if it collects them (`run_report`,
/// `run_with`): whether the run succeeded or failed.
fn record_run_graph(span: &Span, outermost: bool, shape: FlowShape<'_>, env: &RunEnv) {
    if outermost && env.run().collects_stats() {
        telemetry::record_graph(span, &RunGraph { root: shape, run: env.run() });
    }
}

/// [`record_run_graph`] once `run` (the outermost flow's traced future)
/// has finished.
fn with_run_graph<'a>(
    run: BoxFuture<'a, Result<Action, FlowError>>,
    span: Span,
    outermost: bool,
    shape: FlowShape<'a>,
    env: &'a RunEnv,
) -> BoxFuture<'a, Result<Action, FlowError>> {
    if !(outermost && env.run().collects_stats()) {
        return run;
    }
    Box::pin(async move {
        let result = run.await;
        record_run_graph(&span, outermost, shape, env);
        result
    })
}

fn end<S: Serialize>(span: &Span, action: &Action, shared: &S) {
    record_action(span, action);
    telemetry::record_json(span, "output", shared);
}

/// A sync flow: `prep`, the walk, `post`.
pub(crate) fn run_flow_sync<S: Serialize, H: FlowHooks<S>>(
    meta: FlowMeta<'_>,
    graph: &Graph<dyn SyncStep<S>>,
    hooks: &H,
    env: &RunEnv,
    params: &Params,
    shared: &S,
) -> Result<Action, FlowError> {
    let name = meta.name;
    let (span, frame, outermost) = begin(meta, env, shared)?;
    let result = within(&span, frame, || {
        let ctx = Ctx::new(name, params, 1);
        let prep = if H::NOOP {
            hooks.prep(&ctx, shared).map_err(|e| FlowError::hook(name, Phase::Prep, e))?
        } else {
            phase(telemetry::prep_span(), name, Phase::Prep, || hooks.prep(&ctx, shared))?
        };
        let last = walk_sync(name, graph, env, params, shared)?;
        let action = if H::NOOP {
            hooks.post(&ctx, shared, prep, last).map_err(|e| FlowError::hook(name, Phase::Post, e))?
        } else {
            phase(telemetry::post_span(), name, Phase::Post, || hooks.post(&ctx, shared, prep, last))?
        };
        end(&span, &action, shared);
        Ok(action)
    });
    record_run_graph(&span, outermost, meta.shape(), env);
    result
}

/// An async flow (or a sync flow inside one): `prep`, the walk, `post`.
pub(crate) fn run_flow_async<'a, S, T, O>(
    meta: FlowMeta<'a>,
    graph: &'a Graph<T>,
    hooks: O,
    env: &'a RunEnv,
    params: &'a Params,
    shared: &'a S,
) -> BoxFuture<'a, Result<Action, FlowError>>
where
    S: Serialize + Sync,
    T: ?Sized + AsyncStep<S>,
    O: FlowHooksOps<S> + Send + 'a,
{
    let name = meta.name;
    let (span, frame, outermost) = match begin(meta, env, shared) {
        Ok(started) => started,
        Err(error) => return Box::pin(std::future::ready(Err(error))),
    };
    let flow_span = span.clone();
    let graph_span = span.clone();
    let run = traced(span, frame, async move {
        let ctx = Ctx::new(name, params, 1);
        let prep = if O::NOOP {
            hooks.prep(ctx, shared).await.map_err(|e| FlowError::hook(name, Phase::Prep, e))?
        } else {
            async_node::phase(telemetry::prep_span(), name, Phase::Prep, hooks.prep(ctx, shared)).await?
        };
        let last = walk_async(name, graph, env, params, shared).await?;
        let action = if O::NOOP {
            hooks.post(ctx, shared, prep, last).await.map_err(|e| FlowError::hook(name, Phase::Post, e))?
        } else {
            async_node::phase(telemetry::post_span(), name, Phase::Post, hooks.post(ctx, shared, prep, last)).await?
        };
        end(&flow_span, &action, shared);
        Ok(action)
    });
    with_run_graph(run, graph_span, outermost, meta.shape(), env)
}

/// A sync batch flow: `prep` gives the parameter sets; the graph runs once
/// per set, one after another; `post` gets the sets back.
pub(crate) fn run_batch_flow_sync<S: Serialize, H: BatchFlowHooks<S>>(
    meta: FlowMeta<'_>,
    graph: &Graph<dyn SyncStep<S>>,
    hooks: &H,
    env: &RunEnv,
    params: &Params,
    shared: &S,
) -> Result<Action, FlowError> {
    let name = meta.name;
    let (span, frame, outermost) = begin(meta, env, shared)?;
    let result = within(&span, frame, || {
        let ctx = Ctx::new(name, params, 1);
        let batches = phase(telemetry::prep_span(), name, Phase::Prep, || hooks.prep(&ctx, shared))?;
        telemetry::record_items(&span, batches.len());
        for (index, batch) in batches.iter().enumerate() {
            let (span, site) = item_start(index, batch);
            within(&span, site, || walk_sync(name, graph, env, &params.merged(batch), shared))?;
        }
        let action = phase(telemetry::post_span(), name, Phase::Post, || hooks.post(&ctx, shared, batches))?;
        end(&span, &action, shared);
        Ok(action)
    });
    record_run_graph(&span, outermost, meta.shape(), env);
    result
}

/// One parameter set of a batch flow, in its own `item` span.
fn batch_run<'a, S: Sync, T: ?Sized + AsyncStep<S>>(
    name: &'a str,
    graph: &'a Graph<T>,
    env: &'a RunEnv,
    params: Params,
    index: usize,
    batch: &'a Params,
    shared: &'a S,
) -> BoxFuture<'a, Result<Action, FlowError>> {
    let (span, site) = item_start(index, batch);
    traced(span, site, async move { walk_async(name, graph, env, &params, shared).await })
}

/// An async batch flow, sequential or parallel (or a sync one inside an
/// async flow).
pub(crate) fn run_batch_flow_async<'a, S, T, O>(
    meta: FlowMeta<'a>,
    concurrency: Concurrency,
    graph: &'a Graph<T>,
    hooks: O,
    env: &'a RunEnv,
    params: &'a Params,
    shared: &'a S,
) -> BoxFuture<'a, Result<Action, FlowError>>
where
    S: Serialize + Sync,
    T: ?Sized + AsyncStep<S>,
    O: BatchHooksOps<S> + Send + 'a,
{
    let name = meta.name;
    let (span, frame, outermost) = match begin(meta, env, shared) {
        Ok(started) => started,
        Err(error) => return Box::pin(std::future::ready(Err(error))),
    };
    let flow_span = span.clone();
    let graph_span = span.clone();
    let run = traced(span, frame, async move {
        let ctx = Ctx::new(name, params, 1);
        let batches = async_node::phase(telemetry::prep_span(), name, Phase::Prep, hooks.prep(ctx, shared)).await?;
        telemetry::record_items(&flow_span, batches.len());
        match concurrency {
            Concurrency::Sequential => {
                for (index, batch) in batches.iter().enumerate() {
                    batch_run(name, graph, env, params.merged(batch), index, batch, shared).await?;
                }
            }
            Concurrency::Parallel(_) => {
                let mut runs = Vec::with_capacity(batches.len());
                for (index, batch) in batches.iter().enumerate() {
                    runs.push(batch_run(name, graph, env, params.merged(batch), index, batch, shared));
                }
                try_join_all(runs).await?;
            }
        }
        let action =
            async_node::phase(telemetry::post_span(), name, Phase::Post, hooks.post(ctx, shared, batches)).await?;
        end(&flow_span, &action, shared);
        Ok(action)
    });
    with_run_graph(run, graph_span, outermost, meta.shape(), env)
}

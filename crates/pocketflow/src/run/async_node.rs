//! The async runner: every node kind inside async flows (sync ones
//! included, through [`NodeOps`] and [`BatchOps`]), hooks awaited and retry
//! waits on tokio's timer. What is called when, and what is recorded, comes
//! from [`super::attempts`], shared with the sync runner.
#![allow(
    clippy::ptr_arg,
    reason = "node names are passed as `&Cow` because the run context clones them, which is free for a static name"
)]

use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::future::{FutureExt, try_join_all};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use tracing::{Instrument, Span};

use super::attempts::{Attempts, Next, item_start, node_ctx, node_start};
pub(crate) use super::ops::{AsyncBatchOps, AsyncOps, ParallelBatchOps};
use super::ops::{BatchOps, Concurrency, NodeOps};
use super::{HookOutcome, exec_done, record_action, settle};
use crate::action::Action;
use crate::context::Ctx;
use crate::error::{BoxError, FlowError, Phase};
use crate::lifecycle::{Unfinished, traced};
use crate::params::Params;
use crate::telemetry;
use futures_util::future::BoxFuture;

/// `hook` inside `span`, catching a panic; a span left by a dropped future
/// is marked cancelled. Not an `async fn`: combinators keep each level of a
/// deeply nested run's poll chain small.
fn call<'s, T, F>(span: &'s Span, hook: F) -> impl Future<Output = HookOutcome<T>> + 's
where
    F: Future<Output = Result<T, BoxError>> + 's,
{
    let unfinished = Unfinished::new(span);
    AssertUnwindSafe(hook).catch_unwind().instrument(span.clone()).map(move |outcome| {
        unfinished.done();
        outcome
    })
}

/// Awaits `hook` inside `span`, catching a panic, and records its outcome.
pub(crate) async fn phase<T: Serialize>(
    span: Span,
    node: &str,
    phase: Phase,
    hook: impl Future<Output = Result<T, BoxError>>,
) -> Result<T, FlowError> {
    let outcome = call(&span, hook).await;
    settle(&span, node, phase, outcome)
}

/// PocketFlow's `_exec`, driving [`Attempts`] with awaited calls.
async fn exec_with_retries<'p, P, T, Fut, FFut>(
    ctx: Ctx<'p>,
    wait: Duration,
    input: &'p P,
    exec: impl Fn(Ctx<'p>) -> Fut,
    fallback: impl FnOnce(Ctx<'p>, BoxError) -> FFut,
) -> Result<T, FlowError>
where
    P: Serialize + ?Sized,
    T: Serialize,
    Fut: Future<Output = Result<T, BoxError>>,
    FFut: Future<Output = Result<T, BoxError>>,
{
    let mut attempts = Attempts::new(ctx, wait, input);
    loop {
        let exec_call = attempts.exec_call();
        let outcome = call(&exec_call.span, exec(exec_call.ctx)).await;
        match attempts.exec_ended(exec_call, outcome) {
            Next::Done(result) => return result,
            Next::Wait(wait) => crate::recovery::pause(wait).await,
            Next::Fallback(fallback_call, error) => {
                let outcome = call(&fallback_call.span, fallback(fallback_call.ctx, error)).await;
                return attempts.fallback_ended(&fallback_call.span, outcome);
            }
        }
    }
}

pub(crate) fn run_node<'a, S: Sync, O: NodeOps<S> + Send + 'a>(
    ops: O,
    name: &'a Cow<'static, str>,
    params: &'a Params,
    shared: &'a S,
) -> BoxFuture<'a, Result<Action, FlowError>> {
    let max_retries = ops.max_retries();
    let (span, site) = node_start(name, O::KIND, ops.observation(), max_retries);
    let node_span = span.clone();
    traced(span, site, async move {
        let ctx = node_ctx(&node_span, name, params, max_retries)?;
        let prep = phase(telemetry::prep_span(), name, Phase::Prep, ops.prep(ctx, shared)).await?;
        telemetry::record_json(&node_span, "input", &prep);
        let exec =
            exec_with_retries(ctx, ops.wait(), &prep, |c| ops.exec(c, &prep), |c, e| ops.fallback(c, &prep, e)).await?;
        exec_done(&node_span, &exec);
        let action = phase(telemetry::post_span(), name, Phase::Post, ops.post(ctx, shared, prep, exec)).await?;
        record_action(&node_span, &action);
        Ok(action)
    })
}

/// One batch item: its own span, context site, attempts and fallback.
fn run_item<'p, S: Sync, O: BatchOps<S>>(
    ops: &'p O,
    ctx: Ctx<'p>,
    index: usize,
    item: &'p O::Item,
) -> BoxFuture<'p, Result<O::Output, FlowError>>
where
    O::Output: 'p,
{
    let (span, site) = item_start(index, item);
    let item_span = span.clone();
    traced(span, site, async move {
        let output = exec_with_retries(
            ctx.for_item(index),
            ops.wait(),
            item,
            |c| ops.exec(c, item),
            |c, e| ops.fallback(c, item, e),
        )
        .await?;
        telemetry::record_json(&item_span, "output", &output);
        Ok(output)
    })
}

pub(crate) fn run_batch_node<'a, S: Sync, O: BatchOps<S> + Send + 'a>(
    ops: O,
    name: &'a Cow<'static, str>,
    params: &'a Params,
    shared: &'a S,
) -> BoxFuture<'a, Result<Action, FlowError>> {
    let max_retries = ops.max_retries();
    let (span, site) = node_start(name, O::KIND, ops.observation(), max_retries);
    let node_span = span.clone();
    traced(span, site, async move {
        let ctx = node_ctx(&node_span, name, params, max_retries)?;
        let items = phase(telemetry::prep_span(), name, Phase::Prep, ops.prep(ctx, shared)).await?;
        telemetry::record_items(&node_span, items.len());
        telemetry::record_json(&node_span, "input", &items);
        let outputs = match ops.concurrency() {
            Concurrency::Sequential => {
                let mut outputs = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    outputs.push(run_item(&ops, ctx, index, item).await?);
                }
                outputs
            }
            Concurrency::Parallel(limit) => {
                let mut runs = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    runs.push(run_item(&ops, ctx, index, item));
                }
                match limit {
                    None => try_join_all(runs).await?,
                    Some(limit) => stream::iter(runs).buffered(limit.max(1)).try_collect().await?,
                }
            }
        };
        exec_done(&node_span, &outputs);
        let action = phase(telemetry::post_span(), name, Phase::Post, ops.post(ctx, shared, items, outputs)).await?;
        record_action(&node_span, &action);
        Ok(action)
    })
}

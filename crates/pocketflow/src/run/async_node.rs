//! Nodes run from async flows: every node kind, sync ones included, through
//! [`NodeOps`] and [`BatchOps`].
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

pub(crate) use super::ops::{AsyncBatchOps, AsyncOps, ParallelBatchOps};
use super::ops::{BatchOps, Concurrency, NodeOps};
use super::{error_address, exec_done, fail, fallback_phase, record_action, settle};
use crate::action::Action;
use crate::context::Ctx;
use crate::current::{Scope, Site};
use crate::error::{BoxError, FlowError, Phase};
use crate::lifecycle::{Unfinished, traced};
use crate::params::Params;
use crate::telemetry;
use futures_util::future::BoxFuture;

/// Awaits `hook` inside `span`, catching a panic.
pub(crate) async fn phase<T: Serialize>(
    span: Span,
    node: &str,
    phase: Phase,
    hook: impl Future<Output = Result<T, BoxError>>,
) -> Result<T, FlowError> {
    let unfinished = Unfinished::new(&span);
    let outcome = AssertUnwindSafe(hook).catch_unwind().instrument(span.clone()).await;
    unfinished.done();
    settle(&span, node, phase, outcome)
}

/// The async form of [`super::sync_node::exec_with_retries`].
pub(crate) async fn exec_with_retries<'p, P, T, Fut, FFut>(
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
    let mut attempt = 0;
    loop {
        let attempt_ctx = ctx.for_attempt(attempt);
        let span = telemetry::exec_span(attempt);
        telemetry::record_json(&span, "input", input);
        let unfinished = Unfinished::new(&span);
        let outcome = AssertUnwindSafe(exec(attempt_ctx)).catch_unwind().instrument(span.clone()).await;
        unfinished.done();
        let error = match outcome {
            Ok(Err(error)) => error,
            other => return settle(&span, ctx.node, Phase::Exec, other),
        };
        telemetry::record_error(&span, &error);
        if attempt + 1 >= ctx.max_retries {
            drop(span);
            let span = telemetry::fallback_span(attempt);
            telemetry::record_json(&span, "input", input);
            let received = error_address(&error);
            let unfinished = Unfinished::new(&span);
            let outcome = AssertUnwindSafe(fallback(attempt_ctx, error)).catch_unwind().instrument(span.clone()).await;
            unfinished.done();
            return settle(&span, ctx.node, fallback_phase(received, &outcome), outcome);
        }
        span.in_scope(|| telemetry::retry(attempt, ctx.max_retries, wait, &error));
        drop(span);
        crate::recovery::pause(wait).await;
        attempt += 1;
    }
}

fn no_attempts(span: &Span, node: &str) -> FlowError {
    let error = FlowError::NoAttempts { node: node.to_owned() };
    fail(span, &error);
    error
}

pub(crate) fn run_node<'a, S: Sync, O: NodeOps<S> + Send + 'a>(
    ops: O,
    name: &'a Cow<'static, str>,
    params: &'a Params,
    shared: &'a S,
) -> BoxFuture<'a, Result<Action, FlowError>> {
    let max_retries = ops.max_retries();
    let span = telemetry::node_span(name, O::KIND, max_retries);
    let node_span = span.clone();
    let frame = Site::new(Scope::Node, name.clone(), None, None);
    traced(span, frame, async move {
        if max_retries == 0 {
            return Err(no_attempts(&node_span, name));
        }
        let ctx = Ctx::new(name, params, max_retries);
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

/// One batch item: its own span, attempts and fallback.
fn run_item<'p, S: Sync, O: BatchOps<S>>(
    ops: &'p O,
    ctx: Ctx<'p>,
    item: &'p O::Item,
) -> BoxFuture<'p, Result<O::Output, FlowError>>
where
    O::Output: 'p,
{
    let span = telemetry::item_span(ctx.item.unwrap_or_default());
    telemetry::record_json(&span, "input", item);
    let item_span = span.clone();
    let frame = Site::new(Scope::Item, Cow::Borrowed(""), ctx.item, None);
    traced(span, frame, async move {
        let output =
            exec_with_retries(ctx, ops.wait(), item, |c| ops.exec(c, item), |c, e| ops.fallback(c, item, e)).await?;
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
    let span = telemetry::node_span(name, O::KIND, max_retries);
    let node_span = span.clone();
    let frame = Site::new(Scope::Node, name.clone(), None, None);
    traced(span, frame, async move {
        if max_retries == 0 {
            return Err(no_attempts(&node_span, name));
        }
        let ctx = Ctx::new(name, params, max_retries);
        let items = phase(telemetry::prep_span(), name, Phase::Prep, ops.prep(ctx, shared)).await?;
        telemetry::record_json(&node_span, "input", &items);
        let outputs = match ops.concurrency() {
            Concurrency::Sequential => {
                let mut outputs = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    outputs.push(run_item(&ops, ctx.for_item(index), item).await?);
                }
                outputs
            }
            Concurrency::Parallel(limit) => {
                let mut runs = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    runs.push(run_item(&ops, ctx.for_item(index), item));
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

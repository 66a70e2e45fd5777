//! The sync runner: hooks are called directly and retry waits sleep the
//! thread, as in PocketFlow. What is called when, and what is recorded,
//! comes from [`super::attempts`], shared with the async runner.
#![allow(
    clippy::ptr_arg,
    reason = "node names are passed as `&Cow` because the run context clones them, which is free for a static name"
)]

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use serde::Serialize;
use tracing::Span;

use super::attempts::{Attempts, Next, item_start, node_ctx, node_start};
use super::{HookOutcome, exec_done, record_action, settle};
use crate::action::Action;
use crate::context::Ctx;
use crate::current::Site;
use crate::error::{BoxError, FlowError, Phase};
use crate::lifecycle::SyncLifecycle;
use crate::node::{BatchNode, Node};
use crate::params::Params;
use crate::telemetry;

/// Calls `hook` inside `span`, catching a panic.
#[inline]
fn call<T>(span: &Span, hook: impl FnOnce() -> Result<T, BoxError>) -> HookOutcome<T> {
    let _entered = span.enter();
    catch_unwind(AssertUnwindSafe(hook))
}

/// Calls `hook` inside `span`, catching a panic, and records its outcome.
#[inline]
pub(crate) fn phase<T: Serialize>(
    span: Span,
    node: &str,
    phase: Phase,
    hook: impl FnOnce() -> Result<T, BoxError>,
) -> Result<T, FlowError> {
    let outcome = call(&span, hook);
    settle(&span, node, phase, outcome)
}

/// Runs `run` inside `span` and `site`, reporting its lifecycle: the sync
/// twin of [`crate::lifecycle::traced`].
#[inline]
pub(crate) fn within<T>(span: &Span, site: Site, run: impl FnOnce() -> Result<T, FlowError>) -> Result<T, FlowError> {
    let _entered = span.enter();
    let lifecycle = SyncLifecycle::start(span, site);
    let result = run();
    lifecycle.finish(&result);
    result
}

/// PocketFlow's `_exec`, driving [`Attempts`] with direct calls.
#[inline]
fn exec_with_retries<I: Serialize + ?Sized, T: Serialize>(
    ctx: Ctx<'_>,
    wait: Duration,
    input: &I,
    mut exec: impl FnMut(&Ctx<'_>, &I) -> Result<T, BoxError>,
    fallback: impl FnOnce(&Ctx<'_>, &I, BoxError) -> Result<T, BoxError>,
) -> Result<T, FlowError> {
    let mut attempts = Attempts::new(ctx, wait, input);
    loop {
        let exec_call = attempts.exec_call();
        let outcome = call(&exec_call.span, || exec(&exec_call.ctx, input));
        match attempts.exec_ended(exec_call, outcome) {
            Next::Done(result) => return result,
            Next::Wait(wait) => {
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
            }
            Next::Fallback(fallback_call, error) => {
                let outcome = call(&fallback_call.span, || fallback(&fallback_call.ctx, input, error));
                return attempts.fallback_ended(&fallback_call.span, outcome);
            }
        }
    }
}

pub(crate) fn run_node<S, N: Node<S>>(
    node: &N,
    name: &Cow<'static, str>,
    params: &Params,
    shared: &S,
) -> Result<Action, FlowError> {
    let max_retries = node.max_retries();
    let (span, site) = node_start(name, "Node", node.observation(), max_retries);
    within(&span, site, || {
        let ctx = node_ctx(&span, name, params, max_retries)?;
        let prep = phase(telemetry::prep_span(), name, Phase::Prep, || node.prep(&ctx, shared))?;
        telemetry::record_json(&span, "input", &prep);
        let exec =
            exec_with_retries(ctx, node.wait(), &prep, |c, p| node.exec(c, p), |c, p, e| node.exec_fallback(c, p, e))?;
        exec_done(&span, &exec);
        let action = phase(telemetry::post_span(), name, Phase::Post, || node.post(&ctx, shared, prep, exec))?;
        record_action(&span, &action);
        Ok(action)
    })
}

/// One batch item: its own span, context site, attempts and fallback.
fn run_item<S, N: BatchNode<S>>(node: &N, ctx: Ctx<'_>, index: usize, item: &N::Item) -> Result<N::Output, FlowError> {
    let (span, site) = item_start(index, item);
    within(&span, site, || {
        let output = exec_with_retries(
            ctx.for_item(index),
            node.wait(),
            item,
            |c, i| node.exec(c, i),
            |c, i, e| node.exec_fallback(c, i, e),
        )?;
        telemetry::record_json(&span, "output", &output);
        Ok(output)
    })
}

pub(crate) fn run_batch_node<S, N: BatchNode<S>>(
    node: &N,
    name: &Cow<'static, str>,
    params: &Params,
    shared: &S,
) -> Result<Action, FlowError> {
    let max_retries = node.max_retries();
    let (span, site) = node_start(name, "BatchNode", node.observation(), max_retries);
    within(&span, site, || {
        let ctx = node_ctx(&span, name, params, max_retries)?;
        let items = phase(telemetry::prep_span(), name, Phase::Prep, || node.prep(&ctx, shared))?;
        telemetry::record_items(&span, items.len());
        telemetry::record_json(&span, "input", &items);
        let mut outputs = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            outputs.push(run_item(node, ctx, index, item)?);
        }
        exec_done(&span, &outputs);
        let action = phase(telemetry::post_span(), name, Phase::Post, || node.post(&ctx, shared, items, outputs))?;
        record_action(&span, &action);
        Ok(action)
    })
}

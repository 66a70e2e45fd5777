//! Sync nodes run from sync code: hooks are called directly and retry waits
//! sleep the thread, as in PocketFlow.
#![allow(
    clippy::ptr_arg,
    reason = "node names are passed as `&Cow` because the run context clones them, which is free for a static name"
)]

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use serde::Serialize;
use tracing::Span;

use super::{error_address, exec_done, fail, fallback_phase, record_action, settle};
use crate::action::Action;
use crate::context::Ctx;
use crate::current::{Scope, Site};
use crate::error::{BoxError, FlowError, Phase};
use crate::lifecycle::SyncLifecycle;
use crate::node::{BatchNode, Node};
use crate::params::Params;
use crate::telemetry;

/// Calls `hook` inside `span`, catching a panic.
pub(crate) fn phase<T: Serialize>(
    span: Span,
    node: &str,
    phase: Phase,
    hook: impl FnOnce() -> Result<T, BoxError>,
) -> Result<T, FlowError> {
    let outcome = {
        let _entered = span.enter();
        catch_unwind(AssertUnwindSafe(hook))
    };
    settle(&span, node, phase, outcome)
}

/// PocketFlow's `_exec`: up to `max_retries` attempts with `wait` between
/// them (not after the last), then the fallback with the last error.
pub(crate) fn exec_with_retries<P: Serialize, T: Serialize>(
    ctx: Ctx<'_>,
    wait: Duration,
    input: &P,
    mut exec: impl FnMut(&Ctx<'_>, &P) -> Result<T, BoxError>,
    fallback: impl FnOnce(&Ctx<'_>, &P, BoxError) -> Result<T, BoxError>,
) -> Result<T, FlowError> {
    let mut attempt = 0;
    loop {
        let attempt_ctx = ctx.for_attempt(attempt);
        let span = telemetry::exec_span(attempt);
        telemetry::record_json(&span, "input", input);
        let outcome = {
            let _entered = span.enter();
            catch_unwind(AssertUnwindSafe(|| exec(&attempt_ctx, input)))
        };
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
            let outcome = {
                let _entered = span.enter();
                catch_unwind(AssertUnwindSafe(|| fallback(&attempt_ctx, input, error)))
            };
            return settle(&span, ctx.node, fallback_phase(received, &outcome), outcome);
        }
        span.in_scope(|| telemetry::retry(attempt, ctx.max_retries, wait, &error));
        drop(span);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        attempt += 1;
    }
}

fn no_attempts(span: &Span, node: &str) -> FlowError {
    let error = FlowError::NoAttempts { node: node.to_owned() };
    fail(span, &error);
    error
}

pub(crate) fn run_node<S, N: Node<S>>(
    node: &N,
    name: &Cow<'static, str>,
    params: &Params,
    shared: &S,
) -> Result<Action, FlowError> {
    let max_retries = node.max_retries();
    let span = telemetry::node_span(name, "Node", max_retries);
    let _entered = span.enter();
    let lifecycle = SyncLifecycle::start(&span, Site::new(Scope::Node, name.clone(), None, None));
    let result = (|| {
        if max_retries == 0 {
            return Err(no_attempts(&span, name));
        }
        let ctx = Ctx::new(name, params, max_retries);
        let prep = phase(telemetry::prep_span(), name, Phase::Prep, || node.prep(&ctx, shared))?;
        telemetry::record_json(&span, "input", &prep);
        let exec =
            exec_with_retries(ctx, node.wait(), &prep, |c, p| node.exec(c, p), |c, p, e| node.exec_fallback(c, p, e))?;
        exec_done(&span, &exec);
        let action = phase(telemetry::post_span(), name, Phase::Post, || node.post(&ctx, shared, prep, exec))?;
        record_action(&span, &action);
        Ok(action)
    })();
    lifecycle.finish(&result);
    result
}

pub(crate) fn run_batch_node<S, N: BatchNode<S>>(
    node: &N,
    name: &Cow<'static, str>,
    params: &Params,
    shared: &S,
) -> Result<Action, FlowError> {
    let max_retries = node.max_retries();
    let span = telemetry::node_span(name, "BatchNode", max_retries);
    let _entered = span.enter();
    let lifecycle = SyncLifecycle::start(&span, Site::new(Scope::Node, name.clone(), None, None));
    let result = (|| {
        if max_retries == 0 {
            return Err(no_attempts(&span, name));
        }
        let ctx = Ctx::new(name, params, max_retries);
        let items = phase(telemetry::prep_span(), name, Phase::Prep, || node.prep(&ctx, shared))?;
        telemetry::record_json(&span, "input", &items);
        let wait = node.wait();
        let mut outputs = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let item_span = telemetry::item_span(index);
            telemetry::record_json(&item_span, "input", item);
            let _in_item = item_span.enter();
            let output = exec_with_retries(
                ctx.for_item(index),
                wait,
                item,
                |c, i| node.exec(c, i),
                |c, i, e| node.exec_fallback(c, i, e),
            )
            .inspect_err(|e| telemetry::record_error(&item_span, e))?;
            telemetry::record_json(&item_span, "output", &output);
            outputs.push(output);
        }
        exec_done(&span, &outputs);
        let action = phase(telemetry::post_span(), name, Phase::Post, || node.post(&ctx, shared, items, outputs))?;
        record_action(&span, &action);
        Ok(action)
    })();
    lifecycle.finish(&result);
    result
}

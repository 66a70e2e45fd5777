//! PocketFlow's `_exec` (attempts, the wait between them, the fallback) and
//! the spans and context of nodes and batch items, decided once for both
//! runners.
//!
//! The sync runner ([`super::sync_node`]) and the async one
//! ([`super::async_node`]) only make the calls this module asks for (a
//! direct call, or an awaited future) and wait (by sleeping the thread, or
//! on tokio's timer). Which hook runs next, with which [`Ctx`], in which
//! span and context site, and what is recorded, comes from here, so the two
//! cannot drift apart.
#![allow(
    clippy::ptr_arg,
    reason = "node names are passed as `&Cow` because the run context clones them, which is free for a static name"
)]

use std::borrow::Cow;
use std::time::Duration;

use serde::Serialize;
use tracing::Span;

use super::{HookOutcome, fail, settle};
use crate::context::Ctx;
use crate::current::{Scope, Site};
use crate::error::{BoxError, FlowError, Phase};
use crate::observation::Observation;
use crate::params::Params;
use crate::telemetry;

/// A hook call to make: the context to pass it, and the span to make it in.
pub(crate) struct Call<'c> {
    pub(crate) ctx: Ctx<'c>,
    pub(crate) span: Span,
}

/// What to do after an `exec` attempt.
pub(crate) enum Next<'c, T> {
    /// The attempt's outcome is final (a value, or a panic, which is never
    /// retried): the result of the node's exec stage.
    Done(Result<T, FlowError>),
    /// Wait this long, then make the next attempt.
    Wait(Duration),
    /// Every attempt failed: call the fallback with the last error, then
    /// hand its outcome to [`Attempts::fallback_ended`].
    Fallback(Call<'c>, BoxError),
}

/// The attempts at one `exec` (of a node, or of one batch item): up to
/// `max_retries` of them with `wait` between them (not after the last),
/// then the fallback with the last error.
pub(crate) struct Attempts<'c, 'i, I: ?Sized> {
    ctx: Ctx<'c>,
    wait: Duration,
    input: &'i I,
    attempt: usize,
    /// The address of the error handed to the fallback.
    received: usize,
}

impl<'c, 'i, I: Serialize + ?Sized> Attempts<'c, 'i, I> {
    // Inlined into each runner's loop: called, these cost 15-25 ns per
    // node on the engine bench (the moves of `Call` and `Next`).
    #[inline(always)]
    pub(crate) fn new(ctx: Ctx<'c>, wait: Duration, input: &'i I) -> Self {
        Self { ctx, wait, input, attempt: 0, received: 0 }
    }

    /// The next attempt: its context and its `exec` span, input recorded.
    #[inline(always)]
    pub(crate) fn exec_call(&self) -> Call<'c> {
        let span = telemetry::exec_span(self.attempt);
        telemetry::record_json(&span, "input", self.input);
        Call { ctx: self.ctx.for_attempt(self.attempt), span }
    }

    /// What follows an attempt that ended with `outcome`.
    #[inline(always)]
    pub(crate) fn exec_ended<T: Serialize>(&mut self, call: Call<'c>, outcome: HookOutcome<T>) -> Next<'c, T> {
        match outcome {
            Ok(Err(error)) => self.attempt_failed(call, error),
            other => Next::Done(settle(&call.span, self.ctx.node, Phase::Exec, other)),
        }
    }

    /// An attempt returned an error: retry after the wait, or hand over to
    /// the fallback after the last one. Kept out of line, off the path of
    /// an attempt that succeeds.
    #[cold]
    #[inline(never)]
    fn attempt_failed<T>(&mut self, call: Call<'c>, error: BoxError) -> Next<'c, T> {
        let Call { ctx, span } = call;
        telemetry::record_error(&span, &error);
        if self.attempt + 1 >= self.ctx.max_retries {
            drop(span);
            let span = telemetry::fallback_span(self.attempt);
            telemetry::record_json(&span, "input", self.input);
            self.received = error_address(&error);
            return Next::Fallback(Call { ctx, span }, error);
        }
        span.in_scope(|| telemetry::retry(self.attempt, self.ctx.max_retries, self.wait, &error));
        self.attempt += 1;
        Next::Wait(self.wait)
    }

    /// The result of the exec stage, from the fallback's outcome.
    #[inline]
    pub(crate) fn fallback_ended<T: Serialize>(&self, span: &Span, outcome: HookOutcome<T>) -> Result<T, FlowError> {
        settle(span, self.ctx.node, fallback_phase(self.received, &outcome), outcome)
    }
}

/// Where a fallback's error comes from. A fallback that hands back the very
/// error it received (as the default one does) re-raises exec's failure, so
/// that is reported as a failure in `exec`; any other error is the
/// fallback's own. Zero-sized errors share one address, so they are always
/// taken as the fallback's own.
fn fallback_phase<T>(received: usize, outcome: &HookOutcome<T>) -> Phase {
    match outcome {
        Ok(Err(error)) if std::mem::size_of_val(&**error) != 0 && error_address(error) == received => Phase::Exec,
        _ => Phase::Fallback,
    }
}

/// The address of the error's allocation: compared, never dereferenced.
fn error_address(error: &BoxError) -> usize {
    std::ptr::from_ref(&**error).cast::<()>().addr()
}

/// The span and context site of a node run, before it starts.
#[inline]
pub(crate) fn node_start(
    name: &Cow<'static, str>,
    kind: &'static str,
    observation: Observation,
    max_retries: usize,
) -> (Span, Site) {
    let span = telemetry::node_span(name, kind, observation, max_retries);
    (span, Site::new(Scope::Node, name.clone(), None, None))
}

/// The context of a node's hooks, once the node has started in `span`; an
/// error (recorded on `span`) when it asks for no attempts at all.
#[inline]
pub(crate) fn node_ctx<'a>(
    span: &Span,
    name: &'a str,
    params: &'a Params,
    max_retries: usize,
) -> Result<Ctx<'a>, FlowError> {
    if max_retries == 0 {
        let error = FlowError::NoAttempts { node: name.to_owned() };
        fail(span, &error);
        return Err(error);
    }
    Ok(Ctx::new(name, params, max_retries))
}

/// The span (input recorded) and context site of batch item `index`: an
/// item of a batch node, or a parameter set of a batch flow.
#[inline]
pub(crate) fn item_start<I: Serialize + ?Sized>(index: usize, input: &I) -> (Span, Site) {
    let span = telemetry::item_span(index);
    telemetry::record_json(&span, "input", input);
    (span, Site::new(Scope::Item, Cow::Borrowed(""), Some(index), None))
}

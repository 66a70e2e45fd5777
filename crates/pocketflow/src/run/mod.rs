//! Running nodes and flows: retries, phases, spans and routing.
//!
//! The sync runners call hooks directly and sleep with the thread; the async
//! runners serve every node kind inside async flows (sync nodes included, so
//! their retry waits never block the runtime). Both make the calls
//! [`attempts`] decides, so a node behaves the same under either.

pub(crate) mod async_node;
pub(crate) mod attempts;
pub(crate) mod nesting;
pub(crate) mod ops;
pub(crate) mod orchestrate;
pub(crate) mod sync_node;

pub use nesting::MAX_NESTING_DEPTH;

use std::any::type_name;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::action::Action;
use crate::current::{InFlight, Run};
use crate::error::{BoxError, FlowError, Phase};
use crate::lifecycle::NodeState;
use crate::options::RunOptions;
use crate::stats::RunStats;
use crate::telemetry;
use crate::warning::{FlowWarning, WarningCounts, WarningLog};
use serde::Serialize;
use std::any::Any;
use std::fmt::Display;
use tracing::Span;

/// State shared by every node of one top-level run. Public only because
/// the sealed step traits mention it; it cannot be named outside the crate.
#[derive(Debug)]
pub struct RunEnv {
    /// Kept only when the caller asked for a report (`run_report`,
    /// `run_with`): plain `run` keeps nothing it does not return.
    warnings: Mutex<WarningLog>,
    run: Arc<Run>,
    /// The run's outermost flow span is not created yet.
    outermost: AtomicBool,
    /// For a top-level run: the number of top-level runs in flight when it
    /// started, itself included. `None` for a run inside another run.
    concurrent: Option<usize>,
    _in_flight: Option<InFlight>,
}

impl RunEnv {
    /// A top-level run with these options (the flow's own, laid under the
    /// call's), collecting statistics when the caller asked for a report.
    /// A run started inside another one (a flow run from a node's `exec`,
    /// or a composition's flows) is not counted as in flight.
    pub(crate) fn new(options: RunOptions, collect_stats: bool) -> Self {
        let (in_flight, concurrent) = InFlight::start_if_top_level();
        Self {
            warnings: Mutex::default(),
            run: Run::new(options, collect_stats),
            outermost: AtomicBool::new(true),
            concurrent,
            _in_flight: in_flight,
        }
    }

    /// A top-level run of a flow whose own options are `own`, with `per_run`
    /// options given to this call laid over them.
    pub(crate) fn for_run(own: &RunOptions, per_run: Option<RunOptions>, collect_stats: bool) -> Self {
        Self::new(per_run.map_or_else(|| own.clone(), |o| o.over(own)), collect_stats)
    }

    /// Emits the warning's event (every time: subscribers bound what they
    /// keep) and, for a run that reports, logs it.
    pub(crate) fn warn(&self, warning: FlowWarning) {
        crate::telemetry::warning(&warning);
        if self.run.collects_stats() {
            self.warnings.lock().unwrap_or_else(PoisonError::into_inner).add(warning);
        }
    }

    pub(crate) fn run(&self) -> &Arc<Run> {
        &self.run
    }

    /// Whether the next flow span is the run's outermost (its root).
    pub(crate) fn outermost_pending(&self) -> bool {
        self.outermost.load(Ordering::Relaxed)
    }

    /// The options to record on a flow span about to be created: the run's
    /// for its outermost flow, else the flow's own if it has any.
    pub(crate) fn span_options<'a>(&'a self, own: &'a RunOptions) -> Option<(&'a RunOptions, Option<usize>)> {
        if self.outermost.swap(false, Ordering::Relaxed) {
            Some((self.run.options(), self.concurrent))
        } else {
            (!own.is_empty()).then_some((own, None))
        }
    }

    /// The report of the finished run.
    pub(crate) fn report(self, action: Action) -> RunReport {
        let (warnings, warning_counts) = self.warnings.lock().unwrap_or_else(PoisonError::into_inner).take();
        RunReport { action, warnings, warning_counts, stats: self.run.take_stats() }
    }
}

/// What a run returns, with what PocketFlow would have warned about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// The flow's result: its `post`'s action (by default, the last node's).
    pub action: Action,
    /// The first [`MAX_KEPT_WARNINGS`](crate::MAX_KEPT_WARNINGS) warnings
    /// raised during the run, in order.
    pub warnings: Vec<FlowWarning>,
    /// How many warnings the run raised, by kind, and how many of them
    /// [`warnings`](Self::warnings) could not keep.
    pub warning_counts: WarningCounts,
    /// How each flow, node and batch node's items of the run spent their
    /// time, and how many times they entered each lifecycle state: one
    /// entry per place in the flow, however many times it ran.
    pub stats: RunStats,
}

/// `my_crate::nodes::AddNode<i64>` → `AddNode`.
pub(crate) fn short_type_name<T: ?Sized>() -> Cow<'static, str> {
    let full: &'static str = type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    Cow::Borrowed(base.rsplit("::").next().unwrap_or(base))
}

/// A hook's outcome: its value, its error, or its panic payload.
pub(crate) type HookOutcome<T> = Result<Result<T, BoxError>, Box<dyn Any + Send>>;

/// Turns a hook's outcome into the run's result, recording it on `span`:
/// the value as `output`, or the error as `error` plus one
/// `pocketflow.error` event.
pub(crate) fn settle<T: Serialize>(
    span: &Span,
    node: &str,
    phase: Phase,
    outcome: HookOutcome<T>,
) -> Result<T, FlowError> {
    let result = match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(FlowError::hook(node, phase, error)),
        Err(payload) => Err(FlowError::panicked(node, phase, &*payload)),
    };
    match &result {
        Ok(value) => telemetry::record_json(span, "output", value),
        Err(error) => fail(span, error),
    }
    result
}

/// Records a failure that starts in `span`.
pub(crate) fn fail(span: &Span, error: &FlowError) {
    if !span.is_disabled() {
        let _entered = span.enter();
        telemetry::record_error(span, error);
        telemetry::error(error);
    }
}

/// Records the end of a node's exec stage and the start of `post`.
pub(crate) fn exec_done<T: Serialize>(span: &Span, output: &T) {
    crate::current::mark_completing();
    if !span.is_disabled() {
        telemetry::record_json(span, "output", output);
        telemetry::lifecycle(NodeState::Completing);
    }
}

pub(crate) fn record_action(span: &Span, action: &impl Display) {
    if !span.is_disabled() {
        span.record("action", tracing::field::display(action));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;
    struct Generic<T>(T);

    #[test]
    fn short_names_drop_paths_and_generics() {
        assert_eq!(short_type_name::<Plain>(), "Plain");
        assert_eq!(short_type_name::<Generic<Vec<u8>>>(), "Generic");
    }
}

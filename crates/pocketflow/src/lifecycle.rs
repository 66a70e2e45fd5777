//! The lifecycle of a node run, observed from its real execution.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;
use tracing::Span;

use crate::current::{Pushed, Site};
use crate::error::FlowError;
use crate::telemetry;

/// The states a node (or flow, or batch item) run passes through: the
/// seed guide's `AsyncNodeState`. Each transition is a `pocketflow.lifecycle`
/// event on the run's span (see `docs/span-schema.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// The run's span was created; nothing has executed yet.
    Created,
    /// The run was polled (or called) for the first time.
    Starting,
    /// The run is executing on a thread.
    Running,
    /// The run's future returned `Pending`: it is waiting on I/O or a timer.
    Suspended,
    /// A suspended run was polled again.
    Resuming,
    /// `exec` finished; `post` is about to run.
    Completing,
    /// The run returned successfully.
    Completed,
    /// The run returned an error or panicked.
    Failed,
    /// The run's future was dropped before it finished.
    Cancelled,
}

impl NodeState {
    /// The state's name in events: `created`, `starting`, `running`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Suspended => "suspended",
            Self::Resuming => "resuming",
            Self::Completing => "completing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the state ends a run: `completed`, `failed` or `cancelled`.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// Every state, in lifecycle order.
    pub const ALL: [Self; 9] = [
        Self::Created,
        Self::Starting,
        Self::Running,
        Self::Suspended,
        Self::Resuming,
        Self::Completing,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];
}

/// How one run (of a flow, node, batch item or composition) spent its
/// time, measured from its real polling: recorded on its span when it ends
/// and added to its run's [`RunStats`](crate::RunStats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LifecycleStats {
    /// Times the run's future was polled (1 for a sync run): the number of
    /// `running` states it went through.
    pub(crate) polls: u64,
    /// Times it returned `Pending`: the number of `suspended` (and, unless
    /// it was then dropped, `resuming`) states.
    pub(crate) suspensions: u64,
    /// Time spent inside `poll` (or the sync call), children included.
    pub(crate) running: Duration,
    /// Time between returning `Pending` and being polled again.
    pub(crate) suspended: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    NotStarted,
    Running,
    Suspended,
    Done,
}

/// A run's future inside its span and context frame: both are entered on
/// every poll, and `Pending`, re-polls, completion and drops are reported as
/// lifecycle events and counted in its [`LifecycleStats`].
struct Traced<'a, T> {
    future: BoxFuture<'a, Result<T, FlowError>>,
    span: Span,
    site: Site,
    /// Whether a node's `exec` stage finished (`completing` was reported).
    completing: bool,
    /// The span is enabled: report lifecycle events and record stats on it.
    observe: bool,
    /// Measure time: the span is enabled or the run collects stats.
    timed: bool,
    progress: Progress,
    stats: LifecycleStats,
    suspended_at: Option<Instant>,
}

/// Runs `future` inside `span` and `site`, reporting its lifecycle.
pub(crate) fn traced<'a, T: 'a>(
    span: Span,
    site: Site,
    future: impl Future<Output = Result<T, FlowError>> + Send + 'a,
) -> BoxFuture<'a, Result<T, FlowError>> {
    let observe = !span.is_disabled();
    if observe {
        let _entered = span.enter();
        telemetry::lifecycle(NodeState::Created);
    }
    let timed = observe || site.collects_stats();
    Box::pin(Traced {
        future: Box::pin(future),
        span,
        site,
        completing: false,
        observe,
        timed,
        progress: Progress::NotStarted,
        stats: LifecycleStats::default(),
        suspended_at: None,
    })
}

/// Reports the end of a run: its stats and final state on the span (when
/// observed), its stats to the run (when it collects them).
fn report_end(span: &Span, site: &Site, observe: bool, end: End<'_>) {
    if observe {
        telemetry::record_stats(span, &end.stats);
        match end.outcome {
            NodeState::Cancelled => telemetry::cancelled(span),
            _ => telemetry::finished(span, end.error),
        }
    }
    site.report(end.outcome, end.completing, end.stats);
}

/// How a run ended.
struct End<'e> {
    outcome: NodeState,
    error: Option<&'e FlowError>,
    completing: bool,
    stats: LifecycleStats,
}

impl<T> Future for Traced<'_, T> {
    type Output = Result<T, FlowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let pushed = this.site.enter();
        let _entered = this.span.enter();
        let start = this.timed.then(Instant::now);
        match this.progress {
            Progress::NotStarted => {
                if this.observe {
                    telemetry::lifecycle(NodeState::Starting);
                    telemetry::lifecycle(NodeState::Running);
                }
            }
            Progress::Suspended => {
                if let (Some(start), Some(at)) = (start, this.suspended_at.take()) {
                    this.stats.suspended += start.saturating_duration_since(at);
                }
                if this.observe {
                    telemetry::lifecycle(NodeState::Resuming);
                    telemetry::lifecycle(NodeState::Running);
                }
            }
            Progress::Running | Progress::Done => {}
        }
        this.progress = Progress::Running;
        this.stats.polls += 1;
        let poll = this.future.as_mut().poll(cx);
        this.completing |= pushed.pop();
        let end = start.map(|start| (start, Instant::now()));
        if let Some((start, end)) = end {
            this.stats.running += end.saturating_duration_since(start);
        }
        match poll {
            Poll::Pending => {
                this.stats.suspensions += 1;
                this.suspended_at = end.map(|(_, end)| end);
                if this.observe {
                    telemetry::lifecycle(NodeState::Suspended);
                }
                this.progress = Progress::Suspended;
                Poll::Pending
            }
            Poll::Ready(result) => {
                let outcome = if result.is_ok() { NodeState::Completed } else { NodeState::Failed };
                this.progress = Progress::Done;
                let end = End { outcome, error: result.as_ref().err(), completing: this.completing, stats: this.stats };
                report_end(&this.span, &this.site, this.observe, end);
                Poll::Ready(result)
            }
        }
    }
}

impl<T> Drop for Traced<'_, T> {
    fn drop(&mut self) {
        if self.progress != Progress::Done {
            if let Some(at) = self.suspended_at.take() {
                self.stats.suspended += Instant::now().saturating_duration_since(at);
            }
            let _entered = self.span.enter();
            let end =
                End { outcome: NodeState::Cancelled, error: None, completing: self.completing, stats: self.stats };
            report_end(&self.span, &self.site, self.observe, end);
        }
    }
}

/// The same reporting for a synchronous run, which cannot suspend.
pub(crate) struct SyncLifecycle<'s> {
    span: &'s Span,
    site: Site,
    pushed: Pushed,
    observe: bool,
    start: Option<Instant>,
}

impl<'s> SyncLifecycle<'s> {
    /// Makes `site` current and reports `created`, `starting` and
    /// `running`; call inside the span.
    pub(crate) fn start(span: &'s Span, site: Site) -> Self {
        let observe = !span.is_disabled();
        if observe {
            telemetry::lifecycle(NodeState::Created);
            telemetry::lifecycle(NodeState::Starting);
            telemetry::lifecycle(NodeState::Running);
        }
        let start = (observe || site.collects_stats()).then(Instant::now);
        let pushed = site.enter();
        Self { span, site, pushed, observe, start }
    }

    /// Reports `completed` or `failed`.
    pub(crate) fn finish<T>(self, result: &Result<T, FlowError>) {
        let Self { span, site, pushed, observe, start } = self;
        let completing = pushed.pop();
        let stats = LifecycleStats {
            polls: 1,
            suspensions: 0,
            running: start.map(|start| start.elapsed()).unwrap_or_default(),
            suspended: Duration::ZERO,
        };
        let outcome = if result.is_ok() { NodeState::Completed } else { NodeState::Failed };
        report_end(span, &site, observe, End { outcome, error: result.as_ref().err(), completing, stats });
    }
}

/// Marks a phase span (`prep`, `exec`, `fallback`, `post`) as `cancelled`
/// when its future is dropped before the phase ends.
pub(crate) struct Unfinished<'s>(Option<&'s Span>);

impl<'s> Unfinished<'s> {
    pub(crate) fn new(span: &'s Span) -> Self {
        Self(Some(span))
    }

    /// The phase ended; nothing to mark.
    pub(crate) fn done(mut self) {
        self.0 = None;
    }
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if let Some(span) = self.0 {
            telemetry::record_error(span, &"cancelled");
        }
    }
}

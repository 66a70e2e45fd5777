//! The lifecycle of a node run, observed from its real execution.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tracing::Span;

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
/// and returned to the caller in [`RunReport::stats`](crate::RunReport).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LifecycleStats {
    /// Times the run's future was polled (1 for a sync run): the number of
    /// `running` states it went through.
    pub polls: u64,
    /// Times it returned `Pending`: the number of `suspended` (and, unless
    /// it was then dropped, `resuming`) states.
    pub suspensions: u64,
    /// Time spent inside `poll` (or the sync call), children included.
    pub running: Duration,
    /// Time between returning `Pending` and being polled again.
    pub suspended: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    NotStarted,
    Running,
    Suspended,
    Done,
}

/// A run's future inside its enabled span: the span is entered on every
/// poll, and `Pending`, re-polls, completion and drops are reported as
/// lifecycle events.
struct Traced<'a, T> {
    future: BoxFuture<'a, Result<T, FlowError>>,
    span: Span,
    progress: Progress,
}

/// Runs `future` inside `span`, reporting its lifecycle. When the span is
/// disabled (no subscriber, or filtered out) there is nothing to report, and
/// the future is only boxed: one allocation per run, no wrapper.
pub(crate) fn traced<'a, T: 'a>(
    span: Span,
    future: impl Future<Output = Result<T, FlowError>> + Send + 'a,
) -> BoxFuture<'a, Result<T, FlowError>> {
    if span.is_disabled() {
        return Box::pin(future);
    }
    {
        let _entered = span.enter();
        telemetry::lifecycle(NodeState::Created);
    }
    Box::pin(Traced { future: Box::pin(future), span, progress: Progress::NotStarted })
}

impl<T> Future for Traced<'_, T> {
    type Output = Result<T, FlowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        match this.progress {
            Progress::NotStarted => {
                telemetry::lifecycle(NodeState::Starting);
                telemetry::lifecycle(NodeState::Running);
            }
            Progress::Suspended => {
                telemetry::lifecycle(NodeState::Resuming);
                telemetry::lifecycle(NodeState::Running);
            }
            Progress::Running | Progress::Done => {}
        }
        this.progress = Progress::Running;
        match this.future.as_mut().poll(cx) {
            Poll::Pending => {
                telemetry::lifecycle(NodeState::Suspended);
                this.progress = Progress::Suspended;
                Poll::Pending
            }
            Poll::Ready(result) => {
                this.progress = Progress::Done;
                telemetry::finished(&this.span, result.as_ref().err());
                Poll::Ready(result)
            }
        }
    }
}

impl<T> Drop for Traced<'_, T> {
    fn drop(&mut self) {
        if self.progress != Progress::Done {
            let _entered = self.span.enter();
            telemetry::cancelled(&self.span);
        }
    }
}

/// The same reporting for a synchronous run, which cannot suspend.
pub(crate) struct SyncLifecycle<'s> {
    span: &'s Span,
    observe: bool,
}

impl<'s> SyncLifecycle<'s> {
    /// Reports `created`, `starting` and `running`; call inside the span.
    pub(crate) fn start(span: &'s Span) -> Self {
        let observe = !span.is_disabled();
        if observe {
            telemetry::lifecycle(NodeState::Created);
            telemetry::lifecycle(NodeState::Starting);
            telemetry::lifecycle(NodeState::Running);
        }
        Self { span, observe }
    }

    /// Reports `completed` or `failed`.
    pub(crate) fn finish<T>(self, result: &Result<T, FlowError>) {
        if self.observe {
            telemetry::finished(self.span, result.as_ref().err());
        }
    }
}

//! How deep flows may nest. Each flow running inside another takes stack
//! (a sync call, or an async poll, per level), and a thread whose stack
//! runs out aborts the whole process. So a flow checks the depth before it
//! starts and returns [`FlowError::NestingTooDeep`] past the limit, as
//! Python raises a catchable `RecursionError` (near 495 directly nested
//! flows, with its default recursion limit).

use tracing::Span;

use super::fail;
use crate::current;
use crate::error::FlowError;

/// At most this many flows run inside one another on one thread: flows
/// nested in flows, and flows run from a node's hooks (a node whose `exec`
/// runs another flow, which runs that node again…), sync or async. The next
/// one returns [`FlowError::NestingTooDeep`] without starting, instead of
/// overflowing the thread's stack, which would abort the process.
///
/// The limit fits a 2 MiB stack (the default of spawned threads and of
/// tokio's workers) in a debug build, with room to spare for the caller and
/// the innermost node. Measured in a debug build, one level costs about
/// 3 KiB of stack (sync) or 5 KiB (async) when flows nest directly, and
/// about 8 KiB (sync) or 21 KiB (async) when each level runs the next flow
/// from a node's `exec`: 64 of the costliest levels take about 1.3 MiB.
/// Release builds take less. Work handed to another task or thread (with
/// [`spawn`](crate::spawn) or [`RunContext::scope_future`](crate::RunContext::scope_future))
/// starts on a stack of its own and counts from zero there.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Whether the flow named `flow` may start here; the error is recorded on
/// the span it would have started in.
pub(crate) fn check(flow: &str) -> Result<(), FlowError> {
    let depth = current::flows_running_here() + 1;
    if depth <= MAX_NESTING_DEPTH {
        return Ok(());
    }
    let error = FlowError::NestingTooDeep { flow: flow.to_owned(), depth, limit: MAX_NESTING_DEPTH };
    fail(&Span::current(), &error);
    Err(error)
}

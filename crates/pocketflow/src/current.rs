//! The run context: which run, flow, node and batch item the code on this
//! thread is executing for — the seed guide's `AsyncTraceContext`.
//!
//! The engine sets it around every poll of a flow, node, item or
//! composition future (and around every sync run), the same way `tracing`
//! enters a span, so it is right after every `.await`, on whatever thread
//! the task moved to, and concurrent runs never see each other's. A task
//! started with [`spawn`] takes the context (and the current span) with it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tracing::Instrument;
use tracing::instrument::WithSubscriber;

use crate::error::FlowError;
use crate::lifecycle::{LifecycleStats, NodeState};
use crate::options::RunOptions;
use crate::stats::{Ended, NodeStats, RunStats, StatsTable};
use crate::telemetry;

/// What a frame of the context stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A flow run (any flow kind).
    Flow,
    /// A node run.
    Node,
    /// One item of a batch node or parameter set of a batch flow.
    Item,
    /// A composition of flows (`pocketflow::Composition`).
    Composition,
}

impl Scope {
    /// The span name of this scope: `flow`, `node`, `item`, `composition`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Flow => "flow",
            Self::Node => "node",
            Self::Item => "item",
            Self::Composition => "composition",
        }
    }
}

/// One top-level run: a `run`/`run_report`/`run_with` call of a flow, a
/// composition, or a node run alone.
#[derive(Debug)]
pub(crate) struct Run {
    id: u64,
    options: RunOptions,
    stats: Option<Mutex<StatsTable>>,
}

static NEXT_RUN_ID: AtomicU64 = AtomicU64::new(1);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

impl Run {
    pub(crate) fn new(options: RunOptions, collect_stats: bool) -> Arc<Self> {
        Arc::new(Self {
            id: NEXT_RUN_ID.fetch_add(1, Ordering::Relaxed),
            options,
            stats: collect_stats.then(|| Mutex::new(StatsTable::default())),
        })
    }

    pub(crate) fn options(&self) -> &RunOptions {
        &self.options
    }

    pub(crate) fn collects_stats(&self) -> bool {
        self.stats.is_some()
    }

    /// Adds a run that ended to the statistics (aggregated per scope and
    /// path), if this run collects them.
    pub(crate) fn push_stats(&self, ended: Ended<'_>) {
        if let Some(table) = &self.stats {
            table.lock().unwrap_or_else(PoisonError::into_inner).add(ended);
        }
    }

    /// Calls `f` with the statistics gathered so far, if this run collects
    /// them (the table stays locked meanwhile).
    pub(crate) fn with_stats<T>(&self, f: impl FnOnce(&[NodeStats]) -> T) -> Option<T> {
        self.stats.as_ref().map(|table| f(table.lock().unwrap_or_else(PoisonError::into_inner).entries()))
    }

    pub(crate) fn take_stats(&self) -> RunStats {
        self.stats.as_ref().map(|table| table.lock().unwrap_or_else(PoisonError::into_inner).take()).unwrap_or_default()
    }
}

/// Counts a top-level run as in flight while it lives.
///
/// The count is the process's by design: it tells how busy the process was
/// when a run started (`pocketflow.concurrent_runs` on the run's root span).
/// Only runs started outside any other run's context count, so a flow run
/// inside a composition or from a node's `exec` neither counts nor records it.
#[derive(Debug)]
pub(crate) struct InFlight(());

impl InFlight {
    /// Starts counting when no run's context is current (a top-level run);
    /// returns the guard and the number of top-level runs in flight, this
    /// one included, or `(None, None)` inside another run.
    pub(crate) fn start_if_top_level() -> (Option<Self>, Option<usize>) {
        if is_outermost() {
            (Some(Self(())), Some(IN_FLIGHT.fetch_add(1, Ordering::Relaxed) + 1))
        } else {
            (None, None)
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A name that costs nothing to copy: static, or shared.
#[derive(Debug, Clone)]
enum Name {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Name {
    fn new(name: Cow<'static, str>) -> Self {
        match name {
            Cow::Borrowed(name) => Self::Static(name),
            Cow::Owned(name) => Self::Shared(name.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Static(name) => name,
            Self::Shared(name) => name,
        }
    }
}

/// One entry of a thread's context stack. Polls nest (a flow polls its
/// node, which polls its item), so the entries pushed around each poll
/// form the chain from the outermost run in, with no allocation.
#[derive(Debug)]
enum Entry {
    Local {
        scope: Scope,
        name: Name,
        index: Option<usize>,
        run: Option<Arc<Run>>,
        completing: bool,
    },
    /// A context carried into a task or future from elsewhere.
    Captured(Arc<Frame>),
}

thread_local! {
    static STACK: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's stack; `None` if the thread is exiting or the
/// stack is in use (which the engine never lets happen).
fn with_stack<T>(f: impl FnOnce(&mut Vec<Entry>) -> T) -> Option<T> {
    STACK.try_with(|stack| stack.try_borrow_mut().ok().map(|mut stack| f(&mut stack))).ok().flatten()
}

/// The run of the innermost entry that names one, if that run collects
/// statistics, and whether any entry names a run at all.
fn current_run(stack: &[Entry]) -> (Option<Arc<Run>>, bool) {
    let run = stack.iter().rev().find_map(|entry| match entry {
        Entry::Local { run, .. } => run.as_ref(),
        Entry::Captured(frame) => Some(&frame.run),
    });
    match run {
        Some(run) => (run.collects_stats().then(|| Arc::clone(run)), true),
        None => (None, false),
    }
}

/// The stack as a chain of frames (allocated now, on demand).
fn current_frame() -> Option<Arc<Frame>> {
    with_stack(|stack| {
        let mut chain: Option<Arc<Frame>> = None;
        for entry in stack.iter() {
            chain = Some(match entry {
                Entry::Captured(frame) => Arc::clone(frame),
                Entry::Local { scope, name, index, run, .. } => {
                    let run = run.clone().or_else(|| chain.as_ref().map(|f| Arc::clone(&f.run)));
                    Arc::new(Frame {
                        scope: *scope,
                        name: name.clone(),
                        index: *index,
                        parent: chain.take(),
                        run: run.unwrap_or_else(|| Run::new(RunOptions::new(), false)),
                    })
                }
            });
        }
        chain
    })
    .flatten()
}

/// Pops the entry it pushed when dropped.
#[derive(Debug)]
pub(crate) struct Pushed {
    pushed: bool,
}

impl Pushed {
    /// Pops now; says whether the entry was marked `completing`.
    pub(crate) fn pop(mut self) -> bool {
        self.pop_entry()
    }

    fn pop_entry(&mut self) -> bool {
        if !std::mem::take(&mut self.pushed) {
            return false;
        }
        matches!(with_stack(Vec::pop), Some(Some(Entry::Local { completing: true, .. })))
    }
}

impl Drop for Pushed {
    fn drop(&mut self) {
        self.pop_entry();
    }
}

fn push(entry: Entry) -> Pushed {
    Pushed { pushed: with_stack(|stack| stack.push(entry)).is_some() }
}

/// Whether no run is current on this thread: what starts now is a
/// top-level run.
pub(crate) fn is_outermost() -> bool {
    with_stack(|stack| stack.is_empty()).unwrap_or(true)
}

/// How many flows are running inside one another on this thread's stack:
/// flows nested in flows, and flows run from a node's hooks.
pub(crate) fn flows_running_here() -> usize {
    with_stack(|stack| stack.iter().filter(|entry| matches!(entry, Entry::Local { scope: Scope::Flow, .. })).count())
        .unwrap_or(0)
}

/// Notes that the current node's `exec` stage is over and `post` runs next.
pub(crate) fn mark_completing() {
    with_stack(|stack| {
        if let Some(Entry::Local { completing, .. }) = stack.last_mut() {
            *completing = true;
        }
    });
}

/// Where a flow, node, item or composition runs: what its context entry
/// says, pushed around each of its polls.
#[derive(Debug)]
pub(crate) struct Site {
    scope: Scope,
    name: Name,
    index: Option<usize>,
    /// The run, when this site started it or the run collects statistics.
    run: Option<Arc<Run>>,
    /// Whether entries carry the run (this site started it).
    owns_run: bool,
    /// The chain above this site, kept only for statistics (their path).
    parent: Option<Arc<Frame>>,
}

impl Site {
    /// A site under the current context. `run` is the run it starts (a
    /// flow's top-level run); else it joins the current one, or starts a
    /// run of its own when there is none (a node run alone).
    pub(crate) fn new(scope: Scope, name: Cow<'static, str>, index: Option<usize>, run: Option<&Arc<Run>>) -> Self {
        let (run, owns_run) = match run {
            Some(run) => (Some(Arc::clone(run)), true),
            None => match with_stack(|stack| current_run(stack)) {
                Some((run, true)) => (run, false),
                _ => (Some(Run::new(RunOptions::new(), false)), true),
            },
        };
        let collects = run.as_ref().is_some_and(|run| run.collects_stats());
        let parent = if collects { current_frame() } else { None };
        Self { scope, name: Name::new(name), index, run, owns_run, parent }
    }

    /// Whether the run collects statistics.
    pub(crate) fn collects_stats(&self) -> bool {
        self.run.as_ref().is_some_and(|run| run.collects_stats())
    }

    /// Makes this site current until the guard is dropped or popped.
    pub(crate) fn enter(&self) -> Pushed {
        push(Entry::Local {
            scope: self.scope,
            name: self.name.clone(),
            index: self.index,
            run: if self.owns_run { self.run.clone() } else { None },
            completing: false,
        })
    }

    /// Hands this site's statistics to its run, if it collects them.
    pub(crate) fn report(&self, outcome: NodeState, completing: bool, lifecycle: LifecycleStats) {
        let Some(run) = self.run.as_ref().filter(|run| run.collects_stats()) else { return };
        let frame = Frame {
            scope: self.scope,
            name: self.name.clone(),
            index: self.index,
            parent: self.parent.clone(),
            run: Arc::clone(run),
        };
        // An item is named after its node or batch flow.
        let name = match (self.scope, &self.parent) {
            (Scope::Item, Some(parent)) => parent.name.as_str(),
            _ => self.name.as_str(),
        };
        run.push_stats(Ended { scope: self.scope, name, path: frame.stats_path(), outcome, completing, lifecycle });
    }
}

/// One frame of a materialized context: a flow, node, item or composition
/// being run, and the frames around it.
#[derive(Debug)]
pub(crate) struct Frame {
    scope: Scope,
    name: Name,
    index: Option<usize>,
    parent: Option<Arc<Self>>,
    run: Arc<Run>,
}

impl Frame {
    /// Names from the outermost frame in, e.g. `Main/Summarize[2]`.
    fn path(&self) -> String {
        self.format_path(false)
    }

    /// The path statistics are aggregated under: every item index reads
    /// `*` (`Main/Summarize[*]`), so the items of a batch share one entry.
    fn stats_path(&self) -> String {
        self.format_path(true)
    }

    fn format_path(&self, any_item: bool) -> String {
        let mut chain = Vec::new();
        let mut frame = Some(self);
        while let Some(f) = frame {
            chain.push(f);
            frame = f.parent.as_deref();
        }
        let mut path = String::new();
        for f in chain.iter().rev() {
            match (f.scope, f.index) {
                (Scope::Item, _) if any_item => path.push_str("[*]"),
                (Scope::Item, Some(index)) => {
                    let _ = write!(path, "[{index}]");
                }
                _ => {
                    if !path.is_empty() {
                        path.push('/');
                    }
                    path.push_str(f.name.as_str());
                }
            }
        }
        path
    }

    fn find(&self, scope: Scope) -> Option<&Self> {
        let mut frame = Some(self);
        while let Some(f) = frame {
            if f.scope == scope {
                return Some(f);
            }
            frame = f.parent.as_deref();
        }
        None
    }
}

/// The context of the run the calling code is part of, if any: inside a
/// node's hooks, a flow's hooks, a user span under them, or a task started
/// with [`spawn`] from there.
///
/// ```
/// use pocketflow::{AsyncFlow, AsyncNode, BoxError, Ctx, SharedStore};
///
/// struct Where;
/// impl AsyncNode for Where {
///     type Prep = ();
///     type Exec = String;
///     async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> { Ok(()) }
///     async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<String, BoxError> {
///         tokio::task::yield_now().await; // still right after an await
///         let context = pocketflow::current().ok_or("not in a run")?;
///         Ok(context.path())
///     }
///     async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), path: String) -> Result<pocketflow::Action, BoxError> {
///         shared.set("path", path)?;
///         Ok(pocketflow::Action::NONE)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut flow = AsyncFlow::named("Main");
/// flow.start(Where);
/// let shared = SharedStore::new();
/// flow.run(&shared).await?;
/// assert_eq!(shared.get::<String>("path")?, "Main/Where");
/// assert!(pocketflow::current().is_none()); // outside any run
/// # Ok(()) }
/// ```
pub fn current() -> Option<RunContext> {
    current_frame().map(|frame| RunContext {
        frame,
        span: tracing::Span::current(),
        dispatch: tracing::dispatcher::get_default(tracing::Dispatch::clone),
    })
}

/// A handle on the context of a run (see [`current`]): the run's frames,
/// and the span and subscriber that were current where it was taken, which
/// [`scope_future`](Self::scope_future) and [`in_scope`](Self::in_scope)
/// carry along. Cheap to clone. It keeps nothing of the run alive but
/// names, options and that span: like any span handle, it keeps the span
/// (and those around it) open until the last clone is dropped, so drop the
/// context when the work it was taken for is done.
#[derive(Clone)]
pub struct RunContext {
    frame: Arc<Frame>,
    span: tracing::Span,
    dispatch: tracing::Dispatch,
}

impl RunContext {
    /// The id of the top-level run, unique in this process. Nested flows
    /// share their parent's; a flow run started from inside a node gets its
    /// own.
    pub fn run_id(&self) -> u64 {
        self.frame.run.id
    }

    /// What the innermost frame is: a flow, a node, an item, a composition.
    pub fn scope(&self) -> Scope {
        self.frame.scope
    }

    /// The innermost flow's name.
    pub fn flow_name(&self) -> Option<&str> {
        self.frame.find(Scope::Flow).map(|f| f.name.as_str())
    }

    /// The innermost node's name.
    pub fn node_name(&self) -> Option<&str> {
        self.frame.find(Scope::Node).map(|f| f.name.as_str())
    }

    /// The index of the innermost batch item.
    pub fn item_index(&self) -> Option<usize> {
        self.frame.find(Scope::Item).and_then(|f| f.index)
    }

    /// Names from the outermost frame in, e.g. `Main/Analysis/Summarize[2]`.
    pub fn path(&self) -> String {
        self.frame.path()
    }

    /// The run's options: session, user, tags, metadata.
    pub fn options(&self) -> &RunOptions {
        self.frame.run.options()
    }

    /// Runs `future` with this context current on every poll, inside the
    /// span and with the subscriber that were current where the context was
    /// taken: what it records lands there, as if it ran in place. For
    /// executors other than tokio, or tasks not started with [`spawn`]
    /// (`tokio::spawn(context.scope_future(work))`); Python's
    /// `async with context:`.
    pub fn scope_future<F: Future>(&self, future: F) -> InContext<F> {
        InContext { context: self.clone(), future: Box::pin(future) }
    }

    /// Runs `f` with this context current, inside the span and with the
    /// subscriber that were current where the context was taken, e.g. in a
    /// `spawn_blocking` closure or on a thread of your own.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        tracing::dispatcher::with_default(&self.dispatch, || {
            let _entered = self.span.enter();
            let _pushed = push(Entry::Captured(Arc::clone(&self.frame)));
            f()
        })
    }
}

impl fmt::Debug for RunContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunContext").field("run_id", &self.run_id()).field("path", &self.path()).finish()
    }
}

/// A future polled with a run context, its span and its subscriber
/// current. See [`RunContext::scope_future`].
#[must_use = "futures do nothing unless polled"]
pub struct InContext<F> {
    context: RunContext,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for InContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let future = this.future.as_mut();
        this.context.in_scope(|| future.poll(cx))
    }
}

impl<F> fmt::Debug for InContext<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InContext").field("context", &self.context).finish_non_exhaustive()
    }
}

/// Spawns `future` on the current tokio runtime with the caller's run
/// context, span and subscriber, so what it records lands under the node that spawned
/// it, in the right trace, whatever thread runs it. A `pocketflow.context`
/// event (`action = spawned`) marks the spawn in the caller's span.
///
/// The task belongs to its caller: dropping the [`Task`] handle (for
/// instance because the node's run was cancelled) aborts it, so a
/// cancelled flow leaves no task running behind it; call [`Task::detach`]
/// to let it run on. Awaiting the handle gives the task's output, or
/// [`FlowError::Task`] if it panicked or was cancelled. Outside a tokio
/// runtime the handle resolves at once to that error; nothing panics.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), pocketflow::FlowError> {
/// let doubled = pocketflow::spawn("double", async { 21 * 2 }).await?;
/// assert_eq!(doubled, 42);
/// # Ok(()) }
/// ```
pub fn spawn<F>(name: impl Into<String>, future: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let name = name.into();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Task { name, state: TaskState::NoRuntime };
    };
    tracing::Span::current().in_scope(|| telemetry::context("spawned", &name));
    // The subscriber goes along too, for callers that installed theirs
    // with `set_default` (scoped to a thread) rather than globally.
    let handle = match current() {
        Some(context) => runtime.spawn(context.scope_future(future)),
        None => runtime.spawn(future.in_current_span().with_current_subscriber()),
    };
    Task { name, state: TaskState::Running(handle) }
}

/// A task started with [`spawn`]: await it for its output. Dropping it
/// aborts the task unless it was [detached](Task::detach).
#[must_use = "dropping a Task aborts it; call .detach() to let it run"]
pub struct Task<T> {
    name: String,
    state: TaskState<T>,
}

enum TaskState<T> {
    Running(tokio::task::JoinHandle<T>),
    NoRuntime,
    Done,
}

impl<T> Task<T> {
    /// Lets the task run to its end on its own; its output is discarded.
    pub fn detach(mut self) {
        self.state = TaskState::Done;
    }

    /// Aborts the task now.
    pub fn abort(&self) {
        if let TaskState::Running(handle) = &self.state {
            handle.abort();
        }
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, FlowError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = match &mut this.state {
            TaskState::Running(handle) => match Pin::new(handle).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(value)) => Ok(value),
                Poll::Ready(Err(error)) => Err(task_error(&this.name, error)),
            },
            TaskState::NoRuntime => Err(FlowError::Task {
                name: this.name.clone(),
                panicked: false,
                message: "spawn was called outside a tokio runtime".to_owned(),
            }),
            TaskState::Done => Err(FlowError::Task {
                name: this.name.clone(),
                panicked: false,
                message: "the task's output was already taken".to_owned(),
            }),
        };
        this.state = TaskState::Done;
        Poll::Ready(result)
    }
}

fn task_error(name: &str, error: tokio::task::JoinError) -> FlowError {
    if error.is_panic() {
        FlowError::task_panicked(name, &*error.into_panic())
    } else {
        FlowError::Task { name: name.to_owned(), panicked: false, message: error.to_string() }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if let TaskState::Running(handle) = &self.state {
            handle.abort();
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").field("name", &self.name).finish_non_exhaustive()
    }
}

//! The export thread: a queue bounded by memory between the layer and the
//! exporters.
//!
//! A closing span is pushed onto the queue under a short lock, and the
//! export thread is woken once per batch, not per span. When the queue is
//! full, the [`QueueFullPolicy`] decides: by default the closing span's
//! thread waits for room (a burst slows the flow rather than losing spans),
//! and once a wait finds the export thread making no progress (a collector
//! that is down), spans are dropped without waiting until it moves again;
//! every drop is counted. The thread maps batches to OpenTelemetry and
//! keeps several exports in flight, so that the next batch is prepared
//! while the collector answers the last.
//!
//! The thread owns a current-thread tokio runtime for the exporters (tonic
//! and reqwest need one), so exporting never depends on the application's
//! runtime: [`TracingGuard::shutdown`] works from a current-thread runtime,
//! a multi-thread one, or none, without the SDK's flush deadlock. The
//! thread runs with a no-op dispatcher, so the transport's own spans and
//! events (h2, hyper, tonic, reqwest) never reach any layer.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::config::{BatchSettings, MAX_EXPORT_BATCH_BYTES, QueueFullPolicy};
use crate::diagnostics;
use crate::error::TracingError;
use crate::exporter::ExporterSet;
use crate::lane::{self, BatchFate, ExporterStats, Lane, LaneCounters, LaneDone};
use crate::mapping::Mapper;
use crate::record::FinishedSpan;

/// A request from the guard to the export thread, answered on the sender.
enum Control {
    Flush(SyncSender<()>),
    Shutdown(SyncSender<()>),
}

/// What the layer and the guard share with the export thread.
#[derive(Debug)]
struct Queue {
    pending: Mutex<Pending>,
    /// Wakes the export thread: a batch is ready, or a control request or
    /// a waiting producer arrived.
    wake: Notify,
    /// Wakes producers waiting for room.
    room: Condvar,
    capacity: usize,
    max_bytes: usize,
    batch: usize,
    policy: QueueFullPolicy,
    counters: Counters,
    /// Each exporter's name and counts, set by the export thread once its
    /// exporters are built.
    lanes: OnceLock<Vec<(String, Arc<LaneCounters>)>>,
}

#[derive(Default)]
struct Pending {
    /// Spans with their estimated size.
    spans: VecDeque<(FinishedSpan, usize)>,
    bytes: usize,
    control: Vec<Control>,
    /// Set once the export thread has stopped: later spans are dropped.
    stopped: bool,
    /// A producer waited for room in vain: drop without waiting until the
    /// export thread takes spans again.
    stalled: bool,
    /// Spans ever accepted into the queue.
    accepted: u64,
    /// Of those, spans dropped from the queue to make room (`DropOldest`).
    evicted: u64,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("spans", &self.spans.len())
            .field("bytes", &self.bytes)
            .field("stopped", &self.stopped)
            .field("stalled", &self.stalled)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// Whether a span of `size` bytes fits. An empty queue takes any span,
    /// however big: the byte bound must not turn one large span into a
    /// loss.
    fn fits(&self, size: usize, capacity: usize, max_bytes: usize) -> bool {
        self.spans.is_empty() || (self.spans.len() < capacity && self.bytes.saturating_add(size) <= max_bytes)
    }

    fn push(&mut self, span: FinishedSpan, size: usize) {
        self.spans.push_back((span, size));
        self.bytes = self.bytes.saturating_add(size);
        self.accepted += 1;
    }

    fn pop(&mut self) -> Option<FinishedSpan> {
        let (span, size) = self.spans.pop_front()?;
        self.bytes = self.bytes.saturating_sub(size);
        Some(span)
    }

    /// Takes the next batch: up to `max` spans and about
    /// [`MAX_EXPORT_BATCH_BYTES`] (at least one span).
    fn take_batch(&mut self, max: usize) -> (Vec<FinishedSpan>, usize) {
        let mut batch = Vec::with_capacity(self.spans.len().min(max));
        let mut bytes = 0usize;
        while batch.len() < max
            && let Some((_, size)) = self.spans.front()
        {
            if !batch.is_empty() && bytes.saturating_add(*size) > MAX_EXPORT_BATCH_BYTES {
                break;
            }
            bytes = bytes.saturating_add(*size);
            if let Some(span) = self.pop() {
                batch.push(span);
            }
        }
        (batch, bytes)
    }

    /// Whether a full batch is waiting.
    fn batch_ready(&self, batch: usize) -> bool {
        self.spans.len() >= batch || self.bytes >= MAX_EXPORT_BATCH_BYTES
    }
}

impl Queue {
    /// The lock, even if a thread panicked while holding it: the data is a
    /// list of spans, valid at every point.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the export thread for `control` and waits up to `timeout` for
    /// its answer, giving up earlier if no span settles (exported or
    /// failed) for `stall`; returns whether the answer came.
    fn request(&self, control: fn(SyncSender<()>) -> Control, timeout: Duration, stall: Duration) -> bool {
        let (ack, done) = mpsc::sync_channel(1);
        self.lock().control.push(control(ack));
        self.wake.notify_one();
        let deadline = deadline_after(timeout);
        let mut settled = self.counters.progress.load(Ordering::Relaxed);
        let mut last_progress = Instant::now();
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let slice = (deadline - now).min(Duration::from_millis(100));
            match done.recv_timeout(slice) {
                Ok(()) => return true,
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            let now_settled = self.counters.progress.load(Ordering::Relaxed);
            if now_settled != settled {
                settled = now_settled;
                last_progress = Instant::now();
            } else if last_progress.elapsed() >= stall {
                return false;
            }
        }
    }

    fn drop_span(&self) {
        self.counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
        diagnostics::report_once(
            &self.counters.warned_full,
            "queue_full",
            "the span queue is full; spans are being dropped (raise POCKETFLOW_MAX_QUEUE_MB, or check the exporter)",
        );
    }
}

/// Counters shared by the layer, the thread and the guard.
#[derive(Debug, Default)]
struct Counters {
    dropped_queue_full: AtomicU64,
    /// Recorded spans exported.
    exported_recorded: AtomicU64,
    /// Event observations exported with them.
    event_observations: AtomicU64,
    /// Recorded spans in failed exports.
    failed: AtomicU64,
    /// Exports finished, by any exporter: shutdown waits while this moves.
    progress: AtomicU64,
    warned_full: AtomicBool,
}

impl Counters {
    /// Recorded spans whose export finished, one way or the other.
    fn settled(&self) -> u64 {
        self.exported_recorded.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

/// The layer's end of the queue.
#[derive(Debug, Clone)]
pub(crate) struct SpanSink {
    queue: Option<Arc<Queue>>,
}

impl SpanSink {
    /// A sink that drops everything (tracing disabled).
    pub(crate) fn disabled() -> Self {
        Self { queue: None }
    }

    pub(crate) fn send(&self, span: FinishedSpan) {
        let Some(queue) = &self.queue else { return };
        let size = span.approx_bytes();
        let mut pending = queue.lock();
        if pending.stopped {
            drop(pending);
            queue.drop_span();
            return;
        }
        if !pending.fits(size, queue.capacity, queue.max_bytes) {
            match queue.policy {
                QueueFullPolicy::DropNewest => {
                    drop(pending);
                    queue.drop_span();
                    return;
                }
                QueueFullPolicy::DropOldest => {
                    while !pending.fits(size, queue.capacity, queue.max_bytes) && pending.pop().is_some() {
                        pending.evicted += 1;
                        queue.drop_span();
                    }
                }
                QueueFullPolicy::Wait(wait) => {
                    pending = match wait_for_room(queue, pending, size, wait) {
                        Some(pending) => pending,
                        None => {
                            queue.drop_span();
                            return;
                        }
                    };
                }
            }
        }
        pending.push(span, size);
        let ready = pending.batch_ready(queue.batch);
        drop(pending);
        if ready {
            queue.wake.notify_one();
        }
    }
}

/// Waits up to `wait` for room for a span of `size` bytes; `None` if none
/// came (the queue is then marked stalled) or the queue stopped.
fn wait_for_room<'a>(
    queue: &'a Queue,
    mut pending: MutexGuard<'a, Pending>,
    size: usize,
    wait: Duration,
) -> Option<MutexGuard<'a, Pending>> {
    if pending.stalled {
        return None;
    }
    // The export thread may be sleeping on a partial batch: it has work.
    queue.wake.notify_one();
    let deadline = deadline_after(wait);
    while !pending.fits(size, queue.capacity, queue.max_bytes) {
        let now = Instant::now();
        if pending.stopped || pending.stalled || now >= deadline {
            pending.stalled = !pending.stopped;
            return None;
        }
        pending = match queue.room.wait_timeout(pending, deadline - now) {
            Ok((pending, _)) => pending,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
    Some(pending)
}

/// What happened to the spans of a run, as reported at shutdown. Every
/// span the layer recorded is exported, dropped, or (at a shutdown that gave
/// up) in flight: [`recorded`](Self::recorded) =
/// `exported - event_observations + dropped + in_flight`. With several
/// exporters, a span counts as exported once every exporter delivered it,
/// and as failed if any did not; [`TracingGuard::exporter_stats`] and
/// [`ShutdownReport::exporters`] say what each exporter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans the exporters accepted: what a backend receives, event
    /// observations included.
    pub exported: u64,
    /// Of `exported`: the event observations the layer added for Langfuse
    /// (derived from recorded spans' events, not recorded themselves).
    pub event_observations: u64,
    /// Recorded spans lost: dropped because the queue was full, refused by
    /// an exporter, or still queued when shutdown gave up waiting.
    pub dropped: u64,
    /// Of `dropped`: spans dropped because the queue was full (the newest
    /// or the oldest, as the [`QueueFullPolicy`] says).
    pub dropped_queue_full: u64,
    /// Of `dropped`: spans in batches an exporter failed to send.
    pub failed_export: u64,
    /// Of `dropped`: spans still queued when shutdown timed out.
    pub unflushed: u64,
    /// Spans in exports still unanswered: at shutdown, when it gave up
    /// waiting for them. Neither exported nor dropped: the backend may
    /// have them.
    pub in_flight: u64,
    /// Of `exported`, with the spool on: spans written to an exporter's
    /// spool in this run and not sent from it yet (they are sent later, at
    /// shutdown, or at the next start). The sum over the exporters.
    pub spooled: u64,
}

impl ExportStats {
    /// The spans the layer recorded and handed to the queue (or tried
    /// to): those exported plus those dropped.
    pub fn recorded(&self) -> u64 {
        self.exported.saturating_sub(self.event_observations) + self.dropped + self.in_flight
    }
}

/// The outcome of [`TracingGuard::shutdown`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Span counts.
    pub stats: ExportStats,
    /// What each exporter did, in the order they were configured.
    pub exporters: Vec<ExporterStats>,
    /// Whether the export thread finished within the shutdown timeout.
    pub completed: bool,
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        write!(f, "tracing shut down: {} spans exported, {} dropped", s.exported, s.dropped)?;
        if s.dropped > 0 {
            write!(
                f,
                " ({} queue full, {} export failed, {} unflushed)",
                s.dropped_queue_full, s.failed_export, s.unflushed
            )?;
        }
        if s.in_flight > 0 {
            write!(f, ", {} in flight (unanswered at the deadline: the backend may have them)", s.in_flight)?;
        }
        if s.event_observations > 0 {
            write!(f, "; {} of the exported are event observations", s.event_observations)?;
        }
        if !self.completed {
            f.write_str("; timed out waiting for the exporter")?;
        }
        if self.exporters.len() > 1 {
            for e in &self.exporters {
                write!(f, "; {}: {} exported, {} failed", e.name, e.exported, e.failed_export)?;
                if e.dropped_queue_full > 0 {
                    write!(f, ", {} dropped (its queue full)", e.dropped_queue_full)?;
                }
                if e.in_flight > 0 {
                    write!(f, ", {} in flight", e.in_flight)?;
                }
            }
        }
        Ok(())
    }
}

/// Keeps the export thread alive; flushes and stops it on
/// [`shutdown`](Self::shutdown) or when dropped. Keep it in `main` until the
/// last flow has run.
#[must_use = "dropping the guard shuts tracing down; keep it until the program ends"]
#[derive(Debug)]
pub struct TracingGuard {
    queue: Option<Arc<Queue>>,
    thread: Option<JoinHandle<()>>,
    shutdown_timeout: Duration,
    /// Shutdown gives up when no export settles for this long.
    stall: Duration,
}

impl TracingGuard {
    pub(crate) fn disabled() -> Self {
        Self { queue: None, thread: None, shutdown_timeout: Duration::ZERO, stall: Duration::ZERO }
    }

    /// Span counts so far. `in_flight` counts the spans taken off the queue
    /// whose exports have not all finished.
    pub fn stats(&self) -> ExportStats {
        let Some(queue) = &self.queue else { return ExportStats::default() };
        let c = &queue.counters;
        let settled = c.settled();
        let in_flight = {
            let pending = queue.lock();
            (pending.accepted - pending.evicted - pending.spans.len() as u64).saturating_sub(settled)
        };
        let dropped_queue_full = c.dropped_queue_full.load(Ordering::Relaxed);
        let failed_export = c.failed.load(Ordering::Relaxed);
        let event_observations = c.event_observations.load(Ordering::Relaxed);
        ExportStats {
            exported: c.exported_recorded.load(Ordering::Relaxed) + event_observations,
            event_observations,
            dropped: dropped_queue_full + failed_export,
            dropped_queue_full,
            failed_export,
            unflushed: 0,
            in_flight,
            spooled: self.exporter_stats().iter().map(|stats| stats.spooled).sum(),
        }
    }

    /// What each exporter did so far, in the order they were configured.
    pub fn exporter_stats(&self) -> Vec<ExporterStats> {
        let Some(queue) = &self.queue else { return Vec::new() };
        queue
            .lanes
            .get()
            .map_or_else(Vec::new, |lanes| lanes.iter().map(|(name, counters)| counters.stats(name)).collect())
    }

    /// Exports everything queued so far and waits for it, for as long as
    /// exports make progress, up to the shutdown timeout. Returns whether
    /// the exporters finished in time. Blocks the calling thread, never
    /// the export.
    pub fn flush(&self) -> bool {
        let Some(queue) = &self.queue else { return true };
        queue.request(Control::Flush, self.shutdown_timeout, self.stall)
    }

    /// Exports what is queued (for as long as exports make progress, up to
    /// the shutdown timeout), stops the exporters and reports what was
    /// exported and what was lost. Safe to call from any thread, including
    /// a tokio runtime's (current-thread or multi-thread).
    pub fn shutdown(mut self) -> ShutdownReport {
        self.stop()
    }

    fn stop(&mut self) -> ShutdownReport {
        let Some(queue) = self.queue.clone() else {
            return ShutdownReport { stats: self.stats(), exporters: Vec::new(), completed: true };
        };
        let completed = queue.request(Control::Shutdown, self.shutdown_timeout, self.stall);
        if completed && let Some(thread) = self.thread.take() {
            // The thread has answered; it only returns from here on.
            let _ = thread.join();
        }
        let exporters = self.exporter_stats();
        let mut stats = self.stats();
        self.queue = None;
        let mut pending = queue.lock();
        // Whatever comes later is dropped and counted.
        pending.stopped = true;
        stats.unflushed = pending.spans.len() as u64;
        drop(pending);
        queue.room.notify_all();
        stats.dropped += stats.unflushed;
        ShutdownReport { stats, exporters, completed }
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if self.queue.is_some() {
            let report = self.stop();
            if report.stats.dropped > 0 || !report.completed {
                diagnostics::report("shutdown", &report.to_string());
            }
        }
    }
}

/// Starts the export thread. `build` makes the exporters on that thread,
/// inside its runtime (tonic needs one); its error is returned here.
/// `export_timeout`: one export's deadline; shutdown gives up when nothing
/// settles for that long.
pub(crate) fn start(
    batch: &BatchSettings,
    export_timeout: Duration,
    mapper: Mapper,
    debug: bool,
    build: impl FnOnce() -> Result<ExporterSet, TracingError> + Send + 'static,
) -> Result<(SpanSink, TracingGuard), TracingError> {
    let queue = Arc::new(Queue {
        pending: Mutex::default(),
        wake: Notify::new(),
        room: Condvar::new(),
        capacity: batch.max_queue_size,
        max_bytes: batch.max_queue_bytes,
        batch: batch.max_export_batch_size,
        policy: batch.queue_full,
        counters: Counters::default(),
        lanes: OnceLock::new(),
    });
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let worker = Worker {
        queue: Arc::clone(&queue),
        mapper,
        delay: batch.scheduled_delay,
        concurrency: batch.max_concurrent_exports.max(1),
        // An export that works answers within its timeout; one that has
        // not, with all its exporter's slots taken, is stuck or retrying.
        max_queue_bytes: batch.max_queue_bytes,
        debug,
    };
    let thread = std::thread::Builder::new()
        .name("pocketflow-tracing-export".to_owned())
        .spawn(move || {
            tracing::dispatcher::with_default(&tracing::Dispatch::none(), || worker.run(build, ready_tx));
        })
        .map_err(TracingError::Thread)?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            let _ = thread.join();
            return Err(error);
        }
        Err(_) => {
            return Err(TracingError::Thread(std::io::Error::other("the export thread stopped while starting")));
        }
    }
    let sink = SpanSink { queue: Some(Arc::clone(&queue)) };
    // One export may take its whole timeout (plus its connection set-up)
    // without anything settling.
    let stall = export_timeout.saturating_mul(2).max(Duration::from_secs(1));
    let guard =
        TracingGuard { queue: Some(queue), thread: Some(thread), shutdown_timeout: batch.shutdown_timeout, stall };
    Ok((sink, guard))
}

/// `delay` from now; a delay too long to represent means "no deadline" in
/// practice (a year), never a panic.
fn deadline_after(delay: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(delay).or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600))).unwrap_or(now)
}

struct Worker {
    queue: Arc<Queue>,
    mapper: Mapper,
    delay: Duration,
    concurrency: usize,
    /// The pipeline's queue bound, also each exporter's own when there are
    /// several.
    max_queue_bytes: usize,
    debug: bool,
}

/// Whether the export thread can take a batch off the queue: some
/// exporter can take one (the others drop it for themselves).
fn can_take(lanes: &[Lane]) -> bool {
    lanes.is_empty() || lanes.iter().any(|lane| lane.can_take(MAX_EXPORT_BATCH_BYTES))
}

impl Worker {
    fn run(
        self,
        build: impl FnOnce() -> Result<ExporterSet, TracingError>,
        ready: SyncSender<Result<(), TracingError>>,
    ) {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                let _ = ready.send(Err(TracingError::Thread(error)));
                return;
            }
        };
        let exporters = {
            let _entered = runtime.enter();
            build()
        };
        let mut exporters = match exporters {
            Ok(exporters) => exporters,
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        exporters.set_resource(self.mapper.resource());
        let exporters = exporters.into_exporters();
        // One exporter's queue is the pipeline's; several get one each.
        let own_queue = if exporters.len() > 1 { self.max_queue_bytes } else { 0 };
        let lanes: Vec<Lane> =
            exporters.into_iter().map(|exporter| Lane::new(exporter, self.concurrency, own_queue)).collect();
        let _ = self.queue.lanes.set(lanes.iter().map(|lane| (lane.name().to_owned(), lane.counters())).collect());
        let _ = ready.send(Ok(()));
        runtime.block_on(self.export_loop(lanes));
    }

    /// Takes batches off the queue and keeps up to `concurrency` exports
    /// in flight per exporter, until shutdown.
    async fn export_loop(&self, mut lanes: Vec<Lane>) {
        let mut exports: JoinSet<LaneDone> = JoinSet::new();
        let mut deadline = deadline_after(self.delay);
        // Control requests waiting for the queue to drain.
        let mut waiting: Vec<Control> = Vec::new();
        loop {
            let wake = self.queue.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let now = Instant::now();
            let open = can_take(&lanes);
            // Take what is due, while the exporters have room.
            let ((batch, bytes), control) = {
                let mut pending = self.queue.lock();
                waiting.append(&mut pending.control);
                let due = !waiting.is_empty() || now >= deadline || pending.batch_ready(self.queue.batch);
                let batch = if due && open && !pending.spans.is_empty() {
                    pending.take_batch(self.queue.batch)
                } else {
                    (Vec::new(), 0)
                };
                if !batch.0.is_empty() {
                    // Progress: waiting producers may go on.
                    pending.stalled = false;
                }
                let drained = pending.spans.is_empty();
                if drained {
                    // The next partial batch waits a whole delay.
                    deadline = deadline_after(self.delay);
                }
                let control = if drained && exports.is_empty() && batch.0.is_empty() {
                    std::mem::take(&mut waiting)
                } else {
                    Vec::new()
                };
                if control.iter().any(|c| matches!(c, Control::Shutdown(_))) {
                    pending.stopped = true;
                }
                (batch, control)
            };
            if !batch.is_empty() {
                self.queue.room.notify_all();
                self.dispatch(batch, bytes, &mut lanes, &mut exports);
                continue;
            }
            if !control.is_empty() {
                // What waits in a spool goes before a flush answers.
                for lane in &lanes {
                    lane.exporter().drain_spool().await;
                }
            }
            let mut stop = false;
            for request in control {
                match request {
                    Control::Flush(ack) => {
                        lanes.iter().for_each(|lane| lane.exporter().force_flush());
                        let _ = ack.send(());
                    }
                    Control::Shutdown(ack) => {
                        lanes.iter().for_each(|lane| lane.exporter().shutdown());
                        // Producers waiting for room give up now.
                        self.queue.room.notify_all();
                        let _ = ack.send(());
                        stop = true;
                    }
                }
            }
            if stop {
                return;
            }
            // With every exporter full, only a finished export (or a
            // request) can change anything: the deadline would spin.
            tokio::select! {
                () = &mut wake => {}
                () = tokio::time::sleep_until(deadline.into()), if open => {}
                Some(done) = exports.join_next(), if !exports.is_empty() => {
                    if let Ok(done) = done {
                        self.queue.counters.progress.fetch_add(1, Ordering::Relaxed);
                        if let Some((failed, recorded, added)) = lane::settle(&mut lanes, done, &mut exports, self.debug) {
                            self.finish(failed, recorded, added);
                        }
                    }
                }
            }
        }
    }

    /// Maps `batch` (`bytes` in the queue) on this thread, once, and hands
    /// it to every exporter.
    fn dispatch(&self, batch: Vec<FinishedSpan>, bytes: usize, lanes: &mut [Lane], exports: &mut JoinSet<LaneDone>) {
        let recorded = batch.len() as u64;
        let mut spans = Vec::with_capacity(batch.len());
        for record in batch {
            self.mapper.map(record, &mut spans);
        }
        let added = spans.len() as u64 - recorded;
        if lanes.is_empty() {
            self.finish(false, recorded, added);
            return;
        }
        let fate = BatchFate::new(lanes.len(), recorded, added);
        let last = lanes.len() - 1;
        for (index, lane) in lanes.iter_mut().enumerate() {
            let spans = if index == last { std::mem::take(&mut spans) } else { spans.clone() };
            if let Some(failed) = lane.take(index, spans, Arc::clone(&fate), bytes, exports) {
                self.finish(failed, recorded, added);
            }
        }
    }

    /// Counts a batch whose exports all finished: exported if every
    /// exporter delivered it, failed otherwise.
    fn finish(&self, failed: bool, recorded: u64, added: u64) {
        let counters = &self.queue.counters;
        if failed {
            counters.failed.fetch_add(recorded, Ordering::Relaxed);
        } else {
            counters.exported_recorded.fetch_add(recorded, Ordering::Relaxed);
            counters.event_observations.fetch_add(added, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use pocketflow::{Action, BoxError, Ctx, Flow, Node, SharedStore};
    use tracing_subscriber::layer::SubscriberExt as _;

    use crate::config::MAX_QUEUE_SIZE;
    use crate::{ConsoleExporter, TracingConfig};

    struct Step;

    impl Node for Step {
        type Prep = ();
        type Exec = ();

        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }

        fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
            Ok(())
        }

        fn post(&self, _: &Ctx<'_>, _: &SharedStore, (): (), (): ()) -> Result<Action, BoxError> {
            Ok(Action::NONE)
        }
    }

    /// The export thread swaps its own buffer into the queue on every
    /// cycle, so the queue's capacity after a flush shows what the thread
    /// allocated: a few spans' worth, not the configured sizes.
    #[test]
    fn the_largest_queue_and_batch_are_never_allocated_up_front_and_export_works() {
        let config = TracingConfig::builder()
            .max_queue_size(MAX_QUEUE_SIZE)
            .max_export_batch_size(MAX_QUEUE_SIZE)
            .build()
            .unwrap();
        let (layer, guard) = config.layer_with_exporter(ConsoleExporter::new(std::io::sink())).unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let mut flow = Flow::named("Sized");
            flow.start(Step);
            flow.run(&SharedStore::new()).unwrap();
        });
        assert!(guard.flush(), "the export thread answered");
        let capacity = guard.queue.as_ref().expect("running").lock().spans.capacity();
        assert!(capacity < 1024, "the queue holds room for {capacity} spans");
        let report = guard.shutdown();
        assert!(report.completed, "{report}");
        assert_eq!((report.stats.exported, report.stats.dropped), (5, 0), "{report}");
    }
}

//! The export thread: a bounded queue between the layer and the exporters.
//!
//! A closing span is pushed onto a shared batch under a short lock, and the
//! export thread is woken once per batch, not per span. A slow or absent
//! collector never blocks a node: when the queue is full the span is dropped
//! and counted. The thread owns a current-thread tokio runtime for the
//! exporters (tonic and reqwest need one), so exporting never depends on the
//! application's runtime: [`TracingGuard::shutdown`] works from a
//! current-thread runtime, a multi-thread one, or none, without the SDK's
//! flush deadlock. The thread runs with a no-op dispatcher, so the
//! transport's own spans and events (h2, hyper, tonic, reqwest) never reach
//! any layer.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::BatchSettings;
use crate::diagnostics;
use crate::endpoint::mask_credentials;
use crate::error::TracingError;
use crate::exporter::ExporterSet;
use crate::mapping::Mapper;
use crate::record::FinishedSpan;
use opentelemetry_sdk::trace::SpanData;

/// A request from the guard to the export thread, answered on the sender.
enum Control {
    Flush(SyncSender<()>),
    Shutdown(SyncSender<()>),
}

/// What the layer and the guard share with the export thread.
#[derive(Debug)]
struct Queue {
    pending: Mutex<Pending>,
    /// Signalled when a batch is full or a control request arrives.
    wake: Condvar,
    capacity: usize,
    batch: usize,
    counters: Counters,
}

#[derive(Default)]
struct Pending {
    spans: Vec<FinishedSpan>,
    control: Vec<Control>,
    /// Set once the export thread has stopped: later spans are dropped.
    stopped: bool,
    /// Spans ever accepted (counted under the lock the push takes anyway).
    queued: u64,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending").field("spans", &self.spans.len()).field("stopped", &self.stopped).finish()
    }
}

impl Queue {
    /// The lock, even if a thread panicked while holding it: the data is a
    /// list of spans, valid at every point.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the export thread for `control` and waits up to `timeout` for
    /// its answer; returns whether it came.
    fn request(&self, control: fn(SyncSender<()>) -> Control, timeout: Duration) -> bool {
        let (ack, done) = mpsc::sync_channel(1);
        self.lock().control.push(control(ack));
        self.wake.notify_one();
        done.recv_timeout(timeout).is_ok()
    }
}

/// Counters shared by the layer, the thread and the guard.
#[derive(Debug, Default)]
struct Counters {
    dropped_queue_full: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    warned_full: AtomicBool,
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
        let mut pending = queue.lock();
        let len = pending.spans.len();
        if pending.stopped || len >= queue.capacity {
            drop(pending);
            queue.counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            diagnostics::report_once(
                &queue.counters.warned_full,
                "queue_full",
                "the span queue is full; spans are being dropped (raise OTEL_BSP_MAX_QUEUE_SIZE, or check the exporter)",
            );
            return;
        }
        pending.spans.push(span);
        pending.queued += 1;
        drop(pending);
        if len + 1 == queue.batch {
            queue.wake.notify_one();
        }
    }
}

/// What happened to the spans of a run, as reported at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans the exporters accepted.
    pub exported: u64,
    /// Spans lost: dropped because the queue was full, refused by an
    /// exporter, or still queued when shutdown gave up waiting.
    pub dropped: u64,
    /// Of `dropped`: spans dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Of `dropped`: spans in batches an exporter failed to send.
    pub failed_export: u64,
    /// Of `dropped`: spans still queued when shutdown timed out.
    pub unflushed: u64,
}

/// The outcome of [`TracingGuard::shutdown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Span counts.
    pub stats: ExportStats,
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
        if !self.completed {
            f.write_str("; timed out waiting for the exporter")?;
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
}

impl TracingGuard {
    pub(crate) fn disabled() -> Self {
        Self { queue: None, thread: None, shutdown_timeout: Duration::ZERO }
    }

    /// Span counts so far.
    pub fn stats(&self) -> ExportStats {
        let Some(queue) = &self.queue else { return ExportStats::default() };
        let c = &queue.counters;
        let dropped_queue_full = c.dropped_queue_full.load(Ordering::Relaxed);
        let failed_export = c.failed.load(Ordering::Relaxed);
        ExportStats {
            exported: c.exported.load(Ordering::Relaxed),
            dropped: dropped_queue_full + failed_export,
            dropped_queue_full,
            failed_export,
            unflushed: 0,
        }
    }

    /// Exports everything queued so far and waits for it, up to the shutdown
    /// timeout. Returns whether the exporters finished in time. Blocks the
    /// calling thread, never the export.
    pub fn flush(&self) -> bool {
        let Some(queue) = &self.queue else { return true };
        queue.request(Control::Flush, self.shutdown_timeout)
    }

    /// Exports what is queued, stops the exporters and reports what was
    /// exported and what was lost. Safe to call from any thread, including
    /// a tokio runtime's (current-thread or multi-thread).
    pub fn shutdown(mut self) -> ShutdownReport {
        self.stop()
    }

    fn stop(&mut self) -> ShutdownReport {
        let Some(queue) = self.queue.clone() else {
            return ShutdownReport { stats: self.stats(), completed: true };
        };
        let completed = queue.request(Control::Shutdown, self.shutdown_timeout);
        if completed && let Some(thread) = self.thread.take() {
            // The thread has answered; it only returns from here on.
            let _ = thread.join();
        }
        let mut stats = self.stats();
        self.queue = None;
        let settled = stats.exported + stats.failed_export;
        stats.unflushed = queue.lock().queued.saturating_sub(settled);
        stats.dropped += stats.unflushed;
        ShutdownReport { stats, completed }
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
pub(crate) fn start(
    batch: &BatchSettings,
    mapper: Mapper,
    debug: bool,
    build: impl FnOnce() -> Result<ExporterSet, TracingError> + Send + 'static,
) -> Result<(SpanSink, TracingGuard), TracingError> {
    let queue = Arc::new(Queue {
        pending: Mutex::default(),
        wake: Condvar::new(),
        capacity: batch.max_queue_size,
        batch: batch.max_export_batch_size,
        counters: Counters::default(),
    });
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let worker = Worker { queue: Arc::clone(&queue), mapper, delay: batch.scheduled_delay, debug };
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
    let guard = TracingGuard { queue: Some(queue), thread: Some(thread), shutdown_timeout: batch.shutdown_timeout };
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
    debug: bool,
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
        let _ = ready.send(Ok(()));

        let batch = self.queue.batch;
        // Grown as spans arrive, never sized from the configured numbers: a
        // queue or batch size must not turn into an allocation up front.
        let mut spare = Vec::new();
        let mut deadline = deadline_after(self.delay);
        loop {
            let (mut spans, control) = {
                let mut pending = self.queue.lock();
                while pending.spans.len() < batch && pending.control.is_empty() {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    pending = match self.queue.wake.wait_timeout(pending, deadline - now) {
                        Ok((pending, _)) => pending,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                }
                let control = std::mem::take(&mut pending.control);
                if control.iter().any(|c| matches!(c, Control::Shutdown(_))) {
                    pending.stopped = true;
                }
                (std::mem::replace(&mut pending.spans, std::mem::take(&mut spare)), control)
            };
            let mut drain = spans.drain(..);
            loop {
                let mut chunk = Vec::new();
                for span in drain.by_ref().take(batch.max(1)) {
                    self.mapper.map(span, &mut chunk);
                }
                if chunk.is_empty() {
                    break;
                }
                self.export(&runtime, &exporters, chunk);
            }
            drop(drain);
            spare = spans;
            deadline = deadline_after(self.delay);
            for request in control {
                match request {
                    Control::Flush(ack) => {
                        exporters.force_flush();
                        let _ = ack.send(());
                    }
                    Control::Shutdown(ack) => {
                        exporters.shutdown();
                        let _ = ack.send(());
                        return;
                    }
                }
            }
        }
    }

    fn export(&self, runtime: &tokio::runtime::Runtime, exporters: &ExporterSet, spans: Vec<SpanData>) {
        let count = spans.len() as u64;
        let counters = &self.queue.counters;
        match runtime.block_on(exporters.export(spans)) {
            Ok(()) => {
                counters.exported.fetch_add(count, Ordering::Relaxed);
                if self.debug {
                    diagnostics::report("exported", &format!("{count} spans"));
                }
            }
            Err(error) => {
                let previous = counters.failed.fetch_add(count, Ordering::Relaxed);
                if previous == 0 || self.debug {
                    // Transport errors quote the endpoint, password included.
                    let message = format!("{count} spans lost: {error}");
                    diagnostics::report("export_failed", &mask_credentials(&message));
                }
            }
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

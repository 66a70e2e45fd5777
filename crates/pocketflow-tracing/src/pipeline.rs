//! The export thread: a bounded queue between the layer and the exporters.
//!
//! Closed spans are sent with `try_send`, so a slow or absent collector never
//! blocks a node: when the queue is full the span is dropped and counted.
//! The thread owns a current-thread tokio runtime for the exporters (tonic
//! and reqwest need one), so exporting never depends on the application's
//! runtime: [`TracingGuard::shutdown`] works from a current-thread runtime,
//! a multi-thread one, or none, without the SDK's flush deadlock. The
//! thread runs with a no-op dispatcher, so the transport's own spans and
//! events (h2, hyper, tonic, reqwest) never reach any layer.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::BatchSettings;
use crate::diagnostics;
use crate::error::TracingError;
use crate::exporter::ExporterSet;
use crate::mapping::Mapper;
use crate::record::FinishedSpan;

enum Message {
    Span(FinishedSpan),
    Flush(SyncSender<()>),
    Shutdown(SyncSender<()>),
}

/// Counters shared by the layer, the thread and the guard.
#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    dropped_queue_full: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    warned_full: AtomicBool,
}

/// The layer's end of the queue.
#[derive(Debug, Clone)]
pub(crate) struct SpanSink {
    tx: Option<SyncSender<Message>>,
    counters: Arc<Counters>,
}

impl SpanSink {
    /// A sink that drops everything (tracing disabled).
    pub(crate) fn disabled() -> Self {
        Self { tx: None, counters: Arc::default() }
    }

    pub(crate) fn send(&self, span: FinishedSpan) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(Message::Span(span)) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                self.counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
                if !self.counters.warned_full.swap(true, Ordering::Relaxed) {
                    diagnostics::warn(
                        "queue_full",
                        "the span queue is full; spans are being dropped (raise OTEL_BSP_MAX_QUEUE_SIZE, or check the exporter)",
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            }
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
    tx: Option<SyncSender<Message>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl TracingGuard {
    pub(crate) fn disabled() -> Self {
        Self { tx: None, counters: Arc::default(), thread: None, shutdown_timeout: Duration::ZERO }
    }

    /// Span counts so far.
    pub fn stats(&self) -> ExportStats {
        let c = &self.counters;
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
        let Some(tx) = &self.tx else { return true };
        let (ack, done) = mpsc::sync_channel(1);
        if tx.send(Message::Flush(ack)).is_err() {
            return false;
        }
        done.recv_timeout(self.shutdown_timeout).is_ok()
    }

    /// Exports what is queued, stops the exporters and reports what was
    /// exported and what was lost. Safe to call from any thread, including
    /// a tokio runtime's (current-thread or multi-thread).
    pub fn shutdown(mut self) -> ShutdownReport {
        self.stop()
    }

    fn stop(&mut self) -> ShutdownReport {
        let Some(tx) = self.tx.take() else {
            return ShutdownReport { stats: self.stats(), completed: true };
        };
        let (ack, done) = mpsc::sync_channel(1);
        let completed = tx.send(Message::Shutdown(ack)).is_ok() && done.recv_timeout(self.shutdown_timeout).is_ok();
        drop(tx);
        if completed && let Some(thread) = self.thread.take() {
            // The thread has answered; it only returns from here on.
            let _ = thread.join();
        }
        let mut stats = self.stats();
        let settled = stats.exported + stats.failed_export;
        stats.unflushed = self.counters.queued.load(Ordering::Relaxed).saturating_sub(settled);
        stats.dropped += stats.unflushed;
        ShutdownReport { stats, completed }
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if self.tx.is_some() {
            let report = self.stop();
            if report.stats.dropped > 0 || !report.completed {
                diagnostics::warn("shutdown", &report.to_string());
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
    let (tx, rx) = mpsc::sync_channel(batch.max_queue_size);
    let counters = Arc::new(Counters::default());
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let worker = Worker {
        rx,
        counters: Arc::clone(&counters),
        mapper,
        max_batch: batch.max_export_batch_size,
        delay: batch.scheduled_delay,
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
    let sink = SpanSink { tx: Some(tx.clone()), counters: Arc::clone(&counters) };
    let guard = TracingGuard { tx: Some(tx), counters, thread: Some(thread), shutdown_timeout: batch.shutdown_timeout };
    Ok((sink, guard))
}

struct Worker {
    rx: Receiver<Message>,
    counters: Arc<Counters>,
    mapper: Mapper,
    max_batch: usize,
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

        let mut batch = Vec::with_capacity(self.max_batch);
        let mut deadline = Instant::now() + self.delay;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(Message::Span(span)) => {
                    batch.push(span);
                    if batch.len() >= self.max_batch {
                        self.export(&runtime, &exporters, &mut batch);
                        deadline = Instant::now() + self.delay;
                    }
                }
                Ok(Message::Flush(ack)) => {
                    self.export(&runtime, &exporters, &mut batch);
                    exporters.force_flush();
                    let _ = ack.send(());
                }
                Ok(Message::Shutdown(ack)) => {
                    self.export(&runtime, &exporters, &mut batch);
                    exporters.shutdown();
                    let _ = ack.send(());
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.export(&runtime, &exporters, &mut batch);
                    deadline = Instant::now() + self.delay;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.export(&runtime, &exporters, &mut batch);
                    exporters.shutdown();
                    return;
                }
            }
        }
    }

    fn export(&self, runtime: &tokio::runtime::Runtime, exporters: &ExporterSet, batch: &mut Vec<FinishedSpan>) {
        if batch.is_empty() {
            return;
        }
        let count = batch.len() as u64;
        let spans = batch.drain(..).map(|span| self.mapper.map(span)).collect();
        match runtime.block_on(exporters.export(spans)) {
            Ok(()) => {
                self.counters.exported.fetch_add(count, Ordering::Relaxed);
                if self.debug {
                    diagnostics::info("exported", &format!("{count} spans"));
                }
            }
            Err(error) => {
                let previous = self.counters.failed.fetch_add(count, Ordering::Relaxed);
                if previous == 0 || self.debug {
                    diagnostics::warn("export_failed", &format!("{count} spans lost: {error}"));
                }
            }
        }
    }
}

//! Each exporter's own share of the export thread: its exports in flight,
//! its own queue, its retries and its counts. A batch is mapped once and
//! handed to every exporter. With several exporters, each has a queue of
//! its own, as large as the pipeline's: an exporter that is slow or down
//! fills only its own queue, then drops (and counts) its own spans, while
//! the others go on. Only when every exporter is full does the pipeline's
//! queue fill behind them, and then the queue-full policy applies, as it
//! does for a single exporter (whose queue is the pipeline's).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use opentelemetry_sdk::trace::SpanData;
use tokio::task::JoinSet;

use crate::diagnostics;
use crate::endpoint::mask_credentials;
use crate::exporter::{ExporterCounters, NamedExporter};

/// What one exporter did with the spans it was given. Its spans are those
/// the layer recorded plus the event observations it adds for Langfuse, so
/// `exported + failed_export + dropped_queue_full + in_flight + spooled +
/// evicted_from_spool` is every span handed to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ExporterStats {
    /// The exporter: `otlp`, `langfuse`, `console`, or `custom` for one
    /// given to [`TracingConfig::layer_with_exporter`](crate::TracingConfig::layer_with_exporter).
    pub name: String,
    /// Spans it delivered.
    pub exported: u64,
    /// Spans in batches it failed to deliver (after its retries).
    pub failed_export: u64,
    /// Spans dropped because its own queue was full (with several
    /// exporters, each has one, as large as the pipeline's): it was slower
    /// than the flows, or down, while the other exporters went on.
    pub dropped_queue_full: u64,
    /// Spans taken for it and not settled: in exports not answered yet, or
    /// waiting in its own queue (at shutdown: when shutdown gave up; the
    /// backend may have the ones being sent).
    pub in_flight: u64,
    /// Spans it sent again after a failed try (each retry counts the
    /// batch's spans once). Not a fate: a retried span ends up in one of
    /// the counts above.
    pub retried: u64,
    /// With the spool on: spans written to the spool in this run (their
    /// batch was not delivered in time) and not sent from it yet. A spooled
    /// span is sent later (then counted in `exported`), evicted, or left
    /// for the next start.
    pub spooled: u64,
    /// Spans evicted from the full spool, unsent.
    pub evicted_from_spool: u64,
}

/// A lane's counts, shared with the guard.
#[derive(Debug, Default)]
pub(crate) struct LaneCounters {
    exported: AtomicU64,
    failed: AtomicU64,
    dropped_queue_full: AtomicU64,
    in_flight: AtomicU64,
    exporter: Arc<ExporterCounters>,
    warned_failed: AtomicBool,
    warned_full: AtomicBool,
}

impl LaneCounters {
    pub(crate) fn stats(&self, name: &str) -> ExporterStats {
        let own = &self.exporter;
        let spooled_in = own.spooled.load(Ordering::Relaxed);
        let (sent, evicted, refused) = (
            own.spool_sent.load(Ordering::Relaxed),
            own.spool_evicted.load(Ordering::Relaxed),
            own.spool_failed.load(Ordering::Relaxed),
        );
        // The lane counts a spooled batch as taken; it is delivered once
        // sent from the spool.
        let exported = (self.exported.load(Ordering::Relaxed) + sent).saturating_sub(spooled_in);
        // Sent, evicted or refused may include a previous run's spans.
        let spooled = spooled_in.saturating_sub(sent + evicted + refused);
        ExporterStats {
            name: name.to_owned(),
            exported,
            failed_export: self.failed.load(Ordering::Relaxed) + own.spool_failed.load(Ordering::Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            retried: own.retried.load(Ordering::Relaxed),
            spooled,
            evicted_from_spool: evicted,
        }
    }
}

/// What a batch's recorded spans came to across every exporter: exported
/// once every exporter took them, failed if any did not.
#[derive(Debug)]
pub(crate) struct BatchFate {
    remaining: AtomicUsize,
    failed: AtomicBool,
    /// Recorded spans in the batch.
    pub(crate) recorded: u64,
    /// Event observations the mapping added to them.
    pub(crate) added: u64,
}

impl BatchFate {
    pub(crate) fn new(lanes: usize, recorded: u64, added: u64) -> Arc<Self> {
        Arc::new(Self { remaining: AtomicUsize::new(lanes), failed: AtomicBool::new(false), recorded, added })
    }

    /// Records one exporter's outcome; when it was the last, whether the
    /// batch failed anywhere.
    pub(crate) fn settle(&self, delivered: bool) -> Option<bool> {
        if !delivered {
            self.failed.store(true, Ordering::Release);
        }
        (self.remaining.fetch_sub(1, Ordering::AcqRel) == 1).then(|| self.failed.load(Ordering::Acquire))
    }
}

/// One export, finished.
#[derive(Debug)]
pub(crate) struct LaneDone {
    lane: usize,
    spans: u64,
    fate: Arc<BatchFate>,
    result: Result<(), String>,
}

/// One exporter, its exports in flight, and (with several exporters) its
/// own queue of batches waiting for a free export.
#[derive(Debug)]
pub(crate) struct Lane {
    exporter: Arc<NamedExporter>,
    counters: Arc<LaneCounters>,
    in_flight: usize,
    concurrency: usize,
    /// Mapped batches waiting for a free export, with their size.
    queued: VecDeque<(Vec<SpanData>, Arc<BatchFate>, usize)>,
    queued_bytes: usize,
    /// Bytes its queue may hold; zero: no queue of its own (a single
    /// exporter, whose queue is the pipeline's).
    max_queued_bytes: usize,
}

impl Lane {
    pub(crate) fn new(exporter: NamedExporter, concurrency: usize, max_queued_bytes: usize) -> Self {
        let counters = LaneCounters { exporter: Arc::clone(&exporter.counters), ..LaneCounters::default() };
        Self {
            exporter: Arc::new(exporter),
            counters: Arc::new(counters),
            in_flight: 0,
            concurrency: concurrency.max(1),
            queued: VecDeque::new(),
            queued_bytes: 0,
            max_queued_bytes,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.exporter.name
    }

    pub(crate) fn counters(&self) -> Arc<LaneCounters> {
        Arc::clone(&self.counters)
    }

    pub(crate) fn exporter(&self) -> &NamedExporter {
        &self.exporter
    }

    /// Whether a batch of `bytes` can be taken now: a free export, or room
    /// in its own queue (an empty queue takes a batch of any size).
    pub(crate) fn can_take(&self, bytes: usize) -> bool {
        self.in_flight < self.concurrency
            || (self.max_queued_bytes > 0
                && (self.queued.is_empty() || self.queued_bytes.saturating_add(bytes) <= self.max_queued_bytes))
    }

    /// Takes `spans` (the lane at `index`): exports them at once, queues
    /// them, or, when it can take nothing, drops them for this exporter.
    /// Returns the batch's fate if this settled it.
    pub(crate) fn take(
        &mut self,
        index: usize,
        spans: Vec<SpanData>,
        fate: Arc<BatchFate>,
        bytes: usize,
        exports: &mut JoinSet<LaneDone>,
    ) -> Option<bool> {
        let count = spans.len() as u64;
        if !self.can_take(bytes) {
            self.counters.dropped_queue_full.fetch_add(count, Ordering::Relaxed);
            diagnostics::report_once(
                &self.counters.warned_full,
                "exporter_queue_full",
                &format!(
                    "{}: its queue is full (the backend is slower than the flows, or down); \
                     its spans are dropped and counted, and the other exporters go on",
                    self.exporter.name
                ),
            );
            return fate.settle(false);
        }
        self.counters.in_flight.fetch_add(count, Ordering::Relaxed);
        if self.in_flight < self.concurrency {
            self.start(index, spans, fate, exports);
        } else {
            self.queued_bytes = self.queued_bytes.saturating_add(bytes);
            self.queued.push_back((spans, fate, bytes));
        }
        None
    }

    fn start(&mut self, index: usize, spans: Vec<SpanData>, fate: Arc<BatchFate>, exports: &mut JoinSet<LaneDone>) {
        let count = spans.len() as u64;
        self.in_flight += 1;
        let exporter = Arc::clone(&self.exporter);
        exports.spawn(async move {
            let result = exporter.export(spans).await;
            LaneDone { lane: index, spans: count, fate, result }
        });
    }

    /// Starts the next queued batch, if there is one and an export is free.
    fn start_queued(&mut self, index: usize, exports: &mut JoinSet<LaneDone>) {
        if self.in_flight < self.concurrency
            && let Some((spans, fate, bytes)) = self.queued.pop_front()
        {
            self.queued_bytes = self.queued_bytes.saturating_sub(bytes);
            self.start(index, spans, fate, exports);
        }
    }
}

/// Settles a finished export on its lane and starts the lane's next
/// queued batch; returns the batch's fate if this was its last exporter,
/// with its recorded and added counts.
pub(crate) fn settle(
    lanes: &mut [Lane],
    done: LaneDone,
    exports: &mut JoinSet<LaneDone>,
    debug: bool,
) -> Option<(bool, u64, u64)> {
    let LaneDone { lane: index, spans, fate, result } = done;
    let lane = lanes.get_mut(index)?;
    lane.in_flight = lane.in_flight.saturating_sub(1);
    lane.start_queued(index, exports);
    let counters = &lane.counters;
    counters.in_flight.fetch_sub(spans, Ordering::Relaxed);
    let delivered = match result {
        Ok(()) => {
            counters.exported.fetch_add(spans, Ordering::Relaxed);
            if debug {
                diagnostics::report("exported", &format!("{}: {spans} spans", lane.exporter.name));
            }
            true
        }
        Err(error) => {
            counters.failed.fetch_add(spans, Ordering::Relaxed);
            if !counters.warned_failed.swap(true, Ordering::Relaxed) || debug {
                // Transport errors quote the endpoint, password included.
                diagnostics::report("export_failed", &mask_credentials(&format!("{spans} spans lost: {error}")));
            }
            false
        }
    };
    fate.settle(delivered).map(|failed| (failed, fate.recorded, fate.added))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_exported_only_when_every_exporter_took_it() {
        let fate = BatchFate::new(2, 10, 1);
        assert_eq!(fate.settle(true), None);
        assert_eq!(fate.settle(true), Some(false));
        let fate = BatchFate::new(2, 10, 1);
        assert_eq!(fate.settle(false), None);
        assert_eq!(fate.settle(true), Some(true), "one exporter failed it");
    }
}

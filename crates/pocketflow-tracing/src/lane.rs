//! Each exporter's own share of the export thread: its exports in flight,
//! its retries and its counts. A batch is mapped once and handed to every
//! exporter, and an exporter that is slow or down holds up only its own
//! exports. Once all of a lane's exports in flight have gone unanswered for
//! the export timeout (an export that works answers within it), the lane
//! is passed over: the batches it misses are counted as dropped for that
//! exporter, and the others go on. Only when
//! every lane is stuck does the queue fill behind them, and then the
//! queue-full policy applies as it does for a single exporter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::SpanData;
use tokio::task::JoinSet;

use crate::diagnostics;
use crate::endpoint::mask_credentials;
use crate::exporter::{ExporterCounters, NamedExporter};

/// What one exporter did with the spans it was given. Its spans are those
/// the layer recorded plus the event observations it adds for Langfuse, so
/// `exported + failed_export + dropped_stalled + in_flight` is every span
/// handed to it.
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
    /// Spans it was passed over for while it was stuck: its exports in
    /// flight had gone unanswered for the export timeout while the other
    /// exporters went on.
    pub dropped_stalled: u64,
    /// Spans in its exports still unanswered (at shutdown: when shutdown
    /// gave up; the backend may or may not have them).
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
    dropped_stalled: AtomicU64,
    in_flight: AtomicU64,
    exporter: Arc<ExporterCounters>,
    warned_failed: AtomicBool,
    warned_stalled: AtomicBool,
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
            dropped_stalled: self.dropped_stalled.load(Ordering::Relaxed),
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

/// One exporter and its exports in flight.
#[derive(Debug)]
pub(crate) struct Lane {
    exporter: Arc<NamedExporter>,
    counters: Arc<LaneCounters>,
    in_flight: usize,
    concurrency: usize,
    /// When an export of this lane last started or finished.
    last_progress: Instant,
}

impl Lane {
    pub(crate) fn new(exporter: NamedExporter, concurrency: usize) -> Self {
        let counters = LaneCounters { exporter: Arc::clone(&exporter.counters), ..LaneCounters::default() };
        Self {
            exporter: Arc::new(exporter),
            counters: Arc::new(counters),
            in_flight: 0,
            concurrency: concurrency.max(1),
            last_progress: Instant::now(),
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

    pub(crate) fn has_room(&self) -> bool {
        self.in_flight < self.concurrency
    }

    /// When this lane, full, counts as stuck; `None` while it has room.
    pub(crate) fn stalls_at(&self, stall: Duration) -> Option<Instant> {
        (!self.has_room()).then(|| self.last_progress + stall)
    }

    /// Starts exporting `spans` (the lane at `index`).
    pub(crate) fn start(
        &mut self,
        index: usize,
        spans: Vec<SpanData>,
        fate: Arc<BatchFate>,
        exports: &mut JoinSet<LaneDone>,
    ) {
        let count = spans.len() as u64;
        self.in_flight += 1;
        self.last_progress = Instant::now();
        self.counters.in_flight.fetch_add(count, Ordering::Relaxed);
        let exporter = Arc::clone(&self.exporter);
        exports.spawn(async move {
            let result = exporter.export(spans).await;
            LaneDone { lane: index, spans: count, fate, result }
        });
    }

    /// Passes this stuck lane over for a batch of `count` spans: dropped
    /// for it. Returns the batch's fate if this settled it.
    pub(crate) fn pass_over(&self, count: u64, fate: &BatchFate) -> Option<bool> {
        self.counters.dropped_stalled.fetch_add(count, Ordering::Relaxed);
        diagnostics::report_once(
            &self.counters.warned_stalled,
            "exporter_stalled",
            &format!(
                "{}: no answer to any export in flight; its spans are dropped until it answers, \
                 and the other exporters go on",
                self.exporter.name
            ),
        );
        fate.settle(false)
    }
}

/// Settles a finished export on its lane; returns the batch's fate if this
/// was its last exporter, with its recorded and added counts.
pub(crate) fn settle(lanes: &mut [Lane], done: LaneDone, debug: bool) -> Option<(bool, u64, u64)> {
    let LaneDone { lane, spans, fate, result } = done;
    let lane = lanes.get_mut(lane)?;
    lane.in_flight = lane.in_flight.saturating_sub(1);
    lane.last_progress = Instant::now();
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

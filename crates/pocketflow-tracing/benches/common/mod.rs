//! What the tracing benchmarks share.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// The same exporter type behind every pipeline: accepts every batch and
/// counts its spans.
#[derive(Debug, Clone, Default)]
pub(crate) struct CountingExporter {
    spans: Arc<AtomicU64>,
}

impl CountingExporter {
    /// Spans received so far.
    pub(crate) fn exported(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }
}

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.spans.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

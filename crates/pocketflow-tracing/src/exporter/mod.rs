//! Exporters: where finished spans go. Each is an
//! `opentelemetry_sdk::trace::SpanExporter`, so any exporter of the
//! OpenTelemetry ecosystem can be plugged in with
//! [`TracingConfig::layer_with_exporter`](crate::TracingConfig::layer_with_exporter).

mod console;
mod langfuse;
mod otlp;
mod retry;
mod transport;
pub(crate) mod wire;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

pub use console::ConsoleExporter;
pub use langfuse::LangfuseExporter;
pub(crate) use otlp::OtlpExporter;

use crate::config::{ExporterKind, TracingConfig};
use crate::error::TracingError;

type BoxFuture<'a> = Pin<Box<dyn Future<Output = OTelSdkResult> + Send + 'a>>;

/// An object-safe `SpanExporter`, so that exporters of different types can
/// sit in one list.
pub(crate) trait DynExporter: Send + Sync + fmt::Debug {
    fn export(&self, batch: Vec<SpanData>) -> BoxFuture<'_>;
    fn force_flush(&self) -> OTelSdkResult;
    fn shutdown(&self) -> OTelSdkResult;
    fn set_resource(&mut self, resource: &Resource);
}

impl<E: SpanExporter + 'static> DynExporter for E {
    fn export(&self, batch: Vec<SpanData>) -> BoxFuture<'_> {
        Box::pin(SpanExporter::export(self, batch))
    }

    fn force_flush(&self) -> OTelSdkResult {
        SpanExporter::force_flush(self)
    }

    fn shutdown(&self) -> OTelSdkResult {
        SpanExporter::shutdown(self)
    }

    fn set_resource(&mut self, resource: &Resource) {
        SpanExporter::set_resource(self, resource);
    }
}

/// What a built-in exporter counts itself, beyond what its lane sees:
/// retries, and the spool's traffic. All zero for a user's exporter.
#[derive(Debug, Default)]
pub(crate) struct ExporterCounters {
    /// Spans sent again after a failed try.
    pub(crate) retried: AtomicU64,
    /// Spans written to the spool (the lane saw these as delivered).
    pub(crate) spooled: AtomicU64,
    /// Spans sent from the spool (a previous run's included).
    pub(crate) spool_sent: AtomicU64,
    /// Spans evicted from the full spool, unsent.
    pub(crate) spool_evicted: AtomicU64,
    /// Spooled spans the backend refused for good.
    pub(crate) spool_failed: AtomicU64,
}

/// One exporter of a pipeline, with its name and its own counts.
#[derive(Debug)]
pub(crate) struct NamedExporter {
    pub(crate) name: String,
    pub(crate) exporter: Box<dyn DynExporter>,
    pub(crate) counters: Arc<ExporterCounters>,
    /// Sends what its spool holds (flush, shutdown).
    pub(crate) spool: Option<otlp::SpoolDrain>,
}

impl NamedExporter {
    /// Sends `batch`; the error is `<name>: <what went wrong>`.
    pub(crate) async fn export(&self, batch: Vec<SpanData>) -> Result<(), String> {
        match self.exporter.export(batch).await {
            Ok(()) => Ok(()),
            // Without the SDK's "Operation failed: " prefix.
            Err(OTelSdkError::InternalFailure(reason)) => Err(format!("{}: {reason}", self.name)),
            Err(error) => Err(format!("{}: {error}", self.name)),
        }
    }

    /// Sends what its spool holds, if it has one.
    pub(crate) async fn drain_spool(&self) {
        if let Some(spool) = &self.spool {
            spool.drain().await;
        }
    }

    pub(crate) fn force_flush(&self) {
        if let Err(error) = self.exporter.force_flush() {
            let message = format!("{}: {error}", self.name);
            crate::diagnostics::report("flush_failed", &crate::endpoint::mask_credentials(&message));
        }
    }

    pub(crate) fn shutdown(&self) {
        if let Err(error) = self.exporter.shutdown() {
            let message = format!("{}: {error}", self.name);
            crate::diagnostics::report("shutdown_failed", &crate::endpoint::mask_credentials(&message));
        }
    }
}

/// The exporters of one pipeline; every batch goes to each of them, each
/// on its own (see [`crate::lane`]).
#[derive(Debug, Default)]
pub(crate) struct ExporterSet {
    exporters: Vec<NamedExporter>,
}

impl ExporterSet {
    pub(crate) fn push(&mut self, name: impl Into<String>, exporter: impl SpanExporter + 'static) {
        self.push_counted(name, exporter, Arc::default(), None);
    }

    fn push_counted(
        &mut self,
        name: impl Into<String>,
        exporter: impl SpanExporter + 'static,
        counters: Arc<ExporterCounters>,
        spool: Option<otlp::SpoolDrain>,
    ) {
        self.exporters.push(NamedExporter { name: name.into(), exporter: Box::new(exporter), counters, spool });
    }

    /// The exporters `config` asks for. Must run inside a tokio runtime
    /// (tonic's channel spawns its worker there).
    pub(crate) fn from_config(config: &TracingConfig) -> Result<Self, TracingError> {
        let mut set = Self::default();
        for kind in config.exporters() {
            match kind {
                ExporterKind::Console => {
                    set.push("console", ConsoleExporter::stderr().with_lifecycle(config.record.debug));
                }
                ExporterKind::Otlp => {
                    let exporter = OtlpExporter::from_config(config)?;
                    let (counters, spool) = (exporter.counters(), exporter.spool_drain());
                    set.push_counted("otlp", exporter, counters, spool);
                }
                ExporterKind::Langfuse => {
                    let exporter = LangfuseExporter::from_config(config)?;
                    let (counters, spool) = (exporter.counters(), exporter.spool_drain());
                    set.push_counted("langfuse", exporter, counters, spool);
                }
                ExporterKind::None => {}
            }
        }
        Ok(set)
    }

    pub(crate) fn set_resource(&mut self, resource: &Resource) {
        for named in &mut self.exporters {
            named.exporter.set_resource(resource);
        }
    }

    /// The exporters, each to be run on its own.
    pub(crate) fn into_exporters(self) -> Vec<NamedExporter> {
        self.exporters
    }
}

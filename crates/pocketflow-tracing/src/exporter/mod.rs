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

/// One exporter of a pipeline, with its name and its retry count.
#[derive(Debug)]
pub(crate) struct NamedExporter {
    pub(crate) name: String,
    pub(crate) exporter: Box<dyn DynExporter>,
    /// Spans it sent again after a failed try (zero for exporters that do
    /// not retry on their own, such as a user's).
    pub(crate) retried: Arc<AtomicU64>,
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
        self.push_counted(name, exporter, Arc::default());
    }

    fn push_counted(
        &mut self,
        name: impl Into<String>,
        exporter: impl SpanExporter + 'static,
        retried: Arc<AtomicU64>,
    ) {
        self.exporters.push(NamedExporter { name: name.into(), exporter: Box::new(exporter), retried });
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
                    let retried = exporter.retried();
                    set.push_counted("otlp", exporter, retried);
                }
                ExporterKind::Langfuse => {
                    let exporter = LangfuseExporter::from_config(config)?;
                    let retried = exporter.retried();
                    set.push_counted("langfuse", exporter, retried);
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

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
trait DynExporter: Send + Sync + fmt::Debug {
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

/// The exporters of one pipeline; every batch goes to each of them.
#[derive(Debug, Default)]
pub(crate) struct ExporterSet {
    exporters: Vec<(String, Box<dyn DynExporter>)>,
}

impl ExporterSet {
    pub(crate) fn push(&mut self, label: impl Into<String>, exporter: impl SpanExporter + 'static) {
        self.exporters.push((label.into(), Box::new(exporter)));
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
                ExporterKind::Otlp => set.push("otlp", OtlpExporter::from_config(config)?),
                ExporterKind::Langfuse => set.push("langfuse", LangfuseExporter::from_config(config)?),
                ExporterKind::None => {}
            }
        }
        Ok(set)
    }

    pub(crate) fn set_resource(&mut self, resource: &Resource) {
        for (_, exporter) in &mut self.exporters {
            exporter.set_resource(resource);
        }
    }

    /// Sends `batch` to every exporter; fails if any of them failed, with
    /// each failure as `<exporter>: <what went wrong>`.
    pub(crate) async fn export(&self, mut batch: Vec<SpanData>) -> Result<(), String> {
        let mut failures = Vec::new();
        let count = self.exporters.len();
        for (index, (label, exporter)) in self.exporters.iter().enumerate() {
            let spans = if index + 1 == count { std::mem::take(&mut batch) } else { batch.clone() };
            match exporter.export(spans).await {
                Ok(()) => {}
                // Without the SDK's "Operation failed: " prefix.
                Err(OTelSdkError::InternalFailure(reason)) => failures.push(format!("{label}: {reason}")),
                Err(error) => failures.push(format!("{label}: {error}")),
            }
        }
        if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
    }

    pub(crate) fn force_flush(&self) {
        for (label, exporter) in &self.exporters {
            if let Err(error) = exporter.force_flush() {
                let message = format!("{label}: {error}");
                crate::diagnostics::report("flush_failed", &crate::endpoint::mask_credentials(&message));
            }
        }
    }

    pub(crate) fn shutdown(&self) {
        for (label, exporter) in &self.exporters {
            if let Err(error) = exporter.shutdown() {
                let message = format!("{label}: {error}");
                crate::diagnostics::report("shutdown_failed", &crate::endpoint::mask_credentials(&message));
            }
        }
    }
}

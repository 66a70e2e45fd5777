//! [`OtlpExporter`]: OTLP to a collector or backend, over gRPC or
//! HTTP/protobuf.
//!
//! A batch is encoded once ([`super::wire`]), gzipped once when asked, and
//! the same bytes are sent on every try. A batch the server refuses for its
//! size (HTTP 413) is split in halves, each encoded and sent on its own.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};

use super::retry::{Failure, with_retries};
use super::transport::{GrpcTransport, HttpTransport, Transport};
use super::wire::RequestEncoder;
use crate::config::{ExporterKind, Protocol, TracingConfig};
use crate::error::TracingError;

/// Sends batches to one OTLP endpoint, retrying as the OTLP specification
/// says for up to the retry time, and splitting a batch the server finds
/// too large.
pub(crate) struct OtlpExporter {
    transport: Transport,
    encoder: Mutex<RequestEncoder>,
    retry_time: Duration,
    /// Spans sent again after a failed try, for the exporter's counts.
    retried: Arc<AtomicU64>,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("transport", &self.transport)
            .field("retry_time", &self.retry_time)
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// The exporter `config` describes. Runs inside a tokio runtime.
    pub(crate) fn from_config(config: &TracingConfig) -> Result<Self, TracingError> {
        let settings = &config.otlp;
        let failed = |reason: String| TracingError::Exporter {
            exporter: ExporterKind::Otlp,
            reason: crate::endpoint::mask_credentials(&reason).into_owned(),
        };
        let endpoint =
            settings.endpoint.clone().unwrap_or_else(|| crate::env::default_endpoint(settings.protocol).to_owned());
        let transport = match settings.protocol {
            Protocol::Grpc => {
                let mut metadata = MetadataMap::new();
                for (name, value) in &settings.headers {
                    let key: MetadataKey<Ascii> = name
                        .to_ascii_lowercase()
                        .parse()
                        .map_err(|_| failed(format!("header name {name:?} is not valid gRPC metadata")))?;
                    let mut value: MetadataValue<Ascii> = value
                        .expose()
                        .parse()
                        .map_err(|_| failed(format!("header {name} has a value that is not valid in gRPC metadata")))?;
                    value.set_sensitive(true);
                    metadata.insert(key, value);
                }
                Transport::Grpc(
                    GrpcTransport::new(&endpoint, metadata, settings.gzip, settings.timeout, &settings.tls)
                        .map_err(failed)?,
                )
            }
            Protocol::HttpProtobuf => {
                let mut headers = HeaderMap::new();
                for (name, value) in &settings.headers {
                    let key = HeaderName::try_from(name.as_str())
                        .map_err(|_| failed(format!("header name {name:?} is not a valid HTTP header name")))?;
                    let mut value = HeaderValue::try_from(value.expose())
                        .map_err(|_| failed(format!("header {name} has a value that is not valid in HTTP")))?;
                    value.set_sensitive(true);
                    headers.insert(key, value);
                }
                Transport::Http(
                    HttpTransport::new(&endpoint, headers, settings.gzip, settings.timeout, &settings.tls)
                        .map_err(failed)?,
                )
            }
        };
        Ok(Self::new(transport, config.batch.retry_time))
    }

    /// An exporter over `transport`; `retry_time` bounds the retries of
    /// one batch (each try has the transport's own timeout).
    pub(crate) fn new(transport: Transport, retry_time: Duration) -> Self {
        Self { transport, encoder: Mutex::new(RequestEncoder::default()), retry_time, retried: Arc::default() }
    }

    pub(crate) fn set_retry_time(&mut self, retry_time: Duration) {
        self.retry_time = retry_time;
    }

    /// The count of spans sent again after a failed try.
    pub(crate) fn retried(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.retried)
    }

    /// Sends `spans` in one request, with retries; a request the server
    /// finds too large is split in two, each half sent the same way, down
    /// to a single span.
    fn send<'a>(&'a self, spans: &'a [SpanData]) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let mut request = Vec::new();
            self.encoder.lock().unwrap_or_else(PoisonError::into_inner).encode(spans, &mut request);
            let body = self.transport.prepare(request)?;
            let count = spans.len() as u64;
            let on_retry = || {
                self.retried.fetch_add(count, Ordering::Relaxed);
            };
            match with_retries(self.retry_time, on_retry, || self.transport.send(body.clone())).await {
                Ok(()) => Ok(()),
                Err(Failure::Failed(error)) => Err(error),
                Err(Failure::TooLarge(error)) if spans.len() < 2 => Err(format!("{error} (a single span)")),
                Err(Failure::TooLarge(_)) => {
                    drop(body);
                    let (first, second) = spans.split_at(spans.len() / 2);
                    let first = self.send(first).await;
                    let second = self.send(second).await;
                    first.and(second)
                }
            }
        })
    }
}

impl SpanExporter for OtlpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.send(&batch).await.map_err(OTelSdkError::InternalFailure)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.encoder.get_mut().unwrap_or_else(PoisonError::into_inner).set_resource(resource);
    }
}

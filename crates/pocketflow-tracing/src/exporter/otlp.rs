//! [`OtlpExporter`]: OTLP to a collector or backend, over gRPC or
//! HTTP/protobuf.
//!
//! A batch is encoded once ([`super::wire`]), gzipped once when asked, and
//! the same bytes are sent on every try. A batch the server refuses for its
//! size (HTTP 413) is split in halves, each encoded and sent on its own.
//!
//! With a spool (`POCKETFLOW_SPOOL_DIR`), a batch still failing after a
//! short retry is written to disk ([`crate::spool`]) instead of being
//! retried in memory, and every export first sends what the spool holds,
//! oldest first; flush and shutdown send it too.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};

use super::ExporterCounters;
use super::retry::{Failure, with_retries};
use super::transport::{GrpcTransport, HttpTransport, Transport};
use super::wire::RequestEncoder;
use crate::config::{ExporterKind, Protocol, TracingConfig};
use crate::error::TracingError;
use crate::spool::Spool;

/// Sends batches to one OTLP endpoint, retrying as the OTLP specification
/// says for up to the retry time, and splitting a batch the server finds
/// too large. With a spool, what the backend cannot take goes to disk and
/// is sent, in order, before the next batch once the backend is back.
pub(crate) struct OtlpExporter {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    encoder: Mutex<RequestEncoder>,
    retry_time: Duration,
    counters: Arc<ExporterCounters>,
    spool: Option<tokio::sync::Mutex<Spool>>,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("transport", &self.inner.transport)
            .field("retry_time", &self.inner.retry_time)
            .field("spool", &self.inner.spool.is_some())
            .finish_non_exhaustive()
    }
}

/// With a spool, how long a new batch is retried before it is spooled.
const SPOOL_RETRY_TIME: Duration = Duration::from_secs(2);
/// How long one export sends from the spool before its own batch: the
/// spool drains over several exports, and no export is held long enough
/// for its exporter to look stuck.
const DRAIN_SLICE: Duration = Duration::from_millis(250);

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
        let exporter = Self::new(transport, config.batch.retry_time);
        exporter.with_spool(config, ExporterKind::Otlp)
    }

    /// An exporter over `transport`; `retry_time` bounds the retries of
    /// one batch (each try has the transport's own timeout).
    pub(crate) fn new(transport: Transport, retry_time: Duration) -> Self {
        let inner = Inner {
            transport,
            encoder: Mutex::new(RequestEncoder::default()),
            retry_time,
            counters: Arc::default(),
            spool: None,
        };
        Self { inner: Arc::new(inner) }
    }

    /// Opens the spool `config` asks for (in its directory, a folder named
    /// after the exporter), if any.
    pub(crate) fn with_spool(mut self, config: &TracingConfig, kind: ExporterKind) -> Result<Self, TracingError> {
        let Some(dir) = &config.batch.spool_dir else { return Ok(self) };
        let dir = dir.join(kind.as_str());
        let spool = Spool::open(&dir, config.batch.spool_max_bytes as u64).map_err(|error| TracingError::Exporter {
            exporter: kind,
            reason: format!("the spool {} cannot be opened: {error}", dir.display()),
        })?;
        // Called while the exporter is built, before anything shares it.
        let inner = Arc::get_mut(&mut self.inner).ok_or_else(|| TracingError::Exporter {
            exporter: kind,
            reason: "the spool must be opened before the exporter is used".to_owned(),
        })?;
        inner.spool = Some(tokio::sync::Mutex::new(spool));
        Ok(self)
    }

    pub(crate) fn set_retry_time(&mut self, retry_time: Duration) {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.retry_time = retry_time;
        }
    }

    /// The exporter's own counts (retries, the spool's traffic).
    pub(crate) fn counters(&self) -> Arc<ExporterCounters> {
        Arc::clone(&self.inner.counters)
    }

    /// Sends what the spool holds, for a flush or a shutdown.
    pub(crate) fn spool_drain(&self) -> Option<SpoolDrain> {
        self.inner.spool.is_some().then(|| SpoolDrain(Arc::clone(&self.inner)))
    }
}

/// A handle that sends what an exporter's spool holds.
#[derive(Clone)]
pub(crate) struct SpoolDrain(Arc<Inner>);

impl fmt::Debug for SpoolDrain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpoolDrain")
    }
}

impl SpoolDrain {
    /// Sends the spooled records in order until one does not go through.
    pub(crate) async fn drain(&self) {
        if let Some(spool) = &self.0.spool {
            let mut spool = spool.lock().await;
            self.0.drain(&mut spool, None).await;
        }
    }
}

impl Inner {
    fn encode(&self, spans: &[SpanData]) -> Vec<u8> {
        let mut request = Vec::new();
        self.encoder.lock().unwrap_or_else(PoisonError::into_inner).encode(spans, &mut request);
        request
    }

    /// Sends one encoded request of `count` spans, with retries for up to
    /// `retry_time`.
    async fn send_request(&self, request: Vec<u8>, count: u64, retry_time: Duration) -> Result<(), Failure> {
        let body = self.transport.prepare(request).map_err(Failure::Failed)?;
        let on_retry = || {
            self.counters.retried.fetch_add(count, Ordering::Relaxed);
        };
        with_retries(retry_time, on_retry, || self.transport.send(body.clone())).await
    }

    /// Sends `spans` in one request, with retries; a request the server
    /// finds too large is split in two, each half sent the same way, down
    /// to a single span.
    fn send<'a>(
        &'a self,
        spans: &'a [SpanData],
        retry_time: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>> {
        Box::pin(async move {
            let request = self.encode(spans);
            match self.send_request(request, spans.len() as u64, retry_time).await {
                Err(Failure::TooLarge(error)) if spans.len() < 2 => {
                    Err(Failure::Failed(format!("{error} (a single span)")))
                }
                Err(Failure::TooLarge(_)) => {
                    let (first, second) = spans.split_at(spans.len() / 2);
                    let first = self.send(first, retry_time).await;
                    let second = self.send(second, retry_time).await;
                    first.and(second)
                }
                other => other,
            }
        })
    }

    /// Sends the spool's records in order, each tried once, for up to
    /// `slice` (no bound: `None`); returns whether the spool is empty.
    async fn drain(&self, spool: &mut Spool, slice: Option<Duration>) -> bool {
        let start = tokio::time::Instant::now();
        loop {
            if slice.is_some_and(|slice| start.elapsed() >= slice) {
                return matches!(spool.peek(), Ok(None));
            }
            let record = match spool.peek() {
                Ok(Some(record)) => record,
                Ok(None) => return true,
                Err(error) => {
                    crate::diagnostics::report("spool_failed", &format!("the spool cannot be read: {error}"));
                    return false;
                }
            };
            let spans = u64::from(record.spans);
            // One try: while the backend is down, new batches join the
            // spool at once instead of waiting on retries.
            match self.send_request(record.payload.clone(), spans, Duration::ZERO).await {
                Ok(()) => {
                    self.counters.spool_sent.fetch_add(spans, Ordering::Relaxed);
                }
                Err(Failure::GaveUp(_)) => return false,
                Err(failure) => {
                    // Refused for good: it would block the spool forever.
                    self.counters.spool_failed.fetch_add(spans, Ordering::Relaxed);
                    let message = format!("{spans} spooled spans refused: {}", failure.into_message());
                    crate::diagnostics::report("export_failed", &crate::endpoint::mask_credentials(&message));
                }
            }
            if let Err(error) = spool.commit(&record) {
                crate::diagnostics::report("spool_failed", &format!("the spool cannot be updated: {error}"));
                return false;
            }
        }
    }

    async fn export(&self, batch: Vec<SpanData>) -> Result<(), String> {
        let Some(spool) = &self.spool else {
            return self.send(&batch, self.retry_time).await.map_err(Failure::into_message);
        };
        // What waits in the spool goes first; while it cannot, new batches
        // join it, in order.
        let empty = {
            let mut spool = spool.lock().await;
            self.drain(&mut spool, Some(DRAIN_SLICE)).await
        };
        if empty {
            match self.send(&batch, SPOOL_RETRY_TIME.min(self.retry_time)).await {
                Ok(()) => return Ok(()),
                Err(Failure::GaveUp(_)) => {}
                Err(failure) => return Err(failure.into_message()),
            }
        }
        let request = self.encode(&batch);
        let count = batch.len() as u64;
        let spans = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        let evicted = spool
            .lock()
            .await
            .append(&request, spans)
            .map_err(|error| format!("the spool cannot be written: {error}"))?;
        self.counters.spooled.fetch_add(count, Ordering::Relaxed);
        self.counters.spool_evicted.fetch_add(evicted, Ordering::Relaxed);
        Ok(())
    }
}

impl SpanExporter for OtlpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.inner.export(batch).await.map_err(OTelSdkError::InternalFailure)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.encoder.lock().unwrap_or_else(PoisonError::into_inner).set_resource(resource);
    }
}

//! [`OtlpExporter`]: OTLP to a collector or backend, over gRPC or
//! HTTP/protobuf.
//!
//! A batch is encoded once ([`super::wire`]), gzipped once when asked, and
//! the same bytes are sent on every try.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};

use super::retry::with_retries;
use super::transport::{GrpcTransport, HttpTransport, Transport};
use super::wire::RequestEncoder;
use crate::config::{ExporterKind, Protocol, TracingConfig};
use crate::error::TracingError;

/// Sends batches to one OTLP endpoint, retrying as the OTLP specification
/// says within the export deadline.
pub(crate) struct OtlpExporter {
    transport: Transport,
    encoder: Mutex<RequestEncoder>,
    deadline: Duration,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("transport", &self.transport)
            .field("deadline", &self.deadline)
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
        Ok(Self::new(transport, settings.timeout))
    }

    /// An exporter over `transport`; `deadline` bounds one export, retries
    /// included.
    pub(crate) fn new(transport: Transport, deadline: Duration) -> Self {
        Self { transport, encoder: Mutex::new(RequestEncoder::default()), deadline }
    }
}

impl SpanExporter for OtlpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut request = Vec::new();
        self.encoder.lock().unwrap_or_else(PoisonError::into_inner).encode(&batch, &mut request);
        drop(batch);
        let body = self.transport.prepare(request).map_err(OTelSdkError::InternalFailure)?;
        let tries = with_retries(self.deadline, || self.transport.send(body.clone()));
        match tokio::time::timeout(self.deadline, tries).await {
            Ok(result) => result.map_err(OTelSdkError::InternalFailure),
            Err(_) => Err(OTelSdkError::InternalFailure(format!(
                "export timed out: no answer within the export deadline of {} ms",
                self.deadline.as_millis()
            ))),
        }
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

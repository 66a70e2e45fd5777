//! [`LangfuseExporter`]: OTLP/HTTP straight to Langfuse, no collector.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::otlp::OtlpExporter;
use super::transport::{HttpTransport, Transport};

use crate::config::{DEFAULT_EXPORT_RETRY_TIME, ExporterKind, Secret, TracingConfig};
use crate::error::{ConfigError, TracingError};
use crate::tls::OtlpTls;

/// Sends spans to Langfuse's OTLP endpoint, `{host}/api/public/otel/v1/traces`,
/// as Langfuse requires: HTTP with protobuf bodies (it has no gRPC), Basic
/// auth from the project's public and secret keys, gzip, and
/// `x-langfuse-ingestion-version: 4` so that traces appear at once rather
/// than minutes later.
///
/// It is a plain `SpanExporter`, so it also works with an OpenTelemetry SDK
/// pipeline of your own.
pub struct LangfuseExporter {
    inner: OtlpExporter,
    endpoint: String,
    public_key: String,
}

impl fmt::Debug for LangfuseExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LangfuseExporter")
            .field("endpoint", &crate::endpoint::mask_credentials(&self.endpoint))
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl LangfuseExporter {
    /// An exporter to the Langfuse at `host` (`https://cloud.langfuse.com`,
    /// `https://us.cloud.langfuse.com`, or a self-hosted `http://host:3000`).
    ///
    /// # Errors
    /// [`ConfigError::InvalidEndpoint`] (in [`TracingError::Config`]) when
    /// `host` is not an `http://` or `https://` URL with a host and a valid
    /// port; [`TracingError::Exporter`] when the HTTP client cannot be built.
    pub fn new(
        public_key: impl Into<String>,
        secret_key: impl Into<Secret>,
        host: &str,
        timeout: Duration,
    ) -> Result<Self, TracingError> {
        crate::endpoint::check("LangfuseExporter::new host", host)?;
        let public_key = public_key.into();
        let secret_key = secret_key.into();
        let endpoint = format!("{}/api/public/otel/v1/traces", host.trim_end_matches('/'));
        // The OTLP library's errors quote the endpoint, password included.
        let failed = |reason: String| TracingError::Exporter {
            exporter: ExporterKind::Langfuse,
            reason: crate::endpoint::mask_credentials(&reason).into_owned(),
        };
        let credentials = STANDARD.encode(format!("{public_key}:{}", secret_key.expose()));
        let mut authorization = HeaderValue::try_from(format!("Basic {credentials}"))
            .map_err(|_| failed("the Langfuse keys contain characters not allowed in an HTTP header".to_owned()))?;
        authorization.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(HeaderName::from_static("x-langfuse-ingestion-version"), HeaderValue::from_static("4"));
        headers.insert(HeaderName::from_static("x-langfuse-sdk-name"), HeaderValue::from_static("pocketflow-tracing"));
        headers.insert(
            HeaderName::from_static("x-langfuse-sdk-version"),
            HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
        );
        let transport = HttpTransport::new(&endpoint, headers, true, timeout, &OtlpTls::default()).map_err(failed)?;
        let inner = OtlpExporter::new(Transport::Http(transport), DEFAULT_EXPORT_RETRY_TIME);
        Ok(Self { inner, endpoint, public_key })
    }

    /// The exporter `config`'s Langfuse settings describe.
    ///
    /// # Errors
    /// [`ConfigError::MissingLangfuseKey`] when a key is missing, or
    /// [`TracingError::Exporter`].
    pub fn from_config(config: &TracingConfig) -> Result<Self, TracingError> {
        let settings = &config.langfuse;
        let public_key =
            settings.public_key.clone().ok_or(ConfigError::MissingLangfuseKey { missing: "LANGFUSE_PUBLIC_KEY" })?;
        let secret_key =
            settings.secret_key.clone().ok_or(ConfigError::MissingLangfuseKey { missing: "LANGFUSE_SECRET_KEY" })?;
        let mut exporter = Self::new(public_key, secret_key, &settings.host, config.otlp.timeout)?;
        exporter.inner.set_retry_time(config.batch.retry_time);
        exporter.inner = exporter.inner.with_spool(config, ExporterKind::Langfuse)?;
        Ok(exporter)
    }

    /// The exporter's own counts (retries, the spool's traffic).
    pub(crate) fn counters(&self) -> std::sync::Arc<super::ExporterCounters> {
        self.inner.counters()
    }

    /// Sends what the spool holds, when there is one.
    pub(crate) fn spool_drain(&self) -> Option<super::otlp::SpoolDrain> {
        self.inner.spool_drain()
    }

    /// Where spans are posted.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl SpanExporter for LangfuseExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.inner.export(batch).await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

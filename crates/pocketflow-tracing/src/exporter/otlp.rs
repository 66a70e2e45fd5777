//! The OTLP exporter to a collector or backend: gRPC through tonic, or
//! HTTP/protobuf.

use std::collections::HashMap;

use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
use opentelemetry_otlp::{Compression, WithExportConfig, WithHttpConfig, WithTonicConfig};
use tonic::metadata::{Ascii, MetadataKey};

use crate::config::{ExporterKind, Protocol, TracingConfig};
use crate::error::TracingError;

/// Builds the OTLP exporter `config` describes. Runs inside a tokio runtime.
pub(crate) fn otlp_exporter(config: &TracingConfig) -> Result<opentelemetry_otlp::SpanExporter, TracingError> {
    let settings = &config.otlp;
    // The OTLP library's errors quote the endpoint, password included.
    let failed = |reason: String| TracingError::Exporter {
        exporter: ExporterKind::Otlp,
        reason: crate::endpoint::mask_credentials(&reason).into_owned(),
    };
    let endpoint =
        settings.endpoint.clone().unwrap_or_else(|| crate::env::default_endpoint(settings.protocol).to_owned());
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match settings.protocol {
        Protocol::Grpc => {
            let mut metadata = MetadataMap::new();
            for (name, value) in &settings.headers {
                let key = tonic_metadata_key(name).map_err(&failed)?;
                let value = value
                    .expose()
                    .parse()
                    .map_err(|_| failed(format!("header {name} has a value that is not valid in gRPC metadata")))?;
                metadata.insert(key, value);
            }
            let mut builder = builder
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(settings.timeout)
                .with_metadata(metadata);
            if endpoint.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")) {
                builder = builder.with_tls_config(ClientTlsConfig::new().with_enabled_roots());
            }
            if settings.gzip {
                builder = builder.with_compression(Compression::Gzip);
            }
            builder.build()
        }
        Protocol::HttpProtobuf => {
            let headers: HashMap<String, String> =
                settings.headers.iter().map(|(name, value)| (name.clone(), value.expose().to_owned())).collect();
            let mut builder = builder
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(endpoint)
                .with_timeout(settings.timeout)
                .with_headers(headers);
            if settings.gzip {
                builder = builder.with_compression(Compression::Gzip);
            }
            builder.build()
        }
    };
    exporter.map_err(|error| failed(error.to_string()))
}

fn tonic_metadata_key(name: &str) -> Result<MetadataKey<Ascii>, String> {
    name.to_ascii_lowercase().parse().map_err(|_| format!("header name {name:?} is not valid gRPC metadata"))
}

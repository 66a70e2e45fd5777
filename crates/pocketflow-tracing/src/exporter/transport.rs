//! The two OTLP transports, each sending an already encoded
//! `ExportTraceServiceRequest`: HTTP/protobuf through reqwest, and gRPC
//! through a tonic channel with a pass-through codec (the bytes are not
//! decoded into messages and encoded again).
//!
//! Each try ends in an [`Outcome`] classified as the OTLP specification
//! says: HTTP 429, 502, 503, 504 and connection failures, and the gRPC codes
//! `UNAVAILABLE`, `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`,
//! `DATA_LOSS` and `RESOURCE_EXHAUSTED` with retry info are worth another
//! try; everything else is not.

use std::error::Error as _;
use std::fmt;
use std::io::Write as _;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};
use http::{HeaderValue, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

use super::retry::{MAX_THROTTLE, Outcome};
use crate::endpoint::mask_credentials;

const USER_AGENT_VALUE: &str = concat!("pocketflow-tracing/", env!("CARGO_PKG_VERSION"));
const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// How much of an error response's body an error message quotes.
const BODY_EXCERPT: usize = 200;

/// Where encoded requests go.
#[derive(Debug)]
pub(crate) enum Transport {
    Http(HttpTransport),
    Grpc(GrpcTransport),
}

impl Transport {
    /// The body as it goes on the wire: gzipped for HTTP when asked (gRPC
    /// compresses its own frames).
    pub(crate) fn prepare(&self, request: Vec<u8>) -> Result<Bytes, String> {
        match self {
            Self::Http(http) if http.gzip => gzip(&request).map(Bytes::from),
            _ => Ok(Bytes::from(request)),
        }
    }

    pub(crate) async fn send(&self, body: Bytes) -> Outcome {
        match self {
            Self::Http(http) => http.send(body).await,
            Self::Grpc(grpc) => grpc.send(body).await,
        }
    }
}

fn gzip(request: &[u8]) -> Result<Vec<u8>, String> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(request.len() / 4), flate2::Compression::fast());
    encoder.write_all(request).and_then(|()| encoder.finish()).map_err(|error| format!("gzip failed: {error}"))
}

/// OTLP over HTTP with protobuf bodies.
pub(crate) struct HttpTransport {
    client: reqwest::Client,
    endpoint: String,
    headers: HeaderMap,
    gzip: bool,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &mask_credentials(&self.endpoint))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// A transport posting to `endpoint` (the full traces URL) with
    /// `headers` on every request; values marked sensitive stay out of
    /// `Debug` output. Redirects are followed only within the endpoint's
    /// own origin, so that no header goes to another host and nothing goes
    /// from `https` to `http`.
    pub(crate) fn new(endpoint: &str, mut headers: HeaderMap, gzip: bool, timeout: Duration) -> Result<Self, String> {
        let origin = url::Url::parse(endpoint).map_err(|error| format!("invalid endpoint: {error}"))?.origin();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 || attempt.url().origin() != origin {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(policy)
            .build()
            .map_err(|error| format!("the HTTP client could not be built: {}", error_chain(&error)))?;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        Ok(Self { client, endpoint: endpoint.to_owned(), headers, gzip })
    }

    async fn send(&self, body: Bytes) -> Outcome {
        let sent = self.client.post(&self.endpoint).headers(self.headers.clone()).body(body).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                let error = mask_credentials(&format!("HTTP export failed: {}", error_chain(&error))).into_owned();
                return Outcome::Retryable { error, after: None };
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(|seconds| Duration::from_secs(seconds).min(MAX_THROTTLE));
        let body = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            report_partial_success(&body);
            return Outcome::Delivered;
        }
        let excerpt = String::from_utf8_lossy(&body[..body.len().min(BODY_EXCERPT)]).trim().to_owned();
        let error = if excerpt.is_empty() {
            format!("HTTP export failed: {status}")
        } else {
            format!("HTTP export failed: {status}: {excerpt}")
        };
        match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                Outcome::Retryable { error, after: retry_after }
            }
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => Outcome::Retryable { error, after: None },
            _ => Outcome::Failed(error),
        }
    }
}

/// OTLP over gRPC, one HTTP/2 connection shared by the exports in flight.
pub(crate) struct GrpcTransport {
    channel: Channel,
    endpoint: String,
    metadata: MetadataMap,
    gzip: bool,
}

impl fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcTransport")
            .field("endpoint", &mask_credentials(&self.endpoint))
            .field("metadata", &self.metadata.keys().collect::<Vec<_>>())
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
    /// A transport to `endpoint`; connects on first use. Must run inside a
    /// tokio runtime (the channel's worker is spawned there).
    pub(crate) fn new(endpoint: &str, metadata: MetadataMap, gzip: bool, timeout: Duration) -> Result<Self, String> {
        let mut builder = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
            .map_err(|error| format!("invalid endpoint: {error}"))?
            .timeout(timeout)
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        builder = builder.user_agent(USER_AGENT_VALUE).map_err(|error| format!("invalid user agent: {error}"))?;
        if endpoint.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")) {
            builder = builder
                .tls_config(tonic::transport::ClientTlsConfig::new().with_enabled_roots())
                .map_err(|error| format!("TLS could not be set up: {}", error_chain(&error)))?;
        }
        Ok(Self { channel: builder.connect_lazy(), endpoint: endpoint.to_owned(), metadata, gzip })
    }

    async fn send(&self, body: Bytes) -> Outcome {
        // A gzipped answer is always accepted: a server may compress its
        // answer to a compressed request (the Collector does) whether or not
        // the client said it could read one.
        let mut client = tonic::client::Grpc::new(self.channel.clone()).accept_compressed(CompressionEncoding::Gzip);
        if self.gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        if let Err(error) = client.ready().await {
            let error = format!("gRPC export failed: the connection is not ready: {}", error_chain(&error));
            return Outcome::Retryable { error: mask_credentials(&error).into_owned(), after: None };
        }
        let mut request = tonic::Request::new(body);
        *request.metadata_mut() = self.metadata.clone();
        let path = http::uri::PathAndQuery::from_static(GRPC_EXPORT_PATH);
        match client.unary(request, path, PassThrough).await {
            Ok(response) => {
                report_partial_success(response.get_ref());
                Outcome::Delivered
            }
            Err(status) => classify_grpc(&status),
        }
    }
}

fn classify_grpc(status: &tonic::Status) -> Outcome {
    use tonic::Code;
    let mut error = format!("gRPC export failed: {:?}: {}", status.code(), status.message());
    if let Some(source) = status.source() {
        error.push_str(&format!(" ({})", error_chain(source)));
    }
    let error = mask_credentials(&error).into_owned();
    let after = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .filter(|delay| !delay.is_zero())
        .map(|delay| delay.min(MAX_THROTTLE));
    match status.code() {
        Code::ResourceExhausted if after.is_some() => Outcome::Retryable { error, after },
        Code::Unavailable => Outcome::Retryable { error, after },
        Code::Cancelled | Code::DeadlineExceeded | Code::Aborted | Code::OutOfRange | Code::DataLoss => {
            Outcome::Retryable { error, after: None }
        }
        _ => Outcome::Failed(error),
    }
}

/// A backend that took the request but rejected some spans says so in the
/// response; the rejection is reported, as the OTLP specification asks.
fn report_partial_success(body: &[u8]) {
    let Ok(response) = ExportTraceServiceResponse::decode(body) else { return };
    if let Some(partial) = response.partial_success
        && (partial.rejected_spans > 0 || !partial.error_message.is_empty())
    {
        crate::diagnostics::report(
            "partial_success",
            &format!("the backend rejected {} spans: {}", partial.rejected_spans, partial.error_message),
        );
    }
}

/// An error and its sources, `outer: inner: root`, each said once.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The gRPC codec for bytes that are already an encoded message.
#[derive(Debug, Clone, Copy, Default)]
struct PassThrough;

impl Codec for PassThrough {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self::Encoder {
        Self
    }

    fn decoder(&mut self) -> Self::Decoder {
        Self
    }
}

impl Encoder for PassThrough {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for PassThrough {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

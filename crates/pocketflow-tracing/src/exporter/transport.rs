//! The two OTLP transports, each sending an already encoded
//! `ExportTraceServiceRequest`: HTTP/protobuf through reqwest, and gRPC
//! through a tonic channel with a pass-through codec (the bytes are not
//! decoded into messages and encoded again).
//!
//! Each try ends in an [`Outcome`] classified as the OTLP specification
//! says: HTTP 429, 502, 503, 504 and connection failures, and the gRPC codes
//! `UNAVAILABLE`, `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`,
//! `DATA_LOSS` and `RESOURCE_EXHAUSTED` with retry info are worth another
//! try, except a TLS failure; a request too large for the server (HTTP 413,
//! a gRPC message over the server's limit) is split; everything else is
//! final.

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
use crate::tls::OtlpTls;

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
    pub(crate) fn new(
        endpoint: &str,
        mut headers: HeaderMap,
        gzip: bool,
        timeout: Duration,
        tls: &OtlpTls,
    ) -> Result<Self, String> {
        let url = url::Url::parse(endpoint).map_err(|error| format!("invalid endpoint: {error}"))?;
        if !headers.is_empty() {
            warn_if_in_clear(&url);
        }
        let origin = url.origin();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 || attempt.url().origin() != origin {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder().timeout(timeout).redirect(policy);
        if let Some(ca) = &tls.ca {
            let certs = reqwest::Certificate::from_pem_bundle(&ca.pem).map_err(|error| {
                format!("the CA certificate {} cannot be used: {}", ca.path.display(), error_chain(&error))
            })?;
            builder = builder.tls_certs_only(certs);
        }
        if let Some(client) = &tls.client {
            let mut pem = client.cert.pem.clone();
            pem.push(b'\n');
            pem.extend_from_slice(&client.key.pem);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|error| {
                format!(
                    "the client certificate {} and key {} cannot be used: {}",
                    client.cert.path.display(),
                    client.key.path.display(),
                    error_chain(&error)
                )
            })?;
            builder = builder.identity(identity);
        }
        let client =
            builder.build().map_err(|error| format!("the HTTP client could not be built: {}", error_chain(&error)))?;
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
            Err(error) => return failure("HTTP", &error),
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
            StatusCode::PAYLOAD_TOO_LARGE => Outcome::TooLarge(error),
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
    pub(crate) fn new(
        endpoint: &str,
        metadata: MetadataMap,
        gzip: bool,
        timeout: Duration,
        tls: &OtlpTls,
    ) -> Result<Self, String> {
        if !metadata.is_empty()
            && let Ok(url) = url::Url::parse(endpoint)
        {
            warn_if_in_clear(&url);
        }
        let mut builder = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
            .map_err(|error| format!("invalid endpoint: {error}"))?
            .timeout(timeout)
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        builder = builder.user_agent(USER_AGENT_VALUE).map_err(|error| format!("invalid user agent: {error}"))?;
        if endpoint.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")) {
            let mut config = tonic::transport::ClientTlsConfig::new();
            config = match &tls.ca {
                Some(ca) => config.ca_certificate(tonic::transport::Certificate::from_pem(&ca.pem)),
                None => config.with_enabled_roots(),
            };
            if let Some(client) = &tls.client {
                config = config.identity(tonic::transport::Identity::from_pem(&client.cert.pem, &client.key.pem));
            }
            builder = builder
                .tls_config(config)
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
            return failure("gRPC", &error);
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
    let cause = status.source().and_then(cause_of);
    let mut error = String::from("gRPC export failed");
    if let Some(cause) = &cause {
        error.push_str(&format!(" ({})", cause.text));
    }
    error.push_str(&format!(": {:?}: {}", status.code(), status.message()));
    if let Some(source) = status.source() {
        error.push_str(&format!(" ({})", error_chain(source)));
    }
    let error = mask_credentials(&error).into_owned();
    let after = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .filter(|delay| !delay.is_zero())
        .map(|delay| delay.min(MAX_THROTTLE));
    // A failure under gRPC (TLS, a connection refused or closed) decides,
    // whatever code tonic gave it.
    match cause {
        Some(cause) if cause.permanent => return Outcome::Failed(error),
        Some(_) => return Outcome::Retryable { error, after: None },
        None => {}
    }
    // A message over the server's size limit: grpc-go says RESOURCE_EXHAUSTED
    // "received message larger than max", tonic OUT_OF_RANGE "message
    // length too large".
    let message = status.message().to_ascii_lowercase();
    if matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange)
        && after.is_none()
        && (message.contains("larger than max") || message.contains("too large"))
    {
        return Outcome::TooLarge(error);
    }
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

/// A try that failed below HTTP or gRPC: its message names the
/// transport, the cause when it is one a user can act on, then the whole
/// chain (credentials in URLs masked). Worth another try unless TLS
/// failed: a certificate the client does not trust stays untrusted.
fn failure(transport: &str, error: &(dyn std::error::Error + 'static)) -> Outcome {
    let cause = cause_of(error);
    let text = match &cause {
        Some(cause) => format!("{transport} export failed ({}): {}", cause.text, error_chain(error)),
        None => format!("{transport} export failed: {}", error_chain(error)),
    };
    let error = mask_credentials(&text).into_owned();
    if cause.is_some_and(|cause| cause.permanent) {
        Outcome::Failed(error)
    } else {
        Outcome::Retryable { error, after: None }
    }
}

/// What went wrong under a transport error, said plainly.
#[derive(Debug)]
struct Cause {
    text: String,
    /// TLS failed: trying again cannot help.
    permanent: bool,
}

/// The cause under a transport error: the connection was refused, reset,
/// closed or timed out, or TLS failed and why. `None` when the chain holds
/// none of these.
fn cause_of(error: &(dyn std::error::Error + 'static)) -> Option<Cause> {
    let tls = |error: &rustls::Error| Cause { text: tls_cause(error), permanent: true };
    let transient = |text: &str| Cause { text: text.to_owned(), permanent: false };
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(error) = error.downcast_ref::<rustls::Error>() {
            return Some(tls(error));
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            // An io::Error's `source` skips the error it wraps (often
            // another io::Error): look inside, outermost kind first.
            let mut kind = io_cause(io.kind());
            let mut inner = io.get_ref();
            while let Some(wrapped) = inner {
                if let Some(error) = wrapped.downcast_ref::<rustls::Error>() {
                    return Some(tls(error));
                }
                let Some(io) = wrapped.downcast_ref::<std::io::Error>() else { break };
                kind = kind.or(io_cause(io.kind()));
                inner = io.get_ref();
            }
            if let Some(cause) = kind {
                return Some(transient(cause));
            }
        }
        if error
            .downcast_ref::<hyper::Error>()
            .is_some_and(|error| error.is_incomplete_message() || error.is_closed() || error.is_canceled())
        {
            return Some(transient(CLOSED));
        }
        if error.downcast_ref::<tonic::TimeoutExpired>().is_some()
            || error.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_timeout)
        {
            return Some(transient("timed out"));
        }
        next = error.source();
    }
    // h2 keeps only the text of a TLS alert that ends the connection.
    let text = error_chain(error);
    let alert = text.split("received fatal alert: ").nth(1)?;
    let alert = alert.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or_default();
    let cause = match alert {
        "CertificateRequired" => {
            tls_cause(&rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired))
        }
        "BadCertificate" | "UnknownCA" | "CertificateUnknown" => {
            tls_cause(&rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate))
        }
        other => format!("TLS: the server sent the alert {other}"),
    };
    Some(Cause { text: cause, permanent: true })
}

const CLOSED: &str = "connection closed by the server before it answered";

fn io_cause(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind;
    Some(match kind {
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::ConnectionReset => "connection reset",
        ErrorKind::ConnectionAborted => "connection aborted",
        ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe => CLOSED,
        ErrorKind::TimedOut => "timed out",
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => "host unreachable",
        _ => return None,
    })
}

fn tls_cause(error: &rustls::Error) -> String {
    use rustls::{AlertDescription, CertificateError, Error};
    let what = match error {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "unknown issuer: the server's certificate is not signed by a trusted CA \
             (set OTEL_EXPORTER_OTLP_CERTIFICATE or otlp_certificate to its CA)"
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the server's certificate is not valid for the endpoint's host name",
        Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            "the server's certificate has expired"
        }
        Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate (set OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and _CLIENT_KEY)"
        }
        Error::AlertReceived(
            AlertDescription::BadCertificate | AlertDescription::UnknownCA | AlertDescription::CertificateUnknown,
        ) => "the server refused the client certificate",
        Error::InvalidMessage(_) => "the server did not answer in TLS (is the endpoint https:// by mistake?)",
        other => return format!("TLS: {other}"),
    };
    format!("TLS: {what}")
}

/// Warns, once per process, that an exporter sends its headers
/// (credentials, usually) in clear to a host other than this machine.
fn warn_if_in_clear(url: &url::Url) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if leaves_in_clear(url) {
        crate::diagnostics::report_once(
            &WARNED,
            "credentials_in_clear",
            &format!(
                "headers (credentials, usually) are sent without TLS to {}: use an https:// endpoint",
                url.host_str().unwrap_or_default()
            ),
        );
    }
}

/// Whether requests to `url` go unencrypted to another machine: `http://`
/// to a host other than `localhost` or a loopback address.
fn leaves_in_clear(url: &url::Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => true,
    };
    url.scheme() == "http" && !loopback
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

#[cfg(test)]
mod tests;

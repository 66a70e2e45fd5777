//! OTLP/HTTP with protobuf bodies: a bare hyper HTTP/1.1 server that takes
//! a POST on any path, so tests can see where an exporter actually posts.

use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;
use flate2::read::GzDecoder;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::header_map;
use super::span::{ReceivedRequest, ReceivedSpan, decode};
use super::store::Store;

/// Serves until the listener fails; the caller stops it by dropping the
/// future (which, on its runtime's shutdown, also ends the connections).
/// `forced` replaces every answer's status; `delay` holds every answer back
/// that long (a slow backend).
pub(crate) async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    forced: Option<StatusCode>,
    delay: Option<std::time::Duration>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if is_transient(&e) => continue,
            Err(_) => return,
        };
        let service = service(Arc::clone(&store), forced, delay);
        tokio::spawn(async move {
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Like [`serve`], each connection over TLS first. A handshake that fails
/// is recorded in the store.
pub(crate) async fn serve_tls(listener: TcpListener, store: Arc<Store>, acceptor: TlsAcceptor) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if is_transient(&e) => continue,
            Err(_) => return,
        };
        let store = Arc::clone(&store);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(stream).await {
                Ok(stream) => stream,
                Err(error) => {
                    store.record_tls_failure(error.to_string());
                    return;
                }
            };
            let service = service(store, None, None);
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// One connection's request handler.
fn service(
    store: Arc<Store>,
    forced: Option<StatusCode>,
    delay: Option<std::time::Duration>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send,
> + Send
+ 'static {
    service_fn(move |request| {
        let store = Arc::clone(&store);
        async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            handle(request, store, forced).await
        }
    })
}

/// Errors that concern one connection, not the listener.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

async fn handle(
    request: Request<Incoming>,
    store: Arc<Store>,
    forced: Option<StatusCode>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let headers = header_map(request.headers());
    let content_type = headers.get("content-type").cloned();
    let content_encoding = headers.get("content-encoding").cloned();
    let method = request.method().clone();
    let body = request.into_body().collect().await.map(|b| b.to_bytes());

    let decoded = match body {
        _ if method != Method::POST => Err(format!("method {method} is not POST")),
        Ok(body) => decode_body(&body, content_encoding.as_deref()),
        Err(e) => Err(format!("reading the body: {e}")),
    };
    let (spans, error) = match decoded {
        Ok(spans) => (spans, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let status = forced.unwrap_or(if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK });
    let answer = if status.is_success() {
        protobuf(status, ExportTraceServiceResponse::default().encode_to_vec())
    } else {
        text(status, error.clone().unwrap_or_default())
    };
    let request = ReceivedRequest { path, headers, content_type, content_encoding, span_count: spans.len(), error };
    // Spans the receiver refused were not delivered, as far as the exporter knows.
    store.record(request, if status.is_success() { spans } else { Vec::new() });
    Ok(answer)
}

fn decode_body(body: &[u8], encoding: Option<&str>) -> Result<Vec<ReceivedSpan>, String> {
    let mut inflated = Vec::new();
    let raw = match encoding {
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            GzDecoder::new(body).read_to_end(&mut inflated).map_err(|e| format!("gunzipping the body: {e}"))?;
            &inflated[..]
        }
        None | Some("identity") => body,
        Some(other) => return Err(format!("unsupported content-encoding {other:?}")),
    };
    let request =
        ExportTraceServiceRequest::decode(raw).map_err(|e| format!("decoding ExportTraceServiceRequest: {e}"))?;
    Ok(decode(&request))
}

fn protobuf(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    with_type(status, body.into(), "application/x-protobuf")
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_type(status, body.into(), "text/plain; charset=utf-8")
}

fn with_type(status: StatusCode, body: Bytes, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

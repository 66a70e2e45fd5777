//! OTLP/gRPC: the generated `TraceService`, recording each export.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::header_map;
use super::span::{ReceivedRequest, decode};
use super::store::Store;

/// The only method the service has; tonic does not hand the path to the
/// handler, so it is recorded as this constant.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

struct Receiver(Arc<Store>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        if self.0.is_counting() {
            let spans = request.get_ref().resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans);
            self.0.count(spans.map(|span| span.span_id.as_slice()));
            return Ok(Response::new(ExportTraceServiceResponse { partial_success: None }));
        }
        let headers = header_map(&request.metadata().clone().into_headers());
        let spans = decode(request.get_ref());
        let received = ReceivedRequest {
            path: EXPORT_PATH.to_owned(),
            content_type: headers.get("content-type").cloned(),
            content_encoding: headers.get("grpc-encoding").cloned(),
            headers,
            span_count: spans.len(),
            error: None,
        };
        self.0.record(received, spans);
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// Serves until the listener fails; the caller stops it by dropping the
/// future. `TCP_NODELAY` on accepted connections, as tonic's own `serve`
/// sets it: without it each response's small HTTP/2 frames wait on the
/// client's delayed ACK, and an export took ~40-80 ms on loopback
/// (measured with `pocketflow-bench`: 13k spans/s delivered, 85k with it).
pub(crate) async fn serve(listener: TcpListener, store: Arc<Store>, tls: Option<tonic::transport::ServerTlsConfig>) {
    // Answers in gzip to a client that reads it, as the Collector does.
    let service = TraceServiceServer::new(Receiver(store))
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut server = Server::builder();
    if let Some(tls) = tls {
        server = match server.tls_config(tls) {
            Ok(server) => server,
            // The certificates come from `TestPki` and were checked there.
            Err(_) => return,
        };
    }
    let _ = server.serve_with_incoming(service, incoming).await;
}

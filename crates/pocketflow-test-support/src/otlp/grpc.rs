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
/// future.
pub(crate) async fn serve(listener: TcpListener, store: Arc<Store>) {
    let service = TraceServiceServer::new(Receiver(store)).accept_compressed(CompressionEncoding::Gzip);
    let _ = Server::builder().serve_with_incoming(service, TcpIncoming::from(listener)).await;
}

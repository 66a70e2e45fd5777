//! What a failed try says, against real peers on loopback: each transport
//! error names its cause (refused, reset, closed, timed out, TLS and why),
//! and a TLS failure is not tried again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use pocketflow_test_support::otlp::OtlpReceiver;
use pocketflow_test_support::tls::TestPki;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;
use tonic::metadata::MetadataMap;

use super::{GrpcTransport, HttpTransport, Transport};
use crate::exporter::retry::Outcome;
use crate::tls::OtlpTls;

const TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy)]
enum Kind {
    Grpc,
    Http,
}

const KINDS: [Kind; 2] = [Kind::Grpc, Kind::Http];

fn transport(kind: Kind, endpoint: &str, tls: &OtlpTls) -> Transport {
    match kind {
        Kind::Grpc => Transport::Grpc(GrpcTransport::new(endpoint, MetadataMap::new(), false, TIMEOUT, tls).unwrap()),
        Kind::Http => Transport::Http(
            HttpTransport::new(&format!("{endpoint}/v1/traces"), HeaderMap::new(), false, TIMEOUT, tls).unwrap(),
        ),
    }
}

/// Sends one empty request to `endpoint` and returns the outcome.
async fn try_once(kind: Kind, endpoint: &str) -> Outcome {
    transport(kind, endpoint, &OtlpTls::default()).send(Bytes::new()).await
}

fn retryable_saying(outcome: Outcome, cause: &str) {
    match outcome {
        Outcome::Retryable { error, .. } => assert!(error.contains(&format!("({cause}")), "{error}"),
        other => panic!("expected a retryable failure ({cause}), got {other:?}"),
    }
}

fn failed_saying(outcome: Outcome, cause: &str) {
    match outcome {
        Outcome::Failed(error) => assert!(error.contains(cause), "{error}"),
        other => panic!("expected a permanent failure ({cause}), got {other:?}"),
    }
}

/// A loopback listener whose connections `serve` handles.
async fn peer<F, Fut>(serve: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    endpoint
}

#[tokio::test]
async fn a_refused_connection_says_refused_and_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    for kind in KINDS {
        retryable_saying(try_once(kind, &endpoint).await, "connection refused");
    }
}

#[tokio::test]
async fn a_reset_connection_says_reset_and_is_retryable() {
    // Closing with unread bytes, lingering zero seconds, sends a reset.
    let endpoint = peer(|mut stream| async move {
        let mut first = [0u8; 1];
        let _ = stream.read(&mut first).await;
        let _ = stream.set_zero_linger();
        drop(stream);
    })
    .await;
    // HTTP/2 reports a reset as the connection closing.
    retryable_saying(try_once(Kind::Http, &endpoint).await, "connection reset");
    retryable_saying(try_once(Kind::Grpc, &endpoint).await, "connection closed");
}

#[tokio::test]
async fn a_server_that_never_answers_says_timed_out_and_is_retryable() {
    let endpoint = peer(|stream| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(stream);
    })
    .await;
    for kind in KINDS {
        retryable_saying(try_once(kind, &endpoint).await, "timed out");
    }
}

#[tokio::test]
async fn a_server_that_closes_mid_request_says_closed_and_is_retryable() {
    let endpoint = peer(|mut stream| async move {
        // Reads what came, then closes in good order without answering.
        let mut buffer = vec![0u8; 64 * 1024];
        let _ = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await;
        drop(stream);
    })
    .await;
    for kind in KINDS {
        retryable_saying(try_once(kind, &endpoint).await, "connection closed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_says_unknown_issuer_and_is_not_retried() {
    let pki = TestPki::new().unwrap();
    for kind in KINDS {
        let receiver = match kind {
            Kind::Grpc => OtlpReceiver::grpc_tls(&pki.server()).unwrap(),
            Kind::Http => OtlpReceiver::https(&pki.server()).unwrap(),
        };
        failed_saying(try_once(kind, &receiver.endpoint()).await, "TLS: unknown issuer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_plain_server_says_it_did_not_answer_in_tls() {
    for kind in KINDS {
        let receiver = match kind {
            Kind::Grpc => OtlpReceiver::grpc().unwrap(),
            Kind::Http => OtlpReceiver::http().unwrap(),
        };
        let endpoint = receiver.endpoint().replace("http://", "https://");
        failed_saying(try_once(kind, &endpoint).await, "did not answer in TLS");
    }
}

/// With TLS 1.3 the client learns of the refusal only after its handshake
/// is done, while it sends the request: the TLS alert reaches the request
/// when it is read before the connection closes (then the failure says so
/// and is final), and otherwise the request sees a closed connection
/// (retryable). Which comes first depends on scheduling, so either is
/// accepted; nothing is ever delivered. h2 (gRPC) almost always reports the
/// closed connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_without_a_client_certificate_is_refused() {
    let pki = TestPki::new().unwrap();
    let ca = crate::tls::read_pem("otlp_certificate", &pki.ca_path(), crate::tls::PemKind::Certificates).unwrap();
    let tls = OtlpTls { ca: Some(ca), client: None };
    for kind in KINDS {
        let receiver = match kind {
            Kind::Grpc => OtlpReceiver::grpc_tls(&pki.server_requiring_client_certs()).unwrap(),
            Kind::Http => OtlpReceiver::https(&pki.server_requiring_client_certs()).unwrap(),
        };
        match transport(kind, &receiver.endpoint(), &tls).send(Bytes::new()).await {
            Outcome::Failed(error) => {
                assert!(error.contains("TLS: the server requires a client certificate"), "{error}");
            }
            Outcome::Retryable { error, .. } => assert!(error.contains("connection closed"), "{error}"),
            other => panic!("{kind:?}: expected a refusal, got {other:?}"),
        }
        assert!(receiver.spans().is_empty());
    }
}

#[test]
fn grpc_codes_are_retried_as_the_otlp_specification_says() {
    use tonic::Code;
    use tonic_types::{ErrorDetails, StatusExt as _};
    let with_retry_info = tonic::Status::with_error_details(
        Code::ResourceExhausted,
        "slow down",
        ErrorDetails::with_retry_info(Some(Duration::from_secs(2))),
    );
    match super::classify_grpc(&with_retry_info) {
        Outcome::Retryable { after, .. } => assert_eq!(after, Some(Duration::from_secs(2))),
        other => panic!("{other:?}"),
    }
    let quota = tonic::Status::new(Code::ResourceExhausted, "quota exceeded");
    assert!(matches!(super::classify_grpc(&quota), Outcome::Failed(_)));
    let too_large = tonic::Status::new(Code::ResourceExhausted, "grpc: received message larger than max (5 vs. 4)");
    assert!(matches!(super::classify_grpc(&too_large), Outcome::TooLarge(_)));
    for code in
        [Code::Unavailable, Code::Cancelled, Code::DeadlineExceeded, Code::Aborted, Code::OutOfRange, Code::DataLoss]
    {
        assert!(matches!(super::classify_grpc(&tonic::Status::new(code, "x")), Outcome::Retryable { .. }), "{code:?}");
    }
    for code in [Code::InvalidArgument, Code::Unauthenticated, Code::PermissionDenied, Code::Unimplemented] {
        assert!(matches!(super::classify_grpc(&tonic::Status::new(code, "x")), Outcome::Failed(_)), "{code:?}");
    }
}

#[test]
fn only_plain_http_to_another_machine_counts_as_in_clear() {
    let in_clear = |url: &str| super::leaves_in_clear(&url::Url::parse(url).unwrap());
    assert!(in_clear("http://collector.internal:4318/v1/traces"));
    assert!(in_clear("http://10.0.0.7:4317"));
    assert!(!in_clear("https://collector.internal:4318/v1/traces"));
    assert!(!in_clear("http://localhost:4318/v1/traces"));
    assert!(!in_clear("http://127.0.0.1:4317"));
    assert!(!in_clear("http://[::1]:4317"));
}

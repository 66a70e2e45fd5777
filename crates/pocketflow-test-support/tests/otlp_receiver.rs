//! The receivers decode real OTLP requests: gRPC from the generated tonic
//! client, HTTP from raw HTTP/1.1 posts of prost-encoded bodies.

use std::error::Error;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use pocketflow_test_support::otlp::{AttrValue, OtlpReceiver, StatusCode};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;

type TestResult = Result<(), Box<dyn Error>>;

const TRACE_A: [u8; 16] = [0xa1; 16];
const TRACE_B: [u8; 16] = [0xb2; 16];

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
}

fn span(trace: [u8; 16], id: u8, parent: Option<u8>, name: &str, start: u64) -> Span {
    Span {
        trace_id: trace.to_vec(),
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.to_owned(),
        kind: 1,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000,
        attributes: vec![kv("step", Value::StringValue(name.to_owned())), kv("start", Value::IntValue(start as i64))],
        ..Span::default()
    }
}

fn export(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", Value::StringValue("svc".into()))],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "scope".into(), version: "1.2".into(), ..Default::default() }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// A span with every field set, to check the whole mapping.
fn rich_span() -> Span {
    Span {
        status: Some(Status { code: 2, message: "boom".into() }),
        events: vec![span::Event {
            name: "exception".into(),
            time_unix_nano: 1_500,
            attributes: vec![kv("exception.message", Value::StringValue("boom".into()))],
            dropped_attributes_count: 0,
        }],
        links: vec![span::Link { trace_id: TRACE_B.to_vec(), span_id: vec![9; 8], ..Default::default() }],
        dropped_events_count: 3,
        dropped_attributes_count: 4,
        kind: 3,
        ..span(TRACE_A, 1, None, "rich", 1_000)
    }
}

/// A raw HTTP/1.1 POST; returns the status, the header block and the body.
fn post(
    endpoint: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String, Vec<u8>), Box<dyn Error>> {
    let host = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host)?;
    let mut head =
        format!("POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no header terminator")?;
    let head = String::from_utf8(response[..split].to_vec())?;
    let status = head.split(' ').nth(1).ok_or("no status")?.parse()?;
    Ok((status, head.to_ascii_lowercase(), response[split + 4..].to_vec()))
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

#[tokio::test]
async fn grpc_receiver_decodes_plain_and_gzipped_exports_with_metadata() -> TestResult {
    let receiver = OtlpReceiver::grpc()?;
    let mut client = TraceServiceClient::connect(receiver.endpoint()).await?;
    let mut request = tonic::Request::new(export(vec![rich_span()]));
    request.metadata_mut().insert("authorization", MetadataValue::from_static("Bearer secret"));
    client.export(request).await?;
    let mut gzipped = client.send_compressed(CompressionEncoding::Gzip);
    gzipped.export(export(vec![span(TRACE_A, 2, Some(1), "child", 2_000)])).await?;

    let spans = receiver.spans();
    assert_eq!(spans.len(), 2);
    let rich = &spans[0];
    assert_eq!(rich.trace_id, "a1".repeat(16));
    assert_eq!(rich.span_id, "01".repeat(8));
    assert_eq!(rich.parent_span_id, None);
    assert_eq!((rich.name.as_str(), rich.kind), ("rich", 3));
    assert_eq!(rich.duration(), Duration::from_nanos(1_000));
    assert_eq!(rich.attr_str("step"), Some("rich"));
    assert_eq!(rich.attr("start").and_then(AttrValue::as_i64), Some(1_000));
    assert_eq!(rich.resource["service.name"].as_str(), Some("svc"));
    assert_eq!((rich.scope_name.as_str(), rich.scope_version.as_str()), ("scope", "1.2"));
    assert_eq!((rich.status.code, rich.status.message.as_str()), (StatusCode::Error, "boom"));
    assert_eq!(rich.events[0].name, "exception");
    assert_eq!(rich.events[0].attributes["exception.message"].as_str(), Some("boom"));
    assert_eq!((rich.dropped_events_count, rich.dropped_attributes_count), (3, 4));
    assert_eq!(rich.links, vec![("b2".repeat(16), "09".repeat(8))]);
    assert_eq!(spans[1].parent_span_id, Some("01".repeat(8)));

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/opentelemetry.proto.collector.trace.v1.TraceService/Export");
    assert_eq!(requests[0].headers.get("authorization").map(String::as_str), Some("Bearer secret"));
    assert!(requests[0].content_type.as_deref().is_some_and(|t| t.starts_with("application/grpc")));
    assert_eq!(requests[0].content_encoding, None);
    assert_eq!(requests[1].content_encoding.as_deref(), Some("gzip"));
    assert_eq!(requests.iter().map(|r| r.span_count).collect::<Vec<_>>(), [1, 1]);
    Ok(())
}

#[test]
fn http_receiver_decodes_plain_and_gzipped_bodies_on_any_path() -> TestResult {
    let receiver = OtlpReceiver::http()?;
    let body = export(vec![rich_span()]).encode_to_vec();
    let (status, head, answer) = post(
        &receiver.endpoint(),
        "/v1/traces",
        &[("content-type", "application/x-protobuf"), ("authorization", "Bearer secret")],
        &body,
    )?;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/x-protobuf"), "{head}");
    assert_eq!(ExportTraceServiceResponse::decode(&answer[..])?, ExportTraceServiceResponse::default());

    let child = export(vec![span(TRACE_A, 2, Some(1), "child", 2_000)]).encode_to_vec();
    let (status, _, _) = post(&receiver.endpoint(), "/custom/traces", &[("content-encoding", "gzip")], &gzip(&child)?)?;
    assert_eq!(status, 200);

    let names: Vec<_> = receiver.spans().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["rich", "child"]);
    let requests = receiver.requests();
    assert_eq!(requests[0].path, "/v1/traces");
    assert_eq!(requests[0].headers.get("authorization").map(String::as_str), Some("Bearer secret"));
    assert_eq!(requests[0].content_type.as_deref(), Some("application/x-protobuf"));
    assert_eq!(requests[1].path, "/custom/traces");
    assert_eq!(requests[1].content_encoding.as_deref(), Some("gzip"));
    assert!(requests.iter().all(|r| r.error.is_none() && r.span_count == 1));
    Ok(())
}

#[test]
fn http_receiver_answers_400_to_an_undecodable_body_and_records_why() -> TestResult {
    let receiver = OtlpReceiver::http()?;
    let (status, _, _) = post(&receiver.endpoint(), "/v1/traces", &[], b"\xff\xff\xff not protobuf")?;
    assert_eq!(status, 400);
    let (status, _, _) = post(&receiver.endpoint(), "/v1/traces", &[("content-encoding", "gzip")], b"not gzip")?;
    assert_eq!(status, 400);

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.error.is_some() && r.span_count == 0), "{requests:?}");
    assert!(receiver.spans().is_empty());
    Ok(())
}

#[test]
fn http_responding_answers_every_request_with_that_status_and_still_records_it() -> TestResult {
    let receiver = OtlpReceiver::http_responding(503)?;
    let body = export(vec![span(TRACE_A, 1, None, "root", 1_000)]).encode_to_vec();
    let (status, _, _) = post(&receiver.endpoint(), "/v1/traces", &[], &body)?;
    assert_eq!(status, 503);

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!((requests[0].span_count, requests[0].error.as_deref()), (1, None));
    assert!(receiver.spans().is_empty(), "refused spans are not delivered");
    assert!(OtlpReceiver::http_responding(1000).is_err());
    Ok(())
}

#[test]
fn traces_group_spans_by_trace_and_expose_the_tree() -> TestResult {
    let receiver = OtlpReceiver::http()?;
    // Children end (and so are exported) before their parents, as in a real run.
    let batch = vec![
        span(TRACE_A, 3, Some(2), "grandchild", 3_000),
        span(TRACE_B, 7, Some(6), "lost", 1_000),
        span(TRACE_A, 4, Some(1), "second", 5_000),
        span(TRACE_A, 2, Some(1), "first", 2_000),
        span(TRACE_A, 1, None, "root", 1_000),
    ];
    post(&receiver.endpoint(), "/v1/traces", &[], &export(batch).encode_to_vec())?;

    let traces = receiver.traces();
    assert_eq!(traces.iter().map(|t| t.trace_id.clone()).collect::<Vec<_>>(), ["a1".repeat(16), "b2".repeat(16)]);
    let (a, b) = (&traces[0], &traces[1]);
    let roots = a.roots();
    assert_eq!(roots.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["root"]);
    let children: Vec<_> = a.children(&roots[0].span_id).into_iter().map(|s| s.name.as_str()).collect();
    assert_eq!(children, ["first", "second"], "ordered by start time");
    let grandchild = &a.spans[0];
    assert_eq!(a.parent(grandchild).map(|s| s.name.as_str()), Some("first"));
    assert_eq!(a.path(grandchild), ["root", "first", "grandchild"]);
    assert_eq!(a.depth(), 3);
    assert!(a.orphans().is_empty());
    assert_eq!(a.tree(), "root\n  first\n    grandchild\n  second\n");

    assert!(b.roots().is_empty());
    assert_eq!(b.orphans().iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["lost"]);
    assert_eq!(b.depth(), 1);
    assert_eq!(b.tree(), "lost (orphan)\n");
    Ok(())
}

#[test]
fn wait_for_spans_returns_the_partial_list_at_the_timeout() -> TestResult {
    let receiver = OtlpReceiver::http()?;
    post(&receiver.endpoint(), "/v1/traces", &[], &export(vec![span(TRACE_A, 1, None, "only", 1)]).encode_to_vec())?;

    let started = Instant::now();
    let spans = receiver.wait_for_spans(3, Duration::from_millis(100));
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(spans.len(), 1);
    Ok(())
}

#[test]
fn wait_for_spans_wakes_as_soon_as_enough_spans_arrive() -> TestResult {
    let receiver = OtlpReceiver::grpc()?;
    let endpoint = receiver.endpoint();
    // The sender has its own runtime; this thread just blocks on the condvar.
    let sender = std::thread::spawn(move || -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut client = TraceServiceClient::connect(endpoint).await.map_err(|e| e.to_string())?;
            for id in 1..=2 {
                client.export(export(vec![span(TRACE_A, id, None, "s", 1)])).await.map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    });
    let started = Instant::now();
    let spans = receiver.wait_for_spans(2, Duration::from_secs(30));
    assert_eq!(spans.len(), 2);
    assert!(started.elapsed() < Duration::from_secs(30));
    sender.join().map_err(|_| "sender panicked")??;
    Ok(())
}

#[tokio::test]
async fn dropping_the_receiver_does_not_wait_for_open_connections() -> TestResult {
    let http = OtlpReceiver::http()?;
    let grpc = OtlpReceiver::grpc()?;
    let address = http.endpoint().trim_start_matches("http://").to_owned();
    let _idle = TcpStream::connect(&address)?;
    let mut client = TraceServiceClient::connect(grpc.endpoint()).await?;
    client.export(export(vec![span(TRACE_A, 1, None, "s", 1)])).await?;

    drop(http);
    drop(grpc);
    assert!(TcpStream::connect(&address).is_err(), "the listener is closed");
    Ok(())
}

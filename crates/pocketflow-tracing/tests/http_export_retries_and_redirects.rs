//! How an OTLP/HTTP export treats the answers it gets. A transient failure
//! (503) is tried again with the very same bytes and delivers; a permanent
//! one (400) is not tried again. A redirect is followed only within the
//! endpoint's origin: a redirect to another host (which would carry the
//! exporter's headers, credentials among them, to that host) fails the
//! export instead, and that host sees no connection at all. A redirect
//! within the origin is followed, headers included.
//!
//! A connection closed mid-request, a 429 with `Retry-After`, and a 413
//! (split until every part is taken) are covered too.
//!
//! A redirect from `https` to `http`, even to the same host, is not
//! followed either: the headers and the trace would go out in clear.
//!
//! The servers are HTTP/1.1 responders on loopback threads (over TLS with
//! certificates made by the test, for the `https` one), so the tests see
//! exactly what arrives.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SPANS_PER_RUN, otlp, run_and_shut_down};
use pocketflow_test_support::tls::TestPki;
use pocketflow_tracing::{Protocol, Secret, ShutdownReport, TracingConfigBuilder};

/// One request as it arrived: its path and its headers, names lowercased.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// An answer that closes the connection instead: the request was read
/// whole and gets no answer.
const CLOSE: &str = "";

/// Answers each request with `answer(path)`: a status line and extra
/// headers ([`CLOSE`] to close without answering). Records every request.
fn serve(answer: impl Fn(&str) -> String + Send + 'static) -> (String, Arc<Mutex<Vec<Seen>>>) {
    serve_over(None, move |request: &Seen| answer(&request.path))
}

/// Answers the first request with `first` ([`CLOSE`] to close without
/// answering) and every later one with 200.
fn serve_first_then_ok(first: &'static str) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let answered = Mutex::new(0);
    serve(move |_| {
        let mut count = answered.lock().unwrap();
        *count += 1;
        if *count == 1 {
            first.to_owned()
        } else {
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf".to_owned()
        }
    })
}

/// Like [`serve`], with the whole request (its body too) for `answer`.
fn serve_answering(answer: impl Fn(&Seen) -> String + Send + 'static) -> (String, Arc<Mutex<Vec<Seen>>>) {
    serve_over(None, answer)
}

/// Like [`serve`], over TLS with `tls` when given (the origin is then
/// `https://localhost:PORT`).
fn serve_over(
    tls: Option<Arc<rustls::ServerConfig>>,
    answer: impl Fn(&Seen) -> String + Send + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let origin = if tls.is_some() { format!("https://localhost:{port}") } else { format!("http://127.0.0.1:{port}") };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            match &tls {
                Some(tls) => {
                    let connection = rustls::ServerConnection::new(Arc::clone(tls)).unwrap();
                    handle(rustls::StreamOwned::new(connection, stream), &answer, &log);
                }
                None => handle(stream, &answer, &log),
            }
        }
    });
    (origin, seen)
}

/// Serves the requests of one keep-alive connection.
fn handle(stream: impl Read + Write, answer: &impl Fn(&Seen) -> String, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length: usize =
            headers.iter().find(|(name, _)| name == "content-length").map_or(0, |(_, value)| value.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let seen = Seen { path, headers, body };
        let response = answer(&seen);
        log.lock().unwrap().push(seen);
        if response == CLOSE {
            return;
        }
        let stream = reader.get_mut();
        stream.write_all(format!("{response}\r\ncontent-length: 0\r\n\r\n").as_bytes()).unwrap();
        stream.flush().unwrap();
    }
}

/// Runs flows exporting over HTTP to `endpoint` with an `x-api-key`
/// header, and shuts down. Nothing is exported before the shutdown, so the
/// spans go in one batch whatever the machine's speed.
fn export_to(endpoint: &str, runs: usize) -> ShutdownReport {
    export_with(endpoint, runs, |config| config)
}

/// Like [`export_to`], with `configure` applied to the config.
fn export_with(
    endpoint: &str,
    runs: usize,
    configure: impl FnOnce(TracingConfigBuilder) -> TracingConfigBuilder,
) -> ShutdownReport {
    let config = configure(otlp(endpoint, Protocol::HttpProtobuf))
        .otlp_headers(vec![("x-api-key".to_owned(), Secret::new("key-123"))])
        .export_timeout(Duration::from_secs(5))
        .scheduled_delay(Duration::from_secs(3600));
    run_and_shut_down(config.build().unwrap(), runs)
}

#[test]
fn a_redirect_to_another_origin_fails_the_export_and_reaches_nothing_there() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("http://{}/v1/traces", elsewhere.local_addr().unwrap());
    let (origin, seen) = serve(move |_| format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}"));

    let report = export_to(&origin, 3);

    let stats = report.stats;
    assert_eq!(stats.exported, 0, "{report}");
    assert_eq!(stats.failed_export, (3 * SPANS_PER_RUN) as u64, "{report}");
    assert!(!seen.lock().unwrap().is_empty(), "the exporter never reached the endpoint");
    elsewhere.set_nonblocking(true).unwrap();
    let connection = elsewhere.accept();
    assert!(connection.is_err(), "the other origin was contacted: {connection:?}");
}

#[test]
fn a_redirect_from_https_to_http_is_not_followed() {
    let pki = TestPki::new().unwrap();
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    // The same host name, in clear.
    let target = format!("http://localhost:{}/v1/traces", plain.local_addr().unwrap().port());
    let tls = pki.server().rustls_config().unwrap();
    let (origin, seen) =
        serve_over(Some(tls), move |_: &Seen| format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}"));
    assert!(origin.starts_with("https://"));

    let report = export_with(&origin, 3, |config| config.otlp_certificate(pki.ca_path()));

    assert_eq!(report.stats.exported, 0, "{report}");
    assert_eq!(report.stats.failed_export, (3 * SPANS_PER_RUN) as u64, "{report}");
    assert!(!seen.lock().unwrap().is_empty(), "the exporter never reached the endpoint");
    plain.set_nonblocking(true).unwrap();
    let connection = plain.accept();
    assert!(connection.is_err(), "the trace went out in clear: {connection:?}");
}

#[test]
fn a_redirect_within_the_origin_is_followed_with_its_headers() {
    let (origin, seen) = serve(|path| {
        if path == "/v1/traces" {
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: /moved/v1/traces".to_owned()
        } else {
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf".to_owned()
        }
    });

    let report = export_to(&origin, 3);

    assert_eq!(report.stats.exported, (3 * SPANS_PER_RUN) as u64, "{report}");
    let seen = seen.lock().unwrap();
    let moved: Vec<&Seen> = seen.iter().filter(|request| request.path == "/moved/v1/traces").collect();
    assert!(!moved.is_empty(), "the redirect was not followed: {seen:?}");
    for request in moved {
        assert!(
            request.headers.iter().any(|(name, value)| name == "x-api-key" && value == "key-123"),
            "the followed request lost its header: {request:?}"
        );
    }
}

#[test]
fn a_503_is_tried_again_with_the_same_bytes_and_delivers() {
    let (origin, seen) = serve_first_then_ok("HTTP/1.1 503 Service Unavailable\r\nretry-after: 0");

    let report = export_to(&origin, 1);

    assert_eq!(report.stats.exported, SPANS_PER_RUN as u64, "{report}");
    assert_eq!(report.stats.failed_export, 0, "{report}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one refused try and one delivered: {seen:?}");
    assert!(!seen[0].body.is_empty());
    assert_eq!(seen[0].body, seen[1].body, "the retry sent other bytes");
}

#[test]
fn a_400_is_not_tried_again() {
    let (origin, seen) = serve(|_| "HTTP/1.1 400 Bad Request".to_owned());

    let report = export_to(&origin, 1);

    assert_eq!(report.stats.exported, 0, "{report}");
    assert_eq!(report.stats.failed_export, SPANS_PER_RUN as u64, "{report}");
    assert_eq!(seen.lock().unwrap().len(), 1, "a permanent failure was tried again");
}

#[test]
fn a_429_with_retry_after_is_tried_again_after_the_delay_and_delivers() {
    let (origin, seen) = serve_first_then_ok("HTTP/1.1 429 Too Many Requests\r\nretry-after: 1");

    let report = export_to(&origin, 1);

    assert_eq!(report.stats.exported, SPANS_PER_RUN as u64, "{report}");
    assert_eq!(report.exporters[0].retried, SPANS_PER_RUN as u64, "{report:?}");
    assert_eq!(seen.lock().unwrap().len(), 2);
}

/// Spans in an OTLP request body.
fn spans_in(body: &[u8]) -> usize {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    let request = ExportTraceServiceRequest::decode(body).unwrap();
    request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
}

#[test]
fn a_413_splits_the_batch_until_each_part_is_taken() {
    // Three runs make one batch of 27 spans; the server takes at most 8
    // spans a request.
    const MOST: usize = 8;
    let (origin, seen) = serve_answering(|request| {
        if spans_in(&request.body) > MOST {
            "HTTP/1.1 413 Payload Too Large".to_owned()
        } else {
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf".to_owned()
        }
    });

    let report = export_to(&origin, 3);

    let produced = 3 * SPANS_PER_RUN;
    assert_eq!((report.stats.exported, report.stats.dropped), (produced as u64, 0), "{report}");
    let seen = seen.lock().unwrap();
    let taken: Vec<usize> = seen.iter().map(|request| spans_in(&request.body)).filter(|n| *n <= MOST).collect();
    assert_eq!(taken.iter().sum::<usize>(), produced, "every span was taken once: {taken:?}");
    assert!(seen.len() > taken.len(), "nothing was refused: {taken:?}");
}

#[test]
fn a_connection_closed_mid_request_is_tried_again_and_delivers_once() {
    let (origin, seen) = serve_first_then_ok(CLOSE);

    let report = export_to(&origin, 2);

    let produced = (2 * SPANS_PER_RUN) as u64;
    assert_eq!((report.stats.exported, report.stats.dropped, report.stats.in_flight), (produced, 0, 0), "{report}");
    assert_eq!(report.exporters[0].retried, produced, "{report:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one cut try and one delivered: {seen:?}");
    assert_eq!(seen[0].body, seen[1].body, "the retry sent other bytes");
    assert_eq!(spans_in(&seen[1].body) as u64, produced);
}

//! A Langfuse-contract receiver: this project's OTLP/HTTP receiver standing
//! where Langfuse's OTLP endpoint would be, and the checks of what Langfuse
//! requires of a request (path, Basic auth, ingestion version, gzip,
//! protobuf) and of the spans (the `langfuse.*` attributes it maps).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pocketflow_test_support::otlp::{
    OtlpReceiver, ReceivedRequest, ReceivedSpan, ReceivedTrace, StatusCode, group_traces,
};

use crate::E2eError;
use crate::services::free_addr;

/// The path Langfuse serves OTLP traces on.
pub(crate) const TRACES_PATH: &str = "/api/public/otel/v1/traces";

/// The keys the run's collectors are given (a test project's, not secrets).
const PUBLIC_KEY: &str = "pk-lf-e2e";
const SECRET_KEY: &str = "sk-lf-e2e";

/// The receiver, which can go down and come back on the same port.
#[derive(Debug)]
pub(crate) struct LangfuseContract {
    addr: SocketAddr,
    receiver: Option<OtlpReceiver>,
    /// What arrived before the receiver last went down.
    earlier_spans: Vec<ReceivedSpan>,
    earlier_requests: Vec<ReceivedRequest>,
}

impl LangfuseContract {
    /// Starts the receiver on a free loopback port.
    pub(crate) fn start() -> Result<Self, E2eError> {
        let addr = free_addr()?;
        let receiver = OtlpReceiver::http_at(addr).map_err(|source| E2eError::Io {
            what: format!("starting the Langfuse-contract receiver on {addr}"),
            source,
        })?;
        Ok(Self { addr, receiver: Some(receiver), earlier_spans: Vec::new(), earlier_requests: Vec::new() })
    }

    /// `LANGFUSE_HOST` for a collector sending here.
    pub(crate) fn host(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `LANGFUSE_AUTH`: base64 of `public:secret`, as agent.yaml documents.
    pub(crate) fn auth() -> String {
        STANDARD.encode(format!("{PUBLIC_KEY}:{SECRET_KEY}"))
    }

    /// The collector environment that points `collector-config/*.yaml`'s
    /// Langfuse exporter here.
    pub(crate) fn collector_env(&self) -> Vec<(String, String)> {
        vec![("LANGFUSE_HOST".into(), self.host()), ("LANGFUSE_AUTH".into(), Self::auth())]
    }

    /// Langfuse goes down: the port stops accepting connections.
    pub(crate) fn go_down(&mut self) {
        if let Some(receiver) = self.receiver.take() {
            self.earlier_spans.extend(receiver.spans());
            self.earlier_requests.extend(receiver.requests());
        }
    }

    /// Langfuse is back, on the same port.
    pub(crate) fn come_back(&mut self) -> Result<(), E2eError> {
        if self.receiver.is_none() {
            let receiver = OtlpReceiver::http_at(self.addr).map_err(|source| E2eError::Io {
                what: format!("restarting the Langfuse-contract receiver on {}", self.addr),
                source,
            })?;
            self.receiver = Some(receiver);
        }
        Ok(())
    }

    /// Every span received, before and after any outage.
    pub(crate) fn spans(&self) -> Vec<ReceivedSpan> {
        let mut spans = self.earlier_spans.clone();
        spans.extend(self.receiver.iter().flat_map(OtlpReceiver::spans));
        spans
    }

    /// Every request received.
    pub(crate) fn requests(&self) -> Vec<ReceivedRequest> {
        let mut requests = self.earlier_requests.clone();
        requests.extend(self.receiver.iter().flat_map(OtlpReceiver::requests));
        requests
    }

    /// The distinct spans received, grouped by trace (a retried request
    /// may deliver a span twice; Langfuse keeps one observation per id).
    pub(crate) fn traces(&self) -> Vec<ReceivedTrace> {
        let mut seen = BTreeSet::new();
        let spans: Vec<ReceivedSpan> =
            self.spans().into_iter().filter(|s| seen.insert((s.trace_id.clone(), s.span_id.clone()))).collect();
        group_traces(&spans)
    }

    /// How many distinct spans arrived.
    pub(crate) fn distinct_spans(&self) -> usize {
        self.traces().iter().map(|t| t.spans.len()).sum()
    }

    /// Waits until `n` distinct spans arrived or `timeout` passed.
    pub(crate) fn wait_for_distinct_spans(&self, n: usize, timeout: Duration) -> usize {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let have = self.distinct_spans();
            if have >= n || std::time::Instant::now() > deadline {
                return have;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Checks every request against Langfuse's OTLP endpoint contract and
    /// returns how many there were.
    pub(crate) fn check_requests(&self) -> Result<usize, E2eError> {
        check_contract(&self.requests(), &format!("Basic {}", Self::auth()))
    }
}

/// Checks `requests` against Langfuse's OTLP endpoint contract: the path,
/// `Authorization` equal to `auth`, ingestion version 4, gzip, protobuf, and
/// none rejected.
fn check_contract(requests: &[ReceivedRequest], auth: &str) -> Result<usize, E2eError> {
    if requests.is_empty() {
        return Err(E2eError::Check("the Langfuse-contract receiver got no request".into()));
    }
    for (i, request) in requests.iter().enumerate() {
        let header = |name: &str| request.headers.get(name).map(String::as_str);
        let problems: Vec<String> = [
            (request.path == TRACES_PATH).then_some(()).ok_or(format!("path {} (want {TRACES_PATH})", request.path)),
            (header("authorization") == Some(auth))
                .then_some(())
                .ok_or_else(|| "Authorization is not Basic base64(public:secret)".to_owned()),
            (header("x-langfuse-ingestion-version") == Some("4")).then_some(()).ok_or(format!(
                "x-langfuse-ingestion-version {:?} (want \"4\")",
                header("x-langfuse-ingestion-version")
            )),
            (request.content_encoding.as_deref() == Some("gzip"))
                .then_some(())
                .ok_or(format!("content-encoding {:?} (want gzip)", request.content_encoding)),
            (request.content_type.as_deref() == Some("application/x-protobuf"))
                .then_some(())
                .ok_or(format!("content-type {:?} (want application/x-protobuf)", request.content_type)),
            request.error.as_ref().map_or(Ok(()), |e| Err(format!("rejected: {e}"))),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect();
        if !problems.is_empty() {
            return Err(E2eError::Check(format!(
                "request {i} of {} to the Langfuse-contract receiver breaks the contract: {}",
                requests.len(),
                problems.join("; ")
            )));
        }
    }
    Ok(requests.len())
}

/// The level Langfuse gives a span's observation: `langfuse.observation.level`
/// when set, else ERROR for an OpenTelemetry status ERROR, else DEFAULT.
fn langfuse_level(span: &ReceivedSpan) -> &str {
    match span.attr_str("langfuse.observation.level") {
        Some(level) => level,
        None if span.status.code == StatusCode::Error => "ERROR",
        None => "DEFAULT",
    }
}

/// Checks the attributes Langfuse maps: each trace's root names the trace
/// (`langfuse.trace.name`), every span says what kind of observation it
/// is (`langfuse.observation.type`), and a trace whose run succeeded has
/// no ERROR observation (Langfuse would mark the whole trace failed).
pub(crate) fn check_langfuse_attributes(trace: &ReceivedTrace) -> Result<(), E2eError> {
    let roots = trace.roots();
    let [root] = roots.as_slice() else {
        return Err(E2eError::Check(format!(
            "trace {} has {} roots at Langfuse (want 1)",
            trace.trace_id,
            roots.len()
        )));
    };
    if root.attr_str("langfuse.trace.name") != Some(root.name.as_str()) {
        return Err(E2eError::Check(format!(
            "trace {}: root {:?} has langfuse.trace.name {:?}",
            trace.trace_id,
            root.name,
            root.attr_str("langfuse.trace.name")
        )));
    }
    if let Some(span) = trace.spans.iter().find(|s| s.attr_str("langfuse.observation.type").is_none()) {
        return Err(E2eError::Check(format!(
            "trace {}: span {:?} has no langfuse.observation.type",
            trace.trace_id, span.name
        )));
    }
    if root.status.code != StatusCode::Error
        && let Some(span) = trace.spans.iter().find(|s| langfuse_level(s) == "ERROR")
    {
        return Err(E2eError::Check(format!(
            "trace {} ({}) succeeded, yet Langfuse would show span {:?} as ERROR: {:?}",
            trace.trace_id,
            root.name,
            span.name,
            span.attr_str("langfuse.observation.status_message").unwrap_or(&span.status.message)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::BTreeMap;

    use pocketflow_test_support::otlp::{
        AttrValue, ReceivedRequest, ReceivedSpan, ReceivedStatus, ReceivedTrace, StatusCode,
    };

    use super::{LangfuseContract, TRACES_PATH, check_contract, check_langfuse_attributes};

    fn request() -> ReceivedRequest {
        ReceivedRequest {
            path: TRACES_PATH.into(),
            headers: BTreeMap::from([
                ("authorization".to_owned(), format!("Basic {}", LangfuseContract::auth())),
                ("x-langfuse-ingestion-version".to_owned(), "4".to_owned()),
            ]),
            content_type: Some("application/x-protobuf".into()),
            content_encoding: Some("gzip".into()),
            span_count: 3,
            error: None,
        }
    }

    fn problem(edit: impl FnOnce(&mut ReceivedRequest)) -> String {
        let mut bad = request();
        edit(&mut bad);
        let auth = format!("Basic {}", LangfuseContract::auth());
        match check_contract(&[request(), bad], &auth) {
            Ok(_) => panic!("the contract check passed a request that breaks it"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_request_as_langfuse_wants_it_passes() {
        let auth = format!("Basic {}", LangfuseContract::auth());
        assert_eq!(check_contract(&[request(), request()], &auth).ok(), Some(2));
        assert_eq!(LangfuseContract::auth(), "cGstbGYtZTJlOnNrLWxmLWUyZQ==", "base64 of pk-lf-e2e:sk-lf-e2e");
    }

    #[test]
    fn no_request_at_all_fails() {
        assert!(check_contract(&[], "Basic x").is_err());
    }

    #[test]
    fn each_broken_rule_is_named() {
        assert!(problem(|r| r.path = "/v1/traces".into()).contains("path /v1/traces"));
        assert!(problem(|r| drop(r.headers.remove("authorization"))).contains("Authorization"));
        assert!(problem(|r| drop(r.headers.remove("x-langfuse-ingestion-version"))).contains("ingestion-version"));
        assert!(problem(|r| r.content_encoding = None).contains("content-encoding"));
        assert!(problem(|r| r.content_type = Some("application/json".into())).contains("content-type"));
        assert!(problem(|r| r.error = Some("bad gzip".into())).contains("rejected: bad gzip"));
    }

    fn span(id: &str, parent: Option<&str>, failed: bool, level: Option<&str>) -> ReceivedSpan {
        let mut attributes = BTreeMap::from([
            ("langfuse.trace.name".to_owned(), AttrValue::String("Flow".into())),
            ("langfuse.observation.type".to_owned(), AttrValue::String("span".into())),
        ]);
        if let Some(level) = level {
            attributes.insert("langfuse.observation.level".to_owned(), AttrValue::String(level.into()));
        }
        ReceivedSpan {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: id.into(),
            parent_span_id: parent.map(Into::into),
            name: if parent.is_none() { "Flow".into() } else { format!("Flow.{id}") },
            kind: 1,
            start_unix_nano: 1,
            end_unix_nano: 2,
            attributes,
            resource: BTreeMap::new(),
            scope_name: "pocketflow".into(),
            scope_version: String::new(),
            events: Vec::new(),
            dropped_events_count: 0,
            dropped_attributes_count: 0,
            status: ReceivedStatus {
                code: if failed { StatusCode::Error } else { StatusCode::Unset },
                message: if failed { "boom".into() } else { String::new() },
            },
            links: Vec::new(),
        }
    }

    fn trace(spans: Vec<ReceivedSpan>) -> ReceivedTrace {
        ReceivedTrace { trace_id: "0af7651916cd43dd8448eb211c80319c".into(), spans }
    }

    #[test]
    fn a_succeeded_trace_with_an_error_observation_fails_the_level_check() {
        // A failed attempt marked WARNING: Langfuse does not fail the trace.
        let recovered = trace(vec![span("a1", None, false, None), span("b2", Some("a1"), true, Some("WARNING"))]);
        assert!(check_langfuse_attributes(&recovered).is_ok());
        // The same attempt without a level: its ERROR status makes it ERROR.
        let unmarked = trace(vec![span("a1", None, false, None), span("b2", Some("a1"), true, None)]);
        let error = check_langfuse_attributes(&unmarked).unwrap_err().to_string();
        assert!(error.contains("as ERROR"), "{error}");
        // A run that failed may have ERROR observations.
        let failed = trace(vec![span("a1", None, true, Some("ERROR")), span("b2", Some("a1"), true, None)]);
        assert!(check_langfuse_attributes(&failed).is_ok());
    }
}

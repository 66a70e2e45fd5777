//! Reads traces back from Jaeger's HTTP query API (`/api/traces/{id}`, the
//! API its UI uses), the way a user sees them.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::E2eError;

/// A client of one Jaeger query service.
#[derive(Debug)]
pub(crate) struct JaegerQuery {
    base: String,
    http: reqwest::blocking::Client,
}

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    data: Option<T>,
}

/// A trace as Jaeger returns it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JaegerTrace {
    pub(crate) spans: Vec<JaegerSpan>,
    pub(crate) processes: BTreeMap<String, JaegerProcess>,
}

/// One span of a [`JaegerTrace`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JaegerSpan {
    #[serde(rename = "spanID")]
    pub(crate) span_id: String,
    pub(crate) operation_name: String,
    #[serde(default)]
    pub(crate) references: Vec<JaegerReference>,
    #[serde(default)]
    pub(crate) tags: Vec<JaegerTag>,
    #[serde(default)]
    pub(crate) logs: Vec<JaegerLog>,
    #[serde(rename = "processID")]
    pub(crate) process_id: String,
}

/// A span reference (`CHILD_OF` is the parent).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JaegerReference {
    pub(crate) ref_type: String,
    #[serde(rename = "spanID")]
    pub(crate) span_id: String,
}

/// A tag or log field.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JaegerTag {
    pub(crate) key: String,
    pub(crate) value: serde_json::Value,
}

/// A span log (an OpenTelemetry span event).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JaegerLog {
    /// Microseconds since the epoch.
    #[serde(default)]
    pub(crate) timestamp: u64,
    #[serde(default)]
    pub(crate) fields: Vec<JaegerTag>,
}

/// The process (resource) of spans.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JaegerProcess {
    pub(crate) service_name: String,
}

impl JaegerSpan {
    /// The parent's span id, if the span has one.
    pub(crate) fn parent(&self) -> Option<&str> {
        self.references.iter().find(|r| r.ref_type == "CHILD_OF").map(|r| r.span_id.as_str())
    }

    /// A tag's value.
    pub(crate) fn tag(&self, key: &str) -> Option<&serde_json::Value> {
        self.tags.iter().find(|t| t.key == key).map(|t| &t.value)
    }
}

impl JaegerLog {
    /// The event's name (Jaeger stores it in the `event` field).
    pub(crate) fn event(&self) -> Option<&str> {
        self.fields.iter().find(|f| f.key == "event").and_then(|f| f.value.as_str())
    }
}

impl JaegerQuery {
    /// A client of the query service at `http://ADDR`.
    pub(crate) fn new(base: String) -> Result<Self, E2eError> {
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| E2eError::Check(format!("building the Jaeger HTTP client: {e}")))?;
        Ok(Self { base, http })
    }

    /// The UI's address.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// One trace, or `None` while Jaeger does not have it.
    pub(crate) fn trace(&self, trace_id: &str) -> Result<Option<JaegerTrace>, E2eError> {
        let url = format!("{}/api/traces/{trace_id}", self.base);
        let response = self.http.get(&url).send().map_err(|e| E2eError::Check(format!("GET {url}: {e}")))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(E2eError::Check(format!("GET {url}: HTTP {}", response.status())));
        }
        let body = response.text().map_err(|e| E2eError::Check(format!("GET {url}: {e}")))?;
        let envelope: Envelope<Vec<JaegerTrace>> = serde_json::from_str(&body)
            .map_err(|e| E2eError::Check(format!("GET {url}: not Jaeger's JSON ({e}): {body:.300}")))?;
        Ok(envelope.data.and_then(|traces| traces.into_iter().next()))
    }

    /// Polls until Jaeger holds `expected` spans of the trace (spans can
    /// arrive in several batches), then returns it; on timeout returns what
    /// it has, for the caller's check to explain.
    pub(crate) fn wait_for_trace(
        &self,
        trace_id: &str,
        expected: usize,
        timeout: Duration,
    ) -> Result<Option<JaegerTrace>, E2eError> {
        let deadline = Instant::now() + timeout;
        loop {
            let trace = self.trace(trace_id)?;
            let have = trace.as_ref().map_or(0, |t| t.spans.len());
            if have >= expected || Instant::now() > deadline {
                return Ok(trace);
            }
            thread::sleep(Duration::from_millis(250));
        }
    }
}

//! The decoded model: spans and requests as plain data, with ids as hex.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span};

/// One export call, as the receiver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// The request path (for gRPC, the method path).
    pub path: String,
    /// Headers with lowercased names (for gRPC, the metadata); repeated
    /// headers are joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The `content-type` header.
    pub content_type: Option<String>,
    /// The `content-encoding` header (for gRPC, `grpc-encoding`).
    pub content_encoding: Option<String>,
    /// How many spans the request carried.
    pub span_count: usize,
    /// Why the request was rejected, when it was.
    pub error: Option<String>,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string.
    String(String),
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A float.
    Double(f64),
    /// A homogeneous or mixed array.
    Array(Vec<Self>),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A nested map.
    KvList(BTreeMap<String, Self>),
    /// No value (or one this model does not know).
    Empty,
}

impl AttrValue {
    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, when this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The boolean, when this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// A span status code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusCode {
    /// Not set (also used for unknown codes).
    #[default]
    Unset,
    /// Explicitly ok.
    Ok,
    /// An error.
    Error,
}

/// A span status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceivedStatus {
    /// The code.
    pub code: StatusCode,
    /// The description (empty unless the code is `Error`, by convention).
    pub message: String,
}

/// A span event.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    /// The event name.
    pub name: String,
    /// When it happened.
    pub time_unix_nano: u64,
    /// Its attributes.
    pub attributes: BTreeMap<String, AttrValue>,
}

/// One span, flattened with its resource and scope so assertions need no
/// walking of the OTLP envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id; `None` when the field is empty.
    pub parent_span_id: Option<String>,
    /// The span name.
    pub name: String,
    /// The OTLP `SpanKind` number (1 internal, 2 server, 3 client, ...).
    pub kind: i32,
    /// Start time.
    pub start_unix_nano: u64,
    /// End time.
    pub end_unix_nano: u64,
    /// Span attributes.
    pub attributes: BTreeMap<String, AttrValue>,
    /// Resource attributes.
    pub resource: BTreeMap<String, AttrValue>,
    /// Instrumentation scope name.
    pub scope_name: String,
    /// Instrumentation scope version.
    pub scope_version: String,
    /// Events in the order sent.
    pub events: Vec<ReceivedEvent>,
    /// Events the exporter dropped.
    pub dropped_events_count: u32,
    /// Attributes the exporter dropped.
    pub dropped_attributes_count: u32,
    /// The status.
    pub status: ReceivedStatus,
    /// Links as `(trace id, span id)` in hex.
    pub links: Vec<(String, String)>,
}

impl ReceivedSpan {
    /// The attribute with this key.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    /// The string attribute with this key.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(AttrValue::as_str)
    }

    /// End minus start (zero when the clock went backwards).
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_unix_nano.saturating_sub(self.start_unix_nano))
    }
}

/// Flattens an export request into spans, in the order they were sent.
pub(crate) fn decode(request: &ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans.resource.as_ref().map(|r| attrs(&r.attributes)).unwrap_or_default();
        for scope_spans in &resource_spans.scope_spans {
            let (scope_name, scope_version) =
                scope_spans.scope.as_ref().map(|s| (s.name.clone(), s.version.clone())).unwrap_or_default();
            out.extend(scope_spans.spans.iter().map(|span| ReceivedSpan {
                resource: resource.clone(),
                scope_name: scope_name.clone(),
                scope_version: scope_version.clone(),
                ..from_proto(span)
            }));
        }
    }
    out
}

fn from_proto(span: &Span) -> ReceivedSpan {
    ReceivedSpan {
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
        name: span.name.clone(),
        kind: span.kind,
        start_unix_nano: span.start_time_unix_nano,
        end_unix_nano: span.end_time_unix_nano,
        attributes: attrs(&span.attributes),
        resource: BTreeMap::new(),
        scope_name: String::new(),
        scope_version: String::new(),
        events: span.events.iter().map(event).collect(),
        dropped_events_count: span.dropped_events_count,
        dropped_attributes_count: span.dropped_attributes_count,
        status: span.status.as_ref().map(status).unwrap_or_default(),
        links: span.links.iter().map(|l: &span::Link| (hex(&l.trace_id), hex(&l.span_id))).collect(),
    }
}

fn event(event: &span::Event) -> ReceivedEvent {
    ReceivedEvent {
        name: event.name.clone(),
        time_unix_nano: event.time_unix_nano,
        attributes: attrs(&event.attributes),
    }
}

fn status(status: &Status) -> ReceivedStatus {
    let code = match status.code {
        1 => StatusCode::Ok,
        2 => StatusCode::Error,
        _ => StatusCode::Unset,
    };
    ReceivedStatus { code, message: status.message.clone() }
}

fn attrs(pairs: &[KeyValue]) -> BTreeMap<String, AttrValue> {
    pairs.iter().map(|kv| (kv.key.clone(), value(kv.value.as_ref()))).collect()
}

fn value(any: Option<&AnyValue>) -> AttrValue {
    use any_value::Value;
    match any.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => AttrValue::String(s.clone()),
        Some(Value::BoolValue(b)) => AttrValue::Bool(*b),
        Some(Value::IntValue(i)) => AttrValue::Int(*i),
        Some(Value::DoubleValue(d)) => AttrValue::Double(*d),
        Some(Value::ArrayValue(a)) => AttrValue::Array(a.values.iter().map(|v| value(Some(v))).collect()),
        Some(Value::KvlistValue(kv)) => AttrValue::KvList(attrs(&kv.values)),
        Some(Value::BytesValue(b)) => AttrValue::Bytes(b.clone()),
        // String-table references belong to the profiling signal; the spec
        // says to treat them as absent elsewhere.
        Some(Value::StringValueStrindex(_)) | None => AttrValue::Empty,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

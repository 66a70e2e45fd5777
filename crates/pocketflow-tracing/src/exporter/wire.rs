//! The OTLP trace request (`ExportTraceServiceRequest`) written straight from
//! [`SpanData`] to protobuf bytes.
//!
//! Why not the generated `opentelemetry-proto` messages: converting a batch
//! into them copies every id, name, key and value into a fresh `String` or
//! `Vec`, and encoding walks the tree twice (lengths, then bytes). Profiled,
//! that was most of the export thread's work. Here each span is written once
//! into a reused buffer; lengths of the small nested messages (attributes,
//! values) are computed in place. The bytes decode to exactly the messages
//! `opentelemetry-proto`'s own conversion builds (pinned by this module's
//! tests and `tests/otlp_bytes_match_the_reference_encoding.rs`).
//!
//! Field numbers are those of `opentelemetry/proto/trace/v1/trace.proto`,
//! `common/v1/common.proto` and `resource/v1/resource.proto`.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use prost::encoding::encoded_len_varint;

/// Protobuf wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// OTLP span flags: the parent's remoteness is known (bit 8) and, when set
/// as well, the parent is remote (bit 9).
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// Writes OTLP trace export requests for one resource.
#[derive(Debug, Default)]
pub(crate) struct RequestEncoder {
    /// The `Resource` message's body, written once.
    resource: Vec<u8>,
    resource_schema_url: String,
    /// The bodies of the batch's spans, one after the other, reused: each
    /// is written once here and copied once into the request.
    bodies: Vec<u8>,
    /// Each span's scope (an index into the batch's scopes) and the range
    /// of its body in `bodies`.
    ranges: Vec<(usize, usize, usize)>,
    /// One event's or link's body, reused.
    nested: Vec<u8>,
}

impl RequestEncoder {
    pub(crate) fn set_resource(&mut self, resource: &Resource) {
        self.resource.clear();
        for (key, value) in resource.iter() {
            put_key_value(&mut self.resource, 1, key.as_str(), value);
        }
        self.resource_schema_url = resource.schema_url().unwrap_or_default().to_owned();
    }

    /// Replaces `out` with the encoded `ExportTraceServiceRequest` for
    /// `spans`: one `ResourceSpans`, and one `ScopeSpans` per instrumentation
    /// scope in the order the scopes first appear.
    pub(crate) fn encode(&mut self, spans: &[SpanData], out: &mut Vec<u8>) {
        out.clear();
        if spans.is_empty() {
            return;
        }
        self.bodies.clear();
        self.ranges.clear();
        let mut scopes: Vec<&InstrumentationScope> = Vec::new();
        let mut spans_len: Vec<usize> = Vec::new();
        for span in spans {
            let index = match scopes.iter().position(|scope| **scope == span.instrumentation_scope) {
                Some(index) => index,
                None => {
                    scopes.push(&span.instrumentation_scope);
                    spans_len.push(0);
                    scopes.len() - 1
                }
            };
            let start = self.bodies.len();
            put_span(&mut self.bodies, &mut self.nested, span);
            let end = self.bodies.len();
            self.ranges.push((index, start, end));
            spans_len[index] += field_len(2, end - start);
        }

        // Each scope's `scope` field and `schema_url`, around its spans.
        let mut wrappers = Vec::with_capacity(scopes.len());
        for scope in &scopes {
            let mut scope_body = Vec::new();
            put_scope(&mut scope_body, scope);
            let mut header = Vec::with_capacity(scope_body.len() + 4);
            put_bytes(&mut header, 1, &scope_body);
            let mut trailer = Vec::new();
            put_string(&mut trailer, 3, scope.schema_url().unwrap_or_default());
            wrappers.push((header, trailer));
        }
        let scope_len = |index: usize| wrappers[index].0.len() + spans_len[index] + wrappers[index].1.len();

        let resource_spans_len = field_len(1, self.resource.len())
            + (0..scopes.len()).map(|index| field_len(2, scope_len(index))).sum::<usize>()
            + string_field_len(3, &self.resource_schema_url);
        out.reserve(field_len(1, resource_spans_len));
        put_tag(out, 1, LEN);
        encode_varint(resource_spans_len as u64, out);
        put_bytes(out, 1, &self.resource);
        for (index, (header, trailer)) in wrappers.iter().enumerate() {
            put_tag(out, 2, LEN);
            encode_varint(scope_len(index) as u64, out);
            out.extend_from_slice(header);
            for &(_, start, end) in self.ranges.iter().filter(|(scope, ..)| *scope == index) {
                put_bytes(out, 2, &self.bodies[start..end]);
            }
            out.extend_from_slice(trailer);
        }
        put_string(out, 3, &self.resource_schema_url);
    }
}

fn put_scope(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    put_string(out, 1, scope.name());
    put_string(out, 2, scope.version().unwrap_or_default());
    for attribute in scope.attributes() {
        put_key_value(out, 3, attribute.key.as_str(), &attribute.value);
    }
}

fn put_span(out: &mut Vec<u8>, body: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    put_bytes(out, 1, &context.trace_id().to_bytes());
    put_bytes(out, 2, &context.span_id().to_bytes());
    put_string(out, 3, &context.trace_state().header());
    if span.parent_span_id != SpanId::INVALID {
        put_bytes(out, 4, &span.parent_span_id.to_bytes());
    }
    put_string(out, 5, &span.name);
    let kind = match span.span_kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    };
    put_varint_field(out, 6, kind);
    put_fixed64(out, 7, nanos(span.start_time));
    put_fixed64(out, 8, nanos(span.end_time));
    put_attributes(out, 9, &span.attributes);
    put_varint_field(out, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        body.clear();
        put_fixed64(body, 1, nanos(event.timestamp));
        put_string(body, 2, &event.name);
        put_attributes(body, 3, &event.attributes);
        put_varint_field(body, 4, u64::from(event.dropped_attributes_count));
        put_bytes(out, 11, body);
    }
    put_varint_field(out, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        let context = &link.span_context;
        body.clear();
        put_bytes(body, 1, &context.trace_id().to_bytes());
        put_bytes(body, 2, &context.span_id().to_bytes());
        put_string(body, 3, &context.trace_state().header());
        put_attributes(body, 4, &link.attributes);
        put_varint_field(body, 5, u64::from(link.dropped_attributes_count));
        put_fixed32(body, 6, flags(context.is_remote(), context.trace_flags().to_u8()));
        put_bytes(out, 13, body);
    }
    put_varint_field(out, 14, u64::from(span.links.dropped_count));
    let (message, code): (&str, u64) = match &span.status {
        Status::Unset => ("", 0),
        Status::Ok => ("", 1),
        Status::Error { description } => (description, 2),
    };
    put_tag(out, 15, LEN);
    encode_varint((string_field_len(2, message) + varint_field_len(3, code)) as u64, out);
    put_string(out, 2, message);
    put_varint_field(out, 3, code);
    put_fixed32(out, 16, flags(span.parent_span_is_remote, span.span_context.trace_flags().to_u8()));
}

fn flags(parent_is_remote: bool, trace_flags: u8) -> u32 {
    let remote = if parent_is_remote { FLAG_IS_REMOTE } else { 0 };
    u32::from(trace_flags) | FLAG_HAS_IS_REMOTE | remote
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

fn put_attributes(out: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for attribute in attributes {
        put_key_value(out, field, attribute.key.as_str(), &attribute.value);
    }
}

/// A `KeyValue` message as field `field`.
fn put_key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    let value_len = any_value_len(value);
    put_tag(out, field, LEN);
    encode_varint((string_field_len(1, key) + field_len(2, value_len)) as u64, out);
    put_string(out, 1, key);
    put_tag(out, 2, LEN);
    encode_varint(value_len as u64, out);
    put_any_value(out, value);
}

/// The body length of the `AnyValue` for `value`. The oneof field is always
/// written, default or not, so that an empty string stays a string.
fn any_value_len(value: &Value) -> usize {
    match value {
        Value::Bool(_) => 2,
        Value::I64(number) => 1 + encoded_len_varint(*number as u64),
        Value::F64(_) => 9,
        Value::String(text) => field_len(1, text.as_str().len()),
        Value::Array(array) => field_len(5, array_body_len(array)),
        // A value kind added to `opentelemetry` after this was written goes
        // out as its text.
        other => field_len(1, other.as_str().len()),
    }
}

fn array_body_len(array: &Array) -> usize {
    fn sum<T>(values: &[T], len: impl Fn(&T) -> usize) -> usize {
        values.iter().map(|value| field_len(1, len(value))).sum()
    }
    match array {
        Array::Bool(values) => sum(values, |_| 2),
        Array::I64(values) => sum(values, |number| 1 + encoded_len_varint(*number as u64)),
        Array::F64(values) => sum(values, |_| 9),
        Array::String(values) => sum(values, |text| field_len(1, text.as_str().len())),
        other => {
            let text = other.to_string();
            field_len(1, field_len(1, text.len()))
        }
    }
}

fn put_any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(flag) => put_bool(out, 2, *flag),
        Value::I64(number) => put_i64(out, 3, *number),
        Value::F64(number) => put_f64(out, 4, *number),
        Value::String(text) => put_always_string(out, 1, text.as_str()),
        Value::Array(array) => {
            put_tag(out, 5, LEN);
            encode_varint(array_body_len(array) as u64, out);
            put_array(out, array);
        }
        other => put_always_string(out, 1, &other.as_str()),
    }
}

/// An `ArrayValue`'s body: each element an `AnyValue` in field 1.
fn put_array(out: &mut Vec<u8>, array: &Array) {
    fn each<T>(out: &mut Vec<u8>, values: &[T], len: impl Fn(&T) -> usize, put: impl Fn(&mut Vec<u8>, &T)) {
        for value in values {
            put_tag(out, 1, LEN);
            encode_varint(len(value) as u64, out);
            put(out, value);
        }
    }
    match array {
        Array::Bool(values) => each(out, values, |_| 2, |out, flag| put_bool(out, 2, *flag)),
        Array::I64(values) => {
            each(out, values, |number| 1 + encoded_len_varint(*number as u64), |out, number| put_i64(out, 3, *number))
        }
        Array::F64(values) => each(out, values, |_| 9, |out, number| put_f64(out, 4, *number)),
        Array::String(values) => each(
            out,
            values,
            |text: &StringValue| field_len(1, text.as_str().len()),
            |out, text| put_always_string(out, 1, text.as_str()),
        ),
        other => {
            let text = other.to_string();
            put_tag(out, 1, LEN);
            encode_varint(field_len(1, text.len()) as u64, out);
            put_always_string(out, 1, &text);
        }
    }
}

/// A base-128 varint. Written here rather than with prost's generic
/// `encode_varint` so that it inlines: it runs several times per attribute.
#[inline]
fn encode_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value & 0x7F) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[inline]
fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    encode_varint(u64::from(field << 3 | wire_type), out);
}

fn tag_len(field: u32) -> usize {
    encoded_len_varint(u64::from(field << 3))
}

/// The length of a length-delimited field whose body is `len` bytes.
fn field_len(field: u32, len: usize) -> usize {
    tag_len(field) + encoded_len_varint(len as u64) + len
}

/// A proto3 `string` field: left out when empty.
fn string_field_len(field: u32, text: &str) -> usize {
    if text.is_empty() { 0 } else { field_len(field, text.len()) }
}

fn put_string(out: &mut Vec<u8>, field: u32, text: &str) {
    if !text.is_empty() {
        put_always_string(out, field, text);
    }
}

fn put_always_string(out: &mut Vec<u8>, field: u32, text: &str) {
    put_tag(out, field, LEN);
    encode_varint(text.len() as u64, out);
    out.extend_from_slice(text.as_bytes());
}

/// A length-delimited field (`bytes`, or an embedded message's body),
/// written even when empty: an embedded message that is present stays
/// present.
fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, LEN);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn varint_field_len(field: u32, value: u64) -> usize {
    if value == 0 { 0 } else { tag_len(field) + encoded_len_varint(value) }
}

/// A proto3 integer or enum field: left out when zero.
fn put_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        put_tag(out, field, VARINT);
        encode_varint(value, out);
    }
}

fn put_fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        put_tag(out, field, FIXED64);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

fn put_fixed32(out: &mut Vec<u8>, field: u32, value: u32) {
    if value != 0 {
        put_tag(out, field, FIXED32);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// Oneof members below are written even when zero or false.
fn put_bool(out: &mut Vec<u8>, field: u32, flag: bool) {
    put_tag(out, field, VARINT);
    out.push(u8::from(flag));
}

fn put_i64(out: &mut Vec<u8>, field: u32, number: i64) {
    put_tag(out, field, VARINT);
    encode_varint(number as u64, out);
}

fn put_f64(out: &mut Vec<u8>, field: u32, number: f64) {
    put_tag(out, field, FIXED64);
    out.extend_from_slice(&number.to_le_bytes());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::trace::{Link, SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use proptest::prelude::*;
    use prost::Message as _;

    use super::*;

    /// What `opentelemetry-proto`'s own conversion makes of the same spans.
    fn reference(spans: &[SpanData], resource: &Resource) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(spans.to_vec(), &resource.into()),
        }
    }

    fn ours(spans: &[SpanData], resource: &Resource) -> ExportTraceServiceRequest {
        let mut encoder = RequestEncoder::default();
        encoder.set_resource(resource);
        let mut bytes = Vec::new();
        encoder.encode(spans, &mut bytes);
        ExportTraceServiceRequest::decode(bytes.as_slice()).expect("our bytes decode")
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::I64),
            any::<f64>().prop_filter("NaN never equals itself", |n| !n.is_nan()).prop_map(Value::F64),
            ".{0,40}".prop_map(Value::from),
            prop::collection::vec(any::<bool>(), 0..4).prop_map(|v| Value::Array(Array::Bool(v))),
            prop::collection::vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(Array::I64(v))),
            prop::collection::vec(-1e9f64..1e9, 0..4).prop_map(|v| Value::Array(Array::F64(v))),
            prop::collection::vec(".{0,8}", 0..4)
                .prop_map(|v| Value::Array(Array::String(v.into_iter().map(StringValue::from).collect()))),
        ]
    }

    fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
        prop::collection::vec(("[a-z._]{0,12}", value()), 0..6)
            .prop_map(|pairs| pairs.into_iter().map(|(key, value)| KeyValue::new(key, value)).collect())
    }

    fn time() -> impl Strategy<Value = SystemTime> {
        (0u64..4_000_000_000_000_000_000).prop_map(|nanos| UNIX_EPOCH + Duration::from_nanos(nanos))
    }

    fn context() -> impl Strategy<Value = SpanContext> {
        (1u128.., 1u64.., any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(trace, span, sampled, remote, with_state)| {
                let state = if with_state {
                    TraceState::from_key_value([("vendor", "x1")]).unwrap_or_default()
                } else {
                    TraceState::default()
                };
                let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
                SpanContext::new(TraceId::from(trace), SpanId::from(span), flags, remote, state)
            },
        )
    }

    fn span(scopes: Vec<InstrumentationScope>) -> impl Strategy<Value = SpanData> {
        let status = prop_oneof![Just(Status::Unset), Just(Status::Ok), ".{0,20}".prop_map(Status::error),];
        let kind = prop_oneof![
            Just(SpanKind::Internal),
            Just(SpanKind::Server),
            Just(SpanKind::Client),
            Just(SpanKind::Producer),
            Just(SpanKind::Consumer),
        ];
        let event = (time(), ".{0,12}", attributes(), 0u32..3);
        let link = (context(), attributes(), 0u32..3);
        (
            (context(), any::<u64>(), any::<bool>(), ".{0,24}", kind, time(), time()),
            (attributes(), 0u32..3, prop::collection::vec(event, 0..3), 0u32..3),
            (prop::collection::vec(link, 0..2), 0u32..3, status, 0..scopes.len()),
        )
            .prop_map(
                move |(
                    (span_context, parent, parent_is_remote, name, span_kind, start_time, end_time),
                    (attributes, dropped_attributes_count, events, dropped_events),
                    (links, dropped_links, status, scope),
                )| {
                    let events = events
                        .into_iter()
                        .map(|(time, name, attributes, dropped)| {
                            opentelemetry::trace::Event::new(name, time, attributes, dropped)
                        })
                        .collect();
                    let links = links
                        .into_iter()
                        .map(|(context, attributes, dropped)| Link::new(context, attributes, dropped))
                        .collect();
                    let mut span_events = SpanEvents::default();
                    span_events.events = events;
                    span_events.dropped_count = dropped_events;
                    let mut span_links = SpanLinks::default();
                    span_links.links = links;
                    span_links.dropped_count = dropped_links;
                    SpanData {
                        span_context,
                        parent_span_id: SpanId::from(parent),
                        parent_span_is_remote: parent_is_remote,
                        span_kind,
                        name: Cow::Owned(name),
                        start_time,
                        end_time,
                        attributes,
                        dropped_attributes_count,
                        events: span_events,
                        links: span_links,
                        status,
                        instrumentation_scope: scopes[scope].clone(),
                    }
                },
            )
    }

    fn scopes() -> Vec<InstrumentationScope> {
        vec![
            InstrumentationScope::builder("pocketflow-tracing").with_version("0.1.0").build(),
            InstrumentationScope::builder("other")
                .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
                .with_attributes([KeyValue::new("scope.key", 7)])
                .build(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn our_bytes_decode_to_the_reference_conversion(
            spans in prop::collection::vec(span(scopes()), 0..6),
            resource_attributes in attributes(),
        ) {
            let resource = Resource::builder_empty().with_attributes(resource_attributes).build();
            let ours = ours(&spans, &resource);
            if spans.is_empty() {
                prop_assert!(ours.resource_spans.is_empty());
            } else {
                prop_assert_eq!(ours, reference(&spans, &resource));
            }
        }
    }

    #[test]
    fn a_resource_schema_url_and_empty_values_survive() {
        let resource = Resource::builder_empty()
            .with_schema_url([KeyValue::new("service.name", "")], "https://opentelemetry.io/schemas/1.30.0")
            .build();
        let span = SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(2),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed(""),
            start_time: UNIX_EPOCH,
            end_time: UNIX_EPOCH,
            attributes: vec![KeyValue::new("empty", ""), KeyValue::new("zero", 0), KeyValue::new("no", false)],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("s").build(),
        };
        let spans = [span];
        assert_eq!(ours(&spans, &resource), reference(&spans, &resource));
    }
}

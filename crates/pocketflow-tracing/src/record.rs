//! What the layer keeps for a span while it is open, and hands to the export
//! thread when it closes: raw field values, not yet OpenTelemetry types, so
//! that the mapping runs off the application's threads.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{SpanId, TraceId};
use tracing::field::{Field, Visit};
use tracing::{Level, Metadata};

use pocketflow::telemetry::span_names;

/// The trace a span belongs to, shared by all its spans.
#[derive(Debug)]
pub(crate) struct TraceInfo {
    pub(crate) trace_id: TraceId,
    /// The root span's name: Langfuse's trace name.
    pub(crate) name: Arc<str>,
}

/// What a span is, as far as the mapping cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanRole {
    Flow,
    Node,
    Prep,
    Exec,
    Fallback,
    Post,
    Item,
    /// An LLM call recorded through [`crate::Generation`].
    Generation,
    /// Any other span inside a flow (a user's `#[instrument]` function).
    User,
}

impl SpanRole {
    pub(crate) fn of(meta: &Metadata<'_>) -> Self {
        if meta.target() == pocketflow::telemetry::TARGET {
            match meta.name() {
                span_names::FLOW => Self::Flow,
                span_names::NODE => Self::Node,
                span_names::PREP => Self::Prep,
                span_names::EXEC => Self::Exec,
                span_names::FALLBACK => Self::Fallback,
                span_names::POST => Self::Post,
                span_names::ITEM => Self::Item,
                _ => Self::User,
            }
        } else if meta.target() == crate::generation::TARGET {
            Self::Generation
        } else {
            Self::User
        }
    }

    /// The schema name (`pocketflow.span`), for the engine's spans.
    pub(crate) fn schema_name(self) -> Option<&'static str> {
        Some(match self {
            Self::Flow => span_names::FLOW,
            Self::Node => span_names::NODE,
            Self::Prep => span_names::PREP,
            Self::Exec => span_names::EXEC,
            Self::Fallback => span_names::FALLBACK,
            Self::Post => span_names::POST,
            Self::Item => span_names::ITEM,
            Self::Generation | Self::User => return None,
        })
    }
}

/// A recorded field value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldValue {
    Str(String),
    /// A string known at compile time (a lifecycle state): no allocation.
    Static(&'static str),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => f.write_str(s),
            Self::Static(s) => f.write_str(s),
            Self::I64(v) => write!(f, "{v}"),
            Self::U64(v) => write!(f, "{v}"),
            Self::F64(v) => write!(f, "{v}"),
            Self::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// Field values by name, in recording order; a later record of the same
/// field replaces the earlier value.
#[derive(Debug, Default)]
pub(crate) struct Fields(pub(crate) Vec<(&'static str, FieldValue)>);

impl Fields {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    pub(crate) fn set(&mut self, name: &'static str, value: FieldValue) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&FieldValue> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub(crate) fn str(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            FieldValue::Str(s) => Some(s),
            FieldValue::Static(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn merge(&mut self, other: Self) {
        if self.0.is_empty() {
            self.0 = other.0;
            return;
        }
        for (name, value) in other.0 {
            self.set(name, value);
        }
    }
}

/// Which fields to keep and how big they may be: the recording half of the
/// config, applied on the application's thread so that nothing is
/// serialized that would be thrown away.
#[derive(Debug, Clone)]
pub(crate) struct FieldPolicy {
    pub(crate) inputs: bool,
    pub(crate) outputs: bool,
    pub(crate) errors: bool,
    pub(crate) max_payload_bytes: usize,
}

/// Visits a span's or an event's fields into [`Fields`].
pub(crate) struct FieldRecorder<'a> {
    fields: Fields,
    /// The first field, held inline: the engine records one field at a
    /// time, which then costs no allocation here.
    first: Option<(&'static str, FieldValue)>,
    policy: &'a FieldPolicy,
}

impl<'a> FieldRecorder<'a> {
    pub(crate) fn new(policy: &'a FieldPolicy, capacity: usize) -> Self {
        Self { fields: Fields::with_capacity(capacity), first: None, policy }
    }

    fn put(&mut self, name: &'static str, value: FieldValue) {
        if self.first.is_none() && self.fields.0.is_empty() {
            self.first = Some((name, value));
            return;
        }
        if let Some((first_name, first_value)) = self.first.take() {
            self.fields.0.push((first_name, first_value));
        }
        self.fields.set(name, value);
    }

    /// Sets what was recorded into `fields` (a span's, on `record`): a lone
    /// field goes straight in, with no list built for it.
    pub(crate) fn apply_to(self, fields: &mut Fields) {
        match self.first {
            Some((name, value)) if self.fields.0.is_empty() => fields.set(name, value),
            _ => fields.merge(self.finish()),
        }
    }

    /// Everything recorded.
    pub(crate) fn finish(mut self) -> Fields {
        if let Some(first) = self.first.take() {
            self.fields.0.insert(0, first);
        }
        self.fields
    }

    fn keep(&self, field: &Field) -> bool {
        match field.name() {
            "input" => self.policy.inputs,
            "output" => self.policy.outputs,
            "error" => self.policy.errors,
            _ => true,
        }
    }

    fn cap(&self, mut text: String) -> String {
        let max = self.policy.max_payload_bytes;
        if text.len() > max {
            let total = text.len();
            let mut cut = max;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            let _ = write!(text, "…[truncated: {total} bytes]");
        }
        text
    }
}

impl Visit for FieldRecorder<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // The engine's kinds are kept as static strings: no allocation.
        if field.name() == "kind"
            && let Some(kind) = pocketflow::telemetry::KINDS.iter().find(|kind| **kind == value)
        {
            self.put("kind", FieldValue::Static(kind));
            return;
        }
        if self.keep(field) {
            let value = self.cap(value.to_owned());
            self.put(field.name(), FieldValue::Str(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.keep(field) {
            // `format!` would start from an empty buffer and grow it several
            // times for a typical JSON value.
            let mut text = String::with_capacity(128);
            let _ = write!(text, "{value:?}");
            let value = self.cap(text);
            self.put(field.name(), FieldValue::Str(value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), FieldValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field.name(), FieldValue::U64(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field.name(), FieldValue::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field.name(), FieldValue::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.keep(field) {
            let value = self.cap(value.to_string());
            self.put(field.name(), FieldValue::Str(value));
        }
    }
}

/// An event recorded on a span.
#[derive(Debug)]
pub(crate) struct RecordedEvent {
    /// The event's name: its metadata name for the engine's events
    /// (`pocketflow.retry`), else its message.
    pub(crate) name: Cow<'static, str>,
    pub(crate) time: SystemTime,
    pub(crate) level: Level,
    pub(crate) fields: Fields,
}

/// A span being recorded.
#[derive(Debug)]
pub(crate) struct SpanRecord {
    pub(crate) trace: Arc<TraceInfo>,
    pub(crate) span_id: SpanId,
    /// `SpanId::INVALID` for a root.
    pub(crate) parent_id: SpanId,
    pub(crate) role: SpanRole,
    /// The span's callsite: its name (`flow`, `exec`, `my_function`) and target.
    pub(crate) metadata: &'static Metadata<'static>,
    pub(crate) start: SystemTime,
    /// Set when the span closes.
    pub(crate) end: SystemTime,
    pub(crate) fields: Fields,
    pub(crate) events: Vec<RecordedEvent>,
    /// Lifecycle transitions, kept apart and compact: they are most of the
    /// events.
    pub(crate) lifecycle: Vec<(SystemTime, &'static str)>,
    pub(crate) dropped_events: u32,
    /// The message of the first ERROR event on a user span: tracing's
    /// convention for a failed span without an `error` field.
    pub(crate) error_event: Option<String>,
}

impl SpanRecord {
    /// Keeps `event` unless the span already holds `max_events` events
    /// (lifecycle ones included); then counts it as dropped.
    pub(crate) fn push_event(&mut self, event: RecordedEvent, max_events: usize) {
        if self.has_room(max_events) {
            self.events.push(event);
        } else {
            self.dropped_events = self.dropped_events.saturating_add(1);
        }
    }

    /// Keeps a lifecycle transition, within the same cap.
    pub(crate) fn push_lifecycle(&mut self, time: SystemTime, state: &'static str, max_events: usize) {
        if self.has_room(max_events) {
            self.lifecycle.push((time, state));
        } else {
            self.dropped_events = self.dropped_events.saturating_add(1);
        }
    }

    fn has_room(&self, max_events: usize) -> bool {
        self.events.len() + self.lifecycle.len() < max_events
    }
}

/// A closed span on its way to the exporters.
pub(crate) type FinishedSpan = SpanRecord;

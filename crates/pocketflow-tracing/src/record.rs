//! What the layer keeps for a span while it is open, and hands to the export
//! thread when it closes: raw field values, not yet OpenTelemetry types, so
//! that the mapping runs off the application's threads.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use opentelemetry::KeyValue;

use opentelemetry::trace::{SpanId, TraceId};
use tracing::field::{Field, Visit};
use tracing::{Level, Metadata};

use pocketflow::telemetry::span_names;

use crate::config::MAX_NAME_BYTES;
use crate::redact::{Redactor, TRUNCATION_MARK_END, TRUNCATION_MARK_OVER, TRUNCATION_MARK_START};

/// The trace a span belongs to, shared by all its spans: what is set once
/// at the root reaches every span through this one `Arc`, which children
/// clone anyway.
#[derive(Debug)]
pub(crate) struct TraceInfo {
    pub(crate) trace_id: TraceId,
    /// The root span's name: Langfuse's trace name.
    pub(crate) name: Arc<str>,
    /// The remote caller's context when the root continues a remote trace.
    pub(crate) remote: Option<pocketflow::TraceParent>,
    /// The run's own session, user, tags and metadata, when its root span
    /// has any; `None` (no allocation) for the common run without options.
    pub(crate) run: Option<Box<RunInfo>>,
}

/// Per-run trace attributes, as the root span recorded them (raw text: the
/// JSON of `tags` and `metadata` is read on the export thread).
#[derive(Debug, Default)]
pub(crate) struct RunInfo {
    pub(crate) session_id: Option<String>,
    pub(crate) user_id: Option<String>,
    /// A JSON array of strings.
    pub(crate) tags: Option<String>,
    /// A JSON object.
    pub(crate) metadata: Option<String>,
    /// The trace-wide attributes merged with the config's, built once by
    /// the export thread for the whole trace.
    pub(crate) attributes: OnceLock<Vec<KeyValue>>,
}

impl RunInfo {
    /// Moves the run's fields out of a root span's fields; `None` when it
    /// has none.
    pub(crate) fn take_from(fields: &mut Fields) -> Option<Box<Self>> {
        if !fields.0.iter().any(|(name, _)| matches!(*name, "session_id" | "user_id" | "tags" | "metadata")) {
            return None;
        }
        let mut run = Self::default();
        fields.0.retain_mut(|(name, value)| {
            let slot = match *name {
                "session_id" => &mut run.session_id,
                "user_id" => &mut run.user_id,
                "tags" => &mut run.tags,
                "metadata" => &mut run.metadata,
                _ => return true,
            };
            *slot = Some(std::mem::replace(value, FieldValue::Static("")).to_string());
            false
        });
        Some(Box::new(run))
    }
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
    /// Flows run together (`pocketflow::compose`).
    Composition,
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
                span_names::COMPOSITION => Self::Composition,
                _ => Self::User,
            }
        } else if meta.target() == crate::generation::TARGET {
            Self::Generation
        } else {
            Self::User
        }
    }

    /// Whether the span can be a run's root and carry its options
    /// (`session_id`, `traceparent`, `links`, `concurrent`, …).
    pub(crate) fn starts_runs(self) -> bool {
        matches!(self, Self::Flow | Self::Composition)
    }

    /// Whether the engine reports the span's lifecycle stats (`polls`, …).
    pub(crate) fn has_lifecycle(self) -> bool {
        matches!(self, Self::Flow | Self::Node | Self::Item | Self::Composition)
    }

    /// Whether the span is a phase of a flow or node, exported under its
    /// owner's name.
    pub(crate) fn is_phase(self) -> bool {
        matches!(self, Self::Prep | Self::Exec | Self::Fallback | Self::Post | Self::Item)
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
            Self::Composition => span_names::COMPOSITION,
            Self::Generation | Self::User => return None,
        })
    }
}

/// A recorded field value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldValue {
    Str(String),
    /// A name (`name`, `node`, `flow`, …), shared: a `flow` or `node`
    /// span's name is also the owner of the phase spans under it, with no
    /// copy of its own.
    Name(Arc<str>),
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
            Self::Name(s) => f.write_str(s),
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
            FieldValue::Name(s) => Some(s),
            FieldValue::Static(s) => Some(s),
            _ => None,
        }
    }

    /// The `name` field, shared: a `flow` or `node` span's owner name.
    pub(crate) fn shared_name(&self) -> Option<Arc<str>> {
        match self.get("name")? {
            FieldValue::Name(name) => Some(Arc::clone(name)),
            other => Some(Arc::from(other.to_string())),
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
///
/// With `errors` off, an `error` field is kept as an empty string: the
/// span still failed (its status stays ERROR), only the message is gone.
#[derive(Debug, Clone)]
pub(crate) struct FieldPolicy {
    pub(crate) inputs: bool,
    pub(crate) outputs: bool,
    pub(crate) errors: bool,
    pub(crate) max_payload_bytes: usize,
    /// Makes a value safe before the cap cuts it.
    pub(crate) redactor: Redactor,
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

    /// How the text of `field` is recorded.
    fn text_kind(&self, field: &Field) -> TextKind {
        match field.name() {
            "input" | "input_messages" if !self.policy.inputs => TextKind::Skip,
            "output" | "output_messages" if !self.policy.outputs => TextKind::Skip,
            "error" if !self.policy.errors => TextKind::Withheld,
            // Span, node, flow, task names: bounded on their own.
            "name" | "otel.name" | "node" | "flow" | "task" => TextKind::Name,
            // Identifiers that a cut would change or break.
            "traceparent" | "links" | "session_id" | "user_id" => TextKind::Whole,
            _ => TextKind::Payload,
        }
    }

    /// Records a text value by its kind; `text` makes it, if it is needed.
    fn put_text(&mut self, field: &Field, text: impl FnOnce() -> String) {
        let kind = self.text_kind(field);
        self.put_text_of_kind(field, kind, text);
    }

    fn put_text_of_kind(&mut self, field: &Field, kind: TextKind, text: impl FnOnce() -> String) {
        let value = match kind {
            TextKind::Skip => return,
            TextKind::Withheld => FieldValue::Static(""),
            TextKind::Name => FieldValue::Name(bounded_name(&text())),
            TextKind::Whole => FieldValue::Str(text()),
            TextKind::Payload => FieldValue::Str(self.cap(field, text())),
        };
        self.put(field.name(), value);
    }

    fn cap(&self, field: &Field, text: String) -> String {
        let total = Length::Exact(text.len());
        self.cap_prefix(field, text, total)
    }

    /// Cuts `text`, the start of a value `total` bytes long (all of it when
    /// the length is exact and equal), at the payload cap, and marks the
    /// cut with the value's length.
    fn cap_prefix(&self, field: &Field, mut text: String, total: Length) -> String {
        let max = self.policy.max_payload_bytes;
        let whole = total == Length::Exact(text.len());
        if !whole || text.len() > max {
            // Redacted before it is cut: a cut can leave a secret without
            // what marks it (its closing quote, the `@` after a password).
            text = self.policy.redactor.before_cut(field.name(), text);
            // Redaction can shorten a whole value under the cap.
            if whole && text.len() <= max {
                return text;
            }
            if text.len() > max {
                let mut cut = max;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            let _ = match total {
                Length::Exact(total) => write!(text, "{TRUNCATION_MARK_START}{total}{TRUNCATION_MARK_END}"),
                Length::Over(seen) => {
                    write!(text, "{TRUNCATION_MARK_START}{TRUNCATION_MARK_OVER}{seen}{TRUNCATION_MARK_END}")
                }
            };
        }
        text
    }

    /// Formats a payload value, keeping only what the cap can use: the
    /// first [`REDACTION_MARGIN`] bytes past the cap (so that redaction
    /// still sees what marks a secret cut at the cap). A value that writes
    /// itself in pieces (the engine's JSON past 64 KiB) is refused the rest,
    /// so a 10 MB store is neither copied nor serialized whole; its length
    /// is then known only to be over what was seen.
    fn capped_payload(&self, field: &Field, value: &dyn fmt::Debug) -> String {
        let limit = self.policy.max_payload_bytes.saturating_add(REDACTION_MARGIN);
        let mut writer = PrefixWriter { kept: String::with_capacity(128), limit, seen: 0, full: false };
        let total = match write!(writer, "{value:?}") {
            Ok(()) => Length::Exact(writer.seen),
            Err(_) => Length::Over(writer.seen),
        };
        self.cap_prefix(field, writer.kept, total)
    }
}

/// `text` cut to `max` bytes (on a character boundary) and marked as over
/// its length, when it is longer than that and a mark: a redaction after
/// the cap (a short secret replaced by `"[REDACTED]"`) can lengthen a value
/// recorded at the cap.
pub(crate) fn within(mut text: String, max: usize) -> String {
    if text.len() <= max.saturating_add(TRUNCATION_ALLOWANCE) {
        return text;
    }
    let total = text.len();
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    let _ = write!(text, "{TRUNCATION_MARK_START}{TRUNCATION_MARK_OVER}{total}{TRUNCATION_MARK_END}");
    text
}

/// Room past the cap for the truncation mark a value cut at the cap ends
/// with (`…[truncated: over N bytes]`).
const TRUNCATION_ALLOWANCE: usize = 48;

/// A value's length in bytes, as far as the recorder saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Length {
    Exact(usize),
    /// Longer than this: the value was refused the rest.
    Over(usize),
}

/// How far past the payload cap a value is kept for redaction before the
/// cut. A secret that begins before the cap and whose end marker (closing
/// quote, `@` after a URL password) lies further than this past it would be
/// cut without being recognized; no credential is that long.
const REDACTION_MARGIN: usize = 16 * 1024;

/// A `fmt::Write` that keeps the first `limit` bytes, counts what it is
/// given, and once full refuses more: a value written in one piece is
/// measured exactly, one written in many pieces is stopped early.
struct PrefixWriter {
    kept: String,
    limit: usize,
    seen: usize,
    full: bool,
}

impl fmt::Write for PrefixWriter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if self.full {
            return Err(fmt::Error);
        }
        self.seen = self.seen.saturating_add(text.len());
        let room = self.limit.saturating_sub(self.kept.len());
        if text.len() <= room {
            self.kept.push_str(text);
            self.full = self.kept.len() == self.limit;
        } else {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.kept.push_str(&text[..cut]);
            self.full = true;
        }
        Ok(())
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
        match self.text_kind(field) {
            // Only the part kept is copied.
            TextKind::Name => self.put(field.name(), FieldValue::Name(bounded_name(value))),
            kind => self.put_text_of_kind(field, kind, || value.to_owned()),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match self.text_kind(field) {
            TextKind::Payload => {
                let text = self.capped_payload(field, value);
                self.put(field.name(), FieldValue::Str(text));
            }
            kind => self.put_text_of_kind(field, kind, || {
                // `format!` would start from an empty buffer and grow it
                // several times for a typical JSON value.
                let mut text = String::with_capacity(128);
                let _ = write!(text, "{value:?}");
                text
            }),
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
        self.put_text(field, || value.to_string());
    }
}

/// How a text field is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    /// Not recorded (inputs or outputs switched off).
    Skip,
    /// An error message while error details are off: an empty string, so
    /// that the span is still known to have failed.
    Withheld,
    /// A name: cut at [`MAX_NAME_BYTES`].
    Name,
    /// Kept whole.
    Whole,
    /// Cut at the payload cap.
    Payload,
}

/// What marks a name that was cut.
const NAME_CUT: &str = "…";

/// `name`, or when it is longer than [`MAX_NAME_BYTES`] bytes its start,
/// cut on a character boundary and marked with `…`, in at most
/// [`MAX_NAME_BYTES`] bytes. Made an `Arc` at once: one allocation.
fn bounded_name(name: &str) -> Arc<str> {
    if name.len() <= MAX_NAME_BYTES {
        return Arc::from(name);
    }
    let mut cut = MAX_NAME_BYTES - NAME_CUT.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut bounded = String::with_capacity(MAX_NAME_BYTES);
    bounded.push_str(&name[..cut]);
    bounded.push_str(NAME_CUT);
    Arc::from(bounded)
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
    /// The flow or node a span belongs to: a `flow` or `node` span's own
    /// name, shared (one `Arc`) with the phase spans under it, which are
    /// exported as `<owner>.<phase>` so that 27 `exec` spans can be told
    /// apart. `None` for other spans, and for a phase outside any.
    pub(crate) owner: Option<Arc<str>>,
    /// The span's callsite: its name (`flow`, `exec`, `my_function`) and target.
    pub(crate) metadata: &'static Metadata<'static>,
    pub(crate) start: SystemTime,
    /// Set when the span closes.
    pub(crate) end: SystemTime,
    pub(crate) fields: Fields,
    pub(crate) events: Vec<RecordedEvent>,
    /// Lifecycle transitions, kept apart and compact: they are most of the
    /// events. Each is marked whether it is the first of its state or the
    /// final one (a milestone, always kept) or a repeated suspend/resume
    /// cycle (summarized past the lifecycle cap).
    pub(crate) lifecycle: Vec<LifecycleEvent>,
    /// The states seen so far, one bit per [`pocketflow::NodeState`].
    pub(crate) lifecycle_seen: u16,
    /// Events lost to the per-span event cap: real losses, unlike
    /// lifecycle cycles past the lifecycle cap, which the span's
    /// `pocketflow.lifecycle.polls` and `.suspensions` count in full.
    pub(crate) dropped_events: u32,
    /// Whether this span is the root of its trace (it may still have a
    /// remote parent).
    pub(crate) root: bool,
    /// The `error_type` of the first `pocketflow.error` or
    /// `pocketflow.async_error` event on this span (`error.type`).
    pub(crate) error_type: Option<String>,
    /// The message of the first ERROR event on a user span: tracing's
    /// convention for a failed span without an `error` field.
    pub(crate) error_event: Option<String>,
    /// What the flows of a composition started with, its input: filled as
    /// they end. `None` for other spans, and before the first flow ended.
    pub(crate) started_with: Option<Box<StartedWith>>,
    /// Failed `exec` attempts directly under this node or item: a node
    /// that recovered from them is a WARNING in Langfuse, with what went
    /// wrong. Boxed: most spans have none.
    pub(crate) failed_attempts: Option<Box<FailedAttempts>>,
}

/// The failed `exec` attempts of a node or item.
#[derive(Debug)]
pub(crate) struct FailedAttempts {
    pub(crate) count: u32,
    /// The last one's error.
    pub(crate) last_error: String,
}

/// What one heap allocation costs beyond what it holds (the allocator's
/// header and rounding), for the queue's memory estimate.
const ALLOCATION_OVERHEAD: usize = 16;

impl Fields {
    /// Roughly the memory the fields hold: their slots (as allocated) and
    /// their text. A shared name is the owner's, not counted again.
    pub(crate) fn approx_bytes(&self) -> usize {
        let slots = self.0.capacity() * std::mem::size_of::<(&'static str, FieldValue)>() + ALLOCATION_OVERHEAD;
        let text: usize = self
            .0
            .iter()
            .map(|(_, value)| match value {
                FieldValue::Str(text) => text.capacity() + ALLOCATION_OVERHEAD,
                _ => 0,
            })
            .sum();
        slots + text
    }
}

impl SpanRecord {
    /// Roughly the memory the record holds: what the span queue's byte
    /// bound counts. An estimate (allocator slack is not seen), cheap
    /// enough to take on the application's thread for every span.
    pub(crate) fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.fields.approx_bytes()
            + self.events.capacity() * std::mem::size_of::<RecordedEvent>()
            + self.events.iter().map(|event| event.name.len() + event.fields.approx_bytes()).sum::<usize>()
            + self.lifecycle.capacity() * std::mem::size_of::<LifecycleEvent>()
            + 2 * ALLOCATION_OVERHEAD
            + self.started_with.as_ref().map_or(0, |started| started.approx_bytes())
    }

    /// Counts a failed attempt under this span.
    pub(crate) fn count_failed_attempt(&mut self, error: String) {
        match &mut self.failed_attempts {
            Some(failed) => {
                failed.count = failed.count.saturating_add(1);
                failed.last_error = error;
            }
            None => self.failed_attempts = Some(Box::new(FailedAttempts { count: 1, last_error: error })),
        }
    }
}

/// The inputs of a composition's flows (and nested compositions), kept in
/// the order they started: Langfuse shows a trace's input from its root,
/// and a composition has none of its own. Bounded by the payload cap, so a
/// batch of a million flows keeps what fits and counts the rest.
#[derive(Debug, Default)]
pub(crate) struct StartedWith {
    flows: Vec<(SystemTime, Arc<str>, String)>,
    bytes: usize,
    more: u64,
}

impl StartedWith {
    /// Adds what the flow `name`, started at `start`, started with.
    pub(crate) fn push(&mut self, start: SystemTime, name: Arc<str>, input: String, max_bytes: usize) {
        let size = input.len() + name.len();
        if self.bytes.saturating_add(size) > max_bytes && !self.flows.is_empty() {
            self.more = self.more.saturating_add(1);
            return;
        }
        self.bytes = self.bytes.saturating_add(size);
        self.flows.push((start, name, input));
    }

    fn approx_bytes(&self) -> usize {
        self.bytes + self.flows.len() * 64
    }

    /// The input as JSON: `[{"flow": name, "input": value}, …]` in start
    /// order, and `{"more_flows": N}` last when some did not fit. A value
    /// that is not JSON (cut by the payload cap) is given as a string.
    pub(crate) fn to_json(&self) -> String {
        let mut flows: Vec<&(SystemTime, Arc<str>, String)> = self.flows.iter().collect();
        flows.sort_by_key(|(start, _, _)| *start);
        let mut entries: Vec<serde_json::Value> = flows
            .into_iter()
            .map(|(_, name, input)| {
                let input = serde_json::from_str(input).unwrap_or_else(|_| serde_json::Value::String(input.clone()));
                serde_json::json!({ "flow": &**name, "input": input })
            })
            .collect();
        if self.more > 0 {
            entries.push(serde_json::json!({ "more_flows": self.more }));
        }
        serde_json::Value::Array(entries).to_string()
    }
}

/// A lifecycle transition kept on a span.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LifecycleEvent {
    pub(crate) time: SystemTime,
    pub(crate) state: &'static str,
    /// The first transition to its state, or a final one: never given up
    /// for another event.
    pub(crate) milestone: bool,
}

impl SpanRecord {
    /// Keeps `event`. When the span already holds `max_events` events, a
    /// repeated lifecycle cycle makes room for it (the lifecycle counts
    /// still cover it); failing that, the event is counted as dropped.
    pub(crate) fn push_event(&mut self, event: RecordedEvent, max_events: usize) {
        if self.has_room(max_events) || self.give_up_a_cycle() {
            self.events.push(event);
        } else {
            self.dropped_events = self.dropped_events.saturating_add(1);
        }
    }

    /// Keeps a lifecycle transition: always the first of each state and
    /// the final one (`completed`, `failed`, `cancelled`), and the
    /// repeated `running`/`suspended`/`resuming` cycles while the span
    /// holds fewer than `max_lifecycle`. Cycles past that are summarized,
    /// not lost: `pocketflow.lifecycle.polls` and `.suspensions`, recorded
    /// when the run ends, count every one. So a future that suspends a
    /// million times keeps at most `max_lifecycle` plus a few milestones,
    /// and a normal run keeps all of them. All within the span's event cap.
    pub(crate) fn push_lifecycle(
        &mut self,
        time: SystemTime,
        state: &'static str,
        max_events: usize,
        max_lifecycle: usize,
    ) {
        let bit = state_bit(state);
        let first = self.lifecycle_seen & bit == 0;
        self.lifecycle_seen |= bit;
        let milestone = first || is_final_state(state);
        if !milestone && self.lifecycle.len() >= max_lifecycle {
            return;
        }
        if self.has_room(max_events) || (milestone && self.give_up_a_cycle()) {
            self.lifecycle.push(LifecycleEvent { time, state, milestone });
        } else if milestone {
            self.dropped_events = self.dropped_events.saturating_add(1);
        }
    }

    fn has_room(&self, max_events: usize) -> bool {
        self.events.len() + self.lifecycle.len() < max_events
    }

    /// Removes the latest repeated lifecycle cycle transition, if any.
    fn give_up_a_cycle(&mut self) -> bool {
        match self.lifecycle.iter().rposition(|event| !event.milestone) {
            Some(index) => {
                self.lifecycle.remove(index);
                true
            }
            None => false,
        }
    }
}

/// Whether `state` ends a run.
fn is_final_state(state: &str) -> bool {
    pocketflow::NodeState::ALL.iter().any(|end| end.is_final() && end.as_str() == state)
}

/// `state`'s bit in [`SpanRecord::lifecycle_seen`]; states the engine does
/// not name share the last bit.
fn state_bit(state: &str) -> u16 {
    let index = pocketflow::NodeState::ALL.iter().position(|known| known.as_str() == state);
    1 << index.unwrap_or(15).min(15)
}

/// A closed span on its way to the exporters.
pub(crate) type FinishedSpan = SpanRecord;

//! The span schema mapped to OpenTelemetry, with the attributes Langfuse and
//! OpenInference (Phoenix) read. Runs on the export thread.
//!
//! | engine | OpenTelemetry |
//! |---|---|
//! | `flow`/`node` span | named after the flow or node; `pocketflow.flow.*` / `pocketflow.node.*` |
//! | `composition` span | named after its `name`; `pocketflow.composition.*` |
//! | lifecycle stats | `pocketflow.lifecycle.*` |
//! | a root's run options | trace-wide (merged with the config's); on a nested flow, observation metadata |
//! | `traceparent`, `links` | the remote parent (honoured when the span started), span links |
//! | phase spans | named after their flow or node and the phase: `Classify.prep`, `Classify.exec`, `Classify.fallback`, `Classify.post`, `Classify.item` (an `exec` under an item of `Classify` is `Classify.exec`; a flow's own hooks are `<flow>.prep`/`<flow>.post`); the phase alone is `pocketflow.span` |
//! | `input`/`output` | `langfuse.observation.input/output` and `input.value`/`output.value` (JSON strings) |
//! | `error` | status ERROR with the message, and an `exception` event |
//! | root span | `langfuse.trace.name` |
//! | `node` span's `observation` | `langfuse.observation.type`, `openinference.span.kind` (the config's map by name wins) |
//! | a `Generation` | `gen_ai.*`, `llm.*` (model, token counts, cost, `llm.input_messages.N.message.*`), `langfuse.observation.model.name`, `.usage_details`, `.cost_details` |
//! | every span | trace-wide attributes, `langfuse.observation.type`, `openinference.span.kind` |
//! | a retry, timeout, async error, warning | also a zero-length child span of type `event` (Langfuse reads no span events), when spans leave the process |
//! | a composition | its input: what its flows started with |
//!
//! The full table is in `docs/span-schema.md`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanLinks};

use pocketflow::TraceParent;
use pocketflow::telemetry::event_names;

use crate::config::{MAX_NAME_BYTES, ObservationType, TraceAttributes, TracingConfig};
use crate::diagnostics;
use crate::record::{FieldValue, Fields, FinishedSpan, RecordedEvent, RunInfo, SpanRole, TraceInfo};
use crate::redact::Redactor;

/// The instrumentation scope of every span.
pub const SCOPE_NAME: &str = "pocketflow";

/// Turns finished spans into `SpanData`.
#[derive(Debug)]
pub(crate) struct Mapper {
    scope: InstrumentationScope,
    resource: Resource,
    /// The config's trace-wide attributes, on every span of a run without
    /// its own.
    trace_attributes: Vec<KeyValue>,
    /// The config's values, merged with a run's own.
    base: TraceAttributes,
    observation_types: BTreeMap<String, ObservationType>,
    redactor: Redactor,
    /// The payload cap: a redaction (`"[REDACTED]"` for a short value)
    /// can lengthen a value recorded at the cap, so the result is cut
    /// again.
    max_payload_bytes: usize,
    /// Error messages and `exception` events (`trace_errors`); off, a
    /// failed span keeps its ERROR status without a description.
    errors: bool,
    context: bool,
    concurrent: bool,
    performance: bool,
    slow_threshold: Duration,
    /// Problem events also as Langfuse event observations.
    event_observations: bool,
    /// Span ids of event observations.
    ids: RandomIdGenerator,
    /// Set once an invalid link has been reported.
    warned_link: AtomicBool,
}

impl Mapper {
    /// `event_observations`: whether some exporter wants them (the console
    /// alone does not), with the config's switch on.
    pub(crate) fn new(config: &TracingConfig, event_observations: bool) -> Self {
        let t = &config.trace;
        let metadata = t.metadata.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect();
        let trace_attributes = trace_attributes(t, t.session_id.as_deref(), t.user_id.as_deref(), &t.tags, metadata);

        let service_name = t.service_name.clone().unwrap_or_else(|| "pocketflow".to_owned());
        let mut resource = vec![
            KeyValue::new("service.name", service_name.clone()),
            KeyValue::new("openinference.project.name", service_name),
            KeyValue::new("telemetry.sdk.name", "pocketflow-tracing"),
            KeyValue::new("telemetry.sdk.language", "rust"),
            KeyValue::new("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ];
        if let Some(version) = &t.version {
            resource.push(KeyValue::new("service.version", version.clone()));
        }
        if let Some(environment) = &t.environment {
            resource.push(KeyValue::new("deployment.environment.name", environment.clone()));
        }
        for (key, value) in &t.resource {
            if key != "service.name" {
                resource.push(KeyValue::new(key.clone(), value.clone()));
            }
        }

        Self {
            scope: InstrumentationScope::builder(SCOPE_NAME).with_version(env!("CARGO_PKG_VERSION")).build(),
            resource: Resource::builder_empty().with_attributes(resource).build(),
            trace_attributes,
            base: t.clone(),
            observation_types: config.observation_types.clone(),
            redactor: Redactor::new(&config.record.redact_keys),
            max_payload_bytes: config.record.max_payload_bytes,
            errors: config.record.errors,
            context: config.record.async_context,
            concurrent: config.record.concurrent_flows,
            performance: config.record.performance_monitoring,
            slow_threshold: config.record.slow_node_threshold,
            event_observations: event_observations && config.record.event_observations,
            ids: RandomIdGenerator::default(),
            warned_link: AtomicBool::new(false),
        }
    }

    pub(crate) fn resource(&self) -> &Resource {
        &self.resource
    }

    /// Maps `record` into `out`, followed by its event observations.
    pub(crate) fn map(&self, record: FinishedSpan, out: &mut Vec<SpanData>) {
        let trace = Arc::clone(&record.trace);
        let prefix = record.owner.clone();
        let span = self.map_span(record);
        if self.event_observations {
            self.add_event_observations(&span, &trace, prefix.as_deref(), out);
        }
        out.push(span);
    }

    /// Retries, timeouts, async errors, warnings and a user's warnings and
    /// errors, each as a zero-length child span of type `event`: Langfuse
    /// shows no span events, and a point in time is what an event is.
    fn add_event_observations(&self, span: &SpanData, trace: &TraceInfo, owner: Option<&str>, out: &mut Vec<SpanData>) {
        let parent_failed = matches!(span.status, Status::Error { .. });
        for event in &span.events.events {
            let Some(short) = event_observation_kind(event) else { continue };
            let error_level =
                event.attributes.iter().any(|kv| kv.key.as_str() == "level" && kv.value.as_str() == "ERROR");
            let name = match short {
                Some(short) => Cow::Owned(format!("{}.{short}", owner.unwrap_or(&span.name))),
                None => event.name.clone(),
            };
            let mut attributes = Vec::with_capacity(event.attributes.len() + self.trace_attributes.len() + 6);
            attributes.push(KeyValue::new("langfuse.observation.type", "event"));
            attributes.push(KeyValue::new("pocketflow.span", "event"));
            attributes.push(KeyValue::new("pocketflow.event.name", event.name.clone()));
            attributes
                .push(KeyValue::new("langfuse.trace.name", Value::String(StringValue::from(Arc::clone(&trace.name)))));
            attributes.extend(self.trace_attributes_of(trace).iter().cloned());
            let level = if error_level && parent_failed { "ERROR" } else { "WARNING" };
            attributes.push(KeyValue::new("langfuse.observation.level", level));
            // Like every status message, shown only with error details on.
            if self.errors {
                attributes.push(KeyValue::new("langfuse.observation.status_message", event_message(event)));
            }
            for kv in &event.attributes {
                if !matches!(kv.key.as_str(), "level" | "message") {
                    attributes.push(KeyValue::new(
                        format!("langfuse.observation.metadata.{}", kv.key.as_str()),
                        kv.value.clone(),
                    ));
                }
            }
            out.push(SpanData {
                span_context: SpanContext::new(
                    span.span_context.trace_id(),
                    self.ids.new_span_id(),
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::default(),
                ),
                parent_span_id: span.span_context.span_id(),
                parent_span_is_remote: false,
                span_kind: SpanKind::Internal,
                name,
                start_time: event.timestamp,
                end_time: event.timestamp,
                attributes,
                dropped_attributes_count: 0,
                events: SpanEvents::default(),
                links: SpanLinks::default(),
                status: Status::Unset,
                instrumentation_scope: self.scope.clone(),
            });
        }
    }

    fn map_span(&self, record: FinishedSpan) -> SpanData {
        let end = record.end;
        let role = record.role;
        let mut fields = record.fields;
        if let Some(started_with) = &record.started_with
            && fields.get("input").is_none()
        {
            fields.set("input", FieldValue::Str(started_with.to_json()));
        }
        let mut attributes = Vec::with_capacity(fields.0.len() + self.trace_attributes.len() + 8);

        let name = span_name(role, record.metadata.name(), record.owner.as_deref(), &fields);
        let observation = self.observation_type(role, &fields, &name);
        attributes.push(KeyValue::new("langfuse.observation.type", observation.as_str()));
        attributes.push(KeyValue::new("openinference.span.kind", openinference_kind(observation)));
        attributes.push(KeyValue::new(
            "langfuse.trace.name",
            Value::String(StringValue::from(Arc::clone(&record.trace.name))),
        ));
        attributes.extend(self.trace_attributes_of(&record.trace).iter().cloned());
        if record.root
            && let Some(remote) = record.trace.remote
        {
            // Langfuse takes a span with a parent for a child; this one is
            // the root of the run's observations.
            attributes.push(KeyValue::new("langfuse.internal.as_root", true));
            if self.context {
                attributes.push(KeyValue::new("pocketflow.context.remote_parent", remote.to_string()));
            }
        }
        if let Some(schema) = role.schema_name() {
            attributes.push(KeyValue::new("pocketflow.span", schema));
        }
        if role.schema_name().is_none() {
            attributes.push(KeyValue::new("code.namespace", record.metadata.target()));
        }

        let mut error = record.error_event;
        let mut links = SpanLinks::default();
        for (key, value) in fields.0 {
            match key {
                // An absent payload (a hook that returned nothing, JSON
                // `null`) is left out rather than shown as `null`.
                "input" | "output" if is_null(&value) => {}
                // PocketFlow's default action, not a chosen one.
                "action" if is_none_action(&value) => {}
                "input" | "output" => {
                    let text = self.redacted(into_string(value));
                    let (langfuse, openinference, mime) = if key == "input" {
                        ("langfuse.observation.input", "input.value", "input.mime_type")
                    } else {
                        ("langfuse.observation.output", "output.value", "output.mime_type")
                    };
                    // The engine records JSON; other spans' values are
                    // checked (without building a value).
                    let json =
                        role.schema_name().is_some() || serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
                    let mime_type = if json { "application/json" } else { "text/plain" };
                    let shared = Arc::<str>::from(text);
                    attributes.push(KeyValue::new(langfuse, Value::String(StringValue::from(Arc::clone(&shared)))));
                    attributes.push(KeyValue::new(openinference, Value::String(StringValue::from(shared))));
                    attributes.push(KeyValue::new(mime, mime_type));
                }
                "error" => error = Some(into_string(value)),
                // The flow's graph (Mermaid), on a run's outermost flow:
                // for Jaeger as an attribute, for Langfuse as metadata.
                "graph" if role == SpanRole::Flow => {
                    let graph = Arc::<str>::from(into_string(value));
                    attributes.push(KeyValue::new(
                        "pocketflow.flow.graph",
                        Value::String(StringValue::from(Arc::clone(&graph))),
                    ));
                    attributes.push(KeyValue::new(
                        "langfuse.observation.metadata.graph",
                        Value::String(StringValue::from(graph)),
                    ));
                }
                "message" | "langfuse.observation.type" | "otel.name" => {}
                // Mapped to the observation type above.
                "observation" if role == SpanRole::Node => {}
                "input_messages" | "output_messages" if role == SpanRole::Generation => {
                    let prefix = if key == "input_messages" { "llm.input_messages" } else { "llm.output_messages" };
                    let text = self.redacted(into_string(value));
                    add_messages(&mut attributes, prefix, &text);
                }
                "links" if role.starts_runs() => links.links = self.links(&value.to_string()),
                // Honoured (or not) when the span started.
                "traceparent" if role.starts_runs() => {}
                "concurrent" if role.starts_runs() => {
                    if self.concurrent {
                        attributes.push(KeyValue::new("pocketflow.concurrent_runs", to_value(value)));
                    }
                }
                // A nested run's own options: observation-level, as the
                // trace-wide ones belong to the root.
                "session_id" | "user_id" | "tags" if role.starts_runs() => {
                    attributes.push(KeyValue::new(format!("langfuse.observation.metadata.{key}"), to_value(value)));
                }
                "metadata" if role.starts_runs() => {
                    for (key, value) in metadata_entries(&value.to_string()) {
                        attributes.push(KeyValue::new(format!("langfuse.observation.metadata.{key}"), value));
                    }
                }
                _ => attributes.push(self.field_attribute(role, key, value)),
            }
        }
        if role == SpanRole::Generation {
            add_openinference_llm(&mut attributes);
        }
        // A count only where something was lost: events past the
        // per-span cap (lifecycle cycles past theirs are in the counts).
        if record.dropped_events > 0 {
            attributes.push(KeyValue::new("pocketflow.dropped_events", i64::from(record.dropped_events)));
        }
        if let Some(error_type) = record.error_type {
            attributes.push(KeyValue::new("error.type", error_type));
        }

        // What went wrong but was got over, for the level Langfuse shows.
        let first_warning = record.events.iter().find(|e| e.level == tracing::Level::WARN).map(warning_text);
        let fell_back = record.events.iter().any(|e| e.name == "pocketflow.fallback");
        let recovered = record.failed_attempts.map(|failed| (failed.count, failed.last_error));

        let mut events = SpanEvents::default();
        events.dropped_count = record.dropped_events;
        events.events = Vec::with_capacity(record.events.len() + record.lifecycle.len() + 1);
        events.events.extend(record.lifecycle.into_iter().map(|event| {
            Event::new(
                event_names::LIFECYCLE,
                event.time,
                vec![KeyValue::new("level", "DEBUG"), KeyValue::new("state", event.state)],
                0,
            )
        }));
        events.events.extend(record.events.into_iter().map(|event| self.map_event(event)));
        if self.performance && role.has_lifecycle() {
            let duration = end.duration_since(record.start).unwrap_or_default();
            let duration_ms = duration.as_secs_f64() * 1000.0;
            attributes.push(KeyValue::new("pocketflow.duration_ms", duration_ms));
            if matches!(role, SpanRole::Flow | SpanRole::Node) && duration >= self.slow_threshold {
                attributes.push(KeyValue::new("pocketflow.slow", true));
                events.events.push(Event::new(
                    "pocketflow.slow_node",
                    end,
                    vec![
                        KeyValue::new("level", "WARN"),
                        KeyValue::new("duration_ms", duration_ms),
                        KeyValue::new("threshold_ms", self.slow_threshold.as_secs_f64() * 1000.0),
                    ],
                    0,
                ));
            }
        }
        // Lifecycle transitions and other events, in the order they happened.
        events.events.sort_by_key(|event| event.timestamp);
        let failed = error.is_some();
        let (status, error_message) = match error {
            Some(message) if self.errors => {
                // Masked once, here: with error details off it is never shown.
                let message = self.masked(message);
                events.events.push(Event::new(
                    "exception",
                    end,
                    vec![KeyValue::new("exception.message", message.clone())],
                    0,
                ));
                (Status::Error { description: Cow::Owned(message.clone()) }, Some(message))
            }
            Some(_) => (Status::Error { description: Cow::Borrowed("") }, None),
            None => (Status::Unset, None),
        };
        // Langfuse marks a whole trace failed when any observation is
        // ERROR: a failed attempt that a retry or the fallback may still
        // recover is a WARNING (its node is ERROR if it does not recover);
        // the OpenTelemetry status stays ERROR for Jaeger.
        let level = if failed {
            let level = if role == SpanRole::Exec { "WARNING" } else { "ERROR" };
            Some((level, error_message))
        } else if let Some((attempts, last)) = recovered {
            let how = if fell_back { "fell back" } else { "recovered" };
            let mut text = format!("{how} after {attempts} failed attempt{}", if attempts == 1 { "" } else { "s" });
            if self.errors {
                text.push_str(": ");
                text.push_str(&self.masked(last));
            }
            Some(("WARNING", Some(text)))
        } else {
            // A warning's message may quote an error: shown only with error
            // details on.
            first_warning.map(|text| ("WARNING", self.errors.then(|| self.masked(text))))
        };
        if let Some((level, message)) = level {
            attributes.push(KeyValue::new("langfuse.observation.level", level));
            if let Some(message) = message {
                attributes.push(KeyValue::new("langfuse.observation.status_message", message));
            }
        }

        SpanData {
            span_context: SpanContext::new(
                record.trace.trace_id,
                record.span_id,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: record.parent_id,
            parent_span_is_remote: record.root && record.trace.remote.is_some(),
            span_kind: SpanKind::Internal,
            name,
            start_time: record.start,
            end_time: end,
            attributes,
            dropped_attributes_count: 0,
            events,
            links,
            status,
            instrumentation_scope: self.scope.clone(),
        }
    }

    fn observation_type(&self, role: SpanRole, fields: &Fields, name: &str) -> ObservationType {
        if let Some(explicit) = fields.str("langfuse.observation.type").and_then(ObservationType::parse) {
            return explicit;
        }
        match role {
            SpanRole::Flow | SpanRole::Composition => {
                self.observation_types.get(name).copied().unwrap_or(ObservationType::Chain)
            }
            // The config's map by name overrides what the node declares.
            SpanRole::Node => self
                .observation_types
                .get(name)
                .copied()
                .or_else(|| fields.str("observation").and_then(ObservationType::parse))
                .unwrap_or(ObservationType::Span),
            SpanRole::Generation => ObservationType::Generation,
            _ => ObservationType::Span,
        }
    }

    fn field_attribute(&self, role: SpanRole, key: &'static str, value: FieldValue) -> KeyValue {
        let key: Cow<'static, str> = match (role, key) {
            (SpanRole::Flow, "name") => "pocketflow.flow.name".into(),
            (SpanRole::Flow, "kind") => "pocketflow.flow.kind".into(),
            (SpanRole::Node, "name") => "pocketflow.node.name".into(),
            (SpanRole::Node, "kind") => "pocketflow.node.kind".into(),
            (SpanRole::Node, "max_retries") => "pocketflow.node.max_retries".into(),
            (SpanRole::Flow | SpanRole::Node, "action") => "pocketflow.action".into(),
            (SpanRole::Flow | SpanRole::Node, "items") => "pocketflow.batch.items".into(),
            (SpanRole::Exec | SpanRole::Fallback, "attempt") => "pocketflow.attempt".into(),
            (SpanRole::Item, "index") => "pocketflow.item.index".into(),
            (SpanRole::Composition, "name") => "pocketflow.composition.name".into(),
            (SpanRole::Composition, "kind") => "pocketflow.composition.kind".into(),
            (SpanRole::Composition, "count") => "pocketflow.composition.count".into(),
            (SpanRole::Composition, "limit") => "pocketflow.composition.limit".into(),
            (SpanRole::Composition, "failed") => "pocketflow.composition.failed".into(),
            (role, "polls") if role.has_lifecycle() => "pocketflow.lifecycle.polls".into(),
            (role, "suspensions") if role.has_lifecycle() => "pocketflow.lifecycle.suspensions".into(),
            (role, "running_ms") if role.has_lifecycle() => "pocketflow.lifecycle.running_ms".into(),
            (role, "suspended_ms") if role.has_lifecycle() => "pocketflow.lifecycle.suspended_ms".into(),
            _ => key.into(),
        };
        KeyValue::new(key, to_value(value))
    }

    /// The trace-wide attributes of `trace`'s spans: the config's, or,
    /// for a run with its own session, user, tags or metadata, both merged
    /// (the run's win), built once per trace.
    fn trace_attributes_of<'a>(&'a self, trace: &'a TraceInfo) -> &'a [KeyValue] {
        match &trace.run {
            None => &self.trace_attributes,
            Some(run) => run.attributes.get_or_init(|| self.merged(run)),
        }
    }

    fn merged(&self, run: &RunInfo) -> Vec<KeyValue> {
        let base = &self.base;
        let mut tags = base.tags.clone();
        if let Some(run_tags) = &run.tags {
            for tag in serde_json::from_str::<Vec<String>>(run_tags).unwrap_or_default() {
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
        let mut metadata: BTreeMap<String, Value> =
            base.metadata.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect();
        if let Some(run_metadata) = &run.metadata {
            metadata.extend(metadata_entries(run_metadata));
        }
        let session = run.session_id.as_deref().or(base.session_id.as_deref());
        let user = run.user_id.as_deref().or(base.user_id.as_deref());
        trace_attributes(base, session, user, &tags, metadata)
    }

    /// An event, with credentials masked in its text: its fields (a
    /// retry's or failure's `error`, a warning's message) and a user
    /// event's name, which is its message.
    /// A payload redacted, no longer than it was or the payload cap.
    fn redacted(&self, text: String) -> String {
        // A value cut at the cap is measured without its mark.
        let limit = crate::redact::split_truncation_mark(&text).0.len().max(self.max_payload_bytes);
        crate::record::within(self.redactor.redact_payload(text), limit)
    }

    /// Text with credentials masked, no longer than it was or the payload
    /// cap.
    fn masked(&self, text: String) -> String {
        let limit = crate::redact::split_truncation_mark(&text).0.len().max(self.max_payload_bytes);
        crate::record::within(self.redactor.mask_text(text), limit)
    }

    fn map_event(&self, event: RecordedEvent) -> Event {
        let mut attributes = Vec::with_capacity(event.fields.0.len() + 1);
        attributes.push(KeyValue::new("level", event.level.as_str()));
        for (key, value) in event.fields.0 {
            let value = match value {
                FieldValue::Str(text) => FieldValue::Str(self.masked(text)),
                FieldValue::Name(text) => FieldValue::Str(self.masked(text.to_string())),
                other => other,
            };
            attributes.push(KeyValue::new(key, to_value(value)));
        }
        let name = match event.name {
            Cow::Owned(message) => Cow::Owned(self.masked(message)),
            borrowed => borrowed,
        };
        Event::new(name, event.time, attributes, 0)
    }

    /// Span links from space-separated `traceparent`s; an invalid one is
    /// skipped and reported once.
    fn links(&self, text: &str) -> Vec<Link> {
        let mut links = Vec::new();
        for item in text.split_whitespace() {
            match item.parse::<TraceParent>() {
                Ok(parent) => links.push(Link::with_context(remote_context(parent))),
                Err(error) => {
                    diagnostics::report_once(
                        &self.warned_link,
                        "invalid_link",
                        &format!("{error}; the link is skipped (reported once)"),
                    );
                }
            }
        }
        links
    }
}

/// The trace-wide attributes Langfuse reads on every span.
fn trace_attributes(
    t: &TraceAttributes,
    session: Option<&str>,
    user: Option<&str>,
    tags: &[String],
    metadata: BTreeMap<String, Value>,
) -> Vec<KeyValue> {
    let mut attributes = Vec::new();
    let mut push = |key: &'static str, value: &str| {
        attributes.push(KeyValue::new(key, Value::String(StringValue::from(Arc::<str>::from(value)))));
    };
    if let Some(session) = session {
        push("langfuse.session.id", session);
        push("session.id", session);
    }
    if let Some(user) = user {
        push("langfuse.user.id", user);
        push("user.id", user);
    }
    if let Some(environment) = &t.environment {
        push("langfuse.environment", environment);
    }
    if let Some(release) = &t.release {
        push("langfuse.release", release);
    }
    if let Some(version) = &t.version {
        push("langfuse.version", version);
    }
    if !tags.is_empty() {
        let tags = tags.iter().map(|tag| StringValue::from(tag.clone())).collect();
        attributes.push(KeyValue::new("langfuse.trace.tags", Value::Array(opentelemetry::Array::String(tags))));
    }
    for (key, value) in metadata {
        attributes.push(KeyValue::new(format!("langfuse.trace.metadata.{key}"), value));
    }
    attributes
}

/// The entries of a JSON object as attribute values: strings, numbers and
/// booleans as they are, anything else as its JSON text. Not an object:
/// nothing.
fn metadata_entries(json: &str) -> Vec<(String, Value)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    map.into_iter()
        .map(|(key, value)| {
            let value = match value {
                serde_json::Value::String(s) => Value::from(s),
                serde_json::Value::Bool(b) => Value::Bool(b),
                serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => Value::I64(i),
                    (None, Some(f)) => Value::F64(f),
                    (None, None) => Value::from(n.to_string()),
                },
                other => Value::from(other.to_string()),
            };
            (key, value)
        })
        .collect()
}

/// A remote span's context, for a span link.
fn remote_context(parent: TraceParent) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(parent.trace_id()),
        SpanId::from_bytes(parent.span_id()),
        TraceFlags::new(parent.flags()),
        true,
        TraceState::default(),
    )
}

/// A span's exported name: a flow's, node's, composition's or generation's
/// own name; a phase's prefixed with its flow's or node's (`Classify.exec`),
/// so that Langfuse's list of observations and Jaeger's list of operations
/// tell one node's phases from another's (the phase alone is the
/// `pocketflow.span` attribute); any other span's as it was opened.
fn span_name(role: SpanRole, meta_name: &'static str, owner: Option<&str>, fields: &Fields) -> Cow<'static, str> {
    if let Some(name) = fields.str("otel.name") {
        return Cow::Owned(name.to_owned());
    }
    match role {
        SpanRole::Flow | SpanRole::Node | SpanRole::Composition | SpanRole::Generation => match fields.str("name") {
            Some(name) => Cow::Owned(name.to_owned()),
            None => Cow::Borrowed(meta_name),
        },
        _ if role.is_phase() => match owner {
            Some(owner) => Cow::Owned(phase_name(owner, meta_name)),
            None => Cow::Borrowed(meta_name),
        },
        _ => Cow::Borrowed(meta_name),
    }
}

/// `<owner>.<phase>`, within [`MAX_NAME_BYTES`]: an owner too long for it
/// is cut on a character boundary and marked, so that the phase still shows.
fn phase_name(owner: &str, phase: &str) -> String {
    const CUT: &str = "…";
    let mut name = String::with_capacity((owner.len() + 1 + phase.len()).min(MAX_NAME_BYTES));
    if owner.len() + 1 + phase.len() <= MAX_NAME_BYTES {
        name.push_str(owner);
    } else {
        // An owner already cut keeps one mark.
        let owner = owner.strip_suffix(CUT).unwrap_or(owner);
        let mut cut = MAX_NAME_BYTES.saturating_sub(1 + phase.len() + CUT.len()).min(owner.len());
        while !owner.is_char_boundary(cut) {
            cut -= 1;
        }
        name.push_str(&owner[..cut]);
        name.push_str(CUT);
    }
    name.push('.');
    name.push_str(phase);
    name
}

/// OpenInference's span kind for an observation type
/// (`openinference.span.kind`), so that Phoenix reads the trace the way
/// Langfuse does. OpenInference has no plain span; `CHAIN` is what other
/// instrumentations use for it.
fn openinference_kind(observation: ObservationType) -> &'static str {
    match observation {
        ObservationType::Agent => "AGENT",
        ObservationType::Tool => "TOOL",
        ObservationType::Generation => "LLM",
        ObservationType::Retriever => "RETRIEVER",
        ObservationType::Embedding => "EMBEDDING",
        ObservationType::Evaluator => "EVALUATOR",
        ObservationType::Guardrail => "GUARDRAIL",
        // Span, Chain, and any kind added later.
        _ => "CHAIN",
    }
}

fn is_null(value: &FieldValue) -> bool {
    matches!(value, FieldValue::Str(text) if text.trim() == "null")
}

fn is_none_action(value: &FieldValue) -> bool {
    match value {
        FieldValue::Str(text) => text == "None",
        FieldValue::Static(text) => *text == "None",
        _ => false,
    }
}

/// Whether `event` becomes an event observation, and its kind for the
/// name (`retry`, `timeout`, …); `Some(None)` for a user's event, named by
/// its message.
fn event_observation_kind(event: &Event) -> Option<Option<&'static str>> {
    match &*event.name {
        event_names::RETRY => Some(Some("retry")),
        event_names::TIMEOUT => Some(Some("timeout")),
        event_names::ASYNC_ERROR => Some(Some("async_error")),
        event_names::WARNING => Some(Some("warning")),
        // The engine's own others: a failed span is its own ERROR
        // observation, a fallback has its span, lifecycle and context are
        // not problems.
        name if name.starts_with("pocketflow.") || name == "exception" => None,
        _ => {
            let level = event.attributes.iter().find(|kv| kv.key.as_str() == "level")?;
            matches!(&*level.value.as_str(), "WARN" | "ERROR").then_some(None)
        }
    }
}

/// An event observation's status message: the event's message, with its
/// `error` when it has one.
fn event_message(event: &Event) -> String {
    let field =
        |key: &str| event.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.as_str().into_owned());
    let message = field("message").unwrap_or_else(|| event.name.to_string());
    match field("error").filter(|error| !error.is_empty()) {
        Some(error) => format!("{message}: {error}"),
        None => message,
    }
}

/// A warning event's text: its `message` field, else its name (a user
/// event's name is its message).
fn warning_text(event: &RecordedEvent) -> String {
    match event.fields.str("message") {
        Some(message) => message.to_owned(),
        None if event.name == "pocketflow.fallback" => "fell back".to_owned(),
        None => event.name.to_string(),
    }
}

fn into_string(value: FieldValue) -> String {
    match value {
        FieldValue::Str(s) => s,
        FieldValue::Name(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn to_value(value: FieldValue) -> Value {
    match value {
        FieldValue::Str(s) => Value::from(s),
        FieldValue::Name(s) => Value::String(StringValue::from(s)),
        FieldValue::Static(s) => Value::from(s),
        FieldValue::I64(v) => Value::I64(v),
        FieldValue::U64(v) => i64::try_from(v).map_or_else(|_| Value::from(v.to_string()), Value::I64),
        FieldValue::F64(v) => Value::F64(v),
        FieldValue::Bool(v) => Value::Bool(v),
    }
}

/// Messages recorded as a JSON array of `{"role", "content"}` objects, as
/// OpenInference's flattened `{prefix}.{i}.message.role` / `.content`, which
/// Phoenix shows as the LLM span's messages. Text that is not such an array
/// (cut by the payload cap) adds nothing: `input`/`output` still hold it.
fn add_messages(attributes: &mut Vec<KeyValue>, prefix: &str, text: &str) {
    let Ok(serde_json::Value::Array(messages)) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    for (i, message) in messages.into_iter().enumerate() {
        let serde_json::Value::Object(mut message) = message else { continue };
        for part in ["role", "content"] {
            match message.remove(part) {
                Some(serde_json::Value::String(value)) => {
                    attributes.push(KeyValue::new(format!("{prefix}.{i}.message.{part}"), value));
                }
                Some(serde_json::Value::Null) | None => {}
                Some(other) => {
                    attributes.push(KeyValue::new(format!("{prefix}.{i}.message.{part}"), other.to_string()))
                }
            }
        }
    }
}

/// Phoenix reads OpenInference's names for model and token counts.
fn add_openinference_llm(attributes: &mut Vec<KeyValue>) {
    let find = |key: &str| attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone());
    let mut extra = Vec::new();
    if let Some(model) = find("gen_ai.response.model").or_else(|| find("gen_ai.request.model")) {
        extra.push(KeyValue::new("llm.model_name", model));
    }
    if let Some(provider) = find("gen_ai.provider.name") {
        extra.push(KeyValue::new("llm.provider", provider));
    }
    if let Some(tokens) = find("gen_ai.usage.input_tokens") {
        extra.push(KeyValue::new("llm.token_count.prompt", tokens));
    }
    if let Some(tokens) = find("gen_ai.usage.output_tokens") {
        extra.push(KeyValue::new("llm.token_count.completion", tokens));
    }
    if find("langfuse.observation.model.name").is_none()
        && let Some(model) = find("gen_ai.response.model").or_else(|| find("gen_ai.request.model"))
    {
        extra.push(KeyValue::new("langfuse.observation.model.name", model));
    }
    attributes.extend(extra);
}

//! The span schema mapped to OpenTelemetry, with the attributes Langfuse and
//! OpenInference (Phoenix) read. Runs on the export thread.
//!
//! | engine | OpenTelemetry |
//! |---|---|
//! | `flow`/`node` span | named after the flow or node; `pocketflow.flow.*` / `pocketflow.node.*` |
//! | phase spans | named `prep`, `exec`, `fallback`, `post`, `item` |
//! | `input`/`output` | `langfuse.observation.input/output` and `input.value`/`output.value` (JSON strings) |
//! | `error` | status ERROR with the message, and an `exception` event |
//! | root span | `langfuse.trace.name` |
//! | every span | trace-wide attributes, `langfuse.observation.type`, `openinference.span.kind` |
//!
//! The full table is in `docs/span-schema.md`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use opentelemetry::trace::{Event, SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use pocketflow::telemetry::event_names;

use crate::config::{ObservationType, TracingConfig};
use crate::record::{FieldValue, Fields, FinishedSpan, RecordedEvent, SpanRole};

/// The instrumentation scope of every span.
pub const SCOPE_NAME: &str = "pocketflow";

const REDACTED: &str = "[REDACTED]";

/// Turns finished spans into `SpanData`.
#[derive(Debug)]
pub(crate) struct Mapper {
    scope: InstrumentationScope,
    resource: Resource,
    trace_attributes: Vec<KeyValue>,
    observation_types: BTreeMap<String, ObservationType>,
    redact_keys: Vec<String>,
}

impl Mapper {
    pub(crate) fn new(config: &TracingConfig) -> Self {
        let t = &config.trace;
        let mut trace_attributes = Vec::new();
        let mut push = |key: &'static str, value: &str| {
            trace_attributes.push(KeyValue::new(key, Value::String(StringValue::from(Arc::<str>::from(value)))));
        };
        if let Some(session) = &t.session_id {
            push("langfuse.session.id", session);
            push("session.id", session);
        }
        if let Some(user) = &t.user_id {
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
        if !t.tags.is_empty() {
            let tags = t.tags.iter().map(|tag| StringValue::from(tag.clone())).collect();
            trace_attributes
                .push(KeyValue::new("langfuse.trace.tags", Value::Array(opentelemetry::Array::String(tags))));
        }
        for (key, value) in &t.metadata {
            trace_attributes.push(KeyValue::new(format!("langfuse.trace.metadata.{key}"), value.clone()));
        }

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
            observation_types: config.observation_types.clone(),
            redact_keys: config.record.redact_keys.iter().map(|k| k.to_lowercase()).collect(),
        }
    }

    pub(crate) fn resource(&self) -> &Resource {
        &self.resource
    }

    pub(crate) fn map(&self, record: FinishedSpan) -> SpanData {
        let end = record.end;
        let role = record.role;
        let fields = record.fields;
        let mut attributes = Vec::with_capacity(fields.0.len() + self.trace_attributes.len() + 8);

        let name = span_name(role, record.metadata.name(), &fields);
        let observation = self.observation_type(role, &fields, &name);
        attributes.push(KeyValue::new("langfuse.observation.type", observation.as_str()));
        attributes.push(KeyValue::new("openinference.span.kind", observation.openinference_kind()));
        attributes.push(KeyValue::new(
            "langfuse.trace.name",
            Value::String(StringValue::from(Arc::clone(&record.trace.name))),
        ));
        attributes.extend(self.trace_attributes.iter().cloned());
        if let Some(schema) = role.schema_name() {
            attributes.push(KeyValue::new("pocketflow.span", schema));
        }
        if role.schema_name().is_none() {
            attributes.push(KeyValue::new("code.namespace", record.metadata.target()));
        }

        let mut error = record.error_event;
        for (key, value) in fields.0 {
            match key {
                "input" | "output" => {
                    let text = self.redact(into_string(value));
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
                "error" => error = Some(value.to_string()),
                "message" | "langfuse.observation.type" | "otel.name" => {}
                _ => attributes.push(self.field_attribute(role, key, value)),
            }
        }
        if role == SpanRole::Generation {
            add_openinference_llm(&mut attributes);
        }

        let mut events = SpanEvents::default();
        events.dropped_count = record.dropped_events;
        events.events = Vec::with_capacity(record.events.len() + record.lifecycle.len() + 1);
        events.events.extend(record.lifecycle.into_iter().map(|(time, state)| {
            Event::new(
                event_names::LIFECYCLE,
                time,
                vec![KeyValue::new("level", "DEBUG"), KeyValue::new("state", state)],
                0,
            )
        }));
        events.events.extend(record.events.into_iter().map(map_event));
        // Lifecycle transitions and other events, in the order they happened.
        events.events.sort_by_key(|event| event.timestamp);
        let status = match error {
            Some(message) => {
                events.events.push(Event::new(
                    "exception",
                    end,
                    vec![KeyValue::new("exception.message", message.clone())],
                    0,
                ));
                Status::Error { description: Cow::Owned(message) }
            }
            None => Status::Unset,
        };

        SpanData {
            span_context: SpanContext::new(
                record.trace.trace_id,
                record.span_id,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: record.parent_id,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name,
            start_time: record.start,
            end_time: end,
            attributes,
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        }
    }

    fn observation_type(&self, role: SpanRole, fields: &Fields, name: &str) -> ObservationType {
        if let Some(explicit) = fields.str("langfuse.observation.type").and_then(ObservationType::parse) {
            return explicit;
        }
        match role {
            SpanRole::Flow => self.observation_types.get(name).copied().unwrap_or(ObservationType::Chain),
            SpanRole::Node => self.observation_types.get(name).copied().unwrap_or(ObservationType::Span),
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
            (SpanRole::Exec | SpanRole::Fallback, "attempt") => "pocketflow.attempt".into(),
            (SpanRole::Item, "index") => "pocketflow.item.index".into(),
            _ => key.into(),
        };
        KeyValue::new(key, to_value(value))
    }

    /// Replaces the values of sensitive keys in a JSON payload.
    fn redact(&self, text: String) -> String {
        if self.redact_keys.is_empty() {
            return text;
        }
        if !mentions_key(&text, &self.redact_keys) {
            return text;
        }
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(mut value) => {
                redact_value(&mut value, &self.redact_keys);
                serde_json::to_string(&value).unwrap_or(text)
            }
            // Cut by the size cap (or not JSON at all): redact `"key": value`
            // pairs in the text itself.
            Err(_) => redact_text(&text, &self.redact_keys),
        }
    }
}

/// Replaces the value after each `"key":` whose key is sensitive, in text
/// that is not (or no longer) valid JSON. A string value is replaced up to
/// its closing quote (or the end of the text), a scalar up to the next `,`
/// or `}`.
fn redact_text(text: &str, keys: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let after_quote = &rest[start + 1..];
        let Some(end) = after_quote.find('"') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = &after_quote[..end];
        let after_key = &after_quote[end + 1..];
        out.push('"');
        out.push_str(key);
        out.push('"');
        let trimmed = after_key.trim_start();
        if keys.iter().any(|k| k.eq_ignore_ascii_case(key)) && trimmed.starts_with(':') {
            let value = trimmed[1..].trim_start();
            out.push_str(":\"");
            out.push_str(REDACTED);
            out.push('"');
            rest = skip_value(value);
        } else {
            rest = after_key;
        }
    }
    out.push_str(rest);
    out
}

/// The text after the JSON value at the start of `value` (a string or a
/// scalar), or an empty string when it runs to the end.
fn skip_value(value: &str) -> &str {
    if let Some(body) = value.strip_prefix('"') {
        let mut escaped = false;
        for (index, c) in body.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => return &body[index + 1..],
                _ => escaped = false,
            }
        }
        ""
    } else {
        value.find([',', '}']).map_or("", |end| &value[end..])
    }
}

/// Whether a quoted string in `text` (a JSON key, or a value) equals one of
/// `keys`, ignoring ASCII case: one pass, and most payloads mention none.
fn mentions_key(text: &str, keys: &[String]) -> bool {
    let bytes = text.as_bytes();
    let mut rest = bytes;
    while let Some(open) = rest.iter().position(|&b| b == b'"') {
        let after = &rest[open + 1..];
        let Some(close) = after.iter().position(|&b| b == b'"') else { return false };
        let word = &after[..close];
        if keys.iter().any(|key| key.len() == word.len() && key.as_bytes().eq_ignore_ascii_case(word)) {
            return true;
        }
        rest = &after[close + 1..];
    }
    false
}

fn redact_value(value: &mut serde_json::Value, keys: &[String]) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if keys.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                    *inner = serde_json::Value::String(REDACTED.to_owned());
                } else {
                    redact_value(inner, keys);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| redact_value(item, keys)),
        _ => {}
    }
}

fn span_name(role: SpanRole, meta_name: &'static str, fields: &Fields) -> Cow<'static, str> {
    if let Some(name) = fields.str("otel.name") {
        return Cow::Owned(name.to_owned());
    }
    match role {
        SpanRole::Flow | SpanRole::Node | SpanRole::Generation => match fields.str("name") {
            Some(name) => Cow::Owned(name.to_owned()),
            None => Cow::Borrowed(meta_name),
        },
        _ => Cow::Borrowed(meta_name),
    }
}

fn into_string(value: FieldValue) -> String {
    match value {
        FieldValue::Str(s) => s,
        other => other.to_string(),
    }
}

fn to_value(value: FieldValue) -> Value {
    match value {
        FieldValue::Str(s) => Value::from(s),
        FieldValue::Static(s) => Value::from(s),
        FieldValue::I64(v) => Value::I64(v),
        FieldValue::U64(v) => i64::try_from(v).map_or_else(|_| Value::from(v.to_string()), Value::I64),
        FieldValue::F64(v) => Value::F64(v),
        FieldValue::Bool(v) => Value::Bool(v),
    }
}

fn map_event(event: RecordedEvent) -> Event {
    let mut attributes = Vec::with_capacity(event.fields.0.len() + 1);
    attributes.push(KeyValue::new("level", event.level.as_str()));
    for (key, value) in event.fields.0 {
        attributes.push(KeyValue::new(key, to_value(value)));
    }
    Event::new(event.name, event.time, attributes, 0)
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
    attributes.extend(extra);
}

//! The comparison of one trace as the Langfuse-contract receiver got it with
//! the same trace read back from Jaeger: whole, one root, the same
//! parentage, names, service, attributes and events. The event
//! observations (Langfuse's view of span events) are for Langfuse only: the
//! collector's Jaeger pipeline filters them out, and Jaeger shows the same
//! events as logs of their parent spans.

use std::collections::BTreeMap;

use pocketflow_test_support::otlp::{AttrValue, ReceivedSpan, ReceivedTrace};

use crate::E2eError;
use crate::jaeger::{JaegerSpan, JaegerTrace};

/// Jaeger prints ids without leading zeros in places; compare them bare.
fn bare(id: &str) -> &str {
    let trimmed = id.trim_start_matches('0');
    if trimmed.is_empty() { "0" } else { trimmed }
}

/// Whether `span` is an event observation, which only Langfuse gets.
pub(crate) fn is_event_observation(span: &ReceivedSpan) -> bool {
    span.attributes.get("pocketflow.span").and_then(AttrValue::as_str) == Some("event")
}

/// The spans of `trace` that Jaeger gets: all but the event observations.
pub(crate) fn for_jaeger(trace: &ReceivedTrace) -> Vec<&ReceivedSpan> {
    trace.spans.iter().filter(|s| !is_event_observation(s)).collect()
}

/// Checks `jaeger` against `expected`, span by span.
pub(crate) fn same_trace(expected: &ReceivedTrace, jaeger: Option<&JaegerTrace>) -> Result<(), E2eError> {
    let id = &expected.trace_id;
    let fail = |what: String| Err(E2eError::Check(format!("trace {id} in Jaeger: {what}")));
    let Some(jaeger) = jaeger else {
        return fail("not found".into());
    };
    let by_id: BTreeMap<&str, &JaegerSpan> = jaeger.spans.iter().map(|s| (bare(&s.span_id), s)).collect();
    let sent = for_jaeger(expected);
    if by_id.len() != sent.len() || jaeger.spans.len() != sent.len() {
        return fail(format!("{} span(s), {} sent (event observations left out)", jaeger.spans.len(), sent.len()));
    }
    // Each event observation's event is a log of its parent in Jaeger.
    for event in expected.spans.iter().filter(|s| is_event_observation(s)) {
        let parent = event.parent_span_id.as_deref().map(bare).and_then(|id| by_id.get(id));
        let name = event.attributes.get("pocketflow.event.name").and_then(AttrValue::as_str);
        let logged = parent.is_some_and(|parent| {
            parent.logs.iter().any(|log| log.event() == name && log.timestamp == event.start_unix_nano / 1_000)
        });
        if !logged {
            return fail(format!("event observation {:?}: no log at its time on its parent", event.name));
        }
    }
    let roots: Vec<&JaegerSpan> = jaeger.spans.iter().filter(|s| s.parent().is_none()).collect();
    if roots.len() != 1 {
        return fail(format!("{} roots (want 1)", roots.len()));
    }
    for span in sent {
        let Some(got) = by_id.get(bare(&span.span_id)) else {
            return fail(format!("span {} ({}) missing", span.span_id, span.name));
        };
        let what = |problem: String| fail(format!("span {:?} ({}): {problem}", span.name, span.span_id));
        if got.operation_name != span.name {
            return what(format!("operation name {:?}", got.operation_name));
        }
        let want_parent = span.parent_span_id.as_deref().map(bare);
        if got.parent().map(bare) != want_parent {
            return what(format!("parent {:?}, sent {want_parent:?}", got.parent()));
        }
        if let Some(parent) = want_parent
            && !by_id.contains_key(parent)
        {
            return what(format!("parent {parent} is not in the trace"));
        }
        let service = jaeger.processes.get(&got.process_id).map(|p| p.service_name.as_str());
        let want_service = span.resource.get("service.name").and_then(AttrValue::as_str);
        if service != want_service {
            return what(format!("service {service:?}, sent {want_service:?}"));
        }
        same_attributes(span, got).or_else(what)?;
        same_events(span, got).or_else(what)?;
    }
    Ok(())
}

/// Every scalar attribute sent is a tag with the same value.
fn same_attributes(span: &ReceivedSpan, got: &JaegerSpan) -> Result<(), String> {
    for (key, value) in &span.attributes {
        let tag = got.tag(key);
        let equal = match (value, tag) {
            (AttrValue::String(s), Some(serde_json::Value::String(t))) => s == t,
            (AttrValue::Bool(b), Some(serde_json::Value::Bool(t))) => b == t,
            (AttrValue::Int(i), Some(serde_json::Value::Number(t))) => t.as_i64() == Some(*i),
            // Jaeger prints doubles with fewer digits than Rust does.
            (AttrValue::Double(d), Some(serde_json::Value::Number(t))) => {
                t.as_f64().is_some_and(|t| (t - d).abs() <= 1e-9 * d.abs().max(1.0))
            }
            // Arrays and maps become JSON text in Jaeger; their presence is enough.
            (_, Some(_)) if !matches!(value, AttrValue::String(_) | AttrValue::Bool(_) | AttrValue::Int(_)) => true,
            _ => false,
        };
        if !equal {
            return Err(format!("attribute {key} = {value:?}, Jaeger tag {tag:?}"));
        }
    }
    Ok(())
}

/// Every event sent is a span log named by its `event` field, in order.
fn same_events(span: &ReceivedSpan, got: &JaegerSpan) -> Result<(), String> {
    let sent: Vec<&str> = span.events.iter().map(|e| e.name.as_str()).collect();
    let logged: Vec<&str> = got.logs.iter().filter_map(|log| log.event()).collect();
    let mut sent_sorted = sent.clone();
    let mut logged_sorted = logged.clone();
    sent_sorted.sort_unstable();
    logged_sorted.sort_unstable();
    if sent_sorted != logged_sorted {
        return Err(format!("events {sent:?}, Jaeger logs {logged:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::BTreeMap;

    use pocketflow_test_support::otlp::{AttrValue, ReceivedEvent, ReceivedSpan, ReceivedStatus, ReceivedTrace};

    use super::same_trace;
    use crate::jaeger::JaegerTrace;

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

    fn span(id: &str, parent: Option<&str>, name: &str) -> ReceivedSpan {
        ReceivedSpan {
            trace_id: TRACE.into(),
            span_id: id.into(),
            parent_span_id: parent.map(Into::into),
            name: name.into(),
            kind: 1,
            start_unix_nano: 1,
            end_unix_nano: 2,
            attributes: BTreeMap::from([
                ("pocketflow.node".to_owned(), AttrValue::String(name.into())),
                ("pocketflow.lifecycle.polls".to_owned(), AttrValue::Int(3)),
                ("pocketflow.lifecycle.running_ms".to_owned(), AttrValue::Double(15.686162999999999)),
            ]),
            resource: BTreeMap::from([("service.name".to_owned(), AttrValue::String("e2e".into()))]),
            scope_name: "pocketflow".into(),
            scope_version: String::new(),
            events: vec![ReceivedEvent {
                name: "pocketflow.retry".into(),
                time_unix_nano: 1,
                attributes: BTreeMap::new(),
            }],
            dropped_events_count: 0,
            dropped_attributes_count: 0,
            status: ReceivedStatus::default(),
            links: Vec::new(),
        }
    }

    fn sent() -> ReceivedTrace {
        ReceivedTrace {
            trace_id: TRACE.into(),
            spans: vec![
                span("00000000000000a1", None, "Flow"),
                span("00000000000000b2", Some("00000000000000a1"), "Flow.exec"),
            ],
        }
    }

    /// The trace as Jaeger's `/api/traces/{id}` returns it (ids without
    /// leading zeros, doubles with fewer digits, events as logs).
    fn jaeger(edit: impl FnOnce(&mut serde_json::Value)) -> JaegerTrace {
        let tags = |name: &str| {
            serde_json::json!([
                {"key": "pocketflow.node", "type": "string", "value": name},
                {"key": "pocketflow.lifecycle.polls", "type": "int64", "value": 3},
                {"key": "pocketflow.lifecycle.running_ms", "type": "float64", "value": 15.686163},
                {"key": "span.kind", "type": "string", "value": "internal"}
            ])
        };
        let logs = serde_json::json!([{"timestamp": 0, "fields": [{"key": "event", "type": "string", "value": "pocketflow.retry"}]}]);
        let mut value = serde_json::json!({
            "traceID": TRACE,
            "spans": [
                {"traceID": TRACE, "spanID": "a1", "operationName": "Flow", "references": [],
                 "tags": tags("Flow"), "logs": logs, "processID": "p1"},
                {"traceID": TRACE, "spanID": "b2", "operationName": "Flow.exec",
                 "references": [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": "a1"}],
                 "tags": tags("Flow.exec"), "logs": logs, "processID": "p1"}
            ],
            "processes": {"p1": {"serviceName": "e2e", "tags": []}}
        });
        edit(&mut value);
        serde_json::from_value(value).expect("the test's Jaeger JSON")
    }

    fn problem(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        match same_trace(&sent(), Some(&jaeger(edit))) {
            Ok(()) => panic!("the check passed a trace that differs"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn the_same_trace_passes() {
        same_trace(&sent(), Some(&jaeger(|_| {}))).expect("the same trace");
    }

    #[test]
    fn a_missing_trace_or_span_fails() {
        assert!(same_trace(&sent(), None).is_err());
        let message = problem(|t| {
            t["spans"].as_array_mut().expect("spans").pop();
        });
        assert!(message.contains("1 span(s), 2 sent"), "{message}");
    }

    #[test]
    fn a_wrong_parent_or_a_second_root_fails() {
        let message = problem(|t| t["spans"][1]["references"][0]["spanID"] = "c3".into());
        assert!(message.contains("parent"), "{message}");
        let message = problem(|t| t["spans"][1]["references"] = serde_json::json!([]));
        assert!(message.contains("2 roots"), "{message}");
    }

    #[test]
    fn a_different_name_service_attribute_or_event_fails() {
        let message = problem(|t| t["spans"][1]["operationName"] = "Flow.prep".into());
        assert!(message.contains("operation name"), "{message}");
        let message = problem(|t| t["processes"]["p1"]["serviceName"] = "other".into());
        assert!(message.contains("service"), "{message}");
        let message = problem(|t| t["spans"][0]["tags"][1]["value"] = 4.into());
        assert!(message.contains("pocketflow.lifecycle.polls"), "{message}");
        let message = problem(|t| t["spans"][0]["tags"][2]["value"] = 15.7.into());
        assert!(message.contains("running_ms"), "{message}");
        let message = problem(|t| t["spans"][0]["logs"] = serde_json::json!([]));
        assert!(message.contains("events"), "{message}");
    }
}

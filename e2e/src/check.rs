//! The comparison of one trace as the Langfuse-contract receiver got it with
//! the same trace read back from Jaeger: whole, one root, the same
//! parentage, names, service, attributes and events.

use std::collections::BTreeMap;

use pocketflow_test_support::otlp::{AttrValue, ReceivedSpan, ReceivedTrace};

use crate::E2eError;
use crate::jaeger::{JaegerSpan, JaegerTrace};

/// Jaeger prints ids without leading zeros in places; compare them bare.
fn bare(id: &str) -> &str {
    let trimmed = id.trim_start_matches('0');
    if trimmed.is_empty() { "0" } else { trimmed }
}

/// Checks `jaeger` against `expected`, span by span.
pub(crate) fn same_trace(expected: &ReceivedTrace, jaeger: Option<&JaegerTrace>) -> Result<(), E2eError> {
    let id = &expected.trace_id;
    let fail = |what: String| Err(E2eError::Check(format!("trace {id} in Jaeger: {what}")));
    let Some(jaeger) = jaeger else {
        return fail("not found".into());
    };
    let by_id: BTreeMap<&str, &JaegerSpan> = jaeger.spans.iter().map(|s| (bare(&s.span_id), s)).collect();
    if by_id.len() != expected.spans.len() || jaeger.spans.len() != expected.spans.len() {
        return fail(format!("{} span(s), {} sent", jaeger.spans.len(), expected.spans.len()));
    }
    let roots: Vec<&JaegerSpan> = jaeger.spans.iter().filter(|s| s.parent().is_none()).collect();
    if roots.len() != 1 {
        return fail(format!("{} roots (want 1)", roots.len()));
    }
    for span in &expected.spans {
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

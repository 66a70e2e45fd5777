//! [`ConsoleExporter`]: each finished trace as a readable tree, the default
//! when nothing else is configured.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Prints each trace, once its root span has finished, as a tree: names,
/// observation types, durations, status, actions, and the key events
/// (retries, fallbacks, warnings, errors).
///
/// ```text
/// trace 5b8aa5a2d2c872e8321cf37308d69df2 · TicketTriage · 162.4 ms
/// TicketTriage [chain] 162.4 ms
/// ├─ Classify [span] 0.3 ms → "default"
/// │  ├─ prep 0.0 ms
/// │  ├─ exec #0 0.1 ms
/// │  └─ post 0.0 ms
/// └─ CallModel [tool] 160.2 ms
///    ├─ exec #0 50.1 ms ✗ model timed out
///    │     ↻ retry: attempt 1 of 3 failed, next in 50 ms
///    └─ exec #1 0.1 ms
/// ```
pub struct ConsoleExporter {
    state: Mutex<ConsoleState>,
}

struct ConsoleState {
    out: Box<dyn Write + Send>,
    pending: HashMap<TraceId, Vec<SpanData>>,
    show_lifecycle: bool,
}

impl fmt::Debug for ConsoleExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleExporter").finish_non_exhaustive()
    }
}

impl ConsoleExporter {
    /// Prints to stderr, leaving stdout to the program.
    pub fn stderr() -> Self {
        Self::new(std::io::stderr())
    }

    /// Prints to `out`.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self { state: Mutex::new(ConsoleState { out: Box::new(out), pending: HashMap::new(), show_lifecycle: false }) }
    }

    /// Also prints lifecycle events (`running`, `suspended`, `resuming`, …).
    #[must_use]
    pub fn with_lifecycle(self, show: bool) -> Self {
        if let Ok(mut state) = self.state.lock() {
            state.show_lifecycle = show;
        }
        self
    }

    fn with_state(&self, f: impl FnOnce(&mut ConsoleState) -> std::io::Result<()>) -> OTelSdkResult {
        let mut state =
            self.state.lock().map_err(|_| OTelSdkError::InternalFailure("console state poisoned".into()))?;
        f(&mut state).map_err(|error| OTelSdkError::InternalFailure(format!("console write failed: {error}")))
    }
}

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.with_state(|state| {
            let mut finished = Vec::new();
            for span in batch {
                let trace_id = span.span_context.trace_id();
                let is_root = span.parent_span_id == SpanId::INVALID;
                state.pending.entry(trace_id).or_default().push(span);
                if is_root {
                    finished.push(trace_id);
                }
            }
            for trace_id in finished {
                if let Some(spans) = state.pending.remove(&trace_id) {
                    let text = render(&spans, state.show_lifecycle);
                    state.out.write_all(text.as_bytes())?;
                }
            }
            state.out.flush()
        })
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.with_state(|state| state.out.flush())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        // Traces whose root never closed (a span held past the run) are
        // printed as they are rather than lost.
        self.with_state(|state| {
            let pending: Vec<_> = state.pending.drain().collect();
            for (_, spans) in pending {
                let text = render(&spans, state.show_lifecycle);
                state.out.write_all(text.as_bytes())?;
            }
            state.out.flush()
        })
    }
}

/// Renders one trace (or what arrived of it) as a tree.
fn render(spans: &[SpanData], show_lifecycle: bool) -> String {
    let ids: std::collections::HashSet<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
    let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
    let mut tops = Vec::new();
    for span in spans {
        if ids.contains(&span.parent_span_id) {
            children.entry(span.parent_span_id).or_default().push(span);
        } else {
            tops.push(span);
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_time);
    }
    tops.sort_by_key(|s| s.start_time);

    let mut out = String::new();
    for top in tops {
        let partial = if top.parent_span_id == SpanId::INVALID { "" } else { " (partial: parent not recorded)" };
        let _ = writeln!(
            out,
            "trace {} · {} · {}{partial}",
            top.span_context.trace_id(),
            top.name,
            duration(top.start_time, top.end_time)
        );
        write_span(&mut out, top, &children, "", None, show_lifecycle);
    }
    out
}

fn write_span(
    out: &mut String,
    span: &SpanData,
    children: &HashMap<SpanId, Vec<&SpanData>>,
    prefix: &str,
    last: Option<bool>,
    show_lifecycle: bool,
) {
    let (branch, child_prefix) = match last {
        None => (String::new(), String::new()),
        Some(true) => (format!("{prefix}└─ "), format!("{prefix}   ")),
        Some(false) => (format!("{prefix}├─ "), format!("{prefix}│  ")),
    };
    let _ = writeln!(out, "{branch}{}", headline(span));
    let kids = children.get(&span.span_context.span_id()).map(Vec::as_slice).unwrap_or_default();
    let event_prefix = if kids.is_empty() { format!("{child_prefix}   ") } else { format!("{child_prefix}│  ") };
    for event in &span.events.events {
        if let Some(line) = event_line(event, show_lifecycle) {
            let _ = writeln!(out, "{event_prefix}{line}");
        }
    }
    for (index, kid) in kids.iter().enumerate() {
        write_span(out, kid, children, &child_prefix, Some(index + 1 == kids.len()), show_lifecycle);
    }
}

fn headline(span: &SpanData) -> String {
    let mut line = String::new();
    let text = |key: &str| text(&span.attributes, key);
    match text("pocketflow.span").as_deref() {
        Some("exec" | "fallback") => {
            let _ = write!(line, "{} #{}", span.name, text("pocketflow.attempt").unwrap_or_default());
        }
        Some("item") => {
            let _ = write!(line, "item {}", text("pocketflow.item.index").unwrap_or_default());
        }
        Some("flow" | "node" | "composition") | None => {
            let _ = write!(line, "{} [{}]", span.name, text("langfuse.observation.type").unwrap_or_default());
        }
        Some(_) => line.push_str(&span.name),
    }
    let _ = write!(line, " {}", duration(span.start_time, span.end_time));
    if let Some(action) = text("pocketflow.action")
        && action != "None"
    {
        let _ = write!(line, " → {action:?}");
    }
    if let Status::Error { description } = &span.status {
        let _ = write!(line, " ✗ {description}");
    }
    line
}

fn event_line(event: &opentelemetry::trace::Event, show_lifecycle: bool) -> Option<String> {
    let get = |key: &str| text(&event.attributes, key);
    Some(match event.name.as_ref() {
        "exception" => return None,
        "pocketflow.lifecycle" if !show_lifecycle => return None,
        "pocketflow.lifecycle" => format!("· {}", get("state").unwrap_or_default()),
        "pocketflow.retry" => format!(
            "↻ retry: attempt {} of {} failed, next in {} ms",
            get("attempt").and_then(|a| a.parse::<u64>().ok()).map_or(0, |a| a + 1),
            get("max_retries").unwrap_or_default(),
            get("wait_ms").unwrap_or_default()
        ),
        // Attempts are zero-based in the schema and one-based on screen, as in the retry line.
        "pocketflow.fallback" => format!(
            "↪ fallback after attempt {}",
            get("attempt").and_then(|a| a.parse::<u64>().ok()).map_or(0, |a| a + 1)
        ),
        "pocketflow.warning" => format!("⚠ {}", get("message").unwrap_or_default()),
        "pocketflow.error" => format!("✗ {}", get("error").unwrap_or_default()),
        "pocketflow.timeout" => format!(
            "⏱ timeout: {} after {} ms, cancelled",
            get("name").unwrap_or_default(),
            get("after_ms").unwrap_or_default()
        ),
        "pocketflow.async_error" => format!(
            "⚠ {} error ({}){}",
            get("error_type").unwrap_or_default(),
            get("severity").unwrap_or_default(),
            if get("recovered").as_deref() == Some("true") { ", recovered" } else { "" }
        ),
        "pocketflow.context" => {
            format!("⇢ context {}: {}", get("action").unwrap_or_default(), get("task").unwrap_or_default())
        }
        "pocketflow.slow_node" => format!(
            "🐢 slow: {} ms (threshold {} ms)",
            get("duration_ms").unwrap_or_default(),
            get("threshold_ms").unwrap_or_default()
        ),
        other => format!("• {other}"),
    })
}

/// The attribute `key` as text.
fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.as_str().into_owned())
}

fn duration(start: SystemTime, end: SystemTime) -> String {
    let d = end.duration_since(start).unwrap_or_default();
    if d < Duration::from_millis(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1000.0)
    } else if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

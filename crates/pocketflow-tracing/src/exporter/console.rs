//! [`ConsoleExporter`]: each finished trace as a readable tree, the default
//! when nothing else is configured.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
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
/// A trace's root is its local root: a span without a parent, or one whose
/// parent is remote (a run that continues a caller's `traceparent`). The
/// spans of unfinished traces wait in a buffer of at most 10,000 spans
/// ([`with_max_pending_spans`](Self::with_max_pending_spans)); when it is
/// full, the oldest unfinished trace is printed as it is, marked
/// `(incomplete: …)`, and the rest of it follows when its root finishes.
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

/// Spans of unfinished traces held at most, by default.
const DEFAULT_MAX_PENDING_SPANS: usize = 10_000;

struct ConsoleState {
    out: Box<dyn Write + Send>,
    /// Spans of traces whose local root has not finished yet.
    pending: HashMap<TraceId, PendingTrace>,
    /// Spans in `pending`, across traces.
    pending_spans: usize,
    max_pending_spans: usize,
    /// Numbers traces as they first arrive, to find the oldest.
    next_arrival: u64,
    show_lifecycle: bool,
}

struct PendingTrace {
    arrival: u64,
    spans: Vec<SpanData>,
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
        Self {
            state: Mutex::new(ConsoleState {
                out: Box::new(out),
                pending: HashMap::new(),
                pending_spans: 0,
                max_pending_spans: DEFAULT_MAX_PENDING_SPANS,
                next_arrival: 0,
                show_lifecycle: false,
            }),
        }
    }

    /// Holds at most `max` spans of unfinished traces (at least one);
    /// beyond that the oldest unfinished trace is printed early. Default
    /// 10,000.
    #[must_use]
    pub fn with_max_pending_spans(self, max: usize) -> Self {
        if let Ok(mut state) = self.state.lock() {
            state.max_pending_spans = max.max(1);
        }
        self
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
            for span in batch {
                // The tree shows events on their spans already.
                if text(&span.attributes, "pocketflow.span").as_deref() == Some("event") {
                    continue;
                }
                let trace_id = span.span_context.trace_id();
                let span_id = span.span_context.span_id();
                let local_root = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
                state.hold(span);
                if local_root {
                    state.print_finished(trace_id, span_id)?;
                }
                while state.pending_spans > state.max_pending_spans {
                    state.print_oldest_early()?;
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
            let mut pending: Vec<_> = state.pending.drain().map(|(_, trace)| trace).collect();
            state.pending_spans = 0;
            pending.sort_by_key(|trace| trace.arrival);
            for trace in pending {
                let text = render(&trace.spans, state.show_lifecycle, "");
                state.out.write_all(text.as_bytes())?;
            }
            state.out.flush()
        })
    }
}

impl ConsoleState {
    fn hold(&mut self, span: SpanData) {
        let trace = match self.pending.entry(span.span_context.trace_id()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let arrival = self.next_arrival;
                self.next_arrival += 1;
                entry.insert(PendingTrace { arrival, spans: Vec::new() })
            }
        };
        trace.spans.push(span);
        self.pending_spans += 1;
    }

    /// Prints the local root `root` of `trace_id` with what arrived under
    /// it. Other spans of the trace (another run continuing the same
    /// remote trace) stay.
    fn print_finished(&mut self, trace_id: TraceId, root: SpanId) -> std::io::Result<()> {
        let Some(trace) = self.pending.get_mut(&trace_id) else { return Ok(()) };
        let (tree, rest) = split_subtree(std::mem::take(&mut trace.spans), root);
        self.pending_spans = self.pending_spans.saturating_sub(tree.len());
        if rest.is_empty() {
            self.pending.remove(&trace_id);
        } else {
            trace.spans = rest;
        }
        let text = render(&tree, self.show_lifecycle, "");
        self.out.write_all(text.as_bytes())
    }

    /// Prints the unfinished trace that arrived first, as it is: the
    /// buffer is full.
    fn print_oldest_early(&mut self) -> std::io::Result<()> {
        let oldest = self.pending.iter().min_by_key(|(_, trace)| trace.arrival).map(|(id, _)| *id);
        let Some(trace) = oldest.and_then(|id| self.pending.remove(&id)) else {
            self.pending_spans = 0;
            return Ok(());
        };
        self.pending_spans = self.pending_spans.saturating_sub(trace.spans.len());
        let note = format!(
            " (incomplete: printed before its root finished, the console holds at most {} spans of unfinished traces)",
            self.max_pending_spans
        );
        let text = render(&trace.spans, self.show_lifecycle, &note);
        self.out.write_all(text.as_bytes())
    }
}

/// Splits `spans` into `root` with the spans under it, and the others.
fn split_subtree(spans: Vec<SpanData>, root: SpanId) -> (Vec<SpanData>, Vec<SpanData>) {
    let mut children: HashMap<SpanId, Vec<SpanId>> = HashMap::new();
    for span in &spans {
        children.entry(span.parent_span_id).or_default().push(span.span_context.span_id());
    }
    let mut inside = std::collections::HashSet::from([root]);
    let mut next = vec![root];
    while let Some(id) = next.pop() {
        for child in children.get(&id).into_iter().flatten() {
            if inside.insert(*child) {
                next.push(*child);
            }
        }
    }
    spans.into_iter().partition(|span| inside.contains(&span.span_context.span_id()))
}

/// Renders one trace (or what arrived of it) as a tree; `note` ends each
/// tree's header line.
fn render(spans: &[SpanData], show_lifecycle: bool, note: &str) -> String {
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
        let parent = if top.parent_span_id == SpanId::INVALID {
            String::new()
        } else if top.parent_span_is_remote {
            format!(" (continues remote span {})", top.parent_span_id)
        } else {
            " (partial: parent not recorded)".to_owned()
        };
        let _ = writeln!(
            out,
            "trace {} · {} · {}{parent}{note}",
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
    // A phase shows as the phase alone (`exec #0`, not `Classify.exec #0`):
    // the tree already shows whose it is.
    match text("pocketflow.span").as_deref() {
        Some(phase @ ("exec" | "fallback")) => {
            let _ = write!(line, "{phase} #{}", text("pocketflow.attempt").unwrap_or_default());
        }
        Some("item") => {
            let _ = write!(line, "item {}", text("pocketflow.item.index").unwrap_or_default());
        }
        Some("flow" | "node" | "composition") | None => {
            let _ = write!(line, "{} [{}]", span.name, text("langfuse.observation.type").unwrap_or_default());
        }
        Some(phase) => line.push_str(phase),
    }
    let _ = write!(line, " {}", duration(span.start_time, span.end_time));
    if let Some(action) = text("pocketflow.action")
        && action != "None"
    {
        let _ = write!(line, " → {action:?}");
    }
    if let Status::Error { description } = &span.status {
        // An empty description: error messages are not recorded.
        let _ = if description.is_empty() { write!(line, " ✗") } else { write!(line, " ✗ {description}") };
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use pocketflow::{Action, BoxError, Ctx, Flow, Node, SharedStore};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::TracingConfig;

    /// What the exporter printed.
    #[derive(Clone, Default)]
    struct Printed(Arc<Mutex<Vec<u8>>>);

    impl Write for Printed {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The console exporter, noting the most spans it held after a batch.
    #[derive(Debug)]
    struct Watched {
        console: Arc<ConsoleExporter>,
        most_pending: Arc<AtomicUsize>,
    }

    impl SpanExporter for Watched {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let result = self.console.export(batch).await;
            let pending = self.console.state.lock().unwrap().pending_spans;
            self.most_pending.fetch_max(pending, Ordering::Relaxed);
            result
        }

        fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
            self.console.shutdown_with_timeout(timeout)
        }
    }

    struct Step(&'static str);

    impl Node for Step {
        type Prep = ();
        type Exec = ();

        fn name(&self) -> std::borrow::Cow<'static, str> {
            self.0.into()
        }

        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }

        fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
            Ok(())
        }

        fn post(&self, _: &Ctx<'_>, _: &SharedStore, (): (), (): ()) -> Result<Action, BoxError> {
            Ok(Action::NONE)
        }
    }

    /// A flow of three nodes: 13 spans, its root closing last.
    #[test]
    fn pending_spans_stay_within_the_bound_and_the_oldest_trace_is_printed_early() {
        const MAX: usize = 4;
        let printed = Printed::default();
        let console = Arc::new(ConsoleExporter::new(printed.clone()).with_max_pending_spans(MAX));
        let most_pending = Arc::new(AtomicUsize::new(0));
        let exporter = Watched { console: Arc::clone(&console), most_pending: Arc::clone(&most_pending) };
        // Batches of two spans: the flow's spans arrive over several exports.
        let config = TracingConfig::builder().max_export_batch_size(2).build().unwrap();
        let (layer, guard) = config.layer_with_exporter(exporter).unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let mut flow = Flow::named("Long");
            let a = flow.start(Step("A"));
            let b = flow.add(Step("B"));
            let c = flow.add(Step("C"));
            flow.link(a >> b);
            flow.link(b >> c);
            flow.run(&SharedStore::new()).unwrap();
        });
        assert!(guard.flush());

        assert!(most_pending.load(Ordering::Relaxed) <= MAX, "held {} spans", most_pending.load(Ordering::Relaxed));
        assert_eq!(console.state.lock().unwrap().pending_spans, 0, "the root printed the rest");
        let text = String::from_utf8(printed.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("(incomplete: printed before its root finished"), "{text}");
        let spans = text.lines().filter(|line| !line.starts_with("trace ") && line.contains(" ms")).count();
        assert_eq!(spans, 13, "every span printed once:\n{text}");
        assert!(text.lines().any(|line| line.starts_with("trace ") && line.contains("· Long ·")), "{text}");
        // The root flow's graph is an attribute for the backends, not for the console.
        assert!(!text.contains("flowchart"), "{text}");
        let report = guard.shutdown();
        assert!(report.completed, "{report}");
    }
}

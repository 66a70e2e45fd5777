//! The span schema: every span and event the engine emits.
//!
//! This module is the code side of `docs/span-schema.md`; the two change
//! together (a test compares them). Values that are costly to produce (JSON
//! of inputs and outputs) are recorded through [`Json`], which serializes
//! only if a subscriber formats the field, so with no subscriber, or one
//! that ignores those fields, nothing is serialized.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use tracing::field::{Empty, display};
use tracing::{Level, Span};

use crate::error::{BoxError, ErrorType, FlowError, Severity};
use crate::lifecycle::{LifecycleStats, NodeState};
use crate::observation::Observation;
use crate::options::RunOptions;
use crate::traceparent::TraceParent;
use crate::warning::FlowWarning;

/// The target of every span and event the engine emits.
pub const TARGET: &str = "pocketflow";

/// Span names (the `name` of the span's metadata).
pub mod span_names {
    /// A flow run (any flow kind), top-level or nested.
    pub const FLOW: &str = "flow";
    /// A node run (any node kind), inside a flow or alone.
    pub const NODE: &str = "node";
    /// A `prep` hook call, of a node or of a flow with hooks.
    pub const PREP: &str = "prep";
    /// One `exec` attempt.
    pub const EXEC: &str = "exec";
    /// The `exec_fallback` call after the last failed attempt.
    pub const FALLBACK: &str = "fallback";
    /// A `post` hook call, of a node or of a flow with hooks.
    pub const POST: &str = "post";
    /// One item of a batch node, or one parameter set of a batch flow.
    pub const ITEM: &str = "item";
    /// Flows run together by `pocketflow::compose`: in parallel, nested,
    /// or as a batch.
    pub const COMPOSITION: &str = "composition";
    /// Every span name.
    pub const ALL: [&str; 8] = [FLOW, NODE, PREP, EXEC, FALLBACK, POST, ITEM, COMPOSITION];
}

/// Event names (the `name` of the event's metadata).
pub mod event_names {
    /// A lifecycle transition; field `state`.
    pub const LIFECYCLE: &str = "pocketflow.lifecycle";
    /// An exec attempt failed and another will follow.
    pub const RETRY: &str = "pocketflow.retry";
    /// A hook failed or panicked; emitted once, where it happened.
    pub const ERROR: &str = "pocketflow.error";
    /// What PocketFlow reports as a `UserWarning`.
    pub const WARNING: &str = "pocketflow.warning";
    /// A deadline passed (`with_timeout`); the work was cancelled.
    pub const TIMEOUT: &str = "pocketflow.timeout";
    /// An `ErrorHandler` handled a failure: its type, severity, and whether
    /// a registered handler recovered it.
    pub const ASYNC_ERROR: &str = "pocketflow.async_error";
    /// The run's context crossed an async boundary: a task was spawned
    /// with it, or a run continued a remote caller's trace.
    pub const CONTEXT: &str = "pocketflow.context";
    /// Every event name.
    pub const ALL: [&str; 7] = [LIFECYCLE, RETRY, ERROR, WARNING, TIMEOUT, ASYNC_ERROR, CONTEXT];
}

/// The values of the `kind` field of `flow` and `node` spans.
pub const KINDS: [&str; 10] = [
    "Flow",
    "BatchFlow",
    "AsyncFlow",
    "AsyncBatchFlow",
    "AsyncParallelBatchFlow",
    "Node",
    "BatchNode",
    "AsyncNode",
    "AsyncBatchNode",
    "AsyncParallelBatchNode",
];

/// The values of the `kind` field of `composition` spans.
pub const COMPOSITION_KINDS: [&str; 3] = ["parallel", "nested", "batch"];

/// Records a value as JSON, lazily: serialization happens only when a
/// subscriber formats the field.
pub struct Json<'a, T: ?Sized>(pub &'a T);

thread_local! {
    /// Reused for every value serialized on this thread, so recording a
    /// value costs no allocation of its own.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A buffer that grew past this for one big value is not kept.
const MAX_KEPT_BUFFER: usize = 64 * 1024;

impl<T: Serialize + ?Sized> fmt::Display for Json<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let written = BUFFER.try_with(|buffer| match buffer.try_borrow_mut() {
            Ok(mut buffer) => {
                buffer.clear();
                let written = write_json(f, &mut buffer, self.0);
                if buffer.capacity() > MAX_KEPT_BUFFER {
                    *buffer = Vec::new();
                }
                Some(written)
            }
            // A `Serialize` impl that records a value itself: nested use.
            Err(_) => None,
        });
        match written {
            Ok(Some(written)) => written,
            // Nested use, or the thread is exiting and its buffer is gone.
            _ => write_json(f, &mut Vec::new(), self.0),
        }
    }
}

/// Writes `value` as JSON to `f`.
///
/// The first [`MAX_KEPT_BUFFER`] bytes are buffered, so that a value serde
/// cannot encode is recorded as a note instead of half a value (a
/// `Display` that returns `Err` makes `to_string` panic). Past that, the
/// JSON is streamed: a subscriber that keeps only the start of a big value
/// stops the serialization by refusing more, and a 10 MB store is not
/// serialized whole for a 64 KiB cap. A value that fails to serialize after
/// that point keeps what was streamed, followed by the note.
fn write_json<T: Serialize + ?Sized>(f: &mut fmt::Formatter<'_>, buffer: &mut Vec<u8>, value: &T) -> fmt::Result {
    let mut sink = Spill { f, buffer, streaming: false, refused: false };
    let result = serde_json::to_writer(&mut sink, value);
    let Spill { f, buffer, streaming, refused } = sink;
    match result {
        Ok(()) if streaming => Ok(()),
        Ok(()) => match std::str::from_utf8(buffer) {
            Ok(json) => f.write_str(json),
            Err(err) => write!(f, "\"<not serializable: {err}>\""),
        },
        Err(_) if refused => Err(fmt::Error),
        Err(err) => write!(f, "\"<not serializable: {err}>\""),
    }
}

/// The writer [`write_json`] serializes into: a buffer, then the formatter.
struct Spill<'a, 'f> {
    f: &'a mut fmt::Formatter<'f>,
    buffer: &'a mut Vec<u8>,
    /// Past the buffer: what is written goes on to the formatter.
    streaming: bool,
    /// The formatter refused more.
    refused: bool,
}

impl Spill<'_, '_> {
    /// Past the buffer: hands what is complete to the formatter.
    #[cold]
    fn stream(&mut self) -> std::io::Result<()> {
        self.streaming = true;
        // serde_json writes whole characters, but a character split across
        // two writes would simply wait here for its end.
        let valid = match std::str::from_utf8(self.buffer) {
            Ok(text) => text.len(),
            Err(err) if err.error_len().is_none() => err.valid_up_to(),
            Err(err) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, err)),
        };
        let text = std::str::from_utf8(&self.buffer[..valid]).map_err(std::io::Error::other)?;
        if self.f.write_str(text).is_err() {
            self.refused = true;
            return Err(std::io::Error::other("the formatter took no more"));
        }
        self.buffer.drain(..valid);
        Ok(())
    }
}

impl std::io::Write for Spill<'_, '_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.write_all(bytes).map(|()| bytes.len())
    }

    /// serde_json writes every token with `write_all`: the common case,
    /// a small value still in the buffer, is one copy.
    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.buffer.extend_from_slice(bytes);
        if self.streaming || self.buffer.len() > MAX_KEPT_BUFFER { self.stream() } else { Ok(()) }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<T: Serialize + ?Sized> fmt::Debug for Json<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A span of a run that can be the outermost of its trace (`flow`,
/// `composition`): its own fields, then the run's options and in-flight
/// count (`run`), recorded at creation so a layer sees them before any
/// child span, then the lifecycle statistics, recorded when it ends.
macro_rules! run_span {
    ($name:literal, $run:expr, $($fields:tt)*) => {{
        let run: Option<(&RunOptions, Option<usize>)> = $run;
        let options = run.map(|(options, _)| options);
        tracing::info_span!(
            target: TARGET,
            $name,
            $($fields)*
            session_id = options.and_then(|o| o.session_id.as_deref()),
            user_id = options.and_then(|o| o.user_id.as_deref()),
            tags = options.filter(|o| !o.tags.is_empty()).map(|o| display(Json(&o.tags))),
            metadata = options.filter(|o| !o.metadata.is_empty()).map(|o| display(Json(&o.metadata))),
            traceparent = options.and_then(|o| o.parent).map(display),
            links = options.filter(|o| !o.links.is_empty()).map(|o| display(Links(&o.links))),
            concurrent = run.and_then(|(_, concurrent)| concurrent),
            polls = Empty,
            suspensions = Empty,
            running_ms = Empty,
            suspended_ms = Empty
        )
    }};
}

/// A `flow` span. `run` is the run's options and the number of runs in
/// flight, for the outermost flow of a run (or a nested flow with options
/// of its own).
pub(crate) fn flow_span(name: &str, kind: &'static str, run: Option<(&RunOptions, Option<usize>)>) -> Span {
    run_span!(
        "flow",
        run,
        name,
        kind,
        graph = Empty,
        items = Empty,
        input = Empty,
        output = Empty,
        action = Empty,
        error = Empty,
    )
}

/// Records the flow's graph (Mermaid) on the outermost flow span of a run.
/// Lazy: `graph` is only written out if a subscriber formats the field.
pub(crate) fn record_graph(span: &Span, graph: &impl fmt::Display) {
    if !span.is_disabled() {
        span.record("graph", display(graph));
    }
}

pub(crate) fn node_span(name: &str, kind: &'static str, observation: Observation, max_retries: usize) -> Span {
    tracing::info_span!(
        target: TARGET,
        "node",
        name,
        kind,
        observation = observation.as_str(),
        max_retries,
        items = Empty,
        input = Empty,
        output = Empty,
        action = Empty,
        error = Empty,
        polls = Empty,
        suspensions = Empty,
        running_ms = Empty,
        suspended_ms = Empty
    )
}

/// A `composition` span. `kind` is `parallel`, `nested` or `batch`;
/// `limit` the number of flows run at once (0: no limit, 1: one after
/// another). `run` is as for [`flow_span`].
pub(crate) fn composition_span(
    name: &str,
    kind: &'static str,
    count: usize,
    limit: usize,
    run: Option<(&RunOptions, Option<usize>)>,
) -> Span {
    run_span!("composition", run, name, kind, count, limit, failed = Empty, output = Empty, error = Empty,)
}

/// On a run's outermost span: reports that the run continues a remote
/// caller's trace.
pub(crate) fn continued(span: &Span, options: &RunOptions) {
    if let Some(parent) = options.parent
        && !span.is_disabled()
    {
        span.in_scope(|| context("continued", &parent.to_string()));
    }
}

/// Linked `traceparent`s, separated by spaces.
struct Links<'a>(&'a [TraceParent]);

impl fmt::Display for Links<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, link) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{link}")?;
        }
        Ok(())
    }
}

/// Records how a run spent its time, when it ends.
/// The four values go to subscribers in one record call, not four: every
/// flow, node, item and composition span pays this when it ends.
pub(crate) fn record_stats(span: &Span, stats: &LifecycleStats) {
    let Some(meta) = span.metadata() else { return };
    let fields = meta.fields();
    let (Some(polls), Some(suspensions), Some(running), Some(suspended)) =
        (fields.field("polls"), fields.field("suspensions"), fields.field("running_ms"), fields.field("suspended_ms"))
    else {
        return;
    };
    let running_ms = stats.running.as_secs_f64() * 1000.0;
    let suspended_ms = stats.suspended.as_secs_f64() * 1000.0;
    let values: [(&tracing::field::Field, Option<&dyn tracing::Value>); 4] = [
        (&polls, Some(&stats.polls)),
        (&suspensions, Some(&stats.suspensions)),
        (&running, Some(&running_ms)),
        (&suspended, Some(&suspended_ms)),
    ];
    span.record_all(&fields.value_set(&values));
}

pub(crate) fn prep_span() -> Span {
    tracing::info_span!(target: TARGET, "prep", output = Empty, error = Empty)
}

pub(crate) fn exec_span(attempt: usize) -> Span {
    tracing::info_span!(target: TARGET, "exec", attempt, input = Empty, output = Empty, error = Empty)
}

pub(crate) fn fallback_span(attempt: usize) -> Span {
    tracing::info_span!(target: TARGET, "fallback", attempt, input = Empty, output = Empty, error = Empty)
}

pub(crate) fn post_span() -> Span {
    tracing::info_span!(target: TARGET, "post", output = Empty, error = Empty)
}

pub(crate) fn item_span(index: usize) -> Span {
    tracing::info_span!(
        target: TARGET,
        "item",
        index,
        input = Empty,
        output = Empty,
        error = Empty,
        polls = Empty,
        suspensions = Empty,
        running_ms = Empty,
        suspended_ms = Empty
    )
}

/// Records how many items a batch node's `prep` returned, or how many
/// parameter sets a batch flow's `prep` returned, on its `node` or `flow`
/// span: each becomes an `item` span, so a subscriber can show progress.
pub(crate) fn record_items(span: &Span, items: usize) {
    if !span.is_disabled() {
        span.record("items", u64::try_from(items).unwrap_or(u64::MAX));
    }
}

/// Records `value` as the span's `field`, as lazy JSON.
pub(crate) fn record_json<T: Serialize + ?Sized>(span: &Span, field: &str, value: &T) {
    if !span.is_disabled() {
        span.record(field, display(Json(value)));
    }
}

pub(crate) fn record_error(span: &Span, error: &dyn fmt::Display) {
    if !span.is_disabled() {
        span.record("error", display(error));
    }
}

pub(crate) fn lifecycle(state: NodeState) {
    tracing::event!(name: "pocketflow.lifecycle", target: TARGET, Level::DEBUG, state = state.as_str());
}

/// Reports `completed`, or `failed` and the error, at the end of a run.
pub(crate) fn finished(span: &Span, error: Option<&FlowError>) {
    match error {
        None => lifecycle(NodeState::Completed),
        Some(error) => {
            record_error(span, error);
            lifecycle(NodeState::Failed);
        }
    }
}

pub(crate) fn cancelled(span: &Span) {
    record_error(span, &"cancelled");
    lifecycle(NodeState::Cancelled);
}

pub(crate) fn retry(attempt: usize, max_retries: usize, wait: Duration, error: &BoxError) {
    tracing::event!(
        name: "pocketflow.retry",
        target: TARGET,
        Level::WARN,
        attempt,
        max_retries,
        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        error = %error,
        "exec attempt failed; retrying"
    );
}

/// Reports a failure where it happened (once; enclosing spans only record
/// their `error` field).
pub(crate) fn error(error: &FlowError) {
    tracing::event!(
        name: "pocketflow.error",
        target: TARGET,
        Level::ERROR,
        node = error.node(),
        phase = error.phase().map_or("run", |p| p.as_str()),
        panic = matches!(error, FlowError::Panicked { .. }),
        error_type = error.error_type().as_str(),
        error = %error,
        "node failed"
    );
}

/// A deadline passed and the work named `name` was cancelled.
pub(crate) fn timeout(name: &str, after: Duration) {
    tracing::event!(
        name: "pocketflow.timeout",
        target: TARGET,
        Level::WARN,
        name,
        after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        "deadline passed; cancelled"
    );
}

/// What an `ErrorHandler` made of a failure.
pub(crate) struct AsyncErrorRecord<'a> {
    pub(crate) error_type: ErrorType,
    pub(crate) severity: Severity,
    pub(crate) recovered: bool,
    pub(crate) handlers: usize,
    pub(crate) node: Option<&'a str>,
    pub(crate) flow: Option<&'a str>,
    pub(crate) error: &'a dyn fmt::Display,
}

pub(crate) fn async_error(record: &AsyncErrorRecord<'_>) {
    tracing::event!(
        name: "pocketflow.async_error",
        target: TARGET,
        Level::WARN,
        error_type = record.error_type.as_str(),
        severity = record.severity.as_str(),
        recovered = record.recovered,
        handlers = record.handlers,
        node = record.node,
        flow = record.flow,
        error = %record.error,
        "async error handled"
    );
}

/// The run's context crossed an async boundary: `action` is `spawned` (a
/// task named `task` got it) or `continued` (the run continues the remote
/// trace `task`).
pub(crate) fn context(action: &'static str, task: &str) {
    tracing::event!(name: "pocketflow.context", target: TARGET, Level::DEBUG, action, task, "context propagated");
}

pub(crate) fn warning(warning: &FlowWarning) {
    tracing::event!(
        name: "pocketflow.warning",
        target: TARGET,
        Level::WARN,
        kind = warning.kind(),
        "{warning}"
    );
}

#[cfg(test)]
mod tests {
    use super::Json;

    /// Serializes as the JSON text of its inner value: formatting a `Json`
    /// while another is being formatted on the same thread.
    struct Nested(Vec<u32>);

    impl serde::Serialize for Nested {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(&Json(&self.0).to_string())
        }
    }

    #[test]
    fn json_formats_values_and_nested_values() {
        assert_eq!(Json(&("a", 1)).to_string(), r#"["a",1]"#);
        assert_eq!(Json(&Nested(vec![1, 2])).to_string(), r#""[1,2]""#);
        // The reused buffer does not leak one value into the next.
        assert_eq!(Json(&7).to_string(), "7");
    }

    #[test]
    fn a_value_serde_cannot_encode_is_recorded_as_a_note() {
        let map = std::collections::BTreeMap::from([((1, 2), "tuple keys are not JSON")]);
        assert!(Json(&map).to_string().starts_with("\"<not serializable:"));
    }

    #[test]
    fn a_value_past_the_buffer_is_streamed_whole_and_unchanged() {
        // Multi-byte characters and escapes on both sides of the 64 KiB
        // point, and a second value after it on the same thread.
        let text: String = "é\"ü\n€ab".chars().cycle().take(100_000).collect();
        let value = (text.as_str(), vec![1, 2, 3]);
        assert_eq!(Json(&value).to_string(), serde_json::to_string(&value).unwrap_or_default());
        assert_eq!(Json(&7).to_string(), "7");
    }

    /// Fails to serialize after `after` elements.
    struct FailsAfter(usize);

    impl serde::Serialize for FailsAfter {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::{Error as _, SerializeSeq as _};
            let mut seq = serializer.serialize_seq(None)?;
            for _ in 0..self.0 {
                seq.serialize_element(&"x".repeat(1000))?;
            }
            Err(S::Error::custom("the source went away"))
        }
    }

    #[test]
    fn a_value_that_fails_past_the_buffer_keeps_what_was_streamed_and_the_note() {
        let early = Json(&FailsAfter(10)).to_string();
        assert_eq!(early, "\"<not serializable: the source went away>\"");
        let late = Json(&FailsAfter(100)).to_string();
        assert!(late.starts_with("[\"xxx"), "{}", &late[..20]);
        assert!(late.ends_with("\"<not serializable: the source went away>\""), "{}", &late[late.len() - 60..]);
    }
}

//! [`PocketflowLayer`]: records the engine's spans, and any span opened
//! inside them, and hands each closed span to the export thread.
//!
//! The work done on the application's thread is kept small: ids, a
//! timestamp, the field values as they are recorded, and a non-blocking
//! send. Mapping to OpenTelemetry, redaction and export run on the export
//! thread ([`crate::pipeline`]); only a value over the size cap is redacted
//! here, before it is cut.
//!
//! Safeguards taken from `tracing-opentelemetry`'s history: field values are
//! formatted before any span's extensions are locked (a user's `Display` or
//! `Serialize` may itself emit events), nothing calls into the exporter from
//! a callback, events per span are capped, and the exporter's transport
//! crates are never recorded.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use pocketflow::telemetry::{TARGET, event_names};
use pocketflow::{NodeState, TraceParent};

use crate::config::{Sampler, TracingConfig};
use crate::diagnostics;
use crate::pipeline::SpanSink;
use crate::record::{FieldPolicy, FieldRecorder, Fields, RecordedEvent, RunInfo, SpanRecord, SpanRole, TraceInfo};
use crate::redact::Redactor;

/// Numbers layer instances, so that two of them on one registry keep
/// separate state in the same span.
static NEXT_LAYER_ID: AtomicU64 = AtomicU64::new(1);

/// The `tracing_subscriber` layer that turns flow runs into traces.
///
/// Get one from [`TracingConfig::layer`] (with its [`crate::TracingGuard`]),
/// or let [`crate::init`] install it. It composes with other layers on a
/// `Registry`:
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
///
/// # fn main() -> Result<(), pocketflow_tracing::TracingError> {
/// let (layer, guard) = pocketflow_tracing::TracingConfig::from_env()?.layer()?;
/// tracing_subscriber::registry().with(layer).init();
/// // ... run flows ...
/// let report = guard.shutdown();
/// eprintln!("{report}");
/// # Ok(()) }
/// ```
///
/// What it records: every `flow`, `node` and `composition` span of the
/// engine (one with no recorded ancestor starts a new trace, or continues
/// the remote trace its `traceparent` names), their phase
/// spans, and any other span opened inside them, such as a user's
/// `#[instrument]` function called from `exec`. Spans outside any flow are
/// not recorded, so a flow started inside, say, an HTTP request span is the
/// root of its own trace, as Langfuse needs. Events outside any flow are not
/// recorded either; that includes the engine's wiring warnings (an
/// overwritten successor), which fire while a flow is built, before any run:
/// read them from `Flow::warnings()`.
#[derive(Debug, Clone)]
pub struct PocketflowLayer {
    state: Arc<LayerState>,
}

#[derive(Debug)]
struct LayerState {
    id: u64,
    /// False when tracing is disabled: every callback returns at once.
    active: bool,
    sink: SpanSink,
    policy: FieldPolicy,
    prep: bool,
    exec: bool,
    post: bool,
    lifecycle: bool,
    /// `pocketflow.context` events.
    context: bool,
    /// `composition` spans.
    compositions: bool,
    /// `pocketflow.async_error` events and `error.type`.
    async_errors: bool,
    max_events: usize,
    max_lifecycle: usize,
    /// Set once an invalid `traceparent` has been reported.
    warned_traceparent: AtomicBool,
    sampler: Sampler,
    excluded: Vec<String>,
    excluded_first_bytes: Vec<u8>,
    ids: RandomIdGenerator,
}

/// What the layer keeps in a span's extensions.
#[derive(Debug)]
enum SpanState {
    Recorded(SpanRecord),
    /// In a trace but not recorded (a phase switched off): its children
    /// attach to the nearest recorded ancestor.
    Inside {
        trace: Arc<TraceInfo>,
        span_id: SpanId,
        /// The owner its children inherit (see [`SpanRecord::owner`]).
        owner: Option<Arc<str>>,
    },
    /// In a trace the sampler (or the remote caller) dropped; the id is
    /// kept so that the decision can be propagated.
    Unsampled {
        trace_id: TraceId,
    },
    /// Closed and handed to the export thread.
    Closed,
}

/// The states of every `PocketflowLayer` on the registry, in one span
/// extension (extensions are keyed by type, and two layers must not share a
/// slot). With one layer, `rest` stays empty and never allocates.
#[derive(Debug)]
struct SpanStates {
    first: (u64, SpanState),
    rest: Vec<(u64, SpanState)>,
}

impl SpanStates {
    fn get(&self, layer: u64) -> Option<&SpanState> {
        if self.first.0 == layer {
            return Some(&self.first.1);
        }
        self.rest.iter().find(|(id, _)| *id == layer).map(|(_, state)| state)
    }

    fn get_mut(&mut self, layer: u64) -> Option<&mut SpanState> {
        if self.first.0 == layer {
            return Some(&mut self.first.1);
        }
        self.rest.iter_mut().find(|(id, _)| *id == layer).map(|(_, state)| state)
    }
}

fn state_of<S, R>(span: &SpanRef<'_, S>, layer: u64, f: impl FnOnce(Option<&SpanState>) -> R) -> R
where
    S: for<'a> LookupSpan<'a>,
{
    let extensions = span.extensions();
    f(extensions.get::<SpanStates>().and_then(|states| states.get(layer)))
}

fn insert<S>(span: &SpanRef<'_, S>, layer: u64, state: SpanState)
where
    S: for<'a> LookupSpan<'a>,
{
    let mut extensions = span.extensions_mut();
    // One map operation when this is the only layer; another layer's states,
    // if any, are moved back in behind ours.
    if let Some(other) = extensions.replace(SpanStates { first: (layer, state), rest: Vec::new() })
        && let Some(ours) = extensions.get_mut::<SpanStates>()
    {
        ours.rest.push(other.first);
        ours.rest.extend(other.rest);
    }
}

/// Takes this layer's state out of a closing span. The emptied slot stays
/// for the registry to drop with the span: one map lookup instead of two.
fn take<S>(span: &SpanRef<'_, S>, layer: u64) -> Option<SpanState>
where
    S: for<'a> LookupSpan<'a>,
{
    let mut extensions = span.extensions_mut();
    let state = extensions.get_mut::<SpanStates>()?.get_mut(layer)?;
    Some(std::mem::replace(state, SpanState::Closed))
}

/// Where a new span hangs.
enum Parent {
    /// `owner` is the parent's, for a phase span to inherit.
    Trace {
        trace: Arc<TraceInfo>,
        span_id: SpanId,
        owner: Option<Arc<str>>,
    },
    Unsampled {
        trace_id: TraceId,
    },
    None,
}

impl PocketflowLayer {
    /// A layer feeding `sink`; `active` false makes every callback return at
    /// once (tracing disabled, or no exporter).
    pub(crate) fn new(config: &TracingConfig, sink: SpanSink, active: bool) -> Self {
        let record = &config.record;
        Self {
            state: Arc::new(LayerState {
                id: NEXT_LAYER_ID.fetch_add(1, Ordering::Relaxed),
                active,
                sink,
                policy: FieldPolicy {
                    inputs: record.inputs,
                    outputs: record.outputs,
                    errors: record.errors,
                    max_payload_bytes: record.max_payload_bytes,
                    redactor: Redactor::new(&record.redact_keys),
                },
                prep: record.prep,
                exec: record.exec,
                post: record.post,
                lifecycle: record.async_lifecycle,
                context: record.async_context,
                compositions: record.concurrent_flows,
                async_errors: record.async_error_recovery,
                max_events: record.max_events_per_span,
                max_lifecycle: record.max_lifecycle_events_per_span,
                warned_traceparent: AtomicBool::new(false),
                sampler: config.sampler,
                excluded: config.excluded_targets.clone(),
                excluded_first_bytes: config
                    .excluded_targets
                    .iter()
                    .filter_map(|t| t.as_bytes().first().copied())
                    .collect(),
                ids: RandomIdGenerator::default(),
            }),
        }
    }
}

impl LayerState {
    fn excluded(&self, target: &str) -> bool {
        if target == TARGET {
            return false;
        }
        // Most targets share no first byte with any excluded prefix.
        let Some(first) = target.as_bytes().first() else { return false };
        if !self.excluded_first_bytes.contains(first) {
            return false;
        }
        // `hyper` excludes `hyper`, `hyper::proto` and `hyper_util`, not `hyperion`.
        self.excluded.iter().any(|prefix| match target.strip_prefix(prefix.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with(':') || rest.starts_with('_'),
            None => false,
        })
    }

    fn sampled(&self, trace_id: TraceId) -> bool {
        match self.sampler {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::TraceIdRatio(ratio) => {
                // As the OpenTelemetry SDK does: compare the low 63 bits of
                // the (random) trace id with the ratio.
                let low = u64::from_be_bytes(low_bytes(trace_id)) >> 1;
                (low as f64) < ratio * (1u64 << 63) as f64
            }
        }
    }

    fn recorder(&self, capacity: usize) -> FieldRecorder<'_> {
        FieldRecorder::new(&self.policy, capacity)
    }

    fn role_recorded(&self, role: SpanRole) -> bool {
        match role {
            SpanRole::Prep => self.prep,
            SpanRole::Exec | SpanRole::Fallback => self.exec,
            SpanRole::Post => self.post,
            SpanRole::Composition => self.compositions,
            _ => true,
        }
    }
}

impl LayerState {
    /// The remote parent a run's root span names in its `traceparent`
    /// field. An invalid value is ignored (the run starts a new trace) and
    /// reported once.
    fn remote_parent(&self, fields: &Fields) -> Option<TraceParent> {
        let value = fields.str("traceparent")?;
        match value.parse::<TraceParent>() {
            Ok(parent) => Some(parent),
            Err(error) => {
                diagnostics::report_once(
                    &self.warned_traceparent,
                    "invalid_traceparent",
                    &format!("{error}; the run starts a new trace (reported once)"),
                );
                None
            }
        }
    }
}

fn low_bytes(trace_id: TraceId) -> [u8; 8] {
    let bytes = trace_id.to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    low
}

/// The nearest ancestor with a state, and what it says. With `phase`, the
/// owner it gives its children is cloned along (one atomic increment);
/// other spans have no use for it.
fn parent_of<S>(span: &SpanRef<'_, S>, layer: u64, phase: bool) -> Parent
where
    S: for<'a> LookupSpan<'a>,
{
    let mut next = span.parent();
    while let Some(ancestor) = next {
        let parent = state_of(&ancestor, layer, |state| match state {
            Some(SpanState::Recorded(record)) => Parent::Trace {
                trace: Arc::clone(&record.trace),
                span_id: record.span_id,
                owner: if phase { record.owner.clone() } else { None },
            },
            Some(SpanState::Inside { trace, span_id, owner }) => Parent::Trace {
                trace: Arc::clone(trace),
                span_id: *span_id,
                owner: if phase { owner.clone() } else { None },
            },
            Some(SpanState::Unsampled { trace_id }) => Parent::Unsampled { trace_id: *trace_id },
            Some(SpanState::Closed) | None => Parent::None,
        });
        if !matches!(parent, Parent::None) {
            return parent;
        }
        next = ancestor.parent();
    }
    Parent::None
}

/// Runs `f` on the nearest recorded span, starting at `span` itself.
/// Returns `None` when no span up the tree is recorded (or the trace is
/// unsampled).
fn with_nearest_record<S, R>(span: SpanRef<'_, S>, layer: u64, f: impl FnOnce(&mut SpanRecord) -> R) -> Option<R>
where
    S: for<'a> LookupSpan<'a>,
{
    let mut next = Some(span);
    while let Some(current) = next {
        let mut extensions = current.extensions_mut();
        match extensions.get_mut::<SpanStates>().and_then(|states| states.get_mut(layer)) {
            Some(SpanState::Recorded(record)) => return Some(f(record)),
            Some(SpanState::Unsampled { .. }) => return None,
            Some(SpanState::Inside { .. } | SpanState::Closed) | None => {}
        }
        drop(extensions);
        next = current.parent();
    }
    None
}

/// Runs `f` on `span`'s own record, if this layer records it.
fn with_own_record<S, R>(span: &SpanRef<'_, S>, layer: u64, f: impl FnOnce(&mut SpanRecord) -> R) -> Option<R>
where
    S: for<'a> LookupSpan<'a>,
{
    match span.extensions_mut().get_mut::<SpanStates>().and_then(|states| states.get_mut(layer)) {
        Some(SpanState::Recorded(record)) => Some(f(record)),
        _ => None,
    }
}

/// Whether `span` or an ancestor is recorded (read locks only).
fn in_recorded_trace<S>(span: &SpanRef<'_, S>, layer: u64) -> bool
where
    S: for<'a> LookupSpan<'a>,
{
    let own = state_of(span, layer, |state| {
        state.map(|state| !matches!(state, SpanState::Unsampled { .. } | SpanState::Closed))
    });
    match own {
        Some(in_trace) => in_trace,
        None => matches!(parent_of(span, layer, false), Parent::Trace { .. }),
    }
}

impl<S> tracing_subscriber::Layer<S> for PocketflowLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let state = &*self.state;
        let meta = attrs.metadata();
        if !state.active {
            return;
        }
        let role = SpanRole::of(meta);
        // The engine's own spans are never excluded; others are checked
        // once they turn out to be inside a trace.
        if role == SpanRole::User && state.excluded(meta.target()) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let parent = parent_of(&span, state.id, role.is_phase());
        let (trace, mut parent_id, inherited) = match parent {
            Parent::Unsampled { trace_id } => {
                insert(&span, state.id, SpanState::Unsampled { trace_id });
                return;
            }
            Parent::Trace { trace, span_id, owner } => (Some(trace), span_id, owner),
            // A user's span outside any flow is not ours to record, nor is
            // a composition when compositions are off: the flows under it
            // start their own traces.
            Parent::None if role == SpanRole::User || !state.role_recorded(role) => return,
            Parent::None => (None, SpanId::INVALID, None),
        };
        if let Some(trace) = &trace
            && !state.role_recorded(role)
        {
            // A phase switched off: what it would have owned is its parent's.
            let inside = SpanState::Inside { trace: Arc::clone(trace), span_id: parent_id, owner: inherited };
            insert(&span, state.id, inside);
            return;
        }

        // Format the fields before taking any lock.
        let mut fields = if meta.fields().is_empty() {
            Fields::default()
        } else {
            let mut recorder = state.recorder(meta.fields().len());
            attrs.record(&mut recorder);
            recorder.finish()
        };
        let start = SystemTime::now();
        let owner = match role {
            SpanRole::Flow | SpanRole::Node => fields.shared_name(),
            _ => inherited,
        };

        let (trace, root) = match trace {
            Some(trace) => (trace, false),
            None => {
                // A run's root: it may continue a remote trace, and carry
                // the run's session, user, tags and metadata.
                let starts_run = matches!(role, SpanRole::Flow | SpanRole::Composition);
                let remote = if starts_run { state.remote_parent(&fields) } else { None };
                let (trace_id, sampled) = match remote {
                    // Parent-based: the caller's decision stands.
                    Some(remote) => (TraceId::from_bytes(remote.trace_id()), remote.is_sampled()),
                    None => {
                        let trace_id = state.ids.new_trace_id();
                        (trace_id, state.sampled(trace_id))
                    }
                };
                if !sampled {
                    insert(&span, state.id, SpanState::Unsampled { trace_id });
                    return;
                }
                if let Some(remote) = remote {
                    parent_id = SpanId::from_bytes(remote.span_id());
                }
                let run = if starts_run { RunInfo::take_from(&mut fields) } else { None };
                let name = fields.shared_name().unwrap_or_else(|| Arc::from(meta.name()));
                (Arc::new(TraceInfo { trace_id, name, remote, run }), true)
            }
        };

        if role == SpanRole::Fallback
            && let Some(parent) = span.parent()
        {
            let attempt = fields.get("attempt").cloned();
            with_nearest_record(parent, state.id, |node| {
                let mut event_fields = Fields::default();
                if let Some(attempt) = attempt {
                    event_fields.set("attempt", attempt);
                }
                node.push_event(
                    RecordedEvent {
                        name: Cow::Borrowed("pocketflow.fallback"),
                        time: start,
                        level: Level::WARN,
                        fields: event_fields,
                    },
                    state.max_events,
                );
            });
        }

        let record = SpanRecord {
            trace,
            span_id: state.ids.new_span_id(),
            parent_id,
            role,
            owner,
            metadata: meta,
            start,
            end: start,
            fields,
            events: Vec::new(),
            // Flow, node and item spans get about five lifecycle events.
            lifecycle: Vec::with_capacity(
                if matches!(role, SpanRole::Flow | SpanRole::Node | SpanRole::Item | SpanRole::Composition) {
                    6
                } else {
                    0
                },
            ),
            lifecycle_seen: 0,
            dropped_events: 0,
            root,
            error_type: None,
            error_event: None,
            started_with: None,
            failed_attempts: None,
        };
        insert(&span, state.id, SpanState::Recorded(record));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let layer = self.state.id;
        if !state_of(&span, layer, |state| matches!(state, Some(SpanState::Recorded(_)))) {
            return;
        }
        let mut recorder = self.state.recorder(0);
        values.record(&mut recorder);
        if let Some(SpanState::Recorded(record)) =
            span.extensions_mut().get_mut::<SpanStates>().and_then(|states| states.get_mut(layer))
        {
            recorder.apply_to(&mut record.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let state = &*self.state;
        let meta = event.metadata();
        if !state.active || state.excluded(meta.target()) {
            return;
        }
        let engine_event = meta.target() == TARGET;
        let Some(span) = ctx.event_span(event) else { return };
        if engine_event && meta.name() == event_names::LIFECYCLE {
            // The most frequent event by far: recorded without the generic
            // visitor, its state kept as the engine's own static string.
            if state.lifecycle {
                let mut lifecycle = LifecycleState(None);
                event.record(&mut lifecycle);
                if let Some(value) = lifecycle.0 {
                    let now = SystemTime::now();
                    // The engine reports a run's transitions inside the
                    // run's own span: one that is not recorded (a switched
                    // off composition) has none to give its ancestors.
                    with_own_record(&span, state.id, |record| {
                        record.push_lifecycle(now, value, state.max_events, state.max_lifecycle);
                    });
                }
            }
            return;
        }
        if engine_event {
            match meta.name() {
                event_names::CONTEXT if !state.context => return,
                event_names::ASYNC_ERROR if !state.async_errors => return,
                _ => {}
            }
        }
        if !in_recorded_trace(&span, state.id) {
            return;
        }

        let mut recorder = state.recorder(meta.fields().len());
        event.record(&mut recorder);
        let mut fields = recorder.finish();
        if !state.policy.errors {
            // The empty marker a withheld error leaves says a span failed;
            // an event has nothing to say with it.
            fields.0.retain(|(name, _)| *name != "error");
        }
        let name = if engine_event {
            Cow::Borrowed(meta.name())
        } else {
            match fields.0.iter().position(|(name, _)| *name == "message") {
                Some(index) => Cow::Owned(fields.0.remove(index).1.to_string()),
                None => Cow::Borrowed(meta.name()),
            }
        };
        // `error.type` comes from the engine's failure reports.
        let error_type = if engine_event
            && state.async_errors
            && matches!(meta.name(), event_names::ERROR | event_names::ASYNC_ERROR)
        {
            fields.str("error_type").map(str::to_owned)
        } else {
            None
        };
        let recorded = RecordedEvent { name, time: SystemTime::now(), level: *meta.level(), fields };

        let max_events = state.max_events;
        with_nearest_record(span, state.id, |record| {
            if recorded.level == Level::ERROR
                && matches!(record.role, SpanRole::User | SpanRole::Generation)
                && record.error_event.is_none()
            {
                let message = match recorded.fields.get("error") {
                    Some(error) => error.to_string(),
                    None => recorded.name.to_string(),
                };
                record.error_event = Some(message);
            }
            if record.error_type.is_none() {
                record.error_type = error_type;
            }
            record.push_event(recorded, max_events);
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let removed = take(&span, self.state.id);
        if let Some(SpanState::Recorded(mut record)) = removed {
            record.end = SystemTime::now();
            // A failed attempt counts against its node (or item), which
            // shows whether it recovered from it.
            if record.role == SpanRole::Exec
                && let Some(error) = record.fields.str("error")
                && let Some(parent) = span.parent()
            {
                let error = error.to_owned();
                with_nearest_record(parent, self.state.id, |owner| owner.count_failed_attempt(error));
            }
            // What a composition's flows started with is its input.
            if matches!(record.role, SpanRole::Flow | SpanRole::Composition)
                && let Some(parent) = span.parent()
            {
                self.tell_composition(parent, &record);
            }
            self.state.sink.send(record);
        }
    }
}

impl PocketflowLayer {
    /// Adds what the flow or composition `child` started with to the input
    /// of the composition it ran in, if its nearest recorded ancestor is
    /// one.
    fn tell_composition<S>(&self, parent: SpanRef<'_, S>, child: &SpanRecord)
    where
        S: for<'a> LookupSpan<'a>,
    {
        let max_bytes = self.state.policy.max_payload_bytes;
        with_nearest_record(parent, self.state.id, |composition| {
            // Most flows run in no composition: nothing is copied for them.
            if composition.role != SpanRole::Composition {
                return;
            }
            let input = match child.role {
                SpanRole::Flow => child.fields.str("input").map(str::to_owned),
                _ => child.started_with.as_ref().map(|started| started.to_json()),
            };
            if let (Some(input), Some(name)) = (input, child.fields.shared_name()) {
                composition.started_with.get_or_insert_default().push(child.start, name, input, max_bytes);
            }
        });
    }

    /// The W3C context of `span` as this layer records it: the trace id and
    /// the id of the nearest recorded span, starting at `span` itself. An
    /// unsampled trace gives its id, a fresh span id and the sampled flag
    /// off, so that the callee follows the decision. `None` outside any
    /// trace of this layer.
    pub(crate) fn traceparent_of<S>(&self, span: SpanRef<'_, S>) -> Option<TraceParent>
    where
        S: for<'a> LookupSpan<'a>,
    {
        let layer = self.state.id;
        let mut next = Some(span);
        while let Some(current) = next {
            let found = state_of(&current, layer, |state| match state {
                Some(SpanState::Recorded(record)) => Some((record.trace.trace_id, record.span_id, true)),
                Some(SpanState::Inside { trace, span_id, .. }) => Some((trace.trace_id, *span_id, true)),
                Some(SpanState::Unsampled { trace_id }) => Some((*trace_id, SpanId::INVALID, false)),
                Some(SpanState::Closed) | None => None,
            });
            if let Some((trace_id, span_id, sampled)) = found {
                let span_id = if span_id == SpanId::INVALID { self.state.ids.new_span_id() } else { span_id };
                return TraceParent::new(trace_id.to_bytes(), span_id.to_bytes(), sampled);
            }
            next = current.parent();
        }
        None
    }
}

/// Picks the `state` of a lifecycle event out as one of the engine's static
/// state names.
struct LifecycleState(Option<&'static str>);

impl tracing::field::Visit for LifecycleState {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "state" {
            self.0 = NodeState::ALL.iter().map(|s| s.as_str()).find(|s| *s == value);
        }
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

//! A layer that records spans and events for assertions.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// One span, as created and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedSpan {
    /// The span's name (its metadata name).
    pub name: &'static str,
    /// The span's target.
    pub target: &'static str,
    /// The names of every field the span declares, recorded or not.
    pub declared: Vec<&'static str>,
    /// Field values as formatted with `{:?}` (strings without quotes).
    pub fields: BTreeMap<String, String>,
    /// The index of the parent span in [`Captured::spans`].
    pub parent: Option<usize>,
    /// Whether the span was closed.
    pub closed: bool,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedEvent {
    /// The event's name (its metadata name).
    pub name: &'static str,
    /// The event's level.
    pub level: tracing::Level,
    /// Field values, `message` included.
    pub fields: BTreeMap<String, String>,
    /// The index of the span it happened in, in [`Captured::spans`].
    pub span: Option<usize>,
}

/// Everything captured so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// Spans in creation order.
    pub spans: Vec<CapturedSpan>,
    /// Events in emission order.
    pub events: Vec<CapturedEvent>,
}

impl Captured {
    /// The spans with this name.
    pub fn spans_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (usize, &'a CapturedSpan)> + 'a {
        self.spans.iter().enumerate().filter(move |(_, s)| s.name == name)
    }

    /// The events with this name.
    pub fn events_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a CapturedEvent> + 'a {
        self.events.iter().filter(move |e| e.name == name)
    }

    /// The names of the span's ancestors, innermost first.
    pub fn ancestry(&self, index: usize) -> Vec<&'static str> {
        let mut names = Vec::new();
        let mut next = self.spans.get(index).and_then(|s| s.parent);
        while let Some(i) = next {
            match self.spans.get(i) {
                Some(span) => {
                    names.push(span.name);
                    next = span.parent;
                }
                None => break,
            }
        }
        names
    }

    /// The values of the `state` field of lifecycle events in the span.
    pub fn states_in(&self, span: usize) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| e.span == Some(span) && e.name == "pocketflow.lifecycle")
            .filter_map(|e| e.fields.get("state").map(String::as_str))
            .collect()
    }
}

/// The capturing layer. Clones share one record.
#[derive(Clone)]
pub struct Capture {
    inner: Arc<Mutex<State>>,
    ignored: Arc<HashSet<&'static str>>,
}

#[derive(Default)]
struct State {
    captured: Captured,
    by_id: BTreeMap<u64, usize>,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture").field("ignored", &self.ignored).finish_non_exhaustive()
    }
}

impl Default for Capture {
    fn default() -> Self {
        Self::new()
    }
}

impl Capture {
    /// A layer that formats every field.
    pub fn new() -> Self {
        Self::ignoring(&[])
    }

    /// A layer that never formats the named fields (as a layer configured
    /// not to record inputs and outputs would), so their values are never
    /// produced.
    pub fn ignoring(fields: &[&'static str]) -> Self {
        crate::keep_interest_dynamic();
        Self { inner: Arc::default(), ignored: Arc::new(fields.iter().copied().collect()) }
    }

    /// A copy of everything captured so far.
    pub fn snapshot(&self) -> Captured {
        self.lock().captured.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Fields<'a> {
    map: &'a mut BTreeMap<String, String>,
    ignored: &'a HashSet<&'static str>,
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.ignored.contains(field.name()) {
            self.map.insert(field.name().to_owned(), value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.ignored.contains(field.name()) {
            self.map.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent_id =
            if attrs.is_root() { None } else { attrs.parent().cloned().or_else(|| ctx.current_span().id().cloned()) };
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields { map: &mut fields, ignored: &self.ignored });
        let meta = attrs.metadata();
        let mut state = self.lock();
        let parent = parent_id.and_then(|p| state.by_id.get(&p.into_u64()).copied());
        let index = state.captured.spans.len();
        state.captured.spans.push(CapturedSpan {
            name: meta.name(),
            target: meta.target(),
            declared: meta.fields().iter().map(|f| f.name()).collect(),
            fields,
            parent,
            closed: false,
        });
        state.by_id.insert(id.into_u64(), index);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut state = self.lock();
        let Some(&index) = state.by_id.get(&id.into_u64()) else { return };
        if let Some(span) = state.captured.spans.get_mut(index) {
            values.record(&mut Fields { map: &mut span.fields, ignored: &self.ignored });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields { map: &mut fields, ignored: &self.ignored });
        let span_id = ctx.event_span(event).map(|s| s.id());
        let mut state = self.lock();
        let span = span_id.and_then(|id| state.by_id.get(&id.into_u64()).copied());
        state.captured.events.push(CapturedEvent {
            name: event.metadata().name(),
            level: *event.metadata().level(),
            fields,
            span,
        });
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        let mut state = self.lock();
        if let Some(index) = state.by_id.remove(&id.into_u64())
            && let Some(span) = state.captured.spans.get_mut(index)
        {
            span.closed = true;
        }
    }
}

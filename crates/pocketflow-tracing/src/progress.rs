//! [`BatchProgress`]: live progress bars for long batches, on a terminal.
//!
//! A batch `node` or `flow` span (kinds `BatchNode`, `AsyncBatchNode`,
//! `AsyncParallelBatchNode`, `BatchFlow`, `AsyncBatchFlow`,
//! `AsyncParallelBatchFlow`) records `items` once its `prep` has returned;
//! each item then runs in an `item` span, a direct child of the batch's span.
//! The layer counts those children as they close (a child whose `error` was
//! recorded counts as failed) and, once the batch has run for a second,
//! draws a bar for it on stderr: name, items done of total, rate, failures,
//! elapsed. Several batches at once get one bar each (`MultiProgress`). A
//! bar is cleared when its batch ends. Flows composed in parallel or as a
//! batch (`pocketflow::Composition`) count the same way: a `composition`
//! span knows its `count`, and each of its `flow` children is an item.
//!
//! Nothing runs on a timer: a bar appears, and is redrawn, when an item
//! closes. Short batches therefore never draw at all.
//!
//! Off a terminal (stderr piped or redirected), or in CI (`CI` set and not
//! empty), the layer is inert: every callback returns at once, so logs and
//! CI output never get progress bars.

use std::borrow::Cow;
use std::fmt;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use pocketflow::telemetry::{TARGET, span_names};

/// How long a batch runs before its bar is drawn: shorter batches never
/// flicker on the screen.
pub const PROGRESS_SHOW_AFTER: Duration = Duration::from_secs(1);

/// The `kind`s of the engine's batch nodes and flows, the spans that get a bar.
const BATCH_KINDS: [&str; 6] =
    ["BatchNode", "AsyncBatchNode", "AsyncParallelBatchNode", "BatchFlow", "AsyncBatchFlow", "AsyncParallelBatchFlow"];

/// The `kind`s of `composition` spans that get a bar, and the kind shown
/// for them: a nested composition runs one flow.
const COMPOSITION_KINDS: [(&str, &str); 2] = [("parallel", "ParallelComposition"), ("batch", "BatchComposition")];

/// A longer node or flow name is cut (on a character boundary) so that
/// the bar still fits a line.
const MAX_LABEL_CHARS: usize = 40;

const TEMPLATE: &str = "{prefix} [{bar:30}] {pos}/{len} · {rate} · {batch_elapsed}{msg}";

/// A `tracing_subscriber` layer that shows a progress bar on stderr for
/// each long-running batch node or batch flow: items done of total, rate,
/// failed items, elapsed time.
///
/// [`crate::init`] and [`crate::TracingConfig::init`] add it (unless
/// `POCKETFLOW_PROGRESS=false` or [`progress(false)`](crate::TracingConfigBuilder::progress));
/// add it yourself to a subscriber you compose:
///
/// ```no_run
/// use pocketflow_tracing::BatchProgress;
/// use tracing_subscriber::prelude::*;
///
/// tracing_subscriber::registry().with(tracing_subscriber::fmt::layer()).with(BatchProgress::new()).init();
/// ```
///
/// It draws only when stderr is a terminal and the `CI` variable is unset
/// or empty; otherwise it is inert and costs one branch per callback. A bar
/// appears once its batch has run for [`PROGRESS_SHOW_AFTER`], at the
/// first item that finishes after that, and is cleared when the batch ends.
/// Text written to stderr by other layers while bars are drawn may be
/// interleaved with them.
#[derive(Debug, Clone)]
pub struct BatchProgress {
    /// `None`: inert.
    shared: Option<Arc<Shared>>,
}

struct Shared {
    bars: MultiProgress,
    style: ProgressStyle,
    show_after: Duration,
    /// Test builds: what each batch showed when it ended.
    probe: Option<ProgressProbe>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("bars", &self.bars)
            .field("show_after", &self.show_after)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

impl Default for BatchProgress {
    /// [`BatchProgress::new`]: active on a terminal, inert elsewhere.
    fn default() -> Self {
        Self::new()
    }
}

impl BatchProgress {
    /// Bars on stderr when stderr is a terminal and `CI` is unset or empty;
    /// an inert layer otherwise.
    pub fn new() -> Self {
        if !draws(std::io::stderr().is_terminal(), std::env::var_os("CI").as_deref()) {
            return Self::inert();
        }
        Self::drawing_to(ProgressDrawTarget::stderr(), PROGRESS_SHOW_AFTER, None)
    }

    /// A layer that never draws and does no work.
    pub fn inert() -> Self {
        Self { shared: None }
    }

    /// Whether this layer draws bars (false off a terminal and in CI).
    pub fn is_active(&self) -> bool {
        self.shared.is_some()
    }

    /// A layer that keeps its bars on a hidden draw target, shows them
    /// after `show_after`, and reports each batch to the returned probe
    /// when it ends. For tests of this crate, not a stable API.
    #[doc(hidden)]
    pub fn with_probe(show_after: Duration) -> (Self, ProgressProbe) {
        let probe = ProgressProbe::default();
        (Self::drawing_to(ProgressDrawTarget::hidden(), show_after, Some(probe.clone())), probe)
    }

    fn drawing_to(target: ProgressDrawTarget, show_after: Duration, probe: Option<ProgressProbe>) -> Self {
        let shared = Shared { bars: MultiProgress::with_draw_target(target), style: bar_style(), show_after, probe };
        Self { shared: Some(Arc::new(shared)) }
    }
}

/// Whether bars are drawn: on a terminal, and not in CI (`CI` set and not
/// empty), whose logs must not fill up with redraws.
fn draws(stderr_is_terminal: bool, ci: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && ci.is_none_or(std::ffi::OsStr::is_empty)
}

/// The bars' look; the plain default if the template were ever rejected.
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        .map_or_else(|_| ProgressStyle::default_bar(), |style| style.progress_chars("=> "))
}

/// What a batch's bar showed when the batch ended (see
/// [`BatchProgress::with_probe`]). For tests, not a stable API.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    /// The node's or flow's name.
    pub name: String,
    /// Its kind (`BatchNode`, `AsyncParallelBatchFlow`, …).
    pub kind: &'static str,
    /// The `items` the engine recorded, if it did.
    pub total: Option<u64>,
    /// Item spans that closed.
    pub done: u64,
    /// Item spans that closed with an `error`.
    pub failed: u64,
    /// The bar, if it was shown.
    pub bar: Option<BarSummary>,
}

/// A bar as it stood when its batch ended. For tests, not a stable API.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarSummary {
    /// The bar's label: the node's or flow's name.
    pub prefix: String,
    /// Items done.
    pub position: u64,
    /// Items in all.
    pub length: Option<u64>,
    /// The text after the counts (failures).
    pub message: String,
}

/// Collects a [`BatchSummary`] per batch that ended. For tests, not a
/// stable API.
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct ProgressProbe(Arc<Mutex<Vec<BatchSummary>>>);

impl ProgressProbe {
    /// Every batch that ended so far, in the order they ended.
    pub fn finished(&self) -> Vec<BatchSummary> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn push(&self, summary: BatchSummary) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(summary);
    }
}

/// A batch span's state, in its extensions.
struct Batch {
    name: String,
    kind: &'static str,
    started: Instant,
    total: Option<u64>,
    done: u64,
    failed: u64,
    bar: Option<ProgressBar>,
}

impl Batch {
    /// `· 2 failed`, or nothing.
    fn message(&self) -> Cow<'static, str> {
        if self.failed == 0 { Cow::Borrowed("") } else { Cow::Owned(format!(" · {} failed", self.failed)) }
    }
}

/// Marks an `item` (or composed `flow`) span whose `error` was recorded.
struct ItemFailed;

/// Whether `meta` is one of the engine's spans named `name`.
fn is_engine_span(meta: &Metadata<'_>, name: &str) -> bool {
    meta.target() == TARGET && meta.name() == name
}

/// Reads a `node`/`flow`/`composition` span's `name` and batch `kind`.
#[derive(Default)]
struct NameAndKind {
    name: Option<String>,
    kind: Option<&'static str>,
}

impl Visit for NameAndKind {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "name" => self.name = Some(label(value)),
            "kind" => {
                self.kind = BATCH_KINDS.iter().copied().find(|kind| *kind == value).or_else(|| {
                    COMPOSITION_KINDS.iter().find(|(composition, _)| *composition == value).map(|(_, shown)| *shown)
                });
            }
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "name" {
            self.name = Some(label(&format!("{value:?}")));
        }
    }
}

/// `name`, cut to [`MAX_LABEL_CHARS`] characters.
fn label(name: &str) -> String {
    match name.char_indices().nth(MAX_LABEL_CHARS) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    }
}

/// Reads `items` (a composition's `count`).
struct Items(Option<u64>);

/// The fields that give a batch's total.
fn is_total(field: &Field) -> bool {
    matches!(field.name(), "items" | "count")
}

impl Visit for Items {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if is_total(field) {
            self.0 = Some(value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if is_total(field) {
            self.0 = u64::try_from(value).ok();
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn fmt::Debug) {}
}

/// `elapsed` as `4.2s`, or `3m05s` from a minute on.
fn write_elapsed(elapsed: Duration, w: &mut dyn fmt::Write) {
    let secs = elapsed.as_secs();
    let _ = if secs < 60 {
        write!(w, "{:.1}s", elapsed.as_secs_f64())
    } else {
        write!(w, "{}m{:02}s", secs / 60, secs % 60)
    };
}

/// Items per second since `started`.
fn write_rate(done: u64, started: Instant, w: &mut dyn fmt::Write) {
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss, reason = "a rate on screen, not an exact count")]
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let _ = write!(w, "{rate:.1} items/s");
}

impl Shared {
    /// Draws `batch`'s bar if it has run long enough and its total is
    /// known, or updates the bar it has. `failed`: the item that just
    /// closed failed, so the message changes too (each setter redraws).
    fn refresh(&self, batch: &mut Batch, failed: bool) {
        if let Some(bar) = &batch.bar {
            if failed {
                bar.set_message(batch.message());
            }
            bar.set_position(batch.done);
            return;
        }
        let Some(total) = batch.total else { return };
        if batch.started.elapsed() < self.show_after {
            return;
        }
        let started = batch.started;
        // The elapsed time and rate count from the batch's start, not the
        // bar's, which is drawn a second or more later.
        let style = self
            .style
            .clone()
            .with_key("batch_elapsed", move |_: &ProgressState, w: &mut dyn fmt::Write| {
                write_elapsed(started.elapsed(), w);
            })
            .with_key("rate", move |state: &ProgressState, w: &mut dyn fmt::Write| {
                write_rate(state.pos(), started, w);
            });
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
            .with_style(style)
            .with_prefix(batch.name.clone())
            .with_position(batch.done)
            .with_message(batch.message());
        let bar = self.bars.add(bar);
        bar.tick();
        batch.bar = Some(bar);
    }

    /// Clears `batch`'s bar, and reports the batch to the probe.
    fn end(&self, batch: Batch) {
        let shown = batch.bar.as_ref().map(|bar| {
            let summary = BarSummary {
                prefix: bar.prefix(),
                position: bar.position(),
                length: bar.length(),
                message: bar.message(),
            };
            bar.finish_and_clear();
            self.bars.remove(bar);
            summary
        });
        if let Some(probe) = &self.probe {
            probe.push(BatchSummary {
                name: batch.name,
                kind: batch.kind,
                total: batch.total,
                done: batch.done,
                failed: batch.failed,
                bar: shown,
            });
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for BatchProgress
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if self.shared.is_none() {
            return;
        }
        let meta = attrs.metadata();
        if !(is_engine_span(meta, span_names::NODE)
            || is_engine_span(meta, span_names::FLOW)
            || is_engine_span(meta, span_names::COMPOSITION))
        {
            return;
        }
        let mut fields = NameAndKind::default();
        attrs.record(&mut fields);
        let Some(kind) = fields.kind else { return };
        let Some(span) = ctx.span(id) else { return };
        let mut items = Items(None);
        attrs.record(&mut items);
        span.extensions_mut().insert(Batch {
            name: fields.name.unwrap_or_else(|| kind.to_owned()),
            kind,
            started: Instant::now(),
            total: items.0,
            done: 0,
            failed: 0,
            bar: None,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(shared) = &self.shared else { return };
        let Some(span) = ctx.span(id) else { return };
        let meta = span.metadata();
        if meta.target() != TARGET {
            return;
        }
        if matches!(meta.name(), span_names::ITEM | span_names::FLOW)
            && meta.fields().field("error").is_some_and(|error| values.contains(&error))
        {
            span.extensions_mut().insert(ItemFailed);
        }
        if meta.name() == span_names::ITEM {
            return;
        }
        if !meta.fields().field("items").is_some_and(|items| values.contains(&items)) {
            return;
        }
        let mut items = Items(None);
        values.record(&mut items);
        let mut extensions = span.extensions_mut();
        if let Some(batch) = extensions.get_mut::<Batch>() {
            batch.total = items.0;
            if let Some(bar) = &batch.bar
                && let Some(total) = items.0
            {
                bar.set_length(total);
            }
            shared.refresh(batch, false);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(shared) = &self.shared else { return };
        let Some(span) = ctx.span(&id) else { return };
        let meta = span.metadata();
        if meta.target() != TARGET {
            return;
        }
        if matches!(meta.name(), span_names::ITEM | span_names::FLOW) {
            let failed = span.extensions().get::<ItemFailed>().is_some();
            // Only the batch's own items (a flow counts for the composition
            // right above it): an item of a batch nested inside this item
            // counts for that inner batch.
            if let Some(parent) = span.parent() {
                let mut extensions = parent.extensions_mut();
                if let Some(batch) = extensions.get_mut::<Batch>() {
                    batch.done += 1;
                    batch.failed += u64::from(failed);
                    shared.refresh(batch, failed);
                }
            }
            if meta.name() == span_names::ITEM {
                return;
            }
        }
        if !matches!(meta.name(), span_names::NODE | span_names::FLOW | span_names::COMPOSITION) {
            return;
        }
        let batch = span.extensions_mut().remove::<Batch>();
        if let Some(batch) = batch {
            shared.end(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_drawn_on_a_terminal_outside_ci_only() {
        use std::ffi::OsStr;
        assert!(draws(true, None));
        assert!(draws(true, Some(OsStr::new(""))), "an empty CI is unset");
        assert!(!draws(true, Some(OsStr::new("true"))));
        assert!(!draws(true, Some(OsStr::new("1"))));
        assert!(!draws(false, None), "piped or redirected stderr");
        assert!(!draws(false, Some(OsStr::new("true"))));
    }

    #[test]
    fn the_template_parses() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        assert_eq!(label("Classify"), "Classify");
        let long = "é".repeat(50);
        assert_eq!(label(&long), format!("{}…", "é".repeat(MAX_LABEL_CHARS)));
    }

    #[test]
    fn elapsed_and_rate_read_well() {
        let mut text = String::new();
        write_elapsed(Duration::from_millis(4_300), &mut text);
        text.push(' ');
        write_elapsed(Duration::from_secs(185), &mut text);
        assert_eq!(text, "4.3s 3m05s");
    }
}

//! The flows every case runs, and the exporter that throws spans away.
//!
//! Two shapes, the same as the criterion benches use:
//! - a loop of trivial nodes over an atomic counter
//!   (`Check` - "again" >> `Tick` >> `Check` - "done" >> `Done`, as in
//!   `crates/pocketflow/benches/engine_overhead.rs`): any number of nodes
//!   in one run, for the engine's own cost and for the long run;
//! - a chain of [`CHAIN_NODES`] nodes whose hooks return a small serde
//!   struct (as in `crates/pocketflow-tracing/benches/layer_overhead.rs`):
//!   [`SPANS_PER_CHAIN`] spans per run, with inputs and outputs to record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Ctx, Flow, Node};
use serde::Serialize;

/// Nodes in the chain flow.
pub(crate) const CHAIN_NODES: u64 = 10;
/// Spans per chain run: one `flow`, and `node`, `prep`, `exec`, `post` per
/// node. Checked against a captured run before any traced case.
pub(crate) const SPANS_PER_CHAIN: u64 = 1 + 4 * CHAIN_NODES;

/// The loop's store: the counter `Tick` advances, how far `Check` lets it
/// go, and the ticks at which `Tick` notes the time (for the long run).
#[derive(Debug, Default, Serialize)]
pub(crate) struct Counter {
    n: AtomicU64,
    ticks: AtomicU64,
    /// The next tick to note the time at (`u64::MAX`: none), so that the
    /// hot path is one atomic load.
    #[serde(skip)]
    next_mark: AtomicU64,
    #[serde(skip)]
    marks: Mutex<Marks>,
}

/// Ticks to time, and the instants they were reached at, in order.
#[derive(Debug, Default)]
struct Marks {
    at: Vec<u64>,
    reached: Vec<Instant>,
}

impl Counter {
    /// A store for a run of `nodes` nodes (rounded up to an even number):
    /// `Check` and `Tick` alternate, and the last `Check` goes to `Done`.
    pub(crate) fn for_nodes(nodes: u64) -> Self {
        let counter = Self { next_mark: AtomicU64::new(u64::MAX), ..Self::default() };
        counter.reset(nodes);
        counter
    }

    /// Makes the next run walk `nodes` nodes (`Check` `ticks + 1` times,
    /// `Tick` `ticks` times, `Done` once).
    pub(crate) fn reset(&self, nodes: u64) {
        self.n.store(0, Ordering::Relaxed);
        self.ticks.store(Self::ticks_for(nodes), Ordering::Relaxed);
    }

    /// Ticks in a run of `nodes` nodes.
    pub(crate) fn ticks_for(nodes: u64) -> u64 {
        nodes.div_ceil(2).saturating_sub(1)
    }

    /// Ticks done in the last run.
    pub(crate) fn ticks_done(&self) -> u64 {
        self.n.load(Ordering::Relaxed)
    }

    /// Notes the time when the counter reaches each of `ticks` (ascending).
    pub(crate) fn mark_at(&self, ticks: Vec<u64>) {
        let mut marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        marks.reached = Vec::with_capacity(ticks.len());
        self.next_mark.store(ticks.first().copied().unwrap_or(u64::MAX), Ordering::Relaxed);
        marks.at = ticks;
    }

    /// The instants noted during the last run, in the order asked for.
    pub(crate) fn marks(&self) -> Vec<Instant> {
        self.marks.lock().unwrap_or_else(PoisonError::into_inner).reached.clone()
    }

    fn tick(&self, n: u64) {
        self.n.store(n, Ordering::Relaxed);
        if n != self.next_mark.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        let mut marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        marks.reached.push(now);
        let next = marks.at.get(marks.reached.len()).copied().unwrap_or(u64::MAX);
        self.next_mark.store(next, Ordering::Relaxed);
    }

    fn again(&self, n: u64) -> bool {
        n < self.ticks.load(Ordering::Relaxed)
    }
}

struct Tick;

impl Node<Counter> for Tick {
    type Prep = u64;
    type Exec = u64;
    fn prep(&self, _: &Ctx<'_>, shared: &Counter) -> Result<u64, BoxError> {
        Ok(shared.n.load(Ordering::Relaxed))
    }
    fn exec(&self, _: &Ctx<'_>, n: &u64) -> Result<u64, BoxError> {
        Ok(n + 1)
    }
    fn post(&self, _: &Ctx<'_>, shared: &Counter, _: u64, n: u64) -> Result<Action, BoxError> {
        shared.tick(n);
        Ok(Action::NONE)
    }
}

struct Check;

impl Node<Counter> for Check {
    type Prep = (u64, bool);
    type Exec = bool;
    fn prep(&self, _: &Ctx<'_>, shared: &Counter) -> Result<(u64, bool), BoxError> {
        let n = shared.n.load(Ordering::Relaxed);
        Ok((n, shared.again(n)))
    }
    fn exec(&self, _: &Ctx<'_>, prep: &(u64, bool)) -> Result<bool, BoxError> {
        Ok(prep.1)
    }
    fn post(&self, _: &Ctx<'_>, _: &Counter, _: (u64, bool), again: bool) -> Result<Action, BoxError> {
        Ok(if again { "again".into() } else { "done".into() })
    }
}

struct Done;

impl Node<Counter> for Done {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &Counter) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

struct AsyncTick;

impl AsyncNode<Counter> for AsyncTick {
    type Prep = u64;
    type Exec = u64;
    async fn prep(&self, _: &Ctx<'_>, shared: &Counter) -> Result<u64, BoxError> {
        Ok(shared.n.load(Ordering::Relaxed))
    }
    async fn exec(&self, _: &Ctx<'_>, n: &u64) -> Result<u64, BoxError> {
        Ok(n + 1)
    }
    async fn post(&self, _: &Ctx<'_>, shared: &Counter, _: u64, n: u64) -> Result<Action, BoxError> {
        shared.tick(n);
        Ok(Action::NONE)
    }
}

struct AsyncCheck;

impl AsyncNode<Counter> for AsyncCheck {
    type Prep = (u64, bool);
    type Exec = bool;
    async fn prep(&self, _: &Ctx<'_>, shared: &Counter) -> Result<(u64, bool), BoxError> {
        let n = shared.n.load(Ordering::Relaxed);
        Ok((n, shared.again(n)))
    }
    async fn exec(&self, _: &Ctx<'_>, prep: &(u64, bool)) -> Result<bool, BoxError> {
        Ok(prep.1)
    }
    async fn post(&self, _: &Ctx<'_>, _: &Counter, _: (u64, bool), again: bool) -> Result<Action, BoxError> {
        Ok(if again { "again".into() } else { "done".into() })
    }
}

struct AsyncDone;

impl AsyncNode<Counter> for AsyncDone {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &Counter) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The sync loop.
pub(crate) fn sync_loop() -> Flow<Counter> {
    let mut flow = Flow::named("SyncLoop");
    let check = flow.start(Check);
    let tick = flow.add(Tick);
    let done = flow.add(Done);
    flow.connect_on(check, "again", tick).connect(tick, check).connect_on(check, "done", done);
    flow
}

/// The async loop. Its hooks never await, so a run completes in one poll:
/// what is measured is the engine's futures and spans, not the scheduler.
pub(crate) fn async_loop() -> AsyncFlow<Counter> {
    let mut flow = AsyncFlow::named("AsyncLoop");
    let check = flow.start(AsyncCheck);
    let tick = flow.add(AsyncTick);
    let done = flow.add(AsyncDone);
    flow.connect_on(check, "again", tick).connect(tick, check).connect_on(check, "done", done);
    flow
}

/// The chain's store: one counter, recorded as the flow's input and output,
/// and for the `store_10mb` case a large document beside it.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ChainStore {
    n: AtomicU64,
    #[serde(skip_serializing_if = "String::is_empty")]
    document: String,
}

impl ChainStore {
    /// A store holding a text document of `bytes` bytes: words, with a
    /// quote and a line break now and then for the JSON escaper.
    pub(crate) fn with_document(bytes: usize) -> Self {
        const LINE: &str = "PocketFlow keeps \"shared\" state in one store, and every node reads it.\n";
        let document: String = LINE.chars().cycle().take(bytes).collect();
        Self { n: AtomicU64::new(0), document }
    }

    /// Nodes the last run went through.
    pub(crate) fn steps(&self) -> u64 {
        self.n.load(Ordering::Relaxed)
    }

    /// Ready for the next run.
    pub(crate) fn reset(&self) {
        self.n.store(0, Ordering::Relaxed);
    }
}

/// A small serde value, so that every `input`/`output` field is an object.
#[derive(Debug, Serialize)]
pub(crate) struct Value {
    step: u64,
    label: &'static str,
}

struct Step;

impl Node<ChainStore> for Step {
    type Prep = Value;
    type Exec = Value;
    fn prep(&self, _: &Ctx<'_>, shared: &ChainStore) -> Result<Value, BoxError> {
        Ok(Value { step: shared.n.load(Ordering::Relaxed), label: "prep" })
    }
    fn exec(&self, _: &Ctx<'_>, prep: &Value) -> Result<Value, BoxError> {
        Ok(Value { step: prep.step + 1, label: "exec" })
    }
    fn post(&self, _: &Ctx<'_>, shared: &ChainStore, _: Value, exec: Value) -> Result<Action, BoxError> {
        shared.n.store(exec.step, Ordering::Relaxed);
        Ok(Action::NONE)
    }
}

/// The async step yields to the scheduler once in `exec`, so that flows
/// run at the same time really interleave on the runtime.
struct AsyncStep;

impl AsyncNode<ChainStore> for AsyncStep {
    type Prep = Value;
    type Exec = Value;
    async fn prep(&self, _: &Ctx<'_>, shared: &ChainStore) -> Result<Value, BoxError> {
        Ok(Value { step: shared.n.load(Ordering::Relaxed), label: "prep" })
    }
    async fn exec(&self, _: &Ctx<'_>, prep: &Value) -> Result<Value, BoxError> {
        tokio::task::yield_now().await;
        Ok(Value { step: prep.step + 1, label: "exec" })
    }
    async fn post(&self, _: &Ctx<'_>, shared: &ChainStore, _: Value, exec: Value) -> Result<Action, BoxError> {
        shared.n.store(exec.step, Ordering::Relaxed);
        Ok(Action::NONE)
    }
}

/// `Step` >> `Step` >> … [`CHAIN_NODES`] times.
pub(crate) fn chain() -> Flow<ChainStore> {
    let mut flow = Flow::named("Chain");
    let mut previous = flow.start(Step);
    for _ in 1..CHAIN_NODES {
        let next = flow.add(Step);
        flow.connect(previous, next);
        previous = next;
    }
    flow
}

/// The async chain, of [`AsyncStep`]s.
pub(crate) fn async_chain() -> AsyncFlow<ChainStore> {
    let mut flow = AsyncFlow::named("AsyncChain");
    let mut previous = flow.start(AsyncStep);
    for _ in 1..CHAIN_NODES {
        let next = flow.add(AsyncStep);
        flow.connect(previous, next);
        previous = next;
    }
    flow
}

/// Accepts every batch and only counts its spans: the export side costs
/// as little as an exporter can.
#[derive(Debug, Clone, Default)]
pub(crate) struct DiscardingExporter {
    spans: Arc<AtomicU64>,
}

impl DiscardingExporter {
    /// Spans handed to the exporter so far.
    pub(crate) fn received(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }
}

impl SpanExporter for DiscardingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.spans.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    #[test]
    fn the_loop_walks_the_nodes_asked_for_and_notes_the_marks() {
        let flow = sync_loop();
        let store = Counter::for_nodes(100);
        store.mark_at(vec![1, 10, 49]);
        let report = flow.run_report(&store).expect("the loop runs");
        assert!(report.action.is_none());
        assert_eq!(Counter::ticks_for(100), 49);
        assert_eq!(store.ticks_done(), 49);
        let marks = store.marks();
        assert_eq!(marks.len(), 3);
        assert!(marks.windows(2).all(|pair| pair[0] <= pair[1]));
    }

    #[test]
    fn a_chain_run_goes_through_every_node() {
        let store = ChainStore::default();
        chain().run(&store).expect("the chain runs");
        assert_eq!(store.steps(), CHAIN_NODES);
    }
}

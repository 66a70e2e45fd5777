//! Which params a node sees (`ctx.params()`, Python's `self.params`).
//!
//! - A node run alone sees the params it is run with (none by default).
//! - Inside a flow every node sees exactly the flow's params: Python's
//!   `set_params` replaces a node's own params; Rust nodes keep per-instance
//!   settings in struct fields instead.
//! - A nested flow gets its parent's params, not its own (even when the
//!   parent's are empty), and passes them on to its nodes and hooks.
//! - A batch flow lays each entry's keys over its (or its parent's) params;
//!   entries do not leak into one another.
//! - Concurrent runs of a parallel batch flow each see only their own entry.
//! - Params are read-only (deliberate difference: in Python one node's
//!   `self.params[...] = ...` leaks to the nodes after it).
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pocketflow::{
    Action, AsyncBatchFlow, AsyncBatchFlowHooks, AsyncFlow, AsyncNode, AsyncParallelBatchFlow, BatchFlow,
    BatchFlowHooks, BoxError, Ctx, Flow, FlowHooks, Node, Params, SharedStore,
};
use serde_json::json;

/// (who, the params they saw), in order.
type Seen = Arc<Mutex<Vec<(String, Params)>>>;

fn seen(log: &Seen) -> Vec<(String, Params)> {
    log.lock().unwrap().clone()
}

fn params_of(log: &Seen) -> Vec<Params> {
    seen(log).into_iter().map(|(_, p)| p).collect()
}

fn p(value: serde_json::Value) -> Params {
    serde_json::from_value(value).unwrap()
}

/// Records `ctx.params()` in `prep` under its name.
struct Recorder {
    name: &'static str,
    seen: Seen,
}

impl Recorder {
    fn new(name: &'static str, seen: &Seen) -> Self {
        Self { name, seen: Arc::clone(seen) }
    }
}

impl Node for Recorder {
    type Prep = ();
    type Exec = ();
    fn prep(&self, ctx: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        self.seen.lock().unwrap().push((self.name.to_owned(), ctx.params().clone()));
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The same recorder as an `AsyncNode`.
struct AsyncRecorder(Recorder);

impl AsyncRecorder {
    fn new(name: &'static str, seen: &Seen) -> Self {
        Self(Recorder::new(name, seen))
    }
}

impl AsyncNode for AsyncRecorder {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, ctx: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        self.0.seen.lock().unwrap().push((self.0.name.to_owned(), ctx.params().clone()));
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Flow-level hooks that record the params their `prep` and `post` see.
struct RecordingHooks(Seen);

impl FlowHooks for RecordingHooks {
    type Prep = ();
    fn prep(&self, ctx: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(("flow.prep".into(), ctx.params().clone()));
        Ok(())
    }
    fn post(&self, ctx: &Ctx<'_>, _: &SharedStore, (): (), last: Action) -> Result<Action, BoxError> {
        self.0.lock().unwrap().push(("flow.post".into(), ctx.params().clone()));
        Ok(last)
    }
}

/// Batch hooks: fixed entries; record what `prep` and `post` see.
struct Entries {
    entries: Vec<Params>,
    seen: Seen,
}

impl BatchFlowHooks for Entries {
    fn prep(&self, ctx: &Ctx<'_>, _: &SharedStore) -> Result<Vec<Params>, BoxError> {
        self.seen.lock().unwrap().push(("batch.prep".into(), ctx.params().clone()));
        Ok(self.entries.clone())
    }
    fn post(&self, ctx: &Ctx<'_>, _: &SharedStore, _: Vec<Params>) -> Result<Action, BoxError> {
        self.seen.lock().unwrap().push(("batch.post".into(), ctx.params().clone()));
        Ok(Action::NONE)
    }
}

impl AsyncBatchFlowHooks for Entries {
    async fn prep(&self, ctx: &Ctx<'_>, _: &SharedStore) -> Result<Vec<Params>, BoxError> {
        self.seen.lock().unwrap().push(("batch.prep".into(), ctx.params().clone()));
        Ok(self.entries.clone())
    }
    async fn post(&self, ctx: &Ctx<'_>, _: &SharedStore, _: Vec<Params>) -> Result<Action, BoxError> {
        self.seen.lock().unwrap().push(("batch.post".into(), ctx.params().clone()));
        Ok(Action::NONE)
    }
}

// --- Nodes and flows ---

#[test]
fn a_node_run_alone_sees_the_params_it_is_run_with() {
    let log = Seen::default();
    let node = Recorder::new("n", &log);
    node.run(&SharedStore::new()).unwrap();
    node.run_with_params(&SharedStore::new(), &p(json!({"k": 1}))).unwrap();
    assert_eq!(params_of(&log), [Params::new(), p(json!({"k": 1}))]);
}

#[test]
fn every_node_in_a_flow_sees_exactly_the_flows_params() {
    let log = Seen::default();
    let mut flow = Flow::new().with_hooks(RecordingHooks(Arc::clone(&log)));
    let a = flow.start(Recorder::new("a", &log));
    let b = flow.add(Recorder::new("b", &log));
    flow.link(a >> b);
    flow.set_params(p(json!({"f": 1})));
    flow.run(&SharedStore::new()).unwrap();
    let expected = p(json!({"f": 1}));
    assert_eq!(
        seen(&log),
        [
            ("flow.prep".into(), expected.clone()),
            ("a".into(), expected.clone()),
            ("b".into(), expected.clone()),
            ("flow.post".into(), expected)
        ]
    );
}

#[test]
fn a_nested_flow_run_alone_uses_its_own_params() {
    let log = Seen::default();
    let mut inner = Flow::new();
    inner.start(Recorder::new("inner", &log));
    inner.set_params(p(json!({"i": 1})));
    inner.run(&SharedStore::new()).unwrap();
    assert_eq!(params_of(&log), [p(json!({"i": 1}))]);
}

#[test]
fn a_nested_flow_gets_its_parents_params_not_its_own() {
    let log = Seen::default();
    let mut inner = Flow::new().with_hooks(RecordingHooks(Arc::clone(&log)));
    inner.start(Recorder::new("inner", &log));
    inner.set_params(p(json!({"i": 1})));

    let mut outer = Flow::new();
    let inner = outer.start(inner);
    let after = outer.add(Recorder::new("after", &log));
    outer.link(inner >> after);
    outer.set_params(p(json!({"o": 1})));
    outer.run(&SharedStore::new()).unwrap();

    // Python: outer {'o': 1}, inner {'i': 1} -> inner's node saw {'o': 1}.
    let o = p(json!({"o": 1}));
    assert_eq!(params_of(&log), [o.clone(), o.clone(), o.clone(), o]);
}

#[test]
fn a_nested_flow_gets_its_parents_params_even_when_empty() {
    // Python's `set_params(p)` overwrites the inner flow's params with the
    // parent's `{}`; the inner node does not fall back to `{'i': 1}`.
    let log = Seen::default();
    let mut inner = Flow::new();
    inner.start(Recorder::new("inner", &log));
    inner.set_params(p(json!({"i": 1})));
    let mut outer = Flow::new();
    outer.start(inner);
    outer.run(&SharedStore::new()).unwrap();
    assert_eq!(params_of(&log), [Params::new()]);
}

#[tokio::test]
async fn nested_async_flows_pass_params_down_every_level() {
    let log = Seen::default();
    let mut innermost = AsyncFlow::new();
    innermost.start(AsyncRecorder::new("innermost", &log));
    innermost.set_params(p(json!({"level": 3})));
    let mut middle = AsyncFlow::new();
    let m = middle.start(AsyncRecorder::new("middle", &log));
    let i = middle.add(innermost);
    middle.link(m >> i);
    middle.set_params(p(json!({"level": 2})));
    let mut top = AsyncFlow::new();
    top.start(middle);
    top.set_params(p(json!({"level": 1})));
    top.run(&SharedStore::new()).await.unwrap();
    assert_eq!(params_of(&log), [p(json!({"level": 1})), p(json!({"level": 1}))]);
}

#[test]
fn params_are_read_only_so_nothing_leaks_between_nodes() {
    // Deliberate difference: in Python a node's `self.params['x'] = ...`
    // is seen by the nodes after it (they share one dict). Here a node can
    // only change its own copy.
    struct Mutator;
    impl Node for Mutator {
        type Prep = Params;
        type Exec = ();
        fn prep(&self, ctx: &Ctx<'_>, _: &SharedStore) -> Result<Params, BoxError> {
            let mut mine = ctx.params().clone();
            mine.insert("leak", true);
            Ok(mine)
        }
        fn exec(&self, _: &Ctx<'_>, mine: &Params) -> Result<(), BoxError> {
            assert!(mine.contains_key("leak"));
            Ok(())
        }
    }

    let log = Seen::default();
    let mut flow = Flow::new();
    let m = flow.start(Mutator);
    let after = flow.add(Recorder::new("after", &log));
    flow.link(m >> after);
    flow.set_params(p(json!({"f": 1})));
    flow.run(&SharedStore::new()).unwrap();
    assert_eq!(params_of(&log), [p(json!({"f": 1}))]);
    assert_eq!(flow.params(), &p(json!({"f": 1})), "the flow's params are unchanged");
}

// --- Batch flows ---

fn entries() -> Vec<Params> {
    vec![p(json!({"key": "a", "only_first": true})), p(json!({"key": "b"}))]
}

/// What the nodes of a batch flow with base `{"key": "base", "keep": 1}`
/// and `entries()` see, hooks included.
fn expected_batch_log() -> Vec<(String, Params)> {
    let base = p(json!({"key": "base", "keep": 1}));
    vec![
        ("batch.prep".into(), base.clone()),
        ("node".into(), p(json!({"key": "a", "keep": 1, "only_first": true}))),
        ("node".into(), p(json!({"key": "b", "keep": 1}))),
        ("batch.post".into(), base),
    ]
}

#[test]
fn batch_entry_keys_override_the_flows_params() {
    let log = Seen::default();
    let mut graph = Flow::new();
    graph.start(Recorder::new("node", &log));
    let mut batch = BatchFlow::new(graph, Entries { entries: entries(), seen: Arc::clone(&log) });
    batch.set_params(p(json!({"key": "base", "keep": 1})));
    batch.run(&SharedStore::new()).unwrap();
    assert_eq!(seen(&log), expected_batch_log());
}

#[tokio::test]
async fn async_batch_entry_keys_override_the_flows_params() {
    let log = Seen::default();
    let mut graph = AsyncFlow::new();
    graph.start(AsyncRecorder::new("node", &log));
    let mut batch = AsyncBatchFlow::new(graph, Entries { entries: entries(), seen: Arc::clone(&log) });
    batch.set_params(p(json!({"key": "base", "keep": 1})));
    batch.run(&SharedStore::new()).await.unwrap();
    assert_eq!(seen(&log), expected_batch_log());
}

#[tokio::test]
async fn parallel_batch_entry_keys_override_the_flows_params() {
    let log = Seen::default();
    let mut graph = AsyncFlow::new();
    graph.start(AsyncRecorder::new("node", &log));
    let mut batch = AsyncParallelBatchFlow::new(graph, Entries { entries: entries(), seen: Arc::clone(&log) });
    batch.set_params(p(json!({"key": "base", "keep": 1})));
    batch.run(&SharedStore::new()).await.unwrap();
    // The runs start in entry order; no node awaits, so the order is fixed.
    assert_eq!(seen(&log), expected_batch_log());
}

#[test]
fn a_nested_batch_flow_lays_entries_over_its_parents_params() {
    let log = Seen::default();
    let mut graph = Flow::new();
    graph.start(Recorder::new("node", &log));
    let mut batch = BatchFlow::new(graph, Entries { entries: entries(), seen: Arc::clone(&log) });
    batch.set_params(p(json!({"ignored": "the batch flow's own params"})));
    let mut outer = Flow::new();
    outer.start(batch);
    outer.set_params(p(json!({"key": "base", "keep": 1})));
    outer.run(&SharedStore::new()).unwrap();
    assert_eq!(seen(&log), expected_batch_log());
}

#[tokio::test(start_paused = true)]
async fn concurrent_parallel_batch_runs_see_only_their_own_params() {
    /// Reads `id` in `prep`, sleeps so runs interleave, and checks in
    /// `post` that `ctx.params()` still holds the same `id`.
    struct Stage {
        name: &'static str,
        seen: Seen,
    }
    impl AsyncNode for Stage {
        type Prep = u64;
        type Exec = ();
        async fn prep(&self, ctx: &Ctx<'_>, _: &SharedStore) -> Result<u64, BoxError> {
            Ok(ctx.params().get_as("id")?)
        }
        async fn exec(&self, _: &Ctx<'_>, id: &u64) -> Result<(), BoxError> {
            // Later ids finish first: runs overlap in reverse order.
            tokio::time::sleep(Duration::from_millis(100 - id * 5)).await;
            Ok(())
        }
        async fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, id: u64, (): ()) -> Result<Action, BoxError> {
            assert_eq!(ctx.params().get_as::<u64>("id")?, id, "{}: params changed mid-run", self.name);
            self.seen.lock().unwrap().push((self.name.to_owned(), ctx.params().clone()));
            shared.update(&format!("run_{id}"), |v| *v = json!(format!("{}{}", v.as_str().unwrap_or(""), self.name)));
            Ok(Action::NONE)
        }
    }

    let log = Seen::default();
    let mut graph = AsyncFlow::new();
    let first = graph.start(Stage { name: "A", seen: Arc::clone(&log) });
    let second = graph.add(Stage { name: "B", seen: Arc::clone(&log) });
    graph.link(first >> second);
    let mut batch =
        AsyncParallelBatchFlow::new(graph, |_: &Ctx<'_>, _: &SharedStore| -> Result<Vec<Params>, BoxError> {
            Ok((0..20u64).map(|id| Params::new().with("id", id)).collect())
        });
    batch.set_params(p(json!({"common": true})));

    let shared = SharedStore::new();
    let start = tokio::time::Instant::now();
    batch.run(&shared).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(200), "all runs overlapped");

    let log = seen(&log);
    assert_eq!(log.len(), 40);
    // Completion order is reversed (id 19 first), proving the runs interleave.
    assert_eq!(log[0].1, p(json!({"common": true, "id": 19})));
    for id in 0..20u64 {
        let mine = p(json!({"common": true, "id": id}));
        assert_eq!(log.iter().filter(|(_, params)| *params == mine).count(), 2, "id {id}");
        assert_eq!(shared.get::<String>(&format!("run_{id}")).unwrap(), "AB", "id {id}: A then B, once each");
    }
}

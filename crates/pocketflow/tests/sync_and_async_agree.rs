//! Every node kind that runs under both a sync `Flow` and an `AsyncFlow`
//! (`Node`, `BatchNode`, a nested `Flow` with or without hooks, a
//! `BatchFlow`) behaves the same under both: the run context its hooks
//! see, the result, the statistics of the run, and the spans and events
//! it emits. Retries, fallbacks, item failures and panics included.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use pocketflow::{
    Action, AsyncFlow, BatchFlow, BatchNode, BoxError, Ctx, Flow, FlowHooks, Node, NodeId, NodeState, Params, RunStats,
    SharedStore, Wiring,
};
use pocketflow_test_support::{Capture, Captured};
use tracing_subscriber::layer::SubscriberExt;

/// What the hooks saw, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Notes the hook, its `Ctx` and what `pocketflow::current()` says.
    fn seen(&self, hook: &str, ctx: &Ctx<'_>) {
        let context = pocketflow::current().map_or_else(
            || "no context".to_owned(),
            |c| {
                format!(
                    "scope={:?} path={} flow={:?} node={:?} item={:?}",
                    c.scope(),
                    c.path(),
                    c.flow_name(),
                    c.node_name(),
                    c.item_index()
                )
            },
        );
        let entry = format!(
            "{hook} ctx(node={} attempt={} item={:?} params={:?}) {context}",
            ctx.node_name(),
            ctx.attempt(),
            ctx.item_index(),
            ctx.params().get("key"),
        );
        self.0.lock().unwrap().push(entry);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// How a probe's `exec` and fallback behave.
#[derive(Clone, Copy)]
struct Plan {
    attempts: usize,
    /// Attempts that fail before one succeeds.
    failures: usize,
    /// Whether the fallback recovers (else it fails with its own error).
    recovers: bool,
    /// Whether `exec` panics instead of failing.
    panics: bool,
}

const CLEAN: Plan = Plan { attempts: 1, failures: 0, recovers: true, panics: false };

/// A `Node` following its plan.
struct Probe {
    name: &'static str,
    plan: Plan,
    log: Log,
}

impl Node for Probe {
    type Prep = u32;
    type Exec = String;
    fn name(&self) -> std::borrow::Cow<'static, str> {
        self.name.into()
    }
    fn max_retries(&self) -> usize {
        self.plan.attempts
    }
    fn prep(&self, ctx: &Ctx<'_>, _: &SharedStore) -> Result<u32, BoxError> {
        self.log.seen("prep", ctx);
        Ok(7)
    }
    fn exec(&self, ctx: &Ctx<'_>, _: &u32) -> Result<String, BoxError> {
        self.log.seen("exec", ctx);
        let _user = tracing::info_span!("user_work", attempt = ctx.attempt()).entered();
        if ctx.attempt() < self.plan.failures {
            if self.plan.panics {
                panic!("exec panicked");
            }
            return Err(format!("attempt {} failed", ctx.attempt()).into());
        }
        Ok(format!("done at {}", ctx.attempt()))
    }
    fn exec_fallback(&self, ctx: &Ctx<'_>, _: &u32, error: BoxError) -> Result<String, BoxError> {
        self.log.seen("fallback", ctx);
        if self.plan.recovers { Ok(format!("recovered from {error}")) } else { Err("fallback gave up".into()) }
    }
    fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, _: u32, exec: String) -> Result<Action, BoxError> {
        self.log.seen("post", ctx);
        shared.set(self.name, exec)?;
        Ok(Action::NONE)
    }
}

/// A `BatchNode` over three items; item 1 follows `plan`, the others are
/// clean.
struct BatchProbe {
    plan: Plan,
    log: Log,
}

impl BatchNode for BatchProbe {
    type Item = u32;
    type Output = String;
    fn max_retries(&self) -> usize {
        self.plan.attempts
    }
    fn prep(&self, ctx: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u32>, BoxError> {
        self.log.seen("prep", ctx);
        Ok(vec![10, 11, 12])
    }
    fn exec(&self, ctx: &Ctx<'_>, item: &u32) -> Result<String, BoxError> {
        self.log.seen("exec", ctx);
        let _user = tracing::info_span!("user_work", item = *item).entered();
        if *item == 11 && ctx.attempt() < self.plan.failures {
            if self.plan.panics {
                panic!("item panicked");
            }
            return Err(format!("item {item} attempt {} failed", ctx.attempt()).into());
        }
        Ok(format!("{item} at {}", ctx.attempt()))
    }
    fn exec_fallback(&self, ctx: &Ctx<'_>, item: &u32, _: BoxError) -> Result<String, BoxError> {
        self.log.seen("fallback", ctx);
        if self.plan.recovers { Ok(format!("{item} recovered")) } else { Err(format!("item {item} lost").into()) }
    }
    fn post(&self, ctx: &Ctx<'_>, shared: &SharedStore, _: Vec<u32>, outputs: Vec<String>) -> Result<Action, BoxError> {
        self.log.seen("post", ctx);
        shared.set("batch", outputs)?;
        Ok("batched".into())
    }
}

/// Flow hooks that log what they see.
struct LoggingHooks(Log);

impl FlowHooks for LoggingHooks {
    type Prep = ();
    fn prep(&self, ctx: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        self.0.seen("flow prep", ctx);
        Ok(())
    }
    fn post(&self, ctx: &Ctx<'_>, _: &SharedStore, (): (), last: Action) -> Result<Action, BoxError> {
        self.0.seen("flow post", ctx);
        Ok(last)
    }
}

type BatchParams = fn(&Ctx<'_>, &SharedStore) -> Result<Vec<Params>, BoxError>;

/// What a scenario builds its graph with, the same calls for either flow
/// kind; the first step added is the start.
trait Graph {
    fn node(&mut self, node: Probe) -> NodeId;
    fn batch(&mut self, node: BatchProbe) -> NodeId;
    fn flow(&mut self, flow: Flow) -> NodeId;
    fn hooked_flow(&mut self, flow: Flow<SharedStore, LoggingHooks>) -> NodeId;
    fn batch_flow(&mut self, flow: BatchFlow<SharedStore, BatchParams>) -> NodeId;
    fn wire(&mut self, wiring: Wiring);
}

/// A flow being built, and whether it has its start node yet.
struct Builder<F> {
    flow: F,
    started: bool,
}

macro_rules! graph_impl {
    ($flow:ty) => {
        impl Builder<$flow> {
            fn first(&mut self, id: NodeId) -> NodeId {
                if !std::mem::replace(&mut self.started, true) {
                    self.flow.set_start(id);
                }
                id
            }
        }

        impl Graph for Builder<$flow> {
            fn node(&mut self, node: Probe) -> NodeId {
                let id = self.flow.add(node);
                self.first(id)
            }
            fn batch(&mut self, node: BatchProbe) -> NodeId {
                let id = self.flow.add(node);
                self.first(id)
            }
            fn flow(&mut self, flow: Flow) -> NodeId {
                let id = self.flow.add(flow);
                self.first(id)
            }
            fn hooked_flow(&mut self, flow: Flow<SharedStore, LoggingHooks>) -> NodeId {
                let id = self.flow.add(flow);
                self.first(id)
            }
            fn batch_flow(&mut self, flow: BatchFlow<SharedStore, BatchParams>) -> NodeId {
                let id = self.flow.add(flow);
                self.first(id)
            }
            fn wire(&mut self, wiring: Wiring) {
                self.flow.link(wiring);
            }
        }
    };
}
graph_impl!(Flow);
graph_impl!(AsyncFlow);

/// One scenario: builds the same graph into either flow kind.
type Build = fn(&mut dyn Graph, &Log);

fn probe(name: &'static str, plan: Plan, log: &Log) -> Probe {
    Probe { name, plan, log: log.clone() }
}

/// Everything observable about one run.
#[derive(Debug, PartialEq)]
struct Observed {
    result: Result<String, String>,
    seen: Vec<String>,
    stats: Vec<String>,
    spans: Vec<String>,
    events: Vec<String>,
}

fn stats_summary(stats: &RunStats) -> Vec<String> {
    stats
        .entries
        .iter()
        .map(|s| {
            let states: Vec<String> = [
                NodeState::Created,
                NodeState::Starting,
                NodeState::Running,
                NodeState::Suspended,
                NodeState::Resuming,
                NodeState::Completing,
                NodeState::Completed,
                NodeState::Failed,
                NodeState::Cancelled,
            ]
            .into_iter()
            .map(|state| format!("{state:?}={}", s.count(state)))
            .collect();
            format!(
                "{:?} {} {} runs={} failures={} polls={} suspensions={} {}",
                s.scope,
                s.name,
                s.path,
                s.runs,
                s.failures(),
                s.polls,
                s.suspensions,
                states.join(" ")
            )
        })
        .collect()
}

/// Fields that differ between runs for reasons other than the mode: times,
/// and the count of runs in flight in the process.
const UNRELATED: [&str; 3] = ["running_ms", "suspended_ms", "concurrent"];

/// `text` with every `<n> ms` (n a decimal) as `T ms`.
fn without_times(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split(" ms").enumerate() {
        if i > 0 {
            out.push_str(" ms");
        }
        let kept = part.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        out.push_str(kept);
        if kept.len() != part.len() {
            out.push('T');
        }
    }
    out
}

fn spans_summary(captured: &Captured) -> Vec<String> {
    captured
        .spans
        .iter()
        .enumerate()
        .map(|(index, span)| {
            let graph = span.fields.iter().find(|(k, _)| *k == "graph").map(|(_, v)| without_times(v));
            let mut fields: BTreeMap<&str, &str> = span
                .fields
                .iter()
                .filter(|(k, _)| !UNRELATED.contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            // The root's annotated graph shows times; the rest must agree.
            if let Some(graph) = &graph {
                fields.insert("graph", graph);
            }
            // The one intended difference: the outermost flow's kind.
            if span.parent.is_none() && fields.get("kind") == Some(&"AsyncFlow") {
                fields.insert("kind", "Flow");
            }
            format!(
                "#{index} {} parent={:?} closed={} {fields:?} states={:?}",
                span.name,
                span.parent,
                span.closed,
                captured.states_in(index)
            )
        })
        .collect()
}

fn events_summary(captured: &Captured) -> Vec<String> {
    captured
        .events
        .iter()
        .map(|e| {
            let fields: BTreeMap<&str, &str> = e.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            format!("{} in {:?} {fields:?}", e.name, e.span)
        })
        .collect()
}

fn observe(log: &Log, capture: &Capture, outcome: Result<pocketflow::RunReport, pocketflow::FlowError>) -> Observed {
    let (result, stats) = match outcome {
        Ok(report) => (Ok(report.action.to_string()), stats_summary(&report.stats)),
        Err(error) => (Err(error.to_string()), Vec::new()),
    };
    let captured = capture.snapshot();
    Observed { result, seen: log.take(), stats, spans: spans_summary(&captured), events: events_summary(&captured) }
}

fn run_sync(build: Build) -> Observed {
    let log = Log::default();
    let mut builder = Builder { flow: Flow::named("F"), started: false };
    build(&mut builder, &log);
    let flow = builder.flow;
    let capture = Capture::new();
    let outcome = tracing::subscriber::with_default(tracing_subscriber::registry().with(capture.clone()), || {
        flow.run_report(&SharedStore::new())
    });
    observe(&log, &capture, outcome)
}

fn run_async(build: Build) -> Observed {
    let log = Log::default();
    let mut builder = Builder { flow: AsyncFlow::named("F"), started: false };
    build(&mut builder, &log);
    let flow = builder.flow;
    let capture = Capture::new();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let outcome = tracing::subscriber::with_default(tracing_subscriber::registry().with(capture.clone()), || {
        runtime.block_on(flow.run_report(&SharedStore::new()))
    });
    observe(&log, &capture, outcome)
}

fn assert_agree(build: Build) -> Observed {
    let sync = run_sync(build);
    let run_async = run_async(build);
    for (what, a, b) in [
        ("hook contexts", &sync.seen, &run_async.seen),
        ("stats", &sync.stats, &run_async.stats),
        ("spans", &sync.spans, &run_async.spans),
        ("events", &sync.events, &run_async.events),
    ] {
        for (i, (a, b)) in a.iter().zip(b.iter()).enumerate() {
            assert_eq!(a, b, "{what} #{i} differ (left: Flow, right: AsyncFlow)");
        }
        assert_eq!(a.len(), b.len(), "{what}: as many under Flow as under AsyncFlow");
    }
    assert_eq!(sync.result, run_async.result);
    sync
}

fn seen_containing<'a>(observed: &'a Observed, needle: &'a str) -> impl Iterator<Item = &'a String> + 'a {
    observed.seen.iter().filter(move |s| s.contains(needle))
}

#[test]
fn a_node_with_retries_behaves_the_same_under_both_flows() {
    let observed = assert_agree(|g, log| {
        let a = g.node(probe("A", Plan { attempts: 3, failures: 2, ..CLEAN }, log));
        let b = g.node(probe("B", CLEAN, log));
        g.wire(a >> b);
    });
    assert_eq!(observed.result, Ok("None".to_owned()));
    assert_eq!(seen_containing(&observed, "exec ctx(node=A").count(), 3);
}

#[test]
fn a_node_whose_fallback_recovers_behaves_the_same_under_both_flows() {
    let observed = assert_agree(|g, log| {
        g.node(probe("A", Plan { attempts: 2, failures: 5, ..CLEAN }, log));
    });
    assert_eq!(observed.result, Ok("None".to_owned()));
    assert_eq!(seen_containing(&observed, "fallback ctx(node=A attempt=1").count(), 1);
}

#[test]
fn a_node_whose_fallback_fails_fails_the_same_under_both_flows() {
    let observed = assert_agree(|g, log| {
        g.node(probe("A", Plan { attempts: 2, failures: 5, recovers: false, panics: false }, log));
    });
    assert!(observed.result.as_ref().is_err_and(|e| e.contains("fallback gave up")), "{:?}", observed.result);
}

#[test]
fn a_panicking_node_fails_the_same_under_both_flows() {
    let observed = assert_agree(|g, log| {
        g.node(probe("A", Plan { attempts: 3, failures: 1, recovers: true, panics: true }, log));
    });
    assert!(observed.result.as_ref().is_err_and(|e| e.contains("panicked")), "{:?}", observed.result);
}

#[test]
fn a_batch_node_gives_its_items_scope_context_and_stats_under_both_flows() {
    let observed = assert_agree(|g, log| {
        let batch = g.batch(BatchProbe { plan: Plan { attempts: 2, failures: 1, ..CLEAN }, log: log.clone() });
        let after = g.node(probe("After", CLEAN, log));
        g.wire(batch.on("batched") >> after);
    });
    assert_eq!(observed.result, Ok("None".to_owned()));
    // Inside an item's exec: the item's scope, index and path.
    assert!(
        observed.seen.iter().any(|s| s.starts_with("exec ctx(node=BatchProbe attempt=1 item=Some(1)")
            && s.ends_with("scope=Item path=F/BatchProbe[1] flow=Some(\"F\") node=Some(\"BatchProbe\") item=Some(1)")),
        "{:#?}",
        observed.seen
    );
    // The three items add up in one entry.
    let items: Vec<_> = observed.stats.iter().filter(|s| s.starts_with("Item BatchProbe F/BatchProbe[")).collect();
    assert_eq!(items.len(), 1, "{items:?}");
    assert!(items[0].starts_with("Item BatchProbe F/BatchProbe[*] runs=3 "), "{items:?}");
}

#[test]
fn a_batch_item_that_fails_for_good_fails_the_same_under_both_flows() {
    let observed = assert_agree(|g, log| {
        g.batch(BatchProbe {
            plan: Plan { attempts: 2, failures: 5, recovers: false, panics: false },
            log: log.clone(),
        });
    });
    assert!(observed.result.as_ref().is_err_and(|e| e.contains("item 11 lost")), "{:?}", observed.result);
}

#[test]
fn a_batch_item_that_recovers_in_its_fallback_behaves_the_same_under_both_flows() {
    let observed = assert_agree(|g, log| {
        g.batch(BatchProbe { plan: Plan { attempts: 2, failures: 5, ..CLEAN }, log: log.clone() });
    });
    assert_eq!(observed.result, Ok("batched".to_owned()));
}

#[test]
fn a_panicking_batch_item_fails_the_same_under_both_flows() {
    let observed = assert_agree(|g, log| {
        g.batch(BatchProbe { plan: Plan { attempts: 2, failures: 1, recovers: true, panics: true }, log: log.clone() });
    });
    assert!(observed.result.as_ref().is_err_and(|e| e.contains("item panicked")), "{:?}", observed.result);
}

#[test]
fn nested_flows_with_and_without_hooks_behave_the_same_under_both_flows() {
    let observed = assert_agree(|g, log| {
        let mut inner = Flow::named("Inner");
        let x = inner.start(probe("X", Plan { attempts: 2, failures: 1, ..CLEAN }, log));
        let y = inner.add(BatchProbe { plan: CLEAN, log: log.clone() });
        inner.link(x >> y);
        let mut hooked = Flow::named("Hooked").with_hooks(LoggingHooks(log.clone()));
        hooked.start(probe("Z", CLEAN, log));
        let inner = g.flow(inner);
        let hooked = g.hooked_flow(hooked);
        g.wire(inner.on("batched") >> hooked);
    });
    assert_eq!(observed.result, Ok("None".to_owned()));
    assert!(observed.seen.iter().any(|s| s.contains("path=F/Inner/BatchProbe[2]")), "{:#?}", observed.seen);
    assert!(observed.seen.iter().any(|s| s.starts_with("flow prep") && s.contains("path=F/Hooked ")));
}

#[test]
fn a_batch_flow_gives_its_parameter_sets_item_scope_under_both_flows() {
    let observed = assert_agree(|g, log| {
        let mut inner = Flow::named("PerKey");
        inner.start(probe("Work", Plan { attempts: 2, failures: 1, ..CLEAN }, log));
        let sets: BatchParams = |_, _| Ok(vec![Params::new().with("key", "a"), Params::new().with("key", "b")]);
        g.batch_flow(BatchFlow::new(inner, sets));
    });
    assert_eq!(observed.result, Ok("None".to_owned()));
    assert!(
        observed.seen.iter().any(|s| s.contains("params=Some(String(\"b\"))")
            && s.ends_with("scope=Node path=F/PerKey[1]/Work flow=Some(\"PerKey\") node=Some(\"Work\") item=Some(1)")),
        "{:#?}",
        observed.seen
    );
    let items: Vec<_> = observed.stats.iter().filter(|s| s.starts_with("Item PerKey F/PerKey[")).collect();
    assert_eq!(items.len(), 1, "{items:?}");
    assert!(items[0].starts_with("Item PerKey F/PerKey[*] runs=2 "), "{items:?}");
}

#[test]
fn a_failing_batch_flow_fails_the_same_under_both_flows() {
    let observed = assert_agree(|g, log| {
        let mut inner = Flow::named("PerKey");
        inner.start(probe("Work", Plan { attempts: 1, failures: 1, recovers: false, panics: false }, log));
        let sets: BatchParams = |_, _| Ok(vec![Params::new().with("key", "a"), Params::new().with("key", "b")]);
        g.batch_flow(BatchFlow::new(inner, sets));
    });
    assert!(observed.result.is_err());
}

//! A flow's graph as a Mermaid `flowchart`: one implementation for every
//! flow kind, plain or annotated with a run's [`RunStats`].
//!
//! Nested flows become `subgraph`s. The walk through the nest keeps its own
//! stack instead of recursing, so a flow nested thousands deep (which can be
//! built, though not run) renders without overflowing the thread's stack
//! when a subscriber formats the `graph` field.

use std::fmt;
use std::time::Duration;

use crate::action::DEFAULT_ACTION;
use crate::current::{Run, Scope};
use crate::graph::Graph;
use crate::stats::{NodeStats, RunStats};
use crate::step::{AsyncStep, SyncStep};

/// What a step in a graph is, for drawing it. Public only because the
/// sealed step traits mention it; it cannot be named outside the crate.
pub enum Shape<'a> {
    /// A node; `kind` is its span kind (`Node`, `BatchNode`, …).
    Node {
        /// One of the node kinds of [`telemetry::KINDS`](crate::telemetry::KINDS).
        kind: &'static str,
    },
    /// A nested flow, with its own graph.
    Flow(FlowShape<'a>),
}

/// A flow, for drawing it: its name (the one its spans and statistics
/// paths use), kind and graph.
#[derive(Clone, Copy)]
pub struct FlowShape<'a> {
    pub(crate) name: &'a str,
    pub(crate) kind: &'static str,
    pub(crate) graph: &'a dyn GraphView,
}

impl fmt::Debug for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node { kind } => f.debug_struct("Node").field("kind", kind).finish(),
            Self::Flow(flow) => fmt::Debug::fmt(flow, f),
        }
    }
}

impl fmt::Debug for FlowShape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flow").field("name", &self.name).field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// One step of a graph, as drawn.
pub(crate) struct StepView<'a> {
    pub(crate) name: &'a str,
    pub(crate) shape: Shape<'a>,
    /// Actions and the indices of their successors, in insertion order.
    pub(crate) successors: Vec<(&'a str, usize)>,
}

/// A graph whatever its step type, so sync and async flows share one
/// renderer.
pub(crate) trait GraphView: Send + Sync {
    /// The number of steps.
    fn len(&self) -> usize;
    /// The start step's index.
    fn start_index(&self) -> Option<usize>;
    /// The step at `index`.
    fn step(&self, index: usize) -> Option<StepView<'_>>;
    /// The flow's Mermaid text as last drawn, while the graph is unchanged.
    fn drawn(&self) -> &std::sync::OnceLock<crate::graph::DrawnGraph>;
}

/// A step type that can say what it is.
pub(crate) trait Shaped {
    fn shape(&self) -> Shape<'_>;
}

impl<S> Shaped for dyn AsyncStep<S> + '_ {
    fn shape(&self) -> Shape<'_> {
        AsyncStep::shape(self)
    }
}

impl<S> Shaped for dyn SyncStep<S> + '_ {
    fn shape(&self) -> Shape<'_> {
        AsyncStep::shape(self)
    }
}

impl<T: ?Sized + Shaped + Send + Sync> GraphView for Graph<T> {
    fn len(&self) -> usize {
        self.entries().len()
    }

    fn start_index(&self) -> Option<usize> {
        self.start_id().map(crate::NodeId::index)
    }

    fn drawn(&self) -> &std::sync::OnceLock<crate::graph::DrawnGraph> {
        Self::drawn(self)
    }

    fn step(&self, index: usize) -> Option<StepView<'_>> {
        let entry = self.entries().get(index)?;
        Some(StepView {
            name: &entry.name,
            shape: entry.step.shape(),
            successors: entry.successors().iter().map(|(action, to)| (&**action, to.index())).collect(),
        })
    }
}

/// The flowchart of a flow, written when formatted: recording it on a span
/// costs nothing unless a subscriber formats the field.
pub(crate) struct Mermaid<'a> {
    pub(crate) root: FlowShape<'a>,
    pub(crate) stats: Option<&'a RunStats>,
}

impl fmt::Display for Mermaid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        render(f, &self.root, self.stats.map(|s| s.entries.as_slice()))
    }
}

/// The flowchart annotated with the statistics a run has gathered so far,
/// read (under the run's lock) only when formatted.
pub(crate) struct RunGraph<'a> {
    pub(crate) root: FlowShape<'a>,
    pub(crate) run: &'a Run,
}

impl fmt::Display for RunGraph<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.run
            .with_stats(|entries| render(f, &self.root, Some(entries)))
            .unwrap_or_else(|| render(f, &self.root, None))
    }
}

impl fmt::Debug for RunGraph<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for Mermaid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `to_mermaid` and `to_mermaid_with_stats` for a flow kind with a
/// `flow_shape` method.
macro_rules! mermaid_methods {
    () => {
        /// The flow's graph as a Mermaid `flowchart`: a `subgraph` per flow
        /// (this one and each nested one) with its start marked, a node per
        /// step (batch and parallel-batch steps drawn as subroutines and
        /// tagged), and an edge per action, labelled unless it is the
        /// default one. Node ids follow the order steps were added, so the
        /// text only changes when the graph does.
        pub fn to_mermaid(&self) -> String {
            crate::mermaid::to_mermaid(self.flow_shape(), None)
        }

        /// [`to_mermaid`](Self::to_mermaid) annotated with a run of this
        /// flow (its [`RunReport::stats`](crate::RunReport::stats)): each
        /// step's runs and wall time over them (running plus suspended),
        /// batch items, failures; steps
        /// that failed are red, steps that never ran are grey.
        pub fn to_mermaid_with_stats(&self, stats: &crate::RunStats) -> String {
            crate::mermaid::to_mermaid(self.flow_shape(), Some(stats))
        }
    };
}
pub(crate) use mermaid_methods;

/// The flowchart as a string.
pub(crate) fn to_mermaid(root: FlowShape<'_>, stats: Option<&RunStats>) -> String {
    Mermaid { root, stats }.to_string()
}

/// A flow whose steps are being written.
struct Frame<'a> {
    graph: &'a dyn GraphView,
    /// The subgraph's Mermaid id; its steps' ids are `{id}_{index}`.
    id: String,
    /// The statistics path its steps' paths start with (`Main`,
    /// `Main/PerUser[*]`).
    prefix: String,
    next: usize,
    depth: usize,
}

fn render(out: &mut dyn fmt::Write, root: &FlowShape<'_>, stats: Option<&[NodeStats]>) -> fmt::Result {
    let mut failed = Vec::new();
    let mut not_run = Vec::new();
    out.write_str("flowchart TD\n")?;
    let root_id = String::from("flow");
    let root_path = root.name.to_owned();
    open_flow(out, root, &root_id, &root_path, stats, 1, &mut failed, &mut not_run)?;
    let mut stack =
        vec![Frame { graph: root.graph, id: root_id, prefix: items_prefix(root.kind, root_path), next: 0, depth: 2 }];
    while let Some(frame) = stack.last_mut() {
        let Some(step) = (frame.next < frame.graph.len()).then(|| frame.graph.step(frame.next)).flatten() else {
            // Every step written: the edges, then close the subgraph.
            let frame = stack.pop().ok_or(fmt::Error)?;
            write_edges(out, &frame)?;
            indent(out, frame.depth - 1)?;
            out.write_str("end\n")?;
            continue;
        };
        let id = format!("{}_{}", frame.id, frame.next);
        frame.next += 1;
        let depth = frame.depth + 1;
        match step.shape {
            Shape::Node { kind } => {
                let path = format!("{}/{}", frame.prefix, step.name);
                let node_stats =
                    stats.map(|s| (find(s, Scope::Node, &path), find(s, Scope::Item, &format!("{path}[*]"))));
                let (open, close) = if mark(kind).is_some() { ("[[", "]]") } else { ("[", "]") };
                indent(out, frame.depth)?;
                write!(out, "{id}{open}\"")?;
                escape(out, step.name)?;
                if let Some(tag) = mark(kind) {
                    write!(out, "<br/>({tag})")?;
                }
                if let Some((node, items)) = node_stats {
                    annotate(out, node, items, &id, &mut failed, &mut not_run)?;
                }
                writeln!(out, "\"{close}")?;
            }
            Shape::Flow(flow) => {
                // A nested flow runs (and is counted) under its own name.
                let path = format!("{}/{}", frame.prefix, flow.name);
                open_flow(out, &flow, &id, &path, stats, depth - 1, &mut failed, &mut not_run)?;
                let prefix = items_prefix(flow.kind, path);
                stack.push(Frame { graph: flow.graph, id, prefix, next: 0, depth });
            }
        }
    }
    if stats.is_some() {
        out.write_str("classDef failed fill:#fdd,stroke:#c00,stroke-width:2px,color:#600\n")?;
        out.write_str("classDef notRun fill:#eee,stroke:#bbb,stroke-dasharray:3 3,color:#999\n")?;
        for (class, ids) in [("failed", &failed), ("notRun", &not_run)] {
            if !ids.is_empty() {
                writeln!(out, "class {} {class}", ids.join(","))?;
            }
        }
    }
    Ok(())
}

/// Writes a flow's `subgraph` line and its start marker.
#[allow(clippy::too_many_arguments, reason = "one call site per flow position; a struct would only rename them")]
fn open_flow(
    out: &mut dyn fmt::Write,
    flow: &FlowShape<'_>,
    id: &str,
    path: &str,
    stats: Option<&[NodeStats]>,
    depth: usize,
    failed: &mut Vec<String>,
    not_run: &mut Vec<String>,
) -> fmt::Result {
    indent(out, depth)?;
    write!(out, "subgraph {id}[\"")?;
    escape(out, flow.name)?;
    if let Some(tag) = mark(flow.kind) {
        write!(out, "<br/>({tag})")?;
    }
    if let Some(stats) = stats {
        let items = mark(flow.kind).and_then(|_| find(stats, Scope::Item, &format!("{path}[*]")));
        annotate(out, find(stats, Scope::Flow, path), items, id, failed, not_run)?;
    }
    out.write_str("\"]\n")?;
    if let Some(start) = flow.graph.start_index() {
        indent(out, depth + 1)?;
        writeln!(out, "{id}_start((start)) --> {id}_{start}")?;
    }
    Ok(())
}

fn write_edges(out: &mut dyn fmt::Write, frame: &Frame<'_>) -> fmt::Result {
    for index in 0..frame.graph.len() {
        let Some(step) = frame.graph.step(index) else { continue };
        for (action, to) in step.successors {
            indent(out, frame.depth)?;
            write!(out, "{}_{index} -->", frame.id)?;
            if action != DEFAULT_ACTION {
                out.write_str("|\"")?;
                escape(out, action)?;
                out.write_str("\"|")?;
            }
            writeln!(out, " {}_{to}", frame.id)?;
        }
    }
    Ok(())
}

/// The tag of a batch or parallel-batch kind.
fn mark(kind: &str) -> Option<&'static str> {
    match kind {
        "BatchNode" | "AsyncBatchNode" | "BatchFlow" | "AsyncBatchFlow" => Some("batch"),
        "AsyncParallelBatchNode" | "AsyncParallelBatchFlow" => Some("parallel batch"),
        _ => None,
    }
}

/// The path prefix of a flow's steps: a batch flow's run inside its items.
fn items_prefix(kind: &str, path: String) -> String {
    if mark(kind).is_some() { path + "[*]" } else { path }
}

fn find<'a>(stats: &'a [NodeStats], scope: Scope, path: &str) -> Option<&'a NodeStats> {
    stats.iter().find(|s| s.scope == scope && s.path == path)
}

/// Appends a step's runs, time, items and failures to its label, and
/// classes it failed or not run.
fn annotate(
    out: &mut dyn fmt::Write,
    node: Option<&NodeStats>,
    items: Option<&NodeStats>,
    id: &str,
    failed: &mut Vec<String>,
    not_run: &mut Vec<String>,
) -> fmt::Result {
    let Some(node) = node else {
        not_run.push(id.to_owned());
        return out.write_str("<br/>not run");
    };
    let s = if node.runs == 1 { "" } else { "s" };
    // Wall time: for an async step, waiting (suspended) is part of it.
    let wall = node.running.total.saturating_add(node.suspended.total);
    write!(out, "<br/>{} run{s} · {}", node.runs, Millis(wall))?;
    if let Some(items) = items {
        let s = if items.runs == 1 { "" } else { "s" };
        write!(out, "<br/>{} item{s}", items.runs)?;
        if items.failures() > 0 {
            write!(out, ", {} failed", items.failures())?;
        }
    }
    if node.failures() > 0 {
        write!(out, "<br/>{} failed", node.failures())?;
        failed.push(id.to_owned());
    }
    Ok(())
}

/// A duration in milliseconds, to a tenth.
struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} ms", self.0.as_secs_f64() * 1000.0)
    }
}

fn indent(out: &mut dyn fmt::Write, depth: usize) -> fmt::Result {
    for _ in 0..depth {
        out.write_str("    ")?;
    }
    Ok(())
}

/// Writes `text` for a quoted Mermaid label: characters Mermaid's parser
/// or its HTML labels would take as syntax become entity codes (`#34;`),
/// line breaks become spaces.
fn escape(out: &mut dyn fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c {
            '"' | '#' | '&' | '<' | '>' | '|' | '`' | ';' | '[' | ']' | '{' | '}' | '(' | ')' => {
                write!(out, "#{};", u32::from(c))?;
            }
            '\n' | '\r' | '\t' => out.write_char(' ')?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::lifecycle::{LifecycleStats, NodeState};
    use crate::stats::{Ended, StatsTable};
    use crate::{Action, BatchNode, BoxError, Ctx, Flow, Node, SharedStore};

    struct Plain;

    impl Node for Plain {
        type Prep = ();
        type Exec = ();
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
            Ok(())
        }
        fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
            Ok(())
        }
    }

    struct Items;

    impl BatchNode for Items {
        type Item = u8;
        type Output = u8;
        fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u8>, BoxError> {
            Ok(vec![1])
        }
        fn exec(&self, _: &Ctx<'_>, item: &u8) -> Result<u8, BoxError> {
            Ok(*item)
        }
        fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: Vec<u8>, _: Vec<u8>) -> Result<Action, BoxError> {
            Ok(Action::NONE)
        }
    }

    fn ended(scope: Scope, path: &str, outcome: NodeState, running_ms: u64) -> Ended<'static> {
        Ended {
            scope,
            name: "",
            path: path.to_owned(),
            outcome,
            completing: outcome == NodeState::Completed,
            lifecycle: LifecycleStats {
                polls: 1,
                suspensions: 0,
                running: Duration::from_millis(running_ms),
                // As long waiting as running: the label shows the sum.
                suspended: Duration::from_millis(running_ms),
            },
        }
    }

    /// A run whose stats hold failures (a failed run returns an error, not
    /// a report, so these are built by hand): the failed steps are red and
    /// say how many runs and items failed.
    #[test]
    fn failed_steps_are_red_with_their_failures_and_items() {
        let mut flow: Flow = Flow::named("Main");
        let load = flow.add_named("Load", Plain);
        flow.set_start(load);
        let items = flow.add_named("Split", Items);
        let never = flow.add_named("Never", Plain);
        flow.link(load >> items);
        flow.connect_on(items, "more", never);

        let mut table = StatsTable::default();
        table.add(ended(Scope::Node, "Main/Load", NodeState::Completed, 2));
        table.add(ended(Scope::Node, "Main/Load", NodeState::Completed, 1));
        table.add(ended(Scope::Item, "Main/Split[*]", NodeState::Completed, 1));
        table.add(ended(Scope::Item, "Main/Split[*]", NodeState::Failed, 1));
        table.add(ended(Scope::Node, "Main/Split", NodeState::Failed, 4));
        table.add(ended(Scope::Flow, "Main", NodeState::Failed, 8));
        let stats = table.take();

        assert_eq!(
            flow.to_mermaid_with_stats(&stats),
            r#"flowchart TD
    subgraph flow["Main<br/>1 run · 16.0 ms<br/>1 failed"]
        flow_start((start)) --> flow_0
        flow_0["Load<br/>2 runs · 6.0 ms"]
        flow_1[["Split<br/>(batch)<br/>1 run · 8.0 ms<br/>2 items, 1 failed<br/>1 failed"]]
        flow_2["Never<br/>not run"]
        flow_0 --> flow_1
        flow_1 -->|"more"| flow_2
    end
classDef failed fill:#fdd,stroke:#c00,stroke-width:2px,color:#600
classDef notRun fill:#eee,stroke:#bbb,stroke-dasharray:3 3,color:#999
class flow,flow_1 failed
class flow_2 notRun
"#
        );
    }

    /// A nest far deeper than a run allows still renders: the walk keeps
    /// its own stack.
    #[test]
    fn a_very_deep_nest_renders_without_recursion() -> Result<(), Box<dyn std::error::Error>> {
        let mut flow: Flow = Flow::named("L0");
        flow.start(Plain);
        for level in 1..2_000 {
            let mut outer: Flow = Flow::named(format!("L{level}"));
            outer.start(flow);
            flow = outer;
        }
        let text = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || flow.to_mermaid())?
            .join()
            .map_err(|_| "rendering overflowed the small stack")?;
        assert_eq!(text.matches("subgraph ").count(), 2_000);
        assert_eq!(text.matches("(start)").count(), 2_000, "every level's start is marked");
        assert!(text.trim_end().ends_with("end"));
        Ok(())
    }
}

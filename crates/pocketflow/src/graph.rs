//! The node graph of a flow: nodes, their successors, and the wiring syntax.

use std::borrow::Cow;
use std::ops::{Shr, Sub};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::action::{Action, DEFAULT_ACTION};
use crate::run::RunEnv;
use crate::step::StepParts;
use crate::warning::FlowWarning;

/// A node inside one flow, as returned by `Flow::add`. Ids only mean
/// something to the flow that made them; using one with another flow is
/// reported when that flow runs ([`FlowError::InvalidGraph`](crate::FlowError)).
///
/// Ids combine like PocketFlow's nodes: `a >> b` means "after `a`, run `b`",
/// `a.on("action") >> b` means "after `a` returns `action`, run `b`", and
/// `a >> b >> c` chains. Pass the result to `Flow::link`. Python's spelling
/// `a - "action" >> b` works too, but clippy's `precedence` lint asks for
/// parentheses around `a - "action"`; `on` reads the same without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId {
    graph: u32,
    index: u32,
}

impl NodeId {
    /// The node's position in its flow, in the order nodes were added.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// Half an edge: `a.on("action") >> b` runs `b` after `a` returns
    /// `action` (Python's `a - "action" >> b`).
    pub fn on(self, action: impl Into<Cow<'static, str>>) -> Transition {
        Transition { from: self, action: action.into() }
    }
}

/// Edges written with `>>` and `-`, waiting to be added to a flow with
/// `Flow::link`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "wiring does nothing until passed to Flow::link"]
pub struct Wiring {
    pub(crate) edges: Vec<(NodeId, Cow<'static, str>, NodeId)>,
    last: NodeId,
}

/// `node.on("action")` (or `node - "action"`): half an edge, completed by
/// `>> successor`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a transition needs `>> successor`"]
pub struct Transition {
    from: NodeId,
    action: Cow<'static, str>,
}

impl Shr for NodeId {
    type Output = Wiring;
    fn shr(self, to: Self) -> Wiring {
        Wiring { edges: vec![(self, Cow::Borrowed(DEFAULT_ACTION), to)], last: to }
    }
}

impl Shr<NodeId> for Wiring {
    type Output = Self;
    fn shr(mut self, to: NodeId) -> Self {
        self.edges.push((self.last, Cow::Borrowed(DEFAULT_ACTION), to));
        self.last = to;
        self
    }
}

impl<A: Into<Cow<'static, str>>> Sub<A> for NodeId {
    type Output = Transition;
    fn sub(self, action: A) -> Transition {
        self.on(action)
    }
}

impl Shr<NodeId> for Transition {
    type Output = Wiring;
    fn shr(self, to: NodeId) -> Wiring {
        Wiring { edges: vec![(self.from, self.action, to)], last: to }
    }
}

pub(crate) struct Entry<T: ?Sized> {
    pub(crate) name: Cow<'static, str>,
    successors: Vec<(Cow<'static, str>, NodeId)>,
    pub(crate) step: Box<T>,
}

impl<T: ?Sized> Entry<T> {
    /// Actions and their successors, in the order they were wired.
    pub(crate) fn successors(&self) -> &[(Cow<'static, str>, NodeId)] {
        &self.successors
    }
}

/// Nodes in insertion order; successors by action, in insertion order.
pub(crate) struct Graph<T: ?Sized> {
    id: u32,
    entries: Vec<Entry<T>>,
    start: Option<NodeId>,
    warnings: Vec<FlowWarning>,
    errors: Vec<String>,
    /// The flow's Mermaid text, drawn at its first traced run and reused:
    /// the graph cannot change while it runs (a run borrows it), and every
    /// method that changes it clears this.
    mermaid: OnceLock<DrawnGraph>,
}

/// A flow's Mermaid text, with the name and kind it was drawn under.
#[derive(Debug)]
pub(crate) struct DrawnGraph {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) text: String,
}

static NEXT_GRAPH_ID: AtomicU32 = AtomicU32::new(0);

impl<T: ?Sized> Graph<T> {
    /// Removes every step, for the flow's teardown (`step::drop_nested`).
    pub(crate) fn drain_steps(&mut self) -> impl Iterator<Item = Box<T>> + '_ {
        self.mermaid = OnceLock::new();
        self.entries.drain(..).map(|entry| entry.step)
    }

    /// The cached Mermaid text (see the field).
    pub(crate) fn drawn(&self) -> &OnceLock<DrawnGraph> {
        &self.mermaid
    }

    pub(crate) fn new() -> Self {
        Self {
            id: NEXT_GRAPH_ID.fetch_add(1, Ordering::Relaxed),
            entries: Vec::new(),
            start: None,
            warnings: Vec::new(),
            errors: Vec::new(),
            mermaid: OnceLock::new(),
        }
    }

    pub(crate) fn add(&mut self, parts: StepParts<T>) -> NodeId {
        self.mermaid = OnceLock::new();
        let index = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        self.warnings.extend(parts.warnings);
        self.entries.push(Entry { name: parts.name, successors: Vec::new(), step: parts.step });
        NodeId { graph: self.id, index }
    }

    fn check(&mut self, id: NodeId, role: &str) -> bool {
        let valid = id.graph == self.id && id.index() < self.entries.len();
        if !valid {
            self.errors.push(format!("{role} node id {} belongs to another flow", id.index()));
        }
        valid
    }

    pub(crate) fn set_start(&mut self, id: NodeId) {
        self.mermaid = OnceLock::new();
        if self.check(id, "start") {
            self.start = Some(id);
        }
    }

    pub(crate) fn connect(&mut self, from: NodeId, action: Cow<'static, str>, to: NodeId) {
        self.mermaid = OnceLock::new();
        if !(self.check(from, "source") & self.check(to, "successor")) {
            return;
        }
        let entry = &mut self.entries[from.index()];
        if let Some(slot) = entry.successors.iter_mut().find(|(a, _)| *a == action) {
            slot.1 = to;
            let warning =
                FlowWarning::OverwrittenSuccessor { node: entry.name.to_string(), action: action.into_owned() };
            crate::telemetry::warning(&warning);
            self.warnings.push(warning);
        } else {
            entry.successors.push((action, to));
        }
    }

    pub(crate) fn link(&mut self, wiring: Wiring) {
        for (from, action, to) in wiring.edges {
            self.connect(from, action, to);
        }
    }

    pub(crate) fn warnings(&self) -> &[FlowWarning] {
        &self.warnings
    }

    /// Misuse found while wiring, reported when the flow runs.
    pub(crate) fn wiring_error(&self) -> Option<String> {
        (!self.errors.is_empty()).then(|| self.errors.join("; "))
    }

    /// Every step, in the order they were added.
    pub(crate) fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    pub(crate) fn start_id(&self) -> Option<NodeId> {
        self.start
    }

    pub(crate) fn start(&self) -> Option<&Entry<T>> {
        self.start.and_then(|id| self.entries.get(id.index()))
    }

    /// The node to run after `current` returned `action`, as PocketFlow's
    /// `get_next_node`: a missing action ends the flow, with a warning if
    /// the node had other successors.
    pub(crate) fn next(&self, current: &Entry<T>, action: &Action, env: &RunEnv) -> Option<&Entry<T>> {
        let key = action.route_key();
        if let Some((_, id)) = current.successors.iter().find(|(a, _)| a == key) {
            return self.entries.get(id.index());
        }
        if !current.successors.is_empty() {
            env.warn(FlowWarning::MissingSuccessor {
                node: current.name.to_string(),
                action: action.clone(),
                available: current.successors.iter().map(|(a, _)| a.to_string()).collect(),
            });
        }
        None
    }
}

//! What a run reports about how its flows, nodes, items and compositions
//! spent their time: one aggregate per place in the flow, so a loop that
//! runs a node a million times reports one entry for it, not a million.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use crate::current::Scope;
use crate::lifecycle::{LifecycleStats, NodeState};

/// Shortest, longest and total time of the runs aggregated in a
/// [`NodeStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimeStats {
    /// Summed over every run.
    pub total: Duration,
    /// The least one run took.
    pub min: Duration,
    /// The most one run took.
    pub max: Duration,
    runs: u64,
}

impl TimeStats {
    fn add(&mut self, time: Duration) {
        if self.runs == 0 {
            self.min = time;
            self.max = time;
        } else {
            self.min = self.min.min(time);
            self.max = self.max.max(time);
        }
        self.total = self.total.saturating_add(time);
        self.runs += 1;
    }

    /// The average over the runs (zero when there were none).
    pub fn mean(&self) -> Duration {
        let nanos = self.total.as_nanos() / u128::from(self.runs.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// Every run of one flow, node, batch node's items or composition in a
/// top-level run, added up: returned in [`RunStats::entries`].
///
/// Runs are aggregated by their scope and path, so a node that a loop runs
/// many times has one entry whose [`runs`](Self::runs) counts them, and the
/// items of a batch share one entry at `Flow/Node[*]` (all items of every run
/// of that batch node or batch flow) whose `runs` is the number of items.
/// Two steps of one flow with the same name share an entry; give them
/// different names with `add_named` to tell them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// What ran.
    pub scope: Scope,
    /// Its name (for items, the name of their batch node or batch flow).
    pub name: String,
    /// Where it ran, e.g. `Main/Analysis/Summarize`; an item's index reads
    /// `*`, as in `Main/Summarize[*]` or `Main/PerUser[*]/Load`.
    pub path: String,
    /// How many runs ended here, whichever way they ended.
    pub runs: u64,
    /// Times the runs' futures were polled (one per sync run), over every
    /// run: the number of `running` states.
    pub polls: u64,
    /// Times they returned `Pending`, over every run: the number of
    /// `suspended` states.
    pub suspensions: u64,
    /// Time spent inside `poll` (or the sync call), children included.
    pub running: TimeStats,
    /// Time between returning `Pending` and being polled again.
    pub suspended: TimeStats,
    states: [u64; NodeState::ALL.len()],
}

impl NodeStats {
    fn new(scope: Scope, name: &str, path: String) -> Self {
        Self {
            scope,
            name: name.to_owned(),
            path,
            runs: 0,
            polls: 0,
            suspensions: 0,
            running: TimeStats::default(),
            suspended: TimeStats::default(),
            states: [0; NodeState::ALL.len()],
        }
    }

    fn add(&mut self, outcome: NodeState, completing: bool, one: LifecycleStats) {
        let started = one.polls > 0;
        for state in NodeState::ALL {
            let times = match state {
                NodeState::Created => 1,
                NodeState::Starting => u64::from(started),
                NodeState::Running => one.polls,
                NodeState::Suspended => one.suspensions,
                NodeState::Resuming => one.polls.saturating_sub(1),
                NodeState::Completing => u64::from(completing),
                NodeState::Completed | NodeState::Failed | NodeState::Cancelled => u64::from(outcome == state),
            };
            self.states[state as usize] = self.states[state as usize].saturating_add(times);
        }
        self.runs += 1;
        self.polls = self.polls.saturating_add(one.polls);
        self.suspensions = self.suspensions.saturating_add(one.suspensions);
        self.running.add(one.running);
        self.suspended.add(one.suspended);
    }

    /// How many times the runs entered `state`, over every run: for a final
    /// state ([`NodeState::Completed`], [`NodeState::Failed`],
    /// [`NodeState::Cancelled`]), how many runs ended that way.
    pub fn count(&self, state: NodeState) -> u64 {
        self.states[state as usize]
    }

    /// How many runs failed (returned an error or panicked).
    pub fn failures(&self) -> u64 {
        self.count(NodeState::Failed)
    }
}

/// The statistics of a whole run: one [`NodeStats`] per flow, node, batch
/// node's items and composition, however many times each ran, so a long
/// loop reports as many entries as a short one.
///
/// ```
/// use pocketflow::{Action, AsyncFlow, BatchNode, BoxError, Ctx, NodeState, Scope, SharedStore};
///
/// /// Doubles three numbers, three times over.
/// struct Double;
///
/// impl BatchNode for Double {
///     type Item = u32;
///     type Output = u32;
///     fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u32>, BoxError> {
///         Ok(vec![1, 2, 3])
///     }
///     fn exec(&self, _: &Ctx<'_>, n: &u32) -> Result<u32, BoxError> {
///         Ok(n * 2)
///     }
///     fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Vec<u32>, _: Vec<u32>) -> Result<Action, BoxError> {
///         let rounds = shared.update("rounds", |v| {
///             *v = (v.as_u64().unwrap_or(0) + 1).into();
///             v.as_u64().unwrap_or(0)
///         });
///         Ok(if rounds < 3 { "again".into() } else { Action::NONE })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut flow = AsyncFlow::named("Main");
/// let double = flow.start(Double);
/// flow.connect_on(double, "again", double);
/// let report = flow.run_report(&SharedStore::new()).await?;
///
/// let node = report.stats.at("Main/Double").ok_or("no entry for the node")?;
/// assert_eq!((node.scope, node.runs, node.failures()), (Scope::Node, 3, 0));
/// assert!(node.running.min <= node.running.max);
/// // The nine items (three per run) share one entry.
/// let items = report.stats.at("Main/Double[*]").ok_or("no entry for the items")?;
/// assert_eq!((items.scope, items.name.as_str(), items.runs), (Scope::Item, "Double", 9));
/// assert_eq!(items.count(NodeState::Completed), 9);
/// // The flow, the node, its items: three entries, however long the loop.
/// assert_eq!(report.stats.entries.len(), 3);
/// assert_eq!(report.stats.count(NodeState::Completed), 1 + 3 + 9);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunStats {
    /// One entry per scope and path, in the order their first run ended.
    pub entries: Vec<NodeStats>,
}

impl RunStats {
    /// The entries of steps named `name` (wherever they ran).
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a NodeStats> + 'a {
        self.entries.iter().filter(move |s| s.name == name)
    }

    /// The entry at `path`, e.g. `Main/Analysis/Summarize` or, for the items
    /// of a batch, `Main/Summarize[*]`.
    pub fn at(&self, path: &str) -> Option<&NodeStats> {
        self.entries.iter().find(|s| s.path == path)
    }

    /// How many times any run of the flow entered `state`.
    pub fn count(&self, state: NodeState) -> u64 {
        self.entries.iter().map(|s| s.count(state)).sum()
    }
}

/// One run that ended, as the engine hands it to its top-level run.
#[derive(Debug)]
pub(crate) struct Ended<'a> {
    pub(crate) scope: Scope,
    pub(crate) name: &'a str,
    /// The aggregation path (item indices as `*`).
    pub(crate) path: String,
    pub(crate) outcome: NodeState,
    pub(crate) completing: bool,
    pub(crate) lifecycle: LifecycleStats,
}

/// A run's statistics as they accumulate: one entry per scope and path.
#[derive(Debug, Default)]
pub(crate) struct StatsTable {
    entries: Vec<NodeStats>,
    index: HashMap<(Scope, String), usize>,
}

impl StatsTable {
    pub(crate) fn add(&mut self, ended: Ended<'_>) {
        let Ended { scope, name, path, outcome, completing, lifecycle } = ended;
        let at = match self.index.entry((scope, path)) {
            Entry::Occupied(slot) => *slot.get(),
            Entry::Vacant(slot) => {
                let at = self.entries.len();
                self.entries.push(NodeStats::new(scope, name, slot.key().1.clone()));
                slot.insert(at);
                at
            }
        };
        if let Some(entry) = self.entries.get_mut(at) {
            entry.add(outcome, completing, lifecycle);
        }
    }

    /// The entries so far, in the order their first run ended.
    pub(crate) fn entries(&self) -> &[NodeStats] {
        &self.entries
    }

    pub(crate) fn take(&mut self) -> RunStats {
        self.index.clear();
        RunStats { entries: std::mem::take(&mut self.entries) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(path: &str, outcome: NodeState, polls: u64, running_ms: u64) -> Ended<'static> {
        Ended {
            scope: Scope::Node,
            name: "N",
            path: path.to_owned(),
            outcome,
            completing: outcome == NodeState::Completed,
            lifecycle: LifecycleStats {
                polls,
                suspensions: polls.saturating_sub(1),
                running: Duration::from_millis(running_ms),
                suspended: Duration::from_millis(10 * polls.saturating_sub(1)),
            },
        }
    }

    #[test]
    fn runs_at_one_path_add_up_into_one_entry() {
        let mut table = StatsTable::default();
        table.add(ended("F/N", NodeState::Completed, 3, 5));
        table.add(ended("F/M", NodeState::Completed, 1, 1));
        table.add(ended("F/N", NodeState::Failed, 1, 2));
        table.add(ended("F/N", NodeState::Cancelled, 0, 0));
        let stats = table.take();
        assert_eq!(stats.entries.len(), 2);
        let n = &stats.entries[0];
        assert_eq!((n.path.as_str(), n.runs, n.polls, n.suspensions), ("F/N", 3, 4, 2));
        assert_eq!(n.running.total, Duration::from_millis(7));
        assert_eq!((n.running.min, n.running.max), (Duration::ZERO, Duration::from_millis(5)));
        assert_eq!(n.running.mean(), Duration::from_nanos(7_000_000 / 3));
        assert_eq!(n.suspended.total, Duration::from_millis(20));
        assert_eq!(n.count(NodeState::Created), 3);
        assert_eq!(n.count(NodeState::Starting), 2, "the cancelled run never started");
        assert_eq!(n.count(NodeState::Running), 4);
        assert_eq!(n.count(NodeState::Resuming), 2);
        assert_eq!(n.count(NodeState::Completing), 1);
        assert_eq!((n.count(NodeState::Completed), n.failures(), n.count(NodeState::Cancelled)), (1, 1, 1));
        assert_eq!(stats.count(NodeState::Completed), 2);
    }

    #[test]
    fn a_flow_and_a_node_at_one_path_stay_apart() {
        let mut table = StatsTable::default();
        table.add(ended("F/X", NodeState::Completed, 1, 1));
        table.add(Ended { scope: Scope::Flow, ..ended("F/X", NodeState::Completed, 1, 1) });
        assert_eq!(table.take().entries.len(), 2);
    }

    #[test]
    fn time_stats_of_no_run_are_zero() {
        assert_eq!(TimeStats::default().mean(), Duration::ZERO);
    }
}

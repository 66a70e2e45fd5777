//! What PocketFlow reports as warnings: kept, not just logged.

use std::fmt;

use crate::action::Action;

/// A condition PocketFlow reports with `warnings.warn`. Each is emitted as a
/// `pocketflow.warning` event and also returned to the caller: wiring
/// warnings by [`Flow::warnings`](crate::Flow::warnings), run warnings in
/// [`RunReport::warnings`](crate::RunReport).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowWarning {
    /// A successor was set for an action that already had one; the new one
    /// replaced it.
    OverwrittenSuccessor {
        /// The node whose successor was replaced.
        node: String,
        /// The action.
        action: String,
    },
    /// A node returned an action with no successor while it has others, so
    /// the flow ended there.
    MissingSuccessor {
        /// The node that returned the action.
        node: String,
        /// The action it returned.
        action: Action,
        /// The actions it does have successors for, in the order they were added.
        available: Vec<String>,
    },
    /// The flow was run without a start node, so it did nothing.
    NoStartNode {
        /// The flow.
        flow: String,
    },
}

impl FlowWarning {
    /// A stable identifier of the warning's kind, as in the event's `kind` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OverwrittenSuccessor { .. } => "overwritten_successor",
            Self::MissingSuccessor { .. } => "missing_successor",
            Self::NoStartNode { .. } => "no_start_node",
        }
    }
}

/// The same words as PocketFlow's warnings, e.g.
/// `Flow ends: 'None' not found in ['specific_action']`.
impl fmt::Display for FlowWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OverwrittenSuccessor { action, .. } => write!(f, "Overwriting successor for action '{action}'"),
            Self::MissingSuccessor { action, available, .. } => {
                write!(f, "Flow ends: '{action}' not found in [")?;
                for (i, name) in available.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "'{name}'")?;
                }
                f.write_str("]")
            }
            Self::NoStartNode { flow } => write!(f, "Flow '{flow}' has no start node; nothing ran"),
        }
    }
}

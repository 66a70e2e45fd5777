//! What a hook knows about the run it is part of.

use crate::params::Params;

/// The context of one hook call: PocketFlow's `self.params` and
/// `self.cur_retry`, passed explicitly because nodes are shared, not copied,
/// between runs.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub(crate) node: &'a str,
    pub(crate) params: &'a Params,
    pub(crate) attempt: usize,
    pub(crate) max_retries: usize,
    pub(crate) item: Option<usize>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(node: &'a str, params: &'a Params, max_retries: usize) -> Self {
        Self { node, params, attempt: 0, max_retries, item: None }
    }

    pub(crate) fn for_item(self, item: usize) -> Self {
        Self { item: Some(item), ..self }
    }

    pub(crate) fn for_attempt(self, attempt: usize) -> Self {
        Self { attempt, ..self }
    }

    /// The name of the node being run.
    pub fn node_name(&self) -> &'a str {
        self.node
    }

    /// The params of this run: the enclosing flow's (merged with the batch
    /// entry's in a batch flow), or the node's own when it runs alone.
    pub fn params(&self) -> &'a Params {
        self.params
    }

    /// The zero-based exec attempt: PocketFlow's `cur_retry`. In
    /// `exec_fallback` it is the last attempt, `max_retries - 1`. Each batch
    /// item counts its own attempts. Always 0 in `prep` and `post`.
    pub fn attempt(&self) -> usize {
        self.attempt
    }

    /// The total number of exec attempts the node allows.
    pub fn max_retries(&self) -> usize {
        self.max_retries
    }

    /// Whether the current attempt is the last one before the fallback.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt + 1 >= self.max_retries
    }

    /// The index of the batch item being executed, in batch nodes.
    pub fn item_index(&self) -> Option<usize> {
        self.item
    }
}

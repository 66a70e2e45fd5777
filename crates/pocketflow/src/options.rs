//! What a run says about itself to whoever traces it: session, user, tags,
//! metadata, and the trace it continues or is linked to.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::traceparent::TraceParent;

/// Trace attributes of a run: the Python `trace_flow(session_id=…,
/// user_id=…)` arguments and more, per flow or per run.
///
/// Set them on a flow with `with_run_options` (they apply to every run of
/// that flow, like the Python decorator's arguments), or for one run with
/// `run_with`; per-run values win, tags and metadata are merged. The engine
/// records them as fields of the run's `flow` span (see
/// `docs/span-schema.md`); `pocketflow-tracing` makes them the trace's
/// session, user, tags and metadata in Langfuse when the flow is the root of
/// its trace, and observation metadata when it is nested.
///
/// ```
/// use pocketflow::RunOptions;
///
/// let options = RunOptions::new()
///     .session_id("chat-42")
///     .user_id("ada")
///     .tag("beta")
///     .metadata("plan", "pro");
/// assert_eq!(options.session().map(String::as_str), Some("chat-42"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[must_use]
pub struct RunOptions {
    pub(crate) session_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) metadata: BTreeMap<String, Value>,
    #[serde(skip)]
    pub(crate) parent: Option<TraceParent>,
    #[serde(skip)]
    pub(crate) links: Vec<TraceParent>,
}

impl RunOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// The session the run belongs to (Langfuse groups a session's traces).
    pub fn session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// The user the run serves.
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Adds a tag. Tags are kept once each, in the order first given.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        let tag = tag.into();
        if !self.tags.contains(&tag) {
            self.tags.push(tag);
        }
        self
    }

    /// Adds tags.
    pub fn tags<T: Into<String>>(self, tags: impl IntoIterator<Item = T>) -> Self {
        tags.into_iter().fold(self, Self::tag)
    }

    /// Adds a metadata entry; any JSON value.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Continues the trace of a caller in another process (its
    /// `traceparent` header): the run's root span becomes a child of the
    /// caller's span instead of starting a new trace.
    pub fn parent(mut self, parent: TraceParent) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Links the run to another trace that triggered it without being its
    /// parent (a queue message, a scheduled follow-up).
    pub fn link(mut self, link: TraceParent) -> Self {
        if !self.links.contains(&link) {
            self.links.push(link);
        }
        self
    }

    /// The session id, if set.
    pub fn session(&self) -> Option<&String> {
        self.session_id.as_ref()
    }

    /// The user id, if set.
    pub fn user(&self) -> Option<&String> {
        self.user_id.as_ref()
    }

    /// The tags.
    pub fn tag_list(&self) -> &[String] {
        &self.tags
    }

    /// The metadata.
    pub fn metadata_map(&self) -> &BTreeMap<String, Value> {
        &self.metadata
    }

    /// The remote parent, if set.
    pub fn remote_parent(&self) -> Option<TraceParent> {
        self.parent
    }

    /// The linked traces.
    pub fn link_list(&self) -> &[TraceParent] {
        &self.links
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `self` laid over `base`: `self`'s session, user and parent win when
    /// set; tags, metadata and links are merged (`self`'s metadata wins on
    /// the same key).
    pub fn over(&self, base: &Self) -> Self {
        let mut merged = base.clone();
        if self.session_id.is_some() {
            merged.session_id.clone_from(&self.session_id);
        }
        if self.user_id.is_some() {
            merged.user_id.clone_from(&self.user_id);
        }
        if self.parent.is_some() {
            merged.parent = self.parent;
        }
        merged = self.tags.iter().cloned().fold(merged, Self::tag);
        merged = self.links.iter().copied().fold(merged, Self::link);
        merged.metadata.extend(self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
        merged
    }
}

/// A flow whose name and run options can be set after it is built: every
/// flow kind. This is what the `#[trace_flow]` attribute calls, the Rust
/// form of Python's `@trace_flow(flow_name=…, session_id=…, user_id=…)`.
pub trait TraceFlow: Sized {
    /// The flow renamed: the name of its `flow` span, and of its trace when
    /// it runs at the top.
    #[must_use]
    fn with_name(self, name: impl Into<std::borrow::Cow<'static, str>>) -> Self;

    /// The flow with options that apply to every run of it. Options given
    /// to `run_with` are laid over them.
    #[must_use]
    fn with_run_options(self, options: RunOptions) -> Self;

    /// The flow's own run options.
    fn run_options(&self) -> &RunOptions;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_run_values_win_and_collections_merge() {
        let flow = RunOptions::new().session_id("s1").user_id("u1").tag("a").metadata("k", 1).metadata("keep", true);
        let run = RunOptions::new().session_id("s2").tag("b").tag("a").metadata("k", 2);
        let merged = run.over(&flow);
        assert_eq!(merged.session().map(String::as_str), Some("s2"));
        assert_eq!(merged.user().map(String::as_str), Some("u1"));
        assert_eq!(merged.tag_list(), ["a", "b"]);
        assert_eq!(merged.metadata_map().get("k"), Some(&Value::from(2)));
        assert_eq!(merged.metadata_map().get("keep"), Some(&Value::from(true)));
        assert!(RunOptions::new().is_empty());
    }
}

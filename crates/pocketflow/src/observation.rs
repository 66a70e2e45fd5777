//! [`Observation`]: what a node is, in the words observability tools use, so
//! that a trace shows an agent as an agent and a tool call as a tool call.

/// What a node does, recorded on its `node` span as the `observation` field.
/// A tracing layer maps it to its backend's kinds (Langfuse's observation
/// types, OpenInference's span kinds). The engine itself never reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Observation {
    /// Plain work with no more specific kind (the default).
    #[default]
    Span,
    /// A fixed sequence of steps.
    Chain,
    /// Decides its own next step (e.g. picks a tool or an answer).
    Agent,
    /// Calls a tool: a search, an API, a function.
    Tool,
    /// Calls a language model for text.
    Generation,
    /// Fetches documents or context.
    Retriever,
    /// Calls a model for embeddings.
    Embedding,
    /// Scores or judges an output.
    Evaluator,
    /// Checks inputs or outputs against rules.
    Guardrail,
}

impl Observation {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 9] = [
        Self::Span,
        Self::Chain,
        Self::Agent,
        Self::Tool,
        Self::Generation,
        Self::Retriever,
        Self::Embedding,
        Self::Evaluator,
        Self::Guardrail,
    ];

    /// The value of the `observation` field: lower-case, as Langfuse names
    /// its observation types.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Span => "span",
            Self::Chain => "chain",
            Self::Agent => "agent",
            Self::Tool => "tool",
            Self::Generation => "generation",
            Self::Retriever => "retriever",
            Self::Embedding => "embedding",
            Self::Evaluator => "evaluator",
            Self::Guardrail => "guardrail",
        }
    }
}

impl Observation {
    /// The kind named `value` (as [`as_str`](Self::as_str) spells it).
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }
}

impl std::fmt::Display for Observation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

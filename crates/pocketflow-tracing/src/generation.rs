//! [`Generation`]: an LLM call, recorded with the GenAI semantic conventions
//! so that Langfuse shows it as a generation (model, tokens, messages) and
//! Phoenix as an LLM span.

use std::fmt;

use serde::Serialize;
use tracing::Span;
use tracing::field::{Empty, display};

use pocketflow::telemetry::Json;

/// The target of generation spans.
pub const TARGET: &str = "pocketflow::llm";

/// An LLM call in progress: a span that ends when the last clone of it is
/// dropped. Record what you know as you learn it.
///
/// ```
/// use pocketflow_tracing::Generation;
/// use tracing::Instrument;
///
/// # async fn call_model(_: &str) -> String { String::new() }
/// # async fn demo() {
/// let generation = Generation::chat("openai", "gpt-4o-mini");
/// generation.record_input(&[("user", "Summarize this ticket")]);
/// let reply = call_model("...").instrument(generation.span().clone()).await;
/// generation.record_output(&reply);
/// generation.record_usage(812, 64);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Generation {
    span: Span,
}

impl Generation {
    /// A chat completion (`gen_ai.operation.name = "chat"`) with `provider`
    /// (`gen_ai.provider.name`: `openai`, `anthropic`, …) and `model`.
    pub fn chat(provider: &str, model: &str) -> Self {
        Self::new("chat", provider, model)
    }

    /// A call of another GenAI operation (`text_completion`, `embeddings`, …).
    pub fn new(operation: &str, provider: &str, model: &str) -> Self {
        let span = tracing::info_span!(
            target: TARGET,
            "generation",
            name = %format_args!("{operation} {model}"),
            gen_ai.operation.name = operation,
            gen_ai.provider.name = provider,
            gen_ai.request.model = model,
            gen_ai.response.model = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            input = Empty,
            output = Empty,
            error = Empty,
        );
        Self { span }
    }

    /// The span, to enter or to `instrument` the call's future with.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The prompt or messages sent, as JSON.
    pub fn record_input<T: Serialize + ?Sized>(&self, input: &T) {
        self.span.record("input", display(Json(input)));
    }

    /// The completion received, as JSON.
    pub fn record_output<T: Serialize + ?Sized>(&self, output: &T) {
        self.span.record("output", display(Json(output)));
    }

    /// Token counts (`gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`).
    pub fn record_usage(&self, input_tokens: u64, output_tokens: u64) {
        self.span.record("gen_ai.usage.input_tokens", input_tokens);
        self.span.record("gen_ai.usage.output_tokens", output_tokens);
    }

    /// The model that answered, when it differs from the one requested.
    pub fn record_response_model(&self, model: &str) {
        self.span.record("gen_ai.response.model", model);
    }

    /// Marks the call failed.
    pub fn record_error(&self, error: &dyn fmt::Display) {
        self.span.record("error", display(error));
    }
}

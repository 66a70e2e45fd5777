//! [`Generation`]: an LLM call, recorded with the GenAI semantic conventions
//! so that Langfuse shows it as a generation (model, tokens, messages) and
//! Phoenix as an LLM span.

use std::fmt;

use serde::Serialize;
use serde_json::Value;
use tracing::Span;
use tracing::field::{Empty, display};

use pocketflow::telemetry::Json;

use crate::error::ResponseError;

/// The target of generation spans.
pub const TARGET: &str = "pocketflow::llm";

/// An LLM call in progress: a span that ends when the last clone of it is
/// dropped. Record what you know as you learn it.
///
/// ```
/// use pocketflow_tracing::{Generation, Message};
/// use tracing::Instrument;
///
/// # async fn call_model(_: &str) -> String { String::new() }
/// # async fn demo() {
/// let generation = Generation::chat("openai", "gpt-4o-mini");
/// generation.record_input_messages(&[Message::user("Summarize this ticket")]);
/// let reply = call_model("...").instrument(generation.span().clone()).await;
/// generation.record_output_messages(&[Message::assistant(&reply)]);
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
            gen_ai.usage.cache_read.input_tokens = Empty,
            gen_ai.usage.reasoning.output_tokens = Empty,
            llm.token_count.total = Empty,
            llm.token_count.prompt_details.cache_read = Empty,
            llm.token_count.completion_details.reasoning = Empty,
            langfuse.observation.usage_details = Empty,
            langfuse.observation.cost_details = Empty,
            llm.cost.prompt = Empty,
            llm.cost.completion = Empty,
            llm.cost.total = Empty,
            input = Empty,
            output = Empty,
            input_messages = Empty,
            output_messages = Empty,
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

    /// The messages sent: the input (Langfuse shows them as a chat) and
    /// OpenInference's `llm.input_messages.N.message.*` (Phoenix's LLM view).
    pub fn record_input_messages(&self, messages: &[Message]) {
        self.span.record("input", display(Json(messages)));
        self.span.record("input_messages", display(Json(messages)));
    }

    /// The messages received (one per choice), as for the input.
    pub fn record_output_messages(&self, messages: &[Message]) {
        self.span.record("output", display(Json(messages)));
        self.span.record("output_messages", display(Json(messages)));
    }

    /// Token counts (`gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`).
    pub fn record_usage(&self, input_tokens: u64, output_tokens: u64) {
        self.record_usage_details(&Usage::new(input_tokens, output_tokens));
    }

    /// Token counts in every vocabulary: GenAI's `gen_ai.usage.*`,
    /// OpenInference's `llm.token_count.*`, and Langfuse's
    /// `langfuse.observation.usage_details`, where cached input and reasoning
    /// output are split out of `input` and `output` as Langfuse counts them.
    pub fn record_usage_details(&self, usage: &Usage) {
        self.span.record("gen_ai.usage.input_tokens", usage.input_tokens);
        self.span.record("gen_ai.usage.output_tokens", usage.output_tokens);
        self.span.record("llm.token_count.total", usage.total_tokens);
        if usage.cached_input_tokens > 0 {
            self.span.record("gen_ai.usage.cache_read.input_tokens", usage.cached_input_tokens);
            self.span.record("llm.token_count.prompt_details.cache_read", usage.cached_input_tokens);
        }
        if usage.reasoning_output_tokens > 0 {
            self.span.record("gen_ai.usage.reasoning.output_tokens", usage.reasoning_output_tokens);
            self.span.record("llm.token_count.completion_details.reasoning", usage.reasoning_output_tokens);
        }
        self.span.record("langfuse.observation.usage_details", display(Json(&usage.langfuse_details())));
    }

    /// What the call cost, in USD: Langfuse's
    /// `langfuse.observation.cost_details` and OpenInference's `llm.cost.*`.
    pub fn record_cost(&self, cost: &Cost) {
        self.span.record("llm.cost.prompt", cost.input_usd);
        self.span.record("llm.cost.completion", cost.output_usd);
        self.span.record("llm.cost.total", cost.total_usd());
        let details = serde_json::json!({
            "input": cost.input_usd,
            "output": cost.output_usd,
            "total": cost.total_usd(),
        });
        self.span.record("langfuse.observation.cost_details", display(Json(&details)));
    }

    /// The model that answered, when it differs from the one requested.
    pub fn record_response_model(&self, model: &str) {
        self.span.record("gen_ai.response.model", model);
    }

    /// Records what an OpenAI-style chat completion body says: the model
    /// that answered, every choice's message, and the usage. Nothing is
    /// recorded unless the whole body reads, so a bad body leaves no half
    /// record. Returns the usage, to price the call with [`Pricing::cost`].
    ///
    /// # Errors
    /// A [`ResponseError`] naming the first missing or mistyped field.
    pub fn record_openai_response(&self, body: &Value) -> Result<Usage, ResponseError> {
        let response = OpenAiResponse::read(body)?;
        self.record_response_model(&response.model);
        self.record_output_messages(&response.messages);
        self.record_usage_details(&response.usage);
        Ok(response.usage)
    }

    /// [`record_openai_response`](Self::record_openai_response) from the
    /// body's text.
    ///
    /// # Errors
    /// [`ResponseError::NotJson`] when it is not JSON, else as
    /// `record_openai_response`.
    pub fn record_openai_response_str(&self, body: &str) -> Result<Usage, ResponseError> {
        let body: Value = serde_json::from_str(body).map_err(|e| ResponseError::NotJson(e.to_string()))?;
        self.record_openai_response(&body)
    }

    /// Marks the call failed.
    pub fn record_error(&self, error: &dyn fmt::Display) {
        self.span.record("error", display(error));
    }
}

/// Who wrote a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
    /// Any other role a provider uses (`developer`, `function`, …).
    Other(String),
}

impl Role {
    /// The role as providers spell it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
            Self::Other(role) => role,
        }
    }

    fn parse(role: &str) -> Self {
        match role {
            "system" => Self::System,
            "user" => Self::User,
            "assistant" => Self::Assistant,
            "tool" => Self::Tool,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One chat message, recorded as `{"role": …, "content": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// A model's message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// Token counts of one call. `input_tokens` includes the cached ones and
/// `output_tokens` the reasoning ones, as OpenAI and the GenAI conventions
/// count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Completion tokens, reasoning ones included.
    pub output_tokens: u64,
    /// All tokens, as the provider reports them.
    pub total_tokens: u64,
    /// Prompt tokens read from the provider's cache.
    pub cached_input_tokens: u64,
    /// Completion tokens spent on reasoning.
    pub reasoning_output_tokens: u64,
}

impl Usage {
    /// `input_tokens` in and `output_tokens` out, totalling their sum.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            total_tokens: input_tokens.saturating_add(output_tokens),
            cached_input_tokens: 0,
            reasoning_output_tokens: 0,
        }
    }

    /// With `tokens` of the input read from cache.
    #[must_use]
    pub fn with_cached_input(mut self, tokens: u64) -> Self {
        self.cached_input_tokens = tokens;
        self
    }

    /// With `tokens` of the output spent on reasoning.
    #[must_use]
    pub fn with_reasoning_output(mut self, tokens: u64) -> Self {
        self.reasoning_output_tokens = tokens;
        self
    }

    /// With the total the provider reported.
    #[must_use]
    pub fn with_total(mut self, tokens: u64) -> Self {
        self.total_tokens = tokens;
        self
    }

    /// Langfuse's usage details: `input` and `output` without the cached
    /// and reasoning tokens, which get keys of their own, so that the parts
    /// add up to `total` and each can be priced on its own.
    fn langfuse_details(&self) -> serde_json::Map<String, Value> {
        let mut details = serde_json::Map::new();
        details.insert("input".into(), self.input_tokens.saturating_sub(self.cached_input_tokens).into());
        details.insert("output".into(), self.output_tokens.saturating_sub(self.reasoning_output_tokens).into());
        details.insert("total".into(), self.total_tokens.into());
        if self.cached_input_tokens > 0 {
            details.insert("input_cached_tokens".into(), self.cached_input_tokens.into());
        }
        if self.reasoning_output_tokens > 0 {
            details.insert("output_reasoning_tokens".into(), self.reasoning_output_tokens.into());
        }
        details
    }
}

/// What a call cost, in USD.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cost {
    /// For the prompt.
    pub input_usd: f64,
    /// For the completion.
    pub output_usd: f64,
}

impl Cost {
    /// Input and output together.
    pub fn total_usd(&self) -> f64 {
        self.input_usd + self.output_usd
    }
}

/// A model's prices per million tokens, in USD, to cost a call from its
/// [`Usage`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pricing {
    /// Per million prompt tokens.
    pub input_per_million: f64,
    /// Per million completion tokens.
    pub output_per_million: f64,
    /// Per million cached prompt tokens; `None` prices them as other input.
    pub cached_input_per_million: Option<f64>,
}

impl Pricing {
    /// Prices for input and output tokens.
    pub fn per_million(input_usd: f64, output_usd: f64) -> Self {
        Self { input_per_million: input_usd, output_per_million: output_usd, cached_input_per_million: None }
    }

    /// With a lower price for cached prompt tokens.
    #[must_use]
    pub fn with_cached_input(mut self, usd: f64) -> Self {
        self.cached_input_per_million = Some(usd);
        self
    }

    /// What `usage` costs at these prices.
    #[allow(clippy::cast_precision_loss, reason = "token counts are far below 2^52")]
    pub fn cost(&self, usage: &Usage) -> Cost {
        let per_token = |price: f64, tokens: u64| price * tokens as f64 / 1_000_000.0;
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let input_usd = match self.cached_input_per_million {
            Some(cached_price) => {
                per_token(self.input_per_million, usage.input_tokens - cached) + per_token(cached_price, cached)
            }
            None => per_token(self.input_per_million, usage.input_tokens),
        };
        Cost { input_usd, output_usd: per_token(self.output_per_million, usage.output_tokens) }
    }
}

/// What is recorded from an OpenAI-style body, read in full first.
struct OpenAiResponse {
    model: String,
    messages: Vec<Message>,
    usage: Usage,
}

impl OpenAiResponse {
    fn read(body: &Value) -> Result<Self, ResponseError> {
        let object = as_object(body, "(body)")?;
        let model = as_str(required(object, "model", "model")?, "model")?.to_owned();

        let choices = required(object, "choices", "choices")?;
        let choices = choices.as_array().ok_or_else(|| wrong_type("choices", "an array", choices))?;
        let mut messages = Vec::with_capacity(choices.len());
        for (i, choice) in choices.iter().enumerate() {
            let path = format!("choices.{i}");
            let choice = as_object(choice, &path)?;
            let message_path = format!("{path}.message");
            let message = as_object(required(choice, "message", &message_path)?, &message_path)?;
            let role_path = format!("{message_path}.role");
            let role = as_str(required(message, "role", &role_path)?, &role_path)?;
            let content_path = format!("{message_path}.content");
            // A message that only calls tools has `content: null`.
            let content = match message.get("content") {
                None | Some(Value::Null) => String::new(),
                Some(content) => as_str(content, &content_path)?.to_owned(),
            };
            messages.push(Message::new(Role::parse(role), content));
        }

        let usage = as_object(required(object, "usage", "usage")?, "usage")?;
        let input = as_u64(required(usage, "prompt_tokens", "usage.prompt_tokens")?, "usage.prompt_tokens")?;
        let output =
            as_u64(required(usage, "completion_tokens", "usage.completion_tokens")?, "usage.completion_tokens")?;
        let mut read = Usage::new(input, output);
        if let Some(total) = usage.get("total_tokens") {
            read = read.with_total(as_u64(total, "usage.total_tokens")?);
        }
        if let Some(cached) = optional_nested(usage, "prompt_tokens_details", "cached_tokens")? {
            read = read.with_cached_input(cached);
        }
        if let Some(reasoning) = optional_nested(usage, "completion_tokens_details", "reasoning_tokens")? {
            read = read.with_reasoning_output(reasoning);
        }
        Ok(Self { model, messages, usage: read })
    }
}

type Object = serde_json::Map<String, Value>;

fn required<'v>(object: &'v Object, key: &str, path: &str) -> Result<&'v Value, ResponseError> {
    object.get(key).ok_or_else(|| ResponseError::Missing { field: path.to_owned() })
}

fn as_object<'v>(value: &'v Value, path: &str) -> Result<&'v Object, ResponseError> {
    value.as_object().ok_or_else(|| wrong_type(path, "an object", value))
}

fn as_str<'v>(value: &'v Value, path: &str) -> Result<&'v str, ResponseError> {
    value.as_str().ok_or_else(|| wrong_type(path, "a string", value))
}

fn as_u64(value: &Value, path: &str) -> Result<u64, ResponseError> {
    value.as_u64().ok_or_else(|| wrong_type(path, "a non-negative integer", value))
}

/// `usage.{details}.{key}`: absent (or `null`) details or key is no count.
fn optional_nested(usage: &Object, details: &str, key: &str) -> Result<Option<u64>, ResponseError> {
    let path = format!("usage.{details}");
    let details = match usage.get(details) {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => as_object(value, &path)?,
    };
    match details.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => as_u64(value, &format!("{path}.{key}")).map(Some),
    }
}

fn wrong_type(path: &str, expected: &'static str, found: &Value) -> ResponseError {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    // A negative integer is an integer, but not a count.
    let found =
        if expected == "a non-negative integer" && found == "an integer" { "a negative integer" } else { found };
    ResponseError::WrongType { field: path.to_owned(), expected, found }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use serde_json::json;

    use super::*;

    fn body() -> Value {
        json!({
            "id": "chatcmpl-1",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 120,
                "completion_tokens": 30,
                "total_tokens": 150,
                "prompt_tokens_details": {"cached_tokens": 100},
                "completion_tokens_details": {"reasoning_tokens": 10}
            }
        })
    }

    #[test]
    fn a_good_body_reads_model_messages_and_usage() {
        let read = OpenAiResponse::read(&body()).unwrap();
        assert_eq!(read.model, "gpt-4o-mini-2024-07-18");
        assert_eq!(read.messages, [Message::assistant("Paris.")]);
        assert_eq!(read.usage, Usage::new(120, 30).with_total(150).with_cached_input(100).with_reasoning_output(10));
        // Langfuse's parts add up to the total.
        assert_eq!(
            Value::Object(read.usage.langfuse_details()),
            json!({"input": 20, "input_cached_tokens": 100, "output": 20, "output_reasoning_tokens": 10, "total": 150})
        );
    }

    #[test]
    fn the_details_and_total_are_optional() {
        let read = OpenAiResponse::read(&json!({
            "model": "m",
            "choices": [{"message": {"role": "assistant", "content": null}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": null}
        }))
        .unwrap();
        assert_eq!(read.usage, Usage::new(5, 2));
        assert_eq!(read.messages, [Message::assistant("")]);
        assert_eq!(Value::Object(read.usage.langfuse_details()), json!({"input": 5, "output": 2, "total": 7}));
    }

    #[test]
    fn a_body_without_usage_names_it() {
        let mut body = body();
        body.as_object_mut().unwrap().remove("usage");
        let error = Generation::chat("openai", "m").record_openai_response(&body).unwrap_err();
        assert_eq!(error, ResponseError::Missing { field: "usage".into() });
        assert_eq!(error.to_string(), "the response has no `usage`");

        let mut body = self::body();
        body["usage"].as_object_mut().unwrap().remove("completion_tokens");
        assert_eq!(
            OpenAiResponse::read(&body).err(),
            Some(ResponseError::Missing { field: "usage.completion_tokens".into() })
        );
    }

    #[test]
    fn wrong_types_are_named_with_their_path() {
        let cases = [
            ("/usage/prompt_tokens", json!("120"), "usage.prompt_tokens", "a non-negative integer", "a string"),
            ("/usage/prompt_tokens", json!(-1), "usage.prompt_tokens", "a non-negative integer", "a negative integer"),
            ("/usage/total_tokens", json!(1.5), "usage.total_tokens", "a non-negative integer", "a number"),
            (
                "/usage/prompt_tokens_details/cached_tokens",
                json!(true),
                "usage.prompt_tokens_details.cached_tokens",
                "a non-negative integer",
                "a boolean",
            ),
            ("/choices/0/message/role", json!(1), "choices.0.message.role", "a string", "an integer"),
            ("/choices/0/message/content", json!(["a"]), "choices.0.message.content", "a string", "an array"),
            ("/choices", json!({}), "choices", "an array", "an object"),
            ("/model", Value::Null, "model", "a string", "null"),
        ];
        for (pointer, value, field, expected, found) in cases {
            let mut body = body();
            *body.pointer_mut(pointer).unwrap() = value;
            let error = OpenAiResponse::read(&body).err();
            assert_eq!(error, Some(ResponseError::WrongType { field: field.into(), expected, found }), "{pointer}");
        }
        assert_eq!(
            OpenAiResponse::read(&json!([1])).err(),
            Some(ResponseError::WrongType { field: "(body)".into(), expected: "an object", found: "an array" })
        );
    }

    #[test]
    fn text_that_is_not_json_is_an_error_not_a_panic() {
        let generation = Generation::chat("openai", "m");
        assert!(matches!(generation.record_openai_response_str("{\"model\":"), Err(ResponseError::NotJson(_))));
        assert_eq!(generation.record_openai_response_str(&body().to_string()).unwrap().input_tokens, 120);
    }

    #[test]
    fn pricing_costs_cached_input_at_its_own_price() {
        let usage = Usage::new(1_000_000, 500_000).with_cached_input(400_000);
        let plain = Pricing::per_million(2.0, 8.0).cost(&usage);
        assert_eq!(plain, Cost { input_usd: 2.0, output_usd: 4.0 });
        assert!((plain.total_usd() - 6.0).abs() < 1e-12);
        let cached = Pricing::per_million(2.0, 8.0).with_cached_input(0.5).cost(&usage);
        assert!((cached.input_usd - (1.2 + 0.2)).abs() < 1e-12, "{cached:?}");
    }
}

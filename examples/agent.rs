//! A research agent: PocketFlow's agent pattern (the cookbook's "research
//! agent"). `DecideAction` asks the model whether to search or answer;
//! `SearchWeb` searches and loops back to `DecideAction`; once the context
//! covers the question, `AnswerQuestion` writes the answer.
//!
//! The model is a deterministic local stand-in (rules over the question and
//! the context in its prompt; no network) that answers with an OpenAI-style
//! chat completion body. Each model call is a `Generation` with its input
//! messages, its output, its usage read from that body and its cost from a
//! price table, so Langfuse shows generations with tokens and cost and
//! Phoenix shows LLM spans with messages. The nodes declare what they are:
//! `DecideAction` an agent, `SearchWeb` a tool, `AnswerQuestion` a chain.
//!
//! ```text
//! cargo run --example agent
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 cargo run --example agent
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… cargo run --example agent
//! ```
#![allow(missing_docs)]

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use pocketflow::{Action, BoxError, Ctx, Flow, Node, Observation, SharedStore};
use pocketflow_tracing::{Generation, Message, Pricing, Role};
use serde_json::{Value, json};

const PROVIDER: &str = "local";
const MODEL: &str = "stand-in-chat-1";
/// The question the agent researches.
const QUESTION: &str = "Who won the 2024 Nobel Prize in Physics and what was it awarded for?";
/// The most decisions before the agent must answer with what it has.
const MAX_DECISIONS: usize = 5;

/// Prices per million tokens, in USD, by model.
fn pricing(model: &str) -> Option<Pricing> {
    match model {
        "stand-in-chat-1" => Some(Pricing::per_million(0.15, 0.60).with_cached_input(0.075)),
        _ => None,
    }
}

const DECIDE_SYSTEM: &str = "You are a research assistant. Given a question and what has been found so far, \
decide whether to search the web for more, or to answer. Reply with lines `action: search` or `action: answer`, \
`reason: ...` and, to search, `search_query: ...`.";
const ANSWER_SYSTEM: &str = "You are a research assistant. Answer the question from the research context only.";

/// Words a query leaves out.
const STOPWORDS: [&str; 14] =
    ["who", "what", "was", "is", "it", "the", "in", "for", "and", "a", "of", "did", "won", "to"];

/// A search query: the words of `text` that carry meaning.
fn keywords(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// A rough token count: words and punctuation marks.
fn tokens(text: &str) -> u64 {
    let words = text.split_whitespace().count();
    let marks = text.chars().filter(|c| c.is_ascii_punctuation()).count();
    u64::try_from(words + marks).unwrap_or(u64::MAX)
}

/// The model: rules over the prompt, answering as an OpenAI chat completion
/// endpoint does. It caches system prompts it has seen, as providers cache
/// prompt prefixes, so repeated calls report cached input tokens.
#[derive(Default)]
struct StandInModel {
    seen_prompts: Mutex<HashSet<String>>,
    calls: Mutex<u32>,
}

impl StandInModel {
    fn complete(&self, messages: &[Message]) -> Result<Value, BoxError> {
        let system = messages.iter().find(|m| m.role == Role::System).map_or("", |m| m.content.as_str());
        let user = messages.iter().rev().find(|m| m.role == Role::User).ok_or("no user message")?;
        let question = section(&user.content, "QUESTION").ok_or("prompt without a QUESTION section")?;
        let context = section(&user.content, "CONTEXT").unwrap_or_default();
        let reply = if system == DECIDE_SYSTEM { decide(question, context) } else { answer(question, context) };

        let cached = {
            let mut seen = self.seen_prompts.lock().map_err(|_| "prompt cache poisoned")?;
            if seen.insert(system.to_owned()) { 0 } else { tokens(system) }
        };
        let id = {
            let mut calls = self.calls.lock().map_err(|_| "call counter poisoned")?;
            *calls += 1;
            *calls
        };
        let prompt_tokens: u64 = messages.iter().map(|m| tokens(&m.content)).sum();
        let completion_tokens = tokens(&reply);
        Ok(json!({
            "id": format!("chatcmpl-local-{id}"),
            "object": "chat.completion",
            "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached}
            }
        }))
    }
}

/// The text under `## {name}` in a prompt, up to the next heading.
fn section<'p>(prompt: &'p str, name: &str) -> Option<&'p str> {
    let start = prompt.find(&format!("## {name}\n"))? + name.len() + 4;
    let rest = &prompt[start..];
    Some(rest.find("\n## ").map_or(rest, |end| &rest[..end]).trim())
}

/// The parts of a question, each to be researched: "who … and what …".
fn parts(question: &str) -> Vec<String> {
    let question = question.trim_end_matches('?');
    let mut parts = question.split(" and ").map(keywords);
    let Some(subject) = parts.next() else { return Vec::new() };
    let mut queries = vec![subject.join(" ")];
    // Later parts are about the first part's subject.
    queries.extend(parts.map(|part| subject.iter().chain(&part).cloned().collect::<Vec<_>>().join(" ")));
    queries
}

/// Search for the first part of the question not yet searched; answer once
/// every part has been.
fn decide(question: &str, context: &str) -> String {
    let searched: Vec<&str> = context.lines().filter_map(|l| l.strip_prefix("SEARCH: ")).collect();
    match parts(question).into_iter().find(|query| !searched.contains(&query.as_str())) {
        Some(query) => {
            format!("action: search\nreason: the context does not cover \"{query}\" yet\nsearch_query: {query}")
        }
        None => "action: answer\nreason: every part of the question is covered by the context".to_owned(),
    }
}

/// The context's result lines that share the most words with the question.
fn answer(question: &str, context: &str) -> String {
    let wanted: HashSet<String> = keywords(question).into_iter().collect();
    let mut found: Vec<(usize, &str)> = context
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT: "))
        .map(|line| (keywords(line).iter().filter(|w| wanted.contains(*w)).count(), line))
        .filter(|(score, _)| *score > 0)
        .collect();
    if found.is_empty() {
        return "I could not find an answer in the research context.".to_owned();
    }
    found.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    let mut seen = HashSet::new();
    let lines: Vec<&str> = found.into_iter().map(|(_, l)| l).filter(|l| seen.insert(*l)).take(2).collect();
    format!("Based on my research: {}", lines.join(" "))
}

/// One model call, traced as a generation: input messages, the response's
/// model, output and usage, and the cost from the price table.
fn call_model(model: &StandInModel, messages: &[Message]) -> Result<String, BoxError> {
    let generation = Generation::chat(PROVIDER, MODEL);
    let _in_generation = generation.span().enter();
    generation.record_input_messages(messages);
    let body = match model.complete(messages) {
        Ok(body) => body,
        Err(error) => {
            generation.record_error(&error);
            return Err(error);
        }
    };
    let usage = generation.record_openai_response(&body)?;
    if let Some(prices) = pricing(MODEL) {
        generation.record_cost(&prices.cost(&usage));
    }
    let reply = body.pointer("/choices/0/message/content").and_then(Value::as_str).ok_or("no reply")?;
    Ok(reply.to_owned())
}

fn prompt(question: &str, context: &str) -> String {
    format!("## QUESTION\n{question}\n\n## CONTEXT\n{context}\n")
}

/// A canned search index: what a web search returns for these queries.
const PAGES: [&str; 5] = [
    "John Hopfield and Geoffrey Hinton won the 2024 Nobel Prize in Physics.",
    "The 2024 Nobel Prize in Physics was awarded for foundational discoveries and inventions that enable machine learning with artificial neural networks.",
    "The 2023 Nobel Prize in Physics went to Pierre Agostini, Ferenc Krausz and Anne L'Huillier for attosecond pulses of light.",
    "Hopfield created an associative memory; Hinton invented a method that finds properties in data, the Boltzmann machine.",
    "The 2024 Nobel Prize in Chemistry was awarded for computational protein design and protein structure prediction.",
];

/// The two pages that share the most words with the query.
fn search_web(query: &str) -> Vec<String> {
    let wanted: HashSet<String> = keywords(query).into_iter().collect();
    let mut scored: Vec<(usize, &str)> =
        PAGES.iter().map(|page| (keywords(page).iter().filter(|w| wanted.contains(*w)).count(), *page)).collect();
    scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    scored.into_iter().filter(|(score, _)| *score > 0).take(2).map(|(_, page)| page.to_owned()).collect()
}

/// Decides whether to search or answer.
struct DecideAction {
    model: Arc<StandInModel>,
}

impl Node for DecideAction {
    type Prep = (String, String, usize);
    type Exec = (String, Option<String>);

    fn observation(&self) -> Observation {
        Observation::Agent
    }

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(String, String, usize), BoxError> {
        let decisions = shared.get::<usize>("decisions").unwrap_or(0);
        Ok((shared.get("question")?, shared.get::<String>("context").unwrap_or_default(), decisions))
    }

    fn exec(
        &self,
        _: &Ctx<'_>,
        (question, context, decisions): &(String, String, usize),
    ) -> Result<Self::Exec, BoxError> {
        if *decisions >= MAX_DECISIONS {
            return Ok(("answer".to_owned(), None));
        }
        let messages = [Message::system(DECIDE_SYSTEM), Message::user(prompt(question, context))];
        let reply = call_model(&self.model, &messages)?;
        let field = |name: &str| reply.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).map(str::to_owned);
        let action = field("action").ok_or_else(|| format!("the model's reply has no action: {reply:?}"))?;
        match action.as_str() {
            "search" => {
                let query = field("search_query").ok_or("the model chose to search without a query")?;
                Ok((action, Some(query)))
            }
            "answer" => Ok((action, None)),
            other => Err(format!("the model chose an unknown action {other:?}").into()),
        }
    }

    fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        (_, _, decisions): (String, String, usize),
        (action, query): Self::Exec,
    ) -> Result<Action, BoxError> {
        shared.set("decisions", decisions + 1)?;
        if let Some(query) = query {
            shared.set("search_query", query)?;
        }
        Ok(action.into())
    }
}

/// Searches the web for the agent's query and adds the results to the
/// context.
struct SearchWeb;

impl Node for SearchWeb {
    type Prep = String;
    type Exec = Vec<String>;

    fn observation(&self) -> Observation {
        Observation::Tool
    }

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get("search_query")?)
    }

    fn exec(&self, _: &Ctx<'_>, query: &String) -> Result<Vec<String>, BoxError> {
        Ok(search_web(query))
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, query: String, results: Vec<String>) -> Result<Action, BoxError> {
        let mut context = shared.get::<String>("context").unwrap_or_default();
        context.push_str(&format!("SEARCH: {query}\n"));
        for result in results {
            context.push_str(&format!("RESULT: {result}\n"));
        }
        shared.set("context", context)?;
        Ok("decide".into())
    }
}

/// Writes the final answer from the research context.
struct AnswerQuestion {
    model: Arc<StandInModel>,
}

impl Node for AnswerQuestion {
    type Prep = (String, String);
    type Exec = String;

    fn observation(&self) -> Observation {
        Observation::Chain
    }

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(String, String), BoxError> {
        Ok((shared.get("question")?, shared.get::<String>("context").unwrap_or_default()))
    }

    fn exec(&self, _: &Ctx<'_>, (question, context): &(String, String)) -> Result<String, BoxError> {
        let messages = [Message::system(ANSWER_SYSTEM), Message::user(prompt(question, context))];
        call_model(&self.model, &messages)
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (String, String), answer: String) -> Result<Action, BoxError> {
        shared.set("answer", answer)?;
        Ok("done".into())
    }
}

fn main() -> ExitCode {
    let tracing = match pocketflow_tracing::init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("tracing could not start: {error}");
            return ExitCode::FAILURE;
        }
    };

    let model = Arc::new(StandInModel::default());
    let mut flow = Flow::named("ResearchAgent");
    let decide = flow.start(DecideAction { model: Arc::clone(&model) });
    let search = flow.add(SearchWeb);
    let answer = flow.add(AnswerQuestion { model });
    flow.link(decide.on("search") >> search);
    flow.link(decide.on("answer") >> answer);
    flow.link(search.on("decide") >> decide);

    let shared = SharedStore::from_iter([("question", QUESTION)]);
    let outcome = flow.run(&shared);
    eprintln!("{}", tracing.shutdown());
    match outcome {
        Ok(_) => {
            let answer = shared.get::<String>("answer").unwrap_or_default();
            println!("question: {QUESTION}");
            println!("answer: {answer}");
            if answer.is_empty() {
                eprintln!("the agent finished without an answer");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("flow failed: {error}");
            ExitCode::FAILURE
        }
    }
}

//! Quickstart: triage a batch of support tickets.
//!
//! A small but complete PocketFlow graph: a batch node classifies tickets,
//! its action picks the branch, a flaky "model call" succeeds on its third
//! attempt, and a summarizer whose model is down falls back to a plain
//! summary. Everything runs locally; nothing calls a real model.
//!
//! The run is traced. With no environment the trace is printed as a tree on
//! stderr; point it at a collector or at Langfuse with the usual variables:
//!
//! ```text
//! cargo run --example quickstart
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 cargo run --example quickstart
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… cargo run --example quickstart
//! ```
#![allow(missing_docs)]

use std::process::ExitCode;
use std::time::Duration;

use pocketflow::{Action, BatchNode, BoxError, Ctx, Flow, Node, SharedStore};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ticket {
    id: u32,
    text: String,
}

/// Puts the day's tickets in the store.
struct LoadTickets;

impl Node for LoadTickets {
    type Prep = ();
    type Exec = Vec<Ticket>;

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<Vec<Ticket>, BoxError> {
        let texts = [
            "My order arrived broken, I want a refund",
            "How do I change my delivery address?",
            "Charged twice for one order, please refund one",
        ];
        Ok(texts.iter().zip(1..).map(|(text, id)| Ticket { id, text: (*text).to_owned() }).collect())
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), tickets: Vec<Ticket>) -> Result<Action, BoxError> {
        shared.set("tickets", tickets)?;
        Ok(Action::NONE)
    }
}

/// Classifies each ticket; the action says whether any asks for a refund.
struct Classify;

impl BatchNode for Classify {
    type Item = Ticket;
    type Output = (u32, &'static str);

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Ticket>, BoxError> {
        Ok(shared.get("tickets")?)
    }

    fn exec(&self, _: &Ctx<'_>, ticket: &Ticket) -> Result<(u32, &'static str), BoxError> {
        let category = if ticket.text.to_lowercase().contains("refund") { "refund" } else { "question" };
        Ok((ticket.id, category))
    }

    fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: Vec<Ticket>,
        labels: Vec<(u32, &'static str)>,
    ) -> Result<Action, BoxError> {
        let refunds: Vec<u32> = labels.iter().filter(|(_, c)| *c == "refund").map(|(id, _)| *id).collect();
        shared.set("labels", &labels)?;
        shared.set("refund_ids", &refunds)?;
        Ok(if refunds.is_empty() { "all_questions".into() } else { "has_refunds".into() })
    }
}

/// Drafts refund replies with a model that times out twice before it
/// answers: the retries absorb it.
struct DraftRefunds;

impl Node for DraftRefunds {
    type Prep = Vec<u32>;
    type Exec = Vec<String>;

    fn max_retries(&self) -> usize {
        3
    }

    fn wait(&self) -> Duration {
        Duration::from_millis(20)
    }

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<u32>, BoxError> {
        Ok(shared.get("refund_ids")?)
    }

    fn exec(&self, ctx: &Ctx<'_>, ids: &Vec<u32>) -> Result<Vec<String>, BoxError> {
        if ctx.attempt() < 2 {
            return Err(format!("model timed out (attempt {} of {})", ctx.attempt() + 1, ctx.max_retries()).into());
        }
        Ok(ids.iter().map(|id| format!("Ticket {id}: your refund is on its way.")).collect())
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: Vec<u32>, replies: Vec<String>) -> Result<Action, BoxError> {
        shared.set("replies", replies)?;
        Ok(Action::NONE)
    }
}

/// Summarizes the day with a model that is down: after two failed attempts
/// the fallback writes a plain summary instead of failing the flow.
struct Summarize;

impl Node for Summarize {
    type Prep = Vec<(u32, String)>;
    type Exec = String;

    fn max_retries(&self) -> usize {
        2
    }

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<(u32, String)>, BoxError> {
        Ok(shared.get("labels")?)
    }

    fn exec(&self, _: &Ctx<'_>, _: &Vec<(u32, String)>) -> Result<String, BoxError> {
        Err("summarization model unavailable (503)".into())
    }

    fn exec_fallback(&self, _: &Ctx<'_>, labels: &Vec<(u32, String)>, error: BoxError) -> Result<String, BoxError> {
        let refunds = labels.iter().filter(|(_, c)| c == "refund").count();
        Ok(format!("{} tickets, {refunds} refund requests (plain summary: {error})", labels.len()))
    }

    fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: Vec<(u32, String)>,
        summary: String,
    ) -> Result<Action, BoxError> {
        shared.set("summary", summary)?;
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

    let mut flow = Flow::named("TicketTriage");
    let load = flow.start(LoadTickets);
    let classify = flow.add(Classify);
    let draft = flow.add(DraftRefunds);
    let summarize = flow.add(Summarize);
    flow.link(load >> classify);
    flow.link(classify.on("has_refunds") >> draft);
    flow.link(classify.on("all_questions") >> summarize);
    flow.link(draft >> summarize);

    let shared = SharedStore::new();
    let outcome = flow.run(&shared);
    // Flush the trace before printing the outcome, and say what was sent.
    eprintln!("{}", tracing.shutdown());
    match outcome {
        Ok(action) => {
            println!("flow finished with action: {action}");
            for key in ["labels", "replies", "summary"] {
                let value = shared.get_value(key).unwrap_or_default();
                println!("{key}: {value}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("flow failed: {error}");
            ExitCode::FAILURE
        }
    }
}

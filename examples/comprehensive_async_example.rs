//! Every async feature of the migration guide in one program: the Rust
//! counterpart of pocketflow-tracing's `comprehensive_async_example.py`.
//!
//! Three research runs go at once, each its own trace with its own session:
//!
//! - `Normalize`, a sync node, runs first inside the async flow;
//! - `FetchSources` waits for a connection from a shared pool (async
//!   resource handling), retries a flaky source and, for one topic, falls
//!   back to a cached answer;
//! - `Enrich` calls a slow API under `with_timeout`, then `safe_execute`
//!   retries a fresh call with backoff, and an `ErrorHandler` classifies
//!   the timeout;
//! - `SummarizeSources`, a parallel batch, summarizes the sources at most
//!   two at a time, writing each summary from a task started with
//!   `pocketflow::spawn`;
//! - `Analysis` is a nested flow.
//!
//! Then a composition runs two follow-up flows as a parallel batch, a
//! fourth trace. With no environment each trace prints as a tree on stderr
//! (add `POCKETFLOW_TRACING_DEBUG=true` to see the suspend and resume
//! events); the usual variables send them to a collector or to Langfuse:
//!
//! ```text
//! cargo run --example comprehensive_async_example
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 cargo run --example comprehensive_async_example
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… cargo run --example comprehensive_async_example
//! ```
#![allow(missing_docs)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pocketflow::{
    Action, AsyncFlow, AsyncNode, AsyncParallelBatchNode, Backoff, BoxError, Composition, Ctx, ErrorHandler, ErrorType,
    FlowError, Node, Recovery, RetryPolicy, RunOptions, SharedStore, trace_flow,
};
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Lower-cases the topic: a sync node in an async flow.
struct Normalize;

impl Node for Normalize {
    type Prep = String;
    type Exec = String;
    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get::<String>("topic")?)
    }
    fn exec(&self, _: &Ctx<'_>, topic: &String) -> Result<String, BoxError> {
        Ok(topic.trim().to_lowercase())
    }
    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, topic: String) -> Result<Action, BoxError> {
        shared.set("topic", topic)?;
        Ok(Action::NONE)
    }
}

/// Fetches sources over a pooled connection. The source is flaky: the
/// first attempt always fails, and for "quantum" every attempt does, so
/// that run falls back to a cached answer.
struct FetchSources {
    pool: Arc<Semaphore>,
}

impl AsyncNode for FetchSources {
    type Prep = String;
    type Exec = Vec<String>;
    fn max_retries(&self) -> usize {
        3
    }
    fn wait(&self) -> Duration {
        Duration::from_millis(20)
    }
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get::<String>("topic")?)
    }
    async fn exec(&self, ctx: &Ctx<'_>, topic: &String) -> Result<Vec<String>, BoxError> {
        // The pool has two connections for three runs: one run waits here.
        let _connection = self.pool.acquire().await?;
        tokio::time::sleep(Duration::from_millis(30)).await;
        if ctx.attempt() == 0 || topic == "quantum" {
            return Err(format!("source for `{topic}` timed out (attempt {})", ctx.attempt() + 1).into());
        }
        Ok((1..=4).map(|i| format!("{topic} source {i}")).collect())
    }
    async fn exec_fallback(&self, _: &Ctx<'_>, topic: &String, _: BoxError) -> Result<Vec<String>, BoxError> {
        Ok(vec![format!("cached overview of {topic}")])
    }
    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: String,
        sources: Vec<String>,
    ) -> Result<Action, BoxError> {
        shared.set("sources", sources)?;
        Ok(Action::NONE)
    }
}

/// Asks a slow API for related topics: the first call exceeds its deadline,
/// so the node retries with a fresh call each time.
struct Enrich {
    errors: ErrorHandler,
    calls: Arc<AtomicUsize>,
}

impl AsyncNode for Enrich {
    type Prep = String;
    type Exec = Vec<String>;
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get::<String>("topic")?)
    }
    async fn exec(&self, ctx: &Ctx<'_>, topic: &String) -> Result<Vec<String>, BoxError> {
        // One call under a deadline; the timeout is classified and counted.
        let slow = pocketflow::with_timeout("related_topics", Duration::from_millis(40), related_topics(topic, 200));
        if let Err(timeout) = slow.await {
            self.errors.handle(&timeout, Some(ctx.node_name()), Some("ResearchFlow"));
        }
        // Then retried with backoff; every attempt builds a new call.
        let policy =
            RetryPolicy::new(3).timeout(Duration::from_millis(40)).backoff(Backoff::linear(Duration::from_millis(10)));
        let calls = Arc::clone(&self.calls);
        let related = pocketflow::safe_execute("related_topics", &policy, |attempt| {
            calls.fetch_add(1, Ordering::Relaxed);
            // The first `safe_execute` attempt is slow again; the next is quick.
            related_topics(topic, if attempt == 0 { 200 } else { 10 })
        })
        .await?;
        Ok(related)
    }
    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: String,
        related: Vec<String>,
    ) -> Result<Action, BoxError> {
        shared.set("related", related)?;
        Ok(Action::NONE)
    }
}

async fn related_topics(topic: &str, latency_ms: u64) -> Result<Vec<String>, BoxError> {
    tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    Ok(vec![format!("{topic} history"), format!("{topic} applications")])
}

/// Summarizes each source, at most two at a time; each summary is written
/// by a task of its own, which carries the run's context and span.
struct SummarizeSources;

impl AsyncParallelBatchNode for SummarizeSources {
    type Item = String;
    type Output = String;
    fn max_concurrency(&self) -> Option<usize> {
        Some(2)
    }
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<String>, BoxError> {
        Ok(shared.get::<Vec<String>>("sources")?)
    }
    async fn exec(&self, _: &Ctx<'_>, source: &String) -> Result<String, BoxError> {
        let source = source.clone();
        let summary = pocketflow::spawn("summarize", async move {
            // The task's span lands under this item's `exec`, and the
            // run's context came along: its path names the flow and item.
            let path = pocketflow::current().map(|context| context.path()).unwrap_or_default();
            let span = tracing::info_span!("summarize_source", path = %path);
            let words = source.split_whitespace().count();
            tokio::time::sleep(Duration::from_millis(15)).instrument(span).await;
            format!("{source}: {words} words")
        })
        .await?;
        Ok(summary)
    }
    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: Vec<String>,
        summaries: Vec<String>,
    ) -> Result<Action, BoxError> {
        shared.set("summaries", summaries)?;
        Ok(Action::NONE)
    }
}

/// Scores the research: the one node of the nested `Analysis` flow.
struct Score;

impl AsyncNode for Score {
    type Prep = (usize, usize);
    type Exec = f64;
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(usize, usize), BoxError> {
        let summaries = shared.get::<Vec<String>>("summaries")?.len();
        let related = shared.get::<Vec<String>>("related")?.len();
        Ok((summaries, related))
    }
    async fn exec(&self, _: &Ctx<'_>, (summaries, related): &(usize, usize)) -> Result<f64, BoxError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(f64::from(u32::try_from(summaries * 2 + related)?) / 10.0)
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (usize, usize), score: f64) -> Result<Action, BoxError> {
        shared.set("score", score)?;
        Ok(Action::NONE)
    }
}

/// The research flow, named and tagged like Python's `@trace_flow`.
#[trace_flow(flow_name = "ResearchFlow", tags = ["example", "research"], metadata(version = 2))]
fn research_flow(pool: Arc<Semaphore>, errors: ErrorHandler, calls: Arc<AtomicUsize>) -> AsyncFlow {
    let mut analysis = AsyncFlow::named("Analysis");
    analysis.start(Score);

    let mut flow = AsyncFlow::new();
    let normalize = flow.start(Normalize);
    let fetch = flow.add(FetchSources { pool });
    let enrich = flow.add(Enrich { errors, calls });
    let summarize = flow.add(SummarizeSources);
    let analyze = flow.add(analysis);
    flow.link(normalize >> fetch >> enrich >> summarize >> analyze);
    flow
}

/// A follow-up: one quick node.
struct FollowUp;

impl AsyncNode for FollowUp {
    type Prep = String;
    type Exec = String;
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get::<String>("topic")?)
    }
    async fn exec(&self, _: &Ctx<'_>, topic: &String) -> Result<String, BoxError> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(format!("follow-up questions about {topic}"))
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, note: String) -> Result<Action, BoxError> {
        shared.set("note", note)?;
        Ok(Action::NONE)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let tracing = match pocketflow_tracing::init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("tracing could not start: {error}");
            return ExitCode::FAILURE;
        }
    };

    let pool = Arc::new(Semaphore::new(2));
    let errors = ErrorHandler::new();
    let timeouts = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&timeouts);
    errors.register(ErrorType::Timeout, move |_| {
        seen.fetch_add(1, Ordering::Relaxed);
        Recovery::Recovered
    });
    let calls = Arc::new(AtomicUsize::new(0));

    // Three concurrent runs: three traces, one session each.
    let topics = ["Rust async", "Quantum", "LLM tracing"];
    let runs = topics.iter().enumerate().map(|(i, topic)| {
        let flow = research_flow(Arc::clone(&pool), errors.clone(), Arc::clone(&calls));
        let options = RunOptions::new().session_id(format!("research-{i}")).user_id("example-user");
        async move {
            let shared = SharedStore::from_iter([("topic", *topic)]);
            let report = flow.run_with(&shared, options).await;
            (topic, shared, report)
        }
    });
    let results = futures_util::future::join_all(runs).await;

    // Two follow-ups as one parallel batch: a fourth trace, under a
    // composition span.
    let follow_ups = Composition::batch("FollowUps")
        .parallel()
        .options(RunOptions::new().session_id("follow-ups"))
        .run(["rust async", "llm tracing"], |topic| async move {
            let mut flow = AsyncFlow::named("FollowUpFlow");
            flow.start(FollowUp);
            let shared = SharedStore::from_iter([("topic", topic)]);
            flow.run(&shared).await?;
            Ok::<_, FlowError>(shared.get::<String>("note").unwrap_or_default())
        })
        .await;

    // Flush the traces before printing, and say what was sent.
    eprintln!("{}", tracing.shutdown());

    let mut failed = false;
    for (topic, shared, report) in results {
        match report {
            Ok(report) => {
                let score = shared.get::<f64>("score").unwrap_or_default();
                let sources = shared.get::<Vec<String>>("sources").unwrap_or_default();
                println!("{topic}: score {score:.1}, {} source(s): {sources:?}", sources.len());
                // One entry per node, however many times it ran.
                for node in report.stats.entries.iter().filter(|s| s.scope == pocketflow::Scope::Node) {
                    println!(
                        "  {:<32} {} run(s), running {:>7.2} ms, suspended {:>7.2} ms, {} suspension(s)",
                        node.path,
                        node.runs,
                        node.running.total.as_secs_f64() * 1e3,
                        node.suspended.total.as_secs_f64() * 1e3,
                        node.suspensions
                    );
                }
            }
            Err(error) => {
                failed = true;
                println!("{topic}: failed: {error}");
            }
        }
    }
    for result in follow_ups {
        match result {
            Ok(note) => println!("follow-up: {note}"),
            Err(error) => {
                failed = true;
                println!("follow-up failed: {error}");
            }
        }
    }
    let stats = errors.stats();
    println!(
        "error handler: {} timeout(s) handled, {} recovered; {} slow-API call(s) made",
        stats.count(ErrorType::Timeout),
        timeouts.load(Ordering::Relaxed),
        calls.load(Ordering::Relaxed)
    );
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

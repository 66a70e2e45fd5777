//! `docs/span-schema.md` is the contract the tracing layer maps: this test
//! runs flows that exercise every span, event and lifecycle state, and checks
//! that what the engine emits and what the document lists are the same sets.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pocketflow::telemetry::{COMPOSITION_KINDS, KINDS, TARGET, event_names, span_names};
use pocketflow::{
    Action, AsyncBatchNode, AsyncFlow, AsyncNode, AsyncParallelBatchNode, BatchFlow, BoxError, Composition, Ctx,
    ErrorHandler, Flow, Node, NodeState, Params, RunOptions, SharedStore, TraceParent,
};
use pocketflow_test_support::{Capture, Captured};
use tracing_subscriber::layer::SubscriberExt;

const DOC: &str = include_str!("../docs/span-schema.md");

/// The rows of the table under `## {section}`: first cell's name → the
/// backticked names in cell `column`.
fn table(section: &str, column: usize) -> BTreeMap<String, BTreeSet<String>> {
    let heading = format!("## {section}");
    let body = DOC.split(&heading).nth(1).unwrap_or_else(|| panic!("no section {heading}"));
    let body = body.split("\n## ").next().unwrap_or_default();
    let body = body.split("\n### ").next().unwrap_or_default();
    let mut rows = BTreeMap::new();
    for line in body.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_owned();
        let names = cells.get(column + 1).map_or_else(BTreeSet::new, |cell| backticked(cell));
        rows.insert(name, names);
    }
    assert!(!rows.is_empty(), "empty table in {heading}");
    rows
}

fn backticked(cell: &str) -> BTreeSet<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

struct Warmup;
impl Node for Warmup {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        shared.insert("items", vec![1, 2]);
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Fails every attempt, then falls back.
struct Flaky;
impl AsyncNode for Flaky {
    type Prep = ();
    type Exec = String;
    fn max_retries(&self) -> usize {
        2
    }
    fn wait(&self) -> Duration {
        Duration::from_millis(10)
    }
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<String, BoxError> {
        Err("model timed out".into())
    }
    async fn exec_fallback(&self, _: &Ctx<'_>, _: &(), _: BoxError) -> Result<String, BoxError> {
        Ok("cached answer".into())
    }
}

/// Items that wait, so they suspend and resume.
struct Sleepy;
impl AsyncBatchNode for Sleepy {
    type Item = i64;
    type Output = i64;
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<i64>, BoxError> {
        Ok(shared.get("items")?)
    }
    async fn exec(&self, _: &Ctx<'_>, item: &i64) -> Result<i64, BoxError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(item * 10)
    }
    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: Vec<i64>, _: Vec<i64>) -> Result<Action, BoxError> {
        Ok("unrouted".into())
    }
}

/// One item fails at once while the others wait: they are cancelled.
struct FailFast;
impl AsyncParallelBatchNode for FailFast {
    type Item = u64;
    type Output = u64;
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok(vec![50, 0, 50])
    }
    async fn exec(&self, _: &Ctx<'_>, delay: &u64) -> Result<u64, BoxError> {
        if *delay == 0 {
            return Err("bad item".into());
        }
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        Ok(*delay)
    }
}

/// Spawns a task, times out a slow call and hands the timeout to an
/// `ErrorHandler`: the context, timeout and async-error events.
struct Recovering;
impl AsyncNode for Recovering {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        pocketflow::spawn("side_task", async {}).await?;
        let slow =
            pocketflow::with_timeout("slow_call", Duration::from_millis(1), tokio::time::sleep(Duration::from_secs(1)));
        if let Err(timeout) = slow.await {
            ErrorHandler::new().handle(&timeout, Some("Recovering"), Some("Composed"));
        }
        Ok(())
    }
}

async fn exercise_everything() -> Captured {
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut inner = Flow::named("Inner");
    inner.start(Warmup);
    let batch = BatchFlow::new(inner, |_: &Ctx<'_>, _: &SharedStore| Ok(vec![Params::new().with("k", 1)]));

    let mut flow = AsyncFlow::named("Everything");
    let first = flow.start(batch);
    let flaky = flow.add(Flaky);
    let sleepy = flow.add(Sleepy);
    let unreachable = flow.add(Warmup);
    flow.link(first >> flaky >> sleepy);
    flow.link(sleepy.on("elsewhere") >> unreachable);
    let shared = SharedStore::new();
    flow.run(&shared).await.expect("the first flow succeeds");

    let mut failing = AsyncFlow::named("Failing");
    failing.start(FailFast);
    assert!(failing.run(&shared).await.is_err());

    let mut composed = AsyncFlow::named("Composed");
    composed.start(Recovering);
    let caller: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().expect("valid");
    let results = Composition::parallel("Together")
        .options(RunOptions::new().session_id("s").user_id("u").tag("t").metadata("k", 1).parent(caller).link(caller))
        .run([composed.run(&shared)])
        .await;
    assert!(results.iter().all(Result::is_ok));

    let mut unwired = Flow::<SharedStore>::named("Unwired");
    let stray = AsyncFlow::<SharedStore>::new().add(Flaky);
    unwired.set_start(stray);
    assert!(unwired.run(&shared).is_err());
    capture.snapshot()
}

#[tokio::test(start_paused = true)]
async fn emitted_spans_events_and_states_match_the_document() {
    let captured = exercise_everything().await;
    let documented_spans = table("Spans", 2);

    assert!(captured.spans.iter().all(|s| s.target == TARGET), "every span has target {TARGET}");
    let emitted: BTreeSet<String> = captured.spans.iter().map(|s| s.name.to_owned()).collect();
    let listed: BTreeSet<String> = documented_spans.keys().cloned().collect();
    assert_eq!(emitted, listed, "span names: emitted vs docs/span-schema.md");
    let constants: BTreeSet<String> = span_names::ALL.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(constants, listed, "span names: telemetry::span_names vs docs");

    for span in &captured.spans {
        let declared: BTreeSet<String> = span.declared.iter().map(|f| (*f).to_owned()).collect();
        assert_eq!(declared, documented_spans[span.name], "fields of span `{}`", span.name);
        if let Some(kind) = span.fields.get("kind") {
            let kinds: &[&str] = if span.name == span_names::COMPOSITION { &COMPOSITION_KINDS } else { &KINDS };
            assert!(kinds.contains(&kind.as_str()), "kind {kind:?} of `{}` is not in telemetry's kinds", span.name);
        }
    }
    assert!(captured.spans.iter().any(|s| s.fields.contains_key("kind")), "the runs recorded some kinds");

    let documented_events = table("Events", 2);
    let emitted: BTreeSet<String> = captured.events.iter().map(|e| e.name.to_owned()).collect();
    let listed: BTreeSet<String> = documented_events.keys().cloned().collect();
    assert_eq!(emitted, listed, "event names: emitted vs docs/span-schema.md");
    let constants: BTreeSet<String> = event_names::ALL.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(constants, listed, "event names: telemetry::event_names vs docs");
    for event in &captured.events {
        let fields: BTreeSet<String> = event.fields.keys().cloned().collect();
        assert_eq!(fields, documented_events[event.name], "fields of event `{}`", event.name);
    }

    let documented_states: BTreeSet<String> = table("Lifecycle states", 0).keys().cloned().collect();
    let emitted: BTreeSet<String> =
        captured.events_named(event_names::LIFECYCLE).map(|e| e.fields["state"].clone()).collect();
    assert_eq!(emitted, documented_states, "lifecycle states: emitted vs docs");
    let all: BTreeSet<String> = NodeState::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    assert_eq!(all, documented_states, "lifecycle states: NodeState vs docs");
}

#[tokio::test(start_paused = true)]
async fn spans_nest_as_documented() {
    let captured = exercise_everything().await;
    let parents: BTreeMap<&str, BTreeSet<&str>> = captured.spans.iter().fold(BTreeMap::new(), |mut map, span| {
        let parent = span.parent.map_or("(root)", |p| captured.spans[p].name);
        map.entry(span.name).or_insert_with(BTreeSet::new).insert(parent);
        map
    });
    assert_eq!(parents["flow"], BTreeSet::from(["(root)", "flow", "composition"]));
    assert_eq!(parents["composition"], BTreeSet::from(["(root)"]));
    assert_eq!(parents["node"], BTreeSet::from(["flow", "item"]));
    assert_eq!(parents["prep"], BTreeSet::from(["node", "flow"]));
    assert_eq!(parents["exec"], BTreeSet::from(["node", "item"]));
    assert_eq!(parents["fallback"], BTreeSet::from(["node", "item"]));
    assert_eq!(parents["post"], BTreeSet::from(["node", "flow"]));
    assert_eq!(parents["item"], BTreeSet::from(["node", "flow"]));
    assert!(captured.spans.iter().all(|s| s.closed), "every span is closed after the runs");
}

#[tokio::test(start_paused = true)]
async fn async_lifecycle_follows_real_suspensions() {
    let captured = exercise_everything().await;
    let (sleepy, _) =
        captured.spans_named("node").find(|(_, s)| s.fields.get("name").map(String::as_str) == Some("Sleepy")).unwrap();
    let states = captured.states_in(sleepy);
    assert_eq!(states.first(), Some(&"created"));
    assert_eq!(&states[1..3], ["starting", "running"]);
    assert!(states.windows(3).any(|w| w == ["suspended", "resuming", "running"]), "{states:?}");
    assert_eq!(&states[states.len() - 2..], ["completing", "completed"]);

    let cancelled: Vec<usize> = captured
        .spans_named("item")
        .filter(|(i, _)| captured.states_in(*i).contains(&"cancelled"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(cancelled.len(), 2, "the two waiting items are cancelled when their sibling fails");
    for index in cancelled {
        assert_eq!(captured.spans[index].fields["error"], "cancelled");
    }
    let errors: Vec<_> = captured.events_named(event_names::ERROR).collect();
    assert_eq!(errors.len(), 2, "one error event per failure: the bad item and the wiring error");
    assert_eq!(captured.events_named(event_names::RETRY).count(), 1, "2 attempts: 1 retry");
}

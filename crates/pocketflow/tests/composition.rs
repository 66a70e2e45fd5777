//! `pocketflow::compose`: flows run together under one `composition` span.
//!
//! Timing is asserted on tokio's paused clock (virtual time), never on the
//! wall clock: with the clock paused, the runtime jumps straight to the next
//! timer when every task waits, so "three 100 ms flows in parallel" takes
//! exactly 100 ms of virtual time, and 300 ms if they ran one by one.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use pocketflow::{
    Action, AsyncFlow, AsyncNode, BoxError, Composition, Ctx, Flow, FlowError, Node, RunOptions, SharedStore,
    TraceParent,
};
use pocketflow_test_support::{Capture, Captured, CapturedSpan};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;

/// Records every span and event of this test's thread (the tests run on
/// tokio's current-thread runtime, so every poll happens here).
fn capture() -> (Capture, DefaultGuard) {
    let capture = Capture::new();
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    (capture, guard)
}

/// Writes when it started (virtual ms since `t0`) to `started_ms`, sleeps
/// `ms` in `exec`, then returns its action or fails with its message.
struct Work {
    name: &'static str,
    t0: Instant,
    ms: u64,
    outcome: Result<&'static str, &'static str>,
}

impl AsyncNode for Work {
    type Prep = ();
    type Exec = &'static str;

    fn name(&self) -> Cow<'static, str> {
        self.name.into()
    }

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        shared.insert("started_ms", elapsed_ms(self.t0));
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<&'static str, BoxError> {
        tokio::time::sleep(Duration::from_millis(self.ms)).await;
        self.outcome.map_err(Into::into)
    }

    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), action: &'static str) -> Result<Action, BoxError> {
        Ok(action.into())
    }
}

fn elapsed_ms(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap()
}

/// An `AsyncFlow` named `name` around one [`Work`] node of the same name.
fn work(name: &'static str, t0: Instant, ms: u64, outcome: Result<&'static str, &'static str>) -> AsyncFlow {
    let mut flow = AsyncFlow::named(name);
    flow.start(Work { name, t0, ms, outcome });
    flow
}

fn composition(captured: &Captured) -> (usize, &CapturedSpan) {
    let mut found = captured.spans_named("composition");
    let first = found.next().expect("a composition span");
    assert!(found.next().is_none(), "one composition span");
    first
}

fn flow_spans(captured: &Captured) -> Vec<(usize, &CapturedSpan)> {
    captured.spans_named("flow").collect()
}

fn json_field(span: &CapturedSpan, field: &str) -> Value {
    let text = span.fields.get(field).unwrap_or_else(|| panic!("no field {field} in {:?}", span.fields));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{field} = {text}: {e}"))
}

/// The index, in the event list, of the span's first lifecycle event with
/// this state.
fn state_position(captured: &Captured, span: usize, state: &str) -> usize {
    captured
        .events
        .iter()
        .position(|e| {
            e.span == Some(span)
                && e.name == "pocketflow.lifecycle"
                && e.fields.get("state").map(String::as_str) == Some(state)
        })
        .unwrap_or_else(|| panic!("no {state} event in span {span}"))
}

#[tokio::test(start_paused = true)]
async fn parallel_keeps_every_result_in_input_order_when_one_fails() {
    let (capture, _guard) = capture();
    let t0 = Instant::now();
    let flows = [work("A", t0, 30, Ok("a")), work("B", t0, 10, Err("no model")), work("C", t0, 20, Ok("c"))];
    let stores = [SharedStore::new(), SharedStore::new(), SharedStore::new()];

    let results = Composition::parallel("ParallelFlowComposition")
        .run(flows.iter().zip(&stores).map(|(flow, shared)| flow.run(shared)))
        .await;

    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().ok(), Some(&Action::from("a")));
    let error = results[1].as_ref().expect_err("B failed");
    assert!(matches!(error, FlowError::Node { node, .. } if node == "B"), "{error:?}");
    assert_eq!(results[2].as_ref().ok(), Some(&Action::from("c")));
    // Nothing was cancelled: A outlived B's failure and finished its work.
    assert_eq!(elapsed_ms(t0), 30);

    let captured = capture.snapshot();
    let (index, span) = composition(&captured);
    assert_eq!(span.fields["name"], "ParallelFlowComposition");
    assert_eq!(span.fields["kind"], "parallel");
    assert_eq!(span.fields["count"], "3");
    assert_eq!(span.fields["limit"], "0");
    assert_eq!(span.fields["failed"], "1");
    assert_eq!(json_field(span, "output"), json!([{"ok": "a"}, {"error": error.to_string()}, {"ok": "c"}]),);
    // Some flows succeeded: the composition itself did not fail.
    assert!(!span.fields.contains_key("error"), "{:?}", span.fields);
    assert_eq!(captured.states_in(index).last(), Some(&"completed"));
    assert!(captured.spans.iter().all(|s| s.closed));
}

#[tokio::test(start_paused = true)]
async fn parallel_flow_spans_are_children_of_a_root_composition() {
    let (capture, _guard) = capture();
    let t0 = Instant::now();
    let flows = [work("A", t0, 10, Ok("a")), work("B", t0, 10, Ok("b"))];
    let stores = [SharedStore::new(), SharedStore::new()];

    let results = Composition::parallel("Pair").run(flows.iter().zip(&stores).map(|(f, s)| f.run(s))).await;
    assert!(results.iter().all(Result::is_ok));

    let captured = capture.snapshot();
    let (index, span) = composition(&captured);
    assert_eq!(span.parent, None, "started at top level: a root");
    let flows = flow_spans(&captured);
    assert_eq!(flows.iter().map(|(_, f)| f.fields["name"].as_str()).collect::<Vec<_>>(), ["A", "B"]);
    for (_, flow) in &flows {
        assert_eq!(flow.parent, Some(index), "{flow:?}");
    }
    for (node, _) in captured.spans_named("node") {
        assert_eq!(captured.ancestry(node), ["flow", "composition"]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_composition_is_a_child_of_the_span_current_when_it_starts() {
    let (capture, _guard) = capture();
    let flow = work("A", Instant::now(), 10, Ok("a"));
    let shared = SharedStore::new();

    let request = tracing::info_span!("request");
    let run = Composition::parallel("InRequest").run([flow.run(&shared)]);
    tracing::Instrument::instrument(run, request).await;

    let captured = capture.snapshot();
    let (index, _) = composition(&captured);
    assert_eq!(captured.ancestry(index), ["request"]);
}

#[tokio::test(start_paused = true)]
async fn parallel_flows_overlap_and_the_limit_caps_them() {
    let t0 = Instant::now();
    let flows = [work("A", t0, 100, Ok("a")), work("B", t0, 100, Ok("b")), work("C", t0, 100, Ok("c"))];
    let stores = [SharedStore::new(), SharedStore::new(), SharedStore::new()];
    let runs = || flows.iter().zip(&stores).map(|(f, s)| f.run(s));

    let start = Instant::now();
    let results = Composition::parallel("Unlimited").run(runs()).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(start.elapsed(), Duration::from_millis(100), "all three at once");

    let start = Instant::now();
    let results = Composition::parallel("TwoAtATime").limit(2).run(runs()).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(start.elapsed(), Duration::from_millis(200), "two, then the third");
    let started: Vec<u64> = stores.iter().map(|s| s.get::<u64>("started_ms").unwrap() - 100).collect();
    assert_eq!(started, [0, 0, 100]);

    let start = Instant::now();
    let results = Composition::parallel("OneByOne").limit(1).run(runs()).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(start.elapsed(), Duration::from_millis(300), "one after another");
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_flow_does_not_hold_back_later_ones() {
    let t0 = Instant::now();
    let flows = [work("Slow", t0, 300, Ok("slow")), work("B", t0, 100, Ok("b")), work("C", t0, 100, Ok("c"))];
    let stores = [SharedStore::new(), SharedStore::new(), SharedStore::new()];

    let results = Composition::parallel("Capped").limit(2).run(flows.iter().zip(&stores).map(|(f, s)| f.run(s))).await;

    let actions: Vec<String> = results.into_iter().map(|r| r.unwrap().to_string()).collect();
    assert_eq!(actions, ["slow", "b", "c"], "results in input order");
    // C takes B's slot when B finishes, not when Slow does.
    assert_eq!(stores[2].get::<u64>("started_ms").unwrap(), 100);
    assert_eq!(elapsed_ms(t0), 300);
}

#[tokio::test(start_paused = true)]
async fn when_every_flow_fails_the_composition_fails_with_the_first_error() {
    let (capture, _guard) = capture();
    let t0 = Instant::now();
    let flows = [work("First", t0, 20, Err("first broke")), work("Second", t0, 10, Err("second broke"))];
    let stores = [SharedStore::new(), SharedStore::new()];

    let results = Composition::parallel("Doomed").run(flows.iter().zip(&stores).map(|(f, s)| f.run(s))).await;

    let messages: Vec<String> = results.iter().map(|r| r.as_ref().unwrap_err().to_string()).collect();
    assert!(messages[0].contains("first broke") && messages[1].contains("second broke"), "{messages:?}");

    let captured = capture.snapshot();
    let (index, span) = composition(&captured);
    assert_eq!(span.fields["failed"], "2");
    assert_eq!(span.fields["error"], messages[0]);
    assert_eq!(json_field(span, "output"), json!([{"error": messages[0]}, {"error": messages[1]}]));
    assert_eq!(captured.states_in(index).last(), Some(&"failed"));
    // The failures were reported where they happened, not again here.
    assert!(captured.events_named("pocketflow.error").all(|e| e.span != Some(index)));
}

#[tokio::test(start_paused = true)]
async fn an_empty_composition_succeeds_with_no_results() {
    let (capture, _guard) = capture();
    let results = Composition::parallel("Nothing").run(Vec::<BoxFuture<'_, Result<Action, FlowError>>>::new()).await;
    assert!(results.is_empty());

    let captured = capture.snapshot();
    let (index, span) = composition(&captured);
    assert_eq!((span.fields["count"].as_str(), span.fields["failed"].as_str()), ("0", "0"));
    assert!(!span.fields.contains_key("error"));
    assert_eq!(captured.states_in(index).last(), Some(&"completed"));
}

#[tokio::test(start_paused = true)]
async fn nested_runs_one_flow_under_its_own_span() {
    let (capture, _guard) = capture();
    let t0 = Instant::now();
    let analysis = work("Analysis", t0, 10, Ok("analysed"));
    let broken = work("Broken", t0, 10, Err("bad input"));
    let shared = SharedStore::new();

    let action = Composition::nested("Follow-up").run(analysis.run(&shared)).await.unwrap();
    assert_eq!(action, "analysed");
    let error = Composition::nested("Doomed").run(broken.run(&shared)).await.unwrap_err();

    let captured = capture.snapshot();
    let compositions: Vec<_> = captured.spans_named("composition").collect();
    let [(ok_index, ok), (failed_index, failed)] = compositions[..] else { panic!("{compositions:?}") };
    assert_eq!(ok.fields["kind"], "nested");
    assert_eq!((ok.fields["count"].as_str(), ok.fields["limit"].as_str()), ("1", "1"));
    assert_eq!(ok.fields["failed"], "0");
    assert_eq!(json_field(ok, "output"), json!([{"ok": "analysed"}]));
    assert!(!ok.fields.contains_key("error"));
    assert_eq!(captured.states_in(ok_index).last(), Some(&"completed"));

    assert_eq!(failed.fields["failed"], "1");
    assert_eq!(failed.fields["error"], error.to_string());
    assert_eq!(json_field(failed, "output"), json!([{"error": error.to_string()}]));
    assert_eq!(captured.states_in(failed_index).last(), Some(&"failed"));

    let parents: Vec<Option<usize>> = flow_spans(&captured).iter().map(|(_, f)| f.parent).collect();
    assert_eq!(parents, [Some(ok_index), Some(failed_index)]);
}

#[tokio::test(start_paused = true)]
async fn a_sequential_batch_starts_each_flow_after_the_previous_one_ended() {
    let (capture, _guard) = capture();
    let t0 = Instant::now();
    let items = [100, 50, 10].map(|ms| (work("PerItem", t0, ms, Ok("done")), SharedStore::new()));
    let built_at = Mutex::new(Vec::new());

    let results = Composition::batch("BatchFlow_Docs")
        .run(&items, |(flow, shared)| {
            built_at.lock().unwrap().push(elapsed_ms(t0));
            flow.run(shared)
        })
        .await;

    assert!(results.iter().all(Result::is_ok));
    // Each flow was built only when its turn came.
    assert_eq!(*built_at.lock().unwrap(), [0, 100, 150]);
    assert_eq!(elapsed_ms(t0), 160);

    let captured = capture.snapshot();
    let (index, span) = composition(&captured);
    assert_eq!(span.fields["kind"], "batch");
    assert_eq!((span.fields["count"].as_str(), span.fields["limit"].as_str()), ("3", "1"));
    assert_eq!(json_field(span, "output"), json!([{"ok": "done"}, {"ok": "done"}, {"ok": "done"}]));
    let flows = flow_spans(&captured);
    assert_eq!(flows.len(), 3);
    assert!(flows.iter().all(|(_, f)| f.parent == Some(index)));
    for pair in flows.windows(2) {
        let (previous, next) = (pair[0].0, pair[1].0);
        assert!(
            state_position(&captured, previous, "completed") < state_position(&captured, next, "created"),
            "flow span {next} was created before flow span {previous} completed"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_parallel_batch_honours_its_limit() {
    let (capture, _guard) = capture();
    let t0 = Instant::now();
    let flow = work("PerItem", t0, 100, Ok("done"));
    let stores: Vec<SharedStore> = (0..3).map(|i| SharedStore::from_iter([("i", i)])).collect();

    let results = Composition::batch("Limited").limit(2).run(&stores, |shared| flow.run(shared)).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(elapsed_ms(t0), 200);
    let started: Vec<u64> = stores.iter().map(|s| s.get("started_ms").unwrap()).collect();
    assert_eq!(started, [0, 0, 100]);

    let start = Instant::now();
    let results = Composition::batch("Unlimited").parallel().run(&stores, |shared| flow.run(shared)).await;
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(start.elapsed(), Duration::from_millis(100));

    let captured = capture.snapshot();
    let limits: Vec<&str> = captured.spans_named("composition").map(|(_, s)| s.fields["limit"].as_str()).collect();
    assert_eq!(limits, ["2", "0"]);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_composition_mid_run_closes_every_span_as_cancelled() {
    let (capture, _guard) = capture();
    let t0 = Instant::now();
    let flows = [work("A", t0, 100, Ok("a")), work("B", t0, 100, Ok("b")), work("C", t0, 100, Ok("c"))];
    let stores = [SharedStore::new(), SharedStore::new(), SharedStore::new()];

    let run = Composition::parallel("Abandoned").run(flows.iter().zip(&stores).map(|(f, s)| f.run(s)));
    let timed_out = tokio::time::timeout(Duration::from_millis(50), run).await;
    assert!(timed_out.is_err(), "the flows were still sleeping");

    let captured = capture.snapshot();
    assert!(captured.spans.iter().all(|s| s.closed), "{:#?}", captured.spans);
    let cancelled: Vec<usize> = captured
        .spans
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.name, "composition" | "flow" | "node"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(cancelled.len(), 1 + 3 + 3);
    for index in cancelled {
        let span = &captured.spans[index];
        assert_eq!(span.fields.get("error").map(String::as_str), Some("cancelled"), "{span:?}");
        assert_eq!(captured.states_in(index).last(), Some(&"cancelled"), "{span:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn run_options_are_recorded_on_the_composition_span() {
    let (capture, _guard) = capture();
    let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
    let link: TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap();
    let options = RunOptions::new()
        .session_id("chat-42")
        .user_id("ada")
        .tag("nightly")
        .metadata("plan", "pro")
        .parent(parent)
        .link(link);
    let flow = work("A", Instant::now(), 10, Ok("a"));
    let shared = SharedStore::new();

    let results = Composition::parallel("WithOptions").options(options).run([flow.run(&shared)]).await;
    assert!(results[0].is_ok());

    let captured = capture.snapshot();
    let (index, span) = composition(&captured);
    assert_eq!(span.fields["session_id"], "chat-42");
    assert_eq!(span.fields["user_id"], "ada");
    assert_eq!(json_field(span, "tags"), json!(["nightly"]));
    assert_eq!(json_field(span, "metadata"), json!({"plan": "pro"}));
    assert_eq!(span.fields["traceparent"], parent.to_string());
    assert_eq!(span.fields["links"], link.to_string());
    let continued: Vec<_> = captured.events_named("pocketflow.context").filter(|e| e.span == Some(index)).collect();
    assert_eq!(continued.len(), 1);
    assert_eq!(continued[0].fields["action"], "continued");
    assert_eq!(continued[0].fields["task"], parent.to_string());
}

/// A store of its own type, for a sync flow.
#[derive(Debug, Default, Serialize)]
struct Tally {
    count: Mutex<u32>,
}

/// A sync node that counts its runs in a [`Tally`].
struct CountRun;

impl Node<Tally> for CountRun {
    type Prep = ();
    type Exec = ();

    fn prep(&self, _: &Ctx<'_>, tally: &Tally) -> Result<(), BoxError> {
        *tally.count.lock().unwrap() += 1;
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }

    fn post(&self, _: &Ctx<'_>, _: &Tally, _: (), _: ()) -> Result<Action, BoxError> {
        Ok("counted".into())
    }
}

#[tokio::test(start_paused = true)]
async fn heterogeneous_flows_compose_under_one_span() {
    let (capture, _guard) = capture();
    let search = work("Search", Instant::now(), 10, Ok("searched"));
    let mut count = Flow::named("Count");
    count.start(CountRun);
    let (documents, tally) = (SharedStore::new(), Tally::default());

    let flows: [BoxFuture<'_, Result<Action, FlowError>>; 2] =
        [search.run(&documents).boxed(), async { count.run(&tally) }.boxed()];
    let results = Composition::parallel("SearchAndCount").run(flows).await;

    let actions: Vec<String> = results.into_iter().map(|r| r.unwrap().to_string()).collect();
    assert_eq!(actions, ["searched", "counted"]);
    assert_eq!(*tally.count.lock().unwrap(), 1);

    let captured = capture.snapshot();
    let (index, span) = composition(&captured);
    assert_eq!(json_field(span, "output"), json!([{"ok": "searched"}, {"ok": "counted"}]));
    let kinds: Vec<(&str, &str, Option<usize>)> = flow_spans(&captured)
        .iter()
        .map(|(_, f)| (f.fields["name"].as_str(), f.fields["kind"].as_str(), f.parent))
        .collect();
    assert_eq!(kinds, [("Search", "AsyncFlow", Some(index)), ("Count", "Flow", Some(index))]);
}

#[tokio::test(start_paused = true)]
async fn compositions_can_be_spawned() {
    let t0 = Instant::now();
    let owned = move |name, ms| {
        let flow = work(name, t0, ms, Ok("spawned"));
        async move { flow.run(&SharedStore::new()).await }
    };
    let parallel = tokio::spawn(Composition::parallel("Spawned").run([owned("A", 10), owned("B", 10)]));
    let nested = tokio::spawn(Composition::nested("SpawnedNested").run(owned("C", 10)));
    let batch = tokio::spawn(Composition::batch("SpawnedBatch").run(["D", "E"], move |name| owned(name, 10)));

    assert!(parallel.await.unwrap().iter().all(Result::is_ok));
    assert_eq!(nested.await.unwrap().unwrap(), "spawned");
    let batch = batch.await.unwrap();
    assert_eq!(batch.len(), 2);
    assert!(batch.iter().all(Result::is_ok));
    assert_eq!(elapsed_ms(t0), 20, "the spawned compositions ran side by side");
}

//! `composition` spans (flows run together) map like flows: named after
//! their `name`, type `chain`, their own `pocketflow.composition.*`
//! attributes, a trace of their own when nothing above them is recorded.
//! Lifecycle stats become `pocketflow.lifecycle.*` attributes, and a span's
//! lifecycle events stay bounded however often its future suspends.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::borrow::Cow;

use pocketflow::{
    Action, AsyncBatchNode, AsyncFlow, AsyncNode, BoxError, Composition, Ctx, FlowError, RunOptions, SharedStore,
};
use pocketflow_test_support::otlp::{AttrValue, ReceivedSpan, ReceivedTrace, StatusCode};
use pocketflow_tracing::ObservationType;
use serde_json::{Value, json};

use common::{AsyncStep, all_spans, async_step_flow, block_on, export, lifecycle_states, span_named};

/// `Step`: its `exec` fails with `boom`.
struct Boom;

impl AsyncNode for Boom {
    type Prep = ();
    type Exec = ();

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("Step")
    }

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        Err("boom".into())
    }
}

/// A flow named `name` whose one node, `Step`, succeeds or fails.
fn flow(name: &'static str, fails: bool) -> AsyncFlow {
    if fails {
        let mut flow = AsyncFlow::named(name);
        flow.start(Boom);
        flow
    } else {
        async_step_flow(name)
    }
}

/// Runs `flows` (name, whether it fails) in parallel under the composition
/// `name`, with a session of its own; returns their results.
async fn composition(name: &'static str, flows: &[(&'static str, bool)]) -> Vec<Result<Action, FlowError>> {
    let flows: Vec<AsyncFlow> = flows.iter().map(|&(name, fails)| flow(name, fails)).collect();
    let stores: Vec<SharedStore> = flows.iter().map(|_| SharedStore::new()).collect();
    Composition::parallel(name)
        .options(RunOptions::new().session_id("composed-session"))
        .run(flows.iter().zip(&stores).map(|(flow, shared)| flow.run(shared)))
        .await
}

fn json_output(span: &ReceivedSpan) -> Value {
    serde_json::from_str(span.attr_str("langfuse.observation.output").unwrap()).unwrap()
}

#[test]
fn a_root_composition_is_named_after_its_name_and_starts_the_trace_of_its_flows() {
    let (results, traces) = export(|b| b, || block_on(composition("Fanout", &[("A", false), ("B", true)])));
    let failure = results[1].as_ref().unwrap_err().to_string();
    assert!(failure.contains("boom"), "{failure}");
    assert_eq!(traces.len(), 1, "one trace");
    let trace = &traces[0];
    // Each flow: the flow, its node, `prep`, `exec`, and `post` or the
    // fallback that handed the failure back.
    assert_eq!(trace.spans.len(), 1 + 5 + 5, "{}", trace.tree());
    assert_eq!(trace.roots().len(), 1, "{}", trace.tree());
    let root = trace.roots()[0];
    assert_eq!(root.name, "Fanout");
    assert_eq!(root.attr_str("pocketflow.span"), Some("composition"));
    assert_eq!(root.attr_str("pocketflow.composition.name"), Some("Fanout"));
    assert_eq!(root.attr_str("pocketflow.composition.kind"), Some("parallel"));
    assert_eq!(root.attr("pocketflow.composition.count"), Some(&AttrValue::Int(2)));
    assert_eq!(root.attr("pocketflow.composition.limit"), Some(&AttrValue::Int(0)));
    assert_eq!(root.attr("pocketflow.composition.failed"), Some(&AttrValue::Int(1)));
    assert_eq!(root.attr_str("langfuse.observation.type"), Some("chain"));
    assert_eq!(root.attr_str("openinference.span.kind"), Some("CHAIN"));
    assert_eq!(json_output(root), json!([{"ok": null}, {"error": failure}]));
    assert_eq!(root.attr_str("output.mime_type"), Some("application/json"));
    // A composition that got some results did its job: only the failed
    // flow's spans fail.
    assert_eq!(root.status.code, StatusCode::Unset);
    assert!(root.events.iter().all(|e| e.name != "exception"));
    let flows = trace.children(&root.span_id);
    let names: Vec<&str> = flows.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["A", "B"], "{}", trace.tree());
    assert_eq!(flows[0].status.code, StatusCode::Unset);
    assert_eq!(flows[1].status.code, StatusCode::Error);
    for span in &trace.spans {
        assert_eq!(span.attr_str("langfuse.trace.name"), Some("Fanout"), "{}", span.name);
        assert_eq!(span.attr_str("langfuse.session.id"), Some("composed-session"), "{}", span.name);
    }
}

#[test]
fn a_composition_whose_flows_all_failed_fails_with_the_first_flows_error() {
    let (results, traces) = export(|b| b, || block_on(composition("Fanout", &[("A", true), ("B", true)])));
    let first = results[0].as_ref().unwrap_err().to_string();
    let root = span_named(&traces, "Fanout");
    assert_eq!(root.attr("pocketflow.composition.failed"), Some(&AttrValue::Int(2)));
    assert_eq!(root.status.code, StatusCode::Error);
    assert_eq!(root.status.message, first);
    let exception = root.events.iter().find(|e| e.name == "exception").unwrap();
    assert_eq!(exception.attributes.get("exception.message").and_then(AttrValue::as_str), Some(first.as_str()));
}

#[test]
fn a_composition_takes_its_observation_type_from_the_config_by_name() {
    let (_, traces) = export(
        |b| b.observation_type("Fanout", ObservationType::Agent),
        || block_on(composition("Fanout", &[("A", false)])),
    );
    let root = span_named(&traces, "Fanout");
    assert_eq!(root.attr_str("langfuse.observation.type"), Some("agent"));
    assert_eq!(root.status.code, StatusCode::Unset);
}

/// Runs the composition `Fanout` of `A` and `B` from its `exec`.
struct Compose;

impl AsyncNode for Compose {
    type Prep = ();
    type Exec = ();

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        for result in composition("Fanout", &[("A", false), ("B", false)]).await {
            result?;
        }
        Ok(())
    }
}

#[test]
fn a_composition_inside_a_flow_hangs_under_it_in_the_flows_trace() {
    let ((), traces) = export(
        |b| b,
        || {
            let mut outer = AsyncFlow::named("Outer");
            outer.start(Compose);
            block_on(outer.run(&SharedStore::new())).unwrap();
        },
    );
    assert_eq!(traces.len(), 1);
    let trace = &traces[0];
    let tree = trace.tree();
    let fanout = span_named(&traces, "Fanout");
    let path: Vec<String> = trace.path(fanout);
    assert_eq!(path, ["Outer", "Compose", "Compose.exec", "Fanout"], "{tree}");
    let flows: Vec<&str> = trace.children(&fanout.span_id).iter().map(|s| s.name.as_str()).collect();
    assert_eq!(flows, ["A", "B"], "{tree}");
    assert_eq!(fanout.attr_str("langfuse.trace.name"), Some("Outer"));
    // Not the root: its session is its own observation metadata.
    assert_eq!(fanout.attr_str("langfuse.observation.metadata.session_id"), Some("composed-session"));
    for span in &trace.spans {
        assert!(span.attr("langfuse.session.id").is_none(), "{} in\n{tree}", span.name);
    }
}

fn stats(span: &ReceivedSpan) -> (Option<i64>, Option<i64>, Option<&AttrValue>, Option<&AttrValue>) {
    (
        span.attr("pocketflow.lifecycle.polls").and_then(AttrValue::as_i64),
        span.attr("pocketflow.lifecycle.suspensions").and_then(AttrValue::as_i64),
        span.attr("pocketflow.lifecycle.running_ms"),
        span.attr("pocketflow.lifecycle.suspended_ms"),
    )
}

/// Makes the task wait `times` times: each is one suspension of every run
/// it is inside.
async fn suspend(times: usize) {
    for _ in 0..times {
        tokio::task::yield_now().await;
    }
}

/// `Pause`: waits once in `exec`.
struct Pause;

impl AsyncNode for Pause {
    type Prep = ();
    type Exec = ();

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        suspend(1).await;
        Ok(())
    }
}

/// `N`: waits once in `prep`, then three times in its one item's `exec`.
struct Items;

impl AsyncBatchNode for Items {
    type Item = u32;
    type Output = ();

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("N")
    }

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u32>, BoxError> {
        suspend(1).await;
        Ok(vec![0])
    }

    async fn exec(&self, _: &Ctx<'_>, _: &u32) -> Result<(), BoxError> {
        suspend(3).await;
        Ok(())
    }
}

#[test]
fn lifecycle_stats_recorded_at_the_end_become_lifecycle_attributes() {
    let ((), traces) = export(
        |b| b,
        || {
            // C waits once, then runs F: `Pause` (one wait) >> `N` (four).
            let mut flow = AsyncFlow::named("F");
            let pause = flow.start(Pause);
            let items = flow.add(Items);
            flow.link(pause >> items);
            let shared = SharedStore::new();
            block_on(Composition::nested("C").run(async {
                suspend(1).await;
                flow.run(&shared).await
            }))
            .unwrap();
        },
    );
    // Every wait suspends each run it is inside once; a run that completed
    // was polled once more than it was suspended.
    for (name, suspensions) in [("C", 6), ("F", 5), ("N", 4), ("N.item", 3), ("Pause", 1)] {
        let span = span_named(&traces, name);
        let (polls, suspended, running_ms, suspended_ms) = stats(span);
        assert_eq!((polls, suspended), (Some(suspensions + 1), Some(suspensions)), "{name}");
        assert!(matches!(running_ms, Some(AttrValue::Double(ms)) if *ms > 0.0), "{name}: {running_ms:?}");
        assert!(matches!(suspended_ms, Some(AttrValue::Double(ms)) if *ms >= 0.0), "{name}: {suspended_ms:?}");
        for raw in ["polls", "suspensions", "running_ms", "suspended_ms"] {
            assert!(span.attr(raw).is_none(), "{name}: no raw {raw}");
        }
    }
}

/// `Busy`: its `exec` waits `self.0` times, then fails; its fallback
/// answers instead, so the node completes.
struct Busy(usize);

impl AsyncNode for Busy {
    type Prep = ();
    type Exec = ();

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        suspend(self.0).await;
        Err("gave up".into())
    }

    async fn exec_fallback(&self, _: &Ctx<'_>, (): &(), _: BoxError) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A flow `F`: `Quick` (never waits) >> `Busy`, whose future suspends
/// `suspensions` times.
fn suspending_node(suspensions: usize) {
    let mut flow = AsyncFlow::named("F");
    let quick = flow.start(AsyncStep("Quick"));
    let busy = flow.add(Busy(suspensions));
    flow.link(quick >> busy);
    block_on(flow.run(&SharedStore::new())).unwrap();
}

fn dropped(span: &ReceivedSpan) -> Option<i64> {
    span.attr("pocketflow.dropped_events").and_then(AttrValue::as_i64)
}

fn counted(span: &ReceivedSpan, what: &str) -> Option<i64> {
    span.attr(&format!("pocketflow.lifecycle.{what}")).and_then(AttrValue::as_i64)
}

fn busy(traces: &[ReceivedTrace]) -> &ReceivedSpan {
    span_named(traces, "Busy")
}

#[test]
fn a_span_whose_future_suspends_a_hundred_thousand_times_keeps_its_milestones_and_summarizes_the_cycles() {
    const SUSPENSIONS: usize = 100_000;
    let ((), traces) = export(|b| b, || suspending_node(SUSPENSIONS));
    let node = busy(&traces);
    let states = lifecycle_states(node);
    // The default cap, 32, then the milestones not seen yet.
    assert_eq!(states.len(), 34, "{states:?}");
    assert_eq!(states[..7], ["created", "starting", "running", "suspended", "resuming", "running", "suspended"]);
    assert_eq!(states[32..], ["completing", "completed"]);
    // Every cycle is counted, so nothing reads as lost.
    assert_eq!(counted(node, "suspensions"), Some(i64::try_from(SUSPENSIONS).unwrap()));
    assert_eq!(counted(node, "polls"), Some(i64::try_from(SUSPENSIONS + 1).unwrap()));
    assert_eq!(dropped(node), None, "nothing was lost");
    assert!(node.attr("pocketflow.lifecycle.dropped_events").is_none());
    assert!(node.events.iter().any(|e| e.name == "pocketflow.fallback"), "other events are not affected");
    assert_eq!(node.dropped_events_count, 0, "within the per-span event cap");
    let flow = span_named(&traces, "F");
    let flow_states = lifecycle_states(flow);
    assert!(flow_states.len() <= 34, "the flow suspended as often: {}", flow_states.len());
    assert_eq!(flow_states.last(), Some(&"completed"));
    assert_eq!(dropped(flow), None);
}

#[test]
fn the_lifecycle_cap_is_configurable_and_a_run_within_it_keeps_every_transition() {
    let ((), traces) = export(|b| b.max_lifecycle_events_per_span(5), || suspending_node(2));
    let node = busy(&traces);
    assert_eq!(
        lifecycle_states(node),
        ["created", "starting", "running", "suspended", "resuming", "completing", "completed"],
        "past the cap, only the milestones"
    );
    assert_eq!(counted(node, "suspensions"), Some(2));
    assert_eq!(dropped(node), None);
    let quick = span_named(&traces, "Quick");
    assert_eq!(lifecycle_states(quick), ["created", "starting", "running", "completing", "completed"]);

    let ((), traces) = export(|b| b, || suspending_node(2));
    let node = busy(&traces);
    let states = lifecycle_states(node);
    assert_eq!(
        states.iter().filter(|s| **s == "suspended").count(),
        2,
        "a normal run keeps every transition: {states:?}"
    );
    assert_eq!(states.iter().filter(|s| **s == "resuming").count(), 2);
    assert_eq!(states.len(), 3 + 3 * 2 + 2);
}

#[test]
fn the_per_span_event_cap_still_applies_and_lifecycle_cycles_never_push_out_other_events() {
    let ((), traces) = export(|b| b.max_events_per_span(10), || suspending_node(1_000));
    let node = busy(&traces);
    assert_eq!(node.events.len(), 10);
    assert!(node.events.iter().any(|e| e.name == "pocketflow.fallback"), "the fallback event made room for itself");
    let states = lifecycle_states(node);
    assert_eq!(states.first(), Some(&"created"));
    assert_eq!(states.last(), Some(&"completed"));
    assert_eq!(node.dropped_events_count, 0, "only summarized cycles gave way");
    for span in all_spans(&traces) {
        assert!(span.events.len() <= 10, "{}", span.name);
    }
}

#[test]
fn events_lost_to_the_per_span_cap_are_counted_where_a_user_sees_them() {
    // Three slots: the node's milestones alone need more.
    let ((), traces) = export(|b| b.max_events_per_span(3), || suspending_node(2));
    let node = busy(&traces);
    assert_eq!(node.events.len(), 3);
    let lost = dropped(node).expect("a drop count on the span");
    assert!(lost > 0);
    assert_eq!(u32::try_from(lost).unwrap(), node.dropped_events_count);
}

fn json_input(span: &ReceivedSpan) -> Value {
    serde_json::from_str(span.attr_str("langfuse.observation.input").expect("an input")).unwrap()
}

/// A store holding `question`.
fn store(question: &str) -> SharedStore {
    let shared = SharedStore::new();
    shared.insert("question", question);
    shared
}

#[test]
fn a_root_composition_has_what_each_of_its_flows_started_with_as_its_input() {
    let (a, b) = (async_step_flow("A"), async_step_flow("B"));
    let (first, second) = (store("why?"), store("how?"));
    let ((), traces) = export(
        |b| b,
        || {
            block_on(async {
                Composition::parallel("Both").run([a.run(&first), b.run(&second)]).await;
            });
        },
    );
    let root = span_named(&traces, "Both");
    assert_eq!(
        json_input(root),
        json!([{"flow": "A", "input": {"question": "why?"}}, {"flow": "B", "input": {"question": "how?"}}]),
        "in the order the flows started"
    );
    assert_eq!(root.attr_str("input.mime_type"), Some("application/json"));
    assert_eq!(json_input(root), serde_json::from_str::<Value>(root.attr_str("input.value").unwrap()).unwrap());
}

#[test]
fn a_composition_of_compositions_gets_its_inputs_through_the_nested_one() {
    let (a, b) = (async_step_flow("A"), async_step_flow("B"));
    let (first, second) = (store("one"), store("two"));
    let ((), traces) = export(
        |b| b,
        || {
            block_on(async {
                Composition::nested("Outer")
                    .run(async {
                        let results = Composition::batch("Inner")
                            .run([(&a, &first), (&b, &second)], |(flow, shared)| flow.run(shared))
                            .await;
                        results.into_iter().collect::<Result<Vec<_>, _>>()
                    })
                    .await
                    .unwrap();
            });
        },
    );
    let inner = json!([{"flow": "A", "input": {"question": "one"}}, {"flow": "B", "input": {"question": "two"}}]);
    assert_eq!(json_input(span_named(&traces, "Inner")), inner);
    assert_eq!(json_input(span_named(&traces, "Outer")), json!([{"flow": "Inner", "input": inner}]));
}

#[test]
fn a_composition_of_many_flows_keeps_the_inputs_that_fit_the_payload_cap_and_counts_the_rest() {
    let flows: Vec<AsyncFlow> = (0..50).map(|_| async_step_flow("F")).collect();
    let stores: Vec<SharedStore> = (0..50).map(|i| store(&format!("question number {i}"))).collect();
    let ((), traces) = export(
        |b| b.max_payload_bytes(200),
        || {
            block_on(async {
                Composition::batch("Many").run(flows.iter().zip(&stores), |(flow, shared)| flow.run(shared)).await;
            });
        },
    );
    let text = span_named(&traces, "Many").attr_str("langfuse.observation.input").unwrap().to_owned();
    assert!(text.contains("question number 0"), "{text}");
    assert!(!text.contains("question number 49"), "{text}");
    let value: Value = serde_json::from_str(&text).expect("still JSON within the cap");
    let entries = value.as_array().unwrap();
    let more = entries.last().unwrap()["more_flows"].as_u64().expect("the rest counted");
    assert_eq!(more + u64::try_from(entries.len() - 1).unwrap(), 50);
}

#[test]
fn a_composition_records_no_input_when_inputs_are_off() {
    let a = async_step_flow("A");
    let shared = store("secret plan");
    let ((), traces) = export(
        |b| b.trace_inputs(false),
        || {
            block_on(async {
                Composition::nested("Quiet").run(a.run(&shared)).await.unwrap();
            });
        },
    );
    assert!(span_named(&traces, "Quiet").attr("langfuse.observation.input").is_none());
}

//! The five switches of the Python `TracingConfig` each change what is
//! exported: every test runs the same real flows with the switch on and off.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::borrow::Cow;
use std::time::Duration;

use pocketflow::{
    AsyncFlow, AsyncNode, BatchNode, BoxError, Composition, Ctx, ErrorHandler, ErrorType, Flow, Node, SharedStore,
};
use pocketflow_test_support::otlp::{AttrValue, ReceivedSpan, ReceivedTrace, StatusCode};
use pocketflow_tracing::TracingConfigBuilder;

use common::{AsyncStep, Step, all_spans, async_step_flow, block_on, export, lifecycle_states, span_named};

fn event_names(span: &ReceivedSpan) -> Vec<&str> {
    span.events.iter().map(|e| e.name.as_str()).collect()
}

fn both(
    switch: impl Fn(TracingConfigBuilder, bool) -> TracingConfigBuilder,
    work: impl Fn(),
) -> (Vec<ReceivedTrace>, Vec<ReceivedTrace>) {
    let ((), on) = export(|b| switch(b, true), &work);
    let ((), off) = export(|b| switch(b, false), &work);
    (on, off)
}

/// The one span whose parent is `parent` and whose name is `name`.
fn child<'a>(traces: &'a [ReceivedTrace], parent: &ReceivedSpan, name: &str) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = all_spans(traces)
        .filter(|s| s.name == name && s.parent_span_id.as_deref() == Some(parent.span_id.as_str()))
        .collect();
    assert_eq!(found.len(), 1, "{name} under {}: {found:#?}", parent.name);
    found[0]
}

/// An async flow `F` of one node `N`, neither of which ever waits.
fn async_flow_that_never_waits() {
    let mut flow = AsyncFlow::named("F");
    flow.start(AsyncStep("N"));
    block_on(flow.run(&SharedStore::new())).unwrap();
}

#[test]
fn trace_async_lifecycle_switches_lifecycle_events() {
    let (on, off) = both(TracingConfigBuilder::trace_async_lifecycle, async_flow_that_never_waits);
    let flow = span_named(&on, "F");
    assert_eq!(event_names(flow), ["pocketflow.lifecycle"; 4]);
    assert_eq!(lifecycle_states(flow), ["created", "starting", "running", "completed"]);
    assert_eq!(lifecycle_states(span_named(&on, "N")), ["created", "starting", "running", "completing", "completed"]);

    for span in all_spans(&off) {
        assert!(lifecycle_states(span).is_empty(), "{}: {:?}", span.name, event_names(span));
    }
    assert!(event_names(span_named(&off, "F")).is_empty());
    for traces in [&on, &off] {
        let flow = span_named(traces, "F");
        assert_eq!(flow.attr("pocketflow.lifecycle.polls"), Some(&AttrValue::Int(1)), "statistics either way");
    }
}

/// Spawns a task with the run's context from its `exec`.
struct SpawnsFetch;

impl AsyncNode for SpawnsFetch {
    type Prep = ();
    type Exec = u32;

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<u32, BoxError> {
        Ok(pocketflow::spawn("fetch", async { 42 }).await?)
    }
}

#[test]
fn trace_async_context_switches_context_events() {
    let (on, off) = both(TracingConfigBuilder::trace_async_context, || {
        let mut flow = AsyncFlow::named("F");
        flow.start(SpawnsFetch);
        block_on(flow.run(&SharedStore::new())).unwrap();
    });
    let exec = span_named(&on, "SpawnsFetch.exec");
    let context: Vec<_> = exec.events.iter().filter(|e| e.name == "pocketflow.context").collect();
    assert_eq!(context.len(), 1, "{:?}", event_names(exec));
    assert_eq!(context[0].attributes.get("action").and_then(AttrValue::as_str), Some("spawned"));
    assert_eq!(context[0].attributes.get("task").and_then(AttrValue::as_str), Some("fetch"));
    for span in all_spans(&off) {
        assert!(span.events.iter().all(|e| e.name != "pocketflow.context"), "{}", span.name);
    }
    // The remote-parent attribute and the `continued` event:
    // `remote_parents_and_links.rs`.
}

/// Runs flows `A` and `B` together under the composition `Inner`, from its
/// `exec`.
struct FanOut;

impl AsyncNode for FanOut {
    type Prep = ();
    type Exec = ();

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("Fan")
    }

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        let (a, b) = (async_step_flow("A"), async_step_flow("B"));
        let (for_a, for_b) = (SharedStore::new(), SharedStore::new());
        for result in Composition::parallel("Inner").run([a.run(&for_a), b.run(&for_b)]).await {
            result?;
        }
        Ok(())
    }
}

/// A top-level flow `Outer` (`Fan >> Nested`: a composition `Inner` of `A`
/// and `B` run from `Fan`'s `exec`, then a nested flow), then a top-level
/// batch composition `Top` of one flow `C`.
fn flows_run_together() {
    block_on(async {
        let mut outer = AsyncFlow::named("Outer");
        let fan = outer.start(FanOut);
        let nested = outer.add(async_step_flow("Nested"));
        outer.link(fan >> nested);
        outer.run(&SharedStore::new()).await.unwrap();

        let c = async_step_flow("C");
        let stores = [SharedStore::new()];
        for result in Composition::batch("Top").run(&stores, |shared| c.run(shared)).await {
            result.unwrap();
        }
    });
}

#[test]
fn trace_concurrent_flows_switches_composition_spans_and_the_concurrent_runs_attribute() {
    let (on, off) = both(TracingConfigBuilder::trace_concurrent_flows, flows_run_together);

    assert_eq!(on.len(), 2, "Outer's trace and Top's");
    let outer = span_named(&on, "Outer");
    let fan = child(&on, outer, "Fan");
    let fan_exec = child(&on, fan, "Fan.exec");
    let inner = child(&on, fan_exec, "Inner");
    assert_eq!(inner.attr_str("pocketflow.span"), Some("composition"));
    for name in ["A", "B"] {
        assert_eq!(child(&on, inner, name).trace_id, outer.trace_id);
    }
    child(&on, outer, "Nested");
    let top = span_named(&on, "Top");
    assert_eq!(top.parent_span_id, None);
    child(&on, top, "C");
    // The count is the whole process's, and other tests of this binary run
    // flows at the same time: only its presence on the roots is pinned.
    for span in all_spans(&on) {
        let concurrent = span.attr("pocketflow.concurrent_runs");
        if ["Outer", "Top"].contains(&span.name.as_str()) {
            assert!(matches!(concurrent, Some(AttrValue::Int(n)) if *n >= 1), "{}: {concurrent:?}", span.name);
        } else {
            assert_eq!(concurrent, None, "only on the roots of top-level runs, not on {}", span.name);
        }
        assert!(span.attr("concurrent").is_none(), "{}", span.name);
    }

    assert_eq!(off.len(), 2, "Outer's trace and C's");
    for span in all_spans(&off) {
        assert_ne!(span.attr_str("pocketflow.span"), Some("composition"), "{span:#?}");
        assert!(span.attr("pocketflow.concurrent_runs").is_none() && span.attr("concurrent").is_none());
    }
    let outer = span_named(&off, "Outer");
    let fan_exec = child(&off, child(&off, outer, "Fan"), "Fan.exec");
    assert!(
        lifecycle_states(fan_exec).is_empty(),
        "a switched-off composition's transitions are not its parent's: {:?}",
        lifecycle_states(fan_exec)
    );
    for name in ["A", "B"] {
        let flow = child(&off, fan_exec, name);
        assert_eq!(flow.trace_id, outer.trace_id, "{name} hangs from Fan's exec");
    }
    let c = span_named(&off, "C");
    assert_eq!(c.parent_span_id, None, "with no recorded ancestor, C is a root");
    assert_eq!(c.attr_str("langfuse.trace.name"), Some("C"));
}

/// `N`: its `exec` times out, and the default fallback hands the timeout
/// back, failing the node.
struct TimesOut;

impl AsyncNode for TimesOut {
    type Prep = ();
    type Exec = ();

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("N")
    }

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        pocketflow::with_timeout("fetch", Duration::from_millis(1), std::future::pending::<()>()).await?;
        Ok(())
    }
}

/// The flow `F` of [`TimesOut`], run under the composition `Guarded`,
/// where an [`ErrorHandler`] handles the flow's failure.
fn failing_node() {
    let mut flow = AsyncFlow::named("F");
    flow.start(TimesOut);
    let handler = ErrorHandler::new();
    let shared = SharedStore::new();
    let result = block_on(Composition::nested("Guarded").run(async {
        let result = flow.run(&shared).await;
        if let Err(error) = &result {
            handler.handle(error, Some("N"), Some("F"));
        }
        result
    }));
    assert!(result.is_err());
    assert_eq!(handler.stats().count(ErrorType::Timeout), 1);
}

fn error_type_of<'a>(span: &'a ReceivedSpan, event: &str) -> Option<&'a str> {
    let event = span.events.iter().find(|e| e.name == event)?;
    event.attributes.get("error_type").and_then(AttrValue::as_str)
}

#[test]
fn async_error_recovery_switches_async_error_events_and_error_type() {
    let (on, off) = both(TracingConfigBuilder::async_error_recovery, failing_node);

    // The engine reports exec's failure, handed back by the fallback, in
    // the fallback span.
    let fallback = span_named(&on, "N.fallback");
    assert_eq!(error_type_of(fallback, "pocketflow.error"), Some("timeout"), "{:?}", event_names(fallback));
    assert_eq!(fallback.attr_str("error.type"), Some("timeout"), "from the engine's pocketflow.error");
    let guarded = span_named(&on, "Guarded");
    assert_eq!(error_type_of(guarded, "pocketflow.async_error"), Some("timeout"), "{:?}", event_names(guarded));
    assert_eq!(guarded.attr_str("error.type"), Some("timeout"), "from the handler's pocketflow.async_error");
    for name in ["N.exec", "N", "F"] {
        let span = span_named(&on, name);
        assert_eq!(span.status.code, StatusCode::Error, "{name} failed");
        assert!(span.attr("error.type").is_none(), "only where a failure was reported, not on {name}");
    }
    assert!(event_names(span_named(&on, "N.exec")).contains(&"pocketflow.timeout"));

    let fallback = span_named(&off, "N.fallback");
    assert_eq!(error_type_of(fallback, "pocketflow.error"), Some("timeout"), "the error itself is still reported");
    for span in all_spans(&off) {
        assert!(span.attr("error.type").is_none(), "{}", span.name);
        assert!(span.events.iter().all(|e| e.name != "pocketflow.async_error"), "{}", span.name);
    }
    assert_eq!(span_named(&off, "Guarded").status.code, StatusCode::Error, "its status does not depend on the switch");
}

/// Sleeps in `exec` for longer than the tests' slow threshold.
struct Sleeps(&'static str);

/// Longer than the 20 ms slow threshold of the performance test.
const OVER_THRESHOLD: Duration = Duration::from_millis(30);

impl Node for Sleeps {
    type Prep = ();
    type Exec = ();

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.0)
    }

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        std::thread::sleep(OVER_THRESHOLD);
        Ok(())
    }
}

/// A batch node of one item that sleeps past the threshold.
struct SleepyBatch;

impl BatchNode for SleepyBatch {
    type Item = u32;
    type Output = ();

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("Batch")
    }

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u32>, BoxError> {
        Ok(vec![0])
    }

    fn exec(&self, _: &Ctx<'_>, _: &u32) -> Result<(), BoxError> {
        std::thread::sleep(OVER_THRESHOLD);
        Ok(())
    }
}

/// A flow `F`: `Slow >> Quick >> Batch` (one item); then a composition
/// `Comp` that waits past the threshold without running a flow.
fn timed_nodes() {
    let mut flow = Flow::named("F");
    let slow = flow.start(Sleeps("Slow"));
    let quick = flow.add(Step("Quick"));
    let batch = flow.add(SleepyBatch);
    flow.link(slow >> quick >> batch);
    flow.run(&SharedStore::new()).unwrap();
    block_on(Composition::nested("Comp").run(async {
        tokio::time::sleep(OVER_THRESHOLD).await;
        Ok::<_, pocketflow::FlowError>(())
    }))
    .unwrap();
}

#[test]
fn performance_monitoring_switches_durations_and_slow_node_marks() {
    let threshold_ms = 20.0;
    let threshold =
        |b: TracingConfigBuilder, on: bool| b.performance_monitoring(on).slow_node_threshold(Duration::from_millis(20));
    let (on, off) = both(threshold, timed_nodes);

    for name in ["F", "Slow", "Quick", "Batch", "Batch.item", "Comp"] {
        let span = span_named(&on, name);
        let Some(AttrValue::Double(ms)) = span.attr("pocketflow.duration_ms") else {
            panic!("{name} has no duration: {span:#?}");
        };
        let measured = span.duration().as_secs_f64() * 1000.0;
        assert!((ms - measured).abs() < 0.01, "{name}: {ms} ms vs {measured} ms");
    }
    let phases =
        all_spans(&on).filter(|s| s.attr_str("pocketflow.span").is_some_and(|p| ["prep", "exec", "post"].contains(&p)));
    let phases: Vec<_> = phases.collect();
    assert_eq!(phases.len(), 9, "Slow's, Quick's and Batch's");
    for span in phases {
        assert!(span.attr("pocketflow.duration_ms").is_none(), "phases are not timed");
    }
    for name in ["F", "Slow", "Batch"] {
        let span = span_named(&on, name);
        assert_eq!(span.attr("pocketflow.slow"), Some(&AttrValue::Bool(true)), "{name}");
        let event = span.events.iter().find(|e| e.name == "pocketflow.slow_node").unwrap();
        assert!(matches!(event.attributes.get("duration_ms"), Some(AttrValue::Double(ms)) if *ms >= threshold_ms));
        assert_eq!(event.attributes.get("threshold_ms"), Some(&AttrValue::Double(threshold_ms)));
    }
    // Whether `Quick` took 20 ms depends on the machine; that it is marked
    // exactly when it did does not.
    for name in ["F", "Slow", "Quick", "Batch"] {
        let span = span_named(&on, name);
        let over = span.duration() >= Duration::from_millis(20);
        assert_eq!(span.attr("pocketflow.slow").is_some(), over, "{name} lasted {:?}", span.duration());
        assert_eq!(span.events.iter().any(|e| e.name == "pocketflow.slow_node"), over, "{name}");
    }
    for name in ["Batch.item", "Comp"] {
        let span = span_named(&on, name);
        assert!(span.duration() >= Duration::from_millis(20), "{name} lasts past the threshold");
        assert!(span.attr("pocketflow.slow").is_none(), "only flows and nodes are marked slow: {name}");
        assert!(span.events.iter().all(|e| e.name != "pocketflow.slow_node"), "{name}");
    }

    for span in all_spans(&off) {
        assert!(span.attr("pocketflow.duration_ms").is_none(), "{}", span.name);
        assert!(span.attr("pocketflow.slow").is_none(), "{}", span.name);
        assert!(span.events.iter().all(|e| e.name != "pocketflow.slow_node"), "{}", span.name);
    }
}

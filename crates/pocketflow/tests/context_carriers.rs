//! `RunContext::scope_future` and `RunContext::in_scope`, the stand-ins for
//! Python's `async with context:`, carry the run context, the span and the
//! subscriber into work the engine does not run itself: a span opened
//! there lands under the hook that handed the work off, with the context
//! right, even on another thread and with a thread-scoped subscriber.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Ctx, Flow, Node, RunContext, SharedStore};
use pocketflow_test_support::{Capture, Captured};
use tracing_subscriber::layer::SubscriberExt;

/// What the carried work saw: its run context, and the thread it ran on.
fn seen_here() -> String {
    let context = pocketflow::current().expect("the carried context");
    let _carried = tracing::info_span!("carried_work").entered();
    tracing::info!(name: "carried.event", "inside the carried work");
    format!("{} node={:?} flow={:?}", context.path(), context.node_name(), context.flow_name())
}

/// How an async node hands its work off.
#[derive(Clone, Copy)]
enum HandOff {
    TokioSpawn,
    SpawnBlocking,
}

struct AsyncHandOff(HandOff);

impl AsyncNode for AsyncHandOff {
    type Prep = ();
    type Exec = (String, bool);
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "HandOff".into()
    }
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(String, bool), BoxError> {
        let context = pocketflow::current().ok_or("no context")?;
        let here = std::thread::current().id();
        let work = match self.0 {
            HandOff::TokioSpawn => tokio::spawn(context.scope_future(async move {
                tokio::task::yield_now().await; // still carried after an await
                (seen_here(), std::thread::current().id() != here)
            })),
            HandOff::SpawnBlocking => tokio::task::spawn_blocking(move || {
                context.in_scope(|| (seen_here(), std::thread::current().id() != here))
            }),
        };
        Ok(work.await?)
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, (): (), seen: (String, bool)) -> Result<Action, BoxError> {
        shared.set("seen", seen)?;
        Ok(Action::NONE)
    }
}

struct ThreadHandOff;

impl Node for ThreadHandOff {
    type Prep = ();
    type Exec = (String, bool);
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "HandOff".into()
    }
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(String, bool), BoxError> {
        let context = pocketflow::current().ok_or("no context")?;
        let here = std::thread::current().id();
        let thread =
            std::thread::spawn(move || context.in_scope(|| (seen_here(), std::thread::current().id() != here)));
        thread.join().map_err(|_| "the thread panicked".into())
    }
    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, (): (), seen: (String, bool)) -> Result<Action, BoxError> {
        shared.set("seen", seen)?;
        Ok(Action::NONE)
    }
}

/// The carried span sits under the `exec` span of the node that handed the
/// work off, which sits under that node's span; the event is inside it.
fn assert_carried_under_exec(captured: &Captured) {
    let (carried, span) = captured.spans_named("carried_work").next().expect("the carried span was recorded");
    let exec = span.parent.expect("the carried span has a parent");
    assert_eq!(captured.spans[exec].name, "exec");
    let node = captured.spans[exec].parent.expect("exec has a parent");
    assert_eq!(captured.spans[node].name, "node");
    assert_eq!(captured.spans[node].fields["name"], "HandOff");
    let event = captured.events_named("carried.event").next().expect("the carried event was recorded");
    assert_eq!(event.span, Some(carried));
}

fn run_async_handoff(hand_off: HandOff) -> (Captured, (String, bool)) {
    let capture = Capture::new();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut flow = AsyncFlow::named("Main");
    flow.start(AsyncHandOff(hand_off));
    let shared = SharedStore::new();
    runtime.block_on(flow.run(&shared)).unwrap();
    (capture.snapshot(), shared.get("seen").unwrap())
}

#[test]
fn a_span_opened_in_a_tokio_task_running_a_scoped_future_is_under_the_nodes_span() {
    let (captured, (seen, elsewhere)) = run_async_handoff(HandOff::TokioSpawn);
    assert_eq!(seen, "Main/HandOff node=Some(\"HandOff\") flow=Some(\"Main\")");
    // The subscriber is set for the test's thread only; the task ran on a
    // worker (block_on runs the flow on this thread).
    assert!(elsewhere, "the task ran on a runtime worker");
    assert_carried_under_exec(&captured);
}

#[test]
fn a_span_opened_in_scope_in_spawn_blocking_is_under_the_nodes_span() {
    let (captured, (seen, elsewhere)) = run_async_handoff(HandOff::SpawnBlocking);
    assert_eq!(seen, "Main/HandOff node=Some(\"HandOff\") flow=Some(\"Main\")");
    assert!(elsewhere);
    assert_carried_under_exec(&captured);
}

#[test]
fn a_span_opened_in_scope_on_a_thread_of_its_own_is_under_the_nodes_span() {
    let capture = Capture::new();
    let shared = SharedStore::new();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(capture.clone()), || {
        let mut flow = Flow::named("Main");
        flow.start(ThreadHandOff);
        flow.run(&shared).unwrap();
    });
    let (seen, elsewhere): (String, bool) = shared.get("seen").unwrap();
    assert_eq!(seen, "Main/HandOff node=Some(\"HandOff\") flow=Some(\"Main\")");
    assert!(elsewhere);
    assert_carried_under_exec(&capture.snapshot());
}

/// Keeps the context its `exec` saw.
struct Keep(Arc<Mutex<Option<RunContext>>>);

impl Node for Keep {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        *self.0.lock().unwrap() = pocketflow::current();
        Ok(())
    }
}

#[test]
fn in_scope_leaves_the_threads_own_context_and_subscriber_as_they_were() {
    let capture = Capture::new();
    let kept = Arc::new(Mutex::new(None));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(capture.clone()), || {
        let mut flow = Flow::named("Main");
        flow.start(Keep(Arc::clone(&kept)));
        flow.run(&SharedStore::new()).unwrap();
    });
    let context = kept.lock().unwrap().take().expect("exec saw a context");
    // Whether the thread's current subscriber is the test's (a registry
    // with the capture layer) or none at all. (`Span::is_disabled` cannot
    // tell: a callsite other tests made always-interesting creates spans
    // even with no subscriber.)
    let subscriber = || {
        tracing::dispatcher::get_default(|d| {
            if d.downcast_ref::<tracing_subscriber::Registry>().is_some() {
                "the test's"
            } else if d.is::<tracing::subscriber::NoSubscriber>() {
                "none"
            } else {
                "another"
            }
        })
    };
    let (inside, after) = std::thread::spawn(move || {
        let inside = context.in_scope(|| {
            let _span = tracing::info_span!("inside").entered();
            (pocketflow::current().map(|c| c.path()), subscriber())
        });
        let after = (pocketflow::current().map(|c| c.path()), subscriber());
        (inside, after)
    })
    .join()
    .unwrap();
    assert_eq!(inside, (Some("Main/Keep".to_owned()), "the test's"), "the run's context and subscriber inside");
    assert_eq!(after, (None, "none"), "neither is left behind on the thread");
    let captured = capture.snapshot();
    let (_, span) = captured.spans_named("inside").next().expect("recorded by the carried subscriber");
    assert_eq!(span.parent.map(|p| captured.spans[p].name), Some("exec"));
}

//! The run context (`pocketflow::current`), the spawn helper, per-run
//! statistics, run options on spans, and cancellation closing every span.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pocketflow::{
    Action, AsyncBatchFlow, AsyncFlow, AsyncNode, AsyncParallelBatchNode, BoxError, Ctx, Flow, Node, NodeState, Params,
    RunOptions, Scope, SharedStore, TraceFlow, TraceParent,
};
use pocketflow_test_support::Capture;
use tracing_subscriber::layer::SubscriberExt;

/// Records what `current()` says before and after awaits, in its own run.
struct Probe {
    naps: u32,
}

impl AsyncNode for Probe {
    type Prep = String;
    type Exec = Vec<String>;
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get::<String>("marker")?)
    }
    async fn exec(&self, _: &Ctx<'_>, marker: &String) -> Result<Vec<String>, BoxError> {
        let mut seen = Vec::new();
        for _ in 0..self.naps {
            let context = pocketflow::current().ok_or("no context")?;
            seen.push(format!("{}|{}|{}", context.options().session().map_or("", |s| s), context.path(), marker));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(seen)
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, seen: Vec<String>) -> Result<Action, BoxError> {
        shared.set("seen", seen)?;
        Ok(Action::NONE)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_concurrent_run_sees_only_its_own_context_across_awaits() {
    let mut runs = Vec::new();
    for i in 0..64 {
        runs.push(tokio::spawn(async move {
            let mut flow = AsyncFlow::named(format!("Flow{i}"));
            flow.start(Probe { naps: 5 });
            let shared = SharedStore::from_iter([("marker", format!("m{i}"))]);
            flow.run_with(&shared, RunOptions::new().session_id(format!("s{i}"))).await.unwrap();
            (i, shared.get::<Vec<String>>("seen").unwrap())
        }));
    }
    for run in runs {
        let (i, seen) = run.await.unwrap();
        assert_eq!(seen.len(), 5);
        for entry in seen {
            assert_eq!(entry, format!("s{i}|Flow{i}/Probe|m{i}"));
        }
    }
    assert!(pocketflow::current().is_none());
}

struct Spawner;

impl AsyncNode for Spawner {
    type Prep = ();
    type Exec = (String, u64, u64);
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(String, u64, u64), BoxError> {
        let here = pocketflow::current().ok_or("no context")?.run_id();
        let (path, run) = pocketflow::spawn("fetch", async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let _inner = tracing::info_span!("fetch_page").entered();
            let context = pocketflow::current().expect("context in the task");
            (context.path(), context.run_id())
        })
        .await?;
        Ok((path, run, here))
    }
    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: (),
        out: (String, u64, u64),
    ) -> Result<Action, BoxError> {
        shared.set("out", out)?;
        Ok(Action::NONE)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_tasks_carry_the_context_and_nest_their_spans_under_the_exec() {
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let dispatch = tracing::dispatcher::get_default(Clone::clone);

    let mut flow = AsyncFlow::named("Main");
    flow.start(Spawner);
    let shared = SharedStore::new();
    // The spawned task may run on another worker: give it the same subscriber.
    let run = async move {
        flow.run(&shared).await.unwrap();
        shared
    };
    let shared = tokio::spawn(tracing::instrument::WithSubscriber::with_subscriber(run, dispatch)).await.unwrap();
    let (path, task_run, node_run) = shared.get::<(String, u64, u64)>("out").unwrap();
    assert_eq!(path, "Main/Spawner");
    assert_eq!(task_run, node_run);

    let captured = capture.snapshot();
    let (page, _) = captured.spans_named("fetch_page").next().expect("the task's span");
    assert_eq!(captured.ancestry(page), ["exec", "node", "flow"]);
    let spawned: Vec<_> = captured.events_named("pocketflow.context").collect();
    assert_eq!(spawned.len(), 1);
    assert_eq!(spawned[0].fields.get("action").map(String::as_str), Some("spawned"));
    assert_eq!(spawned[0].fields.get("task").map(String::as_str), Some("fetch"));
}

#[tokio::test(start_paused = true)]
async fn dropping_a_task_handle_aborts_the_task_and_detach_lets_it_run() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let aborted = {
        let tx = tx.clone();
        pocketflow::spawn("aborted", async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tx.send("aborted ran").ok();
        })
    };
    drop(aborted);
    pocketflow::spawn("detached", async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send("detached ran").ok();
    })
    .detach();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(rx.recv().await, Some("detached ran"));
    assert!(rx.try_recv().is_err());
}

#[test]
fn spawn_outside_a_runtime_is_an_error_not_a_panic() {
    let task = pocketflow::spawn("orphan", async { 1 });
    // Polled once, by hand: there is no runtime to drive it.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let std::task::Poll::Ready(Err(error)) = std::pin::pin!(task).poll(&mut cx) else {
        panic!("a task spawned outside a runtime resolves at once to an error");
    };
    assert!(error.to_string().contains("outside a tokio runtime"), "{error}");
}

#[test]
fn a_task_that_panics_is_a_classified_error() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let error = runtime.block_on(async { pocketflow::spawn("boom", async { panic!("kaboom") }).await }).unwrap_err();
    assert_eq!(error.error_type(), pocketflow::ErrorType::Panic);
    assert!(error.to_string().contains("kaboom"), "{error}");
}

struct Sleeper(u64);

impl AsyncNode for Sleeper {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_millis(self.0)).await;
        tokio::time::sleep(Duration::from_millis(self.0)).await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn the_report_has_running_and_suspended_time_and_state_counts_per_node() {
    let mut flow = AsyncFlow::named("Timed");
    let a = flow.start(Sleeper(100));
    let b = flow.add_named("Slow", Sleeper(250));
    flow.connect(a, b);
    let report = flow.run_report(&SharedStore::new()).await.unwrap();

    let sleeper = report.stats.at("Timed/Sleeper").expect("stats of Sleeper");
    assert_eq!(sleeper.scope, Scope::Node);
    assert_eq!(sleeper.name, "Sleeper");
    assert_eq!(sleeper.runs, 1);
    assert_eq!(sleeper.count(NodeState::Completed), 1);
    assert_eq!(sleeper.suspensions, 2);
    assert_eq!(sleeper.polls, 3);
    assert_eq!(sleeper.suspended.total, Duration::from_millis(200));
    assert_eq!(sleeper.count(NodeState::Suspended), 2);
    assert_eq!(sleeper.count(NodeState::Resuming), 2);
    assert_eq!(sleeper.count(NodeState::Running), 3);
    assert_eq!(sleeper.count(NodeState::Completing), 1);
    assert_eq!(sleeper.failures(), 0);

    let slow = report.stats.named("Slow").next().expect("stats of Slow");
    assert_eq!(slow.suspended.total, Duration::from_millis(500));
    let flow_stats = report.stats.named("Timed").next().expect("stats of the flow");
    assert_eq!(flow_stats.scope, Scope::Flow);
    assert_eq!(flow_stats.suspended.total, Duration::from_millis(700));
    assert_eq!(report.stats.count(NodeState::Completed), 3);
    // Outside the run, there is no context left behind.
    assert!(pocketflow::current().is_none());
}

/// Waits 100, 300, then 200 ms, one wait per run, and loops until it ran
/// three times.
struct Waits {
    runs: AtomicUsize,
}

impl AsyncNode for Waits {
    type Prep = usize;
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<usize, BoxError> {
        Ok(self.runs.fetch_add(1, Ordering::Relaxed))
    }
    async fn exec(&self, _: &Ctx<'_>, run: &usize) -> Result<(), BoxError> {
        let waits = [100, 300, 200];
        tokio::time::sleep(Duration::from_millis(waits[*run % waits.len()])).await;
        Ok(())
    }
    async fn post(&self, _: &Ctx<'_>, _: &SharedStore, run: usize, _: ()) -> Result<Action, BoxError> {
        Ok(if run < 2 { "again".into() } else { Action::NONE })
    }
}

#[tokio::test(start_paused = true)]
async fn every_run_of_a_looping_node_adds_up_in_one_entry_with_its_shortest_and_longest() {
    let mut flow = AsyncFlow::named("Loop");
    let waits = flow.start(Waits { runs: AtomicUsize::new(0) });
    flow.connect_on(waits, "again", waits);
    let report = flow.run_report(&SharedStore::new()).await.unwrap();

    assert_eq!(report.stats.entries.len(), 2, "{:#?}", report.stats);
    let node = report.stats.at("Loop/Waits").expect("one entry for the node");
    assert_eq!((node.runs, node.polls, node.suspensions), (3, 6, 3));
    assert_eq!(node.suspended.total, Duration::from_millis(600));
    assert_eq!(node.suspended.min, Duration::from_millis(100));
    assert_eq!(node.suspended.max, Duration::from_millis(300));
    assert_eq!(node.suspended.mean(), Duration::from_millis(200));
    assert_eq!(node.count(NodeState::Created), 3);
    assert_eq!(node.count(NodeState::Resuming), 3);
    assert_eq!((node.count(NodeState::Completed), node.failures()), (3, 0));
    let flow_stats = report.stats.at("Loop").expect("the flow's entry");
    assert_eq!((flow_stats.scope, flow_stats.runs), (Scope::Flow, 1));
}

struct Greet;

impl AsyncNode for Greet {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        tokio::task::yield_now().await;
        Ok(())
    }
}

struct Squares;

impl AsyncParallelBatchNode for Squares {
    type Item = u64;
    type Output = u64;
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok((1..=4).collect())
    }
    async fn exec(&self, _: &Ctx<'_>, n: &u64) -> Result<u64, BoxError> {
        tokio::task::yield_now().await;
        Ok(n * n)
    }
}

#[tokio::test(start_paused = true)]
async fn the_items_of_a_batch_share_one_entry_with_their_index_as_a_star() {
    let mut users = AsyncFlow::named("PerUser");
    let greet = users.start(Greet);
    let squares = users.add(Squares);
    users.connect(greet, squares);
    let per_user = AsyncBatchFlow::new(users, |_: &Ctx<'_>, _: &SharedStore| -> Result<Vec<Params>, BoxError> {
        Ok((0..3).map(|i| Params::new().with("user", i)).collect())
    });
    let mut main = AsyncFlow::named("Main");
    main.start(per_user);
    let report = main.run_report(&SharedStore::new()).await.unwrap();

    let entries: Vec<_> = report.stats.entries.iter().map(|s| (s.scope, s.path.as_str(), s.runs)).collect();
    for expected in [
        (Scope::Flow, "Main", 1),
        (Scope::Flow, "Main/PerUser", 1),
        (Scope::Item, "Main/PerUser[*]", 3),
        (Scope::Node, "Main/PerUser[*]/Greet", 3),
        (Scope::Node, "Main/PerUser[*]/Squares", 3),
        (Scope::Item, "Main/PerUser[*]/Squares[*]", 12),
    ] {
        assert!(entries.contains(&expected), "{expected:?} missing from {entries:?}");
    }
    assert_eq!(entries.len(), 6, "{entries:?}");
    let items = report.stats.at("Main/PerUser[*]/Squares[*]").unwrap();
    assert_eq!(items.name, "Squares");
    assert_eq!(items.count(NodeState::Completed), 12);
    assert_eq!(report.stats.at("Main/PerUser[*]").unwrap().name, "PerUser");
}

#[tokio::test(start_paused = true)]
async fn lifecycle_stats_are_recorded_on_the_spans() {
    let capture = Capture::new();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let mut flow = AsyncFlow::named("Timed");
    flow.start(Sleeper(40));
    flow.run(&SharedStore::new()).await.unwrap();

    let captured = capture.snapshot();
    let (_, node) = captured.spans_named("node").next().unwrap();
    assert_eq!(node.fields.get("polls").map(String::as_str), Some("3"));
    assert_eq!(node.fields.get("suspensions").map(String::as_str), Some("2"));
    assert_eq!(node.fields.get("suspended_ms").map(String::as_str), Some("80.0"));
    assert!(node.fields.contains_key("running_ms"));
}

struct Quick;

impl Node for Quick {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        let context = pocketflow::current().ok_or("no context in a sync node")?;
        assert_eq!(context.path(), "Outer/Inner/Quick");
        assert_eq!(context.flow_name(), Some("Inner"));
        Ok(())
    }
}

#[test]
fn run_options_are_on_the_outermost_flow_span_from_its_creation() {
    let capture = Capture::new();
    let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(capture.clone()), || {
        let mut inner = Flow::named("Inner").with_run_options(RunOptions::new().tag("inner-tag"));
        inner.start(Quick);
        let mut outer = Flow::named("Outer").with_run_options(RunOptions::new().user_id("ada").tag("flow"));
        outer.start(inner);
        let report = outer
            .run_with(&SharedStore::new(), RunOptions::new().session_id("chat-1").tag("run").parent(parent))
            .unwrap();
        assert_eq!(report.stats.named("Quick").count(), 1);
    });
    let captured = capture.snapshot();
    let flows: Vec<_> = captured.spans_named("flow").map(|(_, s)| s).collect();
    let outer = flows.iter().find(|s| s.fields.get("name").map(String::as_str) == Some("Outer")).unwrap();
    assert_eq!(outer.fields.get("session_id").map(String::as_str), Some("chat-1"));
    assert_eq!(outer.fields.get("user_id").map(String::as_str), Some("ada"));
    assert_eq!(outer.fields.get("tags").map(String::as_str), Some(r#"["flow","run"]"#));
    assert_eq!(outer.fields.get("traceparent").map(|s| s.as_str()), Some(parent.to_string().as_str()));
    // How many top-level runs were in flight is the process's figure (other
    // tests of this binary run flows at the same time): present, at least 1.
    // Exact counts: `concurrent_runs_counts_top_level_runs.rs`, alone in its process.
    let concurrent: usize = outer.fields.get("concurrent").expect("the outermost flow records it").parse().unwrap();
    assert!(concurrent >= 1, "{concurrent}");
    let inner = flows.iter().find(|s| s.fields.get("name").map(String::as_str) == Some("Inner")).unwrap();
    assert_eq!(inner.fields.get("tags").map(String::as_str), Some(r#"["inner-tag"]"#));
    assert!(!inner.fields.contains_key("session_id"));
    assert!(!inner.fields.contains_key("concurrent"));
}

struct Forever;

impl AsyncParallelBatchNode for Forever {
    type Item = u32;
    type Output = u32;
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u32>, BoxError> {
        Ok(vec![1, 2, 3])
    }
    async fn exec(&self, _: &Ctx<'_>, item: &u32) -> Result<u32, BoxError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(*item)
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_a_flow_mid_run_ends_every_span_and_marks_it_cancelled() {
    let capture = Capture::new();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let mut flow = AsyncFlow::named("Doomed");
    flow.start(Forever);
    let shared = Arc::new(SharedStore::new());
    let run = flow.run_report(&shared);
    assert!(tokio::time::timeout(Duration::from_millis(10), run).await.is_err());

    let captured = capture.snapshot();
    assert!(
        captured.spans.iter().all(|s| s.closed),
        "unclosed: {:?}",
        captured.spans.iter().filter(|s| !s.closed).collect::<Vec<_>>()
    );
    for name in ["flow", "node", "item", "exec"] {
        for (index, span) in captured.spans_named(name) {
            assert_eq!(span.fields.get("error").map(String::as_str), Some("cancelled"), "{name}");
            if name != "exec" {
                assert_eq!(captured.states_in(index).last().copied(), Some("cancelled"), "{name}");
            }
        }
    }
    assert_eq!(captured.spans_named("exec").count(), 3);
    assert_eq!(captured.spans_named("flow").count(), 1);
    assert_eq!(captured.spans_named("node").count(), 1);
    assert_eq!(captured.spans_named("item").count(), 3);
}

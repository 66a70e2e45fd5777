//! The engine's async features through the tracing layer to a real OTLP
//! receiver: run options, nested traced flows, remote parents carried in a
//! `traceparent` header, compositions with links, timeouts, and lifecycle
//! statistics, all from real flows (the layer's own tests use hand-made
//! spans).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::{block_on, export};
use pocketflow::{
    Action, AsyncFlow, AsyncNode, BoxError, Composition, Ctx, RunOptions, SharedStore, TraceFlow, TraceParent,
    trace_flow,
};
use pocketflow_test_support::otlp::{ReceivedSpan, ReceivedTrace};

fn span<'a>(trace: &'a ReceivedTrace, name: &str) -> &'a ReceivedSpan {
    trace.spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span {name}:\n{}", trace.tree()))
}

/// Waits, then writes `done` under its name.
struct Step(&'static str, u64);

impl AsyncNode for Step {
    type Prep = ();
    type Exec = ();
    fn name(&self) -> std::borrow::Cow<'static, str> {
        self.0.into()
    }
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_millis(self.1)).await;
        Ok(())
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        shared.set(self.0, "done")?;
        Ok(Action::NONE)
    }
}

#[trace_flow(flow_name = "AnalysisFlow", tags = ["analysis"], metadata(depth = 2))]
fn analysis_flow() -> AsyncFlow {
    let mut flow = AsyncFlow::new();
    flow.start(Step("Analyze", 5));
    flow
}

/// Runs the decorated analysis flow from inside its `exec`, as the guide's
/// `MainFlow.run_async` does.
struct RunsAnalysis;

impl AsyncNode for RunsAnalysis {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        analysis_flow().run(&SharedStore::new()).await?;
        Ok(())
    }
}

#[test]
fn a_traced_flow_run_inside_another_flows_node_is_its_child_not_a_new_trace() {
    let ((), traces) = export(
        |b| b,
        || {
            block_on(async {
                let mut main = AsyncFlow::named("MainFlow");
                main.start(RunsAnalysis);
                main.run_with(&SharedStore::new(), RunOptions::new().session_id("chat-7").user_id("ada"))
                    .await
                    .unwrap();
            });
        },
    );
    assert_eq!(traces.len(), 1, "one trace");
    let trace = &traces[0];
    assert_eq!(trace.roots()[0].name, "MainFlow", "{}", trace.tree());
    let analysis = span(trace, "AnalysisFlow");
    assert_eq!(
        trace.path(analysis),
        ["MainFlow", "RunsAnalysis", "RunsAnalysis.exec", "AnalysisFlow"],
        "{}",
        trace.tree()
    );
    // The root's run options are the trace's, on every span; the nested
    // flow's own options are its observation metadata.
    for span in &trace.spans {
        assert_eq!(span.attr_str("langfuse.session.id"), Some("chat-7"), "{}", span.name);
        assert_eq!(span.attr_str("langfuse.user.id"), Some("ada"), "{}", span.name);
    }
    assert_eq!(analysis.attr_str("langfuse.observation.metadata.tags"), Some(r#"["analysis"]"#), "{analysis:#?}");
    assert_eq!(analysis.attr("langfuse.observation.metadata.depth").and_then(|v| v.as_i64()), Some(2));
    assert!(trace.spans.iter().all(|s| s.attr("langfuse.trace.tags").is_none()), "the nested flow's tags stay its own");
    // Other tests' runs may be in flight at the same time.
    assert!(trace.roots()[0].attr("pocketflow.concurrent_runs").and_then(|v| v.as_i64()).unwrap() >= 1);
}

/// Sends its run's context out as a `traceparent` header, as an HTTP client
/// would.
struct CallsOut {
    headers: &'static Mutex<Vec<(String, String)>>,
}

impl AsyncNode for CallsOut {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        tokio::task::yield_now().await;
        pocketflow_tracing::inject(&mut *self.headers.lock().unwrap());
        Ok(())
    }
}

#[test]
fn a_flow_started_from_a_traceparent_header_continues_the_callers_trace() {
    static HEADERS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let ((), traces) = export(
        |b| b,
        || {
            block_on(async {
                let mut client = AsyncFlow::named("Client");
                client.start(CallsOut { headers: &HEADERS });
                client.run(&SharedStore::new()).await.unwrap();

                // The "server" reads the header and runs its flow under it.
                let headers = HEADERS.lock().unwrap().clone();
                let parent = TraceParent::extract(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .unwrap()
                    .expect("a traceparent header was injected");
                let mut server = AsyncFlow::named("Server");
                server.start(Step("Handle", 1));
                server.run_with(&SharedStore::new(), RunOptions::new().parent(parent)).await.unwrap();
            });
        },
    );
    assert_eq!(traces.len(), 1, "the server's run joined the client's trace");
    let trace = &traces[0];
    let exec = trace
        .spans
        .iter()
        .find(|s| s.attr_str("pocketflow.span") == Some("exec") && trace.path(s)[0] == "Client")
        .unwrap();
    let server = span(trace, "Server");
    assert_eq!(server.parent_span_id.as_deref(), Some(exec.span_id.as_str()), "{}", trace.tree());
    assert_eq!(trace.path(server), ["Client", "CallsOut", "CallsOut.exec", "Server"], "{}", trace.tree());
    let continued = server.events.iter().find(|e| e.name == "pocketflow.context").expect("a context event");
    assert_eq!(continued.attributes.get("action").and_then(|v| v.as_str()), Some("continued"));
}

#[test]
fn a_composition_of_real_flows_is_one_trace_linked_to_the_trace_that_triggered_it() {
    let trigger: TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap();
    let (results, traces) = export(
        |b| b,
        || {
            block_on(async {
                let mut a = AsyncFlow::named("A");
                a.start(Step("StepA", 10));
                let mut b = AsyncFlow::named("B").with_run_options(RunOptions::new().tag("b"));
                b.start(Step("StepB", 20));
                let (sa, sb) = (SharedStore::new(), SharedStore::new());
                Composition::parallel("Both")
                    .options(RunOptions::new().session_id("batch-1").link(trigger))
                    .run([a.run(&sa), b.run(&sb)])
                    .await
            })
        },
    );
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(traces.len(), 1);
    let trace = &traces[0];
    let root = trace.roots()[0];
    assert_eq!(root.name, "Both", "{}", trace.tree());
    assert_eq!(root.attr_str("pocketflow.composition.kind"), Some("parallel"));
    assert_eq!(root.links.len(), 1, "{root:#?}");
    assert_eq!(root.links[0].0, "0af7651916cd43dd8448eb211c80319c");
    for flow in ["A", "B"] {
        assert_eq!(trace.parent(span(trace, flow)).map(|p| p.name.as_str()), Some("Both"));
    }
    assert!(trace.spans.iter().all(|s| s.attr_str("langfuse.session.id") == Some("batch-1")));
    // Overlap on the paused clock: both flows ran at once.
    let (sa, sb) = (span(trace, "A"), span(trace, "B"));
    assert!(sa.start_unix_nano < sb.end_unix_nano && sb.start_unix_nano < sa.end_unix_nano);
}

/// Runs a slow flow under a deadline from inside its `exec`.
struct Deadline;

impl AsyncNode for Deadline {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        let mut slow = AsyncFlow::named("Slow");
        slow.start(Step("Crawl", 1_000));
        let shared = SharedStore::new();
        let outcome = pocketflow::with_timeout("crawl", Duration::from_millis(50), slow.run(&shared)).await;
        assert!(matches!(outcome, Err(pocketflow::FlowError::Timeout { .. })));
        Ok(())
    }
}

#[test]
fn a_timeout_is_an_event_where_it_fired_and_the_work_under_it_ends_cancelled() {
    let ((), traces) = export(
        |b| b,
        || {
            block_on(async {
                let mut flow = AsyncFlow::named("Guarded");
                flow.start(Deadline);
                flow.run(&SharedStore::new()).await.unwrap();
            });
        },
    );
    let trace = &traces[0];
    let exec = trace.spans.iter().find(|s| trace.path(s) == ["Guarded", "Deadline", "Deadline.exec"]).unwrap();
    let timeout = exec.events.iter().find(|e| e.name == "pocketflow.timeout").expect("timeout event");
    assert_eq!(timeout.attributes.get("after_ms").and_then(|v| v.as_i64()), Some(50));
    for name in ["Slow", "Crawl"] {
        assert_eq!(span(trace, name).status.message, "cancelled", "{}", trace.tree());
    }
    let crawl = span(trace, "Crawl");
    let lifecycle: Vec<&str> = crawl
        .events
        .iter()
        .filter(|e| e.name == "pocketflow.lifecycle")
        .filter_map(|e| e.attributes.get("state").and_then(|v| v.as_str()))
        .collect();
    assert_eq!(lifecycle.last(), Some(&"cancelled"), "{lifecycle:?}");
    // How the node spent its time is on its span.
    let guarded = span(trace, "Deadline");
    assert!(guarded.attr("pocketflow.lifecycle.suspensions").and_then(|v| v.as_i64()).unwrap() >= 1);
    assert!(guarded.attr("pocketflow.lifecycle.polls").and_then(|v| v.as_i64()).unwrap() >= 2);
}

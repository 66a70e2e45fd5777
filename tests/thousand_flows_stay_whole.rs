//! The stress test of issue 4: 1,000 flows whose nodes await timers and
//! spawn sub-tasks run at once on a multi-thread runtime, and half of them
//! are dropped mid-run. An in-process OTLP receiver must get every span, in
//! its own flow's trace, under the right parent; the dropped runs' open
//! spans end `cancelled`, and no span is left open.
//!
//! The layer is the global subscriber (the runtime's workers must see it),
//! so this test has its binary to itself.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pocketflow::{Action, AsyncFlow, AsyncNode, AsyncParallelBatchNode, BoxError, Ctx, SharedStore};
use pocketflow_test_support::Capture;
use pocketflow_test_support::otlp::OtlpReceiver;
use pocketflow_tracing::{ExporterKind, Protocol, TracingConfig};
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

const FLOWS: usize = 1_000;
const FETCH: Duration = Duration::from_millis(40);
const DOWNLOAD: Duration = Duration::from_millis(20);

/// Awaits a timer and a spawned sub-task that opens a span of its own.
/// The sub-task signals `waiting` once it waits; in a run that is to be
/// dropped, it waits forever, so the drop always lands mid-wait, however
/// slowly the scheduler runs (no race between a timeout and the work).
struct Fetch {
    waiting: Arc<tokio::sync::Notify>,
    dropped: bool,
}

impl AsyncNode for Fetch {
    type Prep = String;
    type Exec = String;
    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get::<String>("marker")?)
    }
    async fn exec(&self, _: &Ctx<'_>, marker: &String) -> Result<String, BoxError> {
        let task_marker = marker.clone();
        let (waiting, dropped) = (Arc::clone(&self.waiting), self.dropped);
        let fetched = pocketflow::spawn("download", async move {
            // The task knows its run from the context it was spawned with,
            // and is still waiting when a dropped run aborts it.
            let run = pocketflow::current().and_then(|c| c.flow_name().map(str::to_owned)).unwrap_or_default();
            async move {
                waiting.notify_one();
                if dropped {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(DOWNLOAD).await;
                format!("page of {task_marker}")
            }
            .instrument(tracing::info_span!("download", marker = %run))
            .await
        })
        .await?;
        tokio::time::sleep(FETCH).await;
        Ok(fetched)
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, page: String) -> Result<Action, BoxError> {
        shared.set("page", page)?;
        Ok(Action::NONE)
    }
}

/// Three items at once, each awaiting a timer.
struct Summarize;

impl AsyncParallelBatchNode for Summarize {
    type Item = u64;
    type Output = u64;
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok(vec![1, 2, 3])
    }
    async fn exec(&self, ctx: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
        tokio::time::sleep(Duration::from_millis(*item)).await;
        let marker = pocketflow::current().map(|c| c.flow_name().unwrap_or_default().to_owned()).unwrap_or_default();
        tracing::info_span!("summary", marker = %marker, index = ctx.item_index().unwrap_or_default()).in_scope(|| ());
        Ok(item * 2)
    }
}

/// Run `i`; odd runs are to be dropped mid-`Fetch`.
fn flow(i: usize, waiting: Arc<tokio::sync::Notify>) -> AsyncFlow {
    let mut flow = AsyncFlow::named(format!("run-{i}"));
    let fetch = flow.start(Fetch { waiting, dropped: i % 2 == 1 });
    let summarize = flow.add(Summarize);
    flow.connect(fetch, summarize);
    flow
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_flows_with_sub_tasks_half_dropped_export_whole_traces_and_leave_no_span_open() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let (layer, guard) = TracingConfig::builder()
        .exporters(vec![ExporterKind::Otlp])
        .protocol(Protocol::Grpc)
        .otlp_endpoint(receiver.endpoint())
        .max_queue_size(1 << 20)
        .max_export_batch_size(2048)
        .scheduled_delay(Duration::from_millis(50))
        .build()
        .unwrap()
        .layer()
        .unwrap();
    let capture = Capture::new();
    tracing_subscriber::registry().with(layer).with(capture.clone()).try_init().unwrap();

    let runs: Vec<_> = (0..FLOWS)
        .map(|i| {
            tokio::spawn(async move {
                let waiting = Arc::new(tokio::sync::Notify::new());
                let flow = flow(i, Arc::clone(&waiting));
                let shared = SharedStore::from_iter([("marker", format!("run-{i}"))]);
                let run = flow.run(&shared);
                if i % 2 == 1 {
                    // Dropped while `Fetch` awaits its sub-task, which waits.
                    tokio::select! {
                        biased;
                        () = waiting.notified() => {}
                        result = run => panic!("run-{i} cannot finish, yet it did: {result:?}"),
                    }
                } else {
                    run.await.unwrap();
                    assert_eq!(shared.get::<String>("page").unwrap(), format!("page of run-{i}"));
                }
            })
        })
        .collect();
    for run in runs {
        run.await.unwrap();
    }

    // Nothing is left open: every span of the flows and their tasks was
    // closed (the transport's own connection spans live on; they are not
    // the flows' and are never recorded).
    let captured = capture.snapshot();
    let ours = |s: &&pocketflow_test_support::CapturedSpan| s.target == "pocketflow" || s.target == module_path!();
    let open: Vec<_> = captured.spans.iter().filter(ours).filter(|s| !s.closed).map(|s| s.name).collect();
    assert!(open.is_empty(), "{} spans left open: {:?}", open.len(), &open[..open.len().min(10)]);

    let report = guard.shutdown();
    assert!(report.completed, "{report}");
    assert_eq!(report.stats.dropped, 0, "{report}");
    let exported = usize::try_from(report.stats.exported).unwrap();
    // Every span of the flows and their tasks was exported (the receiver's
    // own transport spans, which the capture also saw, are not recorded).
    assert_eq!(exported, captured.spans.iter().filter(ours).count(), "{report}");
    let spans = receiver.wait_for_spans(exported, Duration::from_secs(30));
    assert_eq!(spans.len(), exported);

    let traces = receiver.traces();
    assert_eq!(traces.len(), FLOWS, "one trace per flow");
    let mut seen = BTreeMap::new();
    for trace in &traces {
        let roots = trace.roots();
        assert_eq!(roots.len(), 1, "one root:\n{}", trace.tree());
        assert!(trace.orphans().is_empty(), "orphans:\n{}", trace.tree());
        let name = roots[0].name.clone();
        let i: usize = name.trim_start_matches("run-").parse().unwrap();
        assert!(seen.insert(i, ()).is_none(), "two traces for {name}");
        for span in &trace.spans {
            // User spans carry their run's marker: none strayed into another trace.
            if let Some(marker) = span.attr_str("marker") {
                assert_eq!(marker, name, "{} in the wrong trace:\n{}", span.name, trace.tree());
            }
        }
        // Every run's sub-task ran (a dropped run's was aborted mid-wait).
        let download = trace.spans.iter().find(|s| s.name == "download");
        let download = download.unwrap_or_else(|| panic!("the sub-task's span is missing:\n{}", trace.tree()));
        assert_eq!(trace.path(download), [name.as_str(), "Fetch", "Fetch.exec", "download"], "{}", trace.tree());
        let statuses: Vec<&str> = trace.spans.iter().map(|s| s.status.message.as_str()).collect();
        if i % 2 == 1 {
            // Dropped mid-`Fetch`: the root, `Fetch` and its `exec` end
            // cancelled; the rest (`prep`, the user's `download` span) ok.
            assert_eq!(roots[0].status.message, "cancelled", "{}", trace.tree());
            assert!(statuses.iter().all(|m| m.is_empty() || *m == "cancelled"), "{}", trace.tree());
            assert!(statuses.iter().filter(|m| **m == "cancelled").count() >= 3, "{}", trace.tree());
        } else {
            assert!(statuses.iter().all(|m| m.is_empty()), "{}", trace.tree());
            assert_eq!(trace.spans.iter().filter(|s| s.name == "summary").count(), 3, "{}", trace.tree());
        }
    }
}

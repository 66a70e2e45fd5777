//! `BatchProgress` follows every batch node and batch flow: a bar per batch
//! with the engine's `items` as its total, the batch's own `item` spans as
//! they close as its position, and the items that closed with an error as
//! its failures. The bars are kept on a hidden draw target here
//! (`BatchProgress::with_probe`), which reports each batch as it ended.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;
use std::time::Duration;

use pocketflow::{
    AsyncFlow, AsyncParallelBatchFlow, AsyncParallelBatchNode, BatchNode, BoxError, Ctx, Flow, Node, Params,
    SharedStore,
};
use pocketflow_tracing::{BatchProgress, BatchSummary, ExporterKind, TracingConfig};
use tracing_subscriber::layer::SubscriberExt;

/// `count` items; item `fail_at` fails every attempt (no fallback).
struct Classify {
    count: u64,
    fail_at: Option<u64>,
}

impl BatchNode for Classify {
    type Item = u64;
    type Output = u64;
    fn name(&self) -> Cow<'static, str> {
        "Classify".into()
    }
    fn max_retries(&self) -> usize {
        2
    }
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok((0..self.count).collect())
    }
    fn exec(&self, _: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
        if Some(*item) == self.fail_at {
            return Err(format!("item {item} is unreadable").into());
        }
        Ok(item + 1)
    }
}

/// Items whose first attempt fails and whose fallback recovers: no item fails.
struct Recovers(u64);

impl BatchNode for Recovers {
    type Item = u64;
    type Output = u64;
    fn name(&self) -> Cow<'static, str> {
        "Recovers".into()
    }
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok((0..self.0).collect())
    }
    fn exec(&self, _: &Ctx<'_>, _: &u64) -> Result<u64, BoxError> {
        Err("model down".into())
    }
    fn exec_fallback(&self, _: &Ctx<'_>, item: &u64, _: BoxError) -> Result<u64, BoxError> {
        Ok(*item)
    }
}

/// Summarizes `count` documents, three at a time.
struct Summarize(u64);

impl AsyncParallelBatchNode for Summarize {
    type Item = u64;
    type Output = u64;
    fn name(&self) -> Cow<'static, str> {
        "Summarize".into()
    }
    fn max_concurrency(&self) -> Option<usize> {
        Some(3)
    }
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok((0..self.0).collect())
    }
    async fn exec(&self, _: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
        tokio::task::yield_now().await;
        Ok(item * 2)
    }
}

struct Plain;

impl Node for Plain {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        Ok(())
    }
}

fn named<'a>(finished: &'a [BatchSummary], name: &str) -> Vec<&'a BatchSummary> {
    finished.iter().filter(|b| b.name == name).collect()
}

#[test]
fn a_batch_node_counts_done_and_failed_items() {
    let (progress, probe) = BatchProgress::with_probe(Duration::ZERO);
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(progress));
    let shared = SharedStore::new();

    let mut flow = Flow::named("Triage");
    let first = flow.start(Plain);
    let classify = flow.add(Classify { count: 5, fail_at: Some(3) });
    flow.link(first >> classify);
    assert!(flow.run(&shared).is_err(), "item 3 fails, and with it the batch");
    Recovers(2).run(&shared).unwrap();

    let finished = probe.finished();
    assert_eq!(finished.len(), 2, "one report per batch, none for the plain flow and node: {finished:?}");
    let classify = &finished[0];
    assert_eq!((classify.name.as_str(), classify.kind), ("Classify", "BatchNode"));
    // Items 0, 1, 2 succeed, 3 fails, 4 never starts.
    assert_eq!((classify.total, classify.done, classify.failed), (Some(5), 4, 1));
    let bar = classify.bar.as_ref().expect("shown: no delay in this test");
    assert_eq!((bar.prefix.as_str(), bar.position, bar.length), ("Classify", 4, Some(5)));
    assert_eq!(bar.message, " · 1 failed");

    // Failed attempts a fallback recovered are not failed items.
    let recovers = &finished[1];
    assert_eq!((recovers.total, recovers.done, recovers.failed), (Some(2), 2, 0));
    assert_eq!(recovers.bar.as_ref().map(|b| (b.position, b.message.as_str())), Some((2, "")));
}

#[tokio::test(flavor = "current_thread")]
async fn parallel_batches_in_a_parallel_batch_flow_each_count_their_own_items() {
    let (progress, probe) = BatchProgress::with_probe(Duration::ZERO);
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(progress));

    let mut inner = AsyncFlow::named("PerTopic");
    inner.start(Summarize(6));
    let flow = AsyncParallelBatchFlow::new(inner, |_: &Ctx<'_>, _: &SharedStore| {
        Ok((0..3).map(|topic| Params::new().with("topic", topic)).collect())
    });
    flow.run(&SharedStore::new()).await.unwrap();

    let finished = probe.finished();
    let summaries = named(&finished, "Summarize");
    assert_eq!(summaries.len(), 3, "one bar per parameter set's batch node: {finished:?}");
    for summary in summaries {
        assert_eq!(
            (summary.kind, summary.total, summary.done, summary.failed),
            ("AsyncParallelBatchNode", Some(6), 6, 0)
        );
        assert_eq!(summary.bar.as_ref().map(|b| (b.position, b.length)), Some((6, Some(6))));
    }
    // The batch flow counts its three parameter sets, not the 18 items of
    // the batch nodes nested inside them.
    let flows = named(&finished, "PerTopic");
    assert_eq!(flows.len(), 1, "{finished:?}");
    assert_eq!(
        (flows[0].kind, flows[0].total, flows[0].done, flows[0].failed),
        ("AsyncParallelBatchFlow", Some(3), 3, 0)
    );
    assert_eq!(finished.last().map(|b| b.name.as_str()), Some("PerTopic"), "the flow ends after its batches");
}

#[test]
fn short_batches_never_show_a_bar() {
    // A batch shows its bar once it has run this long: never, here.
    let (progress, probe) = BatchProgress::with_probe(Duration::from_secs(3600));
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(progress));
    Classify { count: 3, fail_at: None }.run(&SharedStore::new()).unwrap();

    let finished = probe.finished();
    assert_eq!(finished.len(), 1);
    assert_eq!((finished[0].total, finished[0].done, finished[0].failed), (Some(3), 3, 0), "counted all the same");
    assert_eq!(finished[0].bar, None, "but never drawn");
}

#[test]
fn the_progress_layer_composes_with_the_tracing_layer() {
    let (layer, guard) = TracingConfig::builder().exporters(vec![ExporterKind::None]).build().unwrap().layer().unwrap();
    let (progress, probe) = BatchProgress::with_probe(Duration::ZERO);
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer).with(progress));
    Classify { count: 2, fail_at: None }.run(&SharedStore::new()).unwrap();
    assert_eq!(probe.finished().iter().map(|b| (b.done, b.total)).collect::<Vec<_>>(), [(2, Some(2))]);
    drop(guard);
}

#[test]
fn the_config_decides_whether_init_adds_the_bars() {
    let on = TracingConfig::builder().exporters(vec![ExporterKind::None]).build().unwrap();
    assert!(on.progress(), "on by default");
    assert!(on.progress_layer().is_some());
    let off = TracingConfig::builder().progress(false).build().unwrap();
    assert!(!off.progress());
    assert!(off.progress_layer().is_none());
    let off = TracingConfig::builder().from_vars([("POCKETFLOW_PROGRESS", "false")]).unwrap();
    assert!(off.progress_layer().is_none());
}

/// A flow `name` whose one node fails or not.
fn one_node_flow(name: &'static str, fails: bool) -> Flow {
    let mut flow = Flow::named(name);
    if fails {
        flow.start(Classify { count: 1, fail_at: Some(0) });
    } else {
        flow.start(Plain);
    }
    flow
}

#[tokio::test(flavor = "current_thread")]
async fn flows_composed_in_parallel_or_as_a_batch_count_as_items() {
    let (progress, probe) = BatchProgress::with_probe(Duration::ZERO);
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(progress));
    let flows = [one_node_flow("A", false), one_node_flow("B", true), one_node_flow("C", false)];
    let stores = [SharedStore::new(), SharedStore::new(), SharedStore::new()];
    let results = pocketflow::Composition::parallel("Fanout")
        .run(flows.iter().zip(&stores).map(|(flow, shared)| async move { flow.run(shared) }))
        .await;
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    let good = &flows[0];
    pocketflow::Composition::batch("PerStore").run(&stores, |shared| async move { good.run(shared) }).await;
    pocketflow::Composition::nested("One").run(async { good.run(&stores[0]) }).await.unwrap();

    let finished = probe.finished();
    let fanout = named(&finished, "Fanout");
    assert_eq!(fanout.len(), 1, "{finished:?}");
    assert_eq!(
        (fanout[0].kind, fanout[0].total, fanout[0].done, fanout[0].failed),
        ("ParallelComposition", Some(3), 3, 1)
    );
    assert_eq!(fanout[0].bar.as_ref().map(|b| b.message.as_str()), Some(" · 1 failed"));
    let per_store = named(&finished, "PerStore");
    assert_eq!(
        per_store.iter().map(|b| (b.kind, b.total, b.done, b.failed)).collect::<Vec<_>>(),
        [("BatchComposition", Some(3), 3, 0)]
    );
    assert!(named(&finished, "One").is_empty(), "a nested composition runs one flow: no bar");
}

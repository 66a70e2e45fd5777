//! A batch's span records how many items it will run (`items`) as soon as
//! its `prep` returns: a batch node's items, a batch flow's parameter sets.
//! Other node and flow kinds declare the field and never record it; a batch
//! whose `prep` failed has no count.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pocketflow::{
    AsyncBatchFlow, AsyncBatchNode, AsyncFlow, AsyncParallelBatchFlow, AsyncParallelBatchNode, BatchFlow, BatchNode,
    BoxError, Ctx, Flow, Node, Params, SharedStore,
};
use pocketflow_test_support::{Capture, Captured};
use tracing_subscriber::layer::SubscriberExt;

/// `n` items, each doubled.
struct Doubler(u64);

impl BatchNode for Doubler {
    type Item = u64;
    type Output = u64;
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok((0..self.0).collect())
    }
    fn exec(&self, _: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
        Ok(item * 2)
    }
}

struct AsyncDoubler(u64);

impl AsyncBatchNode for AsyncDoubler {
    type Item = u64;
    type Output = u64;
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok((0..self.0).collect())
    }
    async fn exec(&self, _: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
        Ok(item * 2)
    }
}

struct ParallelDoubler(u64);

impl AsyncParallelBatchNode for ParallelDoubler {
    type Item = u64;
    type Output = u64;
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Ok((0..self.0).collect())
    }
    async fn exec(&self, _: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
        Ok(item * 2)
    }
}

/// A batch whose `prep` fails: there is no item list to count.
struct NoItems;

impl BatchNode for NoItems {
    type Item = u64;
    type Output = u64;
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u64>, BoxError> {
        Err("no items today".into())
    }
    fn exec(&self, _: &Ctx<'_>, item: &u64) -> Result<u64, BoxError> {
        Ok(*item)
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

fn param_sets(count: usize) -> impl Fn(&Ctx<'_>, &SharedStore) -> Result<Vec<Params>, BoxError> + Send + Sync {
    move |_, _| Ok((0..count).map(|i| Params::new().with("i", i)).collect())
}

/// The `items` of every `span` (`node` or `flow`) of kind `kind`, in the
/// order they were opened. Checks that the span declares the field.
fn items_of(captured: &Captured, span: &str, kind: &str) -> Vec<Option<String>> {
    captured
        .spans_named(span)
        .filter(|(_, s)| s.fields.get("kind").map(String::as_str) == Some(kind))
        .map(|(_, s)| {
            assert!(s.declared.contains(&"items"), "{span} spans declare `items`");
            s.fields.get("items").cloned()
        })
        .collect()
}

fn some(n: &str) -> Option<String> {
    Some(n.to_owned())
}

#[tokio::test(flavor = "current_thread")]
async fn batch_nodes_record_how_many_items_prep_returned() {
    let capture = Capture::new();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let shared = SharedStore::new();

    // Alone, and inside a sync flow with a plain node.
    Doubler(4).run(&shared).unwrap();
    let mut flow = Flow::named("Sync");
    let first = flow.start(Plain);
    let batch = flow.add(Doubler(2));
    flow.link(first >> batch);
    flow.run(&shared).unwrap();
    AsyncDoubler(3).run(&shared).await.unwrap();
    ParallelDoubler(5).run(&shared).await.unwrap();
    // An empty batch still says so.
    ParallelDoubler(0).run(&shared).await.unwrap();
    assert!(NoItems.run(&shared).is_err());

    let captured = capture.snapshot();
    assert_eq!(items_of(&captured, "node", "BatchNode"), [some("4"), some("2"), None]);
    assert_eq!(items_of(&captured, "node", "AsyncBatchNode"), [some("3")]);
    assert_eq!(items_of(&captured, "node", "AsyncParallelBatchNode"), [some("5"), some("0")]);
    assert_eq!(items_of(&captured, "node", "Node"), [None], "a plain node declares `items` and leaves it empty");
    assert_eq!(items_of(&captured, "flow", "Flow"), [None], "so does a plain flow");
}

#[tokio::test(flavor = "current_thread")]
async fn batch_flows_record_how_many_parameter_sets_prep_returned() {
    let capture = Capture::new();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
    let shared = SharedStore::new();

    let mut inner = Flow::named("Inner");
    inner.start(Plain);
    BatchFlow::new(inner, param_sets(3)).run(&shared).unwrap();

    let mut inner = AsyncFlow::named("AsyncInner");
    inner.start(AsyncDoubler(2));
    AsyncBatchFlow::new(inner, param_sets(2)).run(&shared).await.unwrap();

    let mut inner = AsyncFlow::named("ParallelInner");
    inner.start(ParallelDoubler(1));
    AsyncParallelBatchFlow::new(inner, param_sets(4)).run(&shared).await.unwrap();

    let captured = capture.snapshot();
    assert_eq!(items_of(&captured, "flow", "BatchFlow"), [some("3")]);
    assert_eq!(items_of(&captured, "flow", "AsyncBatchFlow"), [some("2")]);
    assert_eq!(items_of(&captured, "flow", "AsyncParallelBatchFlow"), [some("4")]);
    // The batch nodes inside count their own items, once per parameter set.
    assert_eq!(items_of(&captured, "node", "AsyncBatchNode"), [some("2"), some("2")]);
    assert_eq!(items_of(&captured, "node", "AsyncParallelBatchNode"), vec![some("1"); 4]);
    // Each parameter set is one `item` span directly under the batch flow.
    for (index, flow) in captured.spans_named("flow") {
        if let Some(items) = flow.fields.get("items") {
            let children = captured.spans_named("item").filter(|(_, item)| item.parent == Some(index)).count();
            assert_eq!(children.to_string(), *items, "item spans of {:?}", flow.fields.get("kind"));
        }
    }
}

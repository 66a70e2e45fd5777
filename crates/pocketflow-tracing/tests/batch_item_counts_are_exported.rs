//! A batch's item count (the engine's `items` field) is exported as the
//! integer attribute `pocketflow.batch.items`: on a batch node's span, the
//! number of items its `prep` returned; on a batch flow's span, the number
//! of parameter sets. Other spans have no such attribute.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::borrow::Cow;

use pocketflow::{BatchFlow, BatchNode, BoxError, Ctx, Flow, Params, SharedStore};
use pocketflow_test_support::otlp::AttrValue;

use common::{MarkerNode, export, span_named, store};

struct Classify;

impl BatchNode for Classify {
    type Item = u32;
    type Output = u32;
    fn name(&self) -> Cow<'static, str> {
        "Classify".into()
    }
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u32>, BoxError> {
        Ok(vec![1, 2, 3])
    }
    fn exec(&self, _: &Ctx<'_>, item: &u32) -> Result<u32, BoxError> {
        Ok(item * 2)
    }
}

#[test]
fn batch_nodes_and_batch_flows_export_their_item_count() {
    let ((), traces) = export(
        |b| b,
        || {
            let mut flow = Flow::named("Triage");
            flow.start(Classify);
            flow.run(&SharedStore::new()).unwrap();

            let mut inner = Flow::named("PerFile");
            inner.start(MarkerNode("Load"));
            let per_file = |_: &Ctx<'_>, _: &SharedStore| Ok((0..4).map(|i| Params::new().with("i", i)).collect());
            BatchFlow::new(inner, per_file).run(&store("m")).unwrap();
        },
    );
    assert_eq!(span_named(&traces, "Classify").attr("pocketflow.batch.items"), Some(&AttrValue::Int(3)));
    assert_eq!(span_named(&traces, "PerFile").attr("pocketflow.batch.items"), Some(&AttrValue::Int(4)));
    let others = traces.iter().flat_map(|t| &t.spans).filter(|s| !matches!(s.name.as_str(), "Classify" | "PerFile"));
    for span in others {
        assert_eq!(span.attr("pocketflow.batch.items"), None, "{}", span.name);
        assert_eq!(span.attr("items"), None, "{}", span.name);
    }
}

use pocketflow::{AsyncBatchFlowHooks, BatchFlow, BoxError, Ctx, Flow, Params, SharedStore};

struct PerUser;

impl AsyncBatchFlowHooks for PerUser {
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<Params>, BoxError> {
        Ok(Vec::new())
    }
}

fn main() {
    let _batch = BatchFlow::new(Flow::new(), PerUser);
}

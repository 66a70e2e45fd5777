use pocketflow::{AsyncFlowHooks, BoxError, Ctx, Flow, SharedStore};

struct Setup;

impl AsyncFlowHooks for Setup {
    type Prep = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {
    let _flow = Flow::new().with_hooks(Setup);
}

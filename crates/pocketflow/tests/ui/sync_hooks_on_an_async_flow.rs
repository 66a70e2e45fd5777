use pocketflow::{AsyncFlow, BoxError, Ctx, FlowHooks, SharedStore};

struct Setup;

impl FlowHooks for Setup {
    type Prep = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {
    let _flow = AsyncFlow::new().with_hooks(Setup);
}

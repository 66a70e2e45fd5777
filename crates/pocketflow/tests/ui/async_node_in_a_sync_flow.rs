use pocketflow::{AsyncNode, BoxError, Ctx, Flow, SharedStore};

struct Fetch;

impl AsyncNode for Fetch {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {
    let mut flow = Flow::new();
    flow.start(Fetch);
}

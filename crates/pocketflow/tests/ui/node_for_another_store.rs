use pocketflow::{BoxError, Ctx, Flow, Node, SharedStore};

struct Load;

impl Node for Load {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

#[derive(serde::Serialize)]
struct MyStore;

fn main() {
    let mut flow = Flow::<MyStore>::new();
    flow.start(Load);
}

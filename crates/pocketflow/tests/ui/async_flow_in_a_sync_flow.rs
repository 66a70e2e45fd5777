use pocketflow::{AsyncFlow, Flow};

fn main() {
    let mut flow = Flow::new();
    flow.add(AsyncFlow::named("Inner"));
}

use pocketflow::AsyncFlow;

struct Plain;

fn main() {
    let mut flow = AsyncFlow::new();
    flow.start(Plain);
}

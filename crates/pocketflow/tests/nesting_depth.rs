//! Flows nested past `MAX_NESTING_DEPTH` return `FlowError::NestingTooDeep`
//! instead of overflowing the stack (which aborts the process), sync and
//! async, on a 2 MiB thread stack (the default of spawned threads and tokio
//! workers); flows nested exactly that deep run. Both for flows nested in
//! flows and for flows run from a node's `exec`, the costliest nesting.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pocketflow::{
    Action, AsyncFlow, AsyncNode, BoxError, Ctx, ErrorType, Flow, FlowError, MAX_NESTING_DEPTH, Node, SharedStore,
};

const TWO_MIB: usize = 2 * 1024 * 1024;

/// Runs `f` on a thread with a 2 MiB stack.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(TWO_MIB).spawn(f).unwrap().join().unwrap()
}

/// Runs `future` on a current-thread runtime on a 2 MiB stack.
fn on_small_stack_async<T: Send + 'static>(future: impl std::future::Future<Output = T> + Send + 'static) -> T {
    on_small_stack(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future))
}

/// The innermost node: notes that it ran.
struct Leaf;

impl Node for Leaf {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        Ok(())
    }
    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, (): (), (): ()) -> Result<Action, BoxError> {
        shared.set("leaf_ran", true)?;
        Ok(Action::NONE)
    }
}

/// `depth` sync flows, each the only step of the one around it.
fn nested_sync(depth: usize) -> Flow {
    let mut flow = Flow::named("Level1");
    flow.start(Leaf);
    for level in 2..=depth {
        let mut outer = Flow::named(format!("Level{level}"));
        outer.start(flow);
        flow = outer;
    }
    flow
}

/// `depth` async flows, each the only step of the one around it.
fn nested_async(depth: usize) -> AsyncFlow {
    let mut flow = AsyncFlow::named("Level1");
    flow.start(Leaf);
    for level in 2..=depth {
        let mut outer = AsyncFlow::named(format!("Level{level}"));
        outer.start(flow);
        flow = outer;
    }
    flow
}

/// A node whose `exec` runs a flow of its own (with a store of its own,
/// whose `leaf_ran` it hands up).
struct RunsSync(Flow);

impl Node for RunsSync {
    type Prep = ();
    type Exec = bool;
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<bool, BoxError> {
        let inner = SharedStore::new();
        self.0.run(&inner)?;
        Ok(inner.get::<bool>("leaf_ran").unwrap_or(false))
    }
    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, (): (), leaf_ran: bool) -> Result<Action, BoxError> {
        shared.set("leaf_ran", leaf_ran)?;
        Ok(Action::NONE)
    }
}

struct RunsAsync(AsyncFlow);

impl AsyncNode for RunsAsync {
    type Prep = ();
    type Exec = bool;
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<bool, BoxError> {
        let inner = SharedStore::new();
        self.0.run(&inner).await?;
        Ok(inner.get::<bool>("leaf_ran").unwrap_or(false))
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, (): (), leaf_ran: bool) -> Result<Action, BoxError> {
        shared.set("leaf_ran", leaf_ran)?;
        Ok(Action::NONE)
    }
}

/// `depth` sync flows, each run from the `exec` of the only node of the
/// one around it.
fn via_nodes_sync(depth: usize) -> Flow {
    let mut flow = Flow::named("Level1");
    flow.start(Leaf);
    for level in 2..=depth {
        let mut outer = Flow::named(format!("Level{level}"));
        outer.start(RunsSync(flow));
        flow = outer;
    }
    flow
}

fn via_nodes_async(depth: usize) -> AsyncFlow {
    let mut flow = AsyncFlow::named("Level1");
    flow.start(Leaf);
    for level in 2..=depth {
        let mut outer = AsyncFlow::named(format!("Level{level}"));
        outer.start(RunsAsync(flow));
        flow = outer;
    }
    flow
}

/// The `NestingTooDeep` error in `error` or its sources: its flow, depth
/// and limit.
fn too_deep(error: &FlowError) -> (String, usize, usize) {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = next {
        if let Some(FlowError::NestingTooDeep { flow, depth, limit }) = err.downcast_ref::<FlowError>() {
            return (flow.clone(), *depth, *limit);
        }
        next = err.source();
    }
    panic!("not a nesting error: {error}");
}

/// Whether the innermost node ran; the flow's result.
fn run_sync(flow: Flow) -> (Result<Action, FlowError>, bool) {
    let shared = SharedStore::new();
    let result = flow.run(&shared);
    (result, shared.get::<bool>("leaf_ran").unwrap_or(false))
}

async fn run_async(flow: AsyncFlow) -> (Result<Action, FlowError>, bool) {
    let shared = SharedStore::new();
    let result = flow.run(&shared).await;
    (result, shared.get::<bool>("leaf_ran").unwrap_or(false))
}

#[test]
fn sync_flows_nested_as_deep_as_the_limit_run_on_a_2_mib_stack() {
    let (result, leaf_ran) = on_small_stack(|| run_sync(nested_sync(MAX_NESTING_DEPTH)));
    assert!(result.is_ok(), "{result:?}");
    assert!(leaf_ran);
}

#[test]
fn sync_flows_nested_past_the_limit_return_nesting_too_deep_on_a_2_mib_stack() {
    let (result, leaf_ran) = on_small_stack(|| run_sync(nested_sync(MAX_NESTING_DEPTH + 1)));
    let error = result.unwrap_err();
    assert_eq!(too_deep(&error), ("Level1".to_owned(), MAX_NESTING_DEPTH + 1, MAX_NESTING_DEPTH));
    assert_eq!(error.error_type(), ErrorType::Configuration);
    assert!(!leaf_ran, "the flow past the limit did not start");
}

#[test]
fn async_flows_nested_as_deep_as_the_limit_run_on_a_2_mib_stack() {
    let (result, leaf_ran) = on_small_stack_async(run_async(nested_async(MAX_NESTING_DEPTH)));
    assert!(result.is_ok(), "{result:?}");
    assert!(leaf_ran);
}

#[test]
fn async_flows_nested_past_the_limit_return_nesting_too_deep_on_a_2_mib_stack() {
    let (result, leaf_ran) = on_small_stack_async(run_async(nested_async(MAX_NESTING_DEPTH + 1)));
    assert_eq!(too_deep(&result.unwrap_err()), ("Level1".to_owned(), MAX_NESTING_DEPTH + 1, MAX_NESTING_DEPTH));
    assert!(!leaf_ran);
}

#[test]
fn sync_flows_run_from_node_exec_as_deep_as_the_limit_run_on_a_2_mib_stack() {
    let (result, leaf_ran) = on_small_stack(|| run_sync(via_nodes_sync(MAX_NESTING_DEPTH)));
    assert!(result.is_ok(), "{result:?}");
    assert!(leaf_ran);
}

#[test]
fn sync_flows_run_from_node_exec_past_the_limit_return_nesting_too_deep() {
    let (result, _) = on_small_stack(|| run_sync(via_nodes_sync(MAX_NESTING_DEPTH + 1)));
    assert_eq!(too_deep(&result.unwrap_err()), ("Level1".to_owned(), MAX_NESTING_DEPTH + 1, MAX_NESTING_DEPTH));
}

#[test]
fn async_flows_run_from_node_exec_as_deep_as_the_limit_run_on_a_2_mib_stack() {
    let (result, leaf_ran) = on_small_stack_async(run_async(via_nodes_async(MAX_NESTING_DEPTH)));
    assert!(result.is_ok(), "{result:?}");
    assert!(leaf_ran);
}

#[test]
fn async_flows_run_from_node_exec_past_the_limit_return_nesting_too_deep() {
    let (result, _) = on_small_stack_async(run_async(via_nodes_async(MAX_NESTING_DEPTH + 1)));
    assert_eq!(too_deep(&result.unwrap_err()), ("Level1".to_owned(), MAX_NESTING_DEPTH + 1, MAX_NESTING_DEPTH));
}

#[test]
fn flows_nested_far_past_the_limit_fail_at_the_limit_sync_and_async() {
    let (result, _) = on_small_stack(|| run_sync(nested_sync(5_000)));
    let (flow, depth, _) = too_deep(&result.unwrap_err());
    assert_eq!((flow.as_str(), depth), ("Level4936", MAX_NESTING_DEPTH + 1));
    let (result, _) = on_small_stack_async(run_async(nested_async(5_000)));
    assert_eq!(too_deep(&result.unwrap_err()).1, MAX_NESTING_DEPTH + 1);
}

#[test]
fn the_nesting_error_names_the_flow_the_depth_and_the_limit() {
    let (result, _) = on_small_stack(|| run_sync(nested_sync(MAX_NESTING_DEPTH + 1)));
    let message = result.unwrap_err().to_string();
    assert!(message.contains("`Level1`"), "{message}");
    assert!(message.contains(&format!("{} flows deep", MAX_NESTING_DEPTH + 1)), "{message}");
    assert!(message.contains(&format!("limit of {MAX_NESTING_DEPTH}")), "{message}");
}

/// The case: 50,000 flows deep. Running stops at the limit, and
/// dropping the nest afterwards takes it apart in a loop (a recursive drop
/// overflowed a 2 MiB stack from about 20,000 levels in debug).
#[test]
fn a_nest_fifty_thousand_deep_fails_at_the_limit_and_drops_without_overflowing() {
    let (result, leaf_ran) = on_small_stack(|| run_sync(nested_sync(50_000)));
    assert_eq!(too_deep(&result.unwrap_err()).1, MAX_NESTING_DEPTH + 1);
    assert!(!leaf_ran);
    let (result, leaf_ran) = on_small_stack_async(run_async(nested_async(50_000)));
    assert_eq!(too_deep(&result.unwrap_err()).1, MAX_NESTING_DEPTH + 1);
    assert!(!leaf_ran);
    // Built and dropped without running, too.
    on_small_stack(|| drop(nested_sync(50_000)));
    on_small_stack(|| drop(nested_async(50_000)));
}

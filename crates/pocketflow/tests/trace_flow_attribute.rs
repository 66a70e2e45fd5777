//! `#[trace_flow]`, the Rust form of Python's `@trace_flow(flow_name=…,
//! session_id=…, user_id=…)` decorator: the default name (the function's,
//! in UpperCamelCase, as Python's is the class name) and its override, the
//! run options it sets and how they lie over those the body set, `async`
//! and generic functions, methods, every flow kind, and the name of the
//! `flow` span a run makes.
//!
//! Diagnostics for malformed arguments are unit-tested in
//! `pocketflow-macros` (its argument parser and expansion).
#![cfg(feature = "macros")]
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pocketflow::{
    Action, AsyncBatchFlow, AsyncBatchFlowHooks, AsyncFlow, AsyncNode, AsyncParallelBatchFlow, BatchFlow,
    BatchFlowHooks, BoxError, Ctx, Flow, Node, Params, RunOptions, SharedStore, TraceFlow, trace_flow,
};
use pocketflow_test_support::Capture;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt as _;

/// Sets `shared["visited"] = true`.
struct Visit;

impl Node for Visit {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        shared.set("visited", true)?;
        Ok(Action::NONE)
    }
}

/// The async form of [`Visit`].
struct AsyncVisit;

impl AsyncNode for AsyncVisit {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        tokio::task::yield_now().await;
        Ok(())
    }
    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        shared.set("visited", true)?;
        Ok(Action::NONE)
    }
}

/// Two parameter sets.
struct TwoSets;

impl BatchFlowHooks for TwoSets {
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<Params>, BoxError> {
        Ok(vec![Params::new().with("i", 0), Params::new().with("i", 1)])
    }
}

impl AsyncBatchFlowHooks for TwoSets {
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<Params>, BoxError> {
        Ok(vec![Params::new().with("i", 0), Params::new().with("i", 1)])
    }
}

fn visit_flow() -> Flow {
    let mut flow = Flow::new();
    flow.start(Visit);
    flow
}

fn async_visit_flow() -> AsyncFlow {
    let mut flow = AsyncFlow::new();
    flow.start(AsyncVisit);
    flow
}

/// The `name` field of every `flow` span, in creation order.
fn flow_span_names(capture: &Capture) -> Vec<String> {
    capture.snapshot().spans_named("flow").map(|(_, span)| span.fields["name"].clone()).collect()
}

fn tags(options: &RunOptions) -> Vec<&str> {
    options.tag_list().iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------- names

#[trace_flow]
fn data_processing_flow() -> Flow {
    visit_flow()
}

#[test]
fn the_default_name_is_the_function_name_in_upper_camel_case() {
    let flow = data_processing_flow();
    assert_eq!(flow.name(), "DataProcessingFlow");
    assert!(flow.run_options().is_empty(), "no options given, none set");
}

#[trace_flow(flow_name = "CustomName")]
fn renamed_flow() -> Flow {
    visit_flow()
}

#[test]
fn flow_name_overrides_the_default() {
    assert_eq!(renamed_flow().name(), "CustomName");
}

#[trace_flow]
fn named_in_body() -> Flow {
    visit_flow().with_name("FromBody")
}

#[test]
fn the_attribute_name_wins_over_a_name_set_in_the_body() {
    assert_eq!(named_in_body().name(), "NamedInBody");
}

#[trace_flow]
fn flow_v2() -> Flow {
    visit_flow()
}

#[trace_flow]
fn r#loop() -> Flow {
    visit_flow()
}

#[test]
fn digits_and_raw_identifiers_in_default_names() {
    assert_eq!(flow_v2().name(), "FlowV2");
    assert_eq!(r#loop().name(), "Loop");
}

#[trace_flow]
fn early_return(early: bool) -> Flow {
    if early {
        return Flow::named("early");
    }
    visit_flow()
}

#[test]
fn an_early_return_is_named_too() {
    assert_eq!(early_return(true).name(), "EarlyReturn");
    assert_eq!(early_return(false).name(), "EarlyReturn");
}

// ---------------------------------------------------------------- options

#[trace_flow(
    session_id = "chat-42",
    user_id = "ada",
    tags = ["beta", "checkout"],
    metadata(
        plan = "pro",
        retries = 3,
        offset = -7,
        big = 18_000_000_000_000_000_000,
        ratio = 0.5,
        below = -1.25,
        internal = true,
        "model-id" = "gpt",
        r#type = "demo",
    ),
)]
fn fully_configured() -> Flow {
    visit_flow()
}

#[test]
fn every_option_is_set() {
    let flow = fully_configured();
    assert_eq!(flow.name(), "FullyConfigured");
    let options = flow.run_options();
    assert_eq!(options.session().map(String::as_str), Some("chat-42"));
    assert_eq!(options.user().map(String::as_str), Some("ada"));
    assert_eq!(tags(options), ["beta", "checkout"]);
    let metadata = options.metadata_map();
    assert_eq!(metadata.len(), 9);
    assert_eq!(metadata["plan"], Value::from("pro"));
    assert_eq!(metadata["retries"], Value::from(3));
    assert_eq!(metadata["offset"], Value::from(-7));
    assert_eq!(metadata["big"], Value::from(18_000_000_000_000_000_000_u64));
    assert_eq!(metadata["ratio"], Value::from(0.5));
    assert_eq!(metadata["below"], Value::from(-1.25));
    assert_eq!(metadata["internal"], Value::from(true));
    assert_eq!(metadata["model-id"], Value::from("gpt"));
    assert_eq!(metadata["type"], Value::from("demo"));
}

#[trace_flow(user_id = "ada")]
fn one_option() -> Flow {
    visit_flow()
}

#[test]
fn options_not_given_stay_unset() {
    let flow = one_option();
    let options = flow.run_options();
    assert_eq!(options.user().map(String::as_str), Some("ada"));
    assert_eq!(options.session(), None);
    assert!(options.tag_list().is_empty());
    assert!(options.metadata_map().is_empty());
}

#[trace_flow(session_id = "from-attribute", tags = ["b"], metadata(k = 2, added = "yes"))]
fn options_over_body() -> Flow {
    visit_flow().with_run_options(
        RunOptions::new()
            .session_id("from-body")
            .user_id("body-user")
            .tag("a")
            .tag("b")
            .metadata("k", 1)
            .metadata("keep", true),
    )
}

#[test]
fn options_lie_over_the_ones_the_body_set() {
    let flow = options_over_body();
    let options = flow.run_options();
    assert_eq!(options.session().map(String::as_str), Some("from-attribute"), "the attribute wins");
    assert_eq!(options.user().map(String::as_str), Some("body-user"), "kept from the body");
    assert_eq!(tags(options), ["a", "b"], "merged, each once");
    let metadata = options.metadata_map();
    assert_eq!(metadata["k"], Value::from(2), "the attribute wins on the same key");
    assert_eq!(metadata["keep"], Value::from(true));
    assert_eq!(metadata["added"], Value::from("yes"));
}

#[trace_flow]
fn name_only_keeps_body_options() -> Flow {
    visit_flow().with_run_options(RunOptions::new().session_id("from-body"))
}

#[test]
fn a_name_only_attribute_keeps_the_body_options() {
    let flow = name_only_keeps_body_options();
    assert_eq!(flow.run_options().session().map(String::as_str), Some("from-body"));
}

// ---------------------------------------------------------------- async, generic, methods, visibility

#[trace_flow(session_id = "async-session")]
async fn async_built_flow(delay: bool) -> AsyncFlow {
    if delay {
        tokio::task::yield_now().await;
    }
    async_visit_flow()
}

#[tokio::test]
async fn works_on_an_async_fn() {
    let flow = async_built_flow(true).await;
    assert_eq!(flow.name(), "AsyncBuiltFlow");
    assert_eq!(flow.run_options().session().map(String::as_str), Some("async-session"));
}

/// Generic over the shared state: `Flow<S>` needs a type parameter.
#[trace_flow(tags = ["generic"])]
fn generic_over_state<S>() -> Flow<S> {
    Flow::new()
}

/// Generic over the start node, with a where clause.
#[trace_flow(flow_name = "StartsWith")]
pub(crate) fn starts_with<N>(node: N) -> Flow
where
    N: Node + 'static,
{
    let mut flow = Flow::new();
    flow.start(node);
    flow
}

/// Generic over the flow type itself.
#[trace_flow(user_id = "any")]
fn any_flow<F: TraceFlow + Default>() -> F {
    F::default()
}

#[test]
fn works_on_generic_fns() {
    let flow = generic_over_state::<SharedStore>();
    assert_eq!(flow.name(), "GenericOverState");
    assert_eq!(tags(flow.run_options()), ["generic"]);

    let flow = starts_with(Visit);
    assert_eq!(flow.name(), "StartsWith");
    let shared = SharedStore::new();
    flow.run(&shared).unwrap();
    assert!(shared.get::<bool>("visited").unwrap());

    let flow: AsyncFlow = any_flow();
    assert_eq!(flow.name(), "AnyFlow");
    assert_eq!(flow.run_options().user().map(String::as_str), Some("any"));
}

/// An `impl Trait` return type: no type can be written for it, so the
/// expansion leaves it to inference.
#[trace_flow(session_id = "opaque")]
fn opaque_flow() -> impl TraceFlow {
    visit_flow()
}

#[test]
fn works_with_an_impl_trait_return_type() {
    assert_eq!(opaque_flow().run_options().session().map(String::as_str), Some("opaque"));
}

struct Builder {
    user: &'static str,
}

impl Builder {
    /// A method; `Self` and `self` stay usable in the body.
    #[trace_flow(session_id = "from-method")]
    fn build(&self) -> Flow {
        visit_flow().with_run_options(RunOptions::new().user_id(self.user))
    }

    #[trace_flow]
    async fn build_async(self) -> AsyncFlow {
        async_visit_flow().with_run_options(RunOptions::new().user_id(self.user))
    }
}

#[tokio::test]
async fn works_on_methods() {
    let flow = Builder { user: "bob" }.build();
    assert_eq!(flow.name(), "Build");
    assert_eq!(flow.run_options().session().map(String::as_str), Some("from-method"));
    assert_eq!(flow.run_options().user().map(String::as_str), Some("bob"));

    let flow = Builder { user: "eve" }.build_async().await;
    assert_eq!(flow.name(), "BuildAsync");
    assert_eq!(flow.run_options().user().map(String::as_str), Some("eve"));
}

// ---------------------------------------------------------------- flow kinds

#[trace_flow(tags = ["batch"])]
fn batch_kind() -> BatchFlow<SharedStore, TwoSets> {
    BatchFlow::new(visit_flow(), TwoSets)
}

#[trace_flow(tags = ["async-batch"])]
fn async_batch_kind() -> AsyncBatchFlow<SharedStore, TwoSets> {
    AsyncBatchFlow::new(async_visit_flow(), TwoSets)
}

#[trace_flow(tags = ["parallel"])]
fn parallel_kind() -> AsyncParallelBatchFlow<SharedStore, TwoSets> {
    AsyncParallelBatchFlow::new(async_visit_flow(), TwoSets)
}

#[test]
fn works_on_every_flow_kind() {
    let flow = batch_kind();
    assert_eq!((flow.name(), tags(flow.run_options())), ("BatchKind", vec!["batch"]));
    let flow = async_batch_kind();
    assert_eq!((flow.name(), tags(flow.run_options())), ("AsyncBatchKind", vec!["async-batch"]));
    let flow = parallel_kind();
    assert_eq!((flow.name(), tags(flow.run_options())), ("ParallelKind", vec!["parallel"]));
}

// ---------------------------------------------------------------- spans

#[test]
fn the_flow_span_carries_the_name() {
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let shared = SharedStore::new();
        data_processing_flow().run(&shared).unwrap();
        renamed_flow().run(&shared).unwrap();
        batch_kind().run(&shared).unwrap();
    });
    assert_eq!(flow_span_names(&capture), ["DataProcessingFlow", "CustomName", "BatchKind"]);
}

#[test]
fn the_async_flow_span_carries_the_name() {
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let shared = SharedStore::new();
        async_built_flow(false).await.run(&shared).await.unwrap();
        parallel_kind().run(&shared).await.unwrap();
        assert!(shared.get::<bool>("visited").unwrap());
    });
    assert_eq!(flow_span_names(&capture), ["AsyncBuiltFlow", "ParallelKind"]);
}

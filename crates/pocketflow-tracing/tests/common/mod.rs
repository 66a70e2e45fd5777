//! What the pipeline tests share: a config that exports to an in-process
//! OTLP receiver, nodes that carry their run's marker through every phase
//! (so a span can be traced back to the run that made it), and checks on
//! the shape of received traces.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;
use std::time::Duration;

use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Ctx, Flow, Node, SharedStore};
use pocketflow_test_support::otlp::{AttrValue, ReceivedSpan, ReceivedTrace};
use pocketflow_tracing::{ExporterKind, Protocol, TracingConfig, TracingConfigBuilder};

/// The longest a test waits for spans to arrive.
pub const WAIT: Duration = Duration::from_secs(10);

/// The shared-store key holding the run's marker.
pub const MARKER: &str = "marker";

/// The two nodes of [`two_step_flow`] and [`async_two_step_flow`].
pub const NODES: [&str; 2] = ["Load", "Answer"];

/// Spans of one run of [`two_step_flow`] or [`async_two_step_flow`]: the
/// flow, and `node`, `prep`, `exec`, `post` for each of its two nodes.
pub const SPANS_PER_RUN: usize = 1 + 2 * 4;

/// OTLP to `endpoint` (a receiver's base URL) over `protocol`, nothing else.
pub fn otlp(endpoint: &str, protocol: Protocol) -> TracingConfigBuilder {
    TracingConfig::builder()
        .exporters(vec![ExporterKind::Otlp])
        .protocol(protocol)
        .otlp_endpoint(endpoint)
        .service_name("pocketflow-tracing-tests")
}

/// A store holding `marker`.
pub fn store(marker: &str) -> SharedStore {
    SharedStore::from_iter([(MARKER, marker)])
}

/// `prep` reads the marker, `exec` returns `"{marker}/{node}"`, `post`
/// stores it under the node's name. The marker ends up in the `node` and
/// `exec` spans' `input`, the `prep` span's `output`.
#[derive(Debug, Clone, Copy)]
pub struct MarkerNode(pub &'static str);

impl Node for MarkerNode {
    type Prep = String;
    type Exec = String;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.0)
    }

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get(MARKER)?)
    }

    fn exec(&self, _: &Ctx<'_>, marker: &String) -> Result<String, BoxError> {
        Ok(format!("{marker}/{}", self.0))
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, out: String) -> Result<Action, BoxError> {
        shared.set(self.0, out)?;
        Ok(Action::NONE)
    }
}

/// [`MarkerNode`] with awaits in every phase, so concurrent runs interleave
/// on the runtime's threads.
#[derive(Debug, Clone, Copy)]
pub struct AsyncMarkerNode(pub &'static str);

impl AsyncNode for AsyncMarkerNode {
    type Prep = String;
    type Exec = String;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.0)
    }

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        tokio::task::yield_now().await;
        Ok(shared.get(MARKER)?)
    }

    async fn exec(&self, _: &Ctx<'_>, marker: &String) -> Result<String, BoxError> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        tokio::task::yield_now().await;
        Ok(format!("{marker}/{}", self.0))
    }

    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, out: String) -> Result<Action, BoxError> {
        tokio::task::yield_now().await;
        shared.set(self.0, out)?;
        Ok(Action::NONE)
    }
}

/// A node named `self.0` that does nothing.
#[derive(Debug, Clone, Copy)]
pub struct Step(pub &'static str);

impl Node for Step {
    type Prep = ();
    type Exec = ();

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.0)
    }

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        Ok(())
    }
}

/// An async node named `self.0` that does nothing and never waits: its
/// future is ready when first polled.
#[derive(Debug, Clone, Copy)]
pub struct AsyncStep(pub &'static str);

impl AsyncNode for AsyncStep {
    type Prep = ();
    type Exec = ();

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.0)
    }

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        Ok(())
    }
}

/// An async flow named `name` of one [`AsyncStep`] named `Step`.
pub fn async_step_flow(name: impl Into<Cow<'static, str>>) -> AsyncFlow {
    let mut flow = AsyncFlow::named(name);
    flow.start(AsyncStep("Step"));
    flow
}

/// A flow named `name`: `Load >> Answer`, both [`MarkerNode`]s.
pub fn two_step_flow(name: impl Into<Cow<'static, str>>) -> Flow {
    let mut flow = Flow::named(name);
    let load = flow.start(MarkerNode(NODES[0]));
    let answer = flow.add(MarkerNode(NODES[1]));
    flow.link(load >> answer);
    flow
}

/// The async form of [`two_step_flow`], with [`AsyncMarkerNode`]s.
pub fn async_two_step_flow(name: impl Into<Cow<'static, str>>) -> AsyncFlow {
    let mut flow = AsyncFlow::named(name);
    let load = flow.start(AsyncMarkerNode(NODES[0]));
    let answer = flow.add(AsyncMarkerNode(NODES[1]));
    flow.link(load >> answer);
    flow
}

/// Asserts that `trace` is whole: one root, no span whose parent is
/// missing, and `expected` spans. Returns the root.
pub fn assert_whole(trace: &ReceivedTrace, expected: usize) -> &ReceivedSpan {
    let roots = trace.roots();
    assert_eq!(roots.len(), 1, "trace {} has {} roots:\n{}", trace.trace_id, roots.len(), trace.tree());
    assert!(trace.orphans().is_empty(), "trace {} has orphans:\n{}", trace.trace_id, trace.tree());
    assert_eq!(trace.spans.len(), expected, "trace {} has the wrong span count:\n{}", trace.trace_id, trace.tree());
    roots[0]
}

/// Asserts that `trace` is one run of [`two_step_flow`] or
/// [`async_two_step_flow`] whose store held `marker`: the flow, its two
/// nodes in order, each with `prep`, `exec`, `post`; and that every span in
/// it carries `marker` (in `langfuse.trace.name`, and in the input or
/// output of every span that records one).
pub fn assert_marker_run(trace: &ReceivedTrace, flow_name: &str, marker: &str) {
    let root = assert_whole(trace, SPANS_PER_RUN);
    let tree = trace.tree();
    assert_eq!(root.name, flow_name, "{tree}");
    assert_eq!(root.attr_str("pocketflow.span"), Some("flow"), "{tree}");
    let quoted = format!("\"{marker}\"");
    let flow_input = root.attr_str("langfuse.observation.input").unwrap_or_default();
    assert!(flow_input.contains(&format!("\"{MARKER}\":{quoted}")), "flow input {flow_input:?} lacks {marker}");

    for span in &trace.spans {
        assert_eq!(span.attr_str("langfuse.trace.name"), Some(flow_name), "{} in\n{tree}", span.name);
    }

    let nodes = trace.children(&root.span_id);
    let names: Vec<&str> = nodes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, NODES, "{tree}");
    for node in nodes {
        assert_eq!(node.attr_str("pocketflow.span"), Some("node"), "{tree}");
        assert_eq!(node.attr_str("langfuse.observation.input"), Some(quoted.as_str()), "{} in\n{tree}", node.name);
        let expected_output = format!("\"{marker}/{}\"", node.name);
        assert_eq!(node.attr_str("langfuse.observation.output"), Some(expected_output.as_str()), "{tree}");
        let phases = trace.children(&node.span_id);
        let phase_kinds: Vec<&str> = phases.iter().filter_map(|s| s.attr_str("pocketflow.span")).collect();
        assert_eq!(phase_kinds, ["prep", "exec", "post"], "{tree}");
        let phase_names: Vec<&str> = phases.iter().map(|s| s.name.as_str()).collect();
        let expected: Vec<String> = phase_kinds.iter().map(|phase| format!("{}.{phase}", node.name)).collect();
        assert_eq!(phase_names, expected, "{tree}");
        assert_eq!(phases[0].attr_str("langfuse.observation.output"), Some(quoted.as_str()), "prep in\n{tree}");
        assert_eq!(phases[1].attr_str("langfuse.observation.input"), Some(quoted.as_str()), "exec in\n{tree}");
        assert_eq!(phases[1].attr_str("langfuse.observation.output"), Some(expected_output.as_str()), "{tree}");
    }
}

/// Runs `work` with a layer built from `configure(otlp(..))` as this
/// thread's subscriber, exporting to a fresh gRPC receiver; shuts the
/// pipeline down and returns what `work` returned and the traces received.
pub fn export<R>(
    configure: impl FnOnce(TracingConfigBuilder) -> TracingConfigBuilder,
    work: impl FnOnce() -> R,
) -> (R, Vec<ReceivedTrace>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let receiver = pocketflow_test_support::otlp::OtlpReceiver::grpc().unwrap();
    let config = configure(otlp(&receiver.endpoint(), Protocol::Grpc)).build().unwrap();
    let (layer, guard) = config.layer().unwrap();
    let result = tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), work);
    let report = guard.shutdown();
    assert!(report.completed, "{report}");
    assert_eq!(report.stats.dropped, 0, "{report}");
    let spans = receiver.wait_for_spans(usize::try_from(report.stats.exported).unwrap(), WAIT);
    assert_eq!(spans.len() as u64, report.stats.exported, "every exported span arrived");
    (result, receiver.traces())
}

/// Runs `runs` flows of [`two_step_flow`] (markers `run-0`, `run-1`, …)
/// under a layer built from `config`, on this thread, and shuts down.
pub fn run_and_shut_down(config: TracingConfig, runs: usize) -> pocketflow_tracing::ShutdownReport {
    use tracing_subscriber::layer::SubscriberExt as _;
    let (layer, guard) = config.layer().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..runs {
            let marker = format!("run-{i}");
            two_step_flow(marker.clone()).run(&store(&marker)).unwrap();
        }
    });
    guard.shutdown()
}

/// The one span named `name` across `traces`.
pub fn span_named<'a>(traces: &'a [ReceivedTrace], name: &str) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = traces.iter().flat_map(|t| &t.spans).filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "spans named {name}: {found:#?}");
    found[0]
}

/// Runs `future` on a fresh current-thread runtime (with timers) on this
/// thread, so the subscriber [`export`] installed for the thread sees every
/// span of it, including those of tasks it spawns.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(future)
}

/// Every span of `traces`.
pub fn all_spans(traces: &[ReceivedTrace]) -> impl Iterator<Item = &ReceivedSpan> {
    traces.iter().flat_map(|t| &t.spans)
}

/// The `state`s of `span`'s `pocketflow.lifecycle` events, in order.
pub fn lifecycle_states(span: &ReceivedSpan) -> Vec<&str> {
    span.events
        .iter()
        .filter(|e| e.name == "pocketflow.lifecycle")
        .filter_map(|e| e.attributes.get("state").and_then(AttrValue::as_str))
        .collect()
}

/// The string values of an array attribute.
pub fn strings(span: &ReceivedSpan, key: &str) -> Vec<String> {
    match span.attr(key) {
        Some(AttrValue::Array(items)) => items.iter().filter_map(|item| item.as_str().map(str::to_owned)).collect(),
        other => panic!("{key} is not an array: {other:?}"),
    }
}

/// What a console exporter printed: a `Write` the test reads back.
#[derive(Clone, Default)]
pub struct Printed(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Printed {
    /// Everything printed so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Printed {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

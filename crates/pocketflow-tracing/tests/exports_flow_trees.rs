//! A flow run arrives at a real OTLP receiver (gRPC, HTTP/protobuf, or as
//! Langfuse expects it) as one trace: the flow at the root, nodes under it,
//! phases under them, with the Langfuse and OpenInference attributes on every
//! span.
//!
//! Each test installs the layer with `with_default` (thread-local) and runs a
//! sync flow, so tests in this file run in parallel without sharing spans.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use pocketflow::{Action, BoxError, Ctx, Flow, Node, Observation, SharedStore};
use pocketflow_test_support::otlp::{OtlpReceiver, ReceivedSpan, ReceivedTrace, StatusCode};
use pocketflow_tracing::{
    ConsoleExporter, ExporterKind, Generation, Message, ObservationType, Pricing, Protocol, TracingConfig,
    TracingConfigBuilder, TracingGuard,
};
use tracing_subscriber::prelude::*;

const WAIT: Duration = Duration::from_secs(10);
const OBSERVATION_TYPES: [&str; 10] =
    ["span", "chain", "agent", "tool", "generation", "retriever", "embedding", "evaluator", "guardrail", "event"];

/// Reads `question`, answers it.
struct Ask;

impl Node for Ask {
    type Prep = String;
    type Exec = String;

    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
        Ok(shared.get("question")?)
    }

    fn exec(&self, _: &Ctx<'_>, question: &String) -> Result<String, BoxError> {
        Ok(format!("answer to {question}"))
    }

    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, answer: String) -> Result<Action, BoxError> {
        shared.set("answer", answer)?;
        Ok(Action::new("checked"))
    }
}

/// Fails its first attempt, then succeeds.
#[derive(Default)]
struct Flaky;

impl Node for Flaky {
    type Prep = ();
    type Exec = &'static str;

    fn max_retries(&self) -> usize {
        3
    }

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, ctx: &Ctx<'_>, _: &()) -> Result<&'static str, BoxError> {
        if ctx.attempt() == 0 { Err("model timed out".into()) } else { Ok("ok") }
    }
}

/// Always fails, with no fallback.
struct Broken;

impl Node for Broken {
    type Prep = ();
    type Exec = ();

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Err("disk on fire".into())
    }
}

/// Calls a "model" through [`Generation`].
struct CallModel;

impl Node for CallModel {
    type Prep = ();
    type Exec = String;

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<String, BoxError> {
        let generation = Generation::chat("openai", "gpt-4o-mini");
        let _entered = generation.span().enter();
        generation.record_input(&[("user", "hello")]);
        generation.record_output("hi there");
        generation.record_usage(12, 3);
        Ok("hi there".to_owned())
    }
}

/// Declares itself a tool; calls a model with a key in its prompt.
struct Lookup;

impl Node for Lookup {
    type Prep = ();
    type Exec = ();

    fn observation(&self) -> Observation {
        Observation::Tool
    }

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        let generation = Generation::chat("openai", "gpt-4o-mini");
        let _entered = generation.span().enter();
        generation.record_input_messages(&[
            Message::system("be brief"),
            Message::user(r#"{"api_key":"sk-very-secret","q":"weather"}"#),
        ]);
        let body = serde_json::json!({
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"message": {"role": "assistant", "content": "sunny"}}],
            "usage": {"prompt_tokens": 2000, "completion_tokens": 100, "total_tokens": 2100,
                      "prompt_tokens_details": {"cached_tokens": 1000}}
        });
        let usage = generation.record_openai_response(&body)?;
        generation.record_cost(&Pricing::per_million(0.15, 0.60).cost(&usage));
        Ok(())
    }
}

/// Declares itself an agent.
struct Planner;

impl Node for Planner {
    type Prep = ();
    type Exec = ();

    fn observation(&self) -> Observation {
        Observation::Agent
    }

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

fn pipeline() -> Flow {
    let mut flow = Flow::named("Pipeline");
    let ask = flow.start(Ask);
    let flaky = flow.add(Flaky);
    flow.link(ask.on("checked") >> flaky);
    flow
}

fn store(question: &str) -> SharedStore {
    let shared = SharedStore::new();
    shared.set("question", question).unwrap();
    shared
}

/// Runs `work` with the layer of `config` as this thread's subscriber and
/// shuts the pipeline down after it.
fn traced<R>(config: TracingConfig, work: impl FnOnce() -> R) -> (R, pocketflow_tracing::ShutdownReport) {
    let (layer, guard) = config.layer().expect("layer");
    run_with(layer, guard, work)
}

fn run_with<R>(
    layer: pocketflow_tracing::PocketflowLayer,
    guard: TracingGuard,
    work: impl FnOnce() -> R,
) -> (R, pocketflow_tracing::ShutdownReport) {
    let subscriber = tracing_subscriber::registry().with(layer);
    let result = tracing::subscriber::with_default(subscriber, work);
    (result, guard.shutdown())
}

fn otlp(receiver: &OtlpReceiver, protocol: Protocol) -> TracingConfigBuilder {
    TracingConfig::builder()
        .exporters(vec![ExporterKind::Otlp])
        .protocol(protocol)
        .otlp_endpoint(receiver.endpoint())
        .scheduled_delay(Duration::from_millis(50))
}

fn span<'a>(trace: &'a ReceivedTrace, name: &str) -> &'a ReceivedSpan {
    trace.spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span {name} in\n{}", trace.tree()))
}

fn children_names(trace: &ReceivedTrace, parent: &ReceivedSpan) -> Vec<String> {
    trace.children(&parent.span_id).iter().map(|s| s.name.clone()).collect()
}

/// The shape every exported flow trace must have.
fn assert_well_formed(trace: &ReceivedTrace) {
    let tree = trace.tree();
    assert_eq!(trace.roots().len(), 1, "one root:\n{tree}");
    assert!(trace.orphans().is_empty(), "no orphans:\n{tree}");
    assert!(trace.depth() >= 3, "flow > node > phase:\n{tree}");
    let root = trace.roots()[0];
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.attr_str("langfuse.trace.name"), Some(root.name.as_str()));
    for span in &trace.spans {
        let observation = span.attr_str("langfuse.observation.type").unwrap_or_default();
        assert!(OBSERVATION_TYPES.contains(&observation), "{} has observation type {observation:?}", span.name);
        // Event observations are for Langfuse; the collector keeps them
        // from Jaeger, and Phoenix users switch them off.
        let event = span.attr_str("pocketflow.span") == Some("event");
        assert!(event || span.attr_str("openinference.span.kind").is_some(), "{} has no openinference kind", span.name);
        assert_eq!(span.attr_str("langfuse.trace.name"), Some(root.name.as_str()), "{}", span.name);
        assert_eq!(span.scope_name, "pocketflow");
    }
}

#[test]
fn grpc_export_is_one_well_formed_trace_per_run() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let config = otlp(&receiver, Protocol::Grpc)
        .session_id("session-7")
        .user_id("ada")
        .tag("support")
        .metadata_entry("tenant", "acme")
        .environment("staging")
        .release("2026.11")
        .build()
        .unwrap();
    let (results, report) = traced(config, || {
        let flow = pipeline();
        [flow.run(&store("one")), flow.run(&store("two"))]
    });
    for result in results {
        assert_eq!(result.unwrap(), Action::NONE);
    }
    assert!(report.completed);
    assert_eq!(report.stats.dropped, 0);

    let spans = receiver.wait_for_spans(report.stats.exported as usize, WAIT);
    assert_eq!(spans.len() as u64, report.stats.exported);
    let traces = receiver.traces();
    assert_eq!(traces.len(), 2, "one trace per run");

    for (trace, question) in traces.iter().zip(["one", "two"]) {
        assert_well_formed(trace);
        let root = trace.roots()[0];
        assert_eq!(root.name, "Pipeline");
        assert_eq!(root.attr_str("langfuse.observation.type"), Some("chain"));
        assert_eq!(root.attr_str("openinference.span.kind"), Some("CHAIN"));
        assert_eq!(root.attr_str("pocketflow.flow.kind"), Some("Flow"));
        // The root flow carries its graph, for Jaeger and for Langfuse.
        assert_eq!(root.attr_str("pocketflow.flow.graph"), Some(pipeline().to_mermaid().as_str()));
        assert_eq!(root.attr_str("langfuse.observation.metadata.graph"), root.attr_str("pocketflow.flow.graph"));
        assert!(root.attr_str("pocketflow.flow.graph").unwrap().contains(r#"flow_0 -->|"checked"| flow_1"#));
        for span in trace.spans.iter().filter(|s| s.span_id != root.span_id) {
            assert_eq!(span.attr_str("pocketflow.flow.graph"), None, "only the root has the graph: {}", span.name);
        }
        let input: serde_json::Value =
            serde_json::from_str(root.attr_str("langfuse.observation.input").unwrap()).unwrap();
        assert_eq!(input["question"], question);
        let output: serde_json::Value =
            serde_json::from_str(root.attr_str("langfuse.observation.output").unwrap()).unwrap();
        assert_eq!(output["answer"], format!("answer to {question}"));
        assert_eq!(root.attr_str("input.value"), root.attr_str("langfuse.observation.input"));

        assert_eq!(children_names(trace, root), ["Ask", "Flaky"]);
        let ask = span(trace, "Ask");
        assert_eq!(ask.attr_str("langfuse.observation.type"), Some("span"));
        assert_eq!(ask.attr_str("pocketflow.action"), Some("checked"));
        assert_eq!(children_names(trace, ask), ["Ask.prep", "Ask.exec", "Ask.post"]);

        let flaky = span(trace, "Flaky");
        assert_eq!(children_names(trace, flaky), ["Flaky.prep", "Flaky.exec", "Flaky.exec", "Flaky.post"]);
        let execs = trace.children(&flaky.span_id);
        let (first, second) = (execs[1], execs[2]);
        assert_eq!(first.attr("pocketflow.attempt").and_then(|v| v.as_i64()), Some(0));
        assert_eq!(first.status.code, StatusCode::Error);
        assert_eq!(first.status.message, "model timed out");
        assert!(first.events.iter().any(|e| e.name == "exception"
            && e.attributes.get("exception.message").and_then(|v| v.as_str()) == Some("model timed out")));
        assert!(first.events.iter().any(|e| e.name == "pocketflow.retry"), "retry event on the failed attempt");
        assert_eq!(second.status.code, StatusCode::Unset);
        assert_eq!(flaky.status.code, StatusCode::Unset, "a retried success is not a failed node");

        for span in &trace.spans {
            assert_eq!(span.attr_str("langfuse.session.id"), Some("session-7"), "{}", span.name);
            assert_eq!(span.attr_str("session.id"), Some("session-7"));
            assert_eq!(span.attr_str("langfuse.user.id"), Some("ada"));
            assert_eq!(span.attr_str("user.id"), Some("ada"));
            assert_eq!(span.attr_str("langfuse.trace.metadata.tenant"), Some("acme"));
            assert_eq!(span.attr_str("langfuse.environment"), Some("staging"));
            assert_eq!(span.attr_str("langfuse.release"), Some("2026.11"));
            let tags = span.attr("langfuse.trace.tags").expect("tags");
            assert!(format!("{tags:?}").contains("support"));
            assert_eq!(span.resource.get("service.name").and_then(|v| v.as_str()), Some("pocketflow"));
            assert_eq!(span.resource.get("deployment.environment.name").and_then(|v| v.as_str()), Some("staging"));
        }
        let lifecycle = root.events.iter().filter(|e| e.name == "pocketflow.lifecycle").count();
        assert!(lifecycle > 0, "lifecycle events on the flow span");
    }
}

#[test]
fn http_protobuf_export_posts_to_v1_traces() {
    let receiver = OtlpReceiver::http().unwrap();
    let config = otlp(&receiver, Protocol::HttpProtobuf).build().unwrap();
    assert_eq!(config.otlp_endpoint(), Some(format!("{}/v1/traces", receiver.endpoint()).as_str()));
    let (result, report) = traced(config, || pipeline().run(&store("http")));
    result.unwrap();
    assert!(report.completed);
    receiver.wait_for_spans(report.stats.exported as usize, WAIT);

    let requests = receiver.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(request.path, "/v1/traces");
        assert_eq!(request.content_type.as_deref(), Some("application/x-protobuf"));
        assert_eq!(request.error, None);
    }
    let traces = receiver.traces();
    assert_eq!(traces.len(), 1);
    assert_well_formed(&traces[0]);
    assert_eq!(traces[0].spans.len() as u64, report.stats.exported);
}

#[test]
fn langfuse_exporter_posts_to_the_otel_route_with_basic_auth_and_ingestion_header() {
    let receiver = OtlpReceiver::http().unwrap();
    let config = TracingConfig::builder()
        .scheduled_delay(Duration::from_millis(50))
        .from_vars([
            ("LANGFUSE_PUBLIC_KEY", "pk-lf-test"),
            ("LANGFUSE_SECRET_KEY", "sk-lf-test"),
            ("LANGFUSE_HOST", receiver.endpoint().as_str()),
        ])
        .unwrap();
    assert_eq!(config.exporters(), [ExporterKind::Langfuse]);
    assert!(!format!("{config:?}").contains("sk-lf-test"), "Debug never shows the secret");

    let (result, report) = traced(config, || pipeline().run(&store("langfuse")));
    result.unwrap();
    assert!(report.completed, "{report}");
    receiver.wait_for_spans(report.stats.exported as usize, WAIT);

    let requests = receiver.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(request.path, "/api/public/otel/v1/traces");
        // base64("pk-lf-test:sk-lf-test")
        assert_eq!(
            request.headers.get("authorization").map(String::as_str),
            Some("Basic cGstbGYtdGVzdDpzay1sZi10ZXN0")
        );
        assert_eq!(request.headers.get("x-langfuse-ingestion-version").map(String::as_str), Some("4"));
        assert_eq!(request.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(request.content_type.as_deref(), Some("application/x-protobuf"));
    }
    let traces = receiver.traces();
    assert_eq!(traces.len(), 1);
    assert_well_formed(&traces[0]);
}

/// The graph is drawn once per flow and reused by later runs, until the
/// flow changes: a node added between two runs is in the second graph.
#[test]
fn a_flow_changed_between_runs_carries_its_new_graph() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let config = otlp(&receiver, Protocol::Grpc).build().unwrap();
    let (graphs, report) = traced(config, || {
        let mut flow = Flow::named("Growing");
        let ask = flow.start(Ask);
        flow.run(&store("first")).unwrap();
        let before = flow.to_mermaid();
        flow.run(&store("again")).unwrap();
        let extra = flow.add_named("Extra", Ask);
        flow.connect_on(ask, "checked", extra);
        flow.run(&store("grown")).unwrap();
        (before, flow.to_mermaid())
    });
    let (before, after) = graphs;
    assert_ne!(before, after);
    assert!(after.contains("Extra"), "{after}");
    receiver.wait_for_spans(report.stats.exported as usize, WAIT);
    let mut recorded: Vec<(String, String)> = receiver
        .traces()
        .iter()
        .map(|trace| {
            let root = trace.roots()[0];
            let input = root.attr_str("langfuse.observation.input").unwrap_or_default().to_owned();
            (input, root.attr_str("pocketflow.flow.graph").unwrap_or_default().to_owned())
        })
        .collect();
    recorded.sort();
    let graph_of = |question: &str| {
        recorded.iter().find(|(input, _)| input.contains(question)).map(|(_, graph)| graph.as_str()).unwrap()
    };
    assert_eq!(graph_of("first"), before);
    assert_eq!(graph_of("again"), before);
    assert_eq!(graph_of("grown"), after);
}

/// A run that reports (`run_report`) ends with its graph annotated: counts
/// per step, the failed step and flow red, what never ran grey.
#[test]
fn a_failed_reporting_run_leaves_its_annotated_graph_on_the_root() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let config = otlp(&receiver, Protocol::Grpc).build().unwrap();
    let (result, report) = traced(config, || {
        let mut flow = Flow::named("Doomed");
        let ask = flow.start(Ask);
        let broken = flow.add(Broken);
        let after = flow.add_named("After", Ask);
        flow.link(ask.on("checked") >> broken >> after);
        flow.run_report(&store("fail"))
    });
    assert!(result.is_err());
    receiver.wait_for_spans(report.stats.exported as usize, WAIT);
    let traces = receiver.traces();
    let root = traces[0].roots()[0];
    let graph = root.attr_str("pocketflow.flow.graph").expect("the root's graph");
    assert_eq!(root.attr_str("langfuse.observation.metadata.graph"), Some(graph));
    assert!(graph.starts_with("flowchart TD\n"), "{graph}");
    assert!(graph.contains(r#"flow_0["Ask<br/>1 run · "#), "{graph}");
    assert!(graph.contains(r#"flow_2["After<br/>not run"]"#), "{graph}");
    assert!(graph.contains("class flow,flow_1 failed\n"), "{graph}");
    assert!(graph.contains("class flow_2 notRun\n"), "{graph}");
}

#[test]
fn a_failed_node_marks_its_spans_and_the_flow_as_errors() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let config = otlp(&receiver, Protocol::Grpc).build().unwrap();
    let (result, report) = traced(config, || {
        let mut flow = Flow::named("Doomed");
        let ask = flow.start(Ask);
        let broken = flow.add(Broken);
        flow.link(ask.on("checked") >> broken);
        flow.run(&store("fail"))
    });
    assert!(result.is_err());
    receiver.wait_for_spans(report.stats.exported as usize, WAIT);
    let traces = receiver.traces();
    assert_eq!(traces.len(), 1);
    let trace = &traces[0];
    assert_well_formed(trace);
    let broken = span(trace, "Broken");
    let exec = trace
        .children(&broken.span_id)
        .into_iter()
        .find(|s| s.attr_str("pocketflow.span") == Some("exec"))
        .expect("Broken's exec");
    for span in [span(trace, "Doomed"), broken, exec] {
        assert_eq!(span.status.code, StatusCode::Error, "{}", span.name);
        assert!(span.status.message.contains("disk on fire"), "{}: {}", span.name, span.status.message);
        assert!(span.events.iter().any(|e| e.name == "exception"), "{} has an exception event", span.name);
    }
    let reported: Vec<&str> = trace
        .spans
        .iter()
        .filter(|s| s.events.iter().any(|e| e.name == "pocketflow.error"))
        .map(|s| s.name.as_str())
        .collect();
    // The default fallback re-raises: that is where the failure surfaces.
    assert_eq!(reported, ["Broken.fallback"], "the failure is reported once, where it happened");
    assert_eq!(span(trace, "Ask").status.code, StatusCode::Unset);
}

#[test]
fn switches_leave_out_inputs_outputs_and_phases() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let config = otlp(&receiver, Protocol::Grpc)
        .trace_inputs(false)
        .trace_outputs(false)
        .trace_prep(false)
        .trace_post(false)
        .trace_async_lifecycle(false)
        .build()
        .unwrap();
    let (result, report) = traced(config, || pipeline().run(&store("quiet")));
    result.unwrap();
    receiver.wait_for_spans(report.stats.exported as usize, WAIT);
    let trace = &receiver.traces()[0];
    assert_eq!(trace.roots().len(), 1);
    assert!(trace.orphans().is_empty(), "{}", trace.tree());
    let phases: BTreeSet<&str> = trace.spans.iter().filter_map(|s| s.attr_str("pocketflow.span")).collect();
    // `event`: the retry's event observation, which no switch here is about.
    assert_eq!(phases, BTreeSet::from(["flow", "node", "exec", "event"]), "{}", trace.tree());
    assert_eq!(children_names(trace, span(trace, "Ask")), ["Ask.exec"]);
    for span in &trace.spans {
        for key in ["langfuse.observation.input", "langfuse.observation.output", "input.value", "output.value"] {
            assert!(span.attr(key).is_none(), "{} has {key}", span.name);
        }
        assert!(span.events.iter().all(|e| e.name != "pocketflow.lifecycle"));
    }
}

#[test]
fn sensitive_keys_are_redacted_and_big_payloads_cut() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let config = otlp(&receiver, Protocol::Grpc).max_payload_bytes(200).build().unwrap();
    let (result, report) = traced(config, || {
        let shared = store("secret stuff");
        shared.set("api_key", "sk-very-secret").unwrap();
        shared.set("Password", "hunter2").unwrap();
        let flow = pipeline();
        let first = flow.run(&shared);
        shared.set("essay", "x".repeat(1000)).unwrap();
        first.and(flow.run(&shared))
    });
    result.unwrap();
    receiver.wait_for_spans(report.stats.exported as usize, WAIT);
    let spans = receiver.spans();
    for span in &spans {
        for (key, value) in &span.attributes {
            let text = value.as_str().unwrap_or_default();
            assert!(!text.contains("sk-very-secret") && !text.contains("hunter2"), "{} {key} leaks: {text}", span.name);
            assert!(text.len() <= 200 + 64, "{} {key} is {} bytes", span.name, text.len());
        }
    }
    let inputs: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_none())
        .filter_map(|s| s.attr_str("langfuse.observation.input"))
        .collect();
    assert_eq!(inputs.len(), 2);
    let (cut, whole): (Vec<&str>, Vec<&str>) = inputs.into_iter().partition(|input| input.contains("essay"));
    let value: serde_json::Value = serde_json::from_str(whole[0]).expect("a redacted payload stays JSON");
    assert_eq!(value["api_key"], "[REDACTED]");
    assert_eq!(value["Password"], "[REDACTED]");
    assert_eq!(value["question"], "secret stuff");
    assert!(cut[0].contains("truncated") && cut[0].contains("\"api_key\":\"[REDACTED]\""), "{}", cut[0]);
}

#[test]
fn generations_carry_gen_ai_attributes_and_configured_types_apply() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let config = otlp(&receiver, Protocol::Grpc)
        .observation_type("Assistant", ObservationType::Agent)
        .observation_type("CallModel", ObservationType::Tool)
        .build()
        .unwrap();
    let (result, report) = traced(config, || {
        let mut flow = Flow::named("Assistant");
        flow.start(CallModel);
        flow.run(&SharedStore::new())
    });
    result.unwrap();
    receiver.wait_for_spans(report.stats.exported as usize, WAIT);
    let trace = &receiver.traces()[0];
    assert_well_formed(trace);
    assert_eq!(span(trace, "Assistant").attr_str("langfuse.observation.type"), Some("agent"));
    assert_eq!(span(trace, "Assistant").attr_str("openinference.span.kind"), Some("AGENT"));
    assert_eq!(span(trace, "CallModel").attr_str("langfuse.observation.type"), Some("tool"));
    let generation = span(trace, "chat gpt-4o-mini");
    assert_eq!(trace.parent(generation).map(|p| p.name.as_str()), Some("CallModel.exec"));
    assert_eq!(generation.attr_str("langfuse.observation.type"), Some("generation"));
    assert_eq!(generation.attr_str("openinference.span.kind"), Some("LLM"));
    assert_eq!(generation.attr_str("gen_ai.operation.name"), Some("chat"));
    assert_eq!(generation.attr_str("gen_ai.request.model"), Some("gpt-4o-mini"));
    assert_eq!(generation.attr_str("gen_ai.provider.name"), Some("openai"));
    assert_eq!(generation.attr("gen_ai.usage.input_tokens").and_then(|v| v.as_i64()), Some(12));
    assert_eq!(generation.attr("gen_ai.usage.output_tokens").and_then(|v| v.as_i64()), Some(3));
    assert_eq!(generation.attr_str("llm.model_name"), Some("gpt-4o-mini"));
    assert_eq!(generation.attr_str("langfuse.observation.output"), Some("\"hi there\""));
}

fn lookup_flow() -> Flow {
    let mut flow = Flow::named("Lookups");
    let plan = flow.start(Planner);
    let lookup = flow.add(Lookup);
    flow.link(plan >> lookup);
    flow
}

#[test]
fn nodes_declare_their_type_and_the_config_overrides_it() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let config = otlp(&receiver, Protocol::Grpc).observation_type("Planner", ObservationType::Chain).build().unwrap();
    let (result, report) = traced(config, || lookup_flow().run(&SharedStore::new()));
    result.unwrap();
    receiver.wait_for_spans(report.stats.exported as usize, WAIT);
    let trace = &receiver.traces()[0];
    assert_well_formed(trace);
    assert_eq!(span(trace, "Lookup").attr_str("langfuse.observation.type"), Some("tool"));
    assert_eq!(span(trace, "Lookup").attr_str("openinference.span.kind"), Some("TOOL"));
    // Declared an agent, configured a chain: the config wins.
    assert_eq!(span(trace, "Planner").attr_str("langfuse.observation.type"), Some("chain"));
    assert!(trace.spans.iter().all(|s| s.attr("observation").is_none()));

    let generation = span(trace, "chat gpt-4o-mini");
    assert_eq!(generation.attr_str("langfuse.observation.model.name"), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(generation.attr_str("llm.model_name"), Some("gpt-4o-mini-2024-07-18"));
    let usage: serde_json::Value =
        serde_json::from_str(generation.attr_str("langfuse.observation.usage_details").unwrap()).unwrap();
    assert_eq!(usage, serde_json::json!({"input": 1000, "input_cached_tokens": 1000, "output": 100, "total": 2100}));
    assert_eq!(generation.attr("llm.token_count.prompt_details.cache_read").and_then(|v| v.as_i64()), Some(1000));
    let cost: serde_json::Value =
        serde_json::from_str(generation.attr_str("langfuse.observation.cost_details").unwrap()).unwrap();
    assert!((cost["total"].as_f64().unwrap() - 0.00036).abs() < 1e-12, "{cost}");
    assert_eq!(generation.attr_str("llm.input_messages.0.message.content"), Some("be brief"));
    let prompt = generation.attr_str("llm.input_messages.1.message.content").unwrap();
    assert!(!prompt.contains("sk-very-secret") && prompt.contains("weather"), "redacted like any payload: {prompt}");
    assert_eq!(generation.attr_str("llm.output_messages.0.message.content"), Some("sunny"));
}

#[test]
fn with_inputs_and_outputs_off_no_messages_are_exported() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let config = otlp(&receiver, Protocol::Grpc).trace_inputs(false).trace_outputs(false).build().unwrap();
    let (result, report) = traced(config, || lookup_flow().run(&SharedStore::new()));
    result.unwrap();
    receiver.wait_for_spans(report.stats.exported as usize, WAIT);
    let trace = &receiver.traces()[0];
    let generation = span(trace, "chat gpt-4o-mini");
    assert!(generation.attr("langfuse.observation.usage_details").is_some(), "usage is not a payload");
    for key in generation.attributes.keys() {
        assert!(!key.contains("_messages.") && !key.ends_with("put.value"), "{key} exported with payloads off");
    }
}

#[test]
fn wiring_warnings_raised_before_any_run_land_in_no_trace() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let config = otlp(&receiver, Protocol::Grpc).build().unwrap();
    let (result, report) = traced(config, || {
        // Wired (and warned about) first, run last: another flow runs in
        // between and must not be handed the warning.
        let mut rewired = Flow::named("Rewired");
        let ask = rewired.start(Ask);
        let first = rewired.add(Flaky);
        let second = rewired.add(Flaky);
        rewired.link(ask.on("checked") >> first);
        rewired.link(ask.on("checked") >> second);
        assert_eq!(rewired.warnings().len(), 1, "the warning stays readable from the flow");
        pipeline().run(&store("in between")).unwrap();
        rewired.run(&store("rewired"))
    });
    result.unwrap();
    receiver.wait_for_spans(report.stats.exported as usize, WAIT);
    let traces = receiver.traces();
    assert_eq!(traces.len(), 2);
    for trace in &traces {
        for span in &trace.spans {
            assert!(span.events.iter().all(|e| e.name != "pocketflow.warning"), "{}:\n{}", span.name, trace.tree());
        }
    }
}

#[test]
fn two_layers_on_one_registry_each_export_the_whole_trace() {
    let grpc = OtlpReceiver::grpc().unwrap();
    let http = OtlpReceiver::http().unwrap();
    let (grpc_layer, grpc_guard) = otlp(&grpc, Protocol::Grpc).build().unwrap().layer().unwrap();
    let (http_layer, http_guard) =
        otlp(&http, Protocol::HttpProtobuf).session_id("second").build().unwrap().layer().unwrap();
    let subscriber = tracing_subscriber::registry().with(grpc_layer).with(http_layer);
    tracing::subscriber::with_default(subscriber, || pipeline().run(&store("twice"))).unwrap();
    let (first, second) = (grpc_guard.shutdown(), http_guard.shutdown());
    assert_eq!(first.stats.exported, second.stats.exported);
    for (receiver, report) in [(&grpc, first), (&http, second)] {
        receiver.wait_for_spans(report.stats.exported as usize, WAIT);
        let traces = receiver.traces();
        assert_eq!(traces.len(), 1);
        assert_well_formed(&traces[0]);
    }
    assert!(grpc.spans().iter().all(|s| s.attr("langfuse.session.id").is_none()));
    assert!(http.spans().iter().all(|s| s.attr_str("langfuse.session.id") == Some("second")));
    let ids = |receiver: &OtlpReceiver| receiver.spans().into_iter().map(|s| s.trace_id).collect::<BTreeSet<_>>();
    assert_ne!(ids(&grpc), ids(&http), "each layer has its own ids");
}

#[test]
fn console_exporter_prints_each_trace_as_a_tree() {
    let buffer = common::Printed::default();
    let (layer, guard) =
        TracingConfig::builder().build().unwrap().layer_with_exporter(ConsoleExporter::new(buffer.clone())).unwrap();
    let (result, report) = run_with(layer, guard, || pipeline().run(&store("console")));
    result.unwrap();
    assert!(report.completed);
    let text = buffer.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("trace ") && lines[0].contains("Pipeline"), "{text}");
    assert!(lines[1].starts_with("Pipeline [chain]"), "{text}");
    assert!(lines[2].starts_with("├─ Ask [span]") && lines[2].contains("→ \"checked\""), "{text}");
    assert!(text.contains("│  ├─ exec #0") && text.contains("✗ model timed out"), "{text}");
    assert!(text.contains("↻ retry: attempt 1 of 3 failed"), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("└─ Flaky [span]")), "{text}");
    assert!(!text.contains("lifecycle") && !text.contains("running"), "lifecycle hidden by default:\n{text}");
}

#[test]
fn an_endless_schedule_delay_still_exports_at_shutdown() {
    let receiver = OtlpReceiver::grpc().unwrap();
    let config = otlp(&receiver, Protocol::Grpc).scheduled_delay(Duration::MAX).build().unwrap();
    let (result, report) = traced(config, || pipeline().run(&store("patient")));
    result.unwrap();
    assert!(report.completed, "{report}");
    assert!(report.stats.exported > 0 && report.stats.dropped == 0, "{report}");
    assert_eq!(receiver.wait_for_spans(report.stats.exported as usize, WAIT).len() as u64, report.stats.exported);
}

#[test]
fn the_none_exporter_records_nothing_and_reports_nothing_lost() {
    let config = TracingConfig::builder().from_vars([("POCKETFLOW_TRACING_EXPORTER", "none")]).unwrap();
    assert_eq!(config.exporters(), [ExporterKind::None]);
    let (result, report) = traced(config, || pipeline().run(&store("silent")));
    result.unwrap();
    assert!(report.completed);
    assert_eq!((report.stats.exported, report.stats.dropped), (0, 0), "{report}");
}

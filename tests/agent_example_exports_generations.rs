//! The agent example, run as a user runs it, exports its model calls as
//! generations Langfuse and Phoenix both read: model, usage and cost
//! details, OpenInference's `llm.*` and its messages; and its nodes with the
//! observation types they declare (an agent, a tool, a chain).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use pocketflow_test_support::otlp::{OtlpReceiver, ReceivedSpan, ReceivedTrace};
use serde_json::Value;

fn agent_trace() -> ReceivedTrace {
    let receiver = OtlpReceiver::grpc().unwrap();
    let endpoint = receiver.endpoint();
    let output = common::run_example("agent", &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("answer: Based on my research"), "{stdout}");
    receiver.wait_for_spans(usize::MAX, Duration::from_millis(200));
    let traces = receiver.traces();
    assert_eq!(traces.len(), 1, "one trace per run");
    traces.into_iter().next().unwrap()
}

fn json(span: &ReceivedSpan, key: &str) -> Value {
    let text = span.attr_str(key).unwrap_or_else(|| panic!("{}: no {key}", span.name));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{}: {key} is not JSON ({e}): {text}", span.name))
}

fn number(span: &ReceivedSpan, key: &str) -> f64 {
    match span.attr(key) {
        Some(pocketflow_test_support::otlp::AttrValue::Int(v)) => *v as f64,
        Some(pocketflow_test_support::otlp::AttrValue::Double(v)) => *v,
        other => panic!("{}: {key} is {other:?}", span.name),
    }
}

fn of_type<'t>(trace: &'t ReceivedTrace, observation: &str) -> Vec<&'t ReceivedSpan> {
    trace.spans.iter().filter(|s| s.attr_str("langfuse.observation.type") == Some(observation)).collect()
}

#[test]
fn every_model_call_is_a_generation_with_model_usage_cost_and_messages() {
    let trace = agent_trace();
    let generations = of_type(&trace, "generation");
    // Three decisions (search, search, answer) and the answer.
    assert_eq!(generations.len(), 4, "{}", trace.tree());
    let mut cached_seen = false;
    for span in generations {
        assert_eq!(span.name, "chat stand-in-chat-1");
        assert_eq!(span.attr_str("openinference.span.kind"), Some("LLM"));
        assert_eq!(span.attr_str("langfuse.observation.model.name"), Some("stand-in-chat-1"));
        assert_eq!(span.attr_str("llm.model_name"), Some("stand-in-chat-1"));
        assert_eq!(span.attr_str("gen_ai.provider.name"), Some("local"));

        let usage = json(span, "langfuse.observation.usage_details");
        let prompt = number(span, "gen_ai.usage.input_tokens");
        let completion = number(span, "gen_ai.usage.output_tokens");
        assert!(prompt > 0.0 && completion > 0.0, "{}: {usage}", span.name);
        assert_eq!(number(span, "llm.token_count.prompt"), prompt);
        assert_eq!(number(span, "llm.token_count.completion"), completion);
        assert_eq!(number(span, "llm.token_count.total"), prompt + completion);
        let cached = usage["input_cached_tokens"].as_f64().unwrap_or(0.0);
        cached_seen |= cached > 0.0;
        assert_eq!(usage["input"].as_f64().unwrap() + cached, prompt, "{usage}");
        assert_eq!(usage["output"].as_f64(), Some(completion), "{usage}");
        assert_eq!(usage["total"].as_f64(), Some(prompt + completion), "{usage}");

        // The price table: 0.15 USD per million input tokens (0.075 cached),
        // 0.60 per million output tokens.
        let cost = json(span, "langfuse.observation.cost_details");
        let input_usd = ((prompt - cached) * 0.15 + cached * 0.075) / 1e6;
        let output_usd = completion * 0.60 / 1e6;
        let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
        assert!(close(cost["input"].as_f64().unwrap(), input_usd), "{cost}");
        assert!(close(cost["output"].as_f64().unwrap(), output_usd), "{cost}");
        assert!(close(cost["total"].as_f64().unwrap(), input_usd + output_usd), "{cost}");
        assert!(close(number(span, "llm.cost.prompt"), input_usd));
        assert!(close(number(span, "llm.cost.completion"), output_usd));
        assert!(close(number(span, "llm.cost.total"), input_usd + output_usd));

        assert_eq!(span.attr_str("llm.input_messages.0.message.role"), Some("system"));
        assert_eq!(span.attr_str("llm.input_messages.1.message.role"), Some("user"));
        let prompt_text = span.attr_str("llm.input_messages.1.message.content").unwrap();
        assert!(prompt_text.contains("## QUESTION\nWho won the 2024 Nobel Prize"), "{prompt_text}");
        assert_eq!(span.attr_str("llm.output_messages.0.message.role"), Some("assistant"));
        let reply = span.attr_str("llm.output_messages.0.message.content").unwrap();
        assert!(reply.starts_with("action: ") || reply.starts_with("Based on my research"), "{reply}");
        assert!(span.attr("llm.input_messages.2.message.role").is_none());

        // Langfuse's input and output: the same messages, as JSON.
        let input = json(span, "langfuse.observation.input");
        assert_eq!(input[1]["content"].as_str(), Some(prompt_text));
        let output = json(span, "langfuse.observation.output");
        assert_eq!(output[0]["content"].as_str(), Some(reply));
    }
    assert!(cached_seen, "the stand-in's prompt cache shows as cached input tokens");
}

#[test]
fn nodes_carry_the_observation_types_they_declare() {
    let trace = agent_trace();
    let names = |observation: &str| -> Vec<String> {
        of_type(&trace, observation)
            .into_iter()
            .filter(|s| s.attr_str("pocketflow.span") == Some("node"))
            .map(|s| s.name.clone())
            .collect()
    };
    assert_eq!(names("agent"), ["DecideAction"; 3], "{}", trace.tree());
    assert_eq!(names("tool"), ["SearchWeb"; 2], "{}", trace.tree());
    assert_eq!(names("chain"), ["AnswerQuestion"], "{}", trace.tree());
    let kinds: Vec<(&str, &str)> = trace
        .spans
        .iter()
        .filter(|s| s.attr_str("pocketflow.span") == Some("node"))
        .map(|s| (s.name.as_str(), s.attr_str("openinference.span.kind").unwrap()))
        .collect();
    for (name, kind) in kinds {
        let expected = match name {
            "DecideAction" => "AGENT",
            "SearchWeb" => "TOOL",
            _ => "CHAIN",
        };
        assert_eq!(kind, expected, "{name}");
    }
    // The field is mapped, not copied.
    assert!(trace.spans.iter().all(|s| s.attr("observation").is_none()));
}

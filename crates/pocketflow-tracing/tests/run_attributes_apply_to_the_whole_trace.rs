//! A run's own session, user, tags and metadata, recorded on its root
//! `flow` (or `composition`) span when the span is created, apply to every
//! span of its trace and beat the config's; on a nested flow they stay
//! with that flow, as observation metadata.
//!
//! The spans are made by hand, with the fields the engine records
//! (`docs/span-schema.md`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{export, span_named, strings};
use pocketflow_test_support::otlp::AttrValue;

fn configured(builder: pocketflow_tracing::TracingConfigBuilder) -> pocketflow_tracing::TracingConfigBuilder {
    builder
        .session_id("config-session")
        .user_id("config-user")
        .tags(vec!["base".to_owned(), "a".to_owned()])
        .metadata_entry("team", "core")
        .metadata_entry("k", "from-config")
}

#[test]
fn a_root_runs_options_reach_every_span_of_its_trace_and_beat_the_config() {
    let ((), traces) = export(configured, || {
        let flow = tracing::info_span!(
            target: "pocketflow",
            "flow",
            name = "Main",
            kind = "AsyncFlow",
            session_id = "s1",
            user_id = "u1",
            tags = "[\"a\",\"b\"]",
            metadata = "{\"k\":1,\"env\":\"x\",\"nested\":{\"deep\":true}}",
        );
        let _flow = flow.enter();
        let node = tracing::info_span!(target: "pocketflow", "node", name = "Work", kind = "AsyncNode");
        let _node = node.enter();
        let exec = tracing::info_span!(target: "pocketflow", "exec", attempt = 0);
        let _exec = exec.enter();
        tracing::info_span!("user_function").in_scope(|| {});
    });
    assert_eq!(traces.len(), 1);
    let trace = &traces[0];
    assert_eq!(trace.spans.len(), 4, "{}", trace.tree());
    for span in &trace.spans {
        let tree = trace.tree();
        assert_eq!(span.attr_str("langfuse.session.id"), Some("s1"), "{} in\n{tree}", span.name);
        assert_eq!(span.attr_str("session.id"), Some("s1"), "{}", span.name);
        assert_eq!(span.attr_str("langfuse.user.id"), Some("u1"), "{}", span.name);
        assert_eq!(span.attr_str("user.id"), Some("u1"), "{}", span.name);
        assert_eq!(strings(span, "langfuse.trace.tags"), ["base", "a", "b"], "merged, deduped: {}", span.name);
        assert_eq!(span.attr("langfuse.trace.metadata.k"), Some(&AttrValue::Int(1)), "the run's wins: {}", span.name);
        assert_eq!(span.attr_str("langfuse.trace.metadata.team"), Some("core"), "{}", span.name);
        assert_eq!(span.attr_str("langfuse.trace.metadata.env"), Some("x"), "{}", span.name);
        assert_eq!(span.attr_str("langfuse.trace.metadata.nested"), Some("{\"deep\":true}"), "{}", span.name);
        assert_eq!(span.attr_str("langfuse.trace.name"), Some("Main"));
    }
    let root = span_named(&traces, "Main");
    for raw in ["session_id", "user_id", "tags", "metadata"] {
        assert!(root.attr(raw).is_none(), "{raw} is not left as a raw attribute");
    }
}

#[test]
fn a_run_without_options_keeps_the_configs_trace_attributes() {
    let ((), traces) = export(configured, || {
        tracing::info_span!(target: "pocketflow", "flow", name = "Plain", kind = "Flow", session_id = tracing::field::Empty)
            .in_scope(|| tracing::info_span!(target: "pocketflow", "node", name = "N", kind = "Node").in_scope(|| {}));
    });
    for span in &traces[0].spans {
        assert_eq!(span.attr_str("langfuse.session.id"), Some("config-session"), "{}", span.name);
        assert_eq!(span.attr_str("langfuse.user.id"), Some("config-user"), "{}", span.name);
        assert_eq!(strings(span, "langfuse.trace.tags"), ["base", "a"]);
        assert_eq!(span.attr_str("langfuse.trace.metadata.k"), Some("from-config"));
    }
}

#[test]
fn each_root_keeps_its_own_options_and_siblings_do_not_share_them() {
    let ((), traces) = export(
        |b| b,
        || {
            for (name, session) in [("First", "s-1"), ("Second", "s-2")] {
                tracing::info_span!(target: "pocketflow", "flow", name, kind = "Flow", session_id = session).in_scope(
                    || tracing::info_span!(target: "pocketflow", "node", name = "N", kind = "Node").in_scope(|| {}),
                );
            }
            tracing::info_span!(target: "pocketflow", "flow", name = "Third", kind = "Flow").in_scope(|| {});
        },
    );
    assert_eq!(traces.len(), 3);
    for trace in &traces {
        let root = trace.roots()[0];
        let expected = match root.name.as_str() {
            "First" => Some("s-1"),
            "Second" => Some("s-2"),
            _ => None,
        };
        for span in &trace.spans {
            assert_eq!(span.attr_str("langfuse.session.id"), expected, "{} in {}", span.name, root.name);
        }
    }
}

#[test]
fn a_nested_flows_options_become_observation_metadata_of_that_flow() {
    let ((), traces) = export(
        |b| b,
        || {
            let outer = tracing::info_span!(target: "pocketflow", "flow", name = "Outer", kind = "Flow");
            let _outer = outer.enter();
            tracing::info_span!(
                target: "pocketflow",
                "flow",
                name = "Inner",
                kind = "Flow",
                session_id = "inner-session",
                user_id = "inner-user",
                tags = "[\"t\"]",
                metadata = "{\"step\":2,\"label\":\"x\"}",
            )
            .in_scope(|| tracing::info_span!(target: "pocketflow", "node", name = "N", kind = "Node").in_scope(|| {}));
        },
    );
    let inner = span_named(&traces, "Inner");
    assert_eq!(inner.attr_str("langfuse.observation.metadata.session_id"), Some("inner-session"));
    assert_eq!(inner.attr_str("langfuse.observation.metadata.user_id"), Some("inner-user"));
    assert_eq!(inner.attr_str("langfuse.observation.metadata.tags"), Some("[\"t\"]"));
    assert_eq!(inner.attr("langfuse.observation.metadata.step"), Some(&AttrValue::Int(2)));
    assert_eq!(inner.attr_str("langfuse.observation.metadata.label"), Some("x"));
    for span in traces.iter().flat_map(|t| &t.spans) {
        assert!(span.attr("langfuse.session.id").is_none(), "{} must not get the nested session", span.name);
        assert!(span.attr("langfuse.trace.tags").is_none(), "{}", span.name);
    }
}

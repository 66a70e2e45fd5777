//! A run's own session, user, tags and metadata, recorded on its root
//! `flow` (or `composition`) span when the span is created, apply to every
//! span of its trace and beat the config's; on a nested flow they stay
//! with that flow, as observation metadata.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use pocketflow::{BoxError, Ctx, Flow, Node, RunOptions, SharedStore, TraceFlow};
use pocketflow_test_support::otlp::AttrValue;
use serde_json::json;

use common::{Step, all_spans, export, span_named, strings};

fn configured(builder: pocketflow_tracing::TracingConfigBuilder) -> pocketflow_tracing::TracingConfigBuilder {
    builder
        .session_id("config-session")
        .user_id("config-user")
        .tags(vec!["base".to_owned(), "a".to_owned()])
        .metadata_entry("team", "core")
        .metadata_entry("k", "from-config")
}

/// `Work`: calls a user's instrumented function from `exec`.
struct Work;

impl Node for Work {
    type Prep = ();
    type Exec = ();

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        tracing::info_span!("user_function").in_scope(|| {});
        Ok(())
    }
}

/// A flow named `name` with one node `N`.
fn one_step_flow(name: &'static str) -> Flow {
    let mut flow = Flow::named(name);
    flow.start(Step("N"));
    flow
}

#[test]
fn a_root_runs_options_reach_every_span_of_its_trace_and_beat_the_config() {
    let ((), traces) = export(configured, || {
        let mut flow = Flow::named("Main");
        flow.start(Work);
        let options = RunOptions::new()
            .session_id("s1")
            .user_id("u1")
            .tags(["a", "b"])
            .metadata("k", 1)
            .metadata("env", "x")
            .metadata("nested", json!({"deep": true}));
        flow.run_with(&SharedStore::new(), options).unwrap();
    });
    assert_eq!(traces.len(), 1);
    let trace = &traces[0];
    let tree = trace.tree();
    let names: Vec<&str> = trace.spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(trace.spans.len(), 6, "Main, Work, prep, exec, user_function, post:\n{tree}");
    assert!(names.contains(&"user_function"), "{tree}");
    for span in &trace.spans {
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
        assert!(root.attr(&format!("langfuse.observation.metadata.{raw}")).is_none(), "{raw} is the trace's");
    }
}

#[test]
fn a_run_without_options_keeps_the_configs_trace_attributes() {
    let (_, traces) = export(configured, || one_step_flow("Plain").run(&SharedStore::new()).unwrap());
    assert_eq!(traces.len(), 1);
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
                let options = RunOptions::new().session_id(session);
                one_step_flow(name).run_with(&SharedStore::new(), options).unwrap();
            }
            one_step_flow("Third").run(&SharedStore::new()).unwrap();
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
            let inner = one_step_flow("Inner").with_run_options(
                RunOptions::new()
                    .session_id("inner-session")
                    .user_id("inner-user")
                    .tag("t")
                    .metadata("step", 2)
                    .metadata("label", "x"),
            );
            let mut outer = Flow::named("Outer");
            outer.start(inner);
            outer.run(&SharedStore::new()).unwrap();
        },
    );
    assert_eq!(traces.len(), 1);
    let inner = span_named(&traces, "Inner");
    assert_eq!(traces[0].parent(inner).map(|s| s.name.as_str()), Some("Outer"));
    assert_eq!(inner.attr_str("langfuse.observation.metadata.session_id"), Some("inner-session"));
    assert_eq!(inner.attr_str("langfuse.observation.metadata.user_id"), Some("inner-user"));
    assert_eq!(inner.attr_str("langfuse.observation.metadata.tags"), Some("[\"t\"]"));
    assert_eq!(inner.attr("langfuse.observation.metadata.step"), Some(&AttrValue::Int(2)));
    assert_eq!(inner.attr_str("langfuse.observation.metadata.label"), Some("x"));
    for span in all_spans(&traces) {
        assert!(span.attr("langfuse.session.id").is_none(), "{} must not get the nested session", span.name);
        assert!(span.attr("langfuse.user.id").is_none(), "{}", span.name);
        assert!(span.attr("langfuse.trace.tags").is_none(), "{}", span.name);
        assert!(span.attr("langfuse.trace.metadata.step").is_none(), "{}", span.name);
    }
}

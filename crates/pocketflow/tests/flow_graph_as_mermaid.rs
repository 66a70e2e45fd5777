//! A flow's graph as a Mermaid flowchart (`to_mermaid`), plain and
//! annotated with a run's statistics (`to_mermaid_with_stats`), for every
//! flow kind.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pocketflow::{
    Action, AsyncBatchFlow, AsyncFlow, AsyncNode, AsyncParallelBatchFlow, AsyncParallelBatchNode, BatchFlow, BatchNode,
    BoxError, Ctx, Flow, Node, NodeId, Params, SharedStore,
};

/// Returns the action in its `post`; fails in `exec` when built with `fail`.
struct Step {
    action: &'static str,
    fail: bool,
}

fn step(action: &'static str) -> Step {
    Step { action, fail: false }
}

impl Node for Step {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        if self.fail { Err("broken".into()) } else { Ok(()) }
    }
    fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        Ok(self.action.into())
    }
}

struct Double;

impl BatchNode for Double {
    type Item = u32;
    type Output = u32;
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u32>, BoxError> {
        Ok(vec![1, 2, 3])
    }
    fn exec(&self, _: &Ctx<'_>, n: &u32) -> Result<u32, BoxError> {
        Ok(n * 2)
    }
}

struct Fetch;

impl AsyncParallelBatchNode for Fetch {
    type Item = u32;
    type Output = u32;
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<Vec<u32>, BoxError> {
        Ok(vec![1, 2])
    }
    async fn exec(&self, _: &Ctx<'_>, n: &u32) -> Result<u32, BoxError> {
        Ok(*n)
    }
}

struct Wait;

impl AsyncNode for Wait {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

fn start_named(flow: &mut Flow, name: &'static str, node: Step) -> NodeId {
    let id = flow.add_named(name, node);
    flow.set_start(id);
    id
}

fn two_sets(_: &Ctx<'_>, _: &SharedStore) -> Result<Vec<Params>, BoxError> {
    Ok(vec![Params::new().with("k", 1), Params::new().with("k", 2)])
}

/// Load → Check; Check loops back on "retry", goes on to Done on "ok".
fn looping_flow() -> Flow {
    let mut flow = Flow::named("Main");
    let load = start_named(&mut flow, "Load", step("default"));
    let check = flow.add_named("Check", step("ok"));
    let done = flow.add_named("Done", step("default"));
    flow.link(load >> check);
    flow.link(check.on("retry") >> load);
    flow.link(check.on("ok") >> done);
    flow
}

#[test]
fn a_flow_has_one_node_per_step_and_labelled_edges_but_the_default() {
    assert_eq!(
        looping_flow().to_mermaid(),
        r#"flowchart TD
    subgraph flow["Main"]
        flow_start((start)) --> flow_0
        flow_0["Load"]
        flow_1["Check"]
        flow_2["Done"]
        flow_0 --> flow_1
        flow_1 -->|"retry"| flow_0
        flow_1 -->|"ok"| flow_2
    end
"#
    );
}

#[test]
fn nested_flows_are_subgraphs_with_their_own_nodes_and_start() {
    let mut inner = Flow::named("Inner");
    let a = start_named(&mut inner, "A", step("default"));
    let b = inner.add_named("B", step("default"));
    inner.link(a >> b);
    let mut outer = Flow::named("Outer");
    let first = start_named(&mut outer, "First", step("default"));
    let nested = outer.add(inner);
    let last = outer.add_named("Last", step("default"));
    outer.link(first >> nested >> last);
    assert_eq!(
        outer.to_mermaid(),
        r#"flowchart TD
    subgraph flow["Outer"]
        flow_start((start)) --> flow_0
        flow_0["First"]
        subgraph flow_1["Inner"]
            flow_1_start((start)) --> flow_1_0
            flow_1_0["A"]
            flow_1_1["B"]
            flow_1_0 --> flow_1_1
        end
        flow_2["Last"]
        flow_0 --> flow_1
        flow_1 --> flow_2
    end
"#
    );
}

#[test]
fn batch_and_parallel_steps_are_marked_in_every_flow_kind() {
    let mut flow = AsyncFlow::named("Pipeline");
    let double = flow.start(Double);
    let fetch = flow.add(Fetch);
    let wait = flow.add(Wait);
    flow.link(double >> fetch >> wait);
    assert_eq!(
        flow.to_mermaid(),
        r#"flowchart TD
    subgraph flow["Pipeline"]
        flow_start((start)) --> flow_0
        flow_0[["Double<br/>(batch)"]]
        flow_1[["Fetch<br/>(parallel batch)"]]
        flow_2["Wait"]
        flow_0 --> flow_1
        flow_1 --> flow_2
    end
"#
    );

    let one_node = |name: &'static str| {
        let mut flow = AsyncFlow::named(name);
        flow.start(Wait);
        flow
    };
    let batch = AsyncBatchFlow::new(one_node("Each"), two_sets);
    let parallel = AsyncParallelBatchFlow::new(one_node("All"), two_sets);
    let mut sync_inner = Flow::named("Sync");
    sync_inner.start(Double);
    let sync_batch = BatchFlow::new(sync_inner, two_sets);
    for (text, title) in [
        (batch.to_mermaid(), r#"subgraph flow["Each<br/>(batch)"]"#),
        (parallel.to_mermaid(), r#"subgraph flow["All<br/>(parallel batch)"]"#),
        (sync_batch.to_mermaid(), r#"subgraph flow["Sync<br/>(batch)"]"#),
    ] {
        assert!(text.starts_with("flowchart TD\n"), "{text}");
        assert_eq!(text.lines().nth(1).map(str::trim), Some(title), "{text}");
        assert!(text.contains("flow_start((start)) --> flow_0"), "{text}");
    }
    assert!(sync_batch.to_mermaid().contains(r#"flow_0[["Double<br/>(batch)"]]"#));

    // Batch flows nested in a flow are marked subgraphs.
    let mut outer = AsyncFlow::named("Outer");
    outer.start(AsyncParallelBatchFlow::new(one_node("All"), two_sets));
    assert!(outer.to_mermaid().contains(r#"subgraph flow_0["All<br/>(parallel batch)"]"#));
}

#[test]
fn labels_and_actions_are_escaped() {
    let mut flow = Flow::named(r#"Say "hi" [now]"#);
    let a = start_named(&mut flow, "a<b> & c|d; #1 (x) {y}", step("go \"on\""));
    let b = flow.add_named("line\nbreak", step("default"));
    flow.link(a.on("go \"on\"|now") >> b);
    assert_eq!(
        flow.to_mermaid(),
        r#"flowchart TD
    subgraph flow["Say #34;hi#34; #91;now#93;"]
        flow_start((start)) --> flow_0
        flow_0["a#60;b#62; #38; c#124;d#59; #35;1 #40;x#41; #123;y#125;"]
        flow_1["line break"]
        flow_0 -->|"go #34;on#34;#124;now"| flow_1
    end
"#
    );
}

#[test]
fn a_flow_without_a_start_has_no_start_marker() {
    let mut flow = Flow::named("Empty");
    flow.add_named("Alone", step("default"));
    assert_eq!(flow.to_mermaid(), "flowchart TD\n    subgraph flow[\"Empty\"]\n        flow_0[\"Alone\"]\n    end\n");
}

/// Replaces every `<n> ms` (n a decimal) with `T ms`: times vary by run.
fn without_times(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split(" ms").enumerate() {
        if i > 0 {
            out.push_str(" ms");
        }
        let keep = part.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        out.push_str(keep);
        if keep.len() != part.len() {
            out.push('T');
        }
    }
    out
}

#[test]
fn after_a_run_the_graph_shows_counts_and_times_and_greys_what_never_ran() {
    let mut inner = Flow::named("Inner");
    start_named(&mut inner, "Work", step("default"));
    let mut flow = Flow::named("Main");
    let load = start_named(&mut flow, "Load", step("default"));
    let batch = flow.add(Double);
    let nested = flow.add(inner);
    let never = flow.add_named("Never", step("default"));
    flow.link(load >> batch >> nested);
    flow.link(nested.on("unused") >> never);

    let report = flow.run_report(&SharedStore::new()).unwrap();
    assert_eq!(
        without_times(&flow.to_mermaid_with_stats(&report.stats)),
        r#"flowchart TD
    subgraph flow["Main<br/>1 run · T ms"]
        flow_start((start)) --> flow_0
        flow_0["Load<br/>1 run · T ms"]
        flow_1[["Double<br/>(batch)<br/>1 run · T ms<br/>3 items"]]
        subgraph flow_2["Inner<br/>1 run · T ms"]
            flow_2_start((start)) --> flow_2_0
            flow_2_0["Work<br/>1 run · T ms"]
        end
        flow_3["Never<br/>not run"]
        flow_0 --> flow_1
        flow_1 --> flow_2
        flow_2 -->|"unused"| flow_3
    end
classDef failed fill:#fdd,stroke:#c00,stroke-width:2px,color:#600
classDef notRun fill:#eee,stroke:#bbb,stroke-dasharray:3 3,color:#999
class flow_3 notRun
"#
    );
    // Statistics of another flow match nothing here: every step is grey.
    let text = flow.to_mermaid_with_stats(&pocketflow::RunStats::default());
    assert!(text.contains("class flow,flow_0,flow_1,flow_2,flow_2_0,flow_3 notRun"), "{text}");
}

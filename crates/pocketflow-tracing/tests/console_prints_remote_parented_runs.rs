//! The console exporter prints a trace when its local root finishes: a
//! span without a parent, or, for a run that continues a caller's
//! `traceparent`, the run's outermost span. Such a run is printed when it
//! ends (here: at a flush), not held until shutdown; and two runs that
//! continue the same remote trace are printed as two trees, each when it
//! ends.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::borrow::Cow;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender};

use pocketflow::{Action, BoxError, Ctx, Flow, Node, RunOptions, SharedStore, TraceParent};
use pocketflow_tracing::{ConsoleExporter, TracingConfig};
use tracing_subscriber::layer::SubscriberExt as _;

use common::{NODES, Printed, store, two_step_flow};

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// How the tests read what the console printed.
trait PrintedLines {
    fn span_lines(&self) -> Vec<String>;
    fn headers(&self) -> Vec<String>;
}

impl PrintedLines for Printed {
    /// The lines of spans, in order: not the headers, not the events
    /// (`⇢ context continued: …`).
    fn span_lines(&self) -> Vec<String> {
        let text = self.text();
        let is_span = |line: &&str| !line.starts_with("trace ") && line.contains(" ms") && !line.contains('⇢');
        text.lines().filter(is_span).map(str::to_owned).collect()
    }

    /// The header lines, one per printed tree.
    fn headers(&self) -> Vec<String> {
        self.text().lines().filter(|line| line.starts_with("trace ")).map(str::to_owned).collect()
    }
}

fn caller() -> RunOptions {
    RunOptions::new().parent(CALLER.parse::<TraceParent>().unwrap())
}

fn console() -> (Printed, tracing::Dispatch, pocketflow_tracing::TracingGuard) {
    // Each test's dispatcher is its thread's only: see the function's docs.
    pocketflow_test_support::keep_interest_dynamic();
    let printed = Printed::default();
    let config = TracingConfig::builder().build().unwrap();
    let (layer, guard) = config.layer_with_exporter(ConsoleExporter::new(printed.clone())).unwrap();
    (printed, tracing::Dispatch::new(tracing_subscriber::registry().with(layer)), guard)
}

#[test]
fn a_run_continuing_a_remote_parent_is_printed_when_it_ends_not_at_shutdown() {
    let (printed, dispatch, guard) = console();
    tracing::dispatcher::with_default(&dispatch, || {
        two_step_flow("Continued").run_with(&store("m-1"), caller()).unwrap();
    });
    assert!(guard.flush());
    let text = printed.text();
    assert_eq!(printed.headers().len(), 1, "printed once the run ended, before shutdown:\n{text}");
    let header = &printed.headers()[0];
    assert!(header.starts_with("trace 4bf92f3577b34da6a3ce929d0e0e4736 · Continued ·"), "{header}");
    assert!(header.ends_with("(continues remote span 00f067aa0ba902b7)"), "{header}");
    for node in NODES {
        assert!(text.contains(&format!("{node} [span]")), "{node} in\n{text}");
    }
    assert_eq!(printed.span_lines().len(), common::SPANS_PER_RUN, "one line per span:\n{text}");

    let report = guard.shutdown();
    assert!(report.completed, "{report}");
    assert_eq!(printed.text(), text, "nothing was left for shutdown");
}

/// A node whose `exec` says it has started, then waits to be released.
struct Held {
    started: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

impl Node for Held {
    type Prep = ();
    type Exec = ();

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("Held")
    }

    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    fn exec(&self, _: &Ctx<'_>, (): &()) -> Result<(), BoxError> {
        self.started.lock().unwrap().send(())?;
        self.release.lock().unwrap().recv()?;
        Ok(())
    }

    fn post(&self, _: &Ctx<'_>, _: &SharedStore, (): (), (): ()) -> Result<Action, BoxError> {
        Ok(Action::NONE)
    }
}

#[test]
fn two_runs_continuing_the_same_remote_trace_are_printed_apart_each_when_it_ends() {
    let (printed, dispatch, guard) = console();
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let second = {
        let dispatch = dispatch.clone();
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let mut flow = Flow::named("Second");
                flow.start(Held { started: Mutex::new(started_tx), release: Mutex::new(release_rx) });
                flow.run_with(&SharedStore::new(), caller()).unwrap();
            });
        })
    };
    // `Second` is inside `exec`: its `prep` span has closed, the rest is open.
    started.recv().unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        two_step_flow("First").run_with(&store("m-1"), caller()).unwrap();
    });
    assert!(guard.flush());
    let text = printed.text();
    let headers = printed.headers();
    assert_eq!(headers.len(), 1, "only First has ended:\n{text}");
    assert!(headers[0].contains("· First ·"), "{text}");
    assert_eq!(printed.span_lines().len(), common::SPANS_PER_RUN, "First's spans and no span of Second:\n{text}");

    release.send(()).unwrap();
    second.join().unwrap();
    assert!(guard.flush());
    let text = printed.text();
    let headers = printed.headers();
    assert_eq!(headers.len(), 2, "{text}");
    assert!(headers[1].contains("· Second ·"), "{text}");
    let second_tree: Vec<String> = printed.span_lines().into_iter().skip(common::SPANS_PER_RUN).collect();
    assert_eq!(second_tree.len(), 5, "Second, Held, prep, exec, post:\n{text}");
    assert!(second_tree[1].contains("Held [span]"), "{text}");
    assert!(second_tree.iter().any(|line| line.contains("prep")), "Second's prep, held back until it ended:\n{text}");

    let report = guard.shutdown();
    assert!(report.completed, "{report}");
    assert_eq!(printed.text(), text, "nothing was left for shutdown");
}

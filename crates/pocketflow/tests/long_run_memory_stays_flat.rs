//! A long-running loop keeps a report, and a memory footprint, of the same
//! size as a short one: statistics are aggregated per node and warnings are
//! kept up to a bound, through `run_with` and plain `run` alike.
//!
//! Peak resident memory (`VmHWM`) is process-wide, so this file holds one
//! test and runs in a process of its own.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};

use pocketflow::{Action, BoxError, Ctx, Flow, Node, RunOptions, RunReport, SharedStore};

/// Transitions of the long loop. Each iteration runs the nested flow and its
/// node (two statistics entries before aggregation) and raises one warning.
const LONG: u64 = 1_000_000;
const SHORT: u64 = 1_000;

/// Returns `again` (which its own flow has no successor for, so every run
/// warns) until it has run `left` times, then `stop`.
struct Countdown {
    left: AtomicU64,
}

impl Node for Countdown {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
    fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
        let left = self.left.fetch_sub(1, Ordering::Relaxed);
        Ok(if left > 1 { Action::from("again") } else { Action::from("stop") })
    }
}

struct Unreached;

impl Node for Unreached {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Err("never runs".into())
    }
}

/// `Loop`: `Inner` -again-> `Inner`, where `Inner` holds the countdown and a
/// successor it never takes.
fn looping(iterations: u64) -> Flow {
    let mut inner = Flow::named("Inner");
    let countdown = inner.start(Countdown { left: AtomicU64::new(iterations) });
    let unreached = inner.add(Unreached);
    inner.connect_on(countdown, "elsewhere", unreached);
    let mut outer = Flow::named("Loop");
    let inner = outer.start(inner);
    outer.connect_on(inner, "again", inner);
    outer
}

fn report_of(iterations: u64) -> RunReport {
    let report = looping(iterations).run_with(&SharedStore::new(), RunOptions::new()).unwrap();
    assert_eq!(report.action, "stop");
    report
}

fn run_plain(iterations: u64) {
    assert_eq!(looping(iterations).run(&SharedStore::new()).unwrap(), "stop");
}

/// The process's peak resident set, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_million_transition_loop_keeps_the_report_size_and_memory_of_a_thousand() {
    // Warm up: whatever a run needs once (thread locals, the allocator's
    // arenas) is in the baseline.
    let short = report_of(SHORT);
    run_plain(SHORT);
    let baseline = peak_rss_kib();

    let long = report_of(LONG);
    run_plain(LONG);
    let grown = peak_rss_kib().saturating_sub(baseline);

    assert_eq!(long.stats.entries.len(), short.stats.entries.len(), "statistics entries");
    assert_eq!(long.warnings.len(), short.warnings.len(), "warnings kept");
    // Before aggregation, a million iterations kept hundreds of MiB of
    // entries and warnings; a bounded report needs nothing more.
    assert!(grown < 8 * 1024, "peak RSS grew by {grown} KiB over {LONG} iterations");
}

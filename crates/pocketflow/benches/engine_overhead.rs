/*
    Engine overhead per node, with NO tracing subscriber installed (every
    span is disabled, so this is the cost of the engine itself).

    Each iteration runs one flow of 1,000 trivial nodes, a loop over a cheap
    store: Check (start) - "again" >> Tick >> Check - "done" >> Done, so Check
    runs 500 times, Tick 499 and Done once. Throughput is set to 1,000
    elements, so criterion's time per iteration in µs is the time per node in
    ns. The async loop runs on a current-thread tokio runtime built once;
    `rt.block_on` is called once per 1,000 nodes.

    The benchmark results:
    cargo bench -p pocketflow-engine --bench engine_overhead
    criterion = "0.8.2", tokio = "1.54.1"
    rustc 1.95.0 (59807616e 2026-04-14), release (bench) profile
    OS: Debian GNU/Linux 12 (bookworm), Linux 6.18 (KVM guest)
    Hardware: AMD EPYC, 2 vCPUs, RAM: 23 GB
    | Test                                        | Median per node | Target   | Python PocketFlow |
    |---------------------------------------------|-----------------|----------|-------------------|
    | engine_overhead/sync_node_loop              | 86.9 ns         | ≤ 100 ns | 1.63 µs           |
    | engine_overhead/sync_node_loop_shared_store | 119.8 ns        | -        | -                 |
    | engine_overhead/async_node_loop             | 187.2 ns        | ≤ 250 ns | 1.87 µs           |

    Measured 2026-12-04 after issue 9's engine changes. The same machine
    measured the commit before them (0d1561c) at 64.0, 99.1 and 187.5 ns the
    same day. The cost is the one implementation of attempts, waits and
    fallback that both runners now drive (`run/attempts.rs`), which keeps
    sync and async from drifting apart: callgrind counts 869 -> ~948 Ir per
    sync node (+9%; `run_node` inclusive 758 -> 836 Ir), the rest of the
    time is moves of the call and decision values between the shared state
    machine and the runner (callgrind's cache and branch simulation show no
    more misses than before). Inlining its hot methods, with the failed-
    attempt path kept out of line, took the sync loop from 115 to 87 ns and
    the async one from 216 back to 187 ns.

    The Python column is the same loop in PocketFlow 0.0.3 on CPython 3.11,
    best of 20 runs: `python_baseline.py` beside this file says how to run
    it. (Earlier versions of this header gave 3.6 and 3.7 µs, which no
    command kept in the repository reproduces.)

    (Median of criterion's 100 samples per 1,000-node run, so µs per run =
    ns per node. Over five runs of the sync loops and three of the async one,
    the medians ranged 62.7-64.8 ns,
    93.7-97.7 ns and 173.3-176.0 ns. The VM is noisy at the ±5% level.)

    The run context (`pocketflow::current()`, set around every poll and
    every sync run) costs 15-20 ns per sync node and 24-43 ns per async
    node (the ranges below, compared): before it, the same runs measured 44.9-47.3 ns, 76.8-81.4 ns and
    133.1-149.0 ns. In instructions (valgrind --tool=callgrind, inclusive
    cost of `Flow::run` / `Runtime::block_on` divided by 1,000 nodes):
    sync 442 -> 869 Ir per node, async 1,558 -> 2,300. A first version
    allocated a frame per node (880 Ir sync); the thread-local stack of
    entries that replaced it allocates nothing on the way (frames are built
    only when `current()` is called), and what remains is the thread-local
    access and the stack push and pop.
    sync_node_loop uses a typed store (`Counter`, one `AtomicU64`);
    sync_node_loop_shared_store is the same loop on the JSON `SharedStore`, so
    the ~30 ns difference is the store's lock and JSON (de)serialization.
*/
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Ctx, Flow, Node, SharedStore};
use serde::Serialize;

/// Nodes run per flow run: `Check` 500 times, `Tick` 499 times, `Done` once.
const NODES: u64 = 1000;
/// The number of `Tick`s per run: `Check` sends the flow round the loop
/// until the counter reaches it.
const TICKS: u64 = NODES / 2 - 1;

/// A typed store: one atomic counter, so the store costs a load or a store.
#[derive(Debug, Default, Serialize)]
struct Counter {
    n: AtomicU64,
}

impl Counter {
    fn reset(&self) {
        self.n.store(0, Ordering::Relaxed);
    }
}

// The loop: `Check` (start) - "again" >> `Tick` >> `Check` - "done" >> `Done`.
// `Done` has no successors, so the run ends without a missing-successor
// warning, and every run walks exactly `NODES` nodes.

struct Tick;

impl Node<Counter> for Tick {
    type Prep = u64;
    type Exec = u64;
    fn prep(&self, _: &Ctx<'_>, shared: &Counter) -> Result<u64, BoxError> {
        Ok(shared.n.load(Ordering::Relaxed))
    }
    fn exec(&self, _: &Ctx<'_>, n: &u64) -> Result<u64, BoxError> {
        Ok(n + 1)
    }
    fn post(&self, _: &Ctx<'_>, shared: &Counter, _: u64, n: u64) -> Result<Action, BoxError> {
        shared.n.store(n, Ordering::Relaxed);
        Ok(Action::NONE)
    }
}

struct Check;

impl Node<Counter> for Check {
    type Prep = u64;
    type Exec = bool;
    fn prep(&self, _: &Ctx<'_>, shared: &Counter) -> Result<u64, BoxError> {
        Ok(shared.n.load(Ordering::Relaxed))
    }
    fn exec(&self, _: &Ctx<'_>, n: &u64) -> Result<bool, BoxError> {
        Ok(*n < TICKS)
    }
    fn post(&self, _: &Ctx<'_>, _: &Counter, _: u64, again: bool) -> Result<Action, BoxError> {
        Ok(if again { "again".into() } else { "done".into() })
    }
}

struct Done;

impl Node<Counter> for Done {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &Counter) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

// The same loop over the default JSON `SharedStore`, for reference.

struct JsonTick;

impl Node for JsonTick {
    type Prep = u64;
    type Exec = u64;
    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<u64, BoxError> {
        Ok(shared.get("n")?)
    }
    fn exec(&self, _: &Ctx<'_>, n: &u64) -> Result<u64, BoxError> {
        Ok(n + 1)
    }
    fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: u64, n: u64) -> Result<Action, BoxError> {
        shared.insert("n", n);
        Ok(Action::NONE)
    }
}

struct JsonCheck;

impl Node for JsonCheck {
    type Prep = u64;
    type Exec = bool;
    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<u64, BoxError> {
        Ok(shared.get("n")?)
    }
    fn exec(&self, _: &Ctx<'_>, n: &u64) -> Result<bool, BoxError> {
        Ok(*n < TICKS)
    }
    fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: u64, again: bool) -> Result<Action, BoxError> {
        Ok(if again { "again".into() } else { "done".into() })
    }
}

struct JsonDone;

impl Node for JsonDone {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

// The same loop with async nodes. Their hooks never await anything, so the
// flow future completes in one poll: what is measured is the engine's own
// futures, boxing and spans, not the scheduler.

struct AsyncTick;

impl AsyncNode<Counter> for AsyncTick {
    type Prep = u64;
    type Exec = u64;
    async fn prep(&self, _: &Ctx<'_>, shared: &Counter) -> Result<u64, BoxError> {
        Ok(shared.n.load(Ordering::Relaxed))
    }
    async fn exec(&self, _: &Ctx<'_>, n: &u64) -> Result<u64, BoxError> {
        Ok(n + 1)
    }
    async fn post(&self, _: &Ctx<'_>, shared: &Counter, _: u64, n: u64) -> Result<Action, BoxError> {
        shared.n.store(n, Ordering::Relaxed);
        Ok(Action::NONE)
    }
}

struct AsyncCheck;

impl AsyncNode<Counter> for AsyncCheck {
    type Prep = u64;
    type Exec = bool;
    async fn prep(&self, _: &Ctx<'_>, shared: &Counter) -> Result<u64, BoxError> {
        Ok(shared.n.load(Ordering::Relaxed))
    }
    async fn exec(&self, _: &Ctx<'_>, n: &u64) -> Result<bool, BoxError> {
        Ok(*n < TICKS)
    }
    async fn post(&self, _: &Ctx<'_>, _: &Counter, _: u64, again: bool) -> Result<Action, BoxError> {
        Ok(if again { "again".into() } else { "done".into() })
    }
}

struct AsyncDone;

impl AsyncNode<Counter> for AsyncDone {
    type Prep = ();
    type Exec = ();
    async fn prep(&self, _: &Ctx<'_>, _: &Counter) -> Result<(), BoxError> {
        Ok(())
    }
    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

fn sync_flow() -> Flow<Counter> {
    let mut flow = Flow::named("SyncLoop");
    let check = flow.start(Check);
    let tick = flow.add(Tick);
    let done = flow.add(Done);
    flow.connect_on(check, "again", tick).connect(tick, check).connect_on(check, "done", done);
    flow
}

fn json_flow() -> Flow {
    let mut flow = Flow::named("JsonLoop");
    let check = flow.start(JsonCheck);
    let tick = flow.add(JsonTick);
    let done = flow.add(JsonDone);
    flow.connect_on(check, "again", tick).connect(tick, check).connect_on(check, "done", done);
    flow
}

fn async_flow() -> AsyncFlow<Counter> {
    let mut flow = AsyncFlow::named("AsyncLoop");
    let check = flow.start(AsyncCheck);
    let tick = flow.add(AsyncTick);
    let done = flow.add(AsyncDone);
    flow.connect_on(check, "again", tick).connect(tick, check).connect_on(check, "done", done);
    flow
}

fn engine_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_overhead");
    group.throughput(Throughput::Elements(NODES));

    let flow = sync_flow();
    let store = Counter::default();
    check_run(flow.run_report(&store), store.n.load(Ordering::Relaxed));
    group.bench_function("sync_node_loop", |b| {
        b.iter(|| {
            store.reset();
            black_box(flow.run(black_box(&store)))
        });
    });

    let flow = json_flow();
    let store = SharedStore::new();
    store.insert("n", 0);
    check_run(flow.run_report(&store), store.get("n").unwrap_or(u64::MAX));
    group.bench_function("sync_node_loop_shared_store", |b| {
        b.iter(|| {
            store.insert("n", 0);
            black_box(flow.run(black_box(&store)))
        });
    });

    let rt = runtime();
    let flow = async_flow();
    let store = Counter::default();
    check_run(rt.block_on(flow.run_report(&store)), store.n.load(Ordering::Relaxed));
    group.bench_function("async_node_loop", |b| {
        b.iter(|| {
            store.reset();
            black_box(rt.block_on(flow.run(black_box(&store))))
        });
    });

    group.finish();
}

/// Checks, before measuring, that one run walked the whole loop: `TICKS`
/// ticks, ending on `Done` with no warnings.
#[allow(clippy::expect_used, reason = "a benchmark of a broken flow must stop, not report numbers")]
fn check_run(report: Result<pocketflow::RunReport, pocketflow::FlowError>, ticks: u64) {
    let report = report.expect("the benchmark flow runs");
    assert!(report.action.is_none(), "the run ends on Done, got {:?}", report.action);
    assert!(report.warnings.is_empty(), "unexpected warnings: {:?}", report.warnings);
    assert_eq!(ticks, TICKS, "the loop ticks {TICKS} times");
}

#[allow(clippy::expect_used, reason = "the benchmark cannot run without a runtime")]
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a current-thread tokio runtime")
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = engine_overhead
}
criterion_main!(benches);

//! The async migration guide's "Common Migration Patterns 3. Database
//! Operations": an async node that borrows a connection from a bounded
//! pool, runs a query, and gives the connection back, with the waits for a
//! free connection visible in the trace.
//!
//! It replaces this Python:
//!
//! ```python
//! class DatabaseNode(Node):                                  # before
//!     def exec(self, prep_res):
//!         conn = get_db_connection()
//!         return conn.execute(query, prep_res).fetchall()
//!
//! class DatabaseNode(AsyncNode):                             # after
//!     async def exec_async(self, prep_res):
//!         async with get_async_db_connection() as conn:
//!             result = await conn.execute(query, prep_res)
//!             return await result.fetchall()
//! ```
//!
//! The database here is simulated (an in-memory table behind a 25 ms
//! query latency) so the example runs anywhere; the pool is real: a tokio
//! [`Semaphore`] bounds the connections checked out, and a checked-out
//! connection goes back when its guard drops, which is what `async with`
//! does in Python. A real driver's pool (`sqlx::Pool`, `deadpool`,
//! `bb8`) has the same shape. The pool is held by the node, not put in the
//! shared store (which is recorded as the flow's input and output).
//!
//! Five users' orders are fetched by a parallel batch through a pool of
//! two connections, so three items wait: each wait is a `pool.acquire`
//! span under the item's `exec`, next to its `db.query` span (with
//! `db.system`, `db.statement` and the connection id as attributes).
//!
//! ```text
//! cargo run --example database_pool
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 cargo run --example database_pool
//! ```
#![allow(missing_docs)]

use std::fmt;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pocketflow::{Action, AsyncFlow, AsyncNode, AsyncParallelBatchNode, BoxError, Ctx, SharedStore, trace_flow};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::Instrument;

/// How long the simulated server takes to answer a query.
const QUERY_LATENCY: Duration = Duration::from_millis(25);
/// Connections in the pool.
const POOL_SIZE: usize = 2;

/// The statements the simulated database understands.
#[derive(Debug, Clone, Copy)]
enum Query {
    Users,
    OrdersOf(u64),
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Users => f.write_str("SELECT id, name FROM users ORDER BY id"),
            Self::OrdersOf(_) => f.write_str("SELECT amount FROM orders WHERE user_id = $1"),
        }
    }
}

/// A query's result, read with `fetchall` as in Python's DB-API.
struct Rows(Vec<Value>);

impl Rows {
    fn fetchall(self) -> Vec<Value> {
        self.0
    }
}

/// One connection to the simulated database.
struct Connection {
    id: usize,
}

impl Connection {
    /// Runs `query` on the server: a `db.query` span covering the round trip.
    async fn execute(&self, query: Query) -> Result<Rows, BoxError> {
        let span = tracing::info_span!(
            "db.query",
            db.system = "simulated",
            db.statement = %query,
            db.connection_id = self.id,
            db.rows = tracing::field::Empty,
        );
        async {
            tokio::time::sleep(QUERY_LATENCY).await;
            let rows: Vec<Value> = match query {
                Query::Users => ["ada", "grace", "linus", "barbara", "ken"]
                    .iter()
                    .zip(1_u64..)
                    .map(|(name, id)| json!({ "id": id, "name": name }))
                    .collect(),
                Query::OrdersOf(user) => (1..=user).map(|n| json!({ "amount": n * 10 + user })).collect(),
            };
            tracing::Span::current().record("db.rows", rows.len());
            Ok(Rows(rows))
        }
        .instrument(span)
        .await
    }
}

/// What the pool saw: how long each checkout waited for a connection.
#[derive(Debug, Default)]
struct PoolStats {
    waits: Vec<Duration>,
    most_in_use: usize,
}

/// A bounded pool: at most `POOL_SIZE` connections out at once; the others
/// wait (suspended, not blocking a thread) for one to come back.
struct Pool {
    permits: Semaphore,
    idle: Mutex<Vec<Connection>>,
    stats: Mutex<PoolStats>,
}

impl Pool {
    fn new(size: usize) -> Self {
        Self {
            permits: Semaphore::new(size),
            idle: Mutex::new((1..=size).rev().map(|id| Connection { id }).collect()),
            stats: Mutex::default(),
        }
    }

    /// Python's `get_async_db_connection()`: waits for a free connection
    /// inside a `pool.acquire` span, so the wait shows in the trace.
    async fn get(&self) -> Result<PooledConnection<'_>, BoxError> {
        let started = Instant::now();
        let span = tracing::info_span!("pool.acquire", db.pool.size = POOL_SIZE);
        let permit = self.permits.acquire().instrument(span).await?;
        let connection = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .ok_or("pool has a permit but no connection")?;
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        stats.waits.push(started.elapsed());
        stats.most_in_use = stats.most_in_use.max(POOL_SIZE - self.permits.available_permits());
        Ok(PooledConnection { pool: self, connection: Some(connection), _permit: permit })
    }
}

/// A checked-out connection; dropping it returns the connection, then the
/// permit (the end of Python's `async with` block).
struct PooledConnection<'a> {
    pool: &'a Pool,
    connection: Option<Connection>,
    _permit: SemaphorePermit<'a>,
}

impl PooledConnection<'_> {
    async fn execute(&self, query: Query) -> Result<Rows, BoxError> {
        // Present until drop, which takes it back to the pool.
        self.connection.as_ref().ok_or("connection already returned")?.execute(query).await
    }
}

impl Drop for PooledConnection<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(connection);
        }
    }
}

/// Loads the users: one query through the pool.
struct LoadUsers {
    pool: Arc<Pool>,
}

impl AsyncNode for LoadUsers {
    type Prep = ();
    type Exec = Vec<Value>;

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<Vec<Value>, BoxError> {
        let conn = self.pool.get().await?;
        let result = conn.execute(Query::Users).await?;
        Ok(result.fetchall())
    }

    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), users: Vec<Value>) -> Result<Action, BoxError> {
        shared.set("users", users)?;
        Ok(Action::NONE)
    }
}

/// The guide's async `DatabaseNode`, per user: all users at once, and the
/// pool decides how many queries really run.
struct FetchOrders {
    pool: Arc<Pool>,
}

impl AsyncParallelBatchNode for FetchOrders {
    type Item = Value;
    type Output = (String, u64);

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Value>, BoxError> {
        Ok(shared.get("users")?)
    }

    async fn exec(&self, _: &Ctx<'_>, user: &Value) -> Result<(String, u64), BoxError> {
        let id = user["id"].as_u64().ok_or("user without an id")?;
        let name = user["name"].as_str().ok_or("user without a name")?.to_owned();
        // `async with get_async_db_connection() as conn:`
        let rows = {
            let conn = self.pool.get().await?;
            let result = conn.execute(Query::OrdersOf(id)).await?;
            result.fetchall()
        }; // the connection is back in the pool here
        let total = rows.iter().filter_map(|row| row["amount"].as_u64()).sum();
        Ok((name, total))
    }

    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: Vec<Value>,
        totals: Vec<(String, u64)>,
    ) -> Result<Action, BoxError> {
        shared.set("totals", totals)?;
        Ok(Action::NONE)
    }
}

#[trace_flow(flow_name = "OrderTotals", tags = ["database"])]
fn order_totals(pool: Arc<Pool>) -> AsyncFlow {
    let mut flow = AsyncFlow::new();
    let users = flow.start(LoadUsers { pool: Arc::clone(&pool) });
    let orders = flow.add(FetchOrders { pool });
    flow.link(users >> orders);
    flow
}

#[tokio::main]
async fn main() -> ExitCode {
    let tracing = match pocketflow_tracing::init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("tracing could not start: {error}");
            return ExitCode::FAILURE;
        }
    };

    let pool = Arc::new(Pool::new(POOL_SIZE));
    let shared = SharedStore::new();
    let result = order_totals(Arc::clone(&pool)).run_report(&shared).await;

    // Flush the trace before printing, and say what was sent.
    eprintln!("{}", tracing.shutdown());

    let report = match result {
        Ok(report) => report,
        Err(error) => {
            eprintln!("flow failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    for (name, total) in shared.get::<Vec<(String, u64)>>("totals").unwrap_or_default() {
        println!("{name:<8} orders total {total:>4}");
    }
    let stats = pool.stats.lock().unwrap_or_else(PoisonError::into_inner);
    let waits: Vec<String> = stats.waits.iter().map(|w| format!("{:.0}", w.as_secs_f64() * 1e3)).collect();
    println!(
        "pool of {POOL_SIZE}: {} checkouts, at most {} connection(s) in use, waits in ms: [{}]",
        stats.waits.len(),
        stats.most_in_use,
        waits.join(", ")
    );
    if let Some(items) = report.stats.at("OrderTotals/FetchOrders[*]") {
        println!(
            "FetchOrders items: {} runs, {:.1} ms suspended in all (pool waits and queries)",
            items.runs,
            items.suspended.total.as_secs_f64() * 1e3
        );
    }
    let idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner).len();
    if stats.most_in_use <= POOL_SIZE && idle == POOL_SIZE && stats.waits.len() == 6 {
        ExitCode::SUCCESS
    } else {
        eprintln!("the pool misbehaved: {} in use at most, {idle} idle at the end", stats.most_in_use);
        ExitCode::FAILURE
    }
}

//! The async migration guide's "Advanced Features 2. Error Handling and
//! Recovery": retries, a fallback, a timeout, retries with a per-attempt
//! deadline, an error handler classifying failures, one run that recovers
//! and one that fails cleanly.
//!
//! It replaces this Python:
//!
//! ```python
//! class RobustAsyncNode(AsyncNode):
//!     def __init__(self, max_retries=3):
//!         super().__init__(max_retries=max_retries, wait=1.0)
//!     async def exec_async(self, prep_res):
//!         return await risky_async_operation(prep_res)      # ConnectionError → retry
//!     async def exec_fallback_async(self, prep_res, exc):
//!         return await safe_fallback_operation(prep_res)    # after the last retry
//!
//! handler = AsyncErrorHandler(tracer)
//! handler.register_error_handler(AsyncErrorType.TIMEOUT, custom_handler)
//! await tracer.with_timeout(coro, timeout_seconds, node_id, flow_name)
//! await tracer.safe_async_execute(coro, node_id, flow_name, timeout_seconds=10, retry_count=3)
//! ```
//!
//! In Rust: `max_retries()` and `wait()` on the node, `exec_fallback`,
//! an [`ErrorHandler`] with handlers per [`ErrorType`], and its
//! `with_timeout` and `safe_execute`, which builds a fresh future per
//! attempt (Python's re-awaits a spent coroutine). Errors are typed: the
//! fallback and the caller `downcast` to tell a transient failure from a
//! permanent one.
//!
//! The second run fails on purpose (revoked credentials: no retry or
//! fallback can fix that); the example exits 0 when it fails exactly that
//! way, and says so.
//!
//! ```text
//! cargo run --example error_recovery
//! POCKETFLOW_TRACING_DEBUG=true cargo run --example error_recovery   # with lifecycle events
//! ```
#![allow(missing_docs)]

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pocketflow::{
    Action, AsyncFlow, AsyncNode, Backoff, BoxError, Ctx, ErrorHandler, ErrorType, FlowError, Phase, Recovery,
    RetryPolicy, RunOptions, SharedStore, trace_flow,
};

/// What the simulated services fail with.
#[derive(Debug)]
enum ApiError {
    /// Transient: worth retrying (Python's `ConnectionError`).
    Connection(&'static str),
    /// Permanent: retrying changes nothing.
    Unauthorized,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connection(service) => write!(f, "connection to {service} reset"),
            Self::Unauthorized => f.write_str("401 unauthorized: credentials revoked"),
        }
    }
}

impl std::error::Error for ApiError {}

/// Python's `risky_async_operation`: the orders service drops the
/// connection on the first two attempts of every run.
async fn risky_async_operation(attempt: usize) -> Result<Vec<u32>, ApiError> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    if attempt < 2 { Err(ApiError::Connection("orders service")) } else { Ok(vec![120, 80, 45]) }
}

/// The guide's `RobustAsyncNode`: three attempts, a pause between them.
struct FetchOrders;

impl AsyncNode for FetchOrders {
    type Prep = ();
    type Exec = Vec<u32>;

    fn max_retries(&self) -> usize {
        3
    }

    fn wait(&self) -> Duration {
        Duration::from_millis(10) // Python's wait=1.0, shortened for the example
    }

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, ctx: &Ctx<'_>, _: &()) -> Result<Vec<u32>, BoxError> {
        Ok(risky_async_operation(ctx.attempt()).await?)
    }

    async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), orders: Vec<u32>) -> Result<Action, BoxError> {
        shared.set("orders", orders)?;
        Ok(Action::NONE)
    }
}

/// A rates service that is down for the whole run: after its two attempts
/// the fallback (Python's `exec_fallback_async`) uses cached rates, but
/// only for a transient failure.
struct FetchRates;

impl AsyncNode for FetchRates {
    type Prep = ();
    type Exec = (f64, &'static str);

    fn max_retries(&self) -> usize {
        2
    }

    async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> {
        Ok(())
    }

    async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(f64, &'static str), BoxError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Err(ApiError::Connection("rates service").into())
    }

    async fn exec_fallback(&self, _: &Ctx<'_>, _: &(), error: BoxError) -> Result<(f64, &'static str), BoxError> {
        match error.downcast_ref::<ApiError>() {
            Some(ApiError::Connection(_)) => Ok((1.1, "cached")), // Python's safe_fallback_operation
            _ => Err(error),
        }
    }

    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: (),
        (rate, source): (f64, &'static str),
    ) -> Result<Action, BoxError> {
        shared.set("rate", rate)?;
        shared.set("rate_source", source)?;
        Ok(Action::NONE)
    }
}

/// A pricing API that answers in `latency`.
async fn pricing_api(orders: &[u32], rate: f64, latency: Duration) -> Result<f64, ApiError> {
    tokio::time::sleep(latency).await;
    Ok(orders.iter().map(|&amount| f64::from(amount) * rate).sum())
}

/// Prices the orders with a slow API: one call under a deadline (it times
/// out; the handler classifies the timeout), then `safe_execute` with a
/// per-attempt deadline and backoff, whose second, fresh call is quick.
struct PriceOrders {
    errors: ErrorHandler,
    calls: Arc<AtomicUsize>,
}

impl AsyncNode for PriceOrders {
    type Prep = (Vec<u32>, f64);
    type Exec = f64;

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(Vec<u32>, f64), BoxError> {
        Ok((shared.get("orders")?, shared.get("rate")?))
    }

    async fn exec(&self, _: &Ctx<'_>, (orders, rate): &(Vec<u32>, f64)) -> Result<f64, BoxError> {
        let deadline = Duration::from_millis(30);
        // Python's `tracer.with_timeout(coro, …)`: the slow call is dropped
        // at the deadline (its work ends `cancelled`), and the handler's
        // Timeout handler runs.
        let first =
            self.errors.with_timeout("pricing_api", deadline, pricing_api(orders, *rate, Duration::from_secs(1)));
        if let Ok(total) = first.await {
            return Ok(total?);
        }
        // Python's `safe_async_execute(coro, …, timeout_seconds, retry_count=3)`,
        // with a fresh call per attempt: the first is slow again, the second quick.
        let policy = RetryPolicy::new(3).timeout(deadline).backoff(Backoff::linear(Duration::from_millis(5)));
        let total = self
            .errors
            .safe_execute("pricing_api", &policy, |attempt| {
                self.calls.fetch_add(1, Ordering::Relaxed);
                let latency = if attempt == 0 { Duration::from_secs(1) } else { Duration::from_millis(5) };
                pricing_api(orders, *rate, latency)
            })
            .await?;
        Ok(total)
    }

    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: (Vec<u32>, f64),
        total: f64,
    ) -> Result<Action, BoxError> {
        shared.set("total", total)?;
        Ok(Action::NONE)
    }
}

/// Submits the total. With revoked credentials it fails for good: both
/// attempts fail the same way, and no fallback is defined, so the run
/// fails with the typed error inside.
struct Submit;

impl AsyncNode for Submit {
    type Prep = (String, f64);
    type Exec = String;

    fn max_retries(&self) -> usize {
        2
    }

    async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(String, f64), BoxError> {
        Ok((shared.get("credentials")?, shared.get("total")?))
    }

    async fn exec(&self, _: &Ctx<'_>, (credentials, total): &(String, f64)) -> Result<String, BoxError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if credentials == "revoked" {
            return Err(ApiError::Unauthorized.into());
        }
        Ok(format!("invoice for {total:.2} submitted"))
    }

    async fn post(
        &self,
        _: &Ctx<'_>,
        shared: &SharedStore,
        _: (String, f64),
        receipt: String,
    ) -> Result<Action, BoxError> {
        shared.set("receipt", receipt)?;
        Ok("submitted".into())
    }
}

#[trace_flow(flow_name = "Invoicing", tags = ["error-recovery"])]
fn invoicing(errors: ErrorHandler, calls: Arc<AtomicUsize>) -> AsyncFlow {
    let mut flow = AsyncFlow::new();
    let orders = flow.start(FetchOrders);
    let rates = flow.add(FetchRates);
    let price = flow.add(PriceOrders { errors, calls });
    let submit = flow.add(Submit);
    flow.link(orders >> rates >> price >> submit);
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

    // Python's `handler.register_error_handler(AsyncErrorType.TIMEOUT, custom_handler)`.
    let errors = ErrorHandler::new();
    let timeouts_seen = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&timeouts_seen);
    errors.register(ErrorType::Timeout, move |_| {
        seen.fetch_add(1, Ordering::Relaxed);
        Recovery::Recovered // the node goes on to retry
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let flow = invoicing(errors.clone(), Arc::clone(&calls));

    // Run 1 recovers from every failure; run 2 cannot: its credentials are revoked.
    let good = SharedStore::from_iter([("credentials", "valid")]);
    let recovered = flow.run_with(&good, RunOptions::new().session_id("invoicing-ok")).await;
    let bad = SharedStore::from_iter([("credentials", "revoked")]);
    let failed = flow.run_with(&bad, RunOptions::new().session_id("invoicing-revoked")).await;
    // The caller classifies the failure with the same handler.
    let event = failed.as_ref().err().map(|error| errors.handle(error, Some(error.node()), Some("Invoicing")));

    // Flush the traces before printing, and say what was sent.
    eprintln!("{}", tracing.shutdown());

    let mut ok = true;
    match recovered {
        Ok(report) => println!(
            "run 1 recovered: {} (rates: {}), action {:?}",
            good.get::<String>("receipt").unwrap_or_default(),
            good.get::<String>("rate_source").unwrap_or_default(),
            report.action.to_string()
        ),
        Err(error) => {
            ok = false;
            println!("run 1 should have recovered but failed: {error}");
        }
    }
    match (&failed, &event) {
        (Err(error @ FlowError::Node { node, phase: Phase::Exec, .. }), Some(event))
            if node == "Submit" && matches!(error.downcast_ref::<ApiError>(), Some(ApiError::Unauthorized)) =>
        {
            println!("run 2 failed as expected (this failure is the demonstration): {error}");
            println!(
                "  classified: {} (severity {}), recovered by a handler: {}",
                event.error_type, event.severity, event.recovered
            );
        }
        (Err(error), _) => {
            ok = false;
            println!("run 2 failed, but not in the expected way: {error}");
        }
        (Ok(_), _) => {
            ok = false;
            println!("run 2 should have failed (revoked credentials) but succeeded");
        }
    }
    let stats = errors.stats();
    println!(
        "error handler: {} failure(s) handled ({} timeout, {} task exception), {} recovered by a handler; \
         {} timeout handler call(s); {} pricing call(s) made by safe_execute",
        stats.total,
        stats.count(ErrorType::Timeout),
        stats.count(ErrorType::TaskException),
        stats.recovered,
        timeouts_seen.load(Ordering::Relaxed),
        calls.load(Ordering::Relaxed)
    );
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

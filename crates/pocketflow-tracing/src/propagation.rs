//! W3C Trace Context out of a traced run: [`current_traceparent`] gives the
//! `traceparent` of the span the calling code runs in, [`inject`] adds it to
//! an outgoing request's headers, so that the service called continues the
//! run's trace. The other way round, a run started with
//! `RunOptions::parent` continues a caller's trace (see
//! `docs/span-schema.md`).
//!
//! The context is found through the current `tracing` dispatcher: the
//! [`PocketflowLayer`] and the registry are looked up in it by type
//! (`downcast_ref`), and the layer reads the current span's ids from what
//! it keeps on the registry's span, so there is no global state of our own
//! and no OpenTelemetry `Context` to attach. (`tracing-opentelemetry`
//! instead reaches its data through a `WithContext` function pointer it
//! registers with the dispatcher; we do not need one.)

use pocketflow::TraceParent;
use tracing::Subscriber as _;
use tracing_subscriber::Registry;
use tracing_subscriber::registry::LookupSpan as _;

use crate::layer::PocketflowLayer;

/// The W3C context of the innermost span entered on this thread that a
/// [`PocketflowLayer`] records: the trace id, that span's OpenTelemetry span
/// id, and the sampled flag. Inside a span the layer does not record (a
/// phase switched off), the nearest recorded ancestor's id. In a trace the
/// sampler dropped, the trace id with a fresh span id and the sampled flag
/// off, so that the callee drops it too.
///
/// `None` outside any traced run, when tracing is off, or when the current
/// subscriber is not a `tracing_subscriber` registry with a
/// [`PocketflowLayer`] on it. With several such layers, the outermost one
/// answers.
///
/// ```
/// # fn send(_: &str) {}
/// if let Some(parent) = pocketflow_tracing::current_traceparent() {
///     send(&parent.to_string()); // 00-<trace id>-<span id>-01
/// }
/// ```
pub fn current_traceparent() -> Option<TraceParent> {
    tracing::dispatcher::get_default(|dispatch| {
        let layer = dispatch.downcast_ref::<PocketflowLayer>()?;
        let registry = dispatch.downcast_ref::<Registry>()?;
        let current = registry.current_span();
        let span = registry.span(current.id()?)?;
        layer.traceparent_of(span)
    })
}

/// Adds a `traceparent` header with [`current_traceparent`] to `headers`;
/// adds nothing outside a traced run.
///
/// ```
/// let mut headers: Vec<(String, String)> = Vec::new();
/// pocketflow_tracing::inject(&mut headers);
/// // send `headers` with the request
/// ```
pub fn inject(headers: &mut impl Extend<(String, String)>) {
    if let Some(parent) = current_traceparent() {
        headers.extend([("traceparent".to_owned(), parent.to_string())]);
    }
}

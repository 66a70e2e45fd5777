//! The crate's own diagnostics: one line on stderr each, with a stable name
//! (`pocketflow_tracing.export_failed` once per exporter, `.queue_full`,
//! `.exporter_queue_full` once per exporter, `.credentials_in_clear`,
//! `.invalid_traceparent` and `.invalid_link` once each; `.shutdown`,
//! `.flush_failed`, `.shutdown_failed`, `.spool_failed` when they happen;
//! `.partial_success` for each answer that rejected spans; and
//! `.exported` in debug mode).
//!
//! They are written directly rather than emitted as `tracing` events: most
//! come from the export thread, which runs with no subscriber so that the
//! transport's own telemetry cannot feed back into the traces.

/// Writes one diagnostic line, `pocketflow_tracing.<name>: <message>`.
pub(crate) fn report(name: &str, message: &str) {
    eprintln!("{}.{name}: {message}", crate::DIAGNOSTICS_TARGET);
}

/// Writes one diagnostic line the first time `reported` is found unset,
/// and sets it: for conditions that repeat on every span.
pub(crate) fn report_once(reported: &std::sync::atomic::AtomicBool, name: &str, message: &str) {
    if !reported.swap(true, std::sync::atomic::Ordering::Relaxed) {
        report(name, message);
    }
}

//! Keeps `tracing`'s per-callsite interest cache from switching a test's
//! spans and events off because of another test running in parallel.
//!
//! `tracing-core` caches, per callsite, whether any subscriber wants it.
//! While exactly one dispatcher has been registered in the process, a
//! callsite first reached on a thread with no subscriber of its own is
//! asked of that thread's default only (no subscriber: "never"), and the
//! answer stays cached until another dispatcher is registered. A test that
//! installed its subscriber with `set_default` on another thread then
//! misses that callsite's spans or events: a failure that comes and goes
//! with the order the test harness runs tests in.
//!
//! [`keep_interest_dynamic`] registers, once per process, a second
//! dispatcher that lives for the whole process and answers "sometimes" for
//! every callsite (and records nothing). From then on every callsite's
//! cached interest is at least "sometimes", so each span and event asks the
//! current thread's subscriber, whatever other threads did first.

use std::sync::OnceLock;

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};

/// A subscriber that records nothing and never lets a callsite be cached
/// as disabled.
#[derive(Debug)]
struct AskEveryTime;

impl Subscriber for AskEveryTime {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

static ALWAYS_ASK: OnceLock<Dispatch> = OnceLock::new();

/// Registers the process-long "sometimes" dispatcher (see the module docs).
/// Idempotent and cheap after the first call; [`Capture`](crate::Capture)
/// and the [`OtlpReceiver`](crate::otlp::OtlpReceiver) constructors call
/// it, so tests using either need not.
pub fn keep_interest_dynamic() {
    ALWAYS_ASK.get_or_init(|| Dispatch::new(AskEveryTime));
}

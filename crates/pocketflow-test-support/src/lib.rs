//! Test support for the pocketflow workspace.
//!
//! [`Capture`] is a `tracing_subscriber::Layer` that records every span
//! (name, target, fields, parent) and every event (name, fields, the span it
//! happened in), so tests can assert the trees a flow run produces.
//!
//! ```
//! use pocketflow_test_support::Capture;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let capture = Capture::new();
//! let subscriber = tracing_subscriber::registry().with(capture.clone());
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("outer", answer = 42);
//!     span.in_scope(|| tracing::info!(name: "my.event", "hello"));
//! });
//! let captured = capture.snapshot();
//! assert_eq!(captured.spans[0].name, "outer");
//! assert_eq!(captured.spans[0].fields["answer"], "42");
//! assert_eq!(captured.events[0].name, "my.event");
//! assert_eq!(captured.events[0].span, Some(0));
//! ```
//!
//! [`otlp::OtlpReceiver`] is an in-process OTLP trace receiver (gRPC or
//! HTTP/protobuf, plain or over TLS) that decodes what exporters really
//! send; [`tls::TestPki`] makes the certificates for the TLS ones.

//!
//! Tests that install a subscriber for their own thread only (`set_default`,
//! `with_default`) share the process with other tests; see
//! [`keep_interest_dynamic`] for why both of the above call it.

mod capture;
mod interest;
pub mod otlp;
pub mod tls;

pub use capture::{Capture, Captured, CapturedEvent, CapturedSpan};
pub use interest::keep_interest_dynamic;

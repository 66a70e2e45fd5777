//! W3C Trace Context: the `traceparent` header that carries a trace from one
//! process to another.
//!
//! The engine does not know OpenTelemetry; it only carries this value. A run
//! started with [`RunOptions::parent`](crate::RunOptions::parent) records it
//! on its root span, and a layer such as `pocketflow-tracing` continues that
//! trace instead of starting a new one. The other way round,
//! `pocketflow_tracing::current_traceparent()` gives the value to send with
//! an outgoing request.

use std::fmt;
use std::str::FromStr;

/// A parsed `traceparent` (version `00`): trace id, parent span id and
/// flags. See <https://www.w3.org/TR/trace-context/#traceparent-header>.
///
/// ```
/// use pocketflow::TraceParent;
///
/// let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let parent: TraceParent = header.parse()?;
/// assert!(parent.is_sampled());
/// assert_eq!(parent.to_string(), header);
/// # Ok::<(), pocketflow::TraceParentError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

/// Why a `traceparent` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceParentError {
    /// The value does not have the four dash-separated parts
    /// `version-traceid-spanid-flags` with 2, 32, 16 and 2 hex digits.
    #[error("traceparent `{value}` is not `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`")]
    Malformed {
        /// The rejected value, cut to 80 characters.
        value: String,
    },
    /// The trace id or the span id is all zeros, which W3C forbids.
    #[error("traceparent `{value}` has an all-zero {which}, which W3C Trace Context forbids")]
    ZeroId {
        /// The rejected value.
        value: String,
        /// `trace id` or `span id`.
        which: &'static str,
    },
    /// Version `ff` is invalid; other unknown versions are read as `00`.
    #[error("traceparent `{value}` has version ff, which W3C Trace Context forbids")]
    InvalidVersion {
        /// The rejected value.
        value: String,
    },
}

impl TraceParent {
    /// A `traceparent` from its parts. `None` when an id is all zeros.
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8], sampled: bool) -> Option<Self> {
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id, span_id, flags: u8::from(sampled) })
    }

    /// The 16-byte trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The 8-byte id of the parent span (the caller's span).
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// The trace flags byte.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller sampled this trace (flag bit 0).
    pub fn is_sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// Reads the first `traceparent` header from `(name, value)` pairs
    /// (names compared without case), as an HTTP server receives them.
    ///
    /// # Errors
    /// [`TraceParentError`] when the header is there but invalid; `Ok(None)`
    /// when there is no such header.
    pub fn extract<'h>(
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    ) -> Result<Option<Self>, TraceParentError> {
        headers
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("traceparent"))
            .map(|(_, v)| v.parse())
            .transpose()
    }
}

fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        let malformed = || TraceParentError::Malformed { value: value.chars().take(80).collect() };
        let mut parts = value.split('-');
        let (Some(version), Some(trace), Some(span), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let version = hex::<1>(version).ok_or_else(malformed)?;
        if version == [0xff] {
            return Err(TraceParentError::InvalidVersion { value: value.to_owned() });
        }
        // Version 00 has exactly four parts; later versions may add more.
        if version == [0] && parts.next().is_some() {
            return Err(malformed());
        }
        let trace_id = hex::<16>(trace).ok_or_else(malformed)?;
        let span_id = hex::<8>(span).ok_or_else(malformed)?;
        let [flags] = hex::<1>(flags).ok_or_else(malformed)?;
        if trace_id == [0; 16] {
            return Err(TraceParentError::ZeroId { value: value.to_owned(), which: "trace id" });
        }
        if span_id == [0; 8] {
            return Err(TraceParentError::ZeroId { value: value.to_owned(), which: "span id" });
        }
        Ok(Self { trace_id, span_id, flags })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("00-")?;
        for byte in self.trace_id {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("-")?;
        for byte in self.span_id {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "-{:02x}", self.flags)
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn round_trips_the_w3c_example() {
        let parent: TraceParent = VALID.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parent.to_string(), VALID);
        assert_eq!(parent.span_id(), [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        assert!(parent.is_sampled());
    }

    #[test]
    fn rejects_what_w3c_forbids_and_names_it() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(matches!(bad.parse::<TraceParent>(), Err(TraceParentError::Malformed { .. })), "{bad}");
        }
        let zero = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
        let err = zero.parse::<TraceParent>().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("all-zero trace id"), "{err}");
        assert!(matches!(
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse::<TraceParent>(),
            Err(TraceParentError::InvalidVersion { .. })
        ));
    }

    #[test]
    fn extracts_from_headers_without_case() {
        let headers = [("Content-Type", "text/plain"), ("TraceParent", VALID)];
        assert_eq!(TraceParent::extract(headers).ok().flatten().map(|p| p.to_string()).as_deref(), Some(VALID));
        assert_eq!(TraceParent::extract([("x", "y")]), Ok(None));
    }
}

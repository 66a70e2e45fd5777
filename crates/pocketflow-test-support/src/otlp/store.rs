//! What the receiver thread records and the test thread reads.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::span::{ReceivedRequest, ReceivedSpan};

/// Shared between the server thread (writer) and the test (reader); the
/// condvar lets a test wait for spans without polling.
#[derive(Debug, Default)]
pub(crate) struct Store {
    state: Mutex<State>,
    arrived: Condvar,
    /// Spans are counted, not kept (load tests).
    counting: bool,
}

#[derive(Debug, Default)]
struct State {
    spans: Vec<ReceivedSpan>,
    requests: Vec<ReceivedRequest>,
    tls_failures: Vec<String>,
    /// Spans received, kept or not.
    count: usize,
    /// A counting store's distinct span ids (a span sent twice counts once).
    ids: std::collections::HashSet<Vec<u8>>,
}

impl Store {
    /// A store that counts spans and keeps nothing else.
    pub(crate) fn counting() -> Self {
        Self { counting: true, ..Self::default() }
    }

    pub(crate) fn is_counting(&self) -> bool {
        self.counting
    }

    /// Counts spans received (a counting store), by their ids.
    pub(crate) fn count<'a>(&self, ids: impl IntoIterator<Item = &'a [u8]>) {
        let mut state = self.lock();
        for id in ids {
            state.count += 1;
            state.ids.insert(id.to_vec());
        }
        drop(state);
        self.arrived.notify_all();
    }

    /// Distinct span ids a counting store received.
    pub(crate) fn distinct_count(&self) -> usize {
        self.lock().ids.len()
    }

    /// Spans received so far, kept or only counted.
    pub(crate) fn span_count(&self) -> usize {
        self.lock().count
    }

    /// Waits until at least `n` spans were received or `timeout` passed;
    /// returns the count.
    pub(crate) fn wait_for_count(&self, n: usize, timeout: Duration) -> usize {
        let guard = self.lock();
        let (state, _) =
            self.arrived.wait_timeout_while(guard, timeout, |s| s.count < n).unwrap_or_else(PoisonError::into_inner);
        state.count
    }

    /// Records one request and the spans it delivered.
    pub(crate) fn record(&self, request: ReceivedRequest, spans: Vec<ReceivedSpan>) {
        let mut state = self.lock();
        state.count += spans.len();
        state.requests.push(request);
        state.spans.extend(spans);
        drop(state);
        self.arrived.notify_all();
    }

    /// Records a TLS handshake that failed.
    pub(crate) fn record_tls_failure(&self, error: String) {
        self.lock().tls_failures.push(error);
    }

    pub(crate) fn tls_failures(&self) -> Vec<String> {
        self.lock().tls_failures.clone()
    }

    pub(crate) fn spans(&self) -> Vec<ReceivedSpan> {
        self.lock().spans.clone()
    }

    pub(crate) fn requests(&self) -> Vec<ReceivedRequest> {
        self.lock().requests.clone()
    }

    /// Waits until at least `n` spans arrived or `timeout` passed, whichever
    /// is first, and returns what is there.
    pub(crate) fn wait_for_spans(&self, n: usize, timeout: Duration) -> Vec<ReceivedSpan> {
        let guard = self.lock();
        let (state, _) = self
            .arrived
            .wait_timeout_while(guard, timeout, |s| s.spans.len() < n)
            .unwrap_or_else(PoisonError::into_inner);
        state.spans.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

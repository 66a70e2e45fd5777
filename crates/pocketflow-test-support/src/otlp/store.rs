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
}

#[derive(Debug, Default)]
struct State {
    spans: Vec<ReceivedSpan>,
    requests: Vec<ReceivedRequest>,
    tls_failures: Vec<String>,
}

impl Store {
    /// Records one request and the spans it delivered.
    pub(crate) fn record(&self, request: ReceivedRequest, spans: Vec<ReceivedSpan>) {
        let mut state = self.lock();
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

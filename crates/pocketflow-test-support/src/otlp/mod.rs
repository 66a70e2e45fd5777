//! In-process OTLP trace receivers, so exporter tests check what really
//! goes over the wire instead of what an in-memory exporter was handed.
//!
//! Each [`OtlpReceiver`] listens on `127.0.0.1` on a free port and serves
//! from its own thread and tokio runtime: it keeps answering while the test
//! thread blocks (in a flush, a `shutdown()`, or [`OtlpReceiver::wait_for_spans`]),
//! whatever runtime the test itself uses.
//!
//! ```
//! use std::time::Duration;
//! use pocketflow_test_support::otlp::OtlpReceiver;
//!
//! let receiver = OtlpReceiver::http()?;
//! assert!(receiver.endpoint().starts_with("http://127.0.0.1:"));
//! // ...point an exporter at `receiver.endpoint()` and run the code under test...
//! let spans = receiver.wait_for_spans(1, Duration::from_millis(10));
//! assert!(spans.is_empty());
//! # Ok::<(), std::io::Error>(())
//! ```

mod grpc;
mod http;
mod span;
mod store;
mod trace;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use span::{AttrValue, ReceivedEvent, ReceivedRequest, ReceivedSpan, ReceivedStatus, StatusCode};
pub use trace::{ReceivedTrace, group_traces};

use store::Store;

use crate::tls::ServerTls;

/// A running OTLP trace receiver. Dropping it stops the server.
pub struct OtlpReceiver {
    protocol: &'static str,
    /// `http` or `https`.
    scheme: &'static str,
    addr: SocketAddr,
    store: Arc<Store>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for OtlpReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpReceiver")
            .field("protocol", &self.protocol)
            .field("scheme", &self.scheme)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl OtlpReceiver {
    /// An OTLP/gRPC `TraceService` that also accepts gzip-compressed
    /// requests.
    pub fn grpc() -> io::Result<Self> {
        Self::grpc_at(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Like [`OtlpReceiver::grpc`], on the given address (a collector that
    /// starts late, or comes back, on a port the exporter already uses).
    pub fn grpc_at(addr: SocketAddr) -> io::Result<Self> {
        Self::start("grpc", addr, |listener, store| grpc::serve(listener, store, None))
    }

    /// Like [`OtlpReceiver::grpc`], but counts the spans it receives and
    /// keeps nothing else ([`span_count`](Self::span_count)): for a
    /// million spans.
    pub fn grpc_counting() -> io::Result<Self> {
        Self::grpc_counting_at(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Like [`OtlpReceiver::grpc_counting`], on the given address.
    pub fn grpc_counting_at(addr: SocketAddr) -> io::Result<Self> {
        Self::start_with("grpc", addr, Store::counting(), |listener, store| grpc::serve(listener, store, None))
    }

    /// Like [`OtlpReceiver::grpc`], over TLS with `tls` (mutual when it
    /// asks for client certificates); [`endpoint`](Self::endpoint) is then
    /// `https://localhost:PORT`.
    pub fn grpc_tls(tls: &ServerTls) -> io::Result<Self> {
        let config = tls.tonic_config();
        let mut receiver = Self::start("grpc", SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), move |listener, store| {
            grpc::serve(listener, store, Some(config))
        })?;
        receiver.scheme = "https";
        Ok(receiver)
    }

    /// Like [`OtlpReceiver::http`], over TLS with `tls` (mutual when it
    /// asks for client certificates); [`endpoint`](Self::endpoint) is then
    /// `https://localhost:PORT`. A handshake that fails is recorded in
    /// [`tls_failures`](Self::tls_failures).
    pub fn https(tls: &ServerTls) -> io::Result<Self> {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.rustls_config()?);
        let mut receiver = Self::start("http", SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), move |listener, store| {
            http::serve_tls(listener, store, acceptor)
        })?;
        receiver.scheme = "https";
        Ok(receiver)
    }

    /// An OTLP/HTTP protobuf receiver that takes a POST on any path (and
    /// records it), gunzipping `content-encoding: gzip` bodies. Bodies that
    /// do not decode get 400.
    pub fn http() -> io::Result<Self> {
        Self::http_at(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Like [`OtlpReceiver::http`], on the given address: a receiver
    /// stopped and started again on the same port looks, to the exporter
    /// sending to it, like a backend that was down for a while.
    pub fn http_at(addr: SocketAddr) -> io::Result<Self> {
        Self::start("http", addr, |listener, store| http::serve(listener, store, None, None))
    }

    /// Like [`OtlpReceiver::http`], but every answer comes `delay` after
    /// its request: a backend that accepts slowly, for back-pressure tests.
    /// Requests on several connections wait at the same time.
    pub fn http_slow(delay: Duration) -> io::Result<Self> {
        Self::start("http", SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), move |listener, store| {
            http::serve(listener, store, None, Some(delay))
        })
    }

    /// Like [`OtlpReceiver::http`], but answers every request with `status`,
    /// for exporter failure tests. Requests are still recorded; spans from
    /// requests answered with a non-2xx status are not added to
    /// [`OtlpReceiver::spans`], since the exporter was told they failed.
    pub fn http_responding(status: u16) -> io::Result<Self> {
        let status = hyper::StatusCode::from_u16(status).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Self::start("http", SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), move |listener, store| {
            http::serve(listener, store, Some(status), None)
        })
    }

    /// Binds, then moves the server onto its own thread. Everything that can
    /// fail happens here, so errors reach the caller.
    fn start<F, Fut>(protocol: &'static str, addr: SocketAddr, serve: F) -> io::Result<Self>
    where
        F: FnOnce(TcpListener, Arc<Store>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_with(protocol, addr, Store::default(), serve)
    }

    fn start_with<F, Fut>(protocol: &'static str, addr: SocketAddr, store: Store, serve: F) -> io::Result<Self>
    where
        F: FnOnce(TcpListener, Arc<Store>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        crate::keep_interest_dynamic();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let store = Arc::new(store);
        let server = serve(listener, Arc::clone(&store));
        let (stop, stopped) = oneshot::channel();
        // Stopping drops the server future outright rather than shutting down
        // gracefully, so an exporter's idle keep-alive connection cannot hold
        // up `drop`; the runtime's drop then closes the connections.
        let thread = std::thread::Builder::new().name(format!("otlp-{protocol}-receiver")).spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    () = server => {}
                    _ = stopped => {}
                }
            });
        })?;
        Ok(Self { protocol, scheme: "http", addr, store, stop: Some(stop), thread: Some(thread) })
    }

    /// The base URL: `http://127.0.0.1:PORT`, or `https://localhost:PORT`
    /// over TLS (the name the test certificate is for).
    pub fn endpoint(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", self.addr.port()),
            _ => format!("http://{}", self.addr),
        }
    }

    /// The TLS handshakes that failed, each as the server saw it (for
    /// example a client that did not trust the certificate, or sent none
    /// when one was required). Empty for a receiver without TLS.
    pub fn tls_failures(&self) -> Vec<String> {
        self.store.tls_failures()
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.store.spans()
    }

    /// Blocks until at least `n` spans arrived or `timeout` passed, then
    /// returns what arrived: a timeout yields the partial list, never a
    /// panic, so the test's own assertion explains what is missing.
    pub fn wait_for_spans(&self, n: usize, timeout: Duration) -> Vec<ReceivedSpan> {
        self.store.wait_for_spans(n, timeout)
    }

    /// Spans received so far (also by a counting receiver).
    pub fn span_count(&self) -> usize {
        self.store.span_count()
    }

    /// Spans with distinct ids a counting receiver got: a span sent twice
    /// (a retry of a request the receiver had taken) counts once.
    pub fn distinct_span_count(&self) -> usize {
        self.store.distinct_count()
    }

    /// Blocks until at least `n` spans were received or `timeout` passed;
    /// returns how many were.
    pub fn wait_for_span_count(&self, n: usize, timeout: Duration) -> usize {
        self.store.wait_for_count(n, timeout)
    }

    /// Every export request received so far, accepted or not.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.store.requests()
    }

    /// The spans so far, grouped by trace in order of first arrival.
    pub fn traces(&self) -> Vec<ReceivedTrace> {
        group_traces(&self.spans())
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Headers as a map with lowercase names; repeated headers are joined.
fn header_map(headers: &hyper::HeaderMap) -> BTreeMap<String, String> {
    let mut map = BTreeMap::<String, String>::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        map.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    map
}

//! The real OpenTelemetry Collector as a child process: found, started on
//! free loopback ports with a config that throws spans away, asked how
//! many spans it accepted, and killed when dropped.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable that names the collector binary.
pub(crate) const BIN_ENV: &str = "POCKETFLOW_OTELCOL";

/// Where `collector/build.sh` puts the binary, from the workspace root.
const BUILT_BIN: &str = "target/otel/pocketflow-otelcol";

/// How long the collector gets to open its ports.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the collector could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CollectorError {
    /// An I/O step failed (writing the config, spawning, reading metrics).
    #[error("{what}: {source}")]
    Io {
        /// The step.
        what: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// The process exited before it was ready.
    #[error("the collector exited during start-up ({status}); its stderr: {stderr}")]
    Exited {
        /// Its exit status.
        status: String,
        /// The end of what it wrote on stderr.
        stderr: String,
    },
    /// The ports did not open in time.
    #[error("the collector did not open its ports within {0:?}")]
    NotReady(Duration),
    /// The metrics page did not hold the accepted-spans counter.
    #[error("the collector's metrics page has no otelcol_receiver_accepted_spans")]
    NoMetric,
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> CollectorError {
    move |source| CollectorError::Io { what, source }
}

/// The collector binary: `$POCKETFLOW_OTELCOL`, or the one
/// `collector/build.sh` built under the workspace root. `Err` says why
/// there is none (the reason printed on the case's skipped line).
pub(crate) fn find_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(BIN_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() { Ok(path) } else { Err(format!("{BIN_ENV}={} is not a file", path.display())) };
    }
    let built = workspace_root().join(BUILT_BIN);
    if built.is_file() {
        Ok(built)
    } else {
        Err(format!("no collector binary: set {BIN_ENV} or run collector/build.sh (looked for {})", built.display()))
    }
}

/// The workspace root, two levels above this crate's manifest.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).unwrap_or(manifest).to_path_buf()
}

/// A running collector. Dropping it kills the process and removes its
/// config.
#[derive(Debug)]
pub(crate) struct Collector {
    child: Child,
    dir: PathBuf,
    grpc: SocketAddr,
    http: SocketAddr,
    metrics: SocketAddr,
}

impl Collector {
    /// Starts `binary` with a discarding config and waits until its OTLP
    /// and metrics ports accept connections.
    pub(crate) fn start(binary: &Path, name: &str) -> Result<Self, CollectorError> {
        let grpc = free_port().map_err(io_err("finding a free port"))?;
        let http = free_port().map_err(io_err("finding a free port"))?;
        let metrics = free_port().map_err(io_err("finding a free port"))?;
        let dir = std::env::temp_dir().join(format!("pocketflow-bench-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io_err("creating the config directory"))?;
        let config = dir.join("config.yaml");
        std::fs::write(&config, config_yaml(grpc, http, metrics)).map_err(io_err("writing the collector config"))?;
        let stderr = std::fs::File::create(dir.join("stderr.log")).map_err(io_err("creating the log file"))?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(io_err("spawning the collector"))?;
        let mut collector = Self { child, dir, grpc, http, metrics };
        collector.wait_ready()?;
        Ok(collector)
    }

    /// The OTLP/gRPC endpoint.
    pub(crate) fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// The OTLP/HTTP base endpoint.
    pub(crate) fn http_endpoint(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Spans its OTLP receiver accepted so far (over both transports),
    /// from its own Prometheus metrics; `None` while the counter is absent
    /// (the collector shows it from the first spans on).
    pub(crate) fn accepted_spans(&self) -> Result<Option<u64>, CollectorError> {
        let page = http_get(self.metrics, "/metrics").map_err(io_err("reading the collector's metrics"))?;
        Ok(sum_metric(&page, "otelcol_receiver_accepted_spans"))
    }

    /// Spans its receiver refused so far (0 while the counter is absent).
    /// The collector's CPU time so far, in milliseconds.
    pub(crate) fn cpu_ms(&self) -> Result<f64, CollectorError> {
        crate::report::cpu_ms(&self.child.id().to_string()).map_err(io_err("reading the collector's CPU time"))
    }

    pub(crate) fn refused_spans(&self) -> Result<u64, CollectorError> {
        let page = http_get(self.metrics, "/metrics").map_err(io_err("reading the collector's metrics"))?;
        Ok(sum_metric(&page, "otelcol_receiver_refused_spans").unwrap_or(0))
    }

    /// Waits until the accepted count reaches `n` or `timeout` passes, and
    /// returns the last count. With `n` > 0, a counter still absent at the
    /// end is an error (a renamed metric must not read as 0 delivered).
    pub(crate) fn wait_for_accepted(&self, n: u64, timeout: Duration) -> Result<u64, CollectorError> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted = self.accepted_spans()?;
            if accepted.unwrap_or(0) >= n || Instant::now() >= deadline {
                return match accepted {
                    Some(count) => Ok(count),
                    None if n == 0 => Ok(0),
                    None => Err(CollectorError::NoMetric),
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_ready(&mut self) -> Result<(), CollectorError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().map_err(io_err("waiting for the collector"))? {
                let log = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
                let tail: String =
                    log.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(" | ");
                return Err(CollectorError::Exited { status: status.to_string(), stderr: tail });
            }
            let ready = [self.grpc, self.http, self.metrics]
                .iter()
                .all(|addr| TcpStream::connect_timeout(addr, Duration::from_millis(100)).is_ok());
            if ready && http_get(self.metrics, "/metrics").is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(CollectorError::NotReady(START_TIMEOUT));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port free right now (the collector binds it a moment later).
fn free_port() -> io::Result<SocketAddr> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}

/// The collector config: the OTLP receiver on both transports, straight to
/// a `debug` exporter that logs a one-line summary for the first batch and
/// then one in a million (and the log level hides even those), so the
/// collector's work is receiving and decoding. Its own metrics are served
/// for Prometheus on `metrics`.
fn config_yaml(grpc: SocketAddr, http: SocketAddr, metrics: SocketAddr) -> String {
    format!(
        "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {grpc}
      http:
        endpoint: {http}
exporters:
  debug:
    verbosity: basic
    sampling_initial: 1
    sampling_thereafter: 1000000
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
  telemetry:
    logs:
      level: warn
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: {host}
                port: {port}
",
        host = metrics.ip(),
        port = metrics.port(),
    )
}

/// A plain HTTP/1.0 GET, enough for a Prometheus page; returns the body.
fn http_get(addr: SocketAddr, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of headers"))?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        let status = head.lines().next().unwrap_or_default();
        return Err(io::Error::other(format!("GET {path}: {status}")));
    }
    Ok(body.to_owned())
}

/// The sum of every sample of the counter `name` (with or without the
/// `_total` suffix) in a Prometheus text page; `None` if it has none.
pub(crate) fn sum_metric(page: &str, name: &str) -> Option<u64> {
    let mut found = false;
    let mut sum = 0.0;
    for line in page.lines().filter(|line| !line.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let rest = rest.strip_prefix("_total").unwrap_or(rest);
        let value = if let Some(labels) = rest.strip_prefix('{') {
            labels.rsplit_once('}').map(|(_, value)| value)
        } else if rest.starts_with(' ') {
            Some(rest)
        } else {
            // Another metric whose name starts with this one.
            None
        };
        if let Some(value) = value.and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse::<f64>().ok()) {
            found = true;
            sum += value;
        }
    }
    found.then_some(sum as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_counter_is_summed_over_transports() {
        let page = "# HELP otelcol_receiver_accepted_spans_total Number of spans successfully pushed into the pipeline.\n\
            # TYPE otelcol_receiver_accepted_spans_total counter\n\
            otelcol_receiver_accepted_spans_total{receiver=\"otlp\",service_name=\"pocketflow-otelcol\",transport=\"grpc\"} 1234\n\
            otelcol_receiver_accepted_spans_total{receiver=\"otlp\",service_name=\"pocketflow-otelcol\",transport=\"http\"} 6\n\
            otelcol_receiver_accepted_spans_other{receiver=\"otlp\"} 99\n\
            otelcol_receiver_refused_spans_total{receiver=\"otlp\",transport=\"grpc\"} 0\n";
        assert_eq!(sum_metric(page, "otelcol_receiver_accepted_spans"), Some(1240));
        assert_eq!(sum_metric(page, "otelcol_receiver_refused_spans"), Some(0));
        assert_eq!(sum_metric(page, "otelcol_exporter_sent_spans"), None);
    }

    #[test]
    fn a_counter_without_labels_or_suffix_is_read() {
        assert_eq!(
            sum_metric("otelcol_receiver_accepted_spans 2.05e5\n", "otelcol_receiver_accepted_spans"),
            Some(205_000)
        );
    }

    #[test]
    fn a_binary_that_exits_is_reported_and_cleaned_up() {
        let error = Collector::start(Path::new("/bin/false"), "exits").map(|_| ()).unwrap_err();
        assert!(matches!(error, CollectorError::Exited { .. }), "{error}");
        let dir = std::env::temp_dir().join(format!("pocketflow-bench-{}-exits", std::process::id()));
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    #[test]
    fn the_config_names_the_ports() {
        let yaml = config_yaml(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 2)),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 3)),
        );
        assert!(yaml.contains("endpoint: 127.0.0.1:1\n"));
        assert!(yaml.contains("endpoint: 127.0.0.1:2\n"));
        assert!(yaml.contains("host: 127.0.0.1\n                port: 3\n"));
    }
}

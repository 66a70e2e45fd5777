//! The real binaries the run starts (collectors, Jaeger), as child processes
//! that are always stopped: a [`Service`] kills its process when dropped, so
//! an early return or a failed check leaves nothing running.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::E2eError;

/// How long a service may take to accept connections on its ports.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A free TCP port on loopback, as `127.0.0.1:PORT`. The port is released
/// before the service binds it; on a quiet CI machine nothing takes it in
/// between.
pub(crate) fn free_addr() -> Result<SocketAddr, E2eError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|source| E2eError::Io { what: "binding a free loopback port".into(), source })?;
    listener.local_addr().map_err(|source| E2eError::Io { what: "reading a bound port".into(), source })
}

/// A running binary with its log file.
#[derive(Debug)]
pub(crate) struct Service {
    name: String,
    child: Child,
    log: PathBuf,
}

/// How to start one service.
#[derive(Debug)]
pub(crate) struct ServiceSpec<'a> {
    /// A name for messages and the log file.
    pub(crate) name: &'a str,
    /// The binary.
    pub(crate) program: &'a Path,
    /// `--config FILE`.
    pub(crate) config: &'a Path,
    /// Environment variables on top of a cleared environment (only `PATH`
    /// and `HOME` are kept), so the caller's `OTEL_*` cannot steer it.
    pub(crate) env: Vec<(String, String)>,
    /// Ports that accept connections once the service is ready.
    pub(crate) ready_ports: Vec<SocketAddr>,
    /// Where the log file goes.
    pub(crate) log_dir: &'a Path,
}

impl Service {
    /// Starts the service and waits until every ready port accepts a
    /// connection. A service that exits or never listens is an error that
    /// carries the end of its log.
    pub(crate) fn start(spec: ServiceSpec<'_>) -> Result<Self, E2eError> {
        let log = spec.log_dir.join(format!("{}.log", spec.name));
        let open_log = || {
            File::options()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|source| E2eError::Io { what: format!("opening {}", log.display()), source })
        };
        let (stdout, stderr) = (open_log()?, open_log()?);
        let mut command = Command::new(spec.program);
        command.arg("--config").arg(spec.config).env_clear().stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        for key in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        command.envs(spec.env);
        let child = command.spawn().map_err(|source| E2eError::Io {
            what: format!("starting {} ({})", spec.name, spec.program.display()),
            source,
        })?;
        let mut service = Self { name: spec.name.to_owned(), child, log };
        service.wait_ready(&spec.ready_ports)?;
        Ok(service)
    }

    fn wait_ready(&mut self, ports: &[SocketAddr]) -> Result<(), E2eError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        for port in ports {
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(self.failed(&format!("exited during startup ({status})")));
                }
                if TcpStream::connect_timeout(port, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(self.failed(&format!("did not listen on {port} within {READY_TIMEOUT:?}")));
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    fn failed(&self, what: &str) -> E2eError {
        E2eError::Service { name: self.name.clone(), what: what.to_owned(), log_tail: self.log_tail() }
    }

    /// The last lines of the service's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Stops the service gracefully (SIGTERM, as `docker stop` does), so a
    /// collector shuts its queue down cleanly; kills it if it has not
    /// exited after 30 s.
    pub(crate) fn stop(mut self) -> Result<(), E2eError> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err(self.failed("did not stop within 30 s of SIGTERM"))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

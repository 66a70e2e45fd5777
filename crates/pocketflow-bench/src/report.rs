//! What a case reports: one JSON object per line on stdout, and the
//! process's peak resident memory.

use std::io::{self, Write as _};
use std::time::Duration;

use serde::Serialize;

/// One case's figures. Fields that do not apply to a case are left out of
/// its line rather than printed as zero.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub(crate) struct Record {
    /// The case's name.
    pub(crate) case: String,
    /// Why the case did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) skipped: Option<String>,
    /// Why the case failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Flow runs in the measured part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) runs: Option<u64>,
    /// Nodes run in the measured part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nodes: Option<u64>,
    /// Wall-clock time per node on the thread running the flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ns_per_node: Option<f64>,
    /// Long run: per node over the first 10,000 nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ns_per_node_first_10k: Option<f64>,
    /// Long run: per node over the last 10,000 nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ns_per_node_last_10k: Option<f64>,
    /// Spans the flows created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) spans: Option<u64>,
    /// Wall-clock time per span created, on the thread(s) running the flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ns_per_span: Option<f64>,
    /// Spans delivered per second, from the first run to the end of the
    /// shutdown (or to the last span's arrival, for receivers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) spans_per_sec: Option<f64>,
    /// Spans the far end received (the exporter, the receiver, the
    /// collector's own `accepted` count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) delivered: Option<u64>,
    /// Spans the pipeline reported lost (for the SDK: created minus
    /// delivered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dropped: Option<u64>,
    /// Of `dropped`: lost because the queue was full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dropped_queue_full: Option<u64>,
    /// Of `dropped`: in exports that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) failed_export: Option<u64>,
    /// Of `dropped`: still queued when shutdown gave up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unflushed: Option<u64>,
    /// Milliseconds from the first run to the end of the runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) run_ms: Option<f64>,
    /// Milliseconds from the first run until everything delivered had
    /// arrived (shutdown included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) deliver_ms: Option<f64>,
    /// Peak resident memory during the case (VmHWM), in MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) peak_rss_mb: Option<f64>,
    /// Anything the figures need to be read with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

impl Record {
    /// An empty record for `case`.
    pub(crate) fn new(case: &str) -> Self {
        Self { case: case.to_owned(), ..Self::default() }
    }

    /// The line for a case that did not run.
    pub(crate) fn skipped(case: &str, reason: impl Into<String>) -> Self {
        Self { skipped: Some(reason.into()), ..Self::new(case) }
    }

    /// The line for a case that failed.
    pub(crate) fn failed(case: &str, error: impl ToString) -> Self {
        Self { error: Some(error.to_string()), ..Self::new(case) }
    }

    /// The record as one line of JSON, without the newline.
    pub(crate) fn to_line(&self) -> String {
        // A struct of strings and numbers always serializes; the fallback
        // keeps the output a JSON line even so.
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"case\":{:?},\"error\":{:?}}}", self.case, e.to_string()))
    }

    /// Prints the line on stdout and flushes it, so that a reader sees each
    /// case as it finishes.
    pub(crate) fn print(&self) -> io::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{}", self.to_line())?;
        out.flush()
    }
}

/// Nanoseconds per item, `None` for no items.
pub(crate) fn per(elapsed: Duration, items: u64) -> Option<f64> {
    (items > 0).then(|| round(elapsed.as_nanos() as f64 / items as f64, 1))
}

/// Items per second, `None` for no time.
pub(crate) fn rate(items: u64, elapsed: Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    (secs > 0.0).then(|| round(items as f64 / secs, 0))
}

/// Milliseconds, to 0.1 ms.
pub(crate) fn ms(elapsed: Duration) -> f64 {
    round(elapsed.as_secs_f64() * 1e3, 1)
}

/// `value` rounded to `decimals` places, so that lines stay readable.
pub(crate) fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// The peak resident set size so far (`VmHWM`), in MiB.
pub(crate) fn peak_rss_mb() -> io::Result<f64> {
    status_mb("VmHWM")
}

/// The resident set size now (`VmRSS`), in MiB.
pub(crate) fn rss_mb() -> io::Result<f64> {
    status_mb("VmRSS")
}

/// A `kB` line of `/proc/self/status`, in MiB.
fn status_mb(key: &str) -> io::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    parse_status_kb(&status, key)
        .map(|kb| round(kb as f64 / 1024.0, 1))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no {key} line in /proc/self/status")))
}

/// Resets the peak resident set size to the current one (Linux 4.0 and
/// later: writing 5 to `clear_refs`), so that a case's peak is its own,
/// not the highest of the cases before it.
pub(crate) fn reset_peak_rss() -> io::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")
}

/// CPU time (user and system, all threads) of process `pid` (`self` for
/// this one) so far, in milliseconds, from `/proc/<pid>/stat` (in clock
/// ticks of 1/100 s, Linux's `USER_HZ` on every architecture this runs on).
pub(crate) fn cpu_ms(pid: &str) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 * 10.0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unreadable /proc/{pid}/stat")))
}

/// `utime + stime` from a `/proc/<pid>/stat` line: fields 14 and 15,
/// counted after the command name, which may hold spaces and parentheses.
pub(crate) fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// The value in kB of the line `key` (`VmHWM`, `VmRSS`) in the text of
/// `/proc/<pid>/status`.
pub(crate) fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    let rest = status.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))?;
    let mut words = rest.split_whitespace();
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_a_command_name_with_spaces() {
        let stat = "4242 (otel col) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 12 0 100 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(281));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn a_line_holds_only_the_fields_that_apply() {
        let record = Record { ns_per_node: Some(87.5), nodes: Some(1000), ..Record::new("engine_sync") };
        assert_eq!(record.to_line(), r#"{"case":"engine_sync","nodes":1000,"ns_per_node":87.5}"#);
    }

    #[test]
    fn a_line_is_one_json_object_that_reads_back() {
        let record = Record {
            delivered: Some(205_000),
            dropped: Some(0),
            note: Some("a \"quoted\"\nnote".into()),
            ..Record::new("burst_5000_flows")
        };
        let line = record.to_line();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(value["case"], "burst_5000_flows");
        assert_eq!(value["delivered"], 205_000);
        assert_eq!(value["dropped"], 0);
        assert!(value.get("spans_per_sec").is_none());
    }

    #[test]
    fn a_skipped_case_says_why() {
        let line = Record::skipped("collector_grpc", "no collector binary").to_line();
        assert_eq!(line, r#"{"case":"collector_grpc","skipped":"no collector binary"}"#);
    }

    #[test]
    fn vm_hwm_is_read_in_kb() {
        let status = "Name:\tpocketflow-bench\nVmPeak:\t  123456 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   30000 kB\n";
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(40_960));
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(30_000));
        assert_eq!(parse_status_kb("VmRSS:\t 1 kB\n", "VmHWM"), None);
        assert_eq!(parse_status_kb("VmHWM:\t lots kB\n", "VmHWM"), None);
        assert_eq!(parse_status_kb("VmHWM:\t 12 MB\n", "VmHWM"), None);
        assert_eq!(parse_status_kb("VmHWMX:\t 12 kB\n", "VmHWM"), None);
    }

    #[test]
    fn this_process_has_a_peak() {
        let peak = peak_rss_mb().expect("a Linux /proc");
        assert!(peak > 0.0);
    }

    #[test]
    fn per_and_rate_guard_against_zero() {
        assert_eq!(per(Duration::from_micros(1), 0), None);
        assert_eq!(per(Duration::from_micros(1), 10), Some(100.0));
        assert_eq!(rate(10, Duration::ZERO), None);
        assert_eq!(rate(10, Duration::from_millis(500)), Some(20.0));
    }
}

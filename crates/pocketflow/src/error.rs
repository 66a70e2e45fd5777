//! Typed errors: what failed, where, and why.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// The error type node hooks return. Any `std::error::Error + Send + Sync`
/// converts into it with `?`, and [`FlowError::downcast_ref`] gets the
/// original back.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The phase of a node run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// `prep`: reads the shared store.
    Prep,
    /// `exec`: the work, retried up to `max_retries` attempts.
    Exec,
    /// `exec_fallback`: runs once after the last failed attempt.
    Fallback,
    /// `post`: writes the shared store and picks the action.
    Post,
}

impl Phase {
    /// The phase's name, as used in span names and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Prep => "prep",
            Self::Exec => "exec",
            Self::Fallback => "fallback",
            Self::Post => "post",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a flow or node run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// A hook returned an error. For `exec`, every attempt failed and the
    /// fallback failed too: `phase` is [`Phase::Exec`] when the fallback
    /// handed back the error it received (the default fallback does), and
    /// [`Phase::Fallback`] when it failed with an error of its own.
    #[error("node `{node}` failed in {phase}: {source}")]
    Node {
        /// The name of the node (or flow) whose hook failed.
        node: String,
        /// The hook that failed.
        phase: Phase,
        /// The error the hook returned.
        #[source]
        source: BoxError,
    },
    /// A hook panicked. The panic was caught and the run stopped there.
    #[error("node `{node}` panicked in {phase}: {message}")]
    Panicked {
        /// The name of the node (or flow) whose hook panicked.
        node: String,
        /// The hook that panicked.
        phase: Phase,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// The flow was wired with a node id from another flow.
    #[error("flow `{flow}` is wired wrongly: {reason}")]
    InvalidGraph {
        /// The name of the flow.
        flow: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The node asks for zero attempts. PocketFlow would then skip `exec`
    /// and hand `post` a `None` result, which a typed `exec` result cannot
    /// express; ask for at least one attempt.
    #[error("node `{node}` has max_retries = 0, so exec would never run; use 1 or more")]
    NoAttempts {
        /// The name of the node.
        node: String,
    },
    /// A run or task did not finish within its deadline
    /// ([`with_timeout`](crate::with_timeout)); it was cancelled.
    #[error("`{name}` timed out after {after:?}")]
    Timeout {
        /// What timed out: the name given to `with_timeout`.
        name: String,
        /// The deadline.
        after: Duration,
    },
    /// A task spawned with [`spawn`](crate::spawn) panicked, or was
    /// cancelled (aborted, or its runtime shut down) before it finished.
    #[error("task `{name}` {}: {message}", if *panicked { "panicked" } else { "was cancelled" })]
    Task {
        /// The task's name.
        name: String,
        /// Whether it panicked (else it was cancelled).
        panicked: bool,
        /// The panic message, or why it was cancelled.
        message: String,
    },
    /// Work that needs tokio's timer ([`with_timeout`](crate::with_timeout),
    /// a per-attempt timeout of [`safe_execute`](crate::safe_execute)) ran
    /// outside a tokio runtime, or in one built without its time driver,
    /// where tokio would panic. The work was not started.
    #[error(
        "`{name}` needs tokio's timer: run it inside a tokio runtime built with `enable_time()` (or `enable_all()`)"
    )]
    NoTimer {
        /// What needed the timer: the name given to `with_timeout` or
        /// `safe_execute`.
        name: String,
    },
    /// The flow would have run nested deeper than
    /// [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH) flows inside one
    /// another on one thread (flows nested in flows, and flows run from a
    /// node's hooks), where the thread's stack could run out, which aborts
    /// the process. It did not start. Python raises `RecursionError` here.
    #[error(
        "flow `{flow}` would run {depth} flows deep, past the limit of {limit} flows running inside one another on one thread (pocketflow::MAX_NESTING_DEPTH)"
    )]
    NestingTooDeep {
        /// The flow that did not start.
        flow: String,
        /// How deep it would have run: the flows already running on the
        /// thread, plus itself.
        depth: usize,
        /// The limit, [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH).
        limit: usize,
    },
    /// Every attempt of [`safe_execute`](crate::safe_execute) failed; `source`
    /// is the last attempt's error (a [`FlowError::Timeout`] when its
    /// per-attempt deadline passed). It stays reachable through
    /// [`FlowError::downcast_ref`] and decides
    /// [`error_type`](FlowError::error_type).
    #[error("`{name}` failed after {attempts} attempt(s): {source}")]
    Exhausted {
        /// The name given to `safe_execute`.
        name: String,
        /// How many attempts were made.
        attempts: usize,
        /// The last attempt's error.
        #[source]
        source: BoxError,
    },
}

/// What kind of failure an error is: the seed guide's `AsyncErrorType`,
/// for the types that have a meaning in Rust (see
/// `docs/migration-from-python.md` for the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorType {
    /// A future was dropped or a task aborted before it finished.
    Cancellation,
    /// A deadline passed.
    Timeout,
    /// A hook or task panicked.
    Panic,
    /// A hook or task returned an error: the ordinary failure.
    TaskException,
    /// Memory, a pool or a queue ran out.
    ResourceExhaustion,
    /// The runtime was shutting down (Python's `event_loop_closed`).
    RuntimeShutdown,
    /// The flow itself is wrong: wiring from another flow, zero attempts,
    /// flows nested past [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH).
    Configuration,
}

impl ErrorType {
    /// The name used in events and attributes: `cancellation`, `timeout`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cancellation => "cancellation",
            Self::Timeout => "timeout",
            Self::Panic => "panic",
            Self::TaskException => "task_exception",
            Self::ResourceExhaustion => "resource_exhaustion",
            Self::RuntimeShutdown => "runtime_shutdown",
            Self::Configuration => "configuration",
        }
    }

    /// The type of any error, by the first thing its source chain holds
    /// that says more than "it failed": a [`FlowError`] (its
    /// [`error_type`](FlowError::error_type)), tokio's `Elapsed` or an I/O
    /// `TimedOut` (timeout), a `TryReserveError` or an I/O `OutOfMemory`
    /// (resource exhaustion), a tokio `JoinError` (panic, or cancellation
    /// when the task was aborted). Anything else is a
    /// [`TaskException`](Self::TaskException). This is how
    /// [`ErrorHandler`](crate::ErrorHandler) classifies what it handles.
    ///
    /// ```
    /// use pocketflow::ErrorType;
    ///
    /// let oom = std::io::Error::from(std::io::ErrorKind::OutOfMemory);
    /// assert_eq!(ErrorType::of(&oom), ErrorType::ResourceExhaustion);
    /// let parse = "x".parse::<u8>().unwrap_err();
    /// assert_eq!(ErrorType::of(&parse), ErrorType::TaskException);
    /// ```
    pub fn of(error: &(dyn StdError + 'static)) -> Self {
        classify(error)
    }

    /// Every type.
    pub const ALL: [Self; 7] = [
        Self::Cancellation,
        Self::Timeout,
        Self::Panic,
        Self::TaskException,
        Self::ResourceExhaustion,
        Self::RuntimeShutdown,
        Self::Configuration,
    ];

    /// The severity a failure of this type has unless a handler says
    /// otherwise: Python's default for the types it has (a runtime shutting
    /// down is its `EVENT_LOOP_CLOSED`, CRITICAL), `High` for a panic and a
    /// miswired flow, which Python has no type for.
    pub const fn default_severity(self) -> Severity {
        match self {
            Self::TaskException => Severity::Low,
            Self::Cancellation => Severity::Medium,
            Self::Timeout | Self::Panic | Self::Configuration => Severity::High,
            Self::ResourceExhaustion | Self::RuntimeShutdown => Severity::Critical,
        }
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a failure is: the guide's `AsyncErrorSeverity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Expected now and then; retries handle it.
    Low,
    /// Worth a look.
    Medium,
    /// Something is wrong.
    High,
    /// The process is in trouble.
    Critical,
}

impl Severity {
    /// `low`, `medium`, `high` or `critical`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FlowError {
    pub(crate) fn hook(node: &str, phase: Phase, source: BoxError) -> Self {
        Self::Node { node: node.to_owned(), phase, source }
    }

    pub(crate) fn panicked(node: &str, phase: Phase, payload: &(dyn std::any::Any + Send)) -> Self {
        Self::Panicked { node: node.to_owned(), phase, message: panic_message(payload) }
    }

    /// A task that panicked (`payload` is what it panicked with).
    pub(crate) fn task_panicked(name: &str, payload: &(dyn std::any::Any + Send)) -> Self {
        Self::Task { name: name.to_owned(), panicked: true, message: panic_message(payload) }
    }

    /// The name of the node (or flow) where the run failed.
    pub fn node(&self) -> &str {
        match self {
            Self::Node { node, .. } | Self::Panicked { node, .. } | Self::NoAttempts { node } => node,
            Self::InvalidGraph { flow, .. } | Self::NestingTooDeep { flow, .. } => flow,
            Self::Timeout { name, .. }
            | Self::Task { name, .. }
            | Self::NoTimer { name }
            | Self::Exhausted { name, .. } => name,
        }
    }

    /// The phase that failed, if a hook failed.
    pub fn phase(&self) -> Option<Phase> {
        match self {
            Self::Node { phase, .. } | Self::Panicked { phase, .. } => Some(*phase),
            Self::NoAttempts { .. }
            | Self::InvalidGraph { .. }
            | Self::NestingTooDeep { .. }
            | Self::Timeout { .. }
            | Self::Task { .. }
            | Self::NoTimer { .. }
            | Self::Exhausted { .. } => None,
        }
    }

    /// What kind of failure this is. A hook error (or the last error of
    /// [`safe_execute`](crate::safe_execute)) is classified by what it wraps
    /// (a timeout, an exhausted resource…), else it is a
    /// [`ErrorType::TaskException`]. A missing timer is a
    /// [`ErrorType::Configuration`] error (the runtime is set up wrongly),
    /// and so is nesting past the limit (the flow is built wrongly).
    pub fn error_type(&self) -> ErrorType {
        match self {
            Self::Timeout { .. } => ErrorType::Timeout,
            Self::Panicked { .. } | Self::Task { panicked: true, .. } => ErrorType::Panic,
            Self::Task { panicked: false, .. } => ErrorType::Cancellation,
            Self::InvalidGraph { .. }
            | Self::NoAttempts { .. }
            | Self::NoTimer { .. }
            | Self::NestingTooDeep { .. } => ErrorType::Configuration,
            Self::Node { source, .. } | Self::Exhausted { source, .. } => classify(&**source),
        }
    }

    /// The first error of type `E` in the source chain: the error a hook
    /// returned, or one it wraps.
    ///
    /// ```
    /// # use pocketflow::{FlowError, Phase};
    /// # fn check(err: &FlowError) -> bool {
    /// err.downcast_ref::<std::num::ParseIntError>().is_some()
    /// # }
    /// ```
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        let mut next: Option<&(dyn StdError + 'static)> = self.source();
        while let Some(err) = next {
            if let Some(found) = err.downcast_ref::<E>() {
                return Some(found);
            }
            next = err.source();
        }
        None
    }
}

/// A value in [`Params`](crate::Params) or
/// [`SharedStore`](crate::SharedStore) was missing or of the wrong type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The key is absent.
    #[error("{container} `{key}` is missing")]
    Missing {
        /// `"param"` or `"shared key"`.
        container: &'static str,
        /// The key asked for.
        key: String,
    },
    /// The value is present but does not decode as the type asked for.
    #[error("{container} `{key}` has the wrong type: {source}")]
    Decode {
        /// `"param"` or `"shared key"`.
        container: &'static str,
        /// The key asked for.
        key: String,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The value cannot be encoded as JSON.
    #[error("{container} `{key}` cannot be stored as JSON: {source}")]
    Encode {
        /// `"param"` or `"shared key"`.
        container: &'static str,
        /// The key being set.
        key: String,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
}

impl DataError {
    pub(crate) fn missing(container: &'static str, key: &str) -> Self {
        Self::Missing { container, key: key.to_owned() }
    }

    pub(crate) fn decode(container: &'static str, key: &str, source: serde_json::Error) -> Self {
        Self::Decode { container, key: key.to_owned(), source }
    }

    pub(crate) fn encode(container: &'static str, key: &str, source: serde_json::Error) -> Self {
        Self::Encode { container, key: key.to_owned(), source }
    }
}

/// A panic's message, when its payload is a string (as `panic!` makes it).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// The type of an arbitrary error, by what its source chain holds.
pub(crate) fn classify(error: &(dyn StdError + 'static)) -> ErrorType {
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(err) = next {
        if let Some(flow) = err.downcast_ref::<FlowError>() {
            return flow.error_type();
        }
        if err.is::<tokio::time::error::Elapsed>() {
            return ErrorType::Timeout;
        }
        if err.is::<std::collections::TryReserveError>() {
            return ErrorType::ResourceExhaustion;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::TimedOut => return ErrorType::Timeout,
                std::io::ErrorKind::OutOfMemory => return ErrorType::ResourceExhaustion,
                _ => {}
            }
        }
        if let Some(join) = err.downcast_ref::<tokio::task::JoinError>() {
            return if join.is_panic() { ErrorType::Panic } else { ErrorType::Cancellation };
        }
        next = err.source();
    }
    ErrorType::TaskException
}

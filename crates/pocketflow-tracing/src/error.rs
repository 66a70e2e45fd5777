//! Errors: a bad config, an exporter that cannot be built, a subscriber that
//! is already installed. Tracing never fails a flow run: these only come
//! from start-up calls.

use crate::config::ExporterKind;

/// A configuration value is invalid. The message names the variable or
/// setting and what was expected; it never shows a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable has a value that cannot be used.
    #[error("environment variable {var} has an invalid value {value:?}: expected {expected}")]
    InvalidVar {
        /// The variable.
        var: String,
        /// Its value (`***` for secrets).
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A value set in code cannot be used.
    #[error("invalid {setting}: {reason}")]
    Invalid {
        /// The setting (the builder method's name).
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// An endpoint URL cannot be used: not `http://` or `https://`, no
    /// host, a port that is not a number from 1 to 65535, or not a URL at
    /// all.
    #[error("{name} has an invalid endpoint {url:?}: {problem}")]
    InvalidEndpoint {
        /// The variable, or the setting (the builder method's name).
        name: String,
        /// The URL as given, with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A number is above its documented maximum.
    #[error("{name} is {value}, above its maximum of {max}")]
    TooLarge {
        /// The variable, or the setting (the builder method's name).
        name: String,
        /// The value as given.
        value: String,
        /// The largest value accepted.
        max: usize,
    },
    /// The export batch size is larger than the queue it is taken from.
    #[error(
        "{name} is {batch}, larger than the span queue ({queue}, OTEL_BSP_MAX_QUEUE_SIZE or max_queue_size): \
         a batch is taken from the queue, so lower the batch size or raise the queue size"
    )]
    BatchLargerThanQueue {
        /// The variable, or the setting, that set the batch size.
        name: String,
        /// The batch size asked for.
        batch: usize,
        /// The queue size.
        queue: usize,
    },
    /// A header for OTLP exports cannot be sent. The message names the
    /// header, never its value (it usually carries a credential).
    #[error("{name} has a header {header:?} that cannot be sent: {problem}")]
    InvalidHeader {
        /// The variable, or the setting (`otlp_headers`).
        name: String,
        /// The header's name.
        header: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A TLS file (a CA certificate, a client certificate or its key)
    /// cannot be used. The message never quotes the file.
    #[error("{name} names the file {path:?}, but {problem}")]
    TlsFile {
        /// The variable, or the setting (the builder method's name).
        name: String,
        /// The path as given.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A client certificate was given without its key, or a key without
    /// its certificate: mutual TLS needs both.
    #[error("{given} is set but {missing} is not: mutual TLS needs both the client certificate and its key")]
    ClientCertificateHalf {
        /// The variable or setting that was given.
        given: String,
        /// What is missing.
        missing: &'static str,
    },
    /// TLS files were given for an endpoint that is not `https://`: the
    /// spans would go out unencrypted although TLS was asked for.
    #[error("{name} is set, but the OTLP endpoint {url:?} is not https://: use an https:// endpoint for TLS")]
    TlsNeedsHttps {
        /// The variable or setting that asked for TLS.
        name: String,
        /// The endpoint, with any password replaced by `***`.
        url: String,
    },
    /// The Langfuse exporter was asked for but a key is missing.
    #[error(
        "the langfuse exporter needs {missing} (set it in code or in the environment; \
         LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY come from your Langfuse project settings)"
    )]
    MissingLangfuseKey {
        /// `LANGFUSE_PUBLIC_KEY` or `LANGFUSE_SECRET_KEY`.
        missing: &'static str,
    },
}

/// Tracing could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TracingError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An exporter could not be built.
    #[error("the {exporter} exporter could not be built: {reason}")]
    Exporter {
        /// Which exporter.
        exporter: ExporterKind,
        /// Why.
        reason: String,
    },
    /// The export thread could not be started.
    #[error("the export thread could not be started: {0}")]
    Thread(#[source] std::io::Error),
    /// A global subscriber is already installed; use [`crate::TracingConfig::layer`]
    /// to add tracing to it instead.
    #[error("a global tracing subscriber is already installed; add TracingConfig::layer() to it instead")]
    AlreadyInstalled,
}

/// An LLM response body that [`crate::Generation::record_openai_response`]
/// cannot read. Fields are named by their path, `choices.0.message.role`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The body is not JSON.
    #[error("the response body is not JSON: {0}")]
    NotJson(String),
    /// A field the body must have is missing.
    #[error("the response has no `{field}`")]
    Missing {
        /// Its path.
        field: String,
    },
    /// A field has the wrong type.
    #[error("the response's `{field}` is {found}, expected {expected}")]
    WrongType {
        /// Its path.
        field: String,
        /// What it should be.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
}

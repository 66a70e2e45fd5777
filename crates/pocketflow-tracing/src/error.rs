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

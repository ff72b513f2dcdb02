//! The one error type of steepest. Every fallible operation returns it; nothing panics on bad input.

use thiserror::Error;

/// Result alias used throughout steepest.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, each variant naming what is wrong.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A hyperparameter is out of range, of the wrong type, or unknown.
    #[error("{optimizer}: invalid hyperparameter `{field}`: {message}")]
    InvalidHyper {
        /// Optimizer (or transform) name.
        optimizer: String,
        /// The hyperparameter's name.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// No optimizer of that name is registered.
    #[error("unknown optimizer `{0}` (see `steepest list` for the registered names)")]
    UnknownOptimizer(String),
    /// A parameter definition or a gradient is inconsistent.
    #[error("parameter `{name}`: {message}")]
    Param {
        /// Parameter name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A gradient holds NaN or an infinity (policy `error`): nothing was changed.
    #[error("non-finite gradient for parameter `{name}` (NaN or Inf); the step was not applied")]
    NonFiniteGradient {
        /// Parameter name.
        name: String,
    },
    /// A state file cannot be read or does not fit this optimizer.
    #[error("optimizer state: {0}")]
    State(String),
    /// An input an algorithm needs on every step (the loss, per-sample gradients)
    /// is missing or unusable; nothing was changed.
    #[error("{optimizer}: step input `{input}`: {message}")]
    StepInput {
        /// Optimizer name.
        optimizer: String,
        /// The input: `loss`, `sample_grads` or `sample_grads.<param>`.
        input: String,
        /// What is wrong.
        message: String,
    },
    /// A replay spec is malformed.
    #[error("spec: {0}")]
    Spec(String),
    /// Privacy accounting ([`crate::privacy`]): an invalid input or an unreachable target.
    #[error("privacy: {0}")]
    Privacy(String),
    /// An I/O error (message only, so the error stays `Clone`).
    #[error("{path}: {message}")]
    Io {
        /// File path.
        path: String,
        /// OS message.
        message: String,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidHyper`].
    pub fn hyper(optimizer: &str, field: &str, message: impl Into<String>) -> Self {
        Error::InvalidHyper {
            optimizer: optimizer.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Param`].
    pub fn param(name: &str, message: impl Into<String>) -> Self {
        Error::Param {
            name: name.to_string(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::StepInput`].
    pub fn step_input(optimizer: &str, input: &str, message: impl Into<String>) -> Self {
        Error::StepInput {
            optimizer: optimizer.to_string(),
            input: input.to_string(),
            message: message.into(),
        }
    }

    /// Wraps an I/O error with its path.
    pub fn io(path: &std::path::Path, e: std::io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

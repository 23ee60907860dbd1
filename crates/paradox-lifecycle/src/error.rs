//! Errors of the lifecycle crate.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = LifecycleError> = std::result::Result<T, E>;

/// Everything that can go wrong here; every message names the problem.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// A caller's argument is wrong (shape, NaN, empty input, unknown name...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A model's files are missing, malformed or inconsistent, or inference failed.
    #[error("model: {0}")]
    Model(String),
    /// Stored lifecycle data is malformed.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// A numerical procedure failed (singular matrix, no convergence).
    #[error("numerical: {0}")]
    Numerical(String),
    /// The engine refused an operation.
    #[error(transparent)]
    Engine(#[from] paradox_engine::EngineError),
}

impl LifecycleError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> LifecycleError {
        LifecycleError::Io {
            path: path.into(),
            source,
        }
    }
}

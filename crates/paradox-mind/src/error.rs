//! Errors of the mind crate.

use paradox_engine::{EngineError, PointId};

/// Everything that can go wrong in `paradox-mind`.
#[derive(Debug, thiserror::Error)]
pub enum MindError {
    /// The engine refused a read or a write.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A point named in an expression does not exist in the collection.
    #[error("point {id} not found in collection `{collection}`")]
    PointNotFound {
        /// The collection searched.
        collection: String,
        /// The missing id.
        id: PointId,
    },
    /// Two vectors that must have the same length do not.
    #[error("dimension mismatch in {context}: expected {expected}, got {got}")]
    Dimension {
        /// Where the mismatch was found.
        context: &'static str,
        /// The expected length.
        expected: usize,
        /// The length seen.
        got: usize,
    },
    /// An argument is out of its domain.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The argument's name.
        field: &'static str,
        /// What was wrong and what is expected.
        message: String,
    },
}

impl MindError {
    /// An invalid-argument error.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        MindError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, MindError>;

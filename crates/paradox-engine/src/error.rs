//! The engine's error type. Every variant names the offending input and what was expected,
//! so the message can be shown to a user as it is.

use crate::point::PointId;
use paradox_storage::StorageError;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A collection name that does not exist.
    #[error("unknown collection `{0}`")]
    UnknownCollection(String),
    /// A collection name that is already taken.
    #[error("collection `{0}` already exists")]
    CollectionExists(String),
    /// A collection name with forbidden characters or length.
    #[error("invalid collection name `{name}`: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A vector whose length differs from the collection's dimension.
    #[error("dimension mismatch: collection `{collection}` expects {expected}, got {got}{}", point_suffix(.point))]
    DimensionMismatch {
        /// Collection name.
        collection: String,
        /// Configured dimension.
        expected: usize,
        /// Length received.
        got: usize,
        /// The point it belonged to, when it came from an upsert.
        point: Option<PointId>,
    },
    /// A vector containing NaN or an infinity.
    #[error("vector{} has a non-finite value ({value}) at position {position}", point_suffix(.point))]
    NonFiniteValue {
        /// The point it belonged to, when it came from an upsert.
        point: Option<PointId>,
        /// Index within the vector.
        position: usize,
        /// The offending value, printed.
        value: String,
    },
    /// A zero vector under the cosine metric, which has no direction.
    #[error("vector{} is all zeros; cosine similarity is undefined for it", point_suffix(.point))]
    ZeroVector {
        /// The point it belonged to, when it came from an upsert.
        point: Option<PointId>,
    },
    /// The same id twice in one batch.
    #[error("duplicate id {0} in one batch: each id may appear once per upsert")]
    DuplicateId(PointId),
    /// Any other invalid argument (k = 0, oversized batch, bad config...).
    #[error("invalid argument `{field}`: {message}")]
    InvalidArgument {
        /// The argument or field.
        field: &'static str,
        /// What was wrong and what is expected.
        message: String,
    },
    /// A payload or filter that is not valid JSON of the expected shape.
    #[error("invalid {what}: {message}")]
    InvalidJson {
        /// What was being parsed ("filter", "payload"...).
        what: &'static str,
        /// The parser's explanation.
        message: String,
    },
    /// The data directory is in use by another process.
    #[error("{0} is locked: another process, or another open engine in this process, holds it")]
    Locked(String),
    /// A file on disk failed validation and could not be recovered.
    #[error("corrupt data in {path}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What was found.
        reason: String,
    },
    /// A previous write failed to reach disk; the collection refuses further writes until
    /// reopened, because it can no longer promise what is durable.
    #[error("collection `{0}` is read-only after a failed disk write; reopen the engine to recover from the log")]
    Failed(String),
    /// Storage layer failure (I/O, checksum, format).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Plain I/O failure with the path involved.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn point_suffix(point: &Option<PointId>) -> String {
    match point {
        Some(id) => format!(" (point {id})"),
        None => String::new(),
    }
}

impl EngineError {
    /// Wraps an I/O error with its path.
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// An `InvalidArgument` error.
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        EngineError::InvalidArgument {
            field,
            message: message.into(),
        }
    }

    /// Whether the error was caused by the caller's input (as opposed to the machine or the
    /// data on disk). Servers map these to 4xx.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            EngineError::UnknownCollection(_)
                | EngineError::CollectionExists(_)
                | EngineError::InvalidName { .. }
                | EngineError::DimensionMismatch { .. }
                | EngineError::NonFiniteValue { .. }
                | EngineError::ZeroVector { .. }
                | EngineError::DuplicateId(_)
                | EngineError::InvalidArgument { .. }
                | EngineError::InvalidJson { .. }
        )
    }
}

/// Result alias for the engine.
pub type Result<T> = std::result::Result<T, EngineError>;

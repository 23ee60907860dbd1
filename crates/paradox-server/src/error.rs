//! [`ApiError`]: what a caller sees when a call fails, the same on both transports.
//! REST renders it as `{"error": {"code": "...", "message": "..."}}` with a matching HTTP
//! status; gRPC as a status with the matching code. Engine errors caused by the input map
//! to 4xx with the engine's message (it names the field and the expected value); failures
//! of the machine map to 500 with a generic message, the details going to the log only.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use paradox_engine::EngineError;
use paradox_lifecycle::LifecycleError;
use paradox_mind::MindError;

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Malformed or out-of-range input (400).
    #[error("{0}")]
    InvalidArgument(String),
    /// Well-formed JSON of the wrong shape (422).
    #[error("{0}")]
    Unprocessable(String),
    /// No or unknown API key (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The key may not do this (403).
    #[error("{0}")]
    PermissionDenied(String),
    /// Unknown collection, snapshot, point or route (404).
    #[error("{0}")]
    NotFound(String),
    /// The name is taken (409).
    #[error("{0}")]
    AlreadyExists(String),
    /// Request body over the limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Unsupported content type (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The write queue is full; retry later (429).
    #[error("{0}")]
    Overloaded(String),
    /// The request took longer than the configured limit (504).
    #[error("{0}")]
    Timeout(String),
    /// The server cannot serve this now (shutting down, collection read-only) (503).
    #[error("{0}")]
    Unavailable(String),
    /// A failure on the server's side; the message is generic (500).
    #[error("{0}")]
    Internal(String),
    /// This service does not offer the operation (501), e.g. living collections on a
    /// service that has no lifecycle layer.
    #[error("{0}")]
    Unsupported(String),
}

impl ApiError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidArgument(_) => "invalid_argument",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::PermissionDenied(_) => "permission_denied",
            ApiError::NotFound(_) => "not_found",
            ApiError::AlreadyExists(_) => "already_exists",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::Timeout(_) => "timeout",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
            ApiError::Unsupported(_) => "unsupported",
        }
    }

    /// The HTTP status.
    pub fn http_status(&self) -> StatusCode {
        match self {
            ApiError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// The gRPC status.
    pub fn to_status(&self) -> tonic::Status {
        use tonic::Code;
        let code = match self {
            ApiError::InvalidArgument(_)
            | ApiError::Unprocessable(_)
            | ApiError::UnsupportedMediaType(_) => Code::InvalidArgument,
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::PermissionDenied(_) => Code::PermissionDenied,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::AlreadyExists(_) => Code::AlreadyExists,
            ApiError::PayloadTooLarge(_) | ApiError::Overloaded(_) => Code::ResourceExhausted,
            ApiError::Timeout(_) => Code::DeadlineExceeded,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
            ApiError::Unsupported(_) => Code::Unimplemented,
        };
        tonic::Status::new(code, self.to_string())
    }

    /// `{"error": {"code", "message"}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}})
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        match &err {
            EngineError::UnknownCollection(_) => ApiError::NotFound(err.to_string()),
            EngineError::CollectionExists(_) => ApiError::AlreadyExists(err.to_string()),
            EngineError::Failed(_) => ApiError::Unavailable(err.to_string()),
            e if e.is_user_error() => ApiError::InvalidArgument(err.to_string()),
            _ => {
                // Paths and OS errors stay in the server's log.
                tracing::error!(error = %err, "engine failure");
                ApiError::Internal("internal error; see the server log".into())
            }
        }
    }
}

impl From<MindError> for ApiError {
    fn from(err: MindError) -> Self {
        match err {
            MindError::Engine(e) => e.into(),
            MindError::PointNotFound { .. } => ApiError::NotFound(err.to_string()),
            MindError::Dimension { .. } | MindError::Invalid { .. } => {
                ApiError::InvalidArgument(err.to_string())
            }
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(err: LifecycleError) -> Self {
        match err {
            LifecycleError::Engine(e) => e.into(),
            // The caller's input (a shape, a name, an empty window), or a fit the data
            // cannot support (a singular system: more or other calibration pairs help).
            LifecycleError::InvalidArgument(message) => ApiError::InvalidArgument(message),
            LifecycleError::Numerical(message) => {
                ApiError::InvalidArgument(format!("numerical failure: {message}"))
            }
            // Model files the server cannot read: its setup, not the request. Paths stay
            // in the log.
            LifecycleError::Model(message) => {
                tracing::error!(error = %message, "encoder failure");
                ApiError::Unavailable(
                    "the encoder cannot run on this server (model files missing or \
                     unreadable: see [lifecycle] model_dir and the server log)"
                        .into(),
                )
            }
            err @ (LifecycleError::Io { .. } | LifecycleError::Corrupt(_)) => {
                tracing::error!(error = %err, "lifecycle failure");
                ApiError::Internal("internal error; see the server log".into())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.http_status();
        let mut response = (status, axum::Json(self.body())).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Result alias for API calls.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_4xx_or_generic_500() {
        let e: ApiError = EngineError::UnknownCollection("x".into()).into();
        assert_eq!(e.http_status(), StatusCode::NOT_FOUND);
        let e: ApiError = EngineError::CollectionExists("x".into()).into();
        assert_eq!(e.http_status(), StatusCode::CONFLICT);
        let e: ApiError = EngineError::DuplicateId(1u64.into()).into();
        assert_eq!(e.http_status(), StatusCode::BAD_REQUEST);
        let e: ApiError = EngineError::Corrupt {
            path: "/secret/path".into(),
            reason: "bad".into(),
        }
        .into();
        assert_eq!(e.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.to_string().contains("/secret"));
        assert_eq!(e.body()["error"]["code"], "internal");
    }

    #[test]
    fn mind_errors_map_to_4xx() {
        let e: ApiError = MindError::PointNotFound {
            collection: "c".into(),
            id: 7u64.into(),
        }
        .into();
        assert_eq!(e.http_status(), StatusCode::NOT_FOUND);
        assert!(e.to_string().contains("point 7"), "{e}");
        let e: ApiError = MindError::Dimension {
            context: "arithmetic",
            expected: 3,
            got: 2,
        }
        .into();
        assert_eq!(e.http_status(), StatusCode::BAD_REQUEST);
        let e: ApiError = MindError::invalid("k", "must be at least 1").into();
        assert_eq!(e.to_status().code(), tonic::Code::InvalidArgument);
        let e: ApiError = MindError::Engine(EngineError::UnknownCollection("c".into())).into();
        assert_eq!(e.http_status(), StatusCode::NOT_FOUND);
    }
}

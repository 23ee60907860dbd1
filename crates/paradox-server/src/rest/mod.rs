//! The REST transport (axum): JSON over HTTP/1.1, a thin layer over [`MemoryService`].
//!
//! Every route passes through `observe` (request id, tracing span, metrics), extracts
//! its caller with [`Ctx`] (401 at once on a bad key) and its body with [`ApiJson`]
//! (malformed JSON → 400, wrong shape → 422 naming the field, over the body limit → 413),
//! then calls the service through the [`Gate`]. Unknown routes get 404 and wrong methods
//! 405, both with the JSON error body.

mod handlers;
pub mod legacy;
mod living;
mod openapi;

use crate::error::ApiError;
use crate::gate::{new_request_id, CallContext, Gate};
use crate::service::MemoryService;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

pub use openapi::openapi_json;

/// What every REST handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The service (engine or, later, cluster router).
    pub service: Arc<dyn MemoryService>,
    /// Auth, limits, audit, metrics.
    pub gate: Arc<Gate>,
    /// The paradoxlf 0.17 routes' state, when enabled.
    pub legacy: Option<Arc<legacy::LegacyState>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("gate", &self.gate)
            .finish()
    }
}

/// The request id of the current request (set by `observe`).
#[derive(Debug, Clone)]
struct RequestId(String);

/// The caller, from the `authorization` or `api-key` header. Rejects with 401 when a key
/// is required and missing or unknown.
#[derive(Debug)]
pub struct Ctx(pub CallContext);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(new_request_id);
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let ctx = CallContext {
            request_id,
            transport: "rest",
            credential: header("authorization").or_else(|| header("api-key")),
        };
        if let Err(refused) = state.gate.principal(&ctx) {
            // Refused before the handler (and its `Gate::run`) is reached: audit a
            // mutating call here, under the name its handler would record.
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map(MatchedPath::as_str);
            if let Some(operation) =
                route.and_then(|r| handlers::audited_operation(&parts.method, r))
            {
                let collection = match route {
                    Some(r) if r.starts_with("/v1/collections/") => parts
                        .uri
                        .path()
                        .strip_prefix("/v1/collections/")
                        .and_then(|rest| rest.split('/').next())
                        .map(str::to_string),
                    Some(_) => state.legacy.as_ref().map(|l| l.collection.clone()),
                    None => None,
                };
                state
                    .gate
                    .audit_refusal(&ctx, operation, collection.as_deref(), &refused);
            }
            return Err(refused);
        }
        Ok(Ctx(ctx))
    }
}

/// A JSON body whose rejections are [`ApiError`]s with precise messages.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // axum's text is "Failed to deserialize the JSON body into the target type: <path>: <serde message>".
            let text = e.body_text();
            let detail = text
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .unwrap_or(&text);
            ApiError::Unprocessable(format!("invalid request body: {detail}"))
        }
        JsonRejection::JsonSyntaxError(e) => {
            let text = e.body_text();
            let detail = text
                .strip_prefix("Failed to parse the request body as JSON: ")
                .unwrap_or(&text);
            ApiError::InvalidArgument(format!("malformed JSON: {detail}"))
        }
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("expected `content-type: application/json`".into())
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("request body is larger than limits.max_body_bytes".into())
        }
        other => ApiError::InvalidArgument(other.body_text()),
    }
}

/// Request id, tracing span, access log line and metrics for every request.
async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, route = %route);
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    state.gate.metrics.observe(
        "rest",
        &format!("{method} {route}"),
        status.as_str(),
        elapsed.as_secs_f64(),
    );
    span.in_scope(|| {
        let error = response
            .extensions()
            .get::<ApiError>()
            .map(ToString::to_string);
        // Failures at info; successes at debug, so the log costs nothing on the hot path
        // unless asked for (RUST_LOG=paradox_server=debug).
        let (status, elapsed_us) = (status.as_u16(), elapsed.as_micros() as u64);
        match error {
            Some(error) => tracing::info!(status, elapsed_us, error, "answered"),
            None => tracing::debug!(status, elapsed_us, "answered"),
        }
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!("no route {} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed(req: Request) -> Response {
    let mut response = ApiError::InvalidArgument(format!(
        "method {} is not allowed on {}",
        req.method(),
        req.uri().path()
    ))
    .into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

async fn healthz() -> Json<crate::api::HealthResponse> {
    Json(crate::api::HealthResponse {
        status: "ok".into(),
    })
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.gate.is_shutting_down() || !state.service.ready().await {
        let body = crate::api::HealthResponse {
            status: "shutting_down".into(),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    } else {
        Json(crate::api::HealthResponse {
            status: "ok".into(),
        })
        .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let collections = state.service.list_collections().await.unwrap_or_default();
    let living = match state.service.living() {
        Ok(living) => living.metrics().await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.gate.metrics.render(&collections, &living),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([("content-type", "application/json")], openapi_json()).into_response()
}

/// The full REST router: `/v1/...`, health, metrics, OpenAPI, and the legacy routes when
/// `state.legacy` is set.
pub fn router(state: AppState) -> Router {
    let max_body = state.gate.limits.max_body_bytes;
    let mut router = handlers::routes()
        .merge(living::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi));
    if state.legacy.is_some() {
        router = router.merge(legacy::routes());
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

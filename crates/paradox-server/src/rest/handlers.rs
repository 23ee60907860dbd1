//! The `/v1` REST handlers: one per service operation, each documented for the OpenAPI
//! document (`#[utoipa::path]`). A handler only extracts, checks limits and calls the
//! service through the gate; it holds no logic of its own.

use super::{ApiJson, AppState, Ctx};
use crate::api::*;
use crate::auth::Access;
use crate::error::{ApiError, ApiResult};
use crate::service::parse_path_id;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

/// The `/v1` routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/info", get(server_info))
        .route(
            "/v1/collections",
            get(list_collections).post(create_collection),
        )
        .route(
            "/v1/collections/{name}",
            get(collection_info)
                .patch(update_collection)
                .delete(delete_collection),
        )
        .route("/v1/collections/{name}/points", axum::routing::put(upsert))
        .route("/v1/collections/{name}/points/get", post(get_points))
        .route("/v1/collections/{name}/points/{id}", get(get_point))
        .route("/v1/collections/{name}/points/delete", post(delete_points))
        .route("/v1/collections/{name}/points/scroll", post(scroll))
        .route("/v1/collections/{name}/points/count", post(count))
        .route("/v1/collections/{name}/search", post(search))
        .route("/v1/collections/{name}/search/batch", post(search_batch))
        .route(
            "/v1/collections/{name}/points/{id}/history",
            get(point_history),
        )
        .route("/v1/collections/{name}/reason", post(reason))
        .route(
            "/v1/collections/{name}/snapshots",
            get(list_snapshots).post(create_snapshot),
        )
        .route(
            "/v1/collections/{name}/snapshots/upload",
            post(upload_snapshot),
        )
        .route(
            "/v1/collections/{name}/snapshots/{snapshot}",
            get(download_snapshot),
        )
        .route(
            "/v1/collections/{name}/snapshots/{snapshot}/restore",
            post(restore_snapshot),
        )
}

/// The operation name a non-read route's handler gives the gate (and so the audit log),
/// by method and route template. The `Ctx` extractor uses it to audit calls it refuses
/// (401) before the handler runs; `tests/auth.rs` checks both names agree.
pub(super) fn audited_operation(method: &Method, route: &str) -> Option<&'static str> {
    Some(match (method.as_str(), route) {
        ("POST", "/v1/collections") => "create_collection",
        ("PATCH", "/v1/collections/{name}") => "update_collection",
        ("DELETE", "/v1/collections/{name}") => "delete_collection",
        ("PUT", "/v1/collections/{name}/points") => "upsert",
        ("POST", "/v1/collections/{name}/points/delete") => "delete_points",
        ("POST", "/v1/collections/{name}/snapshots") => "create_snapshot",
        ("GET", "/v1/collections/{name}/snapshots") => "list_snapshots",
        ("GET", "/v1/collections/{name}/snapshots/{snapshot}") => "download_snapshot",
        ("POST", "/v1/collections/{name}/snapshots/upload") => "upload_snapshot",
        ("POST", "/v1/collections/{name}/snapshots/{snapshot}/restore") => "restore_snapshot",
        ("POST", "/add") => "legacy_add",
        _ => return super::living::audited_operation(method, route),
    })
}

#[utoipa::path(get, path = "/v1/info", responses((status = 200, body = ServerInfo)))]
pub(super) async fn server_info(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<ServerInfo>> {
    let principal = s.gate.principal(&ctx)?;
    let visible = s
        .gate
        .run(
            &ctx,
            "server_info",
            Access::Read,
            None,
            s.service.list_collections(),
        )
        .await?
        .into_iter()
        .filter(|c| principal.may_touch(&c.name))
        .count();
    let l = &s.gate.limits;
    Ok(Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        auth_enabled: s.gate.auth.enabled(),
        max_batch: l.max_batch,
        max_k: l.max_k,
        max_dimension: l.max_dimension,
        max_body_bytes: l.max_body_bytes,
        request_timeout_ms: l.request_timeout_ms,
        collections: visible,
    }))
}

#[utoipa::path(get, path = "/v1/collections", responses((status = 200, body = CollectionList)))]
pub(super) async fn list_collections(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<CollectionList>> {
    let principal = s.gate.principal(&ctx)?;
    let all = s
        .gate
        .run(
            &ctx,
            "list_collections",
            Access::Read,
            None,
            s.service.list_collections(),
        )
        .await?;
    let collections = all
        .into_iter()
        .filter(|c| principal.may_touch(&c.name))
        .collect();
    Ok(Json(CollectionList { collections }))
}

#[utoipa::path(post, path = "/v1/collections", request_body = CreateCollectionRequest,
    responses((status = 201, body = CollectionDescription), (status = 409, description = "name taken")))]
pub(super) async fn create_collection(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<CreateCollectionRequest>,
) -> ApiResult<(StatusCode, Json<CollectionDescription>)> {
    let name = body.name.clone();
    let call = async {
        s.gate.check_dimension(body.dimension)?;
        s.service.create_collection(body).await
    };
    let info = s
        .gate
        .run(&ctx, "create_collection", Access::Admin, Some(&name), call)
        .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

#[utoipa::path(get, path = "/v1/collections/{name}", responses((status = 200, body = CollectionDescription), (status = 404)))]
pub(super) async fn collection_info(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> ApiResult<Json<CollectionDescription>> {
    let call = s.service.collection_info(&name);
    Ok(Json(
        s.gate
            .run(&ctx, "collection_info", Access::Read, Some(&name), call)
            .await?,
    ))
}

#[utoipa::path(patch, path = "/v1/collections/{name}", request_body = UpdateCollectionRequest,
    responses((status = 200, body = CollectionDescription)))]
pub(super) async fn update_collection(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateCollectionRequest>,
) -> ApiResult<Json<CollectionDescription>> {
    let call = s.service.update_collection(&name, body);
    Ok(Json(
        s.gate
            .run(&ctx, "update_collection", Access::Admin, Some(&name), call)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/v1/collections/{name}", responses((status = 204), (status = 404)))]
pub(super) async fn delete_collection(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let call = s.service.delete_collection(&name);
    s.gate
        .run(&ctx, "delete_collection", Access::Admin, Some(&name), call)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/v1/collections/{name}/points", request_body = UpsertRequest,
    responses((status = 200, body = WriteResponse), (status = 429, description = "write queue full")))]
pub(super) async fn upsert(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpsertRequest>,
) -> ApiResult<Json<WriteResponse>> {
    let call = async {
        s.gate.check_batch("points", body.points.len())?;
        s.service.upsert(&name, body.points).await
    };
    Ok(Json(
        s.gate
            .run(&ctx, "upsert", Access::Write, Some(&name), call)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/collections/{name}/points/get", request_body = GetPointsRequest,
    responses((status = 200, body = PointsResponse)))]
pub(super) async fn get_points(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<GetPointsRequest>,
) -> ApiResult<Json<PointsResponse>> {
    let call = async {
        s.gate.check_batch("ids", body.ids.len())?;
        s.service.get_points(&name, body).await
    };
    Ok(Json(
        s.gate
            .run(&ctx, "get_points", Access::Read, Some(&name), call)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/collections/{name}/points/{id}",
    responses((status = 200, description = "the point"), (status = 404)))]
pub(super) async fn get_point(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let request = GetPointsRequest {
        ids: vec![parse_path_id(&id)],
        with_vector: true,
    };
    let call = s.service.get_points(&name, request);
    let found = s
        .gate
        .run(&ctx, "get_points", Access::Read, Some(&name), call)
        .await?;
    match found.points.into_iter().next() {
        Some(point) => Ok(Json(point).into_response()),
        None => Err(ApiError::NotFound(format!(
            "collection `{name}` has no point {}",
            parse_path_id(&id)
        ))),
    }
}

#[utoipa::path(post, path = "/v1/collections/{name}/points/delete", request_body = DeletePointsRequest,
    responses((status = 200, body = WriteResponse)))]
pub(super) async fn delete_points(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<DeletePointsRequest>,
) -> ApiResult<Json<WriteResponse>> {
    let call = async {
        s.gate
            .check_batch("ids", body.ids.as_ref().map_or(0, Vec::len))?;
        s.service.delete_points(&name, body).await
    };
    Ok(Json(
        s.gate
            .run(&ctx, "delete_points", Access::Write, Some(&name), call)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/collections/{name}/points/scroll", request_body = ScrollRequest,
    responses((status = 200, body = ScrollResponse)))]
pub(super) async fn scroll(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ScrollRequest>,
) -> ApiResult<Json<ScrollResponse>> {
    let call = async {
        s.gate.check_k("limit", body.limit)?;
        s.service.scroll(&name, body).await
    };
    Ok(Json(
        s.gate
            .run(&ctx, "scroll", Access::Read, Some(&name), call)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/collections/{name}/points/count", request_body = CountRequest,
    responses((status = 200, body = CountResponse)))]
pub(super) async fn count(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<CountRequest>,
) -> ApiResult<Json<CountResponse>> {
    let call = s.service.count(&name, body.filter);
    let count = s
        .gate
        .run(&ctx, "count", Access::Read, Some(&name), call)
        .await?;
    Ok(Json(CountResponse { count }))
}

#[utoipa::path(post, path = "/v1/collections/{name}/search", request_body = SearchRequest,
    responses((status = 200, body = SearchResponse)))]
pub(super) async fn search(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SearchRequest>,
) -> ApiResult<Json<SearchResponse>> {
    let call = async {
        s.gate.check_k("k", body.k)?;
        s.service.search(&name, body).await
    };
    Ok(Json(
        s.gate
            .run(&ctx, "search", Access::Read, Some(&name), call)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/collections/{name}/search/batch", request_body = SearchBatchRequest,
    responses((status = 200, body = SearchBatchResponse)))]
pub(super) async fn search_batch(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SearchBatchRequest>,
) -> ApiResult<Json<SearchBatchResponse>> {
    let call = async {
        s.gate.check_batch("searches", body.searches.len())?;
        for search in &body.searches {
            s.gate.check_k("k", search.k)?;
        }
        s.service.search_batch(&name, body.searches).await
    };
    Ok(Json(
        s.gate
            .run(&ctx, "search_batch", Access::Read, Some(&name), call)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/collections/{name}/points/{id}/history",
    responses((status = 200, body = HistoryResponse),
        (status = 400, description = "the collection keeps no history"),
        (status = 404, description = "no such collection, or the point was never written")))]
pub(super) async fn point_history(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Json<HistoryResponse>> {
    let call = s.service.point_history(&name, parse_path_id(&id));
    Ok(Json(
        s.gate
            .run(&ctx, "point_history", Access::Read, Some(&name), call)
            .await?,
    ))
}

/// Reasoning over a collection: the body is `{"op": ..}` with the operation's fields.
#[utoipa::path(post, path = "/v1/collections/{name}/reason",
    request_body(content = serde_json::Value, description = "One operation tagged by `op`: `arithmetic`, `analogy`, `blend`, `attention` or `trajectory`, with its fields (docs/server.md)"),
    responses((status = 200, description = "`{\"vector\"?, \"hits\": [..], \"trajectory\"?}`"),
        (status = 400, description = "invalid argument, dimension mismatch, no history"),
        (status = 404, description = "unknown collection or point")))]
pub(super) async fn reason(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ReasonRequest>,
) -> ApiResult<Json<ReasonResponse>> {
    let call = async {
        s.gate.check_reason(&body)?;
        s.service.reason(&name, body).await
    };
    Ok(Json(
        s.gate
            .run(&ctx, "reason", Access::Read, Some(&name), call)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/collections/{name}/snapshots",
    responses((status = 201, body = SnapshotDescription)))]
pub(super) async fn create_snapshot(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<SnapshotDescription>)> {
    let call = s.service.create_snapshot(&name);
    let snapshot = s
        .gate
        .run(&ctx, "create_snapshot", Access::Admin, Some(&name), call)
        .await?;
    Ok((StatusCode::CREATED, Json(snapshot)))
}

#[utoipa::path(get, path = "/v1/collections/{name}/snapshots",
    responses((status = 200, body = SnapshotList)))]
pub(super) async fn list_snapshots(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> ApiResult<Json<SnapshotList>> {
    let call = s.service.list_snapshots(&name);
    let snapshots = s
        .gate
        .run(&ctx, "list_snapshots", Access::Admin, Some(&name), call)
        .await?;
    Ok(Json(SnapshotList { snapshots }))
}

#[utoipa::path(get, path = "/v1/collections/{name}/snapshots/{snapshot}",
    responses((status = 200, description = "the snapshot file (application/octet-stream)")))]
pub(super) async fn download_snapshot(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((name, snapshot)): Path<(String, String)>,
) -> ApiResult<Response> {
    let call = s.service.open_snapshot(&name, &snapshot);
    let file = s
        .gate
        .run(&ctx, "download_snapshot", Access::Admin, Some(&name), call)
        .await?;
    let stream = crate::service::chunk_stream(file.reader);
    Ok((
        [
            ("content-type", "application/octet-stream".to_string()),
            ("content-length", file.bytes.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Streams the body to disk (never into memory), up to `limits.max_snapshot_bytes`, then
/// verifies it like a snapshot about to be restored and keeps it among `name`'s snapshots.
#[utoipa::path(post, path = "/v1/collections/{name}/snapshots/upload",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "a snapshot file, as downloaded from GET /v1/collections/{name}/snapshots/{snapshot}"),
    responses((status = 201, body = SnapshotDescription),
        (status = 400, description = "not a valid snapshot, or a snapshot of another collection"),
        (status = 413, description = "over limits.max_snapshot_bytes")))]
pub(super) async fn upload_snapshot(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<SnapshotDescription>)> {
    use tokio_stream::StreamExt;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let call = async {
        s.gate.check_snapshot_length(declared)?;
        let source = body.into_data_stream().map(|chunk| {
            chunk.map_err(|e| ApiError::InvalidArgument(format!("reading the upload failed: {e}")))
        });
        let upload = s.gate.snapshot_upload(Box::pin(source));
        s.service.upload_snapshot(&name, upload).await
    };
    let snapshot = s
        .gate
        .run_streaming(&ctx, "upload_snapshot", Access::Admin, Some(&name), call)
        .await?;
    Ok((StatusCode::CREATED, Json(snapshot)))
}

#[utoipa::path(post, path = "/v1/collections/{name}/snapshots/{snapshot}/restore",
    request_body = RestoreSnapshotRequest,
    responses((status = 201, body = CollectionDescription), (status = 409, description = "name taken")))]
pub(super) async fn restore_snapshot(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((name, snapshot)): Path<(String, String)>,
    ApiJson(body): ApiJson<RestoreSnapshotRequest>,
) -> ApiResult<(StatusCode, Json<CollectionDescription>)> {
    // Restoring creates a collection: the caller needs admin on the new name too. Checked
    // inside the gated call, so a refusal is audited like any other.
    let principal = s.gate.principal(&ctx).ok();
    let call = async {
        if let (Some(principal), Some(target)) = (&principal, &body.as_name) {
            principal.authorize(Access::Admin, Some(target))?;
        }
        s.service
            .restore_snapshot(&name, &snapshot, body.as_name.clone())
            .await
    };
    let info = s
        .gate
        .run(&ctx, "restore_snapshot", Access::Admin, Some(&name), call)
        .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

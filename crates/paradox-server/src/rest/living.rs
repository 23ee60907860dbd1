//! The `/v1/collections/{name}/living` REST handlers: living collections (vector spaces,
//! raw-text writes, adapter-backed search, adapters, migrations, overlays, drift), one
//! handler per [`LivingService`](crate::service::LivingService) operation. Like the other
//! handlers, each only extracts, checks limits and calls the service through the gate.
//!
//! Access follows the rest of the API: reading (describe, search, migration status,
//! drift) is `read-only`; writing points (texts, vectors, deletes) is `read-write`;
//! changing the collection's make-up (init, adding and removing spaces, the default
//! space, adapters, migrations, overlays) is `admin`, like creating a collection or
//! changing its index.

use super::{ApiJson, AppState, Ctx};
use crate::api::*;
use crate::auth::Access;
use crate::error::ApiResult;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};

/// The living routes.
pub(super) fn routes() -> Router<AppState> {
    const BASE: &str = "/v1/collections/{name}/living";
    let route = |tail: &str| format!("{BASE}{tail}");
    Router::new()
        .route(BASE, get(living_describe).post(living_init))
        .route(&route("/spaces"), post(living_add_space))
        .route(&route("/spaces/{space}"), delete(living_remove_space))
        .route(&route("/default"), put(living_set_default_space))
        .route(&route("/texts"), put(living_upsert_texts))
        .route(&route("/spaces/{space}/points"), put(living_upsert_vectors))
        .route(&route("/delete"), post(living_delete))
        .route(&route("/search"), post(living_search))
        .route(&route("/adapters"), post(living_fit_adapters))
        .route(
            &route("/migration"),
            get(living_migration_status).post(living_start_migration),
        )
        .route(&route("/migration/pause"), post(living_pause_migration))
        .route(&route("/drift"), post(living_drift))
        .route(
            &route("/overlays/{overlay}"),
            put(living_set_overlay).delete(living_remove_overlay),
        )
}

/// The operation name each non-read living route gives the gate (and the audit log).
pub(super) fn audited_operation(method: &Method, route: &str) -> Option<&'static str> {
    let tail = route.strip_prefix("/v1/collections/{name}/living")?;
    Some(match (method.as_str(), tail) {
        ("POST", "") => "living_init",
        ("POST", "/spaces") => "living_add_space",
        ("DELETE", "/spaces/{space}") => "living_remove_space",
        ("PUT", "/default") => "living_set_default_space",
        ("PUT", "/texts") => "living_upsert_texts",
        ("PUT", "/spaces/{space}/points") => "living_upsert_vectors",
        ("POST", "/delete") => "living_delete",
        ("POST", "/adapters") => "living_fit_adapters",
        ("POST", "/migration") => "living_start_migration",
        ("POST", "/migration/pause") => "living_pause_migration",
        ("PUT", "/overlays/{overlay}") => "living_set_overlay",
        ("DELETE", "/overlays/{overlay}") => "living_remove_overlay",
        _ => return None,
    })
}

/// Makes an existing collection living: its vectors become the first space.
#[utoipa::path(post, path = "/v1/collections/{name}/living", tag = "living",
    request_body = LivingInitRequest,
    responses((status = 200, body = LivingDescription),
        (status = 400, description = "bad space name or encoder spec, encoder dimension unlike the collection's"),
        (status = 404, description = "unknown collection"),
        (status = 409, description = "already living with another first space")))]
pub(super) async fn living_init(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<LivingInitRequest>,
) -> ApiResult<Json<LivingDescription>> {
    let call = async { s.service.living()?.init(&name, body).await };
    let answer = s
        .gate
        .run(&ctx, "living_init", Access::Admin, Some(&name), call)
        .await?;
    Ok(Json(answer))
}

/// Spaces (points, coverage, default), adapters (measured fit), migration, overlays.
#[utoipa::path(get, path = "/v1/collections/{name}/living", tag = "living",
    responses((status = 200, body = LivingDescription),
        (status = 400, description = "not a living collection"),
        (status = 404, description = "unknown collection")))]
pub(super) async fn living_describe(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> ApiResult<Json<LivingDescription>> {
    let call = async { s.service.living()?.describe(&name).await };
    let answer = s
        .gate
        .run(&ctx, "living_describe", Access::Read, Some(&name), call)
        .await?;
    Ok(Json(answer))
}

/// Registers a new space, stored in a companion collection `<name>--<space slug>`.
#[utoipa::path(post, path = "/v1/collections/{name}/living/spaces", tag = "living",
    request_body = AddSpaceRequest,
    responses((status = 201, body = SpaceDescription),
        (status = 400, description = "bad name, encoder spec or dimension"),
        (status = 409, description = "the space (or its companion collection) exists")))]
pub(super) async fn living_add_space(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<AddSpaceRequest>,
) -> ApiResult<(StatusCode, Json<SpaceDescription>)> {
    let call = async {
        if let Some(dim) = body.dim {
            s.gate.check_dimension(dim)?;
        }
        s.service.living()?.add_space(&name, body).await
    };
    let space = s
        .gate
        .run(&ctx, "living_add_space", Access::Admin, Some(&name), call)
        .await?;
    Ok((StatusCode::CREATED, Json(space)))
}

/// Removes a space: its companion collection, the adapters from or into it and the
/// overlays on it.
#[utoipa::path(delete, path = "/v1/collections/{name}/living/spaces/{space}", tag = "living",
    responses((status = 200, body = LivingDescription),
        (status = 400, description = "the first space, the default space, or a space in a running migration (the message names which)"),
        (status = 404, description = "unknown collection or space")))]
pub(super) async fn living_remove_space(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((name, space)): Path<(String, String)>,
) -> ApiResult<Json<LivingDescription>> {
    let call = async { s.service.living()?.remove_space(&name, &space).await };
    let answer = s
        .gate
        .run(
            &ctx,
            "living_remove_space",
            Access::Admin,
            Some(&name),
            call,
        )
        .await?;
    Ok(Json(answer))
}

/// Makes a space the one searches use when they name none.
#[utoipa::path(put, path = "/v1/collections/{name}/living/default", tag = "living",
    request_body = SetDefaultSpaceRequest,
    responses((status = 200, body = LivingDescription), (status = 404, description = "unknown space")))]
pub(super) async fn living_set_default_space(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SetDefaultSpaceRequest>,
) -> ApiResult<Json<LivingDescription>> {
    let call = async {
        s.service
            .living()?
            .set_default_space(&name, &body.space)
            .await
    };
    let answer = s
        .gate
        .run(
            &ctx,
            "living_set_default_space",
            Access::Admin,
            Some(&name),
            call,
        )
        .await?;
    Ok(Json(answer))
}

/// Writes points as raw text, encoded on the server into every space that has an encoder
/// (all or nothing).
#[utoipa::path(put, path = "/v1/collections/{name}/living/texts", tag = "living",
    request_body = UpsertTextsRequest,
    responses((status = 200, body = LivingWriteResponse),
        (status = 400, description = "empty batch or text, text over limits.max_text_bytes, no space with an encoder, duplicate ids")))]
pub(super) async fn living_upsert_texts(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpsertTextsRequest>,
) -> ApiResult<Json<LivingWriteResponse>> {
    let call = async {
        s.gate.check_batch("points", body.points.len())?;
        for (i, point) in body.points.iter().enumerate() {
            s.gate
                .check_text(&format!("points[{i}].text"), &point.text)?;
        }
        s.service.living()?.upsert_texts(&name, body.points).await
    };
    let answer = s
        .gate
        .run(
            &ctx,
            "living_upsert_texts",
            Access::Write,
            Some(&name),
            call,
        )
        .await?;
    Ok(Json(answer))
}

/// Writes vectors of one space (all or nothing).
#[utoipa::path(put, path = "/v1/collections/{name}/living/spaces/{space}/points", tag = "living",
    request_body = UpsertVectorsRequest,
    responses((status = 200, body = LivingWriteResponse),
        (status = 400, description = "empty batch, wrong dimension, NaN or infinity, duplicate ids"),
        (status = 404, description = "unknown collection or space")))]
pub(super) async fn living_upsert_vectors(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((name, space)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpsertVectorsRequest>,
) -> ApiResult<Json<LivingWriteResponse>> {
    let call = async {
        s.gate.check_batch("points", body.points.len())?;
        s.service
            .living()?
            .upsert_vectors(&name, &space, body.points)
            .await
    };
    let answer = s
        .gate
        .run(
            &ctx,
            "living_upsert_vectors",
            Access::Write,
            Some(&name),
            call,
        )
        .await?;
    Ok(Json(answer))
}

/// Deletes points from every space.
#[utoipa::path(post, path = "/v1/collections/{name}/living/delete", tag = "living",
    request_body = LivingDeleteRequest,
    responses((status = 200, body = LivingWriteResponse), (status = 400, description = "no ids")))]
pub(super) async fn living_delete(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<LivingDeleteRequest>,
) -> ApiResult<Json<LivingWriteResponse>> {
    let call = async {
        s.gate.check_batch("ids", body.ids.len())?;
        s.service.living()?.delete(&name, body.ids).await
    };
    let answer = s
        .gate
        .run(&ctx, "living_delete", Access::Write, Some(&name), call)
        .await?;
    Ok(Json(answer))
}

/// Searches one space by text or vector; while the space is still being filled, also
/// through the adapter into an older space. Each hit says where its score comes from.
#[utoipa::path(post, path = "/v1/collections/{name}/living/search", tag = "living",
    request_body = LivingSearchRequest,
    responses((status = 200, body = LivingSearchResponse),
        (status = 400, description = "text and vector both or neither, text on a space without encoder, wrong dimension, k out of range"),
        (status = 404, description = "unknown collection, space or context")))]
pub(super) async fn living_search(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<LivingSearchRequest>,
) -> ApiResult<Json<LivingSearchResponse>> {
    let call = async {
        s.gate.check_k("k", body.k)?;
        if let Some(text) = &body.text {
            s.gate.check_text("text", text)?;
        }
        s.service.living()?.search(&name, body).await
    };
    let answer = s
        .gate
        .run(&ctx, "living_search", Access::Read, Some(&name), call)
        .await?;
    Ok(Json(answer))
}

/// Fits adapters between two spaces, both directions, from calibration pairs.
#[utoipa::path(post, path = "/v1/collections/{name}/living/adapters", tag = "living",
    request_body = FitAdaptersRequest,
    responses((status = 200, body = FitAdaptersResponse),
        (status = 400, description = "bad kind spec, too few or too many pairs, same space twice"),
        (status = 404, description = "unknown space")))]
pub(super) async fn living_fit_adapters(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<FitAdaptersRequest>,
) -> ApiResult<Json<FitAdaptersResponse>> {
    let call = async { s.service.living()?.fit_adapters(&name, body).await };
    let answer = s
        .gate
        .run(
            &ctx,
            "living_fit_adapters",
            Access::Admin,
            Some(&name),
            call,
        )
        .await?;
    Ok(Json(answer))
}

/// Starts (or resumes) migrating points into a space in the background; poll
/// `GET .../living/migration` for progress.
#[utoipa::path(post, path = "/v1/collections/{name}/living/migration", tag = "living",
    request_body = StartMigrationRequest,
    responses((status = 202, body = MigrationDescription),
        (status = 400, description = "a migration is running, bad batch size, rate or switch_at, nothing can fill the target"),
        (status = 404, description = "unknown space")))]
pub(super) async fn living_start_migration(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<StartMigrationRequest>,
) -> ApiResult<(StatusCode, Json<MigrationDescription>)> {
    let call = async { s.service.living()?.start_migration(&name, body).await };
    let status = s
        .gate
        .run(
            &ctx,
            "living_start_migration",
            Access::Admin,
            Some(&name),
            call,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// The running or last migration's progress (`migration` is null when none ever ran).
#[utoipa::path(get, path = "/v1/collections/{name}/living/migration", tag = "living",
    responses((status = 200, body = MigrationResponse)))]
pub(super) async fn living_migration_status(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> ApiResult<Json<MigrationResponse>> {
    let call = async { s.service.living()?.migration_status(&name).await };
    let answer = s
        .gate
        .run(
            &ctx,
            "living_migration_status",
            Access::Read,
            Some(&name),
            call,
        )
        .await?;
    Ok(Json(answer))
}

/// Stops a running migration after its current batch; starting it again resumes.
#[utoipa::path(post, path = "/v1/collections/{name}/living/migration/pause", tag = "living",
    responses((status = 200, body = MigrationResponse)))]
pub(super) async fn living_pause_migration(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> ApiResult<Json<MigrationResponse>> {
    let call = async { s.service.living()?.pause_migration(&name).await };
    let answer = s
        .gate
        .run(
            &ctx,
            "living_pause_migration",
            Access::Admin,
            Some(&name),
            call,
        )
        .await?;
    Ok(Json(answer))
}

/// A drift report of one space: scores, thresholds and flags (also exported at
/// `/metrics` as the space's latest).
#[utoipa::path(post, path = "/v1/collections/{name}/living/drift", tag = "living",
    request_body = DriftRequest,
    responses((status = 200, body = DriftResponse),
        (status = 400, description = "window out of range or larger than the space, bad alpha, permutations or max_samples"),
        (status = 404, description = "unknown space")))]
pub(super) async fn living_drift(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<DriftRequest>,
) -> ApiResult<Json<DriftResponse>> {
    let call = async { s.service.living()?.drift(&name, body).await };
    let answer = s
        .gate
        .run(&ctx, "living_drift", Access::Read, Some(&name), call)
        .await?;
    Ok(Json(answer))
}

/// Sets or replaces a named context overlay (searches name it with `context`).
#[utoipa::path(put, path = "/v1/collections/{name}/living/overlays/{overlay}", tag = "living",
    request_body = SetOverlayRequest,
    responses((status = 200, body = LivingDescription),
        (status = 400, description = "a delta of the wrong length or with NaN, cluster deltas without cluster_field"),
        (status = 404, description = "unknown space")))]
pub(super) async fn living_set_overlay(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((name, overlay)): Path<(String, String)>,
    ApiJson(body): ApiJson<SetOverlayRequest>,
) -> ApiResult<Json<LivingDescription>> {
    let call = async {
        s.gate
            .check_batch("overlay points", body.points.len() + body.clusters.len())?;
        s.service.living()?.set_overlay(&name, &overlay, body).await
    };
    let answer = s
        .gate
        .run(&ctx, "living_set_overlay", Access::Admin, Some(&name), call)
        .await?;
    Ok(Json(answer))
}

/// Removes a named context overlay.
#[utoipa::path(delete, path = "/v1/collections/{name}/living/overlays/{overlay}", tag = "living",
    responses((status = 200, body = LivingDescription), (status = 404, description = "no such overlay")))]
pub(super) async fn living_remove_overlay(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((name, overlay)): Path<(String, String)>,
) -> ApiResult<Json<LivingDescription>> {
    let call = async { s.service.living()?.remove_overlay(&name, &overlay).await };
    let answer = s
        .gate
        .run(
            &ctx,
            "living_remove_overlay",
            Access::Admin,
            Some(&name),
            call,
        )
        .await?;
    Ok(Json(answer))
}

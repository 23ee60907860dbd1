//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and
//! the API types' `ToSchema` derives, so it cannot drift from the code.

use super::handlers::*;
use super::living::*;
use crate::api::*;
use std::sync::OnceLock;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Paradox",
        description = "Latent memory for AI agents: collections of embeddings with payloads, nearest-neighbour search with filters; living collections (`/living`: vector spaces per encoder version, raw text encoded on the server, adapter-backed search, migrations, drift reports). Errors are `{\"error\": {\"code\", \"message\"}}`. Authenticate with `authorization: Bearer <key>`."
    ),
    paths(
        server_info,
        list_collections,
        create_collection,
        collection_info,
        update_collection,
        delete_collection,
        upsert,
        get_points,
        get_point,
        delete_points,
        scroll,
        count,
        search,
        search_batch,
        point_history,
        reason,
        create_snapshot,
        list_snapshots,
        download_snapshot,
        upload_snapshot,
        restore_snapshot,
        living_init,
        living_describe,
        living_add_space,
        living_remove_space,
        living_set_default_space,
        living_upsert_texts,
        living_upsert_vectors,
        living_delete,
        living_search,
        living_fit_adapters,
        living_start_migration,
        living_migration_status,
        living_pause_migration,
        living_drift,
        living_set_overlay,
        living_remove_overlay
    ),
    components(schemas(
        ServerInfo,
        CreateCollectionRequest,
        UpdateCollectionRequest,
        CollectionDescription,
        CollectionList,
        UpsertRequest,
        WriteResponse,
        GetPointsRequest,
        PointsResponse,
        DeletePointsRequest,
        ScrollRequest,
        ScrollResponse,
        CountRequest,
        CountResponse,
        SearchRequest,
        SearchResponse,
        SearchBatchRequest,
        SearchBatchResponse,
        HistoryResponse,
        SnapshotDescription,
        SnapshotList,
        RestoreSnapshotRequest,
        HealthResponse,
        LivingInitRequest,
        AddSpaceRequest,
        SetDefaultSpaceRequest,
        EncoderDescription,
        SpaceDescription,
        AdapterFitDescription,
        AdapterDescription,
        MigrationDescription,
        LivingDescription,
        TextPoint,
        UpsertTextsRequest,
        UpsertVectorsRequest,
        LivingDeleteRequest,
        LivingWriteResponse,
        LivingSearchRequest,
        LivingHit,
        LivingSearchResponse,
        FitAdaptersRequest,
        FitAdaptersResponse,
        StartMigrationRequest,
        MigrationResponse,
        DriftRequest,
        DriftResponse,
        SetOverlayRequest
    ))
)]
struct ApiDoc;

/// The OpenAPI document as JSON (built once).
pub fn openapi_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("OpenAPI document serialises")
    })
    .clone()
}

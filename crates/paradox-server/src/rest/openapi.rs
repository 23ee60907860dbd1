//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and
//! the API types' `ToSchema` derives, so it cannot drift from the code.

use super::handlers::*;
use crate::api::*;
use std::sync::OnceLock;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Paradox",
        description = "Latent memory for AI agents: collections of embeddings with payloads, nearest-neighbour search with filters. Errors are `{\"error\": {\"code\", \"message\"}}`. Authenticate with `authorization: Bearer <key>`."
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
        restore_snapshot
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
        HealthResponse
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

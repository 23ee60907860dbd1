//! The request and response types of the API, shared by REST (as JSON, documented in the
//! OpenAPI document) and gRPC (converted from and to the protobuf messages in `grpc`).
//! Points, filters and index configs are the engine's own types and JSON shapes, so the
//! CLI, REST and Python accept the same documents. Request types refuse unknown fields, so
//! a misspelt option is an error instead of being silently ignored.

use paradox_engine::{
    Filter, IndexConfig, NewPoint, Point, PointId, PointVersion, ScoredPoint, SearchParams,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub mod living;
pub use living::*;

/// Reasoning requests and answers are `paradox-mind`'s own types and JSON shapes, so the
/// server, the Python package and the CLI speak the same language.
pub use paradox_mind::api::{ReasonRequest, ReasonResponse};

fn default_true() -> bool {
    true
}

fn default_metric() -> String {
    "cosine".into()
}

fn default_k() -> usize {
    10
}

fn default_limit() -> usize {
    100
}

/// Create a collection.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollectionRequest {
    /// 1 to 64 characters from `A-Z a-z 0-9 _ -`, starting with a letter or digit.
    pub name: String,
    /// Vector length.
    pub dimension: usize,
    /// `cosine` (default), `dot` or `l2`.
    #[serde(default = "default_metric")]
    pub metric: String,
    /// Index for sealed segments, e.g. `{"kind": "hnsw", "m": 16}`; default `auto`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub index: Option<IndexConfig>,
    /// Keep every past version of every point, for point histories, as-of searches and
    /// trajectories (default false; fixed at creation).
    #[serde(default)]
    pub history: bool,
}

/// Change a collection's index configuration.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollectionRequest {
    /// The new index config, e.g. `{"kind": "flat"}`.
    #[schema(value_type = Object)]
    pub index: IndexConfig,
}

/// Facts about a collection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CollectionDescription {
    /// Name.
    pub name: String,
    /// Vector length.
    pub dimension: usize,
    /// Metric name.
    pub metric: String,
    /// Index configuration.
    #[schema(value_type = Object)]
    pub index: IndexConfig,
    /// Live points.
    pub points: usize,
    /// Sealed segments.
    pub sealed_segments: usize,
    /// Rows in sealed segments (deleted included).
    pub sealed_rows: usize,
    /// Rows in the growing segment (deleted included).
    pub growing_rows: usize,
    /// Deleted rows not yet reclaimed.
    pub deleted_rows: usize,
    /// Bytes of segment files.
    pub segment_bytes: u64,
    /// Bytes of write-ahead log.
    pub wal_bytes: u64,
    /// Last applied log sequence number.
    pub applied_seq: u64,
    /// Index builds queued or running.
    pub pending_index_builds: usize,
    /// Background maintenance jobs due or running: the seal of the growing segment,
    /// merges of small segments, compactions of segments with many deleted rows.
    pub maintenance_queue: usize,
    /// Bytes the growing (in-RAM, exactly scanned) segment's rows took in the log.
    pub growing_bytes: usize,
    /// Whether the collection keeps past versions.
    pub history: bool,
    /// Past versions kept (only when `history` is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past_versions: Option<usize>,
}

/// Every collection the caller may see.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CollectionList {
    /// Sorted by name.
    pub collections: Vec<CollectionDescription>,
}

/// Insert or replace points (all or nothing).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertRequest {
    /// Points: `{"id": 1 | "s", "vector": [..], "payload": {..}, "encoder_version": "..",
    /// "provenance": {"source", "encoder", "pipeline"}}`.
    #[schema(value_type = Vec<Object>)]
    pub points: Vec<NewPoint>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct WriteResponse {
    /// Log sequence number (0 when nothing was written).
    pub seq: u64,
    /// Points written or deleted.
    pub count: usize,
}

/// Fetch points by id.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GetPointsRequest {
    /// Ids (numbers or strings).
    #[schema(value_type = Vec<Object>)]
    pub ids: Vec<PointId>,
    /// Include vectors (default true).
    #[serde(default = "default_true")]
    pub with_vector: bool,
}

/// Points that exist, in the order asked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PointsResponse {
    /// The points.
    #[schema(value_type = Vec<Object>)]
    pub points: Vec<Point>,
}

/// Delete by ids or by filter: exactly one of them.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletePointsRequest {
    /// Ids to delete (missing ones are ignored).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub ids: Option<Vec<PointId>>,
    /// Delete every point matching this filter.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Filter>,
}

/// One page of points in id order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrollRequest {
    /// Continue after this id (the previous page's `next`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub after: Option<PointId>,
    /// Page size (default 100).
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// Only matching points.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Filter>,
    /// Include vectors.
    #[serde(default)]
    pub with_vector: bool,
}

impl Default for ScrollRequest {
    fn default() -> Self {
        ScrollRequest {
            after: None,
            limit: default_limit(),
            filter: None,
            with_vector: false,
        }
    }
}

/// A page of points.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScrollResponse {
    /// The points, in id order.
    #[schema(value_type = Vec<Object>)]
    pub points: Vec<Point>,
    /// Cursor for the next page; absent at the end.
    #[schema(value_type = Option<Object>)]
    pub next: Option<PointId>,
}

/// Count points, optionally those matching a filter.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountRequest {
    /// Only matching points.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Filter>,
}

/// A count.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct CountResponse {
    /// Matching points.
    pub count: usize,
}

/// One nearest-neighbour search.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The query vector.
    pub vector: Vec<f32>,
    /// How many hits (default 10).
    #[serde(default = "default_k")]
    pub k: usize,
    /// Only points whose payload matches.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Filter>,
    /// Return payloads (default true).
    #[serde(default = "default_true")]
    pub with_payload: bool,
    /// Return stored vectors.
    #[serde(default)]
    pub with_vector: bool,
    /// `{"ef": 128, "exact": false}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: SearchParams,
    /// Search the memory as it was at this time (milliseconds since the Unix epoch): each
    /// point's version current then, points deleted since included. Needs a collection
    /// created with `history: true`.
    #[serde(default)]
    pub as_of: Option<i64>,
}

impl SearchRequest {
    /// The engine's form of this request (moves the vector: no copy per search).
    pub fn into_engine(self) -> paradox_engine::SearchRequest {
        paradox_engine::SearchRequest {
            vector: self.vector,
            k: self.k,
            filter: self.filter,
            with_payload: self.with_payload,
            with_vector: self.with_vector,
            params: self.params,
            as_of: self.as_of,
        }
    }
}

/// Hits, best first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResponse {
    /// `{"id", "score", "payload"?, "vector"?}`.
    #[schema(value_type = Vec<Object>)]
    pub hits: Vec<ScoredPoint>,
}

/// Many searches in one call.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBatchRequest {
    /// The searches.
    pub searches: Vec<SearchRequest>,
}

/// Results in request order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchBatchResponse {
    /// One result per search.
    pub results: Vec<SearchResponse>,
}

/// Every version of one point, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryResponse {
    /// Each version is the point as it was (`id`, `vector`, `payload`, `created_at`,
    /// `updated_at` = when it became current) plus `valid_to` (when it stopped being
    /// current; absent for the current version).
    #[schema(value_type = Vec<Object>)]
    pub versions: Vec<PointVersion>,
}

/// A stored snapshot file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SnapshotDescription {
    /// File name (use it to download or restore).
    pub name: String,
    /// Collection it was taken of.
    pub collection: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// Snapshots of a collection, newest last.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SnapshotList {
    /// The snapshots.
    pub snapshots: Vec<SnapshotDescription>,
}

/// Restore a stored snapshot as a new collection.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreSnapshotRequest {
    /// Name of the new collection (default: the name it was snapshotted under).
    #[serde(default)]
    pub as_name: Option<String>,
}

/// Server facts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServerInfo {
    /// Server version.
    pub version: String,
    /// Whether API keys are required.
    pub auth_enabled: bool,
    /// Largest upsert / get / delete / search batch.
    pub max_batch: usize,
    /// Largest `k`.
    pub max_k: usize,
    /// Largest dimension of a new collection.
    pub max_dimension: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Per-request time limit.
    pub request_timeout_ms: u64,
    /// Collections the caller may see.
    pub collections: usize,
}

/// `/healthz` and `/readyz` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, or `shutting_down`.
    pub status: String,
}

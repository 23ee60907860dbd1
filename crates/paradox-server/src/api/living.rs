//! Request and response types of living collections (`paradox-lifecycle` over the
//! network): vector spaces, raw-text writes, adapter-backed search, adapters, migrations,
//! context overlays and drift reports. REST takes and returns them as JSON (routes under
//! `/v1/collections/{name}/living`); gRPC converts them from and to the messages of the
//! `paradox.v1.Living` service. Encoders and adapter kinds are named by the short specs
//! the CLI and Python take (`hashing:384`, `minilm:3`; `affine`, `low_rank:64`).

use paradox_engine::{Filter, IndexConfig, NewPoint, Payload, PointId, SearchParams};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

fn default_k() -> usize {
    10
}

fn default_true() -> bool {
    true
}

fn default_adapter_kind() -> String {
    "affine".into()
}

fn default_pairs() -> usize {
    5000
}

fn default_batch_size() -> usize {
    256
}

fn default_switch_at() -> f64 {
    0.95
}

fn default_window() -> usize {
    500
}

fn default_drift_source() -> String {
    "stored".into()
}

fn default_permutations() -> usize {
    200
}

fn default_alpha() -> f32 {
    0.05
}

fn default_max_samples() -> usize {
    1000
}

fn default_weight() -> f32 {
    1.0
}

/// Make an existing collection living: its vectors become the first space.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LivingInitRequest {
    /// Name of the collection's vectors' space: `NAME@VERSION` (e.g. `minilm@1`) when it
    /// has an encoder; letters, digits, `_ - .`, at most 48 characters.
    pub space: String,
    /// The encoder that made them: `hashing:DIM`, `minilm` (six layers) or `minilm:LAYERS`.
    /// Without one the space takes vectors only.
    #[serde(default)]
    pub encoder: Option<String>,
    /// Payload field keeping each point's raw text (what a migration re-encodes).
    #[serde(default)]
    pub text_field: Option<String>,
}

/// A new vector space, stored in a companion collection `<name>--<space slug>`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSpaceRequest {
    /// Its name, e.g. `minilm@2`.
    pub space: String,
    /// Its encoder spec; its dimension is the space's.
    #[serde(default)]
    pub encoder: Option<String>,
    /// The dimension, for a space without an encoder (or equal to the encoder's).
    #[serde(default)]
    pub dim: Option<usize>,
    /// Index of the companion collection (default: the first space's).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub index: Option<IndexConfig>,
}

/// Which space searches use when they name none.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetDefaultSpaceRequest {
    /// An existing space.
    pub space: String,
}

/// The encoder of a space: enough to rebuild it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct EncoderDescription {
    /// Family name, e.g. `minilm`.
    pub name: String,
    /// Version within the family.
    pub version: u32,
    /// Implementation: `hashing` or `minilm`.
    pub kind: String,
    /// Vector length.
    pub dim: usize,
    /// What the implementation needs to rebuild it.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
}

/// One vector space of a living collection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SpaceDescription {
    /// Its name.
    pub name: String,
    /// The engine collection holding its vectors.
    pub collection: String,
    /// Vector length.
    pub dim: usize,
    /// Metric (the first space's).
    pub metric: String,
    /// Its encoder, when it can take raw text.
    pub encoder: Option<EncoderDescription>,
    /// Points it holds.
    pub points: usize,
    /// Fraction of the first space's points it holds (1 for an empty collection).
    pub coverage: f64,
    /// Whether searches use it when they name no space.
    pub default: bool,
    /// Whether a normaliser is applied to its vectors.
    pub normalized: bool,
    /// When it was registered (ms since the Unix epoch).
    pub created_at: i64,
}

/// How well an adapter fits, measured when it was fitted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AdapterFitDescription {
    /// Calibration pairs used.
    pub pairs: usize,
    /// Pairs held out of training for the `holdout_*` figures.
    pub holdout: usize,
    /// Mean cosine between mapped sources and targets on the training pairs.
    pub train_cosine: f32,
    /// The same on the held-out pairs.
    pub holdout_cosine: f32,
    /// `1 − SSE / SST` on the held-out pairs.
    pub holdout_r2: f32,
    /// Seconds the fit took.
    pub fit_seconds: f32,
}

/// A stored adapter: maps vectors of `from` into `to`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AdapterDescription {
    /// Source space.
    pub from: String,
    /// Target space.
    pub to: String,
    /// 1, 2, ... per pair of spaces; searches use the newest.
    pub version: u32,
    /// Its kind as a spec: `procrustes`, `affine`, `low_rank:R` or `mlp:H`.
    pub kind: String,
    /// Measured fit.
    pub fit: AdapterFitDescription,
    /// When it was fitted (ms since the Unix epoch).
    pub created_at: i64,
}

/// A migration's progress.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct MigrationDescription {
    /// Source space.
    pub from: String,
    /// Target space.
    pub to: String,
    /// `running`, `paused` (resume by starting it again), `done` or `failed`.
    pub phase: String,
    /// Points that needed migrating when this run started.
    pub pending_at_start: usize,
    /// Points migrated so far: `reencoded + adapted`.
    pub migrated: usize,
    /// Points re-encoded from their text.
    pub reencoded: usize,
    /// Points without text given a provisional vector through the adapter.
    pub adapted: usize,
    /// Points with neither: left out.
    pub skipped: usize,
    /// Share of `pending_at_start` processed (migrated or skipped), 0 to 1.
    pub progress: f64,
    /// Coverage of the target space at the last update.
    pub coverage: f64,
    /// Coverage at which the target becomes the default space.
    pub switch_at: f64,
    /// Whether it did.
    pub switched: bool,
    /// Most points per second (absent: unlimited).
    pub rate_limit: Option<f64>,
    /// When this run started (ms since the Unix epoch).
    pub started_at: i64,
    /// Last progress update (ms since the Unix epoch).
    pub updated_at: i64,
    /// What stopped a failed run.
    pub error: Option<String>,
}

/// A living collection: its spaces, adapters, migration and overlays.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct LivingDescription {
    /// The collection (it holds the first space).
    pub collection: String,
    /// The space searches use when they name none.
    pub default_space: String,
    /// Payload field keeping raw text, if any.
    pub text_field: Option<String>,
    /// Every space, first space first.
    pub spaces: Vec<SpaceDescription>,
    /// Every stored adapter.
    pub adapters: Vec<AdapterDescription>,
    /// The running or last migration.
    pub migration: Option<MigrationDescription>,
    /// Names of the context overlays.
    pub overlays: Vec<String>,
}

/// A point given as raw text.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextPoint {
    /// The id (number or string); an existing point is replaced in every space.
    #[schema(value_type = Object)]
    pub id: PointId,
    /// The text, encoded by every space that has an encoder.
    pub text: String,
    /// JSON object payload (the text is added under the collection's text field).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Payload,
}

/// Write points as raw text (all or nothing).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertTextsRequest {
    /// `{"id", "text", "payload"?}`.
    pub points: Vec<TextPoint>,
}

/// Write vectors of one space (all or nothing).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertVectorsRequest {
    /// `{"id", "vector", "payload"?}`; vectors in the space's coordinates.
    #[schema(value_type = Vec<Object>)]
    pub points: Vec<NewPoint>,
}

/// Delete points from every space.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LivingDeleteRequest {
    /// Ids (missing ones are ignored).
    #[schema(value_type = Vec<Object>)]
    pub ids: Vec<PointId>,
}

/// What a living write did.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct LivingWriteResponse {
    /// Points written (or, for a delete, found and deleted in the first space).
    pub count: usize,
}

/// One search of a living collection: by text or by vector, in one space.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LivingSearchRequest {
    /// The space (default: the collection's default space).
    #[serde(default)]
    pub space: Option<String>,
    /// Raw text, encoded by the space's encoder (or give `vector`).
    #[serde(default)]
    pub text: Option<String>,
    /// A query vector in the space's coordinates.
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
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
    /// `{"ef": 128, "exact": false}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: SearchParams,
    /// A named context overlay to apply.
    #[serde(default)]
    pub context: Option<String>,
    /// Candidates fetched per hit when adapter and native results merge (1 to 64,
    /// default 4).
    #[serde(default)]
    pub oversample: Option<usize>,
}

/// One hit, with where its score comes from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct LivingHit {
    /// The point.
    #[schema(value_type = Object)]
    pub id: PointId,
    /// The space's metric score (similarity for cosine/dot, squared distance for l2).
    pub score: f32,
    /// The payload, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Payload>,
    /// `native` (the space's own index), `rescored` (found through the adapter, scored
    /// with its own vector in the space) or `adapter` (found and scored through the
    /// adapter: the point has no vector in the space yet).
    pub source: String,
}

/// Hits, best first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct LivingSearchResponse {
    /// The space searched.
    pub space: String,
    /// The hits.
    pub hits: Vec<LivingHit>,
}

/// Fit adapters between two spaces (both directions).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FitAdaptersRequest {
    /// Source space.
    pub from: String,
    /// Target space.
    pub to: String,
    /// `procrustes`, `affine` (default), `low_rank:R` or `mlp:H`.
    #[serde(default = "default_adapter_kind")]
    pub kind: String,
    /// Calibration pairs wanted (default 5000): points both spaces hold, topped up by
    /// encoding kept text into `to` (those vectors are written there).
    #[serde(default = "default_pairs")]
    pub pairs: usize,
}

/// The two adapters fitted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct FitAdaptersResponse {
    /// `from → to` (provisional vectors for points without text).
    pub forward: AdapterDescription,
    /// `to → from` (searches of `to` while it fills).
    pub backward: AdapterDescription,
}

/// Start (or resume) migrating points into a space in the background.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartMigrationRequest {
    /// Target space (it needs an encoder, or an adapter from the source).
    pub to: String,
    /// Source space (default: the first).
    #[serde(default)]
    pub from: Option<String>,
    /// Most points per second (default: as fast as the encoder goes).
    #[serde(default)]
    pub rate: Option<f64>,
    /// Points per batch (1 to 10000, default 256).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Coverage at which the target becomes the default space (default 0.95; above 1:
    /// never).
    #[serde(default = "default_switch_at")]
    pub switch_at: f64,
    /// Numeric payload field raising a point's priority.
    #[serde(default)]
    pub importance_field: Option<String>,
}

/// The running or last migration, if any.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct MigrationResponse {
    /// Absent when no migration ever ran.
    pub migration: Option<MigrationDescription>,
}

/// A drift report of one space.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DriftRequest {
    /// The space (default: the collection's default space).
    #[serde(default)]
    pub space: Option<String>,
    /// Points per window (2 to 100000, default 500).
    #[serde(default = "default_window")]
    pub window: usize,
    /// `stored` (default): the `window` oldest stored points against the `window` newest;
    /// `recent`: the `window` oldest against the last vectors written or searched with
    /// through this server since it started.
    #[serde(default = "default_drift_source")]
    pub source: String,
    /// Permutations of the MMD test (default 200).
    #[serde(default = "default_permutations")]
    pub permutations: usize,
    /// False-alarm rate of the test, in (0, 1) (default 0.05).
    #[serde(default = "default_alpha")]
    pub alpha: f32,
    /// Each window is subsampled to at most this many vectors (10 to 5000, default 1000).
    #[serde(default = "default_max_samples")]
    pub max_samples: usize,
    /// Seed of the subsampling and permutations (default 0).
    #[serde(default)]
    pub seed: u64,
}

/// Scores, thresholds and flags of a drift report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DriftResponse {
    /// The space.
    pub space: String,
    /// `stored` or `recent`.
    pub source: String,
    /// Points per window asked for.
    pub window: usize,
    /// Reference vectors used (after subsampling).
    pub reference: usize,
    /// Recent vectors used (after subsampling).
    pub recent: usize,
    /// `‖mean(reference) − mean(recent)‖`.
    pub mean_shift: f32,
    /// Its `1 − alpha` quantile under random relabelling.
    pub mean_shift_threshold: f32,
    /// `mean_shift > mean_shift_threshold`.
    pub mean_shift_flagged: bool,
    /// Unbiased MMD² (RBF kernel).
    pub mmd: f32,
    /// Its `1 − alpha` quantile under random relabelling.
    pub mmd_threshold: f32,
    /// Permutation p-value of `mmd`.
    pub mmd_p_value: f32,
    /// `mmd > mmd_threshold`.
    pub mmd_flagged: bool,
    /// Cross-fitted AUC of a linear classifier telling recent from reference.
    pub auc: f32,
    /// Its one-sided threshold at `alpha` (a normal approximation).
    pub auc_threshold: f32,
    /// `auc > auc_threshold`.
    pub auc_flagged: bool,
    /// The verdict: the MMD permutation test rejects "same distribution" at `alpha`.
    pub drifted: bool,
    /// When the report was computed (ms since the Unix epoch).
    pub computed_at: i64,
}

/// A named context overlay: delta vectors applied at query time.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetOverlayRequest {
    /// The space whose coordinates the deltas are in (searches of other spaces refuse it).
    pub space: String,
    /// Added to every query (then re-normalised under cosine).
    #[serde(default)]
    pub global: Option<Vec<f32>>,
    /// Payload field naming a point's cluster, for `clusters`.
    #[serde(default)]
    pub cluster_field: Option<String>,
    /// Per cluster value: a delta whose dot product with a candidate's vector is added to
    /// its score.
    #[serde(default)]
    pub clusters: BTreeMap<String, Vec<f32>>,
    /// Per point (its id as text): the same, for single points.
    #[serde(default)]
    pub points: BTreeMap<String, Vec<f32>>,
    /// Scale of every delta (default 1).
    #[serde(default = "default_weight")]
    pub weight: f32,
}

/// One space's figures for `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceMetrics {
    /// The space.
    pub space: String,
    /// Points it holds.
    pub points: usize,
    /// Fraction of the first space's points it holds.
    pub coverage: f64,
    /// Whether it is the default space.
    pub default: bool,
}

/// One living collection's figures for `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct LivingMetrics {
    /// The collection.
    pub collection: String,
    /// Its spaces.
    pub spaces: Vec<SpaceMetrics>,
    /// The running or last migration.
    pub migration: Option<MigrationDescription>,
    /// The latest drift report of each space that had one computed since the server
    /// started.
    pub drift: Vec<DriftResponse>,
}

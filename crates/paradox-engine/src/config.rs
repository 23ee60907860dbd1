//! Configuration of the engine and its collections.

use crate::error::{EngineError, Result};
use paradox_kernels::Metric;
use paradox_storage::FsyncPolicy;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest accepted vector dimension.
pub const MAX_DIMENSION: usize = 65_536;
/// Largest accepted `k` for one search.
pub const MAX_K: usize = 10_000;
/// Most points accepted in one upsert call.
pub const MAX_BATCH: usize = 100_000;

/// Sealed segments with fewer rows than this stay flat under [`IndexConfig::Auto`]: an
/// exact scan of them is about as fast as a graph search.
pub const AUTO_HNSW_MIN_ROWS: usize = 20_000;

/// HNSW parameters of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HnswConfig {
    /// Links per node (level 0 gets twice as many). 2..=64.
    pub m: usize,
    /// Beam width while building.
    pub ef_construction: usize,
    /// Default beam width while searching (per-request `ef` overrides it).
    pub ef_search: usize,
    /// How vectors are held for graph traversal: `f32` (the stored vectors themselves),
    /// or compressed copies in RAM — `sq8` (1 byte per dimension), `f16`, `bf16` (2) —
    /// with the best candidates re-ranked exactly from the stored f32 vectors.
    pub encoding: TraversalEncoding,
    /// With a compressed encoding: candidates re-ranked exactly = `rerank × k`. 1..=16.
    pub rerank: usize,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            encoding: TraversalEncoding::F32,
            rerank: 3,
        }
    }
}

/// Vector encoding used while traversing a graph (see [`HnswConfig::encoding`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraversalEncoding {
    /// Full-precision vectors, no re-rank needed.
    #[default]
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
    /// 8-bit scalar quantisation (per-dimension range).
    Sq8,
}

impl TraversalEncoding {
    pub(crate) fn to_index(self) -> paradox_index::VectorEncoding {
        match self {
            TraversalEncoding::F32 => paradox_index::VectorEncoding::F32,
            TraversalEncoding::F16 => paradox_index::VectorEncoding::F16,
            TraversalEncoding::Bf16 => paradox_index::VectorEncoding::Bf16,
            TraversalEncoding::Sq8 => paradox_index::VectorEncoding::Sq8,
        }
    }
}

impl HnswConfig {
    pub(crate) fn params(&self) -> paradox_index::HnswParams {
        paradox_index::HnswParams {
            m: self.m,
            ef_construction: self.ef_construction,
            ef_search: self.ef_search,
            ..Default::default()
        }
    }
}

/// IVF parameters of a collection (see `paradox_index::ivf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IvfConfig {
    /// Lists (k-means cells) per sealed segment; 0 = `4·√rows`, clamped to 16..=65536.
    pub nlist: usize,
    /// Default lists visited per search (per-request `nprobe` overrides it).
    pub nprobe: usize,
    /// PQ sub-quantisers (`ivf_pq`, `ivf_opq_pq`: one byte each; `ivf_pq4`: half a
    /// byte each); must divide the dimension.
    pub m: usize,
    /// With compressed lists: candidates re-ranked exactly from the stored vectors =
    /// `rerank × k` (0 = return approximate distances). 0..=64.
    pub rerank: usize,
    /// k-means iterations.
    pub train_iterations: usize,
    /// Capacity-capped (balanced) cells.
    pub balanced: bool,
    /// Leave the lists' codes in the memory-mapped index file instead of copying them
    /// into RAM: the OS pages in the lists searches visit (prefetched per query) and
    /// evicts cold ones under memory pressure. Centroids, list offsets and row numbers
    /// stay in RAM; re-ranking reads the memory-mapped vectors.
    pub on_disk: bool,
    /// With `on_disk`: instead of mapping the index files, read the lists searches visit
    /// into a cache of at most this many bytes, shared by the collection's segments and
    /// evicting the least recently used lists (0 = map the files and let the OS cache
    /// them). Bounds the codes the cache keeps, not the lists searches in flight hold,
    /// nor the OS's page cache. The cache has one shard per MiB of budget (at most 16,
    /// each evicting its own least recently used lists); a list larger than a shard's
    /// share is read for each search that visits it and never kept.
    pub cache_bytes: u64,
}

impl Default for IvfConfig {
    fn default() -> Self {
        IvfConfig {
            nlist: 0,
            nprobe: 16,
            m: 16,
            rerank: 4,
            train_iterations: 20,
            balanced: false,
            on_disk: false,
            cache_bytes: 0,
        }
    }
}

impl IvfConfig {
    /// Lists for a segment of `rows` rows.
    pub fn nlist_for(&self, rows: usize) -> usize {
        if self.nlist > 0 {
            return self.nlist;
        }
        ((4.0 * (rows as f64).sqrt()) as usize).clamp(16, 65_536)
    }

    pub(crate) fn params(
        &self,
        codec: paradox_index::IvfCodec,
        rows: usize,
    ) -> paradox_index::IvfParams {
        paradox_index::IvfParams {
            nlist: self.nlist_for(rows),
            nprobe: self.nprobe,
            codec,
            rerank: self.rerank,
            train_iterations: self.train_iterations,
            balanced: self.balanced,
            ..Default::default()
        }
    }
}

/// Which index sealed segments get. The growing segment is always searched exactly.
///
/// JSON: `{"kind": "flat"}`, `{"kind": "hnsw", "m": 16, "ef_construction": 200,
/// "ef_search": 64}`, `{"kind": "auto"}`, `{"kind": "ivf_pq", "nlist": 1024, "m": 16,
/// "nprobe": 16, "rerank": 4}`, `{"kind": "ivf_opq_pq"}`, `{"kind": "ivf_pq4", "m": 32,
/// "rerank": 16}`, `{"kind": "ivf_sq8"}`,
/// `{"kind": "ivf_flat"}`
/// (parameters optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IndexConfig {
    /// Exact search over every row.
    Flat,
    /// An HNSW graph per sealed segment, built in the background after sealing.
    Hnsw(HnswConfig),
    /// HNSW for sealed segments of at least [`AUTO_HNSW_MIN_ROWS`] rows, flat below.
    Auto(HnswConfig),
    /// IVF whose lists hold row numbers; exact distances.
    IvfFlat(IvfConfig),
    /// IVF whose lists hold `m`-byte PQ codes of the residuals, re-ranked exactly.
    IvfPq(IvfConfig),
    /// IVF whose lists hold 8-bit scalar codes of the residuals, re-ranked exactly.
    IvfSq8(IvfConfig),
    /// IVF whose lists hold `m`-byte PQ codes of the rotated residuals (OPQ), re-ranked
    /// exactly.
    IvfOpqPq(IvfConfig),
    /// IVF whose lists hold 4-bit PQ codes of the residuals (`m / 2` bytes per vector),
    /// scanned 32 rows at a time with in-register lookups, re-ranked exactly.
    IvfPq4(IvfConfig),
}

/// The index one sealed segment gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum IndexPlan {
    Hnsw(HnswConfig),
    Ivf(paradox_index::IvfParams),
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig::Auto(HnswConfig::default())
    }
}

impl IndexConfig {
    /// The HNSW parameters a segment of `rows` rows gets, if any.
    pub fn hnsw_for(&self, rows: usize) -> Option<HnswConfig> {
        match self.plan_for(rows) {
            Some(IndexPlan::Hnsw(h)) => Some(h),
            _ => None,
        }
    }

    /// The IVF parameters of this config, if it is an IVF kind.
    pub fn ivf(&self) -> Option<IvfConfig> {
        match *self {
            IndexConfig::IvfFlat(c)
            | IndexConfig::IvfPq(c)
            | IndexConfig::IvfSq8(c)
            | IndexConfig::IvfOpqPq(c)
            | IndexConfig::IvfPq4(c) => Some(c),
            _ => None,
        }
    }

    /// The same IVF kind with other parameters (`self` unchanged when it is not IVF).
    pub fn with_ivf(self, ivf: IvfConfig) -> IndexConfig {
        match self {
            IndexConfig::IvfFlat(_) => IndexConfig::IvfFlat(ivf),
            IndexConfig::IvfPq(_) => IndexConfig::IvfPq(ivf),
            IndexConfig::IvfSq8(_) => IndexConfig::IvfSq8(ivf),
            IndexConfig::IvfOpqPq(_) => IndexConfig::IvfOpqPq(ivf),
            IndexConfig::IvfPq4(_) => IndexConfig::IvfPq4(ivf),
            other => other,
        }
    }

    /// Short name: `flat`, `hnsw`, `auto`, `ivf_flat`, `ivf_pq`, `ivf_sq8`, `ivf_opq_pq`,
    /// `ivf_pq4`.
    pub fn kind(&self) -> &'static str {
        match self {
            IndexConfig::Flat => "flat",
            IndexConfig::Hnsw(_) => "hnsw",
            IndexConfig::Auto(_) => "auto",
            IndexConfig::IvfFlat(_) => "ivf_flat",
            IndexConfig::IvfPq(_) => "ivf_pq",
            IndexConfig::IvfSq8(_) => "ivf_sq8",
            IndexConfig::IvfOpqPq(_) => "ivf_opq_pq",
            IndexConfig::IvfPq4(_) => "ivf_pq4",
        }
    }

    /// The index a sealed segment of `rows` rows gets, if any.
    pub(crate) fn plan_for(&self, rows: usize) -> Option<IndexPlan> {
        use paradox_index::IvfCodec;
        match *self {
            IndexConfig::Flat => None,
            IndexConfig::Hnsw(h) => Some(IndexPlan::Hnsw(h)),
            IndexConfig::Auto(h) => (rows >= AUTO_HNSW_MIN_ROWS).then_some(IndexPlan::Hnsw(h)),
            IndexConfig::IvfFlat(c) => Some(IndexPlan::Ivf(c.params(IvfCodec::Flat, rows))),
            IndexConfig::IvfPq(c) => Some(IndexPlan::Ivf(c.params(IvfCodec::Pq { m: c.m }, rows))),
            IndexConfig::IvfSq8(c) => Some(IndexPlan::Ivf(c.params(IvfCodec::Sq8, rows))),
            IndexConfig::IvfOpqPq(c) => {
                Some(IndexPlan::Ivf(c.params(IvfCodec::OpqPq { m: c.m }, rows)))
            }
            IndexConfig::IvfPq4(c) => {
                Some(IndexPlan::Ivf(c.params(IvfCodec::Pq4 { m: c.m }, rows)))
            }
        }
    }

    /// Parses the short forms `flat`, `hnsw`, `auto`, `ivf_flat`, `ivf_pq`, `ivf_sq8`,
    /// `ivf_opq_pq`, `ivf_pq4` (default parameters).
    pub fn parse(name: &str) -> Option<IndexConfig> {
        match name.to_ascii_lowercase().as_str() {
            "flat" => Some(IndexConfig::Flat),
            "hnsw" => Some(IndexConfig::Hnsw(HnswConfig::default())),
            "auto" => Some(IndexConfig::Auto(HnswConfig::default())),
            "ivf_flat" => Some(IndexConfig::IvfFlat(IvfConfig::default())),
            "ivf_pq" => Some(IndexConfig::IvfPq(IvfConfig::default())),
            "ivf_sq8" => Some(IndexConfig::IvfSq8(IvfConfig::default())),
            "ivf_opq_pq" => Some(IndexConfig::IvfOpqPq(IvfConfig::default())),
            "ivf_pq4" => Some(IndexConfig::IvfPq4(IvfConfig::default())),
            _ => None,
        }
    }

    pub(crate) fn validate(&self, dimension: usize) -> Result<()> {
        if let Some(ivf) = self.ivf() {
            if ivf.cache_bytes > 0 && !ivf.on_disk {
                return Err(EngineError::invalid(
                    "index",
                    format!(
                        "cache_bytes ({}) needs on_disk: true (a list cache holds codes read \
                         from disk; without on_disk every list is in RAM already)",
                        ivf.cache_bytes
                    ),
                ));
            }
            // Any row count: only nlist depends on it, and it is checked separately.
            if let Some(IndexPlan::Ivf(params)) = self.plan_for(1 << 16) {
                params
                    .validate(dimension)
                    .map_err(|m| EngineError::invalid("index", m))?;
            }
        }
        if let IndexConfig::Hnsw(h) | IndexConfig::Auto(h) = self {
            h.params()
                .validate()
                .map_err(|m| EngineError::invalid("index", m))?;
            if !(1..=16).contains(&h.rerank) {
                return Err(EngineError::invalid(
                    "index",
                    format!("hnsw rerank must be between 1 and 16, got {}", h.rerank),
                ));
            }
        }
        Ok(())
    }
}

/// A collection's fixed shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// Name: 1 to 64 characters from `A-Z a-z 0-9 _ -`, not starting with `-`, `_` or `.`.
    pub name: String,
    /// Vector length.
    pub dimension: usize,
    /// Distance metric.
    #[serde(serialize_with = "ser_metric", deserialize_with = "de_metric")]
    pub metric: Metric,
    /// Index for sealed segments.
    #[serde(default)]
    pub index: IndexConfig,
    /// Keep every past version of every point (with the time it stopped being current),
    /// for [`crate::Collection::history`] and as-of searches. Chosen at creation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub history: bool,
}

impl CollectionConfig {
    /// A collection config with the default index.
    pub fn new(name: impl Into<String>, dimension: usize, metric: Metric) -> Self {
        CollectionConfig {
            name: name.into(),
            dimension,
            metric,
            index: IndexConfig::default(),
            history: false,
        }
    }

    /// Checks the name and dimension.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        if self.dimension == 0 || self.dimension > MAX_DIMENSION {
            return Err(EngineError::invalid(
                "dimension",
                format!(
                    "must be between 1 and {MAX_DIMENSION}, got {}",
                    self.dimension
                ),
            ));
        }
        self.index.validate(self.dimension)
    }
}

/// Checks a collection name (it becomes a directory name).
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(EngineError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 64 {
        return bad("must be 1 to 64 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return bad("may contain only ASCII letters, digits, `_` and `-`");
    }
    if name.starts_with(['-', '_']) {
        return bad("must start with a letter or digit");
    }
    Ok(())
}

fn ser_metric<S: Serializer>(metric: &Metric, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(metric.as_str())
}

fn de_metric<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Metric, D::Error> {
    let name = String::deserialize(d)?;
    Metric::parse(&name).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown metric `{name}`: expected cosine, dot or l2"
        ))
    })
}

/// Engine-wide settings. `EngineOptions::default()` needs no configuration.
///
/// Segment maintenance (see `collection/maintenance.rs`): each collection has a
/// background worker that seals the growing segment once it holds `seal_threshold` rows
/// or `seal_bytes` bytes, merges small sealed segments (`merge_factor` of one size tier
/// at a time) and rewrites segments whose deleted fraction passes
/// `compact_deleted_fraction`. Writers only signal it; a writer seals by itself only when
/// the growing segment reaches twice either bound (the worker is behind).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// When write-ahead-log appends reach the disk (see `docs/formats.md` for what each
    /// policy risks). Default: every 50 ms.
    pub fsync: FsyncPolicy,
    /// Rows in a growing segment before it is sealed into an immutable segment file.
    /// Default 100,000.
    pub seal_threshold: usize,
    /// Bytes (vectors + metadata, as encoded in the log) in a growing segment before it is
    /// sealed, whichever of this and `seal_threshold` comes first. The growing segment
    /// lives in RAM and is scanned exactly, so this bounds both its memory and its search
    /// cost. Default 32 MiB (about 21,000 rows of 384 floats).
    pub seal_bytes: usize,
    /// Sealed segments of one size tier merged together by the background worker (a
    /// tier spans a factor of `merge_factor` in live bytes, starting at `seal_bytes`).
    /// 0 or 1 turns automatic merging off. Default 4.
    pub merge_factor: usize,
    /// Segments at or above this many live bytes are never merged with others (they are
    /// still rewritten alone when too many of their rows are deleted). Default 1 GiB.
    pub max_merge_bytes: u64,
    /// A sealed segment whose deleted rows exceed this fraction of its rows is rewritten
    /// without them in the background. Above 1.0: never. Default 0.2.
    pub compact_deleted_fraction: f64,
    /// Rows above which a search is split across threads.
    pub parallel_threshold: usize,
    /// Run each collection's maintenance worker. `false`: writers seal the growing
    /// segment at the threshold on their own thread, and nothing merges or compacts
    /// segments but [`Collection::compact`](crate::Collection::compact) — deterministic
    /// segment layouts, for tests and tools. Default `true`.
    pub maintenance_worker: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            fsync: FsyncPolicy::default(),
            seal_threshold: 100_000,
            seal_bytes: 32 << 20,
            merge_factor: 4,
            max_merge_bytes: 1 << 30,
            compact_deleted_fraction: 0.2,
            parallel_threshold: 32_768,
            maintenance_worker: true,
        }
    }
}

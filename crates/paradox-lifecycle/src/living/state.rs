//! What a living collection persists: its spaces, adapters, migration progress and
//! overlays, as one JSON document (`lifecycle/<collection>/state.json` under the engine's
//! root), replaced atomically (temp file, fsync, rename, fsync of the directory).

use crate::adapter::{AdapterFit, AdapterKind};
use crate::encoder::EncoderInfo;
use crate::error::{LifecycleError, Result};
use crate::normalize::NormalizeMode;
use paradox_engine::Metric;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Version of the state document's layout.
pub(crate) const STATE_VERSION: u32 = 1;

/// The persisted state of one living collection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LivingState {
    pub version: u32,
    /// The engine collection holding the first space (and every point's payload).
    pub collection: String,
    /// The space searches use when they name none.
    pub default_space: String,
    /// Payload field holding the raw text re-encoding reads (`None`: points cannot be
    /// re-encoded, only mapped through an adapter).
    pub text_field: Option<String>,
    /// Every space, in registration order; the first lives in `collection`.
    pub spaces: Vec<SpaceState>,
    /// Learned maps between spaces.
    pub adapters: Vec<AdapterEntry>,
    /// The last (or running) migration.
    pub migration: Option<MigrationStatus>,
    /// Named query-time contexts.
    pub overlays: BTreeMap<String, OverlayState>,
}

/// One vector space: the vectors of one encoder version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpaceState {
    /// The space's name, e.g. `minilm@2`.
    pub name: String,
    /// The engine collection holding its vectors.
    pub collection: String,
    /// Vector length.
    pub dim: usize,
    /// Distance metric.
    #[serde(with = "metric_name")]
    pub metric: Metric,
    /// The encoder producing its vectors, when the collection can encode raw input.
    pub encoder: Option<EncoderInfo>,
    /// The fitted normaliser's file (in the state directory) and mode, if any.
    pub normalizer: Option<NormalizerEntry>,
    /// When the space was registered (ms since the Unix epoch).
    pub created_at: i64,
}

/// A normaliser stored with a space.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NormalizerEntry {
    /// File name inside the state directory.
    pub file: String,
    /// Centring or whitening.
    pub mode: NormalizeMode,
    /// Vectors it was fitted on.
    pub sample: usize,
}

/// A stored adapter: maps vectors of `from` into `to`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdapterEntry {
    /// Source space.
    pub from: String,
    /// Target space.
    pub to: String,
    /// Adapter version (1, 2, ... per pair of spaces).
    pub version: u32,
    /// Method.
    pub kind: AdapterKind,
    /// File name inside the state directory.
    pub file: String,
    /// Measured fit.
    pub fit: AdapterFit,
    /// When it was fitted (ms since the Unix epoch).
    pub created_at: i64,
}

/// Where a migration stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MigrationPhase {
    /// The background job is working.
    Running,
    /// Stopped before the end (by a pause, a restart of the process, or an error); run
    /// `migrate` again to resume: points already migrated are skipped.
    Paused,
    /// Every point that could be migrated was.
    Done,
    /// Stopped by an error (see `error`).
    Failed,
}

/// Progress of re-encoding points from one space into another.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MigrationStatus {
    /// Source space.
    pub from: String,
    /// Target space.
    pub to: String,
    /// Phase.
    pub phase: MigrationPhase,
    /// Points that needed migrating when this run started.
    pub pending_at_start: usize,
    /// Points re-encoded by this run.
    pub reencoded: usize,
    /// Points without text, given a provisional vector mapped through the adapter.
    pub adapted: usize,
    /// Points without text and without an adapter: left out.
    pub skipped: usize,
    /// Coverage of the target space (its points / the source's points) at the last update.
    pub coverage: f64,
    /// Coverage at which the default space switches to the target.
    pub switch_at: f64,
    /// Whether the default space was switched.
    pub switched: bool,
    /// Points per second allowed (`None`: unlimited).
    pub rate_limit: Option<f64>,
    /// When this run started (ms since the Unix epoch).
    pub started_at: i64,
    /// Last progress update.
    pub updated_at: i64,
    /// The error that stopped it.
    pub error: Option<String>,
}

/// A named context: delta vectors added at query time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OverlayState {
    /// The space whose vectors the deltas live in.
    pub space: String,
    /// Added to every query (then re-normalised under cosine).
    pub global: Option<Vec<f32>>,
    /// Payload field naming a point's cluster, for `clusters`.
    pub cluster_field: Option<String>,
    /// Per cluster (payload value of `cluster_field`, as a string): a delta whose dot
    /// product with a candidate's vector is added to its score.
    pub clusters: BTreeMap<String, Vec<f32>>,
    /// Per point (its id as text): the same, for single points.
    pub points: BTreeMap<String, Vec<f32>>,
    /// Scale of every delta.
    pub weight: f32,
}

impl LivingState {
    pub(crate) fn space(&self, name: &str) -> Result<&SpaceState> {
        self.spaces.iter().find(|s| s.name == name).ok_or_else(|| {
            LifecycleError::InvalidArgument(format!(
                "unknown space `{name}` in collection `{}` (spaces: {})",
                self.collection,
                self.space_names().join(", ")
            ))
        })
    }

    pub(crate) fn space_names(&self) -> Vec<String> {
        self.spaces.iter().map(|s| s.name.clone()).collect()
    }

    /// The newest adapter from `from` into `to`.
    pub(crate) fn adapter(&self, from: &str, to: &str) -> Option<&AdapterEntry> {
        self.adapters
            .iter()
            .filter(|a| a.from == from && a.to == to)
            .max_by_key(|a| a.version)
    }

    pub(crate) fn read(path: &Path) -> Result<Option<LivingState>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LifecycleError::io(path, e)),
        };
        let state: LivingState = serde_json::from_slice(&bytes)
            .map_err(|e| LifecycleError::Corrupt(format!("{}: {e}", path.display())))?;
        if state.version != STATE_VERSION {
            return Err(LifecycleError::Corrupt(format!(
                "{}: layout version {} (this build reads {STATE_VERSION})",
                path.display(),
                state.version
            )));
        }
        Ok(Some(state))
    }

    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| LifecycleError::Corrupt(format!("state not serialisable: {e}")))?;
        write_atomically(path, &bytes)
    }
}

/// Replaces `path` with `bytes`: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let temp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temp).map_err(|e| LifecycleError::io(&temp, e))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| LifecycleError::io(&temp, e))?;
    std::fs::rename(&temp, path).map_err(|e| LifecycleError::io(path, e))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all().map_err(|e| LifecycleError::io(dir, e))?;
        }
    }
    Ok(())
}

mod metric_name {
    use paradox_engine::Metric;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(metric: &Metric, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(metric.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Metric, D::Error> {
        let name = String::deserialize(d)?;
        Metric::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown metric `{name}`")))
    }
}

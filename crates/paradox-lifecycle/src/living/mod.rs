//! Living collections: one engine collection seen through several vector spaces (one per
//! encoder version), with adapters between them, a background migration that re-encodes
//! points in priority order, query-time context overlays and drift reports.
//!
//! Layout. The first space lives in the collection itself (it also holds every point's
//! payload); each later space is a companion engine collection named
//! `<collection>--<space slug>` (`docs--minilm-v2` for space `minilm@2`), holding the
//! same ids with a copy of the payload so filters work in every space. The lifecycle's
//! state (spaces, adapters, migration progress, overlays) is one JSON document in
//! `<engine root>/lifecycle/<collection>/`, next to the adapter and normaliser files.
//!
//! ```text
//!   write text ──► encode in every space that has an encoder ──► upsert into each
//!   search(space S, query) ──► S covers everything? ──yes──► search S
//!                                   │ no (migration under way)
//!                                   ├─► search S natively (migrated points, exact S scores)
//!                                   └─► map the query S→old by the adapter, search old;
//!                                       candidates S holds are re-scored in S
//!                                   merge, best k
//! ```
//!
//! Invariants:
//! * A point's payload is the same in every space that holds it (writes through this
//!   layer write every space; a migration copies the payload it read).
//! * The state document is replaced atomically; adapter and normaliser files are
//!   written before the state naming them.

mod fit;
mod migrate;
mod monitor;
mod search;
pub mod state;
mod write;

pub use migrate::{MigrationOptions, PriorityWeights};
pub use monitor::DriftWindow;
pub use search::{HitSource, LivingHit, LivingSearch};
pub use state::{
    AdapterEntry, MigrationPhase, MigrationStatus, NormalizerEntry, OverlayState, SpaceState,
};

use crate::adapter::{Adapter, AdapterKind};
use crate::encoder::{encoder_from_info, Encoder, EncoderInfo};
use crate::error::{LifecycleError, Result};
use crate::normalize::{NormalizeMode, Normalizer};
use crate::VectorMap;
use paradox_engine::{
    Collection, CollectionConfig, Engine, IndexConfig, NewPoint, Payload, Point, PointId,
    Provenance, ScrollRequest,
};
use parking_lot::{Mutex, RwLock};
use state::{LivingState, STATE_VERSION};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Directory under the engine root holding every collection's lifecycle state.
pub const LIFECYCLE_DIR: &str = "lifecycle";
const STATE_FILE: &str = "state.json";
/// Longest space name.
pub const MAX_SPACE_NAME: usize = 48;
/// Most texts or vectors one write takes.
pub const MAX_WRITE_BATCH: usize = 10_000;

/// How to start managing a collection's lifecycle.
#[derive(Debug, Clone)]
pub struct LivingOptions {
    /// Name of the collection's existing vectors' space, e.g. `minilm@1`.
    pub space: String,
    /// The encoder that produced them (lets the collection take raw text).
    pub encoder: Option<EncoderInfo>,
    /// Payload field holding each point's raw text (what re-encoding reads).
    pub text_field: Option<String>,
}

/// A new vector space.
#[derive(Debug, Clone)]
pub struct SpaceSpec {
    /// Its name, e.g. `minilm@2` (letters, digits, `_ - .`, one optional `@version`).
    pub name: String,
    /// Its encoder; its dimension is the space's.
    pub encoder: Option<EncoderInfo>,
    /// The dimension when there is no encoder.
    pub dim: Option<usize>,
    /// Index of the companion collection (default: the first space's).
    pub index: Option<IndexConfig>,
}

/// A collection managed through its vector spaces. Cheap to share (`Arc`); every method
/// takes `&self`.
pub struct LivingCollection {
    engine: Arc<Engine>,
    name: String,
    dir: PathBuf,
    state: RwLock<LivingState>,
    /// Serialises changes of the state document.
    state_write: Mutex<()>,
    encoders: Mutex<HashMap<String, Arc<dyn Encoder>>>,
    adapters: Mutex<HashMap<String, Arc<Adapter>>>,
    normalizers: Mutex<HashMap<String, Arc<Normalizer>>>,
    /// Hits returned per point since open (feeds the migration's priority).
    access: Mutex<HashMap<PointId, u32>>,
    recent: monitor::RecentWindows,
    job: Mutex<Option<migrate::JobHandle>>,
}

impl std::fmt::Debug for LivingCollection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivingCollection")
            .field("name", &self.name)
            .field("spaces", &self.state.read().space_names())
            .finish_non_exhaustive()
    }
}

impl LivingCollection {
    /// Opens the lifecycle of collection `name`; it must have been initialised with
    /// [`LivingCollection::init`].
    pub fn open(engine: Arc<Engine>, name: &str) -> Result<Arc<LivingCollection>> {
        engine.collection(name)?;
        let dir = state_dir(&engine, name);
        let mut state = LivingState::read(&dir.join(STATE_FILE))?.ok_or_else(|| {
            LifecycleError::InvalidArgument(format!(
                "collection `{name}` has no lifecycle state; initialise it first (its \
                 vectors' space and encoder)"
            ))
        })?;
        if let Some(m) = &mut state.migration {
            if m.phase == MigrationPhase::Running {
                // The process stopped while it ran: nothing runs now.
                m.phase = MigrationPhase::Paused;
            }
        }
        Ok(Arc::new(LivingCollection::from_state(engine, dir, state)))
    }

    /// Starts managing collection `name` (which must exist): its vectors become space
    /// `options.space`. Opens the existing state instead when there is one and it names
    /// the same first space.
    pub fn init(
        engine: Arc<Engine>,
        name: &str,
        options: LivingOptions,
    ) -> Result<Arc<LivingCollection>> {
        let collection = engine.collection(name)?;
        validate_space_name(&options.space)?;
        let config = collection.config();
        if let Some(info) = &options.encoder {
            check_encoder_dim(info, config.dimension, &options.space)?;
        }
        if let Some(field) = &options.text_field {
            if field.is_empty() {
                return Err(invalid("text_field must not be empty"));
            }
        }
        let dir = state_dir(&engine, name);
        if let Some(existing) = LivingState::read(&dir.join(STATE_FILE))? {
            if existing.spaces[0].name != options.space {
                return Err(invalid(format!(
                    "collection `{name}` is already managed with first space `{}`",
                    existing.spaces[0].name
                )));
            }
            return LivingCollection::open(engine, name);
        }
        std::fs::create_dir_all(&dir).map_err(|e| LifecycleError::io(&dir, e))?;
        let state = LivingState {
            version: STATE_VERSION,
            collection: name.to_string(),
            default_space: options.space.clone(),
            text_field: options.text_field,
            spaces: vec![SpaceState {
                name: options.space,
                collection: name.to_string(),
                dim: config.dimension,
                metric: config.metric,
                encoder: options.encoder,
                normalizer: None,
                created_at: now_millis(),
            }],
            adapters: Vec::new(),
            migration: None,
            overlays: Default::default(),
        };
        state.write(&dir.join(STATE_FILE))?;
        Ok(Arc::new(LivingCollection::from_state(engine, dir, state)))
    }

    fn from_state(engine: Arc<Engine>, dir: PathBuf, state: LivingState) -> LivingCollection {
        LivingCollection {
            engine,
            name: state.collection.clone(),
            dir,
            state: RwLock::new(state),
            state_write: Mutex::new(()),
            encoders: Mutex::default(),
            adapters: Mutex::default(),
            normalizers: Mutex::default(),
            access: Mutex::default(),
            recent: monitor::RecentWindows::default(),
            job: Mutex::new(None),
        }
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The space searches use when they name none.
    pub fn default_space(&self) -> String {
        self.state.read().default_space.clone()
    }

    /// Every space, in registration order.
    pub fn spaces(&self) -> Vec<SpaceState> {
        self.state.read().spaces.clone()
    }

    /// Every stored adapter.
    pub fn adapters(&self) -> Vec<AdapterEntry> {
        self.state.read().adapters.clone()
    }

    /// The payload field re-encoding reads.
    pub fn text_field(&self) -> Option<String> {
        self.state.read().text_field.clone()
    }

    /// Points in `space`.
    pub fn count(&self, space: &str) -> Result<usize> {
        Ok(self.space_collection(space)?.count(None)?)
    }

    /// Fraction of the first space's points that `space` holds (1.0 for an empty
    /// collection).
    pub fn coverage(&self, space: &str) -> Result<f64> {
        let first = self.state.read().spaces[0].name.clone();
        let base = self.count(&first)?;
        if base == 0 {
            return Ok(1.0);
        }
        Ok((self.count(space)? as f64 / base as f64).min(1.0))
    }

    /// Registers a new space, backed by a new companion collection.
    pub fn add_space(&self, spec: SpaceSpec) -> Result<SpaceState> {
        validate_space_name(&spec.name)?;
        let _guard = self.state_write.lock();
        let (metric, index) = {
            let state = self.state.read();
            if state.spaces.iter().any(|s| s.name == spec.name) {
                return Err(invalid(format!(
                    "space `{}` already exists in collection `{}`",
                    spec.name, self.name
                )));
            }
            let base = self.engine.collection(&state.collection)?.config();
            (base.metric, spec.index.unwrap_or(base.index))
        };
        let dim = match (&spec.encoder, spec.dim) {
            (Some(info), Some(d)) if info.dim != d => {
                return Err(invalid(format!(
                    "space `{}`: dim {d} differs from its encoder's {}",
                    spec.name, info.dim
                )))
            }
            (Some(info), _) => info.dim,
            (None, Some(d)) => d,
            (None, None) => {
                return Err(invalid(format!(
                    "space `{}` needs an encoder or a dimension",
                    spec.name
                )))
            }
        };
        let collection = companion_name(&self.name, &spec.name)?;
        let mut config = CollectionConfig::new(collection.clone(), dim, metric);
        config.index = index;
        self.engine.create_collection(config)?;
        let space = SpaceState {
            name: spec.name,
            collection,
            dim,
            metric,
            encoder: spec.encoder,
            normalizer: None,
            created_at: now_millis(),
        };
        let result = self.update_state(|s| {
            s.spaces.push(space.clone());
            Ok(())
        });
        if let Err(e) = result {
            // Leave no orphan collection behind.
            let _ = self.engine.drop_collection(&space.collection);
            return Err(e);
        }
        Ok(space)
    }

    /// Removes space `name`: its companion collection, the adapters from or into it, the
    /// overlays on it, its normaliser, its window of recent vectors, and the last
    /// migration's status when that migration went from or into it. Returns the space
    /// as it was.
    ///
    /// Refused, changing nothing, for an unknown space, the first space (it is the
    /// collection itself: drop the collection instead), the default space (make another
    /// one the default first) and a space a running migration reads or writes (pause it
    /// first).
    ///
    /// Order (crash safety): the state document stops naming the space first, then its
    /// files and its companion collection go. A crash in between leaves an unnamed
    /// companion collection or file behind, never a state naming a space whose vectors
    /// are gone. The job lock is held throughout, so no migration starts meanwhile, and
    /// `state_write`, so the checks and the change see the same state.
    pub fn remove_space(&self, name: &str) -> Result<SpaceState> {
        let mut job = self.job.lock();
        let running = job.as_mut().and_then(|j| j.running_spaces());
        let _guard = self.state_write.lock();
        let (space, files) = {
            let state = self.state.read();
            let space = state.space(name)?.clone();
            if space.collection == state.collection {
                return Err(invalid(format!(
                    "space `{name}` is the first space of collection `{}`: it holds the \
                     collection's own vectors and cannot be removed (drop the collection to \
                     remove every space)",
                    self.name
                )));
            }
            if state.default_space == name {
                return Err(invalid(format!(
                    "space `{name}` is the default space of collection `{}`: make another \
                     space the default first",
                    self.name
                )));
            }
            if let Some((from, to)) = running.filter(|(from, to)| from == name || to == name) {
                return Err(invalid(format!(
                    "space `{name}` is in the running migration `{from}` -> `{to}` of \
                     collection `{}`: pause it first",
                    self.name
                )));
            }
            let mut files: Vec<String> = state
                .adapters
                .iter()
                .filter(|a| a.from == name || a.to == name)
                .map(|a| a.file.clone())
                .collect();
            files.extend(space.normalizer.as_ref().map(|n| n.file.clone()));
            (space, files)
        };
        let involves = |m: &MigrationStatus| m.from == name || m.to == name;
        self.update_state(|s| {
            s.spaces.retain(|x| x.name != name);
            s.adapters.retain(|a| a.from != name && a.to != name);
            s.overlays.retain(|_, o| o.space != name);
            if s.migration.as_ref().is_some_and(involves) {
                s.migration = None;
            }
            Ok(())
        })?;
        // A job naming the space has finished (a running one was refused above), but
        // `migration_status` would still report it. Dropped, not joined: its thread is
        // gone, and joining while holding `state_write` could wait on its last save.
        if job.as_ref().is_some_and(|j| involves(&j.status())) {
            *job = None;
        }
        self.encoders.lock().remove(name);
        self.normalizers.lock().remove(name);
        self.adapters.lock().retain(|key, _| {
            !key.trim_start_matches("adjoint:")
                .split("->")
                .any(|part| part == name)
        });
        self.recent.forget(name);
        for file in files {
            // Best effort: the state no longer names the file, and a later fit of the
            // same pair writes its own (same name, atomically replaced).
            let _ = std::fs::remove_file(self.dir.join(file));
        }
        match self.engine.drop_collection(&space.collection) {
            Ok(()) | Err(paradox_engine::EngineError::UnknownCollection(_)) => Ok(space),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes `space` the one searches use when they name none.
    pub fn set_default_space(&self, space: &str) -> Result<()> {
        let _guard = self.state_write.lock();
        self.state.read().space(space)?;
        self.update_state(|s| {
            s.default_space = space.to_string();
            Ok(())
        })
    }

    /// Uses `encoder` for `space` in this process (e.g. an encoder written in Python, or
    /// one already loaded); its info must match the space's.
    pub fn attach_encoder(&self, space: &str, encoder: Arc<dyn Encoder>) -> Result<()> {
        let space = self.state.read().space(space)?.clone();
        match &space.encoder {
            Some(info) if info == encoder.info() => {}
            Some(info) => {
                return Err(invalid(format!(
                    "space `{}` was registered with encoder {} (dim {}), got {} (dim {})",
                    space.name,
                    info.space(),
                    info.dim,
                    encoder.info().space(),
                    encoder.info().dim
                )))
            }
            None => {
                return Err(invalid(format!(
                    "space `{}` was registered without an encoder",
                    space.name
                )))
            }
        }
        self.encoders.lock().insert(space.name, encoder);
        Ok(())
    }

    pub(crate) fn normalizer(&self, space: &SpaceState) -> Result<Option<Arc<Normalizer>>> {
        let Some(entry) = &space.normalizer else {
            return Ok(None);
        };
        if let Some(n) = self.normalizers.lock().get(&space.name) {
            return Ok(Some(n.clone()));
        }
        let normalizer = Arc::new(Normalizer::load(&self.dir.join(&entry.file))?);
        self.normalizers
            .lock()
            .insert(space.name.clone(), normalizer.clone());
        Ok(Some(normalizer))
    }

    pub(crate) fn space_collection(&self, space: &str) -> Result<Arc<Collection>> {
        let name = self.state.read().space(space)?.collection.clone();
        Ok(self.engine.collection(&name)?)
    }

    /// Applies `change` to a copy of the state, writes it, then installs it. Callers
    /// hold `state_write`.
    pub(crate) fn update_state(
        &self,
        change: impl FnOnce(&mut LivingState) -> Result<()>,
    ) -> Result<()> {
        let mut next = self.state.read().clone();
        change(&mut next)?;
        next.write(&self.dir.join(STATE_FILE))?;
        *self.state.write() = next;
        Ok(())
    }

    /// Adds `n` to the access count of each id (the migration's priority input).
    pub(crate) fn record_access(&self, ids: impl Iterator<Item = PointId>) {
        let mut access = self.access.lock();
        for id in ids {
            *access.entry(id).or_insert(0) += 1;
        }
    }

    /// Sets or replaces a named context overlay.
    pub fn set_overlay(&self, name: &str, overlay: OverlayState) -> Result<()> {
        if name.is_empty() || name.len() > 128 {
            return Err(invalid("overlay names are 1 to 128 bytes long"));
        }
        let space = self.state.read().space(&overlay.space)?.clone();
        let check = |what: &str, v: &[f32]| -> Result<()> {
            check_len(v, space.dim, &space.name).map_err(|_| {
                invalid(format!(
                    "overlay `{name}`: {what} has {} values, space `{}` has dim {}",
                    v.len(),
                    space.name,
                    space.dim
                ))
            })?;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(invalid(format!(
                    "overlay `{name}`: {what} holds a non-finite value"
                )));
            }
            Ok(())
        };
        if let Some(g) = &overlay.global {
            check("the global delta", g)?;
        }
        for (cluster, v) in &overlay.clusters {
            check(&format!("cluster `{cluster}`'s delta"), v)?;
        }
        for (point, v) in &overlay.points {
            check(&format!("point {point}'s delta"), v)?;
        }
        if !overlay.clusters.is_empty() && overlay.cluster_field.is_none() {
            return Err(invalid(format!(
                "overlay `{name}` has cluster deltas but no cluster_field"
            )));
        }
        if !overlay.weight.is_finite() {
            return Err(invalid(format!("overlay `{name}`: weight must be finite")));
        }
        let _guard = self.state_write.lock();
        self.update_state(|s| {
            // The space may have been removed since it was checked.
            s.space(&overlay.space)?;
            s.overlays.insert(name.to_string(), overlay);
            Ok(())
        })
    }

    /// Removes a named overlay; false when there was none.
    pub fn remove_overlay(&self, name: &str) -> Result<bool> {
        let _guard = self.state_write.lock();
        let mut found = false;
        self.update_state(|s| {
            found = s.overlays.remove(name).is_some();
            Ok(())
        })?;
        Ok(found)
    }

    /// Every overlay's name.
    pub fn overlays(&self) -> Vec<String> {
        self.state.read().overlays.keys().cloned().collect()
    }

    /// Stops a running migration (if any), then drops every companion collection and the
    /// lifecycle state; the first space's collection stays as it is.
    pub fn forget(&self) -> Result<()> {
        self.pause_migration();
        let spaces = self.spaces();
        for space in spaces.iter().skip(1) {
            match self.engine.drop_collection(&space.collection) {
                Ok(()) | Err(paradox_engine::EngineError::UnknownCollection(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        std::fs::remove_dir_all(&self.dir).map_err(|e| LifecycleError::io(&self.dir, e))
    }
}

impl Drop for LivingCollection {
    fn drop(&mut self) {
        if let Some(job) = self.job.get_mut().take() {
            job.stop_and_join();
        }
    }
}

fn encoded_point(
    id: PointId,
    vector: Vec<f32>,
    payload: Payload,
    space: &SpaceState,
    pipeline: &str,
) -> NewPoint {
    NewPoint {
        id,
        vector,
        payload,
        encoder_version: Some(space.name.clone()),
        provenance: Some(Provenance {
            source: None,
            encoder: space.encoder.as_ref().map(|e| e.space()),
            pipeline: Some(pipeline.to_string()),
        }),
    }
}

/// A stored point as a write of itself, with `payload` (an empty map keeps its own).
fn renew(point: Point, payload: Payload) -> NewPoint {
    NewPoint {
        payload: if payload.is_empty() {
            point.payload
        } else {
            payload
        },
        id: point.id,
        vector: point.vector,
        encoder_version: point.encoder_version,
        provenance: point.provenance,
    }
}

/// Calls `f` with each page of the collection's points, in id order.
pub(crate) fn for_each_page(
    collection: &Collection,
    with_vector: bool,
    mut f: impl FnMut(&[Point]) -> Result<()>,
) -> Result<()> {
    let mut after = None;
    loop {
        let page = collection.scroll(&ScrollRequest {
            after: after.clone(),
            limit: 1024,
            filter: None,
            with_vector,
        })?;
        f(&page.points)?;
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

/// Up to `n` vectors spread over the collection (every `len / n`-th point by id).
pub(crate) fn sample_vectors(
    collection: &Collection,
    n: usize,
) -> Result<(Vec<PointId>, Vec<f32>)> {
    let total = collection.count(None)?;
    let stride = (total / n.max(1)).max(1);
    let (mut ids, mut vectors) = (Vec::new(), Vec::new());
    let mut after = None;
    let mut index = 0usize;
    loop {
        let page = collection.scroll(&ScrollRequest {
            after: after.clone(),
            limit: 2048,
            filter: None,
            with_vector: true,
        })?;
        for p in page.points {
            if index.is_multiple_of(stride) && ids.len() < n {
                vectors.extend_from_slice(&p.vector);
                ids.push(p.id);
            }
            index += 1;
        }
        match page.next {
            Some(next) if ids.len() < n => after = Some(next),
            _ => break,
        }
    }
    Ok((ids, vectors))
}

fn state_dir(engine: &Engine, name: &str) -> PathBuf {
    engine.root().join(LIFECYCLE_DIR).join(name)
}

fn adapter_key(from: &str, to: &str) -> String {
    format!("{from}->{to}")
}

/// The companion collection's name for `space` of collection `base`.
fn companion_name(base: &str, space: &str) -> Result<String> {
    let name = format!("{base}--{}", file_slug(space).replace('.', "_"));
    paradox_engine::validate_name(&name).map_err(|e| {
        invalid(format!(
            "space `{space}` of collection `{base}` needs a companion collection `{name}`: {e}"
        ))
    })?;
    Ok(name)
}

/// `minilm@2` → `minilm-v2`.
fn file_slug(space: &str) -> String {
    space.replace('@', "-v")
}

/// Space names: 1 to [`MAX_SPACE_NAME`] bytes of ASCII letters, digits, `_`, `-`, `.`,
/// with at most one `@` followed by a version.
pub fn validate_space_name(name: &str) -> Result<()> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    let valid = !name.is_empty()
        && name.len() <= MAX_SPACE_NAME
        && name.split('@').count() <= 2
        && name.split('@').all(ok_part);
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid space name `{name}`: 1 to {MAX_SPACE_NAME} characters from `A-Z a-z 0-9 \
             _ - .`, with an optional `@version` (e.g. `minilm@2`)"
        )))
    }
}

fn check_encoder_dim(info: &EncoderInfo, dim: usize, space: &str) -> Result<()> {
    if info.dim != dim {
        return Err(invalid(format!(
            "space `{space}`: encoder {} makes {}-d vectors, the collection holds {dim}-d",
            info.space(),
            info.dim
        )));
    }
    Ok(())
}

fn check_len(v: &[f32], dim: usize, space: &str) -> Result<()> {
    if v.len() != dim {
        return Err(invalid(format!(
            "dimension mismatch: space `{space}` expects {dim}, got {}",
            v.len()
        )));
    }
    Ok(())
}

pub(crate) fn invalid(message: impl Into<String>) -> LifecycleError {
    LifecycleError::InvalidArgument(message.into())
}

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

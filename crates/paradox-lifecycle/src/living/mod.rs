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

mod migrate;
mod monitor;
mod search;
pub mod state;

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

    /// Removes a space (never the first one, nor the default) and its companion
    /// collection, adapters and overlays.
    pub fn remove_space(&self, name: &str) -> Result<()> {
        let space = {
            let state = self.state.read();
            let space = state.space(name)?.clone();
            if space.collection == state.collection {
                return Err(invalid(format!("space `{name}` is the collection's first")));
            }
            if state.default_space == name {
                return Err(invalid(format!(
                    "space `{name}` is the default; make another space the default first"
                )));
            }
            if state.migration.as_ref().is_some_and(|m| {
                m.phase == MigrationPhase::Running && (m.from == name || m.to == name)
            }) {
                return Err(invalid(format!(
                    "a migration into or out of `{name}` is running"
                )));
            }
            space
        };
        {
            let _guard = self.state_write.lock();
            self.update_state(|s| {
                s.spaces.retain(|x| x.name != name);
                s.adapters.retain(|a| a.from != name && a.to != name);
                s.overlays.retain(|_, o| o.space != name);
                Ok(())
            })?;
        }
        self.encoders.lock().remove(name);
        self.normalizers.lock().remove(name);
        self.adapters.lock().retain(|key, _| {
            !key.trim_start_matches("adjoint:")
                .split("->")
                .any(|part| part == name)
        });
        self.engine.drop_collection(&space.collection)?;
        Ok(())
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

    /// Writes points with raw text: each text is encoded in every space that has an
    /// encoder and written there (with the same payload). The text is stored in the
    /// payload's text field when the collection has one.
    pub fn upsert_texts(&self, points: Vec<(PointId, String, Payload)>) -> Result<usize> {
        if points.is_empty() {
            return Ok(0);
        }
        if points.len() > MAX_WRITE_BATCH {
            return Err(invalid(format!(
                "{} texts in one write; at most {MAX_WRITE_BATCH}",
                points.len()
            )));
        }
        let (spaces, text_field) = {
            let state = self.state.read();
            (state.spaces.clone(), state.text_field.clone())
        };
        let encoded: Vec<_> = spaces.iter().filter(|s| s.encoder.is_some()).collect();
        if encoded.is_empty() {
            return Err(invalid(format!(
                "collection `{}` has no space with an encoder; write vectors instead",
                self.name
            )));
        }
        let texts: Vec<&str> = points.iter().map(|(_, t, _)| t.as_str()).collect();
        let mut per_space = Vec::with_capacity(encoded.len());
        for space in &encoded {
            per_space.push(self.encode_into(space, &texts)?);
        }
        let payloads: Vec<Payload> = points
            .iter()
            .map(|(_, text, payload)| {
                let mut payload = payload.clone();
                if let Some(field) = &text_field {
                    payload.insert(field.clone(), serde_json::Value::String(text.clone()));
                }
                payload
            })
            .collect();
        for (space, vectors) in encoded.iter().zip(per_space) {
            let new_points = points
                .iter()
                .zip(&payloads)
                .zip(vectors.chunks_exact(space.dim))
                .map(|(((id, _, _), payload), v)| {
                    encoded_point(id.clone(), v.to_vec(), payload.clone(), space, "write")
                })
                .collect::<Vec<_>>();
            self.recent.record(&space.name, &vectors, space.dim);
            self.space_collection(&space.name)?.upsert(new_points)?;
        }
        Ok(points.len())
    }

    /// Writes vectors of one space. Writing the first space also keeps the payloads of
    /// the other spaces' copies of those points in step.
    pub fn upsert_vectors(&self, space: &str, mut points: Vec<NewPoint>) -> Result<usize> {
        let space = self.state.read().space(space)?.clone();
        if let Some(normalizer) = self.normalizer(&space)? {
            for p in &mut points {
                check_len(&p.vector, space.dim, &space.name)?;
                p.vector = normalizer.map(&p.vector);
            }
        }
        for p in &mut points {
            if p.encoder_version.is_none() {
                p.encoder_version = Some(space.name.clone());
            }
            self.recent.record(&space.name, &p.vector, space.dim);
        }
        let n = points.len();
        let updates: Vec<(PointId, Payload)> = points
            .iter()
            .map(|p| (p.id.clone(), p.payload.clone()))
            .collect();
        self.space_collection(&space.name)?.upsert(points)?;
        if space.collection == self.name {
            self.sync_payloads(&updates)?;
        }
        Ok(n)
    }

    /// Re-writes the copies other spaces hold of these points with the given payloads.
    fn sync_payloads(&self, updates: &[(PointId, Payload)]) -> Result<()> {
        let others: Vec<SpaceState> = self.state.read().spaces[1..].to_vec();
        let ids: Vec<PointId> = updates.iter().map(|(id, _)| id.clone()).collect();
        for space in others {
            let collection = self.engine.collection(&space.collection)?;
            let rewrites: Vec<NewPoint> = collection
                .get(&ids)?
                .into_iter()
                .zip(updates)
                .filter_map(|(found, (_, payload))| {
                    let point = found?;
                    (point.payload != *payload).then(|| renew(point, payload.clone()))
                })
                .collect();
            if !rewrites.is_empty() {
                collection.upsert(rewrites)?;
            }
        }
        Ok(())
    }

    /// Deletes points from every space.
    pub fn delete(&self, ids: &[PointId]) -> Result<usize> {
        let spaces = self.spaces();
        let mut deleted = 0;
        // Companions first: a crash in between leaves the first space holding the point,
        // and the next migration re-creates what is missing.
        for space in spaces.iter().rev() {
            let n = self
                .engine
                .collection(&space.collection)?
                .delete(ids)?
                .count;
            if space.collection == self.name {
                deleted = n;
            }
        }
        let mut access = self.access.lock();
        for id in ids {
            access.remove(id);
        }
        Ok(deleted)
    }

    /// Reads points from one space.
    pub fn get(&self, space: &str, ids: &[PointId]) -> Result<Vec<Option<Point>>> {
        Ok(self.space_collection(space)?.get(ids)?)
    }

    /// Encodes texts with `space`'s encoder (and normaliser).
    pub fn encode(&self, space: &str, texts: &[&str]) -> Result<Vec<f32>> {
        let space = self.state.read().space(space)?.clone();
        self.encode_into(&space, texts)
    }

    fn encode_into(&self, space: &SpaceState, texts: &[&str]) -> Result<Vec<f32>> {
        let encoder = self.encoder(space)?;
        let mut vectors = encoder.encode_texts(texts)?;
        if vectors.len() != texts.len() * space.dim {
            return Err(LifecycleError::Model(format!(
                "encoder of space `{}` returned {} values for {} texts of dim {}",
                space.name,
                vectors.len(),
                texts.len(),
                space.dim
            )));
        }
        if let Some(normalizer) = self.normalizer(space)? {
            vectors = normalizer.map_batch(&vectors);
        }
        Ok(vectors)
    }

    /// Fits a normaliser for `space` on `sample_size` of its stored vectors and re-writes
    /// every stored vector through it; later writes and queries go through it too.
    /// Only for a space that has none yet.
    pub fn fit_normalizer(
        &self,
        space: &str,
        mode: NormalizeMode,
        sample_size: usize,
    ) -> Result<NormalizerEntry> {
        let space = self.state.read().space(space)?.clone();
        if space.normalizer.is_some() {
            return Err(invalid(format!(
                "space `{}` already has a normaliser",
                space.name
            )));
        }
        if self.job_running() {
            return Err(invalid("a migration is running; pause it first"));
        }
        let collection = self.engine.collection(&space.collection)?;
        let (_, sample) = sample_vectors(&collection, sample_size.max(2))?;
        let normalizer = Normalizer::fit(&sample, space.dim, mode)?;
        let file = format!("normalizer-{}.bin", file_slug(&space.name));
        normalizer.save(&self.dir.join(&file))?;
        // Re-write every stored vector.
        for_each_page(&collection, true, |page| {
            let rewrites: Vec<NewPoint> = page
                .iter()
                .map(|p| NewPoint {
                    vector: normalizer.map(&p.vector),
                    ..renew(p.clone(), Payload::new())
                })
                .collect();
            collection.upsert(rewrites)?;
            Ok(())
        })?;
        let entry = NormalizerEntry {
            file,
            mode,
            sample: sample.len() / space.dim,
        };
        let _guard = self.state_write.lock();
        self.update_state(|s| {
            if let Some(sp) = s.spaces.iter_mut().find(|x| x.name == space.name) {
                sp.normalizer = Some(entry.clone());
            }
            Ok(())
        })?;
        self.normalizers
            .lock()
            .insert(space.name.clone(), Arc::new(normalizer));
        Ok(entry)
    }

    /// Fits adapters between two spaces from calibration pairs: points both spaces hold,
    /// topped up (when `from` lacks enough of them and the collection keeps text) by
    /// encoding up to `pairs` of the highest-priority points' text into `to` (those
    /// vectors are also written to `to`). Fits both directions (`to → from` serves
    /// queries during a migration, `from → to` gives provisional vectors to points
    /// without text) and stores them.
    pub fn fit_adapters(
        &self,
        from: &str,
        to: &str,
        kind: AdapterKind,
        pairs: usize,
    ) -> Result<(AdapterEntry, AdapterEntry)> {
        if from == to {
            return Err(invalid("an adapter needs two different spaces"));
        }
        if pairs < 2 {
            return Err(invalid(format!("pairs must be at least 2, got {pairs}")));
        }
        let (from_space, to_space) = {
            let state = self.state.read();
            (state.space(from)?.clone(), state.space(to)?.clone())
        };
        let (source, target) = migrate::calibration_pairs(self, &from_space, &to_space, pairs)?;
        let n = source.len() / from_space.dim;
        if n < 2 {
            return Err(invalid(format!(
                "only {n} calibration pairs found between `{from}` and `{to}`: write vectors \
                 into both spaces, or keep text (text_field) so `{to}` can encode it"
            )));
        }
        let forward = Adapter::fit(kind, &source, from_space.dim, &target, to_space.dim, 17)?;
        let backward = Adapter::fit(kind, &target, to_space.dim, &source, from_space.dim, 18)?;
        let _guard = self.state_write.lock();
        let entries = [
            self.store_adapter(&from_space.name, &to_space.name, kind, forward)?,
            self.store_adapter(&to_space.name, &from_space.name, kind, backward)?,
        ];
        self.update_state(|s| {
            s.adapters.extend(entries.iter().cloned());
            Ok(())
        })?;
        let [forward, backward] = entries;
        Ok((forward, backward))
    }

    fn store_adapter(
        &self,
        from: &str,
        to: &str,
        kind: AdapterKind,
        adapter: Adapter,
    ) -> Result<AdapterEntry> {
        let version = self
            .state
            .read()
            .adapter(from, to)
            .map(|a| a.version + 1)
            .unwrap_or(1);
        let file = format!(
            "adapter-{}-to-{}-v{version}.bin",
            file_slug(from),
            file_slug(to)
        );
        adapter.save(&self.dir.join(&file))?;
        let entry = AdapterEntry {
            from: from.to_string(),
            to: to.to_string(),
            version,
            kind,
            file,
            fit: adapter.fit_report().clone(),
            created_at: now_millis(),
        };
        let mut adapters = self.adapters.lock();
        adapters.remove(&format!("adjoint:{}", adapter_key(from, to)));
        adapters.insert(adapter_key(from, to), Arc::new(adapter));
        Ok(entry)
    }

    /// The newest adapter mapping `from` into `to`, loaded once.
    pub(crate) fn adapter(&self, from: &str, to: &str) -> Result<Option<Arc<Adapter>>> {
        let key = adapter_key(from, to);
        if let Some(a) = self.adapters.lock().get(&key) {
            return Ok(Some(a.clone()));
        }
        let Some(entry) = self.state.read().adapter(from, to).cloned() else {
            return Ok(None);
        };
        let adapter = Arc::new(Adapter::load(&self.dir.join(&entry.file))?);
        self.adapters.lock().insert(key, adapter.clone());
        Ok(Some(adapter))
    }

    /// The map a query of `space` takes into `old`: the adjoint of the newest linear
    /// adapter `old → space` (it scores each stored vector by the forward fit's estimate
    /// of its `space` vector; measured better than a fit in the other direction, which
    /// shrinks toward the mean), else the newest adapter `space → old`.
    pub(crate) fn query_adapter(&self, space: &str, old: &str) -> Result<Option<Arc<Adapter>>> {
        let key = format!("adjoint:{}", adapter_key(old, space));
        if let Some(a) = self.adapters.lock().get(&key) {
            return Ok(Some(a.clone()));
        }
        if let Some(forward) = self.adapter(old, space)? {
            if let Ok(adjoint) = forward.adjoint() {
                let adjoint = Arc::new(adjoint);
                self.adapters.lock().insert(key, adjoint.clone());
                return Ok(Some(adjoint));
            }
        }
        self.adapter(space, old)
    }

    pub(crate) fn encoder(&self, space: &SpaceState) -> Result<Arc<dyn Encoder>> {
        let Some(info) = &space.encoder else {
            return Err(invalid(format!(
                "space `{}` has no encoder: pass vectors, not text",
                space.name
            )));
        };
        if let Some(e) = self.encoders.lock().get(&space.name) {
            return Ok(e.clone());
        }
        let encoder = encoder_from_info(info)?;
        self.encoders
            .lock()
            .insert(space.name.clone(), encoder.clone());
        Ok(encoder)
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

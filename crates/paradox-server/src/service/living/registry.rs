//! The registry's state and its operations, each run on a blocking thread by
//! [`LivingService`](super::LivingService)'s implementation.

use super::convert::*;
use crate::api::*;
use crate::error::{ApiError, ApiResult};
use paradox_engine::{Engine, NewPoint};
use paradox_lifecycle::drift::DriftConfig;
use paradox_lifecycle::encoder::Encoder;
use paradox_lifecycle::living::{
    DriftWindow, LivingCollection, LivingOptions, LivingSearch, MigrationOptions, OverlayState,
    PriorityWeights, SpaceSpec,
};
use paradox_lifecycle::minilm::{MiniLmEncoder, MINILM_KIND};
use paradox_lifecycle::spec::{adapter_kind_from_spec, encoder_from_spec_with_default};
use paradox_lifecycle::LifecycleError;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::MAX_FIT_PAIRS;

/// What every clone of a [`super::LivingRegistry`] shares.
#[derive(Debug)]
pub(super) struct Registry {
    engine: Arc<Engine>,
    /// Where MiniLM encoders whose space names no directory read their files (None: the
    /// lifecycle crate's default lookup).
    model_dir: Option<PathBuf>,
    /// Largest dimension of a new space's companion collection.
    max_dimension: usize,
    open: Mutex<HashMap<String, Arc<LivingCollection>>>,
    /// (collection, space) whose encoder was loaded from `model_dir` and attached.
    attached: Mutex<HashSet<(String, String)>>,
    /// Latest drift report per (collection, space).
    drift: Mutex<BTreeMap<(String, String), DriftResponse>>,
}

impl Registry {
    pub(super) fn new(
        engine: Arc<Engine>,
        model_dir: Option<PathBuf>,
        max_dimension: usize,
    ) -> Registry {
        Registry {
            engine,
            model_dir,
            max_dimension,
            open: Mutex::default(),
            attached: Mutex::default(),
            drift: Mutex::default(),
        }
    }

    /// Every living collection opened so far.
    pub(super) fn open_collections(&self) -> Vec<Arc<LivingCollection>> {
        self.open.lock().values().cloned().collect()
    }

    /// Forgets collection `name`'s living state (see [`super::LivingRegistry::forget`]).
    /// Refuses when `name` holds a space of another living collection: dropping it would
    /// leave that collection with a space and no vectors.
    pub(super) fn forget(&self, name: &str) -> ApiResult<()> {
        // A companion is named `<base>--<slug>`; `base` may itself hold `--`.
        for (split, _) in name.match_indices("--") {
            let Ok(owner) = self.get(&name[..split]) else {
                continue;
            };
            if let Some(space) = owner.spaces().into_iter().find(|s| s.collection == name) {
                return Err(ApiError::InvalidArgument(format!(
                    "collection `{name}` holds space `{}` of living collection `{}`: drop \
                     `{}` instead (its spaces go with it)",
                    space.name,
                    owner.name(),
                    owner.name()
                )));
            }
        }
        let mut open = self.open.lock();
        let living = match open.remove(name) {
            Some(living) => living,
            None => match LivingCollection::open(self.engine.clone(), name) {
                Ok(living) => living,
                Err(LifecycleError::InvalidArgument(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            },
        };
        living.forget()?;
        self.attached.lock().retain(|(c, _)| c != name);
        self.drift.lock().retain(|(c, _), _| c != name);
        Ok(())
    }

    /// The living collection `name`, opened on first use.
    pub(super) fn get(&self, name: &str) -> ApiResult<Arc<LivingCollection>> {
        let mut open = self.open.lock();
        if let Some(living) = open.get(name) {
            return Ok(living.clone());
        }
        match self.open_existing(name)? {
            Some(living) => {
                open.insert(name.to_string(), living.clone());
                Ok(living)
            }
            None => Err(ApiError::InvalidArgument(format!(
                "collection `{name}` is not a living collection: init it first with its \
                 vectors' space, an encoder spec and a text field (REST `POST \
                 /v1/collections/{name}/living`, gRPC `Living/Init`)"
            ))),
        }
    }

    /// Opens `name`'s lifecycle state; `None` when the collection has none. 404 for an
    /// unknown collection.
    fn open_existing(&self, name: &str) -> ApiResult<Option<Arc<LivingCollection>>> {
        self.engine.collection(name)?;
        match LivingCollection::open(self.engine.clone(), name) {
            Ok(living) => Ok(Some(living)),
            // `open`'s one argument error: the collection has no lifecycle state.
            Err(LifecycleError::InvalidArgument(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The encoder a spec names for `space`, its files from the configured directory.
    fn encoder_for_spec(&self, spec: &str, space: &str) -> ApiResult<Arc<dyn Encoder>> {
        Ok(encoder_from_spec_with_default(
            spec,
            space,
            self.model_dir.as_deref(),
        )?)
    }

    /// Attaches MiniLM encoders loaded from the configured model directory to the spaces
    /// that name no directory of their own (once per space), so that encoding reads the
    /// server's files rather than the lifecycle crate's default location.
    pub(super) fn prepare_encoders(&self, living: &LivingCollection) -> ApiResult<()> {
        let Some(dir) = &self.model_dir else {
            return Ok(());
        };
        for space in living.spaces() {
            let Some(info) = &space.encoder else { continue };
            let pinned = info.params.get("dir").is_some_and(|d| !d.is_null());
            let key = (living.name().to_string(), space.name.clone());
            if info.kind != MINILM_KIND || pinned || self.attached.lock().contains(&key) {
                continue;
            }
            let encoder = MiniLmEncoder::from_info_in(info, Some(dir))?;
            living.attach_encoder(&space.name, Arc::new(encoder))?;
            self.attached.lock().insert(key);
        }
        Ok(())
    }

    fn remember_attached(&self, collection: &str, space: &str) {
        self.attached
            .lock()
            .insert((collection.to_string(), space.to_string()));
    }

    pub(super) fn init(
        &self,
        name: &str,
        request: LivingInitRequest,
    ) -> ApiResult<LivingDescription> {
        self.engine.collection(name)?;
        paradox_lifecycle::living::validate_space_name(&request.space)?;
        let encoder = request
            .encoder
            .as_deref()
            .map(|spec| self.encoder_for_spec(spec, &request.space))
            .transpose()?;
        let info = encoder.as_ref().map(|e| e.info().clone());
        let mut open = self.open.lock();
        let existing = match open.get(name) {
            Some(living) => Some(living.clone()),
            None => self.open_existing(name)?,
        };
        if let Some(living) = existing {
            let first = living.spaces().swap_remove(0);
            let same = first.name == request.space
                && first.encoder == info
                && living.text_field() == request.text_field;
            if !same {
                return Err(ApiError::AlreadyExists(format!(
                    "collection `{name}` is already living, with first space `{}` ({}, text \
                     field {}); its first space cannot change",
                    first.name,
                    first
                        .encoder
                        .as_ref()
                        .map(|e| format!("encoder {} {} ({}-d)", e.kind, e.space(), e.dim))
                        .unwrap_or_else(|| "no encoder".into()),
                    living
                        .text_field()
                        .map(|f| format!("`{f}`"))
                        .unwrap_or_else(|| "none".into()),
                )));
            }
            open.insert(name.to_string(), living.clone());
            return describe(&living);
        }
        let living = LivingCollection::init(
            self.engine.clone(),
            name,
            LivingOptions {
                space: request.space.clone(),
                encoder: info,
                text_field: request.text_field,
            },
        )?;
        if let Some(encoder) = encoder {
            living.attach_encoder(&request.space, encoder)?;
            self.remember_attached(name, &request.space);
        }
        open.insert(name.to_string(), living.clone());
        describe(&living)
    }

    pub(super) fn add_space(
        &self,
        living: &LivingCollection,
        request: AddSpaceRequest,
    ) -> ApiResult<SpaceDescription> {
        if living.spaces().iter().any(|s| s.name == request.space) {
            return Err(ApiError::AlreadyExists(format!(
                "collection `{}` already has a space `{}`",
                living.name(),
                request.space
            )));
        }
        paradox_lifecycle::living::validate_space_name(&request.space)?;
        let encoder = request
            .encoder
            .as_deref()
            .map(|spec| self.encoder_for_spec(spec, &request.space))
            .transpose()?;
        let dim = encoder.as_ref().map(|e| e.info().dim).or(request.dim);
        if let Some(dim) = dim.filter(|&d| d == 0 || d > self.max_dimension) {
            return Err(ApiError::InvalidArgument(format!(
                "space `{}`: dimension must be between 1 and {} (limits.max_dimension), got \
                 {dim}",
                request.space, self.max_dimension
            )));
        }
        let space = living.add_space(SpaceSpec {
            name: request.space.clone(),
            encoder: encoder.as_ref().map(|e| e.info().clone()),
            dim: request.dim,
            index: request.index,
        })?;
        if let Some(encoder) = encoder {
            living.attach_encoder(&space.name, encoder)?;
            self.remember_attached(living.name(), &space.name);
        }
        space_description(living, &space, &living.default_space())
    }

    /// Removes a space, then forgets what this registry keeps of it (its attached
    /// encoder, its latest drift report), so `/metrics` no longer shows it.
    pub(super) fn remove_space(
        &self,
        living: &LivingCollection,
        space: &str,
    ) -> ApiResult<LivingDescription> {
        require_space(living, space)?;
        living.remove_space(space)?;
        let key = (living.name().to_string(), space.to_string());
        self.attached.lock().remove(&key);
        self.drift.lock().remove(&key);
        describe(living)
    }

    pub(super) fn upsert_vectors(
        &self,
        living: &LivingCollection,
        space: &str,
        points: Vec<NewPoint>,
    ) -> ApiResult<LivingWriteResponse> {
        let space = require_space(living, space)?;
        if points.is_empty() {
            return Err(ApiError::InvalidArgument(
                "no points to write: `points` is empty".into(),
            ));
        }
        for (i, p) in points.iter().enumerate() {
            if p.vector.len() != space.dim {
                return Err(ApiError::InvalidArgument(format!(
                    "dimension mismatch: space `{}` of collection `{}` expects {}, got {} \
                     (points[{i}], id {})",
                    space.name,
                    living.name(),
                    space.dim,
                    p.vector.len(),
                    p.id
                )));
            }
        }
        let count = living.upsert_vectors(&space.name, points)?;
        Ok(LivingWriteResponse { count })
    }

    pub(super) fn search(
        &self,
        living: &LivingCollection,
        request: LivingSearchRequest,
    ) -> ApiResult<LivingSearchResponse> {
        let space = request.space.unwrap_or_else(|| living.default_space());
        require_space(living, &space)?;
        if request.text.is_some() {
            self.prepare_encoders(living)?;
        }
        if let Some(context) = &request.context {
            if !living.overlays().contains(context) {
                return Err(ApiError::NotFound(format!(
                    "collection `{}` has no context overlay `{context}` (overlays: {})",
                    living.name(),
                    names(living.overlays())
                )));
            }
        }
        let hits = living.search(&LivingSearch {
            space: Some(space.clone()),
            vector: request.vector,
            text: request.text,
            k: request.k,
            filter: request.filter,
            with_payload: request.with_payload,
            params: request.params,
            context: request.context,
            oversample: request.oversample,
        })?;
        Ok(LivingSearchResponse {
            space,
            hits: hits.into_iter().map(living_hit).collect(),
        })
    }

    pub(super) fn fit_adapters(
        &self,
        living: &LivingCollection,
        request: FitAdaptersRequest,
    ) -> ApiResult<FitAdaptersResponse> {
        require_space(living, &request.from)?;
        require_space(living, &request.to)?;
        let kind = adapter_kind_from_spec(&request.kind)?;
        if request.pairs > MAX_FIT_PAIRS {
            return Err(ApiError::InvalidArgument(format!(
                "invalid argument `pairs`: at most {MAX_FIT_PAIRS}, got {}",
                request.pairs
            )));
        }
        self.prepare_encoders(living)?;
        let (forward, backward) =
            living.fit_adapters(&request.from, &request.to, kind, request.pairs)?;
        Ok(FitAdaptersResponse {
            forward: adapter_description(forward),
            backward: adapter_description(backward),
        })
    }

    pub(super) fn start_migration(
        &self,
        living: &Arc<LivingCollection>,
        request: StartMigrationRequest,
    ) -> ApiResult<MigrationDescription> {
        require_space(living, &request.to)?;
        if let Some(from) = &request.from {
            require_space(living, from)?;
        }
        self.prepare_encoders(living)?;
        let status = living.migrate(MigrationOptions {
            from: request.from,
            to: request.to,
            batch_size: request.batch_size,
            rate_limit: request.rate,
            switch_at: request.switch_at,
            weights: PriorityWeights {
                importance_field: request.importance_field,
                ..PriorityWeights::default()
            },
        })?;
        Ok(migration_description(status))
    }

    pub(super) fn drift(
        &self,
        living: &LivingCollection,
        request: DriftRequest,
    ) -> ApiResult<DriftResponse> {
        let space = request.space.unwrap_or_else(|| living.default_space());
        require_space(living, &space)?;
        let window = match request.source.as_str() {
            "stored" => DriftWindow::Stored { n: request.window },
            "recent" => DriftWindow::Recent { n: request.window },
            other => {
                return Err(ApiError::InvalidArgument(format!(
                    "invalid argument `source`: expected stored or recent, got `{other}`"
                )))
            }
        };
        let config = DriftConfig {
            permutations: request.permutations,
            alpha: request.alpha,
            max_samples: request.max_samples,
            seed: request.seed,
        };
        let report = living.drift(&space, window, &config)?;
        let response = drift_response(&space, &request.source, request.window, &report);
        self.drift
            .lock()
            .insert((living.name().to_string(), space), response.clone());
        Ok(response)
    }

    pub(super) fn set_overlay(
        &self,
        living: &LivingCollection,
        overlay: &str,
        request: SetOverlayRequest,
    ) -> ApiResult<LivingDescription> {
        require_space(living, &request.space)?;
        living.set_overlay(
            overlay,
            OverlayState {
                space: request.space,
                global: request.global,
                cluster_field: request.cluster_field,
                clusters: request.clusters,
                points: request.points,
                weight: request.weight,
            },
        )?;
        describe(living)
    }

    pub(super) fn metrics(&self) -> Vec<LivingMetrics> {
        let mut out = Vec::new();
        for name in self.engine.list_collections() {
            // Companions and plain collections are skipped; a collection dropped while
            // this runs is too.
            let Ok(living) = self.get(&name) else {
                continue;
            };
            let default = living.default_space();
            let spaces: ApiResult<Vec<SpaceMetrics>> = living
                .spaces()
                .into_iter()
                .map(|space| {
                    Ok(SpaceMetrics {
                        points: living.count(&space.name)?,
                        coverage: living.coverage(&space.name)?,
                        default: space.name == default,
                        space: space.name,
                    })
                })
                .collect();
            // A space whose companion collection is gone: leave the collection out
            // rather than fail the whole scrape.
            let Ok(spaces) = spaces else {
                continue;
            };
            // Only spaces that still exist (a report computed while its space was being
            // removed may have landed after the removal forgot the space's reports).
            let drift = self
                .drift
                .lock()
                .iter()
                .filter(|((c, s), _)| *c == name && spaces.iter().any(|m| m.space == *s))
                .map(|(_, report)| report.clone())
                .collect();
            out.push(LivingMetrics {
                collection: name,
                spaces,
                migration: living.migration_status().map(migration_description),
                drift,
            });
        }
        out
    }
}

/// The space named `space`, or 404 naming the spaces there are.
pub(super) fn require_space(
    living: &LivingCollection,
    space: &str,
) -> ApiResult<paradox_lifecycle::living::SpaceState> {
    let spaces = living.spaces();
    let list = names(spaces.iter().map(|s| s.name.clone()).collect());
    spaces.into_iter().find(|s| s.name == space).ok_or_else(|| {
        ApiError::NotFound(format!(
            "collection `{}` has no space `{space}` (spaces: {list})",
            living.name()
        ))
    })
}

fn names(list: Vec<String>) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

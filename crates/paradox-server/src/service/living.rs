//! Living collections over the network: [`LivingService`], what both transports call for
//! vector spaces, raw-text writes, adapter-backed search, adapters, migrations, overlays
//! and drift reports, and [`LivingRegistry`], its implementation over
//! `paradox_lifecycle::living` for [`EngineService`](super::EngineService).
//!
//! The registry opens each living collection once, lazily (the first call naming it),
//! and keeps it open: its migration runs in a background thread of that object, its
//! "recent" drift window fills from the writes and searches it serves, and the latest
//! drift report of each space is kept for `/metrics`. Every call runs on a blocking
//! thread (encoding, fitting and drift are CPU work; opening reads files), never on the
//! async workers.
//!
//! Invariants:
//! * At most one `LivingCollection` per collection lives in this process (two would run
//!   two migrations and keep two state documents): opening happens under the registry's
//!   lock.
//! * A failed write stores nothing: the checks that can refuse a batch (empty, unknown
//!   space, wrong dimension, non-finite values, duplicate ids) run before the first
//!   space is written.

use super::blocking;
use crate::api::*;
use crate::error::{ApiError, ApiResult};
use async_trait::async_trait;
use paradox_engine::{Engine, NewPoint, PointId};
use paradox_lifecycle::living::LivingCollection;
use std::path::PathBuf;
use std::sync::Arc;

mod convert;
mod registry;

use convert::*;
use registry::{require_space, Registry};

/// Most calibration pairs one adapter fit takes (each may be encoded and written).
pub const MAX_FIT_PAIRS: usize = 100_000;

/// What a server can do with living collections, independent of transport. Like
/// [`MemoryService`](super::MemoryService), it sees authorised requests within the
/// transport's limits (batch size, `k`, text length); it checks everything else.
#[async_trait]
pub trait LivingService: Send + Sync {
    /// Makes collection `name` living: its vectors become the first space. Repeating the
    /// same init is harmless; a different one for a living collection is a conflict.
    async fn init(&self, name: &str, request: LivingInitRequest) -> ApiResult<LivingDescription>;
    /// Spaces (with counts and coverage), adapters, migration, overlays.
    async fn describe(&self, name: &str) -> ApiResult<LivingDescription>;
    /// Registers a new space (and creates its companion collection).
    async fn add_space(&self, name: &str, request: AddSpaceRequest) -> ApiResult<SpaceDescription>;
    /// Makes `space` the one searches use when they name none.
    async fn set_default_space(&self, name: &str, space: &str) -> ApiResult<LivingDescription>;
    /// Removes `space` with its companion collection, adapters and overlays (404 for an
    /// unknown space; the first space, the default space and a space in a running
    /// migration are refused, 400).
    async fn remove_space(&self, name: &str, space: &str) -> ApiResult<LivingDescription>;
    /// Writes raw texts, encoded into every space that has an encoder.
    async fn upsert_texts(
        &self,
        name: &str,
        points: Vec<TextPoint>,
    ) -> ApiResult<LivingWriteResponse>;
    /// Writes vectors of one space.
    async fn upsert_vectors(
        &self,
        name: &str,
        space: &str,
        points: Vec<NewPoint>,
    ) -> ApiResult<LivingWriteResponse>;
    /// Deletes points from every space.
    async fn delete(&self, name: &str, ids: Vec<PointId>) -> ApiResult<LivingWriteResponse>;
    /// Searches one space (through an adapter while it fills).
    async fn search(
        &self,
        name: &str,
        request: LivingSearchRequest,
    ) -> ApiResult<LivingSearchResponse>;
    /// Fits adapters both ways between two spaces.
    async fn fit_adapters(
        &self,
        name: &str,
        request: FitAdaptersRequest,
    ) -> ApiResult<FitAdaptersResponse>;
    /// Starts (or resumes) a background migration.
    async fn start_migration(
        &self,
        name: &str,
        request: StartMigrationRequest,
    ) -> ApiResult<MigrationDescription>;
    /// The running or last migration.
    async fn migration_status(&self, name: &str) -> ApiResult<MigrationResponse>;
    /// Stops a running migration after its current batch.
    async fn pause_migration(&self, name: &str) -> ApiResult<MigrationResponse>;
    /// A drift report of one space (kept as the space's latest, for `/metrics`).
    async fn drift(&self, name: &str, request: DriftRequest) -> ApiResult<DriftResponse>;
    /// Sets or replaces a named context overlay.
    async fn set_overlay(
        &self,
        name: &str,
        overlay: &str,
        request: SetOverlayRequest,
    ) -> ApiResult<LivingDescription>;
    /// Removes a named context overlay (404 when there is none).
    async fn remove_overlay(&self, name: &str, overlay: &str) -> ApiResult<LivingDescription>;
    /// Figures of every living collection, for `/metrics`.
    async fn metrics(&self) -> ApiResult<Vec<LivingMetrics>>;
    /// Pauses every running migration (graceful shutdown; they resume when started again).
    async fn pause_all(&self);
}

/// The living collections of one engine; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct LivingRegistry {
    inner: Arc<Registry>,
}

impl LivingRegistry {
    /// The living collections of `engine`; MiniLM files come from `model_dir` when given,
    /// new spaces may be up to `max_dimension` wide.
    pub fn new(
        engine: Arc<Engine>,
        model_dir: Option<PathBuf>,
        max_dimension: usize,
    ) -> LivingRegistry {
        LivingRegistry {
            inner: Arc::new(Registry::new(engine, model_dir, max_dimension)),
        }
    }

    /// Forgets collection `name`'s living state before the collection is dropped: stops
    /// its migration, drops its companion collections and its lifecycle directory. A
    /// collection that is not living is left alone; one holding a space of a living
    /// collection is refused (400). Blocking.
    pub(crate) fn forget(&self, name: &str) -> ApiResult<()> {
        self.inner.forget(name)
    }

    /// Runs `work` with collection `name`'s living collection on a blocking thread.
    async fn with<T, F>(&self, name: &str, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Registry, Arc<LivingCollection>) -> ApiResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let name = name.to_string();
        blocking(move || {
            let living = inner.get(&name)?;
            work(&inner, living)
        })
        .await
    }
}

#[async_trait]
impl LivingService for LivingRegistry {
    async fn init(&self, name: &str, request: LivingInitRequest) -> ApiResult<LivingDescription> {
        let inner = self.inner.clone();
        let name = name.to_string();
        blocking(move || inner.init(&name, request)).await
    }

    async fn describe(&self, name: &str) -> ApiResult<LivingDescription> {
        self.with(name, |_, living| describe(&living)).await
    }

    async fn add_space(&self, name: &str, request: AddSpaceRequest) -> ApiResult<SpaceDescription> {
        self.with(name, |r, living| r.add_space(&living, request))
            .await
    }

    async fn set_default_space(&self, name: &str, space: &str) -> ApiResult<LivingDescription> {
        let space = space.to_string();
        self.with(name, move |_, living| {
            require_space(&living, &space)?;
            living.set_default_space(&space)?;
            describe(&living)
        })
        .await
    }

    async fn remove_space(&self, name: &str, space: &str) -> ApiResult<LivingDescription> {
        let space = space.to_string();
        self.with(name, move |r, living| r.remove_space(&living, &space))
            .await
    }

    async fn upsert_texts(
        &self,
        name: &str,
        points: Vec<TextPoint>,
    ) -> ApiResult<LivingWriteResponse> {
        self.with(name, move |r, living| {
            if points.is_empty() {
                return Err(ApiError::InvalidArgument(
                    "no points to write: `points` is empty".into(),
                ));
            }
            r.prepare_encoders(&living)?;
            let points = points
                .into_iter()
                .map(|p| (p.id, p.text, p.payload))
                .collect();
            let count = living.upsert_texts(points)?;
            Ok(LivingWriteResponse { count })
        })
        .await
    }

    async fn upsert_vectors(
        &self,
        name: &str,
        space: &str,
        points: Vec<NewPoint>,
    ) -> ApiResult<LivingWriteResponse> {
        let space = space.to_string();
        self.with(name, move |r, living| {
            r.upsert_vectors(&living, &space, points)
        })
        .await
    }

    async fn delete(&self, name: &str, ids: Vec<PointId>) -> ApiResult<LivingWriteResponse> {
        self.with(name, move |_, living| {
            if ids.is_empty() {
                return Err(ApiError::InvalidArgument(
                    "no ids to delete: `ids` is empty".into(),
                ));
            }
            let count = living.delete(&ids)?;
            Ok(LivingWriteResponse { count })
        })
        .await
    }

    async fn search(
        &self,
        name: &str,
        request: LivingSearchRequest,
    ) -> ApiResult<LivingSearchResponse> {
        self.with(name, move |r, living| r.search(&living, request))
            .await
    }

    async fn fit_adapters(
        &self,
        name: &str,
        request: FitAdaptersRequest,
    ) -> ApiResult<FitAdaptersResponse> {
        self.with(name, move |r, living| r.fit_adapters(&living, request))
            .await
    }

    async fn start_migration(
        &self,
        name: &str,
        request: StartMigrationRequest,
    ) -> ApiResult<MigrationDescription> {
        self.with(name, move |r, living| r.start_migration(&living, request))
            .await
    }

    async fn migration_status(&self, name: &str) -> ApiResult<MigrationResponse> {
        self.with(name, |_, living| {
            Ok(MigrationResponse {
                migration: living.migration_status().map(migration_description),
            })
        })
        .await
    }

    async fn pause_migration(&self, name: &str) -> ApiResult<MigrationResponse> {
        self.with(name, |_, living| {
            living.pause_migration();
            Ok(MigrationResponse {
                migration: living.migration_status().map(migration_description),
            })
        })
        .await
    }

    async fn drift(&self, name: &str, request: DriftRequest) -> ApiResult<DriftResponse> {
        self.with(name, move |r, living| r.drift(&living, request))
            .await
    }

    async fn set_overlay(
        &self,
        name: &str,
        overlay: &str,
        request: SetOverlayRequest,
    ) -> ApiResult<LivingDescription> {
        let overlay = overlay.to_string();
        self.with(name, move |r, living| {
            r.set_overlay(&living, &overlay, request)
        })
        .await
    }

    async fn remove_overlay(&self, name: &str, overlay: &str) -> ApiResult<LivingDescription> {
        let overlay = overlay.to_string();
        self.with(name, move |_, living| {
            if !living.remove_overlay(&overlay)? {
                return Err(ApiError::NotFound(format!(
                    "collection `{}` has no context overlay `{overlay}`",
                    living.name()
                )));
            }
            describe(&living)
        })
        .await
    }

    async fn metrics(&self) -> ApiResult<Vec<LivingMetrics>> {
        let inner = self.inner.clone();
        blocking(move || Ok(inner.metrics())).await
    }

    async fn pause_all(&self) {
        let inner = self.inner.clone();
        let paused = blocking(move || {
            for living in inner.open_collections() {
                living.pause_migration();
            }
            Ok(())
        })
        .await;
        if let Err(e) = paused {
            tracing::warn!(error = %e, "pausing migrations at shutdown failed");
        }
    }
}

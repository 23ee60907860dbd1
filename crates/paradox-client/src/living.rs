//! Living collections over gRPC (the `paradox.v1.Living` service): vector spaces per
//! encoder version, raw text encoded on the server, adapter-backed search while a space
//! fills, background migrations, context overlays and drift reports.
//!
//! ```no_run
//! # async fn demo(client: paradox_client::Client) -> Result<(), paradox_client::ClientError> {
//! use paradox_client::{Drift, LivingSearch, Migration, TextPoint};
//! client.create_collection("docs", 64, "cosine", None).await?;
//! client.living_init("docs", "hash@1", Some("hashing:64"), Some("text")).await?;
//! client
//!     .living_upsert_texts("docs", vec![TextPoint::new(1u64, "a man eating bread")])
//!     .await?;
//! client.living_add_space("docs", "hash@2", Some("hashing:128"), None).await?;
//! client.living_fit_adapters("docs", "hash@1", "hash@2", "affine", 1000).await?;
//! let found = client
//!     .living_search("docs", LivingSearch::text("someone having lunch", 5).in_space("hash@2"))
//!     .await?;
//! println!("{:?} via {}", found.hits[0].id, found.hits[0].source); // native, rescored or adapter
//! client.living_start_migration("docs", Migration::to("hash@2").rate(500.0)).await?;
//! let report = client.living_drift("docs", Drift::stored(500)).await?;
//! # Ok(()) }
//! ```
//!
//! Retries follow the rest of the client: reads, searches, point writes, setting the
//! default space or an overlay, and pausing are retried on transient failures; init,
//! adding or removing a space, fitting adapters, starting a migration and removing an
//! overlay are not.

use crate::proto as pb;
use crate::types::parse_payload;
use crate::{Client, ClientError, NewPoint, PointId};
use serde_json::{Map, Value};

/// A point given as raw text, encoded by the server into every space with an encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct TextPoint {
    /// The id; an existing point is replaced in every space.
    pub id: PointId,
    /// The text.
    pub text: String,
    /// A JSON object (or `Value::Null` for none).
    pub payload: Value,
}

impl TextPoint {
    /// A text with no payload.
    pub fn new(id: impl Into<PointId>, text: impl Into<String>) -> Self {
        TextPoint {
            id: id.into(),
            text: text.into(),
            payload: Value::Null,
        }
    }

    /// Sets the payload (a JSON object).
    pub fn with_payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }

    fn to_pb(&self) -> pb::TextPoint {
        pb::TextPoint {
            id: Some(self.id.to_pb()),
            text: self.text.clone(),
            payload_json: if self.payload.is_null() {
                String::new()
            } else {
                self.payload.to_string()
            },
        }
    }
}

/// A search of a living collection, by text or by vector, in one space.
#[derive(Debug, Clone, PartialEq)]
pub struct LivingSearch {
    /// The space (`None`: the collection's default space).
    pub space: Option<String>,
    /// Raw text, encoded by the space's encoder.
    pub text: Option<String>,
    /// A query vector in the space's coordinates (empty when searching by text).
    pub vector: Vec<f32>,
    /// Hits wanted.
    pub k: usize,
    /// Payload filter (JSON).
    pub filter: Option<Value>,
    /// Return payloads.
    pub with_payload: bool,
    /// A named context overlay.
    pub context: Option<String>,
    /// Exact search, ignoring indexes.
    pub exact: bool,
}

impl LivingSearch {
    /// Top-`k` for a text, with payloads.
    pub fn text(text: impl Into<String>, k: usize) -> Self {
        LivingSearch {
            space: None,
            text: Some(text.into()),
            vector: Vec::new(),
            k,
            filter: None,
            with_payload: true,
            context: None,
            exact: false,
        }
    }

    /// Top-`k` for a vector, with payloads.
    pub fn vector(vector: Vec<f32>, k: usize) -> Self {
        LivingSearch {
            text: None,
            vector,
            ..LivingSearch::text("", k)
        }
    }

    /// Searches `space` instead of the default one.
    pub fn in_space(mut self, space: impl Into<String>) -> Self {
        self.space = Some(space.into());
        self
    }

    /// Adds a filter.
    pub fn with_filter(mut self, filter: Value) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Applies a named context overlay.
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    fn to_pb(&self, collection: &str) -> pb::LivingSearchRequest {
        pb::LivingSearchRequest {
            collection: collection.to_string(),
            space: self.space.clone(),
            text: self.text.clone(),
            vector: self.vector.clone(),
            k: self.k as u64,
            filter_json: self
                .filter
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default(),
            with_payload: self.with_payload,
            params: Some(pb::SearchParams {
                ef: None,
                nprobe: None,
                exact: self.exact,
            }),
            context: self.context.clone(),
            oversample: None,
        }
    }
}

/// One hit of a living search.
#[derive(Debug, Clone, PartialEq)]
pub struct LivingHit {
    /// The point.
    pub id: PointId,
    /// The space's metric score.
    pub score: f32,
    /// The payload, when asked for.
    pub payload: Option<Map<String, Value>>,
    /// `native`, `rescored` or `adapter`: where the score comes from.
    pub source: String,
}

/// The answer of a living search.
#[derive(Debug, Clone, PartialEq)]
pub struct LivingHits {
    /// The space searched.
    pub space: String,
    /// Hits, best first.
    pub hits: Vec<LivingHit>,
}

/// A migration to start (or resume).
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// Target space.
    pub to: String,
    /// Source space (`None`: the first).
    pub from: Option<String>,
    /// Most points per second (`None`: unlimited).
    pub rate: Option<f64>,
    /// Points per batch (0: the server's default, 256).
    pub batch_size: usize,
    /// Coverage at which the target becomes the default space (`None`: 0.95).
    pub switch_at: Option<f64>,
    /// Numeric payload field raising a point's priority.
    pub importance_field: Option<String>,
}

impl Migration {
    /// A migration into `space` with the server's defaults.
    pub fn to(space: impl Into<String>) -> Self {
        Migration {
            to: space.into(),
            from: None,
            rate: None,
            batch_size: 0,
            switch_at: None,
            importance_field: None,
        }
    }

    /// Limits the rate (points per second).
    pub fn rate(mut self, points_per_second: f64) -> Self {
        self.rate = Some(points_per_second);
        self
    }

    /// Sets the batch size.
    pub fn batch_size(mut self, points: usize) -> Self {
        self.batch_size = points;
        self
    }

    /// Sets the coverage at which the default space switches.
    pub fn switch_at(mut self, coverage: f64) -> Self {
        self.switch_at = Some(coverage);
        self
    }

    /// Raises the priority of points by a numeric payload field.
    pub fn importance_field(mut self, field: impl Into<String>) -> Self {
        self.importance_field = Some(field.into());
        self
    }
}

/// A drift report to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    /// The space (`None`: the default space).
    pub space: Option<String>,
    /// Points per window.
    pub window: usize,
    /// Compare with the vectors recently written or searched with through the server,
    /// instead of the newest stored ones.
    pub recent: bool,
    /// Permutations of the MMD test (0: 200).
    pub permutations: usize,
    /// False-alarm rate (`None`: 0.05).
    pub alpha: Option<f32>,
}

impl Drift {
    /// The `window` oldest stored points against the `window` newest.
    pub fn stored(window: usize) -> Self {
        Drift {
            space: None,
            window,
            recent: false,
            permutations: 0,
            alpha: None,
        }
    }

    /// The `window` oldest stored points against the recent vectors.
    pub fn recent(window: usize) -> Self {
        Drift {
            recent: true,
            ..Drift::stored(window)
        }
    }

    /// Reports on `space` instead of the default one.
    pub fn in_space(mut self, space: impl Into<String>) -> Self {
        self.space = Some(space.into());
        self
    }

    /// Sets the number of permutations.
    pub fn permutations(mut self, permutations: usize) -> Self {
        self.permutations = permutations;
        self
    }
}

fn collection(name: &str) -> pb::CollectionRequest {
    pb::CollectionRequest {
        collection: name.into(),
    }
}

impl Client {
    /// Makes an existing collection living: its vectors become space `space`, made by
    /// `encoder` (`hashing:DIM`, `minilm`, `minilm:LAYERS`; `None`: vectors only), raw
    /// text kept in payload field `text_field`. Not retried.
    pub async fn living_init(
        &self,
        name: &str,
        space: &str,
        encoder: Option<&str>,
        text_field: Option<&str>,
    ) -> Result<pb::LivingInfo, ClientError> {
        let message = pb::LivingInitRequest {
            collection: name.into(),
            space: space.into(),
            encoder: encoder.map(str::to_string),
            text_field: text_field.map(str::to_string),
        };
        self.call_on(&self.living, false, message, |mut c, r| async move {
            c.init(r).await
        })
        .await
    }

    /// Spaces (points, coverage, default), adapters, migration, overlays.
    pub async fn living_describe(&self, name: &str) -> Result<pb::LivingInfo, ClientError> {
        self.call_on(
            &self.living,
            true,
            collection(name),
            |mut c, r| async move { c.describe(r).await },
        )
        .await
    }

    /// Registers a new space with an encoder spec, or a dimension for vectors only. Not
    /// retried.
    pub async fn living_add_space(
        &self,
        name: &str,
        space: &str,
        encoder: Option<&str>,
        dim: Option<usize>,
    ) -> Result<pb::SpaceInfo, ClientError> {
        let message = pb::AddSpaceRequest {
            collection: name.into(),
            space: space.into(),
            encoder: encoder.map(str::to_string),
            dim: dim.map(|d| d as u64),
            index_json: String::new(),
        };
        self.call_on(&self.living, false, message, |mut c, r| async move {
            c.add_space(r).await
        })
        .await
    }

    /// Removes `space` with its companion collection, the adapters from or into it and
    /// the overlays on it; returns the collection as it is now. The first space, the
    /// default space and a space in a running migration are refused
    /// (`InvalidArgument`, naming the reason); an unknown space is `NotFound`. Not
    /// retried (a retry after a removal that went through would answer `NotFound`).
    pub async fn living_remove_space(
        &self,
        name: &str,
        space: &str,
    ) -> Result<pb::LivingInfo, ClientError> {
        let message = pb::RemoveSpaceRequest {
            collection: name.into(),
            space: space.into(),
        };
        self.call_on(&self.living, false, message, |mut c, r| async move {
            c.remove_space(r).await
        })
        .await
    }

    /// Makes `space` the one searches use when they name none.
    pub async fn living_set_default_space(
        &self,
        name: &str,
        space: &str,
    ) -> Result<pb::LivingInfo, ClientError> {
        let message = pb::SetDefaultSpaceRequest {
            collection: name.into(),
            space: space.into(),
        };
        self.call_on(&self.living, true, message, |mut c, r| async move {
            c.set_default_space(r).await
        })
        .await
    }

    /// Writes points as raw text (all or nothing); returns the points written.
    pub async fn living_upsert_texts(
        &self,
        name: &str,
        points: Vec<TextPoint>,
    ) -> Result<u64, ClientError> {
        let message = pb::UpsertTextsRequest {
            collection: name.into(),
            points: points.iter().map(TextPoint::to_pb).collect(),
        };
        let response = self
            .call_on(&self.living, true, message, |mut c, r| async move {
                c.upsert_texts(r).await
            })
            .await?;
        Ok(response.count)
    }

    /// Writes vectors of one space (all or nothing); returns the points written.
    pub async fn living_upsert_vectors(
        &self,
        name: &str,
        space: &str,
        points: Vec<NewPoint>,
    ) -> Result<u64, ClientError> {
        let message = pb::UpsertVectorsRequest {
            collection: name.into(),
            space: space.into(),
            points: points.iter().map(NewPoint::to_pb).collect(),
        };
        let response = self
            .call_on(&self.living, true, message, |mut c, r| async move {
                c.upsert_vectors(r).await
            })
            .await?;
        Ok(response.count)
    }

    /// Deletes points from every space; returns how many the first space held.
    pub async fn living_delete(&self, name: &str, ids: &[PointId]) -> Result<u64, ClientError> {
        let message = pb::LivingDeleteRequest {
            collection: name.into(),
            ids: ids.iter().map(PointId::to_pb).collect(),
        };
        let response = self
            .call_on(&self.living, true, message, |mut c, r| async move {
                c.delete(r).await
            })
            .await?;
        Ok(response.count)
    }

    /// Searches one space; each hit says where its score comes from.
    pub async fn living_search(
        &self,
        name: &str,
        search: LivingSearch,
    ) -> Result<LivingHits, ClientError> {
        let message = search.to_pb(name);
        let response = self
            .call_on(&self.living, true, message, |mut c, r| async move {
                c.search(r).await
            })
            .await?;
        let hits = response
            .hits
            .into_iter()
            .map(|h| {
                Ok(LivingHit {
                    id: PointId::from_pb(h.id)?,
                    score: h.score,
                    payload: h.payload_json.as_deref().map(parse_payload).transpose()?,
                    source: h.source,
                })
            })
            .collect::<Result<_, ClientError>>()?;
        Ok(LivingHits {
            space: response.space,
            hits,
        })
    }

    /// Fits adapters `from → to` and `to → from` (`kind`: `procrustes`, `affine`,
    /// `low_rank:R`, `mlp:H`) from up to `pairs` calibration pairs. Not retried (each fit
    /// stores a new adapter version).
    pub async fn living_fit_adapters(
        &self,
        name: &str,
        from: &str,
        to: &str,
        kind: &str,
        pairs: usize,
    ) -> Result<pb::FitAdaptersResponse, ClientError> {
        let message = pb::FitAdaptersRequest {
            collection: name.into(),
            from: from.into(),
            to: to.into(),
            kind: kind.into(),
            pairs: pairs as u64,
        };
        self.call_on(&self.living, false, message, |mut c, r| async move {
            c.fit_adapters(r).await
        })
        .await
    }

    /// Starts (or resumes) a background migration; returns its status at start. Not
    /// retried.
    pub async fn living_start_migration(
        &self,
        name: &str,
        migration: Migration,
    ) -> Result<pb::MigrationInfo, ClientError> {
        let message = pb::StartMigrationRequest {
            collection: name.into(),
            to: migration.to,
            from: migration.from,
            rate: migration.rate,
            batch_size: migration.batch_size as u64,
            switch_at: migration.switch_at,
            importance_field: migration.importance_field,
        };
        self.call_on(&self.living, false, message, |mut c, r| async move {
            c.start_migration(r).await
        })
        .await
    }

    /// The running or last migration (`None` when none ever ran).
    pub async fn living_migration_status(
        &self,
        name: &str,
    ) -> Result<Option<pb::MigrationInfo>, ClientError> {
        let response = self
            .call_on(
                &self.living,
                true,
                collection(name),
                |mut c, r| async move { c.migration_status(r).await },
            )
            .await?;
        Ok(response.migration)
    }

    /// Stops a running migration after its current batch; returns its status.
    pub async fn living_pause_migration(
        &self,
        name: &str,
    ) -> Result<Option<pb::MigrationInfo>, ClientError> {
        let response = self
            .call_on(
                &self.living,
                true,
                collection(name),
                |mut c, r| async move { c.pause_migration(r).await },
            )
            .await?;
        Ok(response.migration)
    }

    /// A drift report: scores, thresholds, flags and the verdict.
    pub async fn living_drift(
        &self,
        name: &str,
        drift: Drift,
    ) -> Result<pb::DriftReport, ClientError> {
        let message = pb::DriftRequest {
            collection: name.into(),
            space: drift.space,
            window: drift.window as u64,
            source: if drift.recent { "recent" } else { "stored" }.into(),
            permutations: drift.permutations as u64,
            alpha: drift.alpha,
            max_samples: 0,
            seed: 0,
        };
        self.call_on(&self.living, true, message, |mut c, r| async move {
            c.drift(r).await
        })
        .await
    }

    /// Sets or replaces context overlay `overlay`: a `global` delta added to every
    /// query of `space` (the message's other fields: set them on a
    /// [`pb::SetOverlayRequest`] and call [`Client::living_set_overlay_with`]).
    pub async fn living_set_overlay(
        &self,
        name: &str,
        overlay: &str,
        space: &str,
        global: Vec<f32>,
        weight: f32,
    ) -> Result<pb::LivingInfo, ClientError> {
        self.living_set_overlay_with(pb::SetOverlayRequest {
            collection: name.into(),
            name: overlay.into(),
            space: space.into(),
            global,
            cluster_field: None,
            clusters: Default::default(),
            points: Default::default(),
            weight: Some(weight),
        })
        .await
    }

    /// Sets or replaces a context overlay from the full message (per-cluster and
    /// per-point deltas).
    pub async fn living_set_overlay_with(
        &self,
        request: pb::SetOverlayRequest,
    ) -> Result<pb::LivingInfo, ClientError> {
        self.call_on(&self.living, true, request, |mut c, r| async move {
            c.set_overlay(r).await
        })
        .await
    }

    /// Removes a context overlay (`NotFound` when there is none). Not retried.
    pub async fn living_remove_overlay(
        &self,
        name: &str,
        overlay: &str,
    ) -> Result<pb::LivingInfo, ClientError> {
        let message = pb::RemoveOverlayRequest {
            collection: name.into(),
            name: overlay.into(),
        };
        self.call_on(&self.living, false, message, |mut c, r| async move {
            c.remove_overlay(r).await
        })
        .await
    }
}

//! The `paradox.v1.Living` gRPC service: living collections over
//! [`LivingService`](crate::service::LivingService), with the same gate (auth, limits,
//! timeout, audit) and operation names as the REST routes under
//! `/v1/collections/{name}/living`. Proto3 zeros mean "the default" where the REST field
//! has one (`k` excepted: 0 is refused, as in `Search`).

use super::convert::{filter, index, new_points, payload, pb_id, point_id, search_params};
use super::GrpcService;
use crate::api::*;
use crate::auth::Access;
use crate::error::{ApiError, ApiResult};
use crate::proto as pb;
use tonic::{Request, Response, Status};

fn count(n: u64, default: usize) -> usize {
    if n == 0 {
        default
    } else {
        usize::try_from(n).unwrap_or(usize::MAX)
    }
}

fn pb_living(d: LivingDescription) -> pb::LivingInfo {
    pb::LivingInfo {
        collection: d.collection,
        default_space: d.default_space,
        text_field: d.text_field,
        spaces: d.spaces.into_iter().map(pb_space).collect(),
        adapters: d.adapters.into_iter().map(pb_adapter).collect(),
        migration: d.migration.map(pb_migration),
        overlays: d.overlays,
    }
}

fn pb_space(s: SpaceDescription) -> pb::SpaceInfo {
    pb::SpaceInfo {
        name: s.name,
        collection: s.collection,
        dim: s.dim as u64,
        metric: s.metric,
        encoder: s.encoder.map(|e| pb::EncoderInfo {
            name: e.name,
            version: e.version,
            kind: e.kind,
            dim: e.dim as u64,
            params_json: e.params.to_string(),
        }),
        points: s.points as u64,
        coverage: s.coverage,
        is_default: s.default,
        normalized: s.normalized,
        created_at: s.created_at,
    }
}

fn pb_adapter(a: AdapterDescription) -> pb::AdapterInfo {
    pb::AdapterInfo {
        from: a.from,
        to: a.to,
        version: a.version,
        kind: a.kind,
        fit: Some(pb::AdapterFit {
            pairs: a.fit.pairs as u64,
            holdout: a.fit.holdout as u64,
            train_cosine: a.fit.train_cosine,
            holdout_cosine: a.fit.holdout_cosine,
            holdout_r2: a.fit.holdout_r2,
            fit_seconds: a.fit.fit_seconds,
        }),
        created_at: a.created_at,
    }
}

fn pb_migration(m: MigrationDescription) -> pb::MigrationInfo {
    pb::MigrationInfo {
        from: m.from,
        to: m.to,
        phase: m.phase,
        pending_at_start: m.pending_at_start as u64,
        migrated: m.migrated as u64,
        reencoded: m.reencoded as u64,
        adapted: m.adapted as u64,
        skipped: m.skipped as u64,
        progress: m.progress,
        coverage: m.coverage,
        switch_at: m.switch_at,
        switched: m.switched,
        rate_limit: m.rate_limit,
        started_at: m.started_at,
        updated_at: m.updated_at,
        error: m.error,
    }
}

fn pb_migration_status(m: MigrationResponse) -> pb::MigrationStatusResponse {
    pb::MigrationStatusResponse {
        migration: m.migration.map(pb_migration),
    }
}

fn pb_drift(d: DriftResponse) -> pb::DriftReport {
    pb::DriftReport {
        space: d.space,
        source: d.source,
        window: d.window as u64,
        reference: d.reference as u64,
        recent: d.recent as u64,
        mean_shift: d.mean_shift,
        mean_shift_threshold: d.mean_shift_threshold,
        mean_shift_flagged: d.mean_shift_flagged,
        mmd: d.mmd,
        mmd_threshold: d.mmd_threshold,
        mmd_p_value: d.mmd_p_value,
        mmd_flagged: d.mmd_flagged,
        auc: d.auc,
        auc_threshold: d.auc_threshold,
        auc_flagged: d.auc_flagged,
        drifted: d.drifted,
        computed_at: d.computed_at,
    }
}

fn pb_hit(h: LivingHit) -> pb::LivingHit {
    pb::LivingHit {
        id: Some(pb_id(h.id)),
        score: h.score,
        payload_json: h
            .payload
            .map(|p| serde_json::to_string(&p).expect("payload serialises")),
        source: h.source,
    }
}

fn text_points(points: Vec<pb::TextPoint>) -> ApiResult<Vec<TextPoint>> {
    points
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let what = format!("points[{i}]");
            Ok(TextPoint {
                id: point_id(p.id, &what)?,
                payload: payload(&p.payload_json, &what)?,
                text: p.text,
            })
        })
        .collect()
}

fn ids(ids: Vec<pb::PointId>) -> ApiResult<Vec<paradox_engine::PointId>> {
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| point_id(Some(id), &format!("ids[{i}]")))
        .collect()
}

fn vectors(map: std::collections::HashMap<String, pb::FloatVector>) -> BTreeVectors {
    map.into_iter().map(|(k, v)| (k, v.values)).collect()
}

type BTreeVectors = std::collections::BTreeMap<String, Vec<f32>>;

#[tonic::async_trait]
impl pb::living_server::Living for GrpcService {
    async fn init(
        &self,
        request: Request<pb::LivingInitRequest>,
    ) -> Result<Response<pb::LivingInfo>, Status> {
        self.handle("Living/Init", request, |ctx, r| async move {
            let name = r.collection;
            let request = LivingInitRequest {
                space: r.space,
                encoder: r.encoder,
                text_field: r.text_field,
            };
            let call = async { self.service.living()?.init(&name, request).await };
            let info = self
                .gate
                .run(&ctx, "living_init", Access::Admin, Some(&name), call)
                .await?;
            Ok(pb_living(info))
        })
        .await
    }

    async fn describe(
        &self,
        request: Request<pb::CollectionRequest>,
    ) -> Result<Response<pb::LivingInfo>, Status> {
        self.handle("Living/Describe", request, |ctx, r| async move {
            let name = r.collection;
            let call = async { self.service.living()?.describe(&name).await };
            let info = self
                .gate
                .run(&ctx, "living_describe", Access::Read, Some(&name), call)
                .await?;
            Ok(pb_living(info))
        })
        .await
    }

    async fn add_space(
        &self,
        request: Request<pb::AddSpaceRequest>,
    ) -> Result<Response<pb::SpaceInfo>, Status> {
        self.handle("Living/AddSpace", request, |ctx, r| async move {
            let name = r.collection;
            let call = async {
                let dim = r.dim.map(|d| usize::try_from(d).unwrap_or(usize::MAX));
                if let Some(dim) = dim {
                    self.gate.check_dimension(dim)?;
                }
                let request = AddSpaceRequest {
                    space: r.space,
                    encoder: r.encoder,
                    dim,
                    index: index(&r.index_json)?,
                };
                self.service.living()?.add_space(&name, request).await
            };
            let space = self
                .gate
                .run(&ctx, "living_add_space", Access::Admin, Some(&name), call)
                .await?;
            Ok(pb_space(space))
        })
        .await
    }

    async fn set_default_space(
        &self,
        request: Request<pb::SetDefaultSpaceRequest>,
    ) -> Result<Response<pb::LivingInfo>, Status> {
        self.handle("Living/SetDefaultSpace", request, |ctx, r| async move {
            let name = r.collection;
            let call = async {
                self.service
                    .living()?
                    .set_default_space(&name, &r.space)
                    .await
            };
            let info = self
                .gate
                .run(
                    &ctx,
                    "living_set_default_space",
                    Access::Admin,
                    Some(&name),
                    call,
                )
                .await?;
            Ok(pb_living(info))
        })
        .await
    }

    async fn remove_space(
        &self,
        request: Request<pb::RemoveSpaceRequest>,
    ) -> Result<Response<pb::LivingInfo>, Status> {
        self.handle("Living/RemoveSpace", request, |ctx, r| async move {
            let name = r.collection;
            let call = async { self.service.living()?.remove_space(&name, &r.space).await };
            let info = self
                .gate
                .run(
                    &ctx,
                    "living_remove_space",
                    Access::Admin,
                    Some(&name),
                    call,
                )
                .await?;
            Ok(pb_living(info))
        })
        .await
    }

    async fn upsert_texts(
        &self,
        request: Request<pb::UpsertTextsRequest>,
    ) -> Result<Response<pb::LivingWriteResponse>, Status> {
        self.handle("Living/UpsertTexts", request, |ctx, r| async move {
            let name = r.collection;
            let call = async {
                self.gate.check_batch("points", r.points.len())?;
                for (i, point) in r.points.iter().enumerate() {
                    self.gate
                        .check_text(&format!("points[{i}].text"), &point.text)?;
                }
                let points = text_points(r.points)?;
                self.service.living()?.upsert_texts(&name, points).await
            };
            let written = self
                .gate
                .run(
                    &ctx,
                    "living_upsert_texts",
                    Access::Write,
                    Some(&name),
                    call,
                )
                .await?;
            Ok(pb::LivingWriteResponse {
                count: written.count as u64,
            })
        })
        .await
    }

    async fn upsert_vectors(
        &self,
        request: Request<pb::UpsertVectorsRequest>,
    ) -> Result<Response<pb::LivingWriteResponse>, Status> {
        self.handle("Living/UpsertVectors", request, |ctx, r| async move {
            let name = r.collection;
            let call = async {
                self.gate.check_batch("points", r.points.len())?;
                let points = new_points(r.points)?;
                self.service
                    .living()?
                    .upsert_vectors(&name, &r.space, points)
                    .await
            };
            let written = self
                .gate
                .run(
                    &ctx,
                    "living_upsert_vectors",
                    Access::Write,
                    Some(&name),
                    call,
                )
                .await?;
            Ok(pb::LivingWriteResponse {
                count: written.count as u64,
            })
        })
        .await
    }

    async fn delete(
        &self,
        request: Request<pb::LivingDeleteRequest>,
    ) -> Result<Response<pb::LivingWriteResponse>, Status> {
        self.handle("Living/Delete", request, |ctx, r| async move {
            let name = r.collection;
            let call = async {
                self.gate.check_batch("ids", r.ids.len())?;
                let ids = ids(r.ids)?;
                self.service.living()?.delete(&name, ids).await
            };
            let deleted = self
                .gate
                .run(&ctx, "living_delete", Access::Write, Some(&name), call)
                .await?;
            Ok(pb::LivingWriteResponse {
                count: deleted.count as u64,
            })
        })
        .await
    }

    async fn search(
        &self,
        request: Request<pb::LivingSearchRequest>,
    ) -> Result<Response<pb::LivingSearchResponse>, Status> {
        self.handle("Living/Search", request, |ctx, r| async move {
            let name = r.collection;
            let call = async {
                let k = usize::try_from(r.k).unwrap_or(usize::MAX);
                self.gate.check_k("k", k)?;
                if let Some(text) = &r.text {
                    self.gate.check_text("text", text)?;
                }
                let request = LivingSearchRequest {
                    space: r.space,
                    text: r.text,
                    vector: (!r.vector.is_empty()).then_some(r.vector),
                    k,
                    filter: filter(&r.filter_json)?,
                    with_payload: r.with_payload,
                    params: search_params(r.params),
                    context: r.context,
                    oversample: r
                        .oversample
                        .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                };
                self.service.living()?.search(&name, request).await
            };
            let found = self
                .gate
                .run(&ctx, "living_search", Access::Read, Some(&name), call)
                .await?;
            Ok(pb::LivingSearchResponse {
                space: found.space,
                hits: found.hits.into_iter().map(pb_hit).collect(),
            })
        })
        .await
    }

    async fn fit_adapters(
        &self,
        request: Request<pb::FitAdaptersRequest>,
    ) -> Result<Response<pb::FitAdaptersResponse>, Status> {
        self.handle("Living/FitAdapters", request, |ctx, r| async move {
            let name = r.collection;
            let request = FitAdaptersRequest {
                from: r.from,
                to: r.to,
                kind: if r.kind.is_empty() {
                    "affine".into()
                } else {
                    r.kind
                },
                pairs: count(r.pairs, 5000),
            };
            let call = async { self.service.living()?.fit_adapters(&name, request).await };
            let fitted = self
                .gate
                .run(
                    &ctx,
                    "living_fit_adapters",
                    Access::Admin,
                    Some(&name),
                    call,
                )
                .await?;
            Ok(pb::FitAdaptersResponse {
                forward: Some(pb_adapter(fitted.forward)),
                backward: Some(pb_adapter(fitted.backward)),
            })
        })
        .await
    }

    async fn start_migration(
        &self,
        request: Request<pb::StartMigrationRequest>,
    ) -> Result<Response<pb::MigrationInfo>, Status> {
        self.handle("Living/StartMigration", request, |ctx, r| async move {
            let name = r.collection;
            let request = StartMigrationRequest {
                to: r.to,
                from: r.from,
                rate: r.rate,
                batch_size: count(r.batch_size, 256),
                switch_at: r.switch_at.unwrap_or(0.95),
                importance_field: r.importance_field,
            };
            let call = async { self.service.living()?.start_migration(&name, request).await };
            let status = self
                .gate
                .run(
                    &ctx,
                    "living_start_migration",
                    Access::Admin,
                    Some(&name),
                    call,
                )
                .await?;
            Ok(pb_migration(status))
        })
        .await
    }

    async fn migration_status(
        &self,
        request: Request<pb::CollectionRequest>,
    ) -> Result<Response<pb::MigrationStatusResponse>, Status> {
        self.handle("Living/MigrationStatus", request, |ctx, r| async move {
            let name = r.collection;
            let call = async { self.service.living()?.migration_status(&name).await };
            let status = self
                .gate
                .run(
                    &ctx,
                    "living_migration_status",
                    Access::Read,
                    Some(&name),
                    call,
                )
                .await?;
            Ok(pb_migration_status(status))
        })
        .await
    }

    async fn pause_migration(
        &self,
        request: Request<pb::CollectionRequest>,
    ) -> Result<Response<pb::MigrationStatusResponse>, Status> {
        self.handle("Living/PauseMigration", request, |ctx, r| async move {
            let name = r.collection;
            let call = async { self.service.living()?.pause_migration(&name).await };
            let status = self
                .gate
                .run(
                    &ctx,
                    "living_pause_migration",
                    Access::Admin,
                    Some(&name),
                    call,
                )
                .await?;
            Ok(pb_migration_status(status))
        })
        .await
    }

    async fn drift(
        &self,
        request: Request<pb::DriftRequest>,
    ) -> Result<Response<pb::DriftReport>, Status> {
        self.handle("Living/Drift", request, |ctx, r| async move {
            let name = r.collection;
            let request = DriftRequest {
                space: r.space,
                window: count(r.window, 500),
                source: if r.source.is_empty() {
                    "stored".into()
                } else {
                    r.source
                },
                permutations: count(r.permutations, 200),
                alpha: r.alpha.unwrap_or(0.05),
                max_samples: count(r.max_samples, 1000),
                seed: r.seed,
            };
            let call = async { self.service.living()?.drift(&name, request).await };
            let report = self
                .gate
                .run(&ctx, "living_drift", Access::Read, Some(&name), call)
                .await?;
            Ok(pb_drift(report))
        })
        .await
    }

    async fn set_overlay(
        &self,
        request: Request<pb::SetOverlayRequest>,
    ) -> Result<Response<pb::LivingInfo>, Status> {
        self.handle("Living/SetOverlay", request, |ctx, r| async move {
            let name = r.collection;
            let call = async {
                if r.name.is_empty() {
                    return Err(ApiError::InvalidArgument(
                        "`name` (the overlay's) is required".into(),
                    ));
                }
                self.gate
                    .check_batch("overlay points", r.points.len() + r.clusters.len())?;
                let request = SetOverlayRequest {
                    space: r.space,
                    global: (!r.global.is_empty()).then_some(r.global),
                    cluster_field: r.cluster_field,
                    clusters: vectors(r.clusters),
                    points: vectors(r.points),
                    weight: r.weight.unwrap_or(1.0),
                };
                self.service
                    .living()?
                    .set_overlay(&name, &r.name, request)
                    .await
            };
            let info = self
                .gate
                .run(&ctx, "living_set_overlay", Access::Admin, Some(&name), call)
                .await?;
            Ok(pb_living(info))
        })
        .await
    }

    async fn remove_overlay(
        &self,
        request: Request<pb::RemoveOverlayRequest>,
    ) -> Result<Response<pb::LivingInfo>, Status> {
        self.handle("Living/RemoveOverlay", request, |ctx, r| async move {
            let name = r.collection;
            let call = async { self.service.living()?.remove_overlay(&name, &r.name).await };
            let info = self
                .gate
                .run(
                    &ctx,
                    "living_remove_overlay",
                    Access::Admin,
                    Some(&name),
                    call,
                )
                .await?;
            Ok(pb_living(info))
        })
        .await
    }
}

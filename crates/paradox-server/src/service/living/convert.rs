//! The lifecycle crate's types as the API's descriptions.

use crate::api::*;
use crate::error::ApiResult;
use paradox_lifecycle::adapter::AdapterKind;
use paradox_lifecycle::drift::DriftReport;
use paradox_lifecycle::living::{
    AdapterEntry, HitSource, LivingCollection, MigrationPhase, MigrationStatus, SpaceState,
};

/// Spaces with their counts and coverage, adapters, migration, overlays.
pub(super) fn describe(living: &LivingCollection) -> ApiResult<LivingDescription> {
    let default = living.default_space();
    let spaces = living
        .spaces()
        .iter()
        .map(|space| space_description(living, space, &default))
        .collect::<ApiResult<_>>()?;
    Ok(LivingDescription {
        collection: living.name().to_string(),
        default_space: default,
        text_field: living.text_field(),
        spaces,
        adapters: living
            .adapters()
            .into_iter()
            .map(adapter_description)
            .collect(),
        migration: living.migration_status().map(migration_description),
        overlays: living.overlays(),
    })
}

pub(super) fn space_description(
    living: &LivingCollection,
    space: &SpaceState,
    default: &str,
) -> ApiResult<SpaceDescription> {
    Ok(SpaceDescription {
        name: space.name.clone(),
        collection: space.collection.clone(),
        dim: space.dim,
        metric: space.metric.as_str().to_string(),
        encoder: space.encoder.as_ref().map(|e| EncoderDescription {
            name: e.name.clone(),
            version: e.version,
            kind: e.kind.clone(),
            dim: e.dim,
            params: e.params.clone(),
        }),
        points: living.count(&space.name)?,
        coverage: living.coverage(&space.name)?,
        default: space.name == default,
        normalized: space.normalizer.is_some(),
        created_at: space.created_at,
    })
}

/// An adapter kind as the spec that names it (`low_rank:64`).
pub(super) fn adapter_kind_spec(kind: AdapterKind) -> String {
    match kind {
        AdapterKind::Procrustes => "procrustes".into(),
        AdapterKind::Affine { .. } => "affine".into(),
        AdapterKind::LowRank { rank, .. } => format!("low_rank:{rank}"),
        AdapterKind::Mlp { hidden, .. } => format!("mlp:{hidden}"),
    }
}

pub(super) fn adapter_description(entry: AdapterEntry) -> AdapterDescription {
    AdapterDescription {
        kind: adapter_kind_spec(entry.kind),
        fit: AdapterFitDescription {
            pairs: entry.fit.pairs,
            holdout: entry.fit.holdout,
            train_cosine: entry.fit.train_cosine,
            holdout_cosine: entry.fit.holdout_cosine,
            holdout_r2: entry.fit.holdout_r2,
            fit_seconds: entry.fit.fit_seconds,
        },
        from: entry.from,
        to: entry.to,
        version: entry.version,
        created_at: entry.created_at,
    }
}

pub(super) fn migration_description(status: MigrationStatus) -> MigrationDescription {
    let processed = status.reencoded + status.adapted + status.skipped;
    let progress = if status.pending_at_start == 0 {
        1.0
    } else {
        (processed as f64 / status.pending_at_start as f64).min(1.0)
    };
    MigrationDescription {
        phase: match status.phase {
            MigrationPhase::Running => "running",
            MigrationPhase::Paused => "paused",
            MigrationPhase::Done => "done",
            MigrationPhase::Failed => "failed",
        }
        .into(),
        migrated: status.reencoded + status.adapted,
        progress,
        from: status.from,
        to: status.to,
        pending_at_start: status.pending_at_start,
        reencoded: status.reencoded,
        adapted: status.adapted,
        skipped: status.skipped,
        coverage: status.coverage,
        switch_at: status.switch_at,
        switched: status.switched,
        rate_limit: status.rate_limit,
        started_at: status.started_at,
        updated_at: status.updated_at,
        error: status.error,
    }
}

pub(super) fn drift_response(
    space: &str,
    source: &str,
    window: usize,
    r: &DriftReport,
) -> DriftResponse {
    DriftResponse {
        space: space.to_string(),
        source: source.to_string(),
        window,
        reference: r.reference,
        recent: r.recent,
        mean_shift: r.mean_shift,
        mean_shift_threshold: r.mean_shift_threshold,
        mean_shift_flagged: r.mean_shift > r.mean_shift_threshold,
        mmd: r.mmd,
        mmd_threshold: r.mmd_threshold,
        mmd_p_value: r.mmd_p_value,
        mmd_flagged: r.mmd > r.mmd_threshold,
        auc: r.auc,
        auc_threshold: r.auc_threshold,
        auc_flagged: r.auc > r.auc_threshold,
        drifted: r.drifted,
        computed_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    }
}

pub(super) fn living_hit(hit: paradox_lifecycle::living::LivingHit) -> crate::api::LivingHit {
    crate::api::LivingHit {
        id: hit.id,
        score: hit.score,
        payload: hit.payload,
        source: match hit.source {
            HitSource::Native => "native",
            HitSource::Rescored => "rescored",
            HitSource::Adapter => "adapter",
        }
        .into(),
    }
}

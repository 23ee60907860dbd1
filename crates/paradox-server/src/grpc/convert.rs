//! Conversions between the protobuf messages (`proto`) and the API types. JSON-carrying
//! fields (`payload_json`, `filter_json`, `index_json`) are parsed here with errors that
//! name the field; an empty string means "absent".

use crate::api::*;
use crate::error::{ApiError, ApiResult};
use crate::proto as pb;
use paradox_engine::{
    Filter, IndexConfig, NewPoint, Payload, Point, PointId, PointVersion, Provenance, ScoredPoint,
};

pub(super) fn point_id(id: Option<pb::PointId>, what: &str) -> ApiResult<PointId> {
    match id.and_then(|id| id.kind) {
        Some(pb::point_id::Kind::Num(n)) => Ok(PointId::Num(n)),
        Some(pb::point_id::Kind::Str(s)) => {
            if s.len() > PointId::MAX_STR_LEN {
                return Err(ApiError::InvalidArgument(format!(
                    "{what}: string id longer than {} bytes",
                    PointId::MAX_STR_LEN
                )));
            }
            Ok(PointId::Str(s))
        }
        None => Err(ApiError::InvalidArgument(format!(
            "{what}: id is missing (set `num` or `str`)"
        ))),
    }
}

pub(super) fn pb_id(id: PointId) -> pb::PointId {
    pb::PointId {
        kind: Some(match id {
            PointId::Num(n) => pb::point_id::Kind::Num(n),
            PointId::Str(s) => pb::point_id::Kind::Str(s),
        }),
    }
}

pub(super) fn filter(json: &str) -> ApiResult<Option<Filter>> {
    if json.trim().is_empty() {
        return Ok(None);
    }
    Filter::from_json_str(json)
        .map(Some)
        .map_err(|e| ApiError::InvalidArgument(format!("invalid filter_json: {e}")))
}

pub(super) fn index(json: &str) -> ApiResult<Option<IndexConfig>> {
    if json.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(json)
        .map(Some)
        .map_err(|e| ApiError::InvalidArgument(format!("invalid index_json: {e}")))
}

pub(super) fn payload(json: &str, what: &str) -> ApiResult<Payload> {
    if json.trim().is_empty() {
        return Ok(Payload::new());
    }
    serde_json::from_str(json).map_err(|e| {
        ApiError::InvalidArgument(format!(
            "invalid payload_json of {what}: {e} (expected a JSON object)"
        ))
    })
}

fn provenance(p: Option<pb::Provenance>) -> Option<Provenance> {
    p.map(|p| Provenance {
        source: p.source,
        encoder: p.encoder,
        pipeline: p.pipeline,
    })
}

fn pb_provenance(p: Option<Provenance>) -> Option<pb::Provenance> {
    p.map(|p| pb::Provenance {
        source: p.source,
        encoder: p.encoder,
        pipeline: p.pipeline,
    })
}

pub(super) fn new_points(points: Vec<pb::NewPoint>) -> ApiResult<Vec<NewPoint>> {
    points
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let what = format!("points[{i}]");
            let id = point_id(p.id, &what)?;
            Ok(NewPoint {
                payload: payload(&p.payload_json, &what)?,
                id,
                vector: p.vector,
                encoder_version: p.encoder_version,
                provenance: provenance(p.provenance),
            })
        })
        .collect()
}

pub(super) fn pb_point(p: Point) -> pb::Point {
    pb::Point {
        id: Some(pb_id(p.id)),
        vector: p.vector,
        payload_json: serde_json::to_string(&p.payload).expect("payload serialises"),
        encoder_version: p.encoder_version,
        provenance: pb_provenance(p.provenance),
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

pub(super) fn pb_version(v: PointVersion) -> pb::PointVersion {
    pb::PointVersion {
        point: Some(pb_point(v.point)),
        valid_to: v.valid_to,
    }
}

pub(super) fn reason_request(json: &str) -> ApiResult<paradox_mind::api::ReasonRequest> {
    serde_json::from_str(json).map_err(|e| {
        ApiError::InvalidArgument(format!(
            "invalid request_json: {e} (expected {{\"op\": \"arithmetic\" | \"analogy\" | \"blend\" | \"attention\" | \"trajectory\", ..}})"
        ))
    })
}

pub(super) fn pb_hit(h: ScoredPoint) -> pb::ScoredPoint {
    pb::ScoredPoint {
        id: Some(pb_id(h.id)),
        score: h.score,
        payload_json: h
            .payload
            .map(|p| serde_json::to_string(&p).expect("payload serialises")),
        vector: h.vector.unwrap_or_default(),
    }
}

pub(super) fn search(r: pb::SearchRequest) -> ApiResult<SearchRequest> {
    Ok(SearchRequest {
        filter: filter(&r.filter_json)?,
        vector: r.vector,
        k: usize::try_from(r.k).unwrap_or(usize::MAX),
        with_payload: r.with_payload,
        with_vector: r.with_vector,
        params: search_params(r.params),
        as_of: r.as_of,
    })
}

pub(super) fn search_params(params: Option<pb::SearchParams>) -> paradox_engine::SearchParams {
    let params = params.unwrap_or_default();
    paradox_engine::SearchParams {
        ef: params
            .ef
            .map(|ef| usize::try_from(ef).unwrap_or(usize::MAX)),
        nprobe: params
            .nprobe
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        exact: params.exact,
    }
}

pub(super) fn pb_collection(c: CollectionDescription) -> pb::CollectionInfo {
    pb::CollectionInfo {
        name: c.name,
        dimension: c.dimension as u64,
        metric: c.metric,
        index_json: serde_json::to_string(&c.index).expect("index config serialises"),
        points: c.points as u64,
        sealed_segments: c.sealed_segments as u64,
        sealed_rows: c.sealed_rows as u64,
        growing_rows: c.growing_rows as u64,
        deleted_rows: c.deleted_rows as u64,
        segment_bytes: c.segment_bytes,
        wal_bytes: c.wal_bytes,
        applied_seq: c.applied_seq,
        pending_index_builds: c.pending_index_builds as u64,
        history: c.history,
        past_versions: c.past_versions.map(|n| n as u64),
    }
}

pub(super) fn pb_snapshot(s: SnapshotDescription) -> pb::SnapshotDescription {
    pb::SnapshotDescription {
        name: s.name,
        collection: s.collection,
        bytes: s.bytes,
        created_at: s.created_at,
    }
}

pub(super) fn pb_write(w: WriteResponse) -> pb::WriteResponse {
    pb::WriteResponse {
        seq: w.seq,
        count: w.count as u64,
    }
}

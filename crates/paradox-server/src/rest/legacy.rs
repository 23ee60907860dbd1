//! The HTTP routes of paradoxlf 0.17's shard server, so its `RemoteShard` client works
//! unchanged against `paradox serve --legacy`:
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /` | - | `{"status": "online", "id": <node id>, "count": N}` |
//! | `POST /add` | `{"vector": [..], "attributes": {..} or null}` | `{"status": "ok"}` |
//! | `POST /query` | `{"vector": [..], "k": 5}` | `[{"id": int, "distance": float, "attributes": {..}}]` |
//!
//! Points land in one l2 collection (`legacy.collection`). As in 0.17, ids are assigned in
//! order from 0, the attributes get an `_id` key holding the id, and `distance` is the
//! Euclidean distance (the square root of the engine's squared L2). Unknown body fields
//! are ignored, as pydantic did. Calls go through the same gate (auth, limits, audit) as
//! the `/v1` API, so the old client (which sends no key) needs auth off.

use super::{ApiJson, AppState, Ctx};
use crate::api::{CreateCollectionRequest, ScrollRequest, SearchRequest};
use crate::auth::Access;
use crate::error::{ApiError, ApiResult};
use crate::service::MemoryService;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use paradox_engine::{NewPoint, Payload, PointId, SearchParams};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::Mutex;

/// The node's identity and the next id to assign.
#[derive(Debug)]
pub struct LegacyState {
    id: String,
    pub(super) collection: String,
    next_id: Mutex<u64>,
}

impl LegacyState {
    /// Creates the legacy collection if missing (l2, `dimension`) and finds the next id
    /// (one past the largest numeric id stored).
    pub async fn open(
        service: &dyn MemoryService,
        id: String,
        collection: String,
        dimension: usize,
    ) -> ApiResult<LegacyState> {
        match service.collection_info(&collection).await {
            Ok(info) if info.dimension != dimension => {
                return Err(ApiError::InvalidArgument(format!(
                    "legacy collection `{collection}` has dimension {}, --dimension says {dimension}",
                    info.dimension
                )))
            }
            Ok(_) => {}
            Err(ApiError::NotFound(_)) => {
                service
                    .create_collection(CreateCollectionRequest {
                        name: collection.clone(),
                        dimension,
                        metric: "l2".into(),
                        index: None,
                        history: false,
                    })
                    .await?;
            }
            Err(e) => return Err(e),
        }
        let mut next_id = 0;
        let mut after = None;
        loop {
            let page = service
                .scroll(
                    &collection,
                    ScrollRequest {
                        after: after.clone(),
                        limit: 10_000,
                        ..Default::default()
                    },
                )
                .await?;
            for point in &page.points {
                if let PointId::Num(n) = point.id {
                    next_id = next_id.max(n + 1);
                }
            }
            match page.next {
                Some(PointId::Num(_)) => after = page.next,
                _ => break,
            }
        }
        Ok(LegacyState {
            id,
            collection,
            next_id: Mutex::new(next_id),
        })
    }
}

#[derive(Debug, Deserialize)]
struct AddItem {
    vector: Vec<f32>,
    #[serde(default)]
    attributes: Option<Payload>,
}

fn default_k() -> i64 {
    5
}

#[derive(Debug, Deserialize)]
struct QueryItem {
    vector: Vec<f32>,
    #[serde(default = "default_k")]
    k: i64,
}

fn legacy_state(s: &AppState) -> ApiResult<&Arc<LegacyState>> {
    s.legacy
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("legacy routes are off".into()))
}

async fn root(State(s): State<AppState>, Ctx(mut ctx): Ctx) -> ApiResult<Json<Value>> {
    ctx.transport = "legacy";
    let legacy = legacy_state(&s)?;
    let call = s.service.count(&legacy.collection, None);
    let count = s
        .gate
        .run(
            &ctx,
            "legacy_status",
            Access::Read,
            Some(&legacy.collection),
            call,
        )
        .await?;
    Ok(Json(
        json!({"status": "online", "id": legacy.id, "count": count}),
    ))
}

async fn add(
    State(s): State<AppState>,
    Ctx(mut ctx): Ctx,
    ApiJson(item): ApiJson<AddItem>,
) -> ApiResult<Json<Value>> {
    ctx.transport = "legacy";
    let legacy = legacy_state(&s)?;
    let call = async {
        // Holding the counter across the write keeps ids dense and in write order.
        let mut next_id = legacy.next_id.lock().await;
        let id = *next_id;
        let mut attributes = item.attributes.unwrap_or_default();
        attributes.insert("_id".into(), json!(id));
        let point = NewPoint::new(id, item.vector).with_payload(attributes);
        s.service.upsert(&legacy.collection, vec![point]).await?;
        *next_id += 1;
        Ok(())
    };
    s.gate
        .run(
            &ctx,
            "legacy_add",
            Access::Write,
            Some(&legacy.collection),
            call,
        )
        .await?;
    Ok(Json(json!({"status": "ok"})))
}

async fn query(
    State(s): State<AppState>,
    Ctx(mut ctx): Ctx,
    ApiJson(item): ApiJson<QueryItem>,
) -> ApiResult<Json<Value>> {
    ctx.transport = "legacy";
    let legacy = legacy_state(&s)?;
    let call = async {
        // 0.17 answered k <= 0 with no hits.
        if item.k <= 0 {
            return Ok(Vec::new());
        }
        let k = usize::try_from(item.k).unwrap_or(usize::MAX);
        s.gate.check_k("k", k)?;
        let request = SearchRequest {
            vector: item.vector,
            k,
            filter: None,
            with_payload: true,
            with_vector: false,
            params: SearchParams::default(),
            as_of: None,
        };
        Ok(s.service.search(&legacy.collection, request).await?.hits)
    };
    let hits = s
        .gate
        .run(
            &ctx,
            "legacy_query",
            Access::Read,
            Some(&legacy.collection),
            call,
        )
        .await?;
    let results: Vec<Value> = hits
        .into_iter()
        .map(|hit| {
            let id = match hit.id {
                PointId::Num(n) => json!(n),
                PointId::Str(s) => json!(s),
            };
            json!({
                "id": id,
                "distance": f64::from(hit.score.max(0.0)).sqrt(),
                "attributes": hit.payload.unwrap_or_default(),
            })
        })
        .collect();
    Ok(Json(Value::Array(results)))
}

/// `GET /`, `POST /add`, `POST /query`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/add", post(add))
        .route("/query", post(query))
}

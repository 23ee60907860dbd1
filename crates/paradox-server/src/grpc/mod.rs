//! The gRPC transport (tonic): `proto/paradox/v1/paradox.proto` over [`MemoryService`].
//! Each method converts its message, runs the call through the [`Gate`] (the same auth,
//! limits, timeout and audit as REST), converts the answer back, and records metrics
//! under its method name. Two services: `paradox.v1.Paradox` (here) and
//! `paradox.v1.Living` (living collections, `living.rs`).

mod convert;
mod living;

use crate::api::*;
use crate::auth::Access;
use crate::error::{ApiError, ApiResult};
use crate::gate::{new_request_id, CallContext, Gate};
use crate::proto as pb;
use crate::service::MemoryService;
use axum::body::Bytes;
use convert::*;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// The gRPC service.
#[derive(Clone)]
pub struct GrpcService {
    service: Arc<dyn MemoryService>,
    gate: Arc<Gate>,
}

impl std::fmt::Debug for GrpcService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcService").finish_non_exhaustive()
    }
}

impl GrpcService {
    /// A gRPC face for `service`.
    pub fn new(service: Arc<dyn MemoryService>, gate: Arc<Gate>) -> GrpcService {
        GrpcService { service, gate }
    }

    /// The tonic server for this service, with the message size limit applied.
    pub fn into_server(self) -> pb::paradox_server::ParadoxServer<GrpcService> {
        let limit = self.gate.limits.max_body_bytes;
        pb::paradox_server::ParadoxServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(usize::MAX)
    }

    /// The tonic server of the `Living` service, with the same message size limit.
    pub fn into_living_server(self) -> pb::living_server::LivingServer<GrpcService> {
        let limit = self.gate.limits.max_body_bytes;
        pb::living_server::LivingServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(usize::MAX)
    }

    /// Runs one RPC: context from metadata, tracing span, metrics.
    async fn handle<M, T, F, Fut>(
        &self,
        method: &'static str,
        request: Request<M>,
        call: F,
    ) -> Result<Response<T>, Status>
    where
        F: FnOnce(CallContext, M) -> Fut,
        Fut: std::future::Future<Output = ApiResult<T>>,
    {
        let meta = |name: &str| {
            request
                .metadata()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let ctx = CallContext {
            request_id: meta("x-request-id")
                .filter(|v| !v.is_empty() && v.len() <= 128)
                .unwrap_or_else(new_request_id),
            transport: "grpc",
            credential: meta("authorization").or_else(|| meta("api-key")),
        };
        let span = tracing::info_span!("grpc", request_id = %ctx.request_id, method);
        let started = Instant::now();
        let result = call(ctx, request.into_inner())
            .instrument(span.clone())
            .await;
        let elapsed = started.elapsed();
        let status = match &result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self.gate
            .metrics
            .observe("grpc", method, status, elapsed.as_secs_f64());
        span.in_scope(|| {
            let error = result.as_ref().err().map(ToString::to_string);
            let elapsed_us = elapsed.as_micros() as u64;
            match error {
                Some(error) => tracing::info!(status, elapsed_us, error, "answered"),
                None => tracing::debug!(status, elapsed_us, "answered"),
            }
        });
        result.map(Response::new).map_err(|e| e.to_status())
    }
}

type ChunkStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::SnapshotChunk, Status>> + Send>>;

#[tonic::async_trait]
impl pb::paradox_server::Paradox for GrpcService {
    async fn server_info(
        &self,
        request: Request<pb::ServerInfoRequest>,
    ) -> Result<Response<pb::ServerInfoResponse>, Status> {
        self.handle("ServerInfo", request, |ctx, _| async move {
            let principal = self.gate.principal(&ctx)?;
            let all = self
                .gate
                .run(
                    &ctx,
                    "server_info",
                    Access::Read,
                    None,
                    self.service.list_collections(),
                )
                .await?;
            let l = &self.gate.limits;
            Ok(pb::ServerInfoResponse {
                version: env!("CARGO_PKG_VERSION").into(),
                auth_enabled: self.gate.auth.enabled(),
                max_batch: l.max_batch as u64,
                max_k: l.max_k as u64,
                max_dimension: l.max_dimension as u64,
                max_body_bytes: l.max_body_bytes as u64,
                request_timeout_ms: l.request_timeout_ms,
                collections: all.iter().filter(|c| principal.may_touch(&c.name)).count() as u64,
            })
        })
        .await
    }

    async fn create_collection(
        &self,
        request: Request<pb::CreateCollectionRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        self.handle("CreateCollection", request, |ctx, r| async move {
            let name = r.name.clone();
            let call = async {
                let dimension = usize::try_from(r.dimension).unwrap_or(usize::MAX);
                self.gate.check_dimension(dimension)?;
                let request = CreateCollectionRequest {
                    name: r.name,
                    dimension,
                    metric: if r.metric.is_empty() {
                        "cosine".into()
                    } else {
                        r.metric
                    },
                    index: index(&r.index_json)?,
                    history: r.history,
                };
                self.service.create_collection(request).await
            };
            let info = self
                .gate
                .run(&ctx, "create_collection", Access::Admin, Some(&name), call)
                .await?;
            Ok(pb_collection(info))
        })
        .await
    }

    async fn list_collections(
        &self,
        request: Request<pb::ListCollectionsRequest>,
    ) -> Result<Response<pb::ListCollectionsResponse>, Status> {
        self.handle("ListCollections", request, |ctx, _| async move {
            let principal = self.gate.principal(&ctx)?;
            let all = self
                .gate
                .run(
                    &ctx,
                    "list_collections",
                    Access::Read,
                    None,
                    self.service.list_collections(),
                )
                .await?;
            Ok(pb::ListCollectionsResponse {
                collections: all
                    .into_iter()
                    .filter(|c| principal.may_touch(&c.name))
                    .map(pb_collection)
                    .collect(),
            })
        })
        .await
    }

    async fn get_collection(
        &self,
        request: Request<pb::CollectionRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        self.handle("GetCollection", request, |ctx, r| async move {
            let call = self.service.collection_info(&r.collection);
            let info = self
                .gate
                .run(
                    &ctx,
                    "collection_info",
                    Access::Read,
                    Some(&r.collection),
                    call,
                )
                .await?;
            Ok(pb_collection(info))
        })
        .await
    }

    async fn update_collection(
        &self,
        request: Request<pb::UpdateCollectionRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        self.handle("UpdateCollection", request, |ctx, r| async move {
            let call = async {
                let index = index(&r.index_json)?
                    .ok_or_else(|| ApiError::InvalidArgument("index_json is required".into()))?;
                self.service
                    .update_collection(&r.collection, UpdateCollectionRequest { index })
                    .await
            };
            let info = self
                .gate
                .run(
                    &ctx,
                    "update_collection",
                    Access::Admin,
                    Some(&r.collection),
                    call,
                )
                .await?;
            Ok(pb_collection(info))
        })
        .await
    }

    async fn delete_collection(
        &self,
        request: Request<pb::CollectionRequest>,
    ) -> Result<Response<pb::DeleteCollectionResponse>, Status> {
        self.handle("DeleteCollection", request, |ctx, r| async move {
            let call = self.service.delete_collection(&r.collection);
            self.gate
                .run(
                    &ctx,
                    "delete_collection",
                    Access::Admin,
                    Some(&r.collection),
                    call,
                )
                .await?;
            Ok(pb::DeleteCollectionResponse {})
        })
        .await
    }

    async fn upsert(
        &self,
        request: Request<pb::UpsertRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        self.handle("Upsert", request, |ctx, r| async move {
            let call = async {
                self.gate.check_batch("points", r.points.len())?;
                let points = new_points(r.points)?;
                self.service.upsert(&r.collection, points).await
            };
            let result = self
                .gate
                .run(&ctx, "upsert", Access::Write, Some(&r.collection), call)
                .await?;
            Ok(pb_write(result))
        })
        .await
    }

    async fn get_points(
        &self,
        request: Request<pb::GetPointsRequest>,
    ) -> Result<Response<pb::GetPointsResponse>, Status> {
        self.handle("GetPoints", request, |ctx, r| async move {
            let call = async {
                self.gate.check_batch("ids", r.ids.len())?;
                let ids = r
                    .ids
                    .into_iter()
                    .enumerate()
                    .map(|(i, id)| point_id(Some(id), &format!("ids[{i}]")))
                    .collect::<ApiResult<Vec<_>>>()?;
                let request = GetPointsRequest {
                    ids,
                    with_vector: r.with_vector,
                };
                self.service.get_points(&r.collection, request).await
            };
            let found = self
                .gate
                .run(&ctx, "get_points", Access::Read, Some(&r.collection), call)
                .await?;
            Ok(pb::GetPointsResponse {
                points: found.points.into_iter().map(pb_point).collect(),
            })
        })
        .await
    }

    async fn delete_points(
        &self,
        request: Request<pb::DeletePointsRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        self.handle("DeletePoints", request, |ctx, r| async move {
            let call = async {
                self.gate.check_batch("ids", r.ids.len())?;
                let filter = filter(&r.filter_json)?;
                let ids = if r.ids.is_empty() && filter.is_some() {
                    None
                } else {
                    Some(
                        r.ids
                            .into_iter()
                            .enumerate()
                            .map(|(i, id)| point_id(Some(id), &format!("ids[{i}]")))
                            .collect::<ApiResult<Vec<_>>>()?,
                    )
                };
                self.service
                    .delete_points(&r.collection, DeletePointsRequest { ids, filter })
                    .await
            };
            let result = self
                .gate
                .run(
                    &ctx,
                    "delete_points",
                    Access::Write,
                    Some(&r.collection),
                    call,
                )
                .await?;
            Ok(pb_write(result))
        })
        .await
    }

    async fn scroll(
        &self,
        request: Request<pb::ScrollRequest>,
    ) -> Result<Response<pb::ScrollResponse>, Status> {
        self.handle("Scroll", request, |ctx, r| async move {
            let call = async {
                let limit = if r.limit == 0 {
                    100
                } else {
                    usize::try_from(r.limit).unwrap_or(usize::MAX)
                };
                self.gate.check_k("limit", limit)?;
                let after = match r.after {
                    Some(id) => Some(point_id(Some(id), "after")?),
                    None => None,
                };
                let request = ScrollRequest {
                    after,
                    limit,
                    filter: filter(&r.filter_json)?,
                    with_vector: r.with_vector,
                };
                self.service.scroll(&r.collection, request).await
            };
            let page = self
                .gate
                .run(&ctx, "scroll", Access::Read, Some(&r.collection), call)
                .await?;
            Ok(pb::ScrollResponse {
                points: page.points.into_iter().map(pb_point).collect(),
                next: page.next.map(pb_id),
            })
        })
        .await
    }

    async fn count(
        &self,
        request: Request<pb::CountRequest>,
    ) -> Result<Response<pb::CountResponse>, Status> {
        self.handle("Count", request, |ctx, r| async move {
            let call = async {
                self.service
                    .count(&r.collection, filter(&r.filter_json)?)
                    .await
            };
            let count = self
                .gate
                .run(&ctx, "count", Access::Read, Some(&r.collection), call)
                .await?;
            Ok(pb::CountResponse {
                count: count as u64,
            })
        })
        .await
    }

    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        self.handle("Search", request, |ctx, r| async move {
            let collection = r.collection.clone();
            let call = async {
                let request = search(r)?;
                self.gate.check_k("k", request.k)?;
                self.service.search(&collection, request).await
            };
            let found = self
                .gate
                .run(&ctx, "search", Access::Read, Some(&collection), call)
                .await?;
            Ok(pb::SearchResponse {
                hits: found.hits.into_iter().map(pb_hit).collect(),
            })
        })
        .await
    }

    async fn search_batch(
        &self,
        request: Request<pb::SearchBatchRequest>,
    ) -> Result<Response<pb::SearchBatchResponse>, Status> {
        self.handle("SearchBatch", request, |ctx, r| async move {
            let call = async {
                self.gate.check_batch("searches", r.searches.len())?;
                let searches = r
                    .searches
                    .into_iter()
                    .map(|s| {
                        let s = search(s)?;
                        self.gate.check_k("k", s.k)?;
                        Ok(s)
                    })
                    .collect::<ApiResult<Vec<_>>>()?;
                self.service.search_batch(&r.collection, searches).await
            };
            let found = self
                .gate
                .run(
                    &ctx,
                    "search_batch",
                    Access::Read,
                    Some(&r.collection),
                    call,
                )
                .await?;
            Ok(pb::SearchBatchResponse {
                results: found
                    .results
                    .into_iter()
                    .map(|r| pb::SearchResponse {
                        hits: r.hits.into_iter().map(pb_hit).collect(),
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn point_history(
        &self,
        request: Request<pb::PointHistoryRequest>,
    ) -> Result<Response<pb::PointHistoryResponse>, Status> {
        self.handle("PointHistory", request, |ctx, r| async move {
            let call = async {
                let id = point_id(r.id, "id")?;
                self.service.point_history(&r.collection, id).await
            };
            let history = self
                .gate
                .run(
                    &ctx,
                    "point_history",
                    Access::Read,
                    Some(&r.collection),
                    call,
                )
                .await?;
            Ok(pb::PointHistoryResponse {
                versions: history.versions.into_iter().map(pb_version).collect(),
            })
        })
        .await
    }

    async fn reason(
        &self,
        request: Request<pb::ReasonRequest>,
    ) -> Result<Response<pb::ReasonResponse>, Status> {
        self.handle("Reason", request, |ctx, r| async move {
            let call = async {
                let request = reason_request(&r.request_json)?;
                self.gate.check_reason(&request)?;
                self.service.reason(&r.collection, request).await
            };
            let answer = self
                .gate
                .run(&ctx, "reason", Access::Read, Some(&r.collection), call)
                .await?;
            Ok(pb::ReasonResponse {
                response_json: serde_json::to_string(&answer).expect("reason response serialises"),
            })
        })
        .await
    }

    async fn create_snapshot(
        &self,
        request: Request<pb::CollectionRequest>,
    ) -> Result<Response<pb::SnapshotDescription>, Status> {
        self.handle("CreateSnapshot", request, |ctx, r| async move {
            let call = self.service.create_snapshot(&r.collection);
            let snapshot = self
                .gate
                .run(
                    &ctx,
                    "create_snapshot",
                    Access::Admin,
                    Some(&r.collection),
                    call,
                )
                .await?;
            Ok(pb_snapshot(snapshot))
        })
        .await
    }

    async fn list_snapshots(
        &self,
        request: Request<pb::CollectionRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        self.handle("ListSnapshots", request, |ctx, r| async move {
            let call = self.service.list_snapshots(&r.collection);
            let list = self
                .gate
                .run(
                    &ctx,
                    "list_snapshots",
                    Access::Admin,
                    Some(&r.collection),
                    call,
                )
                .await?;
            Ok(pb::ListSnapshotsResponse {
                snapshots: list.into_iter().map(pb_snapshot).collect(),
            })
        })
        .await
    }

    type DownloadSnapshotStream = ChunkStream;

    async fn download_snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        self.handle("DownloadSnapshot", request, |ctx, r| async move {
            let call = self.service.open_snapshot(&r.collection, &r.snapshot);
            let file = self
                .gate
                .run(
                    &ctx,
                    "download_snapshot",
                    Access::Admin,
                    Some(&r.collection),
                    call,
                )
                .await?;
            use tokio_stream::StreamExt;
            let stream = crate::service::chunk_stream(file.reader).map(|chunk| {
                chunk
                    .map(|data| pb::SnapshotChunk { data })
                    .map_err(|e| Status::internal(format!("reading the snapshot failed: {e}")))
            });
            Ok(Box::pin(stream) as ChunkStream)
        })
        .await
    }

    async fn upload_snapshot(
        &self,
        request: Request<tonic::Streaming<pb::SnapshotUploadChunk>>,
    ) -> Result<Response<pb::SnapshotDescription>, Status> {
        self.handle("UploadSnapshot", request, |ctx, mut chunks| async move {
            use tokio_stream::StreamExt;
            // Refuse an unknown caller before reading any of its bytes.
            if let Err(refused) = self.gate.principal(&ctx) {
                self.gate
                    .audit_refusal(&ctx, "upload_snapshot", None, &refused);
                return Err(refused);
            }
            // The first message names the collection; its bytes are the file's first.
            let idle = std::time::Duration::from_millis(self.gate.limits.request_timeout_ms);
            let first =
                match tokio::time::timeout(idle, chunks.message()).await {
                    Ok(Ok(Some(first))) => first,
                    Ok(Ok(None)) => return Err(ApiError::InvalidArgument(
                        "empty upload: send the snapshot's bytes in SnapshotUploadChunk messages"
                            .into(),
                    )),
                    Ok(Err(status)) => {
                        return Err(ApiError::InvalidArgument(format!(
                            "reading the upload failed: {}",
                            status.message()
                        )))
                    }
                    Err(_) => {
                        return Err(ApiError::Timeout(format!(
                        "snapshot upload stalled: no data for {} ms (limits.request_timeout_ms)",
                        idle.as_millis()
                    )))
                    }
                };
            let collection = first.collection;
            let rest = chunks.map(|chunk| {
                chunk.map(|c| Bytes::from(c.data)).map_err(|status| {
                    ApiError::InvalidArgument(format!(
                        "reading the upload failed: {}",
                        status.message()
                    ))
                })
            });
            let source = tokio_stream::once(Ok(Bytes::from(first.data))).chain(rest);
            let call = async {
                if collection.is_empty() {
                    return Err(ApiError::InvalidArgument(
                        "`collection` is required in the first SnapshotUploadChunk".into(),
                    ));
                }
                let upload = self.gate.snapshot_upload(Box::pin(source));
                self.service.upload_snapshot(&collection, upload).await
            };
            let snapshot = self
                .gate
                .run_streaming(
                    &ctx,
                    "upload_snapshot",
                    Access::Admin,
                    Some(&collection),
                    call,
                )
                .await?;
            Ok(pb_snapshot(snapshot))
        })
        .await
    }

    async fn restore_snapshot(
        &self,
        request: Request<pb::RestoreSnapshotRequest>,
    ) -> Result<Response<pb::CollectionInfo>, Status> {
        self.handle("RestoreSnapshot", request, |ctx, r| async move {
            let as_name = (!r.as_name.is_empty()).then_some(r.as_name);
            // Restoring creates a collection: admin on the new name too, checked inside
            // the gated call so that a refusal is audited.
            let principal = self.gate.principal(&ctx).ok();
            let call = async {
                if let (Some(principal), Some(target)) = (&principal, &as_name) {
                    principal.authorize(Access::Admin, Some(target))?;
                }
                self.service
                    .restore_snapshot(&r.collection, &r.snapshot, as_name.clone())
                    .await
            };
            let info = self
                .gate
                .run(
                    &ctx,
                    "restore_snapshot",
                    Access::Admin,
                    Some(&r.collection),
                    call,
                )
                .await?;
            Ok(pb_collection(info))
        })
        .await
    }
}

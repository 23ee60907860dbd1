//! [`MemoryService`]: the one interface both transports call. A single node implements it
//! with [`EngineService`] (over `paradox_engine::Engine`); the cluster router will
//! implement it too, so REST and gRPC never know which one they serve.
//!
//! The trait sees validated, authorised requests: authentication, authorisation, limits,
//! timeouts and audit are the transports' job (through `Gate`), done once before the call.

use crate::api::*;
use crate::config::ServerConfig;
use crate::error::{ApiError, ApiResult};
use crate::upload::SnapshotUpload;
use async_trait::async_trait;
use paradox_engine::{Collection, CollectionConfig, Engine, Filter, Metric, NewPoint, PointId};

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::AsyncRead;

mod living;
mod snapshots;

pub use living::{LivingRegistry, LivingService, MAX_FIT_PAIRS};
pub use snapshots::chunk_stream;
use snapshots::{
    check_snapshot_name, claim_snapshot_name, describe_snapshot, io_failure, PartialUpload,
    UPLOADS_DIR,
};

/// A snapshot file being downloaded: its size and its bytes.
pub struct SnapshotReader {
    /// Total bytes.
    pub bytes: u64,
    /// The content.
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
}

impl std::fmt::Debug for SnapshotReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotReader")
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// What a Paradox server can do, independent of transport. Every method is cancel safe in
/// the sense that dropping its future never leaves partial state: a write either completes
/// (on a blocking thread, even if the caller went away) or never started.
#[async_trait]
pub trait MemoryService: Send + Sync + 'static {
    /// Whether the service can take requests.
    async fn ready(&self) -> bool;
    /// Creates a collection.
    async fn create_collection(
        &self,
        request: CreateCollectionRequest,
    ) -> ApiResult<CollectionDescription>;
    /// All collections, sorted by name.
    async fn list_collections(&self) -> ApiResult<Vec<CollectionDescription>>;
    /// One collection.
    async fn collection_info(&self, name: &str) -> ApiResult<CollectionDescription>;
    /// Replaces a collection's index config.
    async fn update_collection(
        &self,
        name: &str,
        request: UpdateCollectionRequest,
    ) -> ApiResult<CollectionDescription>;
    /// Deletes a collection and its data.
    async fn delete_collection(&self, name: &str) -> ApiResult<()>;
    /// Inserts or replaces points.
    async fn upsert(&self, name: &str, points: Vec<NewPoint>) -> ApiResult<WriteResponse>;
    /// Existing points among `ids`, in the order asked.
    async fn get_points(&self, name: &str, request: GetPointsRequest) -> ApiResult<PointsResponse>;
    /// Deletes by ids or filter.
    async fn delete_points(
        &self,
        name: &str,
        request: DeletePointsRequest,
    ) -> ApiResult<WriteResponse>;
    /// One page of points.
    async fn scroll(&self, name: &str, request: ScrollRequest) -> ApiResult<ScrollResponse>;
    /// Counts points.
    async fn count(&self, name: &str, filter: Option<Filter>) -> ApiResult<usize>;
    /// One search.
    async fn search(&self, name: &str, request: SearchRequest) -> ApiResult<SearchResponse>;
    /// Many searches.
    async fn search_batch(
        &self,
        name: &str,
        requests: Vec<SearchRequest>,
    ) -> ApiResult<SearchBatchResponse>;
    /// Every version of one point, oldest first (collections keeping history); 404 for an
    /// id never written.
    async fn point_history(&self, name: &str, id: PointId) -> ApiResult<HistoryResponse>;
    /// One reasoning operation (arithmetic, analogy, blend, attention, trajectory).
    async fn reason(&self, name: &str, request: ReasonRequest) -> ApiResult<ReasonResponse>;
    /// Writes a snapshot of the collection and returns its description.
    async fn create_snapshot(&self, name: &str) -> ApiResult<SnapshotDescription>;
    /// Stored snapshots of the collection.
    async fn list_snapshots(&self, name: &str) -> ApiResult<Vec<SnapshotDescription>>;
    /// Opens a stored snapshot for download.
    async fn open_snapshot(&self, name: &str, snapshot: &str) -> ApiResult<SnapshotReader>;
    /// Stores an uploaded snapshot file among `name`'s snapshots, once it has been
    /// verified like a snapshot about to be restored, and it is a snapshot of `name`. The
    /// collection need not exist here (the point is to restore it). A refused or broken
    /// upload leaves nothing behind.
    async fn upload_snapshot(
        &self,
        name: &str,
        upload: SnapshotUpload,
    ) -> ApiResult<SnapshotDescription>;
    /// Restores a stored snapshot as a new collection.
    async fn restore_snapshot(
        &self,
        name: &str,
        snapshot: &str,
        as_name: Option<String>,
    ) -> ApiResult<CollectionDescription>;
    /// Makes every acknowledged write durable (graceful shutdown).
    async fn flush(&self) -> ApiResult<()>;
    /// Living collections (vector spaces, raw-text writes, adapters, migrations, drift),
    /// when this service has them. By default it has none: every living call is answered
    /// `unsupported` (501 / `UNIMPLEMENTED`).
    fn living(&self) -> ApiResult<&dyn LivingService> {
        Err(ApiError::Unsupported(
            "living collections (vector spaces, encoders, adapters, migrations, drift) are \
             not supported by this service"
                .into(),
        ))
    }
}

/// The single-node service: an [`Engine`] plus a directory of snapshot files. CPU and disk
/// work runs on blocking threads (or the engine's rayon pool for searches), never on the
/// async workers.
#[derive(Debug, Clone)]
pub struct EngineService {
    engine: Arc<Engine>,
    snapshots_dir: PathBuf,
    living: LivingRegistry,
}

/// Runs blocking engine work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "blocking task failed");
        ApiError::Internal("internal error; see the server log".into())
    })?
}

/// Describes a collection for the API.
pub fn describe(collection: &Collection) -> CollectionDescription {
    let info = collection.info();
    CollectionDescription {
        name: info.name,
        dimension: info.dimension,
        metric: info.metric,
        index: info.index,
        points: info.points,
        sealed_segments: info.sealed_segments,
        sealed_rows: info.sealed_rows,
        growing_rows: info.growing_rows,
        deleted_rows: info.deleted_rows,
        segment_bytes: info.segment_bytes,
        wal_bytes: info.wal_bytes,
        applied_seq: info.applied_seq,
        pending_index_builds: collection.pending_index_builds(),
        maintenance_queue: info.maintenance.queue_depth,
        growing_bytes: info.growing_bytes,
        history: info.past_versions.is_some(),
        past_versions: info.past_versions,
    }
}

impl EngineService {
    /// Serves `engine`, keeping snapshot files under `snapshots_dir/<collection>/`.
    /// Uploads left unfinished by a previous run are removed. Living collections read
    /// MiniLM files from the lifecycle crate's default location and may add spaces up to
    /// the default `limits.max_dimension` ([`EngineService::configured`] takes both from
    /// a config).
    pub fn new(engine: Arc<Engine>, snapshots_dir: impl Into<PathBuf>) -> EngineService {
        let max_dimension = crate::config::Limits::default().max_dimension;
        EngineService::with_living(engine, snapshots_dir.into(), None, max_dimension)
    }

    /// Serves `engine` as `config` says: its snapshot directory, `[lifecycle] model_dir`
    /// and `limits.max_dimension` (for new spaces).
    pub fn configured(engine: Arc<Engine>, config: &ServerConfig) -> EngineService {
        EngineService::with_living(
            engine,
            config.snapshots_dir(),
            config.lifecycle.model_dir.clone(),
            config.limits.max_dimension,
        )
    }

    fn with_living(
        engine: Arc<Engine>,
        snapshots_dir: PathBuf,
        model_dir: Option<PathBuf>,
        max_dimension: usize,
    ) -> EngineService {
        let _ = std::fs::remove_dir_all(snapshots_dir.join(UPLOADS_DIR));
        EngineService {
            living: LivingRegistry::new(engine.clone(), model_dir, max_dimension),
            engine,
            snapshots_dir,
        }
    }

    /// The engine served.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn collection(&self, name: &str) -> ApiResult<Arc<Collection>> {
        Ok(self.engine.collection(name)?)
    }

    fn snapshot_path(&self, name: &str, snapshot: &str) -> ApiResult<PathBuf> {
        check_snapshot_name(snapshot)?;
        let path = self.snapshots_dir.join(name).join(snapshot);
        if !path.is_file() {
            return Err(ApiError::NotFound(format!(
                "collection `{name}` has no snapshot `{snapshot}`"
            )));
        }
        Ok(path)
    }
}

#[async_trait]
impl MemoryService for EngineService {
    async fn ready(&self) -> bool {
        true
    }

    async fn create_collection(
        &self,
        request: CreateCollectionRequest,
    ) -> ApiResult<CollectionDescription> {
        let metric = Metric::parse(&request.metric).ok_or_else(|| {
            ApiError::InvalidArgument(format!(
                "invalid argument `metric`: expected cosine, dot or l2, got `{}`",
                request.metric
            ))
        })?;
        let mut config = CollectionConfig::new(request.name, request.dimension, metric);
        if let Some(index) = request.index {
            config.index = index;
        }
        config.history = request.history;
        let engine = self.engine.clone();
        blocking(move || {
            let collection = engine.create_collection(config)?;
            Ok(describe(&collection))
        })
        .await
    }

    async fn list_collections(&self) -> ApiResult<Vec<CollectionDescription>> {
        let engine = self.engine.clone();
        blocking(move || {
            Ok(engine
                .list_collections()
                .iter()
                .filter_map(|name| engine.collection(name).ok())
                .map(|c| describe(&c))
                .collect())
        })
        .await
    }

    async fn collection_info(&self, name: &str) -> ApiResult<CollectionDescription> {
        let collection = self.collection(name)?;
        blocking(move || Ok(describe(&collection))).await
    }

    async fn update_collection(
        &self,
        name: &str,
        request: UpdateCollectionRequest,
    ) -> ApiResult<CollectionDescription> {
        let engine = self.engine.clone();
        let name = name.to_string();
        blocking(move || {
            let collection = engine.update_index_config(&name, request.index)?;
            Ok(describe(&collection))
        })
        .await
    }

    async fn delete_collection(&self, name: &str) -> ApiResult<()> {
        let engine = self.engine.clone();
        let living = self.living.clone();
        let name = name.to_string();
        blocking(move || {
            engine.collection(&name)?;
            // A living collection takes its spaces' companion collections and its
            // lifecycle state with it (a new collection of the same name starts plain).
            living.forget(&name)?;
            Ok(engine.drop_collection(&name)?)
        })
        .await
    }

    async fn upsert(&self, name: &str, points: Vec<NewPoint>) -> ApiResult<WriteResponse> {
        let collection = self.collection(name)?;
        blocking(move || {
            let result = collection.upsert(points)?;
            Ok(WriteResponse {
                seq: result.seq,
                count: result.count,
            })
        })
        .await
    }

    async fn get_points(&self, name: &str, request: GetPointsRequest) -> ApiResult<PointsResponse> {
        let collection = self.collection(name)?;
        blocking(move || {
            let points = collection
                .get(&request.ids)?
                .into_iter()
                .flatten()
                .map(|mut p| {
                    if !request.with_vector {
                        p.vector = Vec::new();
                    }
                    p
                })
                .collect();
            Ok(PointsResponse { points })
        })
        .await
    }

    async fn delete_points(
        &self,
        name: &str,
        request: DeletePointsRequest,
    ) -> ApiResult<WriteResponse> {
        let collection = self.collection(name)?;
        blocking(move || {
            let result = match (request.ids, request.filter) {
                (Some(ids), None) => collection.delete(&ids)?,
                (None, Some(filter)) => collection.delete_by_filter(&filter)?,
                _ => {
                    return Err(ApiError::InvalidArgument(
                        "give exactly one of `ids` and `filter`".into(),
                    ))
                }
            };
            Ok(WriteResponse {
                seq: result.seq,
                count: result.count,
            })
        })
        .await
    }

    async fn scroll(&self, name: &str, request: ScrollRequest) -> ApiResult<ScrollResponse> {
        let collection = self.collection(name)?;
        blocking(move || {
            let page = collection.scroll(&paradox_engine::ScrollRequest {
                after: request.after,
                limit: request.limit,
                filter: request.filter,
                with_vector: request.with_vector,
            })?;
            Ok(ScrollResponse {
                points: page.points,
                next: page.next,
            })
        })
        .await
    }

    async fn count(&self, name: &str, filter: Option<Filter>) -> ApiResult<usize> {
        let collection = self.collection(name)?;
        blocking(move || Ok(collection.count(filter.as_ref())?)).await
    }

    async fn search(&self, name: &str, request: SearchRequest) -> ApiResult<SearchResponse> {
        let collection = self.collection(name)?;
        let hits = collection.search_async(request.into_engine()).await?;
        Ok(SearchResponse { hits })
    }

    async fn search_batch(
        &self,
        name: &str,
        requests: Vec<SearchRequest>,
    ) -> ApiResult<SearchBatchResponse> {
        let collection = self.collection(name)?;
        blocking(move || {
            let engine_requests: Vec<_> = requests
                .into_iter()
                .map(SearchRequest::into_engine)
                .collect();
            let results = collection
                .search_batch(&engine_requests)?
                .into_iter()
                .map(|hits| SearchResponse { hits })
                .collect();
            Ok(SearchBatchResponse { results })
        })
        .await
    }

    async fn point_history(&self, name: &str, id: PointId) -> ApiResult<HistoryResponse> {
        let collection = self.collection(name)?;
        blocking(move || {
            let versions = collection.history(&id)?;
            if versions.is_empty() {
                return Err(ApiError::NotFound(format!(
                    "collection `{}` has no point {id}, now or in its history",
                    collection.name()
                )));
            }
            Ok(HistoryResponse { versions })
        })
        .await
    }

    async fn reason(&self, name: &str, request: ReasonRequest) -> ApiResult<ReasonResponse> {
        let collection = self.collection(name)?;
        // Reasoning runs searches (on rayon inside the engine) and vector arithmetic: CPU
        // work, kept off the async workers.
        blocking(move || Ok(paradox_mind::api::reason(&collection, &request)?)).await
    }

    async fn create_snapshot(&self, name: &str) -> ApiResult<SnapshotDescription> {
        self.collection(name)?;
        let engine = self.engine.clone();
        let dir = self.snapshots_dir.join(name);
        let name = name.to_string();
        blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| {
                tracing::error!(error = %e, dir = %dir.display(), "cannot create snapshot directory");
                ApiError::Internal("cannot create the snapshot directory; see the server log".into())
            })?;
            // Millisecond names can collide under concurrent calls: claim a free one
            // atomically (an empty placeholder the snapshot then replaces).
            let path = claim_snapshot_name(&dir, &name, |path| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .map(drop)
            })
            .map_err(|e| io_failure("cannot create the snapshot file", &dir, e))?;
            if let Err(e) = engine.snapshot_collection(&name, &path) {
                let _ = std::fs::remove_file(&path);
                return Err(e.into());
            }
            describe_snapshot(&name, &path)
                .ok_or_else(|| ApiError::Internal("snapshot vanished after writing".into()))
        })
        .await
    }

    async fn list_snapshots(&self, name: &str) -> ApiResult<Vec<SnapshotDescription>> {
        // Snapshots outlive their collection (and uploads arrive before it is restored):
        // list them when either exists.
        let dir = self.snapshots_dir.join(name);
        if self.engine.collection(name).is_err() {
            paradox_engine::validate_name(name)?;
            if !dir.is_dir() {
                self.collection(name)?;
            }
        }
        let name = name.to_string();
        blocking(move || {
            let mut list: Vec<SnapshotDescription> = match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "snap"))
                    .filter_map(|p| describe_snapshot(&name, &p))
                    .collect(),
                Err(_) => Vec::new(),
            };
            list.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
            Ok(list)
        })
        .await
    }

    async fn open_snapshot(&self, name: &str, snapshot: &str) -> ApiResult<SnapshotReader> {
        let path = self.snapshot_path(name, snapshot)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|_| ApiError::NotFound(format!("snapshot `{snapshot}` is gone")))?;
        let bytes = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        Ok(SnapshotReader {
            bytes,
            reader: Box::pin(file),
        })
    }

    async fn upload_snapshot(
        &self,
        name: &str,
        mut upload: SnapshotUpload,
    ) -> ApiResult<SnapshotDescription> {
        use tokio::io::AsyncWriteExt;
        use tokio_stream::StreamExt;
        paradox_engine::validate_name(name)?;
        let uploads = self.snapshots_dir.join(UPLOADS_DIR);
        tokio::fs::create_dir_all(&uploads)
            .await
            .map_err(|e| io_failure("cannot create the upload directory", &uploads, e))?;
        let partial = PartialUpload {
            path: uploads.join(format!("{:016x}.part", rand::random::<u64>())),
        };
        let mut file = tokio::fs::File::create(&partial.path)
            .await
            .map_err(|e| io_failure("cannot create the upload file", &partial.path, e))?;
        while let Some(chunk) = upload.next().await {
            file.write_all(&chunk?)
                .await
                .map_err(|e| io_failure("cannot write the upload file", &partial.path, e))?;
        }
        file.sync_all()
            .await
            .map_err(|e| io_failure("cannot sync the upload file", &partial.path, e))?;
        drop(file);

        let dir = self.snapshots_dir.join(name);
        let name = name.to_string();
        blocking(move || {
            let summary = match paradox_engine::verify_snapshot(&partial.path) {
                Ok(summary) => summary,
                // The file's content is the client's: say what is wrong with it, without
                // the server's path.
                Err(paradox_engine::EngineError::Corrupt { reason, .. }) => {
                    let reason = reason.replace(&partial.path.display().to_string(), "the upload");
                    return Err(ApiError::InvalidArgument(format!(
                        "the upload is not a valid Paradox snapshot: {reason}"
                    )));
                }
                Err(other) => return Err(other.into()),
            };
            if summary.collection != name {
                return Err(ApiError::InvalidArgument(format!(
                    "the upload is a snapshot of collection `{}`, not `{name}`: upload it as \
                     `{}` (restore takes `as_name` to give it another name)",
                    summary.collection, summary.collection
                )));
            }
            std::fs::create_dir_all(&dir)
                .map_err(|e| io_failure("cannot create the snapshot directory", &dir, e))?;
            // A hard link claims the name atomically (a rename would replace a snapshot
            // written in the same millisecond); the partial file is removed on drop.
            let path =
                claim_snapshot_name(&dir, &name, |path| std::fs::hard_link(&partial.path, path))
                    .map_err(|e| io_failure("cannot move the upload into place", &dir, e))?;
            if let Ok(handle) = std::fs::File::open(&dir) {
                let _ = handle.sync_all();
            }
            describe_snapshot(&name, &path)
                .ok_or_else(|| ApiError::Internal("snapshot vanished after upload".into()))
        })
        .await
    }

    async fn restore_snapshot(
        &self,
        name: &str,
        snapshot: &str,
        as_name: Option<String>,
    ) -> ApiResult<CollectionDescription> {
        let path = self.snapshot_path(name, snapshot)?;
        let engine = self.engine.clone();
        blocking(move || {
            let collection = engine.restore_collection(&path, as_name.as_deref())?;
            Ok(describe(&collection))
        })
        .await
    }

    async fn flush(&self) -> ApiResult<()> {
        let engine = self.engine.clone();
        blocking(move || Ok(engine.sync()?)).await
    }

    fn living(&self) -> ApiResult<&dyn LivingService> {
        Ok(&self.living)
    }
}

/// Parses a point id from a URL path segment: all digits → number, else string.
pub fn parse_path_id(text: &str) -> PointId {
    PointId::parse(text)
}

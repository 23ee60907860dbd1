//! A Rust client for a Paradox server (`paradox serve`), over gRPC.
//!
//! Every call has a deadline ([`ClientConfig::timeout`]). Idempotent calls (reads,
//! searches, upserts (an upsert replaces by id), deletes, info) are retried with
//! exponential backoff and jitter when the server answers `UNAVAILABLE` or
//! `RESOURCE_EXHAUSTED` (write queue full), or the connection fails; calls that create
//! or drop something (collections, snapshots, restores) are never retried, so a retry
//! cannot act twice.
//!
//! Living collections (vector spaces per encoder version, raw text encoded on the
//! server, adapter-backed search, migrations, drift) have their own calls, `living_*`
//! (the `paradox.v1.Living` service).
//!
//! ```no_run
//! # async fn demo() -> Result<(), paradox_client::ClientError> {
//! use paradox_client::{Client, ClientConfig, NewPoint, Search};
//! let client = Client::connect(ClientConfig::new("http://127.0.0.1:8334").api_key("s3cret-key")).await?;
//! client.create_collection("docs", 3, "cosine", None).await?;
//! client.upsert("docs", vec![NewPoint::new(1u64, vec![1.0, 0.0, 0.0])]).await?;
//! let hits = client.search("docs", Search::new(vec![1.0, 0.1, 0.0], 5)).await?;
//! # Ok(()) }
//! ```

mod living;
mod types;

pub use living::{Drift, LivingHit, LivingHits, LivingSearch, Migration, TextPoint};
pub use types::{CollectionSpec, Hit, NewPoint, Point, PointId, PointVersion, ScrollPage, Search};

/// Generated protobuf messages and the tonic client (`paradox.v1`).
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod proto {
    tonic::include_proto!("paradox.v1");
}

use proto::living_client::LivingClient;
use proto::paradox_client::ParadoxClient;
use std::future::Future;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

/// What went wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("{code:?}: {message}")]
    Status {
        /// gRPC code (`NotFound`, `InvalidArgument`, `PermissionDenied`...).
        code: Code,
        /// The server's message.
        message: String,
    },
    /// The connection could not be made.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server sent something this client cannot read.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A local file could not be read (snapshot uploads).
    #[error("I/O error: {0}")]
    Io(String),
}

/// Bytes per message of a snapshot upload (well under the server's default message limit).
const UPLOAD_CHUNK: usize = 1 << 20;

impl ClientError {
    /// The gRPC code, for status errors.
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        ClientError::Status {
            code: status.code(),
            message: status.message().to_string(),
        }
    }
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://host:port` or `https://host:port`.
    pub endpoint: String,
    /// API key, sent as `authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Deadline of each attempt.
    pub timeout: Duration,
    /// Connection deadline.
    pub connect_timeout: Duration,
    /// Retries of idempotent calls (0 = none).
    pub max_retries: u32,
    /// First backoff; doubled per retry, capped at 2 s, with jitter.
    pub backoff: Duration,
    /// PEM CA certificate to trust (for `https://` with a private CA or self-signed cert).
    pub ca_pem: Option<Vec<u8>>,
    /// TLS server name to verify (default: the endpoint's host).
    pub tls_domain: Option<String>,
}

impl ClientConfig {
    /// Defaults: 30 s timeout, 5 s connect, 3 retries from 50 ms.
    pub fn new(endpoint: impl Into<String>) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            api_key: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_retries: 3,
            backoff: Duration::from_millis(50),
            ca_pem: None,
            tls_domain: None,
        }
    }

    /// Sets the API key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
}

/// A connection to a Paradox server. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    inner: ParadoxClient<Channel>,
    living: LivingClient<Channel>,
    config: ClientConfig,
}

fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::ResourceExhausted | Code::Unknown | Code::Aborted
    )
}

fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    0.5 + f64::from(nanos % 1000) / 1000.0
}

impl Client {
    /// Connects (fails fast if the server cannot be reached within `connect_timeout`).
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|e| {
                ClientError::Connect(format!("invalid endpoint `{}`: {e}", config.endpoint))
            })?
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true);
        if config.endpoint.starts_with("https://") {
            let mut tls = ClientTlsConfig::new();
            if let Some(ca) = &config.ca_pem {
                tls = tls.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some(domain) = &config.tls_domain {
                tls = tls.domain_name(domain.clone());
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| ClientError::Connect(format!("TLS: {e}")))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| ClientError::Connect(format!("{}: {e}", config.endpoint)))?;
        let inner = ParadoxClient::new(channel.clone()).max_decoding_message_size(256 << 20);
        let living = LivingClient::new(channel).max_decoding_message_size(256 << 20);
        Ok(Client {
            inner,
            living,
            config,
        })
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(key) = &self.config.api_key {
            if let Ok(value) = format!("Bearer {key}").parse() {
                request.metadata_mut().insert("authorization", value);
            }
        }
        request
    }

    /// Runs `call` on the `Paradox` service, retrying when `idempotent` and the failure
    /// is transient.
    async fn call<M, T, F, Fut>(
        &self,
        idempotent: bool,
        message: M,
        call: F,
    ) -> Result<T, ClientError>
    where
        M: Clone,
        F: Fn(ParadoxClient<Channel>, Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call_on(&self.inner, idempotent, message, call).await
    }

    /// Runs `call` on `service` (a generated client), retrying when `idempotent` and the
    /// failure is transient.
    async fn call_on<C, M, T, F, Fut>(
        &self,
        service: &C,
        idempotent: bool,
        message: M,
        call: F,
    ) -> Result<T, ClientError>
    where
        C: Clone,
        M: Clone,
        F: Fn(C, Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut attempt = 0;
        loop {
            match call(service.clone(), self.request(message.clone())).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status)
                    if idempotent && attempt < self.config.max_retries && retryable(&status) =>
                {
                    let base =
                        self.config.backoff.as_secs_f64() * f64::from(1u32 << attempt.min(10));
                    tokio::time::sleep(Duration::from_secs_f64(base.min(2.0) * jitter())).await;
                    attempt += 1;
                }
                Err(status) => return Err(status.into()),
            }
        }
    }

    /// Server version and limits.
    pub async fn server_info(&self) -> Result<proto::ServerInfoResponse, ClientError> {
        self.call(true, proto::ServerInfoRequest {}, |mut c, r| async move {
            c.server_info(r).await
        })
        .await
    }

    /// Creates a collection (`metric`: cosine, dot or l2; `index_json`: e.g.
    /// `{"kind":"hnsw","m":16}`, default auto). Not retried.
    pub async fn create_collection(
        &self,
        name: &str,
        dimension: usize,
        metric: &str,
        index_json: Option<&str>,
    ) -> Result<proto::CollectionInfo, ClientError> {
        let mut spec = CollectionSpec::new(name, dimension).metric(metric);
        spec.index_json = index_json.map(str::to_string);
        self.create_collection_with(&spec).await
    }

    /// Creates a collection from a full [`CollectionSpec`] (for history and the rest of
    /// the options). Not retried.
    pub async fn create_collection_with(
        &self,
        spec: &CollectionSpec,
    ) -> Result<proto::CollectionInfo, ClientError> {
        self.call(false, spec.to_pb(), |mut c, r| async move {
            c.create_collection(r).await
        })
        .await
    }

    /// Every collection the key may see.
    pub async fn list_collections(&self) -> Result<Vec<proto::CollectionInfo>, ClientError> {
        let response = self
            .call(
                true,
                proto::ListCollectionsRequest {},
                |mut c, r| async move { c.list_collections(r).await },
            )
            .await?;
        Ok(response.collections)
    }

    /// One collection's facts.
    pub async fn collection(&self, name: &str) -> Result<proto::CollectionInfo, ClientError> {
        let message = proto::CollectionRequest {
            collection: name.into(),
        };
        self.call(true, message, |mut c, r| async move {
            c.get_collection(r).await
        })
        .await
    }

    /// Replaces a collection's index config. Retried (setting the same config twice is
    /// harmless).
    pub async fn update_index(
        &self,
        name: &str,
        index_json: &str,
    ) -> Result<proto::CollectionInfo, ClientError> {
        let message = proto::UpdateCollectionRequest {
            collection: name.into(),
            index_json: index_json.into(),
        };
        self.call(true, message, |mut c, r| async move {
            c.update_collection(r).await
        })
        .await
    }

    /// Drops a collection and its data. Not retried.
    pub async fn delete_collection(&self, name: &str) -> Result<(), ClientError> {
        let message = proto::CollectionRequest {
            collection: name.into(),
        };
        self.call(false, message, |mut c, r| async move {
            c.delete_collection(r).await
        })
        .await
        .map(drop)
    }

    /// Inserts or replaces points (all or nothing). Returns the points written.
    pub async fn upsert(&self, name: &str, points: Vec<NewPoint>) -> Result<u64, ClientError> {
        let message = proto::UpsertRequest {
            collection: name.into(),
            points: points.iter().map(NewPoint::to_pb).collect(),
        };
        let response = self
            .call(true, message, |mut c, r| async move { c.upsert(r).await })
            .await?;
        Ok(response.count)
    }

    /// The points among `ids` that exist, in the order asked.
    pub async fn get(
        &self,
        name: &str,
        ids: &[PointId],
        with_vector: bool,
    ) -> Result<Vec<Point>, ClientError> {
        let message = proto::GetPointsRequest {
            collection: name.into(),
            ids: ids.iter().map(PointId::to_pb).collect(),
            with_vector,
        };
        let response = self
            .call(
                true,
                message,
                |mut c, r| async move { c.get_points(r).await },
            )
            .await?;
        response.points.into_iter().map(Point::from_pb).collect()
    }

    /// Deletes points by id; returns how many existed.
    pub async fn delete(&self, name: &str, ids: &[PointId]) -> Result<u64, ClientError> {
        let message = proto::DeletePointsRequest {
            collection: name.into(),
            ids: ids.iter().map(PointId::to_pb).collect(),
            filter_json: String::new(),
        };
        let response = self
            .call(
                true,
                message,
                |mut c, r| async move { c.delete_points(r).await },
            )
            .await?;
        Ok(response.count)
    }

    /// Deletes every point matching `filter` (JSON); returns how many.
    pub async fn delete_by_filter(
        &self,
        name: &str,
        filter: &serde_json::Value,
    ) -> Result<u64, ClientError> {
        let message = proto::DeletePointsRequest {
            collection: name.into(),
            ids: Vec::new(),
            filter_json: filter.to_string(),
        };
        let response = self
            .call(
                true,
                message,
                |mut c, r| async move { c.delete_points(r).await },
            )
            .await?;
        Ok(response.count)
    }

    /// One page of points in id order, after `after`.
    pub async fn scroll(
        &self,
        name: &str,
        after: Option<PointId>,
        limit: usize,
        filter: Option<&serde_json::Value>,
    ) -> Result<ScrollPage, ClientError> {
        let message = proto::ScrollRequest {
            collection: name.into(),
            after: after.as_ref().map(PointId::to_pb),
            limit: limit as u64,
            filter_json: filter.map(ToString::to_string).unwrap_or_default(),
            with_vector: false,
        };
        let response = self
            .call(true, message, |mut c, r| async move { c.scroll(r).await })
            .await?;
        Ok(ScrollPage {
            points: response
                .points
                .into_iter()
                .map(Point::from_pb)
                .collect::<Result<_, _>>()?,
            next: response
                .next
                .map(|id| PointId::from_pb(Some(id)))
                .transpose()?,
        })
    }

    /// Counts points (matching `filter`, when given).
    pub async fn count(
        &self,
        name: &str,
        filter: Option<&serde_json::Value>,
    ) -> Result<u64, ClientError> {
        let message = proto::CountRequest {
            collection: name.into(),
            filter_json: filter.map(ToString::to_string).unwrap_or_default(),
        };
        let response = self
            .call(true, message, |mut c, r| async move { c.count(r).await })
            .await?;
        Ok(response.count)
    }

    /// One search; hits best first.
    pub async fn search(&self, name: &str, search: Search) -> Result<Vec<Hit>, ClientError> {
        let message = search.to_pb(name);
        let response = self
            .call(true, message, |mut c, r| async move { c.search(r).await })
            .await?;
        response.hits.into_iter().map(Hit::from_pb).collect()
    }

    /// Many searches; results in request order.
    pub async fn search_batch(
        &self,
        name: &str,
        searches: &[Search],
    ) -> Result<Vec<Vec<Hit>>, ClientError> {
        let message = proto::SearchBatchRequest {
            collection: name.into(),
            searches: searches.iter().map(|s| s.to_pb(name)).collect(),
        };
        let response = self
            .call(
                true,
                message,
                |mut c, r| async move { c.search_batch(r).await },
            )
            .await?;
        response
            .results
            .into_iter()
            .map(|r| r.hits.into_iter().map(Hit::from_pb).collect())
            .collect()
    }

    /// Every version of point `id`, oldest first (collections created with history).
    /// `NotFound` when the point was never written.
    pub async fn history(
        &self,
        name: &str,
        id: impl Into<PointId>,
    ) -> Result<Vec<PointVersion>, ClientError> {
        let message = proto::PointHistoryRequest {
            collection: name.into(),
            id: Some(id.into().to_pb()),
        };
        let response = self
            .call(
                true,
                message,
                |mut c, r| async move { c.point_history(r).await },
            )
            .await?;
        response
            .versions
            .into_iter()
            .map(PointVersion::from_pb)
            .collect()
    }

    /// One reasoning operation, in the REST JSON shape: `request` is
    /// `{"op": "arithmetic" | "analogy" | "blend" | "attention" | "trajectory", ..}` and
    /// the answer is `{"vector"?, "hits": [..], "trajectory"?}` (docs/server.md).
    ///
    /// ```no_run
    /// # async fn demo(client: paradox_client::Client) -> Result<(), paradox_client::ClientError> {
    /// let answer = client
    ///     .reason("words", &serde_json::json!({
    ///         "op": "analogy", "a": {"id": "man"}, "b": {"id": "king"}, "c": {"id": "woman"}, "k": 1
    ///     }))
    ///     .await?;
    /// println!("{}", answer["hits"][0]["id"]);
    /// # Ok(()) }
    /// ```
    pub async fn reason(
        &self,
        name: &str,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let message = proto::ReasonRequest {
            collection: name.into(),
            request_json: request.to_string(),
        };
        let response = self
            .call(true, message, |mut c, r| async move { c.reason(r).await })
            .await?;
        serde_json::from_str(&response.response_json).map_err(|e| {
            ClientError::Protocol(format!("server sent an invalid reason response: {e}"))
        })
    }

    /// Writes a snapshot on the server. Not retried.
    pub async fn create_snapshot(
        &self,
        name: &str,
    ) -> Result<proto::SnapshotDescription, ClientError> {
        let message = proto::CollectionRequest {
            collection: name.into(),
        };
        self.call(false, message, |mut c, r| async move {
            c.create_snapshot(r).await
        })
        .await
    }

    /// Snapshots stored for a collection.
    pub async fn list_snapshots(
        &self,
        name: &str,
    ) -> Result<Vec<proto::SnapshotDescription>, ClientError> {
        let message = proto::CollectionRequest {
            collection: name.into(),
        };
        let response = self
            .call(true, message, |mut c, r| async move {
                c.list_snapshots(r).await
            })
            .await?;
        Ok(response.snapshots)
    }

    /// Downloads a snapshot file into memory.
    pub async fn download_snapshot(
        &self,
        name: &str,
        snapshot: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let message = proto::SnapshotRequest {
            collection: name.into(),
            snapshot: snapshot.into(),
        };
        let mut stream = self
            .call(true, message, |mut c, r| async move {
                c.download_snapshot(r).await
            })
            .await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await? {
            bytes.extend_from_slice(&chunk.data);
        }
        Ok(bytes)
    }

    /// Uploads a snapshot file (as [`Client::download_snapshot`] gave it, possibly from
    /// another server) to be kept among collection `name`'s snapshots; `name` must be the
    /// collection the snapshot was taken of. The server verifies the file before keeping
    /// it; then [`Client::restore_snapshot`] restores it (`as_name` renames). Needs an
    /// admin key. Not retried. The call's deadline ([`ClientConfig::timeout`]) covers the
    /// whole transfer: raise it for large files.
    ///
    /// ```no_run
    /// # async fn demo(a: paradox_client::Client, b: paradox_client::Client) -> Result<(), paradox_client::ClientError> {
    /// let snap = a.create_snapshot("docs").await?;
    /// let bytes = a.download_snapshot("docs", &snap.name).await?;
    /// let uploaded = b.upload_snapshot("docs", bytes).await?;
    /// b.restore_snapshot("docs", &uploaded.name, None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn upload_snapshot(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<proto::SnapshotDescription, ClientError> {
        let collection = name.to_string();
        let mut chunks: Vec<proto::SnapshotUploadChunk> = bytes
            .chunks(UPLOAD_CHUNK)
            .map(|data| proto::SnapshotUploadChunk {
                collection: String::new(),
                data: data.to_vec(),
            })
            .collect();
        match chunks.first_mut() {
            Some(first) => first.collection = collection,
            None => chunks.push(proto::SnapshotUploadChunk {
                collection,
                data: Vec::new(),
            }),
        }
        let request = self.request(tokio_stream::iter(chunks));
        Ok(self
            .inner
            .clone()
            .upload_snapshot(request)
            .await?
            .into_inner())
    }

    /// Like [`Client::upload_snapshot`], reading the file from disk as it is sent (never
    /// whole in memory).
    pub async fn upload_snapshot_file(
        &self,
        name: &str,
        path: impl AsRef<std::path::Path>,
    ) -> Result<proto::SnapshotDescription, ClientError> {
        use tokio::io::AsyncReadExt;
        let path = path.as_ref();
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| ClientError::Io(format!("{}: {e}", path.display())))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<proto::SnapshotUploadChunk>(4);
        let collection = name.to_string();
        let display = path.display().to_string();
        let reader = tokio::spawn(async move {
            let mut collection = Some(collection);
            loop {
                let mut data = vec![0u8; UPLOAD_CHUNK];
                let mut filled = 0;
                while filled < data.len() {
                    let n = file.read(&mut data[filled..]).await?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                data.truncate(filled);
                let last = filled < UPLOAD_CHUNK;
                if filled == 0 && collection.is_none() {
                    return Ok::<(), std::io::Error>(());
                }
                let chunk = proto::SnapshotUploadChunk {
                    collection: collection.take().unwrap_or_default(),
                    data,
                };
                if tx.send(chunk).await.is_err() || last {
                    return Ok(());
                }
            }
        });
        let request = self.request(tokio_stream::wrappers::ReceiverStream::new(rx));
        let answer = self.inner.clone().upload_snapshot(request).await;
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(ClientError::Io(format!("{display}: {e}"))),
            Err(e) => return Err(ClientError::Io(format!("{display}: {e}"))),
        }
        Ok(answer?.into_inner())
    }

    /// Restores a stored snapshot as collection `as_name` (default: its old name). Not
    /// retried.
    pub async fn restore_snapshot(
        &self,
        name: &str,
        snapshot: &str,
        as_name: Option<&str>,
    ) -> Result<proto::CollectionInfo, ClientError> {
        let message = proto::RestoreSnapshotRequest {
            collection: name.into(),
            snapshot: snapshot.into(),
            as_name: as_name.unwrap_or_default().into(),
        };
        self.call(false, message, |mut c, r| async move {
            c.restore_snapshot(r).await
        })
        .await
    }
}

//! A service without living collections (a test double implementing only the plain
//! operations of `MemoryService`) answers every living call `unsupported`, on both
//! transports, and still serves `/metrics`.

mod common;

use common::{assert_error, TestServer};
use paradox_client::{Client, ClientConfig};
use serde_json::json;
use tonic::Code;

/// A service without living collections answers every living call `unsupported`.
#[tokio::test]
async fn services_without_living_collections_say_so() {
    use paradox_server::api::*;
    use paradox_server::service::{EngineService, MemoryService, SnapshotReader};
    use paradox_server::upload::SnapshotUpload;
    use paradox_server::ApiResult;

    /// Delegates the plain operations; living collections are left to the default.
    struct Plain(EngineService);

    #[async_trait::async_trait]
    impl MemoryService for Plain {
        async fn ready(&self) -> bool {
            true
        }
        async fn create_collection(
            &self,
            r: CreateCollectionRequest,
        ) -> ApiResult<CollectionDescription> {
            self.0.create_collection(r).await
        }
        async fn list_collections(&self) -> ApiResult<Vec<CollectionDescription>> {
            self.0.list_collections().await
        }
        async fn collection_info(&self, n: &str) -> ApiResult<CollectionDescription> {
            self.0.collection_info(n).await
        }
        async fn update_collection(
            &self,
            n: &str,
            r: UpdateCollectionRequest,
        ) -> ApiResult<CollectionDescription> {
            self.0.update_collection(n, r).await
        }
        async fn delete_collection(&self, n: &str) -> ApiResult<()> {
            self.0.delete_collection(n).await
        }
        async fn upsert(
            &self,
            n: &str,
            p: Vec<paradox_engine::NewPoint>,
        ) -> ApiResult<WriteResponse> {
            self.0.upsert(n, p).await
        }
        async fn get_points(&self, n: &str, r: GetPointsRequest) -> ApiResult<PointsResponse> {
            self.0.get_points(n, r).await
        }
        async fn delete_points(&self, n: &str, r: DeletePointsRequest) -> ApiResult<WriteResponse> {
            self.0.delete_points(n, r).await
        }
        async fn scroll(&self, n: &str, r: ScrollRequest) -> ApiResult<ScrollResponse> {
            self.0.scroll(n, r).await
        }
        async fn count(&self, n: &str, f: Option<paradox_engine::Filter>) -> ApiResult<usize> {
            self.0.count(n, f).await
        }
        async fn search(&self, n: &str, r: SearchRequest) -> ApiResult<SearchResponse> {
            self.0.search(n, r).await
        }
        async fn search_batch(
            &self,
            n: &str,
            r: Vec<SearchRequest>,
        ) -> ApiResult<SearchBatchResponse> {
            self.0.search_batch(n, r).await
        }
        async fn point_history(
            &self,
            n: &str,
            id: paradox_engine::PointId,
        ) -> ApiResult<HistoryResponse> {
            self.0.point_history(n, id).await
        }
        async fn reason(&self, n: &str, r: ReasonRequest) -> ApiResult<ReasonResponse> {
            self.0.reason(n, r).await
        }
        async fn create_snapshot(&self, n: &str) -> ApiResult<SnapshotDescription> {
            self.0.create_snapshot(n).await
        }
        async fn list_snapshots(&self, n: &str) -> ApiResult<Vec<SnapshotDescription>> {
            self.0.list_snapshots(n).await
        }
        async fn open_snapshot(&self, n: &str, s: &str) -> ApiResult<SnapshotReader> {
            self.0.open_snapshot(n, s).await
        }
        async fn upload_snapshot(
            &self,
            n: &str,
            u: SnapshotUpload,
        ) -> ApiResult<SnapshotDescription> {
            self.0.upload_snapshot(n, u).await
        }
        async fn restore_snapshot(
            &self,
            n: &str,
            s: &str,
            a: Option<String>,
        ) -> ApiResult<CollectionDescription> {
            self.0.restore_snapshot(n, s, a).await
        }
        async fn flush(&self) -> ApiResult<()> {
            self.0.flush().await
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    let engine = std::sync::Arc::new(paradox_engine::Engine::open(&config.data_dir).unwrap());
    let service = std::sync::Arc::new(Plain(EngineService::new(engine, config.snapshots_dir())));
    let server = paradox_server::start_with_service(config, service)
        .await
        .unwrap();
    let mut s = TestServer::wrap(server, dir);
    s.call(
        "POST",
        "/v1/collections",
        Some(json!({"name": "docs", "dimension": 4})),
    )
    .await;
    let (status, body) = s.call("GET", "/v1/collections/docs/living", None).await;
    assert_eq!(status, 501, "{body}");
    assert_error(&body, "unsupported", "living collections");
    let mut config = ClientConfig::new(s.grpc.clone());
    config.max_retries = 0;
    let client = Client::connect(config).await.unwrap();
    let err = client.living_describe("docs").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::Unimplemented));
    // /metrics still answers.
    let (status, _) = s.call("GET", "/metrics", None).await;
    assert_eq!(status, 200);
    s.stop().await;
}

//! Limits (body, batch, k, dimension, timeout, write queue) and a table of malformed
//! bodies: every one a 4xx with a precise message, never a 5xx.

mod common;

use async_trait::async_trait;
use common::{assert_error, TestServer};
use paradox_engine::{Engine, Filter, NewPoint, PointId};
use paradox_server::api::*;
use paradox_server::service::{EngineService, MemoryService, SnapshotReader};
use paradox_server::ApiResult;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// An engine service whose upserts take `delay` longer: makes queueing and timeouts
/// deterministic.
struct SlowUpserts {
    inner: EngineService,
    delay: Duration,
}

#[async_trait]
impl MemoryService for SlowUpserts {
    async fn ready(&self) -> bool {
        true
    }
    async fn create_collection(
        &self,
        r: CreateCollectionRequest,
    ) -> ApiResult<CollectionDescription> {
        self.inner.create_collection(r).await
    }
    async fn list_collections(&self) -> ApiResult<Vec<CollectionDescription>> {
        self.inner.list_collections().await
    }
    async fn collection_info(&self, n: &str) -> ApiResult<CollectionDescription> {
        self.inner.collection_info(n).await
    }
    async fn update_collection(
        &self,
        n: &str,
        r: UpdateCollectionRequest,
    ) -> ApiResult<CollectionDescription> {
        self.inner.update_collection(n, r).await
    }
    async fn delete_collection(&self, n: &str) -> ApiResult<()> {
        self.inner.delete_collection(n).await
    }
    async fn upsert(&self, n: &str, points: Vec<NewPoint>) -> ApiResult<WriteResponse> {
        tokio::time::sleep(self.delay).await;
        self.inner.upsert(n, points).await
    }
    async fn get_points(&self, n: &str, r: GetPointsRequest) -> ApiResult<PointsResponse> {
        self.inner.get_points(n, r).await
    }
    async fn delete_points(&self, n: &str, r: DeletePointsRequest) -> ApiResult<WriteResponse> {
        self.inner.delete_points(n, r).await
    }
    async fn scroll(&self, n: &str, r: ScrollRequest) -> ApiResult<ScrollResponse> {
        self.inner.scroll(n, r).await
    }
    async fn count(&self, n: &str, f: Option<Filter>) -> ApiResult<usize> {
        self.inner.count(n, f).await
    }
    async fn search(&self, n: &str, r: SearchRequest) -> ApiResult<SearchResponse> {
        self.inner.search(n, r).await
    }
    async fn search_batch(&self, n: &str, r: Vec<SearchRequest>) -> ApiResult<SearchBatchResponse> {
        self.inner.search_batch(n, r).await
    }
    async fn point_history(&self, n: &str, id: PointId) -> ApiResult<HistoryResponse> {
        self.inner.point_history(n, id).await
    }
    async fn reason(&self, n: &str, r: ReasonRequest) -> ApiResult<ReasonResponse> {
        self.inner.reason(n, r).await
    }
    async fn create_snapshot(&self, n: &str) -> ApiResult<SnapshotDescription> {
        self.inner.create_snapshot(n).await
    }
    async fn list_snapshots(&self, n: &str) -> ApiResult<Vec<SnapshotDescription>> {
        self.inner.list_snapshots(n).await
    }
    async fn open_snapshot(&self, n: &str, s: &str) -> ApiResult<SnapshotReader> {
        self.inner.open_snapshot(n, s).await
    }
    async fn upload_snapshot(
        &self,
        n: &str,
        u: paradox_server::upload::SnapshotUpload,
    ) -> ApiResult<SnapshotDescription> {
        self.inner.upload_snapshot(n, u).await
    }
    async fn restore_snapshot(
        &self,
        n: &str,
        s: &str,
        a: Option<String>,
    ) -> ApiResult<CollectionDescription> {
        self.inner.restore_snapshot(n, s, a).await
    }
    async fn flush(&self) -> ApiResult<()> {
        self.inner.flush().await
    }
}

async fn slow_server(
    delay: Duration,
    edit: impl FnOnce(&mut paradox_server::ServerConfig),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    edit(&mut config);
    let engine = Arc::new(Engine::open(&config.data_dir).unwrap());
    let service = Arc::new(SlowUpserts {
        inner: EngineService::new(engine, config.snapshots_dir()),
        delay,
    });
    let server = paradox_server::start_with_service(config, service)
        .await
        .unwrap();
    TestServer::wrap(server, dir)
}

fn points(n: u64) -> serde_json::Value {
    json!({"points": (0..n).map(|i| json!({"id": i, "vector": [1.0, i as f32, 0.5]})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn size_and_count_limits_are_4xx_naming_the_limit() {
    let mut s = TestServer::start(|c| {
        c.limits.max_body_bytes = 4096;
        c.limits.max_batch = 10;
        c.limits.max_k = 20;
        c.limits.max_dimension = 64;
    })
    .await;
    s.call(
        "POST",
        "/v1/collections",
        Some(json!({"name": "c", "dimension": 3})),
    )
    .await;
    let (status, body) = s
        .call(
            "POST",
            "/v1/collections",
            Some(json!({"name": "big", "dimension": 65})),
        )
        .await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_argument", "limits.max_dimension");
    let (status, body) = s
        .call("PUT", "/v1/collections/c/points", Some(points(11)))
        .await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_argument", "limits.max_batch");
    let (status, body) = s
        .call("PUT", "/v1/collections/c/points", Some(points(200)))
        .await;
    assert_eq!(status, 413);
    assert_error(&body, "payload_too_large", "max_body_bytes");
    let (status, body) = s
        .call(
            "POST",
            "/v1/collections/c/search",
            Some(json!({"vector": [1, 2, 3], "k": 21})),
        )
        .await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_argument", "limits.max_k");
    assert_eq!(
        s.call("PUT", "/v1/collections/c/points", Some(points(10)))
            .await
            .0,
        200
    );

    let client = paradox_client::Client::connect(paradox_client::ClientConfig::new(s.grpc.clone()))
        .await
        .unwrap();
    let many: Vec<_> = (0..11u64)
        .map(|i| paradox_client::NewPoint::new(i, vec![1.0, 2.0, 3.0]))
        .collect();
    let err = client.upsert("c", many).await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument));
    s.stop().await;
}

#[tokio::test]
async fn full_write_queue_is_429_and_slow_calls_time_out() {
    // The first write holds the only queue slot for 1.5 s: ample room for the calls below
    // even on a loaded machine.
    let mut s = slow_server(Duration::from_millis(1500), |c| c.limits.write_queue = 1).await;
    s.call(
        "POST",
        "/v1/collections",
        Some(json!({"name": "c", "dimension": 3})),
    )
    .await;
    let first = {
        let (http, url) = (
            s.http.clone(),
            format!("{}/v1/collections/c/points", s.base),
        );
        tokio::spawn(async move {
            http.put(url)
                .json(&points(2))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = s
        .call("PUT", "/v1/collections/c/points", Some(points(2)))
        .await;
    assert_eq!(status, 429, "{body}");
    assert_error(&body, "overloaded", "write queue full");
    let mut config = paradox_client::ClientConfig::new(s.grpc.clone());
    config.max_retries = 0;
    let client = paradox_client::Client::connect(config).await.unwrap();
    let err = client
        .upsert(
            "c",
            vec![paradox_client::NewPoint::new(9u64, vec![1.0, 2.0, 3.0])],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::ResourceExhausted));
    // Reads are not queued behind writes.
    assert_eq!(
        s.call("POST", "/v1/collections/c/points/count", Some(json!({})))
            .await
            .0,
        200
    );
    assert_eq!(first.await.unwrap(), 200);
    // With retries the client gets through once the queue drains.
    let retrying =
        paradox_client::Client::connect(paradox_client::ClientConfig::new(s.grpc.clone()))
            .await
            .unwrap();
    retrying
        .upsert(
            "c",
            vec![paradox_client::NewPoint::new(9u64, vec![1.0, 2.0, 3.0])],
        )
        .await
        .unwrap();
    s.stop().await;

    let mut s = slow_server(Duration::from_millis(500), |c| {
        c.limits.request_timeout_ms = 100
    })
    .await;
    s.call(
        "POST",
        "/v1/collections",
        Some(json!({"name": "c", "dimension": 3})),
    )
    .await;
    let (status, body) = s
        .call("PUT", "/v1/collections/c/points", Some(points(1)))
        .await;
    assert_eq!(status, 504, "{body}");
    assert_error(&body, "timeout", "100 ms");
    s.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_precise_4xx() {
    let mut s = TestServer::start(|_| {}).await;
    s.call(
        "POST",
        "/v1/collections",
        Some(json!({"name": "m", "dimension": 3, "metric": "cosine"})),
    )
    .await;
    let put = "/v1/collections/m/points";
    let search = "/v1/collections/m/search";
    let table: &[(&str, &str, &str, u16, &str)] = &[
        ("PUT", put, "not json", 400, "malformed JSON"),
        ("PUT", put, "{\"points\": [", 400, "malformed JSON"),
        ("PUT", put, "{\"points\": 5}", 422, "points"),
        ("PUT", put, "{\"pointz\": []}", 422, "unknown field `pointz`"),
        ("PUT", put, "[1, 2]", 422, "invalid request body"),
        ("PUT", put, "{\"points\": [{\"id\": 1, \"vector\": [1, 2]}]}", 400, "dimension mismatch: collection `m` expects 3, got 2"),
        ("PUT", put, "{\"points\": [{\"id\": -1, \"vector\": [1, 2, 3]}]}", 422, "points[0].id"),
        ("PUT", put, "{\"points\": [{\"id\": 1, \"vector\": [1, 2, \"x\"]}]}", 422, "points[0].vector"),
        ("PUT", put, "{\"points\": [{\"id\": 1, \"vector\": [1, 2, 3]}, {\"id\": 1, \"vector\": [1, 2, 3]}]}", 400, "duplicate id 1"),
        ("PUT", put, "{\"points\": [{\"id\": 1, \"vector\": [1, 2, 3], \"payload\": [1]}]}", 422, "points[0].payload"),
        ("PUT", put, "{\"points\": [{\"id\": 1, \"vector\": [1e39, 2, 3]}]}", 400, "non-finite"),
        ("PUT", put, "{\"points\": [{\"id\": 1, \"vector\": [0, 0, 0]}]}", 400, "all zeros"),
        ("POST", search, "{\"vector\": [1, 2, 3], \"k\": 0}", 400, "`k`"),
        ("POST", search, "{\"k\": 5}", 422, "missing field `vector`"),
        ("POST", search, "{\"vector\": [1, 2, 3], \"filter\": {\"key\": \"a\", \"op\": 1}}", 422, "filter"),
        ("POST", search, "{\"vector\": [1, 2, 3], \"params\": {\"ef\": 0}}", 400, "ef"),
        ("POST", search, "{\"vector\": [1, 2, 3], \"params\": {\"eff\": 10}}", 422, "eff"),
        ("POST", search, "{\"vector\": [1, 2]}", 400, "dimension mismatch"),
        ("POST", "/v1/collections/none/search", "{\"vector\": [1, 2, 3]}", 404, "unknown collection `none`"),
        ("POST", "/v1/collections", "{\"name\": \"bad name!\", \"dimension\": 3}", 400, "invalid collection name"),
        ("POST", "/v1/collections", "{\"name\": \"x\", \"dimension\": 3, \"metric\": \"hamming\"}", 400, "metric"),
        ("POST", "/v1/collections", "{\"name\": \"x\", \"dimension\": 0}", 400, "dimension"),
        ("POST", "/v1/collections", "{\"name\": \"x\", \"dimension\": 3, \"index\": {\"kind\": \"lsh\"}}", 422, "index"),
        ("POST", "/v1/collections/m/points/scroll", "{\"limit\": 0}", 400, "limit"),
        ("POST", "/v1/collections/m/points/get", "{\"ids\": [{\"a\": 1}]}", 422, "ids"),
        ("PATCH", "/v1/collections/m", "{\"index\": {\"kind\": \"hnsw\", \"m\": 1000}}", 400, "m"),
    ];
    for &(method, path, body, status, contains) in table {
        let (got, answer) = s
            .raw(method, path, "application/json", body.as_bytes().to_vec())
            .await;
        assert_eq!(got, status, "{method} {path} {body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(contains),
            "{method} {path} {body}: {message:?} lacks {contains:?}"
        );
    }
    let (status, body) = s
        .raw("PUT", put, "text/plain", b"{\"points\": []}".to_vec())
        .await;
    assert_eq!(status, 415);
    assert_error(&body, "unsupported_media_type", "application/json");
    s.stop().await;
}

//! Every REST operation against an in-process server.

mod common;

use common::{assert_error, vector, TestServer};
use serde_json::json;

#[tokio::test]
async fn every_rest_operation() {
    let mut s = TestServer::start(|_| {}).await;

    // Health, readiness, info, OpenAPI.
    assert_eq!(s.call("GET", "/healthz", None).await.0, 200);
    assert_eq!(s.call("GET", "/readyz", None).await.0, 200);
    let (status, info) = s.call("GET", "/v1/info", None).await;
    assert_eq!(status, 200);
    assert_eq!(info["auth_enabled"], false);
    let (status, doc) = s.call("GET", "/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/v1/collections/{name}/search"]["post"].is_object());
    assert!(doc["components"]["schemas"]["SearchRequest"].is_object());

    // Collections: create, conflict, list, info, update index, delete.
    let (status, created) = s
        .call(
            "POST",
            "/v1/collections",
            Some(json!({"name": "docs", "dimension": 4, "metric": "l2"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["dimension"], 4);
    let (status, body) = s
        .call(
            "POST",
            "/v1/collections",
            Some(json!({"name": "docs", "dimension": 4})),
        )
        .await;
    assert_eq!(status, 409);
    assert_error(&body, "already_exists", "docs");
    s.call(
        "POST",
        "/v1/collections",
        Some(json!({"name": "tmp", "dimension": 2})),
    )
    .await;
    let (_, list) = s.call("GET", "/v1/collections", None).await;
    let names: Vec<&str> = list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docs", "tmp"]);
    let (status, body) = s.call("DELETE", "/v1/collections/tmp", None).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = s.call("GET", "/v1/collections/tmp", None).await;
    assert_eq!(status, 404);
    assert_error(&body, "not_found", "tmp");

    // Points: upsert, get, get one, count, scroll.
    let points: Vec<_> = (0..50u64)
        .map(|i| json!({"id": i, "vector": vector(i, 4), "payload": {"group": i % 5, "name": format!("p{i}")}}))
        .collect();
    let (status, body) = s
        .call(
            "PUT",
            "/v1/collections/docs/points",
            Some(json!({"points": points})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 50);
    s.call(
        "PUT",
        "/v1/collections/docs/points",
        Some(json!({"points": [{"id": "str-id", "vector": [1, 2, 3, 4]}]})),
    )
    .await;
    let (_, body) = s
        .call(
            "POST",
            "/v1/collections/docs/points/get",
            Some(json!({"ids": [3, "str-id", 999]})),
        )
        .await;
    let got = body["points"].as_array().unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["payload"]["name"], "p3");
    assert_eq!(got[1]["id"], "str-id");
    let (status, one) = s.call("GET", "/v1/collections/docs/points/7", None).await;
    assert_eq!(status, 200);
    assert_eq!(one["vector"].as_array().unwrap().len(), 4);
    assert_eq!(
        s.call("GET", "/v1/collections/docs/points/12345", None)
            .await
            .0,
        404
    );
    let (_, body) = s
        .call("POST", "/v1/collections/docs/points/count", Some(json!({})))
        .await;
    assert_eq!(body["count"], 51);
    let (_, body) = s
        .call(
            "POST",
            "/v1/collections/docs/points/count",
            Some(json!({"filter": {"key": "group", "eq": 2}})),
        )
        .await;
    assert_eq!(body["count"], 10);
    let (_, page) = s
        .call(
            "POST",
            "/v1/collections/docs/points/scroll",
            Some(json!({"limit": 20})),
        )
        .await;
    assert_eq!(page["points"].as_array().unwrap().len(), 20);
    assert_eq!(page["next"], 19);
    let (_, page2) = s
        .call(
            "POST",
            "/v1/collections/docs/points/scroll",
            Some(json!({"limit": 20, "after": 19})),
        )
        .await;
    assert_eq!(page2["points"][0]["id"], 20);

    // Search: single, filter, params, payload and vector, batch.
    let (status, found) = s
        .call(
            "POST",
            "/v1/collections/docs/search",
            Some(json!({"vector": vector(9, 4), "k": 3})),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["hits"][0]["id"], 9);
    assert_eq!(found["hits"].as_array().unwrap().len(), 3);
    assert!(found["hits"][0]["payload"].is_object());
    let (_, found) = s
        .call(
            "POST",
            "/v1/collections/docs/search",
            Some(json!({"vector": vector(9, 4), "k": 5, "filter": {"key": "group", "eq": 1},
                        "with_payload": false, "with_vector": true, "params": {"exact": true, "ef": 32}})),
        )
        .await;
    for hit in found["hits"].as_array().unwrap() {
        assert_eq!(hit["id"].as_u64().unwrap() % 5, 1);
        assert!(hit.get("payload").is_none());
        assert_eq!(hit["vector"].as_array().unwrap().len(), 4);
    }
    let (_, batch) = s
        .call(
            "POST",
            "/v1/collections/docs/search/batch",
            Some(json!({"searches": [{"vector": vector(1, 4), "k": 1}, {"vector": vector(2, 4), "k": 2}]})),
        )
        .await;
    assert_eq!(batch["results"][0]["hits"][0]["id"], 1);
    assert_eq!(batch["results"][1]["hits"].as_array().unwrap().len(), 2);

    // Delete by ids and by filter.
    let (_, body) = s
        .call(
            "POST",
            "/v1/collections/docs/points/delete",
            Some(json!({"ids": [0, 1, 777]})),
        )
        .await;
    assert_eq!(body["count"], 2);
    let (_, body) = s
        .call(
            "POST",
            "/v1/collections/docs/points/delete",
            Some(json!({"filter": {"key": "group", "eq": 4}})),
        )
        .await;
    assert_eq!(body["count"], 10);
    let (status, body) = s
        .call(
            "POST",
            "/v1/collections/docs/points/delete",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_argument", "exactly one");
    let (_, body) = s
        .call("POST", "/v1/collections/docs/points/count", Some(json!({})))
        .await;
    assert_eq!(body["count"], 39);

    // Index config update keeps the data.
    let (status, body) = s
        .call(
            "PATCH",
            "/v1/collections/docs",
            Some(json!({"index": {"kind": "flat"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["index"]["kind"], "flat");
    assert_eq!(body["points"], 39);

    // Snapshots: create, list, download, restore.
    let (status, snap) = s.call("POST", "/v1/collections/docs/snapshots", None).await;
    assert_eq!(status, 201, "{snap}");
    let name = snap["name"].as_str().unwrap().to_string();
    let (_, list) = s.call("GET", "/v1/collections/docs/snapshots", None).await;
    assert_eq!(list["snapshots"][0]["name"], name.as_str());
    let bytes = s
        .http
        .get(format!("{}/v1/collections/docs/snapshots/{name}", s.base))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len() as u64, snap["bytes"].as_u64().unwrap());
    assert_eq!(&bytes[..8], b"PDXSNAP\0");
    let (status, restored) = s
        .call(
            "POST",
            &format!("/v1/collections/docs/snapshots/{name}/restore"),
            Some(json!({"as_name": "docs2"})),
        )
        .await;
    assert_eq!(status, 201, "{restored}");
    assert_eq!(restored["points"], 39);
    let (status, body) = s
        .call(
            "POST",
            &format!("/v1/collections/docs/snapshots/{name}/restore"),
            Some(json!({"as_name": "docs2"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = s
        .call("GET", "/v1/collections/docs/snapshots/..%2Fx.snap", None)
        .await;
    assert!(status == 400 || status == 404, "{status}");

    // Metrics mention routes and collections.
    let (status, metrics) = s.call("GET", "/metrics", None).await;
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("paradox_requests_total{route=\"POST /v1/collections/{name}/search\""),
        "{text}"
    );
    assert!(
        text.contains("paradox_collection_points{collection=\"docs2\"} 39"),
        "{text}"
    );
    assert!(text.contains("paradox_request_duration_seconds_bucket"));
    assert!(text.contains("paradox_wal_bytes"));

    // Request ids are echoed.
    let response = s
        .http
        .get(format!("{}/healthz", s.base))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");

    // Unknown route and wrong method.
    let (status, body) = s.call("GET", "/v1/nothing", None).await;
    assert_eq!(status, 404);
    assert_error(&body, "not_found", "/v1/nothing");
    let (status, _) = s.call("DELETE", "/v1/info", None).await;
    assert_eq!(status, 405);

    s.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_flushes_and_data_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    let server = paradox_server::start(config.clone()).await.unwrap();
    let base = format!("http://{}", server.rest_addr);
    let http = reqwest::Client::new();
    http.post(format!("{base}/v1/collections"))
        .json(&json!({"name": "c", "dimension": 2, "metric": "l2"}))
        .send()
        .await
        .unwrap();
    let r = http
        .put(format!("{base}/v1/collections/c/points"))
        .json(&json!({"points": [{"id": 1, "vector": [1.0, 2.0]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shutdown();
    server.wait().await.unwrap();
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "stopped accepting"
    );
    let server = paradox_server::start(config).await.unwrap();
    let base = format!("http://{}", server.rest_addr);
    let body: serde_json::Value = http
        .post(format!("{base}/v1/collections/c/points/count"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["count"], 1);
    server.shutdown();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn a_stalled_client_does_not_hold_the_shutdown_open() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.limits.request_timeout_ms = 300;
    let server = paradox_server::start(config.clone()).await.unwrap();
    let base = format!("http://{}", server.rest_addr);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/v1/collections"))
        .json(&json!({"name": "c", "dimension": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Half a request: the headers never end.
    let mut stalled = tokio::net::TcpStream::connect(server.rest_addr)
        .await
        .unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    server.shutdown();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(20), server.wait()).await;
    assert!(
        matches!(stopped, Ok(Ok(()))),
        "the shutdown ended within the drain bound: {stopped:?}"
    );
    // The stalled connection's task still holds the engine until its client goes (or the
    // runtime stops); then the data directory is released and intact.
    drop(stalled);
    let mut reopened = None;
    for _ in 0..100 {
        match paradox_server::start(config.clone()).await {
            Ok(server) => {
                reopened = Some(server);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let server = reopened.expect("the data directory is released once the client has gone");
    let body: serde_json::Value = http
        .get(format!("http://{}/v1/collections/c", server.rest_addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["name"], "c", "{body}");
    server.shutdown();
    server.wait().await.unwrap();
}

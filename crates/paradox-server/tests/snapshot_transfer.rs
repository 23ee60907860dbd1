//! Moving a collection between servers: download a snapshot from one, upload it to
//! another, restore it there, and find the same data. Broken, foreign and oversized
//! uploads are refused with a 4xx and leave nothing behind.

mod common;

use common::{assert_error, vector, TestServer};
use paradox_client::{Client, ClientConfig, NewPoint, PointId, Search};
use serde_json::{json, Value};
use std::path::Path;
use tonic::Code;

/// A collection with history, payloads, an update and deletes, on server `s`.
async fn fill(s: &TestServer, name: &str) {
    let (status, body) = s
        .call(
            "POST",
            "/v1/collections",
            Some(json!({"name": name, "dimension": 4, "metric": "l2", "history": true})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let points: Vec<Value> = (0..300u64)
        .map(|i| json!({"id": i, "vector": vector(i, 4), "payload": {"group": i % 7, "text": format!("point number {i}")}}))
        .collect();
    let path = format!("/v1/collections/{name}/points");
    let (status, body) = s.call("PUT", &path, Some(json!({"points": points}))).await;
    assert_eq!(status, 200, "{body}");
    s.call(
        "PUT",
        &path,
        Some(json!({"points": [{"id": 5, "vector": [9, 9, 9, 9], "payload": {"moved": true}}]})),
    )
    .await;
    let (status, _) = s
        .call(
            "POST",
            &format!("/v1/collections/{name}/points/delete"),
            Some(json!({"ids": [10, 11, 12]})),
        )
        .await;
    assert_eq!(status, 200);
}

/// Every point with its vector, in id order, and point 5's history.
async fn contents(s: &TestServer, name: &str) -> (Value, Value) {
    let (status, page) = s
        .call(
            "POST",
            &format!("/v1/collections/{name}/points/scroll"),
            Some(json!({"limit": 1000, "with_vector": true})),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let (status, history) = s
        .call(
            "GET",
            &format!("/v1/collections/{name}/points/5/history"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{history}");
    (page["points"].clone(), history["versions"].clone())
}

/// Regular files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

async fn download_rest(s: &TestServer, name: &str, snapshot: &str) -> Vec<u8> {
    let response = s
        .http
        .get(format!(
            "{}/v1/collections/{name}/snapshots/{snapshot}",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn rest_download_upload_restore_gives_the_same_data() {
    let mut a = TestServer::start(|_| {}).await;
    // B's request bodies are small: a snapshot upload is not bound by them.
    let mut b = TestServer::start(|c| c.limits.max_body_bytes = 4096).await;
    fill(&a, "docs").await;
    let (_, snap) = a.call("POST", "/v1/collections/docs/snapshots", None).await;
    let bytes = download_rest(&a, "docs", snap["name"].as_str().unwrap()).await;
    assert!(bytes.len() > 4096, "the snapshot outgrows B's body limit");

    let (status, uploaded) = b
        .raw(
            "POST",
            "/v1/collections/docs/snapshots/upload",
            "application/octet-stream",
            bytes.clone(),
        )
        .await;
    assert_eq!(status, 201, "{uploaded}");
    assert_eq!(uploaded["bytes"], bytes.len());
    assert_eq!(uploaded["collection"], "docs");
    // Listed before the collection exists on B.
    let (status, list) = b.call("GET", "/v1/collections/docs/snapshots", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["snapshots"][0]["name"], uploaded["name"]);
    let name = uploaded["name"].as_str().unwrap();
    let (status, restored) = b
        .call(
            "POST",
            &format!("/v1/collections/docs/snapshots/{name}/restore"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{restored}");
    assert_eq!(restored["points"], 297);
    assert_eq!(restored["history"], true);
    assert_eq!(contents(&a, "docs").await, contents(&b, "docs").await);
    // Downloaded again from B, the file is byte for byte the one uploaded.
    assert_eq!(download_rest(&b, "docs", name).await, bytes);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn grpc_download_upload_restore_gives_the_same_data() {
    let mut a = TestServer::start(|_| {}).await;
    let mut b = TestServer::start(|_| {}).await;
    fill(&a, "docs").await;
    let from = Client::connect(ClientConfig::new(a.grpc.clone()))
        .await
        .unwrap();
    let to = Client::connect(ClientConfig::new(b.grpc.clone()))
        .await
        .unwrap();
    let snap = from.create_snapshot("docs").await.unwrap();
    let bytes = from.download_snapshot("docs", &snap.name).await.unwrap();

    let uploaded = to.upload_snapshot("docs", bytes.clone()).await.unwrap();
    assert_eq!(uploaded.bytes, bytes.len() as u64);
    let restored = to
        .restore_snapshot("docs", &uploaded.name, None)
        .await
        .unwrap();
    assert_eq!(restored.points, 297);
    assert_eq!(contents(&a, "docs").await, contents(&b, "docs").await);
    let query = Search::new(vector(42, 4), 10);
    assert_eq!(
        from.search("docs", query.clone()).await.unwrap(),
        to.search("docs", query).await.unwrap()
    );

    // From a file on disk, streamed, restored under another name.
    let file = b.dir.path().join("docs-download.snap");
    std::fs::write(&file, &bytes).unwrap();
    let again = to.upload_snapshot_file("docs", &file).await.unwrap();
    assert_ne!(again.name, uploaded.name);
    let copy = to
        .restore_snapshot("docs", &again.name, Some("copy"))
        .await
        .unwrap();
    assert_eq!(copy.points, 297);
    let got = to.get("copy", &[PointId::Num(5)], true).await.unwrap();
    assert_eq!(got[0].vector, [9.0, 9.0, 9.0, 9.0]);
    // Writes to the restored copy work.
    to.upsert("copy", vec![NewPoint::new(1000u64, vector(1000, 4))])
        .await
        .unwrap();
    assert_eq!(to.count("copy", None).await.unwrap(), 298);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn broken_foreign_and_oversized_uploads_are_refused_and_leave_nothing() {
    let mut a = TestServer::start(|_| {}).await;
    fill(&a, "docs").await;
    let (_, snap) = a.call("POST", "/v1/collections/docs/snapshots", None).await;
    let good = download_rest(&a, "docs", snap["name"].as_str().unwrap()).await;
    let limit = good.len() as u64 + 10;
    let mut oversized = good.clone();
    oversized.resize(good.len() + 100, 0);
    let mut b = TestServer::start(|c| c.limits.max_snapshot_bytes = limit).await;
    let upload = |path: &'static str, bytes: Vec<u8>| {
        let b = &b;
        async move { b.raw("POST", path, "application/octet-stream", bytes).await }
    };
    let docs = "/v1/collections/docs/snapshots/upload";

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x5a;
    let (status, body) = upload(docs, flipped).await;
    assert_eq!(status, 400, "{body}");
    assert_error(&body, "invalid_argument", "not a valid Paradox snapshot");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains(".part"),
        "no server path leaks: {message}"
    );

    let (status, body) = upload(docs, good[..good.len() / 3].to_vec()).await;
    assert_eq!(status, 400, "{body}");
    assert_error(&body, "invalid_argument", "truncated");

    let (status, body) = upload(docs, b"hello, I am not a snapshot".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    assert_error(&body, "invalid_argument", "not a valid Paradox snapshot");

    let (status, body) = upload(docs, Vec::new()).await;
    assert_eq!(status, 400, "{body}");

    // A valid snapshot, but of another collection than the one named.
    let (status, body) = a
        .raw(
            "POST",
            "/v1/collections/other/snapshots/upload",
            "application/octet-stream",
            good.clone(),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_error(
        &body,
        "invalid_argument",
        "snapshot of collection `docs`, not `other`",
    );
    let (status, _) = a.call("GET", "/v1/collections/other/snapshots", None).await;
    assert_eq!(status, 404);

    let (status, body) = upload(docs, oversized.clone()).await;
    assert_eq!(status, 413, "{body}");
    assert_error(&body, "payload_too_large", "limits.max_snapshot_bytes");

    let (status, body) = upload(
        "/v1/collections/..%2Fescape/snapshots/upload",
        good[..100].to_vec(),
    )
    .await;
    assert!(status == 400 || status == 404, "{status} {body}");

    // Over gRPC: the same refusals.
    let client = Client::connect(ClientConfig::new(b.grpc.clone()))
        .await
        .unwrap();
    let err = client
        .upload_snapshot("docs", b"garbage bytes".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    assert!(
        err.to_string().contains("not a valid Paradox snapshot"),
        "{err}"
    );
    let err = client.upload_snapshot("docs", oversized).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::ResourceExhausted), "{err}");

    // Nothing was kept: no file anywhere under the snapshot directory, none listed.
    let snapshots = b.dir.path().join("data").join("snapshots");
    assert_eq!(files_under(&snapshots), Vec::<String>::new());
    let (status, _) = b.call("GET", "/v1/collections/docs/snapshots", None).await;
    assert_eq!(status, 404);
    let (_, list) = b.call("GET", "/v1/collections", None).await;
    assert_eq!(list["collections"], json!([]));
    a.stop().await;
    b.stop().await;
}

//! Every operation over gRPC through the Rust client.

mod common;

use common::{vector, TestServer};
use paradox_client::{Client, ClientConfig, NewPoint, PointId, Search};
use serde_json::json;
use tonic::Code;

#[tokio::test]
async fn every_grpc_operation_through_the_client() {
    let mut s = TestServer::start(|_| {}).await;
    let client = Client::connect(ClientConfig::new(s.grpc.clone()))
        .await
        .unwrap();

    let info = client.server_info().await.unwrap();
    assert!(!info.auth_enabled);
    let created = client
        .create_collection("docs", 4, "l2", Some(r#"{"kind":"hnsw","m":8}"#))
        .await
        .unwrap();
    assert_eq!(created.dimension, 4);
    let err = client
        .create_collection("docs", 4, "l2", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::AlreadyExists));
    client
        .create_collection("tmp", 2, "cosine", None)
        .await
        .unwrap();
    let names: Vec<String> = client
        .list_collections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["docs", "tmp"]);
    client.delete_collection("tmp").await.unwrap();
    assert_eq!(
        client.collection("tmp").await.unwrap_err().code(),
        Some(Code::NotFound)
    );

    let points: Vec<NewPoint> = (0..40u64)
        .map(|i| NewPoint::new(i, vector(i, 4)).with_payload(json!({"group": i % 4})))
        .collect();
    assert_eq!(client.upsert("docs", points).await.unwrap(), 40);
    let err = client
        .upsert("docs", vec![NewPoint::new(99u64, vec![1.0])])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert!(err.to_string().contains("dimension mismatch"), "{err}");

    let got = client
        .get("docs", &[PointId::Num(5), PointId::Num(500)], true)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload["group"], 1);
    assert_eq!(got[0].vector.len(), 4);
    assert_eq!(client.count("docs", None).await.unwrap(), 40);
    assert_eq!(
        client
            .count("docs", Some(&json!({"key": "group", "eq": 0})))
            .await
            .unwrap(),
        10
    );
    let page = client.scroll("docs", None, 15, None).await.unwrap();
    assert_eq!(page.points.len(), 15);
    assert_eq!(page.next, Some(PointId::Num(14)));

    let hits = client
        .search("docs", Search::new(vector(7, 4), 3))
        .await
        .unwrap();
    assert_eq!(hits[0].id, PointId::Num(7));
    assert!(hits[0].payload.is_some());
    let filtered = Search::new(vector(7, 4), 5).with_filter(json!({"key": "group", "eq": 2}));
    for hit in client.search("docs", filtered).await.unwrap() {
        assert_eq!(hit.payload.unwrap()["group"], 2);
    }
    let mut exact = Search::new(vector(3, 4), 2);
    exact.exact = true;
    exact.with_vector = true;
    exact.ef = Some(16);
    let hits = client.search("docs", exact).await.unwrap();
    assert_eq!(hits[0].vector.len(), 4);
    let batch = client
        .search_batch(
            "docs",
            &[Search::new(vector(1, 4), 1), Search::new(vector(2, 4), 1)],
        )
        .await
        .unwrap();
    assert_eq!(batch[1][0].id, PointId::Num(2));
    let bad = client
        .search("docs", Search::new(vector(1, 4), 0))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some(Code::InvalidArgument));

    assert_eq!(
        client
            .delete("docs", &[PointId::Num(0), PointId::Num(1)])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        client
            .delete_by_filter("docs", &json!({"key": "group", "eq": 3}))
            .await
            .unwrap(),
        10
    );
    assert_eq!(client.count("docs", None).await.unwrap(), 28);

    let updated = client
        .update_index("docs", r#"{"kind":"flat"}"#)
        .await
        .unwrap();
    assert!(updated.index_json.contains("flat"));

    let snap = client.create_snapshot("docs").await.unwrap();
    assert_eq!(
        client.list_snapshots("docs").await.unwrap()[0].name,
        snap.name
    );
    let bytes = client.download_snapshot("docs", &snap.name).await.unwrap();
    assert_eq!(bytes.len() as u64, snap.bytes);
    let restored = client
        .restore_snapshot("docs", &snap.name, Some("copy"))
        .await
        .unwrap();
    assert_eq!(restored.points, 28);
    let missing = client
        .download_snapshot("docs", "nope.snap")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some(Code::NotFound));

    s.stop().await;
}

#[tokio::test]
async fn client_fails_fast_without_server_and_bad_filters_are_named() {
    let unreachable = Client::connect(ClientConfig::new("http://127.0.0.1:1")).await;
    assert!(unreachable.is_err());
    let mut s = TestServer::start(|_| {}).await;
    let client = Client::connect(ClientConfig::new(s.grpc.clone()))
        .await
        .unwrap();
    client.create_collection("c", 2, "dot", None).await.unwrap();
    let err = client
        .count("c", Some(&json!({"key": "a", "bogus": 1})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert!(err.to_string().contains("filter"), "{err}");
    s.stop().await;
}

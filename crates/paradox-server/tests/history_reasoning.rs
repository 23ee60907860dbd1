//! Point histories, as-of searches and reasoning over both transports: REST with JSON,
//! gRPC through the Rust client, with their error cases.

mod common;

use common::{assert_error, key, TestServer};
use paradox_client::{Client, ClientConfig, CollectionSpec, NewPoint, PointId, Search};
use serde_json::{json, Value};
use std::time::Duration;
use tonic::Code;

/// man, king, woman, queen along axes: king − man + woman = queen.
fn words() -> Vec<(&'static str, [f32; 3])> {
    vec![
        ("man", [1.0, 0.0, 0.0]),
        ("king", [1.0, 1.0, 0.0]),
        ("woman", [0.0, 0.0, 1.0]),
        ("queen", [0.0, 1.0, 1.0]),
        ("other", [1.0, -1.0, -1.0]),
    ]
}

/// Waits until the server clock has moved past `millis`, so the next write gets a later
/// timestamp than the one already read (timestamps have millisecond resolution).
async fn after(millis: i64) {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        if now > millis {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn hit_ids(hits: &Value) -> Vec<Value> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].clone())
        .collect()
}

#[tokio::test]
async fn rest_history_as_of_and_reasoning() {
    let mut s = TestServer::start(|_| {}).await;
    let (status, created) = s
        .call(
            "POST",
            "/v1/collections",
            Some(json!({"name": "h", "dimension": 3, "metric": "l2", "history": true})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["history"], true);
    let (_, plain) = s
        .call(
            "POST",
            "/v1/collections",
            Some(json!({"name": "plain", "dimension": 3, "metric": "l2"})),
        )
        .await;
    assert_eq!(plain["history"], false);

    // Version 1 of point 1, and point 2 which is deleted later.
    let put = |points: Value| s.call("PUT", "/v1/collections/h/points", Some(points));
    put(
        json!({"points": [{"id": 1, "vector": [1, 0, 0], "payload": {"v": 1}},
                          {"id": 2, "vector": [0, 5, 0]}]}),
    )
    .await;
    let (_, first) = s.call("GET", "/v1/collections/h/points/1", None).await;
    let t1 = first["updated_at"].as_i64().unwrap();
    after(t1).await;
    let (status, _) =
        put(json!({"points": [{"id": 1, "vector": [0, 0, 1], "payload": {"v": 2}}]})).await;
    assert_eq!(status, 200);
    let (status, _) = s
        .call(
            "POST",
            "/v1/collections/h/points/delete",
            Some(json!({"ids": [2]})),
        )
        .await;
    assert_eq!(status, 200);

    // History: both versions, oldest first, the first closed when the second began.
    let (status, history) = s
        .call("GET", "/v1/collections/h/points/1/history", None)
        .await;
    assert_eq!(status, 200, "{history}");
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{history}");
    assert_eq!(versions[0]["payload"]["v"], 1);
    assert_eq!(versions[0]["vector"], json!([1.0, 0.0, 0.0]));
    assert_eq!(versions[1]["payload"]["v"], 2);
    assert_eq!(versions[0]["valid_to"], versions[1]["updated_at"]);
    assert!(versions[1].get("valid_to").is_none());
    // A deleted point keeps its history, with its end.
    let (status, gone) = s
        .call("GET", "/v1/collections/h/points/2/history", None)
        .await;
    assert_eq!(status, 200, "{gone}");
    assert!(gone["versions"][0]["valid_to"].is_i64(), "{gone}");
    let (status, body) = s
        .call("GET", "/v1/collections/h/points/99/history", None)
        .await;
    assert_eq!(status, 404);
    assert_error(&body, "not_found", "no point 99");
    let (status, body) = s
        .call("GET", "/v1/collections/plain/points/1/history", None)
        .await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_argument", "keeps no history");
    let (status, body) = s
        .call("GET", "/v1/collections/nope/points/1/history", None)
        .await;
    assert_eq!(status, 404);
    assert_error(&body, "not_found", "nope");

    // As-of: at t1 point 1 was [1, 0, 0] and point 2 was live; now only the new point 1.
    let search = |body: Value| s.call("POST", "/v1/collections/h/search", Some(body));
    let (status, then) =
        search(json!({"vector": [1, 0, 0], "k": 5, "as_of": t1, "with_vector": true})).await;
    assert_eq!(status, 200, "{then}");
    assert_eq!(hit_ids(&then["hits"]), [json!(1), json!(2)]);
    assert_eq!(then["hits"][0]["vector"], json!([1.0, 0.0, 0.0]));
    assert_eq!(then["hits"][0]["score"], 0.0);
    let (_, now) = search(json!({"vector": [1, 0, 0], "k": 5, "with_vector": true})).await;
    assert_eq!(hit_ids(&now["hits"]), [json!(1)]);
    assert_eq!(now["hits"][0]["vector"], json!([0.0, 0.0, 1.0]));
    // Before anything was written, nothing was there.
    let (_, before) = search(json!({"vector": [1, 0, 0], "k": 5, "as_of": t1 - 60_000})).await;
    assert_eq!(before["hits"], json!([]));
    // Batches carry as_of too.
    let (status, batch) = s
        .call(
            "POST",
            "/v1/collections/h/search/batch",
            Some(
                json!({"searches": [{"vector": [1, 0, 0], "k": 1, "as_of": t1},
                                     {"vector": [1, 0, 0], "k": 1}]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["results"][0]["hits"][0]["payload"]["v"], 1);
    assert_eq!(batch["results"][1]["hits"][0]["payload"]["v"], 2);
    let (status, body) = s
        .call(
            "POST",
            "/v1/collections/plain/search",
            Some(json!({"vector": [1, 0, 0], "as_of": t1})),
        )
        .await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_argument", "as_of");
    let (status, body) = search(json!({"vector": [1, 0, 0], "as_of": "yesterday"})).await;
    assert_eq!(status, 422);
    assert_error(&body, "unprocessable", "as_of");

    // Reasoning.
    s.call(
        "POST",
        "/v1/collections",
        Some(json!({"name": "words", "dimension": 3})),
    )
    .await;
    let points: Vec<Value> = words()
        .iter()
        .map(|(id, v)| json!({"id": id, "vector": v}))
        .collect();
    s.call(
        "PUT",
        "/v1/collections/words/points",
        Some(json!({"points": points})),
    )
    .await;
    let server = &s;
    let reason = |name: &'static str, body: Value| async move {
        let path = format!("/v1/collections/{name}/reason");
        server.call("POST", &path, Some(body)).await
    };
    let (status, analogy) = reason(
        "words",
        json!({"op": "analogy", "a": {"id": "man"}, "b": {"id": "king"}, "c": {"id": "woman"}, "k": 1}),
    )
    .await;
    assert_eq!(status, 200, "{analogy}");
    assert_eq!(hit_ids(&analogy["hits"]), [json!("queen")]);
    assert_eq!(analogy["vector"].as_array().unwrap().len(), 3);
    let (_, sum) = reason(
        "words",
        json!({"op": "arithmetic", "k": 1, "terms": [{"id": "king"}, {"id": "man", "weight": -1}, {"vector": [0, 0, 1]}]}),
    )
    .await;
    assert_eq!(hit_ids(&sum["hits"]), [json!("queen")]);
    let (_, blend) = reason(
        "words",
        json!({"op": "blend", "mode": "slerp", "t": 0.9, "k": 1, "concepts": [{"id": "man"}, {"id": "queen"}]}),
    )
    .await;
    assert_eq!(hit_ids(&blend["hits"]), [json!("queen")]);
    let (_, attention) = reason(
        "words",
        json!({"op": "attention", "vector": [1, 1, 1], "weights": [0, 0, 1], "k": 2}),
    )
    .await;
    let top = hit_ids(&attention["hits"]);
    assert!(
        top.contains(&json!("queen")) && top.contains(&json!("woman")),
        "{attention}"
    );
    let (status, trajectory) = reason(
        "h",
        json!({"op": "trajectory", "id": 1, "predict": {"method": "linear"}}),
    )
    .await;
    assert_eq!(status, 200, "{trajectory}");
    assert_eq!(
        trajectory["trajectory"]["times"].as_array().unwrap().len(),
        2
    );
    assert!(trajectory["trajectory"]["predicted_at"].is_i64());
    assert_eq!(trajectory["vector"].as_array().unwrap().len(), 3);

    // Reasoning errors: each a 4xx naming the problem.
    let cases = [
        (
            "words",
            json!({"op": "analogy", "a": {"id": "nobody"}, "b": {"id": "king"}, "c": {"id": "woman"}}),
            404,
            "not_found",
            "nobody",
        ),
        (
            "words",
            json!({"op": "arithmetic", "terms": [{"vector": [1, 0]}]}),
            400,
            "invalid_argument",
            "dimension mismatch",
        ),
        (
            "words",
            json!({"op": "arithmetic", "terms": []}),
            400,
            "invalid_argument",
            "terms",
        ),
        (
            "words",
            json!({"op": "blend", "concepts": [{"id": "man"}]}),
            400,
            "invalid_argument",
            "exactly two",
        ),
        (
            "words",
            json!({"op": "attention", "vector": [1, 0, 0], "weights": [1, -1, 0]}),
            400,
            "invalid_argument",
            "weights",
        ),
        (
            "words",
            json!({"op": "arithmetic", "terms": [{"id": "man"}], "k": 5000}),
            400,
            "invalid_argument",
            "limits.max_k",
        ),
        (
            "words",
            json!({"op": "trajectory", "id": "man"}),
            400,
            "invalid_argument",
            "history",
        ),
        (
            "h",
            json!({"op": "trajectory", "id": 42}),
            404,
            "not_found",
            "42",
        ),
        (
            "words",
            json!({"op": "dream"}),
            422,
            "unprocessable",
            "dream",
        ),
        (
            "words",
            json!({"op": "analogy", "a": {"id": "man"}}),
            422,
            "unprocessable",
            "missing field",
        ),
        (
            "missing",
            json!({"op": "arithmetic", "terms": [{"id": "man"}]}),
            404,
            "not_found",
            "missing",
        ),
    ];
    for (collection, body, status, code, needle) in cases {
        let (got, answer) = reason(collection, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_error(&answer, code, needle);
    }
    s.stop().await;
}

#[tokio::test]
async fn grpc_history_as_of_and_reasoning() {
    let mut s = TestServer::start(|_| {}).await;
    let client = Client::connect(ClientConfig::new(s.grpc.clone()))
        .await
        .unwrap();
    let created = client
        .create_collection_with(&CollectionSpec::new("h", 3).metric("l2").history(true))
        .await
        .unwrap();
    assert!(created.history);
    assert_eq!(created.past_versions, Some(0));
    let plain = client
        .create_collection("plain", 3, "l2", None)
        .await
        .unwrap();
    assert!(!plain.history && plain.past_versions.is_none());

    client
        .upsert(
            "h",
            vec![NewPoint::new(1u64, vec![1.0, 0.0, 0.0]).with_payload(json!({"v": 1}))],
        )
        .await
        .unwrap();
    let t1 = client.get("h", &[PointId::Num(1)], false).await.unwrap()[0].updated_at;
    after(t1).await;
    client
        .upsert(
            "h",
            vec![NewPoint::new(1u64, vec![0.0, 0.0, 1.0]).with_payload(json!({"v": 2}))],
        )
        .await
        .unwrap();

    let versions = client.history("h", 1u64).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].point.vector, [1.0, 0.0, 0.0]);
    assert_eq!(versions[0].valid_to, Some(versions[1].point.updated_at));
    assert_eq!(versions[1].valid_to, None);
    assert_eq!(versions[1].point.payload["v"], 2);
    let missing = client.history("h", 7u64).await.unwrap_err();
    assert_eq!(missing.code(), Some(Code::NotFound));
    let no_history = client.history("plain", 1u64).await.unwrap_err();
    assert_eq!(no_history.code(), Some(Code::InvalidArgument));
    assert!(no_history.to_string().contains("history"), "{no_history}");

    let then = client
        .search("h", Search::new(vec![1.0, 0.0, 0.0], 3).as_of(t1))
        .await
        .unwrap();
    assert_eq!(then.len(), 1);
    assert_eq!(then[0].payload.as_ref().unwrap()["v"], 1);
    let now = client
        .search("h", Search::new(vec![1.0, 0.0, 0.0], 3))
        .await
        .unwrap();
    assert_eq!(now[0].payload.as_ref().unwrap()["v"], 2);
    let refused = client
        .search("plain", Search::new(vec![1.0, 0.0, 0.0], 3).as_of(t1))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(Code::InvalidArgument));
    assert!(refused.to_string().contains("as_of"), "{refused}");

    client
        .create_collection("words", 3, "cosine", None)
        .await
        .unwrap();
    client
        .upsert(
            "words",
            words()
                .into_iter()
                .map(|(id, v)| NewPoint::new(id, v.to_vec()))
                .collect(),
        )
        .await
        .unwrap();
    let answer = client
        .reason(
            "words",
            &json!({"op": "analogy", "a": {"id": "man"}, "b": {"id": "king"}, "c": {"id": "woman"}, "k": 1, "method": "3cosmul"}),
        )
        .await
        .unwrap();
    assert_eq!(answer["hits"][0]["id"], "queen");
    let trajectory = client
        .reason("h", &json!({"op": "trajectory", "id": 1}))
        .await
        .unwrap();
    assert_eq!(
        trajectory["trajectory"]["vectors"][0],
        json!([1.0, 0.0, 0.0])
    );

    for (collection, request, code, needle) in [
        (
            "words",
            json!({"op": "arithmetic", "terms": [{"id": "ghost"}]}),
            Code::NotFound,
            "ghost",
        ),
        (
            "words",
            json!({"op": "attention", "vector": [1.0, 0.0], "weights": [1.0, 1.0]}),
            Code::InvalidArgument,
            "dimension",
        ),
        (
            "words",
            json!({"op": "dream"}),
            Code::InvalidArgument,
            "request_json",
        ),
        (
            "plain",
            json!({"op": "trajectory", "id": 1}),
            Code::InvalidArgument,
            "history",
        ),
    ] {
        let err = client.reason(collection, &request).await.unwrap_err();
        assert_eq!(err.code(), Some(code), "{request}: {err}");
        assert!(err.to_string().contains(needle), "{request}: {err}");
    }
    s.stop().await;
}

#[tokio::test]
async fn read_only_keys_may_reason_and_read_history() {
    const ADMIN: &str = "admin-key-0001";
    const READER: &str = "reader-key-0001";
    let mut s = TestServer::start(|c| {
        c.auth.keys = vec![
            key("root", ADMIN, "admin", None),
            key("reader", READER, "read-only", None),
        ];
    })
    .await;
    let (status, _) = s
        .call_as(
            Some(ADMIN),
            "POST",
            "/v1/collections",
            Some(json!({"name": "w", "dimension": 2, "metric": "l2", "history": true})),
        )
        .await;
    assert_eq!(status, 201);
    s.call_as(
        Some(ADMIN),
        "PUT",
        "/v1/collections/w/points",
        Some(json!({"points": [{"id": 1, "vector": [1, 0]}, {"id": 2, "vector": [0, 1]}]})),
    )
    .await;
    let request = json!({"op": "blend", "concepts": [{"id": 1}, {"id": 2}], "k": 2});
    let (status, body) = s
        .call_as(
            Some(READER),
            "POST",
            "/v1/collections/w/reason",
            Some(request.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hits"].as_array().unwrap().len(), 2);
    let (status, _) = s
        .call_as(
            Some(READER),
            "GET",
            "/v1/collections/w/points/1/history",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .call_as(
            None,
            "POST",
            "/v1/collections/w/reason",
            Some(request.clone()),
        )
        .await;
    assert_eq!(status, 401);

    let mut config = ClientConfig::new(s.grpc.clone());
    config.api_key = Some(READER.into());
    let reader = Client::connect(config).await.unwrap();
    let answer = reader.reason("w", &request).await.unwrap();
    assert_eq!(answer["hits"].as_array().unwrap().len(), 2);
    assert_eq!(reader.history("w", 2u64).await.unwrap().len(), 1);
    s.stop().await;
}

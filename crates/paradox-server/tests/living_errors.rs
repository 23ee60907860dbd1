//! A table of bad requests to living collections: every one a 4xx with a precise message
//! (status, code and message checked), never a 5xx, a refused write stores nothing in
//! any space, and a refused space removal removes nothing.

mod common;

use common::{assert_error, living_space as space, sentence, TestServer};
use serde_json::{json, Value};

/// Every bad request is a 4xx with a precise message, and a refused write stores nothing.
#[tokio::test]
async fn bad_living_requests() {
    let mut s = TestServer::start(|c| c.limits.max_text_bytes = 1000).await;
    for (name, dim) in [("docs", 32), ("plain", 4)] {
        s.call(
            "POST",
            "/v1/collections",
            Some(json!({"name": name, "dimension": dim})),
        )
        .await;
    }
    s.call(
        "POST",
        "/v1/collections/docs/living",
        Some(json!({"space": "hash@1", "encoder": "hashing:32", "text_field": "text"})),
    )
    .await;
    let texts: Vec<Value> = (0..10)
        .map(|i| json!({"id": i, "text": sentence(i)}))
        .collect();
    s.call(
        "PUT",
        "/v1/collections/docs/living/texts",
        Some(json!({"points": texts})),
    )
    .await;
    for body in [
        json!({"space": "hash@2", "encoder": "hashing:48"}),
        json!({"space": "raw", "dim": 8}),
    ] {
        let (status, answer) = s
            .call("POST", "/v1/collections/docs/living/spaces", Some(body))
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    let long = "word ".repeat(300);
    let base = "/v1/collections/docs/living";
    let cases: Vec<(&str, String, Value, u16, &str, &str)> = vec![
        // Collections.
        ("POST", "/v1/collections/nope/living".into(), json!({"space": "h@1"}), 404, "not_found", "unknown collection `nope`"),
        ("GET", "/v1/collections/plain/living".into(), Value::Null, 400, "invalid_argument", "collection `plain` is not a living collection: init it first"),
        ("POST", "/v1/collections/plain/living/search".into(), json!({"text": "x y", "k": 1}), 400, "invalid_argument", "is not a living collection"),
        ("GET", "/v1/collections/nope/living/migration".into(), Value::Null, 404, "not_found", "unknown collection `nope`"),
        // Init.
        ("POST", "/v1/collections/plain/living".into(), json!({"space": "h@1", "encoder": "bert"}), 400, "invalid_argument", "unknown encoder `bert`"),
        ("POST", "/v1/collections/plain/living".into(), json!({"space": "h@1", "encoder": "hashing:16"}), 400, "invalid_argument", "makes 16-d vectors, the collection holds 4-d"),
        ("POST", "/v1/collections/plain/living".into(), json!({"space": "h", "encoder": "hashing:4"}), 400, "invalid_argument", "must look like NAME@VERSION"),
        ("POST", "/v1/collections/plain/living".into(), json!({"space": "bad name!"}), 400, "invalid_argument", "invalid space name `bad name!`"),
        ("POST", base.into(), json!({"space": "other@1", "encoder": "hashing:32"}), 409, "already_exists", "already living, with first space `hash@1`"),
        ("POST", base.into(), json!({"space": "hash@1", "encodr": "hashing:32"}), 422, "unprocessable", "unknown field `encodr`"),
        // Spaces.
        ("POST", format!("{base}/spaces"), json!({"space": "hash@1", "dim": 8}), 409, "already_exists", "already has a space `hash@1`"),
        ("POST", format!("{base}/spaces"), json!({"space": "h@3", "encoder": "hashing:x"}), 400, "invalid_argument", "hashing:DIM needs a whole number, got `x`"),
        ("POST", format!("{base}/spaces"), json!({"space": "big", "dim": 100000}), 400, "invalid_argument", "limits.max_dimension"),
        ("POST", format!("{base}/spaces"), json!({"space": "none"}), 400, "invalid_argument", "needs an encoder or a dimension"),
        ("PUT", format!("{base}/default"), json!({"space": "nope@1"}), 404, "not_found", "collection `docs` has no space `nope@1` (spaces: hash@1, hash@2, raw)"),
        ("DELETE", format!("{base}/spaces/nope@1"), Value::Null, 404, "not_found", "collection `docs` has no space `nope@1` (spaces: hash@1, hash@2, raw)"),
        ("DELETE", format!("{base}/spaces/bad%20name"), Value::Null, 404, "not_found", "has no space `bad name`"),
        ("DELETE", format!("{base}/spaces/hash@1"), Value::Null, 400, "invalid_argument", "space `hash@1` is the first space of collection `docs`: it holds the collection's own vectors and cannot be removed"),
        ("DELETE", "/v1/collections/nope/living/spaces/raw".into(), Value::Null, 404, "not_found", "unknown collection `nope`"),
        ("DELETE", "/v1/collections/plain/living/spaces/raw".into(), Value::Null, 400, "invalid_argument", "collection `plain` is not a living collection"),
        // Text writes.
        ("PUT", format!("{base}/texts"), json!({"points": []}), 400, "invalid_argument", "no points to write: `points` is empty"),
        ("PUT", format!("{base}/texts"), json!({"points": [{"id": 50, "text": "  "}]}), 400, "invalid_argument", "`points[0].text`: the text is empty"),
        ("PUT", format!("{base}/texts"), json!({"points": [{"id": 50, "text": "ok words"}, {"id": 51, "text": long}]}), 400, "invalid_argument", "`points[1].text`: 1500 bytes of text, the limit is 1000 (limits.max_text_bytes)"),
        ("PUT", format!("{base}/texts"), json!({"points": [{"id": 50, "text": "a b"}, {"id": 50, "text": "c d"}]}), 400, "invalid_argument", "duplicate id 50"),
        ("PUT", format!("{base}/texts"), json!({"points": [{"id": 50, "text": "fine words"}, {"id": 51, "text": "!!! ???"}]}), 400, "invalid_argument", "all zeros"),
        ("PUT", format!("{base}/texts"), json!({"points": [{"id": 50}]}), 422, "unprocessable", "missing field `text`"),
        // Vector writes.
        ("PUT", format!("{base}/spaces/nope@1/points"), json!({"points": [{"id": 1, "vector": [1.0]}]}), 404, "not_found", "has no space `nope@1`"),
        ("PUT", format!("{base}/spaces/hash@2/points"), json!({"points": [{"id": 50, "vector": [1.0, 2.0]}]}), 400, "invalid_argument", "dimension mismatch: space `hash@2` of collection `docs` expects 48, got 2 (points[0], id 50)"),
        ("PUT", format!("{base}/spaces/raw/points"), json!({"points": []}), 400, "invalid_argument", "`points` is empty"),
        ("POST", format!("{base}/delete"), json!({"ids": []}), 400, "invalid_argument", "no ids to delete: `ids` is empty"),
        // Search.
        ("POST", format!("{base}/search"), json!({"space": "raw", "text": "a man eating", "k": 3}), 400, "invalid_argument", "space `raw` has no encoder: pass vectors, not text"),
        ("POST", format!("{base}/search"), json!({"text": "a b", "vector": [1.0], "k": 3}), 400, "invalid_argument", "give a query vector or text, not both"),
        ("POST", format!("{base}/search"), json!({"k": 3}), 400, "invalid_argument", "a search needs a query vector or text"),
        ("POST", format!("{base}/search"), json!({"space": "nope@1", "text": "a b", "k": 3}), 404, "not_found", "has no space `nope@1`"),
        ("POST", format!("{base}/search"), json!({"text": "a b", "k": 0}), 400, "invalid_argument", "invalid argument `k`: must be between 1 and 1000 (limits.max_k), got 0"),
        ("POST", format!("{base}/search"), json!({"vector": [1.0, 2.0], "k": 3}), 400, "invalid_argument", "dimension mismatch: space `hash@1` expects 32, got 2"),
        ("POST", format!("{base}/search"), json!({"text": "a b", "k": 3, "context": "ghost"}), 404, "not_found", "no context overlay `ghost`"),
        ("POST", format!("{base}/search"), json!({"text": long, "k": 3}), 400, "invalid_argument", "limits.max_text_bytes"),
        // Adapters.
        ("POST", format!("{base}/adapters"), json!({"from": "hash@1", "to": "nope@1"}), 404, "not_found", "has no space `nope@1`"),
        ("POST", format!("{base}/adapters"), json!({"from": "hash@1", "to": "hash@2", "kind": "pca"}), 400, "invalid_argument", "unknown adapter kind `pca`"),
        ("POST", format!("{base}/adapters"), json!({"from": "hash@1", "to": "hash@2", "kind": "low_rank"}), 400, "invalid_argument", "low_rank needs a rank"),
        ("POST", format!("{base}/adapters"), json!({"from": "hash@1", "to": "hash@1"}), 400, "invalid_argument", "an adapter needs two different spaces"),
        ("POST", format!("{base}/adapters"), json!({"from": "hash@1", "to": "hash@2", "pairs": 1000000}), 400, "invalid_argument", "`pairs`: at most 100000"),
        ("POST", format!("{base}/adapters"), json!({"from": "hash@1", "to": "raw", "pairs": 5}), 400, "invalid_argument", "calibration pairs found"),
        // Migrations.
        ("POST", format!("{base}/migration"), json!({"to": "nope@1"}), 404, "not_found", "has no space `nope@1`"),
        ("POST", format!("{base}/migration"), json!({"to": "raw"}), 400, "invalid_argument", "space `raw` has no encoder and there is no adapter from `hash@1`"),
        ("POST", format!("{base}/migration"), json!({"to": "hash@2", "batch_size": 0}), 400, "invalid_argument", "batch_size must be 1 to 10000, got 0"),
        ("POST", format!("{base}/migration"), json!({"to": "hash@2", "rate": -1.0}), 400, "invalid_argument", "rate_limit must be a positive number"),
        // Drift.
        ("POST", format!("{base}/drift"), json!({"window": 5, "source": "later"}), 400, "invalid_argument", "`source`: expected stored or recent, got `later`"),
        ("POST", format!("{base}/drift"), json!({"window": 1}), 400, "invalid_argument", "a drift window holds 2 to 100000 points, got 1"),
        ("POST", format!("{base}/drift"), json!({"window": 50}), 400, "invalid_argument", "holds 10 points; two windows of 50 need 100"),
        ("POST", format!("{base}/drift"), json!({"space": "hash@2", "window": 5, "source": "recent"}), 400, "invalid_argument", "no recent vectors in space `hash@2`"),
        ("POST", format!("{base}/drift"), json!({"window": 5, "alpha": 2.0}), 400, "invalid_argument", "alpha"),
        // A space's collection is not dropped on its own.
        ("DELETE", "/v1/collections/docs--hash-v2".into(), Value::Null, 400, "invalid_argument", "collection `docs--hash-v2` holds space `hash@2` of living collection `docs`: drop `docs` instead"),
        // Overlays.
        ("PUT", format!("{base}/overlays/ctx"), json!({"space": "hash@2", "global": [1.0]}), 400, "invalid_argument", "overlay `ctx`: the global delta has 1 values, space `hash@2` has dim 48"),
        ("PUT", format!("{base}/overlays/ctx"), json!({"space": "nope@1"}), 404, "not_found", "has no space `nope@1`"),
        ("DELETE", format!("{base}/overlays/ghost"), Value::Null, 404, "not_found", "collection `docs` has no context overlay `ghost`"),
    ];
    for (method, path, body, status, code, message) in &cases {
        let body = (!body.is_null()).then(|| body.clone());
        let (got, answer) = s.call(method, path, body).await;
        assert_eq!(got, *status, "{method} {path}: {answer}");
        assert_error(&answer, code, message);
    }
    // The default space cannot be removed either.
    let default = |space: &str| json!({"space": space});
    s.call("PUT", &format!("{base}/default"), Some(default("hash@2")))
        .await;
    let (status, answer) = s
        .call("DELETE", &format!("{base}/spaces/hash@2"), None)
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_error(
        &answer,
        "invalid_argument",
        "space `hash@2` is the default space of collection `docs`: make another space the default first",
    );
    s.call("PUT", &format!("{base}/default"), Some(default("hash@1")))
        .await;
    // None of the refused writes stored anything, in any space, and no refused removal
    // took a space or its collection.
    for companion in ["docs--hash-v2", "docs--raw"] {
        let (status, _) = s
            .call("GET", &format!("/v1/collections/{companion}"), None)
            .await;
        assert_eq!(status, 200, "{companion}");
    }
    let (_, living) = s.call("GET", base, None).await;
    let spaces: Vec<&str> = living["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(spaces, ["hash@1", "hash@2", "raw"]);
    assert_eq!(space(&living, "hash@1")["points"], 10, "{living}");
    assert_eq!(space(&living, "hash@2")["points"], 0, "{living}");
    assert_eq!(space(&living, "raw")["points"], 0, "{living}");
    assert_eq!(living["default_space"], "hash@1");
    assert_eq!(living["adapters"], json!([]));
    assert!(living["migration"].is_null());
    s.stop().await;
}

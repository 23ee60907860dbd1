//! Removing a living collection's space over the network: REST
//! `DELETE /v1/collections/{name}/living/spaces/{space}` and gRPC `Living/RemoveSpace`.
//! What goes with the space (companion collection, adapters, overlays, the last migration,
//! its `/metrics` series), the audit record, and the refusals (first space, default space,
//! a space in a running migration, unknown space or collection) on both transports. The
//! table of bad requests is `living_errors.rs`; the roles, `auth.rs`.

mod common;

use common::{assert_error, living_space as space, sentence, TestServer};
use paradox_client::{Client, ClientConfig, Migration};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tonic::Code;

/// Polls the migration status until it is no longer running.
async fn wait_for_migration(s: &TestServer, collection: &str) -> Value {
    let started = Instant::now();
    loop {
        let path = format!("/v1/collections/{collection}/living/migration");
        let (status, body) = s.call("GET", &path, None).await;
        assert_eq!(status, 200, "{body}");
        if body["migration"]["phase"] != "running" {
            return body["migration"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "migration still running: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metrics(s: &TestServer) -> String {
    let response = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    response.text().await.unwrap()
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn removing_a_space_over_rest() {
    let mut s = TestServer::start(|c| {
        c.audit_log = Some(c.data_dir.parent().unwrap().join("audit.jsonl"));
    })
    .await;
    let base = "/v1/collections/docs/living";
    s.call(
        "POST",
        "/v1/collections",
        Some(json!({"name": "docs", "dimension": 32, "metric": "cosine"})),
    )
    .await;
    s.call(
        "POST",
        base,
        Some(json!({"space": "hash@1", "encoder": "hashing:32", "text_field": "text"})),
    )
    .await;
    let points: Vec<Value> = (0..40)
        .map(|i| json!({"id": i, "text": sentence(i)}))
        .collect();
    s.call(
        "PUT",
        &format!("{base}/texts"),
        Some(json!({"points": points})),
    )
    .await;
    for body in [
        json!({"space": "hash@2", "encoder": "hashing:48"}),
        json!({"space": "raw", "dim": 8}),
    ] {
        let (status, answer) = s.call("POST", &format!("{base}/spaces"), Some(body)).await;
        assert_eq!(status, 201, "{answer}");
    }
    // Adapters, overlays on both encoded spaces, a drift report and a finished migration
    // into hash@2 (which stays out of the default).
    let (status, fitted) = s
        .call(
            "POST",
            &format!("{base}/adapters"),
            Some(json!({"from": "hash@1", "to": "hash@2", "pairs": 20})),
        )
        .await;
    assert_eq!(status, 200, "{fitted}");
    for (overlay, space, dim) in [("focus", "hash@2", 48), ("base", "hash@1", 32)] {
        let (status, body) = s
            .call(
                "PUT",
                &format!("{base}/overlays/{overlay}"),
                Some(json!({"space": space, "global": vec![0.01; dim]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = s
        .call(
            "POST",
            &format!("{base}/migration"),
            Some(json!({"to": "hash@2", "switch_at": 2.0})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(wait_for_migration(&s, "docs").await["phase"], "done");
    let (status, body) = s
        .call(
            "POST",
            &format!("{base}/drift"),
            Some(json!({"space": "hash@2", "window": 10, "permutations": 49})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let before = metrics(&s).await;
    for series in [
        "paradox_living_space_points",
        "paradox_living_coverage",
        "paradox_living_migration_total_points",
        "paradox_living_drift_drifted",
    ] {
        assert!(
            before.contains(&format!(r#"{series}{{collection="docs",space="hash@2"}}"#)),
            "{series} of hash@2 before the removal"
        );
    }

    let (status, living) = s
        .call("DELETE", &format!("{base}/spaces/hash@2"), None)
        .await;
    assert_eq!(status, 200, "{living}");
    assert_eq!(names(&living["spaces"], "name"), ["hash@1", "raw"]);
    assert_eq!(living["adapters"], json!([]));
    assert_eq!(living["overlays"], json!(["base"]));
    assert!(living["migration"].is_null(), "{living}");
    assert_eq!(living["default_space"], "hash@1");
    assert_eq!(space(&living, "hash@1")["points"], 40);
    let (status, _) = s.call("GET", "/v1/collections/docs--hash-v2", None).await;
    assert_eq!(status, 404, "the companion collection is dropped");
    let (_, described) = s.call("GET", base, None).await;
    assert_eq!(described, living);

    // /metrics: every series of the removed space is gone, the others stay.
    let after = metrics(&s).await;
    assert!(
        !after.contains(r#"space="hash@2""#),
        "series of the removed space remain:\n{after}"
    );
    assert!(after.contains(r#"paradox_living_space_points{collection="docs",space="raw"}"#));
    assert!(after.contains(r#"paradox_living_coverage{collection="docs",space="hash@1"}"#));

    // The space is unknown now; removing it again is 404.
    let (status, body) = s
        .call(
            "POST",
            &format!("{base}/search"),
            Some(json!({"space": "hash@2", "text": sentence(3), "k": 1})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = s
        .call("DELETE", &format!("{base}/spaces/hash@2"), None)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_error(
        &body,
        "not_found",
        "collection `docs` has no space `hash@2` (spaces: hash@1, raw)",
    );
    // A space of the name can be added again and starts empty.
    let (status, added) = s
        .call(
            "POST",
            &format!("{base}/spaces"),
            Some(json!({"space": "hash@2", "encoder": "hashing:48"})),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["points"], 0);

    // OpenAPI documents the route.
    let (_, doc) = s.call("GET", "/openapi.json", None).await;
    assert!(doc["paths"]["/v1/collections/{name}/living/spaces/{space}"]["delete"].is_object());

    // Audited like the other make-up changes.
    let path = s.dir.path().join("audit.jsonl");
    s.stop().await;
    let records: Vec<Value> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let removals: Vec<&Value> = records
        .iter()
        .filter(|r| r["operation"] == "living_remove_space")
        .collect();
    assert_eq!(removals.len(), 2, "{removals:?}");
    assert_eq!(removals[0]["outcome"], "ok");
    assert_eq!(removals[0]["collection"], "docs");
    assert_eq!(removals[1]["status"], "not_found");
}

#[tokio::test]
async fn removing_a_space_over_grpc_and_its_refusals() {
    let mut s = TestServer::start(|_| {}).await;
    let base = "/v1/collections/slow/living";
    s.call(
        "POST",
        "/v1/collections",
        Some(json!({"name": "slow", "dimension": 16, "metric": "dot"})),
    )
    .await;
    s.call(
        "POST",
        base,
        Some(json!({"space": "h@1", "encoder": "hashing:16", "text_field": "text"})),
    )
    .await;
    let points: Vec<Value> = (0..60)
        .map(|i| json!({"id": i, "text": sentence(i)}))
        .collect();
    s.call(
        "PUT",
        &format!("{base}/texts"),
        Some(json!({"points": points})),
    )
    .await;
    let mut config = ClientConfig::new(s.grpc.clone());
    config.max_retries = 0;
    let client = Client::connect(config).await.unwrap();
    client
        .living_add_space("slow", "h@2", Some("hashing:24"), None)
        .await
        .unwrap();
    client
        .living_add_space("slow", "spare", None, Some(4))
        .await
        .unwrap();

    // 20 points per second in batches of 2: about 3 s for everything, so it still runs
    // while the removals below are refused.
    client
        .living_start_migration("slow", Migration::to("h@2").rate(20.0).batch_size(2))
        .await
        .unwrap();
    let (status, body) = s.call("DELETE", &format!("{base}/spaces/h@2"), None).await;
    assert_eq!(status, 400, "{body}");
    assert_error(
        &body,
        "invalid_argument",
        "space `h@2` is in the running migration `h@1` -> `h@2` of collection `slow`: pause it first",
    );
    let err = client.living_remove_space("slow", "h@2").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert!(err.to_string().contains("running migration"), "{err}");
    // Another space can go while the migration runs.
    let info = client.living_remove_space("slow", "spare").await.unwrap();
    let spaces: Vec<&str> = info.spaces.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(spaces, ["h@1", "h@2"]);
    assert_eq!(
        client
            .living_migration_status("slow")
            .await
            .unwrap()
            .unwrap()
            .phase,
        "running",
        "the test needs the migration still running"
    );
    client.living_pause_migration("slow").await.unwrap();

    // The first space, the default space, an unknown space or collection.
    let err = client.living_remove_space("slow", "h@1").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert!(
        err.to_string()
            .contains("space `h@1` is the first space of collection `slow`"),
        "{err}"
    );
    client
        .living_set_default_space("slow", "h@2")
        .await
        .unwrap();
    let err = client.living_remove_space("slow", "h@2").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert!(
        err.to_string()
            .contains("make another space the default first"),
        "{err}"
    );
    let err = client.living_remove_space("slow", "h@9").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound));
    assert!(err.to_string().contains("has no space `h@9`"), "{err}");
    let err = client.living_remove_space("nope", "h@2").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound));
    assert!(err.to_string().contains("`nope`"), "{err}");
    // Nothing of that changed the collection.
    let described = client.living_describe("slow").await.unwrap();
    let spaces: Vec<&str> = described.spaces.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(spaces, ["h@1", "h@2"]);
    assert_eq!(described.default_space, "h@2");
    assert_eq!(described.migration.as_ref().unwrap().phase, "paused");
    let (status, _) = s.call("GET", "/v1/collections/slow--h-v2", None).await;
    assert_eq!(status, 200);

    // With the default back on h@1, h@2 goes, with the paused migration into it.
    client
        .living_set_default_space("slow", "h@1")
        .await
        .unwrap();
    let info = client.living_remove_space("slow", "h@2").await.unwrap();
    let spaces: Vec<&str> = info.spaces.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(spaces, ["h@1"]);
    assert!(info.migration.is_none());
    assert!(client
        .living_migration_status("slow")
        .await
        .unwrap()
        .is_none());
    let (status, _) = s.call("GET", "/v1/collections/slow--h-v2", None).await;
    assert_eq!(status, 404);
    assert_eq!(info.spaces[0].points, 60);
    s.stop().await;
}

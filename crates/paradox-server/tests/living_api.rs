//! Living collections over the network, against an in-process server with `hashing:`
//! encoders: init, raw-text writes, text search, a second space of another dimension, an
//! adapter, adapter-backed search before migration, a migration to full coverage with the
//! default switch, pause and resume, drift reports, `/metrics`, overlays, and the same
//! flows over gRPC. Bad requests: `living_errors.rs`.

mod common;

use common::{assert_error, living_space as space, sentence, TestServer};
use paradox_client::{Client, ClientConfig, Drift, LivingSearch, Migration, NewPoint, TextPoint};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tonic::Code;

async fn living_server() -> TestServer {
    TestServer::start(|c| c.limits.max_text_bytes = 1000).await
}

/// Polls the migration status until it is no longer running.
async fn wait_for_migration(s: &TestServer, collection: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = s
            .call(
                "GET",
                &format!("/v1/collections/{collection}/living/migration"),
                None,
            )
            .await;
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

fn metric_value(metrics: &str, series: &str) -> f64 {
    let line = metrics
        .lines()
        .find(|l| l.starts_with(series))
        .unwrap_or_else(|| panic!("no series {series} in /metrics"));
    line[series.len()..].trim().parse().unwrap()
}

#[tokio::test]
async fn living_collection_over_rest() {
    let mut s = living_server().await;
    let (status, body) = s
        .call(
            "POST",
            "/v1/collections",
            Some(json!({"name": "docs", "dimension": 32, "metric": "cosine"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Init: the collection's vectors become space hash@1.
    let init = json!({"space": "hash@1", "encoder": "hashing:32", "text_field": "text"});
    let (status, living) = s
        .call("POST", "/v1/collections/docs/living", Some(init.clone()))
        .await;
    assert_eq!(status, 200, "{living}");
    assert_eq!(living["default_space"], "hash@1");
    assert_eq!(living["spaces"][0]["encoder"]["kind"], "hashing");
    assert_eq!(living["spaces"][0]["encoder"]["dim"], 32);
    // The same init again is harmless.
    let (status, again) = s
        .call("POST", "/v1/collections/docs/living", Some(init))
        .await;
    assert_eq!(status, 200, "{again}");

    // Raw texts, encoded on the server.
    let points: Vec<Value> = (0..60)
        .map(|i| json!({"id": i, "text": sentence(i), "payload": {"group": i % 3}}))
        .collect();
    let (status, body) = s
        .call(
            "PUT",
            "/v1/collections/docs/living/texts",
            Some(json!({"points": points})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 60);
    // The text is kept in the payload's text field.
    let (_, point) = s.call("GET", "/v1/collections/docs/points/7", None).await;
    assert_eq!(point["payload"]["text"], sentence(7));
    assert_eq!(point["encoder_version"], "hash@1");

    // Search by text: the point's own text finds it first, natively.
    for i in [0, 17, 42] {
        let (status, found) = s
            .call(
                "POST",
                "/v1/collections/docs/living/search",
                Some(json!({"text": sentence(i), "k": 3})),
            )
            .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["space"], "hash@1");
        assert_eq!(found["hits"][0]["id"], i, "{found}");
        assert_eq!(found["hits"][0]["source"], "native");
        assert!(found["hits"][0]["score"].as_f64().unwrap() > 0.999);
        assert_eq!(found["hits"][0]["payload"]["group"], i % 3);
    }
    // A filter applies.
    let (_, found) = s
        .call(
            "POST",
            "/v1/collections/docs/living/search",
            Some(json!({"text": sentence(4), "k": 5, "filter": {"key": "group", "eq": 2}})),
        )
        .await;
    let hits = found["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h["payload"]["group"] == 2), "{found}");

    // A second space of another dimension.
    let (status, added) = s
        .call(
            "POST",
            "/v1/collections/docs/living/spaces",
            Some(json!({"space": "hash@2", "encoder": "hashing:48"})),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["dim"], 48);
    assert_eq!(added["points"], 0);
    assert_eq!(added["coverage"], 0.0);
    assert_eq!(added["default"], false);
    assert_eq!(added["collection"], "docs--hash-v2");

    // Adapters: 40 calibration pairs (their texts are encoded into hash@2).
    let (status, fitted) = s
        .call(
            "POST",
            "/v1/collections/docs/living/adapters",
            Some(json!({"from": "hash@1", "to": "hash@2", "kind": "affine", "pairs": 40})),
        )
        .await;
    assert_eq!(status, 200, "{fitted}");
    assert_eq!(fitted["forward"]["from"], "hash@1");
    assert_eq!(fitted["forward"]["to"], "hash@2");
    assert_eq!(fitted["forward"]["kind"], "affine");
    assert_eq!(fitted["backward"]["from"], "hash@2");
    assert_eq!(fitted["forward"]["fit"]["pairs"], 40);
    assert!(fitted["forward"]["fit"]["train_cosine"].as_f64().unwrap() > 0.0);
    let (_, living) = s.call("GET", "/v1/collections/docs/living", None).await;
    assert_eq!(living["adapters"].as_array().unwrap().len(), 2);
    let v2 = space(&living, "hash@2");
    assert_eq!(v2["points"], 40);
    assert!((v2["coverage"].as_f64().unwrap() - 40.0 / 60.0).abs() < 1e-9);
    assert_eq!(space(&living, "hash@1")["coverage"], 1.0);

    // Before migration, hash@2 is searched through the adapter too: the 20 points it
    // lacks are found in hash@1 and say so.
    let (status, scroll) = s
        .call(
            "POST",
            "/v1/collections/docs--hash-v2/points/scroll",
            Some(json!({"limit": 100})),
        )
        .await;
    assert_eq!(status, 200);
    let migrated: Vec<u64> = scroll["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(migrated.len(), 40);
    let (status, found) = s
        .call(
            "POST",
            "/v1/collections/docs/living/search",
            Some(json!({"space": "hash@2", "text": sentence(0), "k": 60})),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["space"], "hash@2");
    let hits = found["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 60, "every point, native or through the adapter");
    for hit in hits {
        let id = hit["id"].as_u64().unwrap();
        let expected = if migrated.contains(&id) {
            "native"
        } else {
            "adapter"
        };
        assert_eq!(hit["source"], expected, "{hit}");
    }

    // Migrate the rest; the default switches at full coverage.
    let (status, started) = s
        .call(
            "POST",
            "/v1/collections/docs/living/migration",
            Some(json!({"to": "hash@2", "batch_size": 7, "switch_at": 1.0})),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["to"], "hash@2");
    assert_eq!(started["pending_at_start"], 20);
    let done = wait_for_migration(&s, "docs").await;
    assert_eq!(done["phase"], "done", "{done}");
    assert_eq!(done["migrated"], 20);
    assert_eq!(done["reencoded"], 20);
    assert_eq!(done["skipped"], 0);
    assert_eq!(done["progress"], 1.0);
    assert_eq!(done["coverage"], 1.0);
    assert_eq!(done["switched"], true);
    let (_, living) = s.call("GET", "/v1/collections/docs/living", None).await;
    assert_eq!(living["default_space"], "hash@2");
    assert_eq!(space(&living, "hash@2")["coverage"], 1.0);
    assert_eq!(space(&living, "hash@2")["default"], true);
    assert_eq!(space(&living, "hash@1")["default"], false);
    // Pausing a finished migration changes nothing.
    let (status, paused) = s
        .call("POST", "/v1/collections/docs/living/migration/pause", None)
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["migration"]["phase"], "done");

    // Now the default space is hash@2 and searches of it are native (they also fill its
    // window of recent vectors).
    for i in 0..12 {
        let (_, found) = s
            .call(
                "POST",
                "/v1/collections/docs/living/search",
                Some(json!({"text": sentence(i), "k": 10, "with_payload": false})),
            )
            .await;
        assert_eq!(found["space"], "hash@2");
        assert_eq!(found["hits"][0]["id"], i, "{found}");
        assert!(found["hits"][0].get("payload").is_none());
        assert!(found["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["source"] == "native"));
    }

    // Drift reports: scores, thresholds, flags.
    let (status, drift) = s
        .call(
            "POST",
            "/v1/collections/docs/living/drift",
            Some(json!({"space": "hash@1", "window": 20, "permutations": 99})),
        )
        .await;
    assert_eq!(status, 200, "{drift}");
    assert_eq!(drift["space"], "hash@1");
    assert_eq!(drift["source"], "stored");
    assert_eq!(drift["reference"], 20);
    assert_eq!(drift["recent"], 20);
    let p = drift["mmd_p_value"].as_f64().unwrap();
    assert!(p > 0.0 && p <= 1.0, "{drift}");
    for test in ["mean_shift", "mmd", "auc"] {
        let score = drift[test].as_f64().unwrap();
        let threshold = drift[format!("{test}_threshold")].as_f64().unwrap();
        assert_eq!(
            drift[format!("{test}_flagged")],
            score > threshold,
            "{test}: {drift}"
        );
    }
    // (p is a multiple of 1/100 carried as f32: compare with slack.)
    assert_eq!(drift["drifted"], p <= 0.050_001, "{drift}");
    let (status, recent) = s
        .call(
            "POST",
            "/v1/collections/docs/living/drift",
            Some(json!({"window": 10, "source": "recent"})),
        )
        .await;
    assert_eq!(status, 200, "{recent}");
    assert_eq!(recent["space"], "hash@2");
    assert_eq!(recent["source"], "recent");

    // Vectors of one space, then deletes from every space.
    let vector: Vec<f32> = (0..48).map(|d| ((d * 5 % 11) as f32) + 1.0).collect();
    let (status, body) = s
        .call(
            "PUT",
            "/v1/collections/docs/living/spaces/hash@2/points",
            Some(json!({"points": [{"id": 1000, "vector": vector, "payload": {"kind": "raw"}}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 1);
    let (_, found) = s
        .call(
            "POST",
            "/v1/collections/docs/living/search",
            Some(json!({"vector": vector, "k": 1})),
        )
        .await;
    assert_eq!(found["hits"][0]["id"], 1000, "{found}");
    let (status, body) = s
        .call(
            "POST",
            "/v1/collections/docs/living/delete",
            Some(json!({"ids": [0, 1, 1000]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 2, "points 0 and 1 were in the first space");
    let (_, living) = s.call("GET", "/v1/collections/docs/living", None).await;
    assert_eq!(space(&living, "hash@1")["points"], 58);
    assert_eq!(space(&living, "hash@2")["points"], 58);

    // Overlays: a context searches can name.
    let delta: Vec<f32> = vec![0.01; 48];
    let (status, body) = s
        .call(
            "PUT",
            "/v1/collections/docs/living/overlays/focus",
            Some(json!({"space": "hash@2", "global": delta, "weight": 0.5})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["overlays"], json!(["focus"]));
    let (status, found) = s
        .call(
            "POST",
            "/v1/collections/docs/living/search",
            Some(json!({"text": sentence(9), "k": 2, "context": "focus"})),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["hits"][0]["id"], 9);
    let (status, body) = s
        .call("DELETE", "/v1/collections/docs/living/overlays/focus", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["overlays"], json!([]));

    // /metrics: coverage, migration progress, the latest drift report.
    let response = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    let metrics = response.text().await.unwrap();
    let labels = r#"{collection="docs",space="hash@2"}"#;
    assert_eq!(
        metric_value(&metrics, &format!("paradox_living_coverage{labels}")),
        1.0
    );
    assert_eq!(
        metric_value(&metrics, &format!("paradox_living_space_points{labels}")),
        58.0
    );
    assert_eq!(
        metric_value(&metrics, &format!("paradox_living_default_space{labels}")),
        1.0
    );
    for (series, value) in [
        ("paradox_living_migration_migrated_points", 20.0),
        ("paradox_living_migration_total_points", 20.0),
        ("paradox_living_migration_skipped_points", 0.0),
        ("paradox_living_migration_running", 0.0),
    ] {
        assert_eq!(metric_value(&metrics, &format!("{series}{labels}")), value);
    }
    let mmd = metric_value(
        &metrics,
        r#"paradox_living_drift_score{collection="docs",space="hash@1",test="mmd"}"#,
    );
    assert!((mmd - drift["mmd"].as_f64().unwrap()).abs() < 1e-6);
    let flagged = metric_value(
        &metrics,
        r#"paradox_living_drift_flagged{collection="docs",space="hash@1",test="auc"}"#,
    );
    assert_eq!(flagged == 1.0, drift["auc_flagged"] == true);
    let drifted = metric_value(
        &metrics,
        r#"paradox_living_drift_drifted{collection="docs",space="hash@1"}"#,
    );
    assert_eq!(drifted == 1.0, drift["drifted"] == true);
    assert!(metrics.contains(r#"paradox_living_drift_p_value{collection="docs",space="hash@2"}"#));
    assert!(metrics.contains("# HELP paradox_living_drift_score Latest drift report"));
    assert!(metrics.contains("Updated whenever a drift report of the space is computed"));

    // The plain routes still serve the first space as before.
    let (status, plain) = s
        .call(
            "POST",
            "/v1/collections/docs/search",
            Some(json!({"vector": vec![0.5f32; 32], "k": 2})),
        )
        .await;
    assert_eq!(status, 200, "{plain}");
    assert_eq!(plain["hits"].as_array().unwrap().len(), 2);
    assert!(plain["hits"][0].get("source").is_none());

    // OpenAPI documents the routes and their schemas.
    let (_, doc) = s.call("GET", "/openapi.json", None).await;
    for (path, method) in [
        ("/v1/collections/{name}/living", "post"),
        ("/v1/collections/{name}/living", "get"),
        ("/v1/collections/{name}/living/search", "post"),
        ("/v1/collections/{name}/living/texts", "put"),
        ("/v1/collections/{name}/living/spaces/{space}/points", "put"),
        ("/v1/collections/{name}/living/adapters", "post"),
        ("/v1/collections/{name}/living/migration", "post"),
        ("/v1/collections/{name}/living/migration", "get"),
        ("/v1/collections/{name}/living/drift", "post"),
        ("/v1/collections/{name}/living/overlays/{overlay}", "delete"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    for schema in [
        "LivingSearchRequest",
        "LivingSearchResponse",
        "LivingDescription",
        "DriftResponse",
        "MigrationDescription",
        "FitAdaptersResponse",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }

    // Dropping the collection drops its spaces and lifecycle state: a new collection of
    // the name starts plain.
    let (status, _) = s.call("DELETE", "/v1/collections/docs", None).await;
    assert_eq!(status, 204);
    let (status, _) = s.call("GET", "/v1/collections/docs--hash-v2", None).await;
    assert_eq!(status, 404);
    s.call(
        "POST",
        "/v1/collections",
        Some(json!({"name": "docs", "dimension": 32})),
    )
    .await;
    let (status, body) = s.call("GET", "/v1/collections/docs/living", None).await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_argument", "is not a living collection");
    s.stop().await;
}

#[tokio::test]
async fn migrations_pause_and_resume() {
    let mut s = living_server().await;
    s.call(
        "POST",
        "/v1/collections",
        Some(json!({"name": "slow", "dimension": 16, "metric": "dot"})),
    )
    .await;
    s.call(
        "POST",
        "/v1/collections/slow/living",
        Some(json!({"space": "h@1", "encoder": "hashing:16", "text_field": "text"})),
    )
    .await;
    let points: Vec<Value> = (0..60)
        .map(|i| json!({"id": i, "text": sentence(i)}))
        .collect();
    s.call(
        "PUT",
        "/v1/collections/slow/living/texts",
        Some(json!({"points": points})),
    )
    .await;
    s.call(
        "POST",
        "/v1/collections/slow/living/spaces",
        Some(json!({"space": "h@2", "encoder": "hashing:24"})),
    )
    .await;
    // 20 points per second in batches of 2: about 3 s for everything.
    let (status, started) = s
        .call(
            "POST",
            "/v1/collections/slow/living/migration",
            Some(json!({"to": "h@2", "rate": 20.0, "batch_size": 2})),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["phase"], "running");
    // A second start while it runs is refused.
    let (status, body) = s
        .call(
            "POST",
            "/v1/collections/slow/living/migration",
            Some(json!({"to": "h@2"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_argument", "already running");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let response = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    let metrics = response.text().await.unwrap();
    assert_eq!(
        metric_value(
            &metrics,
            r#"paradox_living_migration_running{collection="slow",space="h@2"}"#
        ),
        1.0
    );
    let (status, paused) = s
        .call("POST", "/v1/collections/slow/living/migration/pause", None)
        .await;
    assert_eq!(status, 200, "{paused}");
    let paused = &paused["migration"];
    assert_eq!(paused["phase"], "paused", "{paused}");
    let part = paused["migrated"].as_u64().unwrap();
    assert!(part > 0 && part < 60, "{paused}");
    // Resuming plans only what is left.
    let (status, resumed) = s
        .call(
            "POST",
            "/v1/collections/slow/living/migration",
            Some(json!({"to": "h@2", "batch_size": 16})),
        )
        .await;
    assert_eq!(status, 202, "{resumed}");
    assert_eq!(resumed["pending_at_start"].as_u64().unwrap(), 60 - part);
    let done = wait_for_migration(&s, "slow").await;
    assert_eq!(done["phase"], "done", "{done}");
    assert_eq!(done["coverage"], 1.0);
    // The default switched at 0.95.
    let (_, living) = s.call("GET", "/v1/collections/slow/living", None).await;
    assert_eq!(living["default_space"], "h@2");
    s.stop().await;
}

#[tokio::test]
async fn living_collection_over_grpc() {
    let mut s = living_server().await;
    let mut config = ClientConfig::new(s.grpc.clone());
    config.max_retries = 0;
    let client = Client::connect(config).await.unwrap();
    client
        .create_collection("notes", 24, "cosine", None)
        .await
        .unwrap();
    let living = client
        .living_init("notes", "h@1", Some("hashing:24"), Some("body"))
        .await
        .unwrap();
    assert_eq!(living.default_space, "h@1");
    assert_eq!(living.spaces[0].encoder.as_ref().unwrap().dim, 24);
    let points: Vec<TextPoint> = (0..40u64)
        .map(|i| TextPoint::new(i, sentence(i as usize)).with_payload(json!({"n": i})))
        .collect();
    assert_eq!(
        client.living_upsert_texts("notes", points).await.unwrap(),
        40
    );
    let found = client
        .living_search("notes", LivingSearch::text(sentence(11), 3))
        .await
        .unwrap();
    assert_eq!(found.space, "h@1");
    assert_eq!(found.hits[0].id, 11u64.into());
    assert_eq!(found.hits[0].source, "native");
    assert_eq!(
        found.hits[0].payload.as_ref().unwrap()["body"],
        sentence(11)
    );

    let space = client
        .living_add_space("notes", "h@2", Some("hashing:40"), None)
        .await
        .unwrap();
    assert_eq!((space.dim, space.points, space.is_default), (40, 0, false));
    let fitted = client
        .living_fit_adapters("notes", "h@1", "h@2", "procrustes", 25)
        .await
        .unwrap();
    let forward = fitted.forward.unwrap();
    assert_eq!(forward.kind, "procrustes");
    assert_eq!(forward.fit.unwrap().pairs, 25);
    let found = client
        .living_search("notes", LivingSearch::text(sentence(3), 40).in_space("h@2"))
        .await
        .unwrap();
    assert_eq!(found.hits.len(), 40);
    let adapted = found.hits.iter().filter(|h| h.source == "adapter").count();
    assert_eq!(
        adapted, 15,
        "the 15 points h@2 lacks come through the adapter"
    );

    let started = client
        .living_start_migration("notes", Migration::to("h@2").batch_size(4).switch_at(1.0))
        .await
        .unwrap();
    assert_eq!(started.pending_at_start, 15);
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let status = client
            .living_migration_status("notes")
            .await
            .unwrap()
            .expect("a migration ran");
        if status.phase != "running" {
            break status;
        }
        assert!(Instant::now() < deadline, "migration still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((done.phase.as_str(), done.migrated), ("done", 15));
    assert!(done.switched);
    let described = client.living_describe("notes").await.unwrap();
    assert_eq!(described.default_space, "h@2");
    assert!(described.spaces.iter().all(|s| s.coverage == 1.0));
    let report = client
        .living_drift("notes", Drift::stored(15).in_space("h@1").permutations(49))
        .await
        .unwrap();
    assert_eq!((report.reference, report.recent), (15, 15));
    assert_eq!(report.auc_flagged, report.auc > report.auc_threshold);
    let set = client
        .living_set_default_space("notes", "h@1")
        .await
        .unwrap();
    assert_eq!(set.default_space, "h@1");
    let vector = vec![0.25f32; 40];
    let written = client
        .living_upsert_vectors("notes", "h@2", vec![NewPoint::new(500u64, vector.clone())])
        .await
        .unwrap();
    assert_eq!(written, 1);
    let found = client
        .living_search("notes", LivingSearch::vector(vector, 1).in_space("h@2"))
        .await
        .unwrap();
    assert_eq!(found.hits[0].id, 500u64.into());
    let overlays = client
        .living_set_overlay("notes", "calm", "h@1", vec![0.1; 24], 1.0)
        .await
        .unwrap();
    assert_eq!(overlays.overlays, ["calm"]);
    let found = client
        .living_search(
            "notes",
            LivingSearch::text(sentence(2), 1).with_context("calm"),
        )
        .await
        .unwrap();
    assert_eq!(found.hits.len(), 1);
    client.living_remove_overlay("notes", "calm").await.unwrap();
    assert_eq!(
        client.living_delete("notes", &[0u64.into()]).await.unwrap(),
        1
    );
    let paused = client.living_pause_migration("notes").await.unwrap();
    assert_eq!(paused.unwrap().phase, "done");

    // Errors keep their codes and messages over gRPC.
    let err = client
        .living_upsert_vectors(
            "notes",
            "h@2",
            vec![NewPoint::new(9u64, vec![f32::NAN; 40])],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert!(err.to_string().contains("non-finite value"), "{err}");
    let err = client
        .living_search("notes", LivingSearch::text("x y", 1).in_space("h@9"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound));
    assert!(err.to_string().contains("has no space `h@9`"), "{err}");
    client
        .create_collection("bare", 4, "cosine", None)
        .await
        .unwrap();
    let err = client.living_describe("bare").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert!(
        err.to_string().contains("is not a living collection"),
        "{err}"
    );
    let err = client
        .living_fit_adapters("notes", "h@1", "h@2", "mlp", 10)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert!(
        err.to_string().contains("mlp needs a hidden width"),
        "{err}"
    );
    let err = client
        .living_upsert_texts("notes", Vec::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`points` is empty"), "{err}");
    let err = client
        .living_start_migration("notes", Migration::to("h@7"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::NotFound));
    let err = client
        .living_init("notes", "other@1", None, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::AlreadyExists));
    s.stop().await;
}

//! The auth matrix: every role against every route (living collections' included),
//! allowed and denied; scoped keys; the audit log; gRPC metadata auth.

mod common;

use common::{key, vector, TestServer};
use paradox_client::{Client, ClientConfig, LivingSearch, Migration, NewPoint, TextPoint};
use serde_json::{json, Value};
use tonic::Code;

const ADMIN: &str = "admin-key-0001";
const WRITER: &str = "writer-key-0001";
const READER: &str = "reader-key-0001";
const SCOPED: &str = "scoped-key-0001";

#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Need {
    Read,
    Write,
    Admin,
}

/// Makes collection `a` living (space `h@1`, 3-d hashing, text in `text`), as the living
/// routes of [`routes`] expect.
async fn make_a_living(s: &TestServer) {
    let (status, body) = s
        .call_as(
            Some(ADMIN),
            "POST",
            "/v1/collections/a/living",
            Some(living_init()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn living_init() -> Value {
    json!({"space": "h@1", "encoder": "hashing:3", "text_field": "text"})
}

fn routes(snapshot: &str, tag: &str) -> Vec<(Need, &'static str, String, Option<Value>)> {
    let search = json!({"vector": vector(1, 3), "k": 1});
    let living = |tail: &str| format!("/v1/collections/a/living{tail}");
    vec![
        // Living collections: reads.
        (Need::Read, "GET", living(""), None),
        (
            Need::Read,
            "POST",
            living("/search"),
            Some(json!({"text": "hello there world", "k": 1})),
        ),
        (Need::Read, "GET", living("/migration"), None),
        (
            Need::Read,
            "POST",
            living("/drift"),
            Some(json!({"window": 2})),
        ),
        // Living collections: point writes.
        (
            Need::Write,
            "PUT",
            living("/texts"),
            Some(json!({"points": [{"id": 3, "text": "some words here"}]})),
        ),
        (
            Need::Write,
            "PUT",
            living("/spaces/h@1/points"),
            Some(json!({"points": [{"id": 4, "vector": vector(4, 3)}]})),
        ),
        (
            Need::Write,
            "POST",
            living("/delete"),
            Some(json!({"ids": [4]})),
        ),
        // Living collections: the collection's make-up.
        (Need::Admin, "POST", living(""), Some(living_init())),
        (
            Need::Admin,
            "POST",
            living("/spaces"),
            Some(json!({"space": format!("s-{tag}"), "dim": 3})),
        ),
        (
            Need::Admin,
            "DELETE",
            living(&format!("/spaces/s-{tag}")),
            None,
        ),
        (
            Need::Admin,
            "PUT",
            living("/default"),
            Some(json!({"space": "h@1"})),
        ),
        (
            Need::Admin,
            "POST",
            living("/adapters"),
            Some(json!({"from": "h@1", "to": "h@1"})),
        ),
        (
            Need::Admin,
            "POST",
            living("/migration"),
            Some(json!({"to": "h@1"})),
        ),
        (Need::Admin, "POST", living("/migration/pause"), None),
        (
            Need::Admin,
            "PUT",
            living("/overlays/ctx"),
            Some(json!({"space": "h@1", "global": [0.1, 0.1, 0.1]})),
        ),
        (Need::Admin, "DELETE", living("/overlays/ctx"), None),
        (Need::Read, "GET", "/v1/info".into(), None),
        (Need::Read, "GET", "/v1/collections".into(), None),
        (Need::Read, "GET", "/v1/collections/a".into(), None),
        (
            Need::Read,
            "POST",
            "/v1/collections/a/points/get".into(),
            Some(json!({"ids": [1]})),
        ),
        (Need::Read, "GET", "/v1/collections/a/points/1".into(), None),
        (
            Need::Read,
            "POST",
            "/v1/collections/a/points/scroll".into(),
            Some(json!({})),
        ),
        (
            Need::Read,
            "POST",
            "/v1/collections/a/points/count".into(),
            Some(json!({})),
        ),
        (
            Need::Read,
            "POST",
            "/v1/collections/a/search".into(),
            Some(search.clone()),
        ),
        (
            Need::Read,
            "POST",
            "/v1/collections/a/search/batch".into(),
            Some(json!({"searches": [search]})),
        ),
        (
            Need::Write,
            "PUT",
            "/v1/collections/a/points".into(),
            Some(json!({"points": [{"id": 2, "vector": vector(2, 3)}]})),
        ),
        (
            Need::Write,
            "POST",
            "/v1/collections/a/points/delete".into(),
            Some(json!({"ids": [2]})),
        ),
        (
            Need::Admin,
            "POST",
            "/v1/collections".into(),
            Some(json!({"name": format!("new-{tag}"), "dimension": 3})),
        ),
        (
            Need::Admin,
            "PATCH",
            "/v1/collections/a".into(),
            Some(json!({"index": {"kind": "flat"}})),
        ),
        (
            Need::Admin,
            "POST",
            "/v1/collections/a/snapshots".into(),
            None,
        ),
        (
            Need::Admin,
            "GET",
            "/v1/collections/a/snapshots".into(),
            None,
        ),
        (
            Need::Admin,
            "GET",
            format!("/v1/collections/a/snapshots/{snapshot}"),
            None,
        ),
        (
            Need::Admin,
            "POST",
            "/v1/collections/a/snapshots/upload".into(),
            None,
        ),
        (
            Need::Admin,
            "POST",
            format!("/v1/collections/a/snapshots/{snapshot}/restore"),
            Some(json!({"as_name": format!("restored-{tag}")})),
        ),
        (Need::Admin, "DELETE", "/v1/collections/victim".into(), None),
    ]
}

#[tokio::test]
async fn every_role_against_every_route() {
    let mut s = TestServer::start(|c| {
        c.auth.keys = vec![
            key("root", ADMIN, "admin", None),
            key("writer", WRITER, "read-write", None),
            key("reader", READER, "read-only", None),
            key("scoped", SCOPED, "admin", Some(&["b"])),
        ];
        c.audit_log = Some(c.data_dir.parent().unwrap().join("audit.jsonl"));
    })
    .await;
    for name in ["a", "b", "victim"] {
        let (status, body) = s
            .call_as(
                Some(ADMIN),
                "POST",
                "/v1/collections",
                Some(json!({"name": name, "dimension": 3, "metric": "l2"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    s.call_as(
        Some(ADMIN),
        "PUT",
        "/v1/collections/a/points",
        Some(json!({"points": [{"id": 1, "vector": vector(1, 3)}]})),
    )
    .await;
    let (_, snap) = s
        .call_as(Some(ADMIN), "POST", "/v1/collections/a/snapshots", None)
        .await;
    let snapshot = snap["name"].as_str().unwrap().to_string();
    make_a_living(&s).await;

    // Missing and wrong keys: 401 on every route.
    for (_, method, path, body) in routes(&snapshot, "x") {
        for key in [None, Some("wrong-key-123")] {
            let (status, answer) = s.call_as(key, method, &path, body.clone()).await;
            assert_eq!(status, 401, "{method} {path} with {key:?}: {answer}");
            assert_eq!(answer["error"]["code"], "unauthenticated");
        }
    }
    // Roles, the most restricted first so the admin's deletes come last.
    let roles = [
        (READER, Need::Read),
        (WRITER, Need::Write),
        (SCOPED, Need::Admin),
        (ADMIN, Need::Admin),
    ];
    for (key, level) in roles {
        for (need, method, path, body) in routes(&snapshot, &key[..5]) {
            let (status, answer) = s.call_as(Some(key), method, &path, body.clone()).await;
            // The scoped admin may not touch `a` (or `victim`, or create other names).
            let listing = method == "GET" && (path == "/v1/info" || path == "/v1/collections");
            let scoped_out = key == SCOPED && !listing;
            let allowed = need <= level && !scoped_out;
            if allowed {
                assert!(
                    ![401, 403].contains(&status) && status < 500,
                    "{key} {method} {path} should be allowed, got {status}: {answer}"
                );
            } else {
                assert_eq!(
                    status, 403,
                    "{key} {method} {path} should be denied: {answer}"
                );
                assert_eq!(answer["error"]["code"], "permission_denied");
            }
        }
    }
    // Scope: the scoped key sees only `b` and can work there.
    let (_, list) = s
        .call_as(Some(SCOPED), "GET", "/v1/collections", None)
        .await;
    let names: Vec<&str> = list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b"]);
    let (status, _) = s
        .call_as(
            Some(SCOPED),
            "PUT",
            "/v1/collections/b/points",
            Some(json!({"points": [{"id": 1, "vector": [1, 2, 3]}]})),
        )
        .await;
    assert_eq!(status, 200);

    // gRPC: the same rules from metadata.
    let connect = |key: Option<&str>| {
        let mut config = ClientConfig::new(s.grpc.clone());
        config.api_key = key.map(str::to_string);
        config.max_retries = 0;
        Client::connect(config)
    };
    let anonymous = connect(None).await.unwrap();
    assert_eq!(
        anonymous.count("a", None).await.unwrap_err().code(),
        Some(Code::Unauthenticated)
    );
    let reader = connect(Some(READER)).await.unwrap();
    assert!(reader.count("a", None).await.is_ok());
    let denied = reader
        .upsert("a", vec![NewPoint::new(5u64, vector(5, 3))])
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Some(Code::PermissionDenied));
    let writer = connect(Some(WRITER)).await.unwrap();
    writer
        .upsert("a", vec![NewPoint::new(5u64, vector(5, 3))])
        .await
        .unwrap();
    assert_eq!(
        writer.delete_collection("a").await.unwrap_err().code(),
        Some(Code::PermissionDenied)
    );
    // Living collections over gRPC: reads for readers, point writes for writers, the
    // collection's make-up for admins; scopes apply.
    assert!(reader.living_describe("a").await.is_ok());
    assert!(reader
        .living_search("a", LivingSearch::text("hello world", 1))
        .await
        .is_ok());
    let texts = || vec![TextPoint::new(6u64, "more words here")];
    assert_eq!(
        reader
            .living_upsert_texts("a", texts())
            .await
            .unwrap_err()
            .code(),
        Some(Code::PermissionDenied)
    );
    assert_eq!(writer.living_upsert_texts("a", texts()).await.unwrap(), 1);
    assert_eq!(
        writer
            .living_add_space("a", "w@1", None, Some(3))
            .await
            .unwrap_err()
            .code(),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        writer
            .living_remove_space("a", "s-admin")
            .await
            .unwrap_err()
            .code(),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        writer
            .living_start_migration("a", Migration::to("h@1"))
            .await
            .unwrap_err()
            .code(),
        Some(Code::PermissionDenied)
    );
    let scoped = connect(Some(SCOPED)).await.unwrap();
    assert_eq!(
        scoped.living_describe("a").await.unwrap_err().code(),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        anonymous.living_describe("a").await.unwrap_err().code(),
        Some(Code::Unauthenticated)
    );

    // The audit log has every mutating call, allowed or denied, and no reads.
    let path = s.dir.path().join("audit.jsonl");
    s.stop().await;
    let records: Vec<Value> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records
        .iter()
        .all(|r| r["operation"] != "search" && r["operation"] != "count"));
    assert!(records.iter().any(|r| r["principal"] == "writer"
        && r["operation"] == "upsert"
        && r["outcome"] == "ok"
        && r["transport"] == "grpc"));
    assert!(records.iter().any(|r| r["principal"] == "reader"
        && r["operation"] == "upsert"
        && r["status"] == "permission_denied"));
    assert!(records.iter().any(|r| r["principal"] == "root"
        && r["operation"] == "delete_collection"
        && r["collection"] == "victim"
        && r["outcome"] == "ok"));
    // Living calls: point writes and make-up changes are audited, reads are not.
    assert!(records.iter().any(|r| r["principal"] == "writer"
        && r["operation"] == "living_upsert_texts"
        && r["outcome"] == "ok"
        && r["transport"] == "grpc"));
    assert!(records.iter().any(|r| r["principal"] == "writer"
        && r["operation"] == "living_add_space"
        && r["status"] == "permission_denied"));
    assert!(records.iter().any(|r| r["principal"] == "root"
        && r["operation"] == "living_init"
        && r["collection"] == "a"
        && r["outcome"] == "ok"));
    assert!(records.iter().all(|r| r["operation"] != "living_search"
        && r["operation"] != "living_describe"
        && r["operation"] != "living_drift"));
    assert!(records
        .iter()
        .all(|r| r["time"].as_str().unwrap().ends_with('Z') && r["request_id"].is_string()));
}

fn audit_records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn refused_mutating_calls_are_audited() {
    let mut s = TestServer::start(|c| {
        c.auth.keys = vec![
            key("root", ADMIN, "admin", None),
            key("reader", READER, "read-only", None),
            key("scoped", SCOPED, "admin", Some(&["a"])),
        ];
        c.audit_log = Some(c.data_dir.parent().unwrap().join("audit.jsonl"));
    })
    .await;
    for name in ["a", "victim"] {
        s.call_as(
            Some(ADMIN),
            "POST",
            "/v1/collections",
            Some(json!({"name": name, "dimension": 3, "metric": "l2"})),
        )
        .await;
    }
    s.call_as(
        Some(ADMIN),
        "PUT",
        "/v1/collections/a/points",
        Some(json!({"points": [{"id": 1, "vector": vector(1, 3)}]})),
    )
    .await;
    let (_, snap) = s
        .call_as(Some(ADMIN), "POST", "/v1/collections/a/snapshots", None)
        .await;
    let snapshot = snap["name"].as_str().unwrap().to_string();
    make_a_living(&s).await;

    // Every non-read route: no key, an unknown key, a key whose role is too weak, then
    // the admin. Each attempt is traced by its request id.
    let mutating: Vec<_> = routes(&snapshot, "t")
        .into_iter()
        .filter(|(need, ..)| *need != Need::Read)
        .collect();
    for (i, (_, method, path, body)) in mutating.iter().enumerate() {
        for (who, key, expected) in [
            ("none", None, 401),
            ("bad", Some("unknown-key-99"), 401),
            ("reader", Some(READER), 403),
            ("admin", Some(ADMIN), 0),
        ] {
            let id = format!("r{i}-{who}");
            let (status, answer) = s.call_traced(key, &id, method, path, body.clone()).await;
            if expected == 0 {
                // Allowed (an empty upload is then refused as no snapshot: 400).
                assert!(
                    status < 500 && ![401, 403].contains(&status),
                    "{method} {path} as admin: {status} {answer}"
                );
            } else {
                assert_eq!(status, expected, "{method} {path} as {who}: {answer}");
            }
        }
    }
    // A scoped admin restoring under a name outside its scope: 403 on both transports.
    let (status, _) = s
        .call_traced(
            Some(SCOPED),
            "scoped-restore",
            "POST",
            &format!("/v1/collections/a/snapshots/{snapshot}/restore"),
            Some(json!({"as_name": "elsewhere"})),
        )
        .await;
    assert_eq!(status, 403);
    let connect = |key: Option<&str>| {
        let mut config = ClientConfig::new(s.grpc.clone());
        config.api_key = key.map(str::to_string);
        config.max_retries = 0;
        Client::connect(config)
    };
    let anonymous = connect(None).await.unwrap();
    let err = anonymous
        .upsert("a", vec![NewPoint::new(5u64, vector(5, 3))])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::Unauthenticated));
    let reader = connect(Some(READER)).await.unwrap();
    let err = reader.delete_collection("a").await.unwrap_err();
    assert_eq!(err.code(), Some(Code::PermissionDenied));
    let scoped = connect(Some(SCOPED)).await.unwrap();
    let err = scoped
        .restore_snapshot("a", &snapshot, Some("elsewhere"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::PermissionDenied));

    let path = s.dir.path().join("audit.jsonl");
    s.stop().await;
    let records = audit_records(&path);
    let by_id = |id: &str| -> Value {
        let found: Vec<&Value> = records.iter().filter(|r| r["request_id"] == id).collect();
        assert_eq!(found.len(), 1, "one audit record for {id}: {found:?}");
        found[0].clone()
    };
    for (i, (_, method, path, _)) in mutating.iter().enumerate() {
        let allowed = by_id(&format!("r{i}-admin"));
        assert!(
            allowed["outcome"] == "ok" || allowed["status"] == "invalid_argument",
            "{method} {path}: {allowed}"
        );
        assert_eq!(allowed["principal"], "root");
        for (who, principal, status) in [
            ("none", "anonymous", "unauthenticated"),
            ("bad", "anonymous", "unauthenticated"),
            ("reader", "reader", "permission_denied"),
        ] {
            let refused = by_id(&format!("r{i}-{who}"));
            let context = format!("{method} {path} as {who}: {refused}");
            assert_eq!(refused["operation"], allowed["operation"], "{context}");
            assert_eq!(refused["principal"], principal, "{context}");
            assert_eq!(refused["status"], status, "{context}");
            assert_eq!(refused["outcome"], "error", "{context}");
            assert_eq!(refused["transport"], "rest", "{context}");
            assert!(
                refused["time"].as_str().unwrap().ends_with('Z'),
                "{context}"
            );
            assert!(refused["message"].is_string(), "{context}");
            // The collection is known from the path (a create names it in the body,
            // which a refused caller never gets to send through).
            if allowed["operation"] != "create_collection" || who == "reader" {
                assert_eq!(refused["collection"], allowed["collection"], "{context}");
            }
        }
    }
    let missing_key = by_id("r0-none");
    assert!(missing_key["role"].is_null());
    assert!(missing_key["message"]
        .as_str()
        .unwrap()
        .contains("missing API key"));
    let bad_key = by_id("r0-bad");
    assert!(bad_key["message"]
        .as_str()
        .unwrap()
        .contains("invalid API key"));
    assert!(!records
        .iter()
        .any(|r| r.to_string().contains("unknown-key-99")));
    let scoped_rest = by_id("scoped-restore");
    assert_eq!(scoped_rest["status"], "permission_denied");
    assert_eq!(scoped_rest["operation"], "restore_snapshot");
    let grpc = |operation: &str, principal: &str, status: &str| {
        records.iter().any(|r| {
            r["transport"] == "grpc"
                && r["operation"] == operation
                && r["principal"] == principal
                && r["status"] == status
        })
    };
    assert!(grpc("upsert", "anonymous", "unauthenticated"));
    assert!(grpc("delete_collection", "reader", "permission_denied"));
    assert!(grpc("restore_snapshot", "scoped", "permission_denied"));
}

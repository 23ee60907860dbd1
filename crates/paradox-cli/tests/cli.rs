//! End-to-end tests of the `paradox` binary: each runs the built executable against a
//! fresh data directory and checks its output and exit code.

mod common;

use common::Workspace;
use serde_json::{json, Value};
use std::path::Path;

/// A minimal `.npy` (format 1.0, `<f4`, C order) written independently of the CLI's writer.
fn write_npy(path: &Path, cols: usize, data: &[f32]) {
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {cols}), }}",
        data.len() / cols
    );
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&header);
    data.iter()
        .for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

/// 20 distinct 4-d vectors: row i = [i, i % 3, 1, -i / 2].
fn grid() -> Vec<f32> {
    (0..20)
        .flat_map(|i| [i as f32, (i % 3) as f32, 1.0, -(i as f32) / 2.0])
        .collect()
}

fn ids(hits: &Value) -> Vec<Value> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].clone())
        .collect()
}

#[test]
fn create_import_search_export_snapshot() {
    let ws = Workspace::new();
    ws.ok(&[
        "collection",
        "create",
        "--name",
        "docs",
        "--dim",
        "4",
        "--metric",
        "l2",
    ]);
    let list = ws.json(&["collection", "list", "--json"]);
    assert_eq!(list[0]["name"], "docs");

    let npy = ws.path("grid.npy");
    write_npy(&npy, 4, &grid());
    let out = ws.ok(&["import", "--collection", "docs", npy.to_str().unwrap()]);
    assert!(out.contains("imported 20 points"), "{out}");

    // Exact l2 search: row 7 is its own nearest neighbour, then rows 6 and 8 are tied-ish.
    let hits = ws.json(&[
        "search",
        "--collection",
        "docs",
        "--vector",
        "[7, 1, 1, -3.5]",
        "-k",
        "3",
        "--json",
    ]);
    assert_eq!(ids(&hits)[0], json!(7));
    assert_eq!(hits[0]["score"], json!(0.0));
    let by_id = ws.json(&[
        "search",
        "--collection",
        "docs",
        "--id",
        "7",
        "-k",
        "1",
        "--json",
    ]);
    assert_eq!(ids(&by_id), vec![json!(7)]);
    let from_file = ws.json(&[
        "search",
        "--collection",
        "docs",
        "--vector-file",
        npy.to_str().unwrap(),
        "--row",
        "12",
        "-k",
        "1",
        "--json",
        "--with-vector",
    ]);
    assert_eq!(ids(&from_file), vec![json!(12)]);
    assert_eq!(from_file[0]["vector"], json!([12.0, 0.0, 1.0, -6.0]));
    let table = ws.ok(&["search", "--collection", "docs", "--id", "3", "-k", "2"]);
    assert!(
        table.contains("rank") && table.contains("2 results"),
        "{table}"
    );

    // JSON Lines with payloads into a second collection, created on the fly.
    let jsonl = ws.path("points.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": 1, \"vector\": [1, 0, 0], \"payload\": {\"lang\": \"en\", \"year\": 2001}}\n\
         {\"id\": \"two\", \"vector\": [0.9, 0.1, 0], \"payload\": {\"lang\": \"fr\", \"year\": 2015}}\n\
         \n\
         {\"id\": 3, \"vector\": [0, 1, 0], \"payload\": {\"lang\": \"en\", \"year\": 2020}}\n",
    )
    .unwrap();
    ws.ok(&[
        "import",
        "--collection",
        "notes",
        "--create",
        jsonl.to_str().unwrap(),
    ]);
    let all = ws.json(&[
        "search",
        "--collection",
        "notes",
        "--vector",
        "[1, 0, 0]",
        "--json",
    ]);
    assert_eq!(ids(&all), vec![json!(1), json!("two"), json!(3)]);
    let filtered = ws.json(&[
        "search",
        "--collection",
        "notes",
        "--vector",
        "[1, 0, 0]",
        "--json",
        "--filter",
        r#"{"and": [{"key": "lang", "eq": "en"}, {"key": "year", "range": {"gte": 2010}}]}"#,
    ]);
    assert_eq!(ids(&filtered), vec![json!(3)]);
    assert_eq!(filtered[0]["payload"]["year"], json!(2020));

    let info = ws.json(&["info", "--collection", "docs", "--json"]);
    assert_eq!(info["points"], json!(20));
    assert_eq!(info["dimension"], json!(4));
    let infos = ws.json(&["info", "--json"]);
    assert_eq!(infos.as_array().unwrap().len(), 2);
    assert!(ws.ok(&["info"]).contains("collection `notes`"));

    // Export: jsonl round-trips through import; npy comes with an ids sidecar.
    let exported = ws.path("notes.jsonl");
    ws.ok(&[
        "export",
        "--collection",
        "notes",
        "--format",
        "jsonl",
        exported.to_str().unwrap(),
    ]);
    let lines: Vec<Value> = std::fs::read_to_string(&exported)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["id"], json!(3));
    assert_eq!(lines[2]["payload"]["lang"], json!("fr"));
    ws.ok(&[
        "import",
        "--collection",
        "notes2",
        "--create",
        exported.to_str().unwrap(),
    ]);
    assert_eq!(
        ws.json(&["info", "--collection", "notes2", "--json"])["points"],
        json!(3)
    );

    let exported_npy = ws.path("docs.npy");
    ws.ok(&[
        "export",
        "--collection",
        "docs",
        "--format",
        "npy",
        exported_npy.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&exported_npy).unwrap();
    let header = String::from_utf8_lossy(&bytes[10..128]);
    assert!(header.contains("'shape': (20, 4)"), "{header}");
    let sidecar: Value =
        serde_json::from_slice(&std::fs::read(ws.path("docs.npy.ids.json")).unwrap()).unwrap();
    assert_eq!(sidecar.as_array().unwrap().len(), 20);
    assert_eq!(sidecar[5], json!(5));
    let fvecs = ws.path("docs.fvecs");
    ws.ok(&["export", "--collection", "docs", fvecs.to_str().unwrap()]);
    assert_eq!(std::fs::metadata(&fvecs).unwrap().len(), 20 * (4 + 16));

    // Importing the exported npy again appends after the current count.
    ws.ok(&[
        "import",
        "--collection",
        "docs",
        exported_npy.to_str().unwrap(),
    ]);
    assert_eq!(
        ws.json(&["info", "--collection", "docs", "--json"])["points"],
        json!(40)
    );

    // Snapshot and restore under a new name.
    let snap = ws.path("docs.snap");
    ws.ok(&[
        "snapshot",
        "create",
        "--collection",
        "docs",
        snap.to_str().unwrap(),
    ]);
    let out = ws.ok(&[
        "snapshot",
        "restore",
        snap.to_str().unwrap(),
        "--as",
        "docs_copy",
    ]);
    assert!(out.contains("docs_copy"), "{out}");
    let copy = ws.json(&[
        "search",
        "--collection",
        "docs_copy",
        "--id",
        "7",
        "-k",
        "1",
        "--json",
    ]);
    assert_eq!(ids(&copy), vec![json!(7)]);

    ws.ok(&["collection", "drop", "--name", "docs_copy"]);
    let names: Vec<Value> = ws
        .json(&["collection", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("docs"), json!("notes"), json!("notes2")]);
}

#[test]
fn migrates_a_paradoxlf_store() {
    let ws = Workspace::new();
    let store = ws.path("old_store");
    std::fs::create_dir_all(&store).unwrap();
    // paradoxlf 0.17: headerless native-endian f32 rows; metadata keyed by stringified id.
    let vectors: Vec<u8> = (0..5 * 3).flat_map(|i| (i as f32).to_ne_bytes()).collect();
    std::fs::write(store.join("vectors.dat"), vectors).unwrap();
    let metadata = json!({
        "0": {"_id": 0, "text": "zero"},
        "1": {"_id": 1, "text": "one"},
        "2": {"_id": 2, "text": "two"},
        "3": {"_id": 3, "text": "three"},
    });
    std::fs::write(store.join("metadata.json"), metadata.to_string()).unwrap();

    let out = ws.ok(&[
        "import",
        "--from-paradoxlf",
        store.to_str().unwrap(),
        "--dimension",
        "3",
        "--collection",
        "legacy",
    ]);
    assert!(out.contains("imported 4 points"), "{out}");
    let info = ws.json(&["info", "--collection", "legacy", "--json"]);
    assert_eq!(info["metric"], json!("l2"));
    assert_eq!(info["points"], json!(4));
    let hits = ws.json(&[
        "search",
        "--collection",
        "legacy",
        "--vector",
        "[6, 7, 8]",
        "-k",
        "1",
        "--json",
    ]);
    assert_eq!(hits[0]["id"], json!(2));
    assert_eq!(hits[0]["payload"], json!({"_id": 2, "text": "two"}));

    // A dimension too large for vectors.dat names both numbers.
    let err = ws.fails(
        &[
            "import",
            "--from-paradoxlf",
            store.to_str().unwrap(),
            "--dimension",
            "4",
            "--collection",
            "legacy4",
        ],
        1,
    );
    assert!(
        err.contains("holds 15 floats") && err.contains("16 floats"),
        "{err}"
    );
}

#[test]
fn bad_invocations_fail_with_actionable_messages() {
    let ws = Workspace::new();
    // Reading commands do not create a data directory that is not there.
    let err = ws.fails(&["info"], 1);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!ws.path("data").exists());

    ws.ok(&["collection", "create", "--name", "docs", "--dim", "3"]);
    let err = ws.fails(&["search", "--collection", "nope", "--vector", "[1]"], 1);
    assert!(
        err.contains("collection `nope` not found") && err.contains("it has: docs"),
        "{err}"
    );
    let err = ws.fails(&["info", "--collection", "ghost"], 1);
    assert!(err.contains("`ghost`"), "{err}");
    let err = ws.fails(&["search", "--collection", "docs", "--id", "404"], 1);
    assert!(err.contains("point 404 not found"), "{err}");
    let jsonl = ws.path("bad.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": 1, \"vector\": [1, 2, 3]}\n{\"id\": 2, \"vector\": [1, 2]}\n",
    )
    .unwrap();
    let err = ws.fails(
        &["import", "--collection", "docs", jsonl.to_str().unwrap()],
        1,
    );
    assert!(
        err.contains("line 2") && err.contains("dimension 2") && err.contains("expects 3"),
        "{err}"
    );

    let npy = ws.path("four.npy");
    write_npy(&npy, 4, &[1.0; 8]);
    let err = ws.fails(
        &["import", "--collection", "docs", npy.to_str().unwrap()],
        1,
    );
    assert!(
        err.contains("expects 3") && err.contains("dimension 4"),
        "{err}"
    );
    let err = ws.fails(
        &["import", "--collection", "fresh", npy.to_str().unwrap()],
        1,
    );
    assert!(err.contains("--create"), "{err}");

    let err = ws.fails(
        &[
            "search",
            "--collection",
            "docs",
            "--vector",
            "[1, 0, 0]",
            "--filter",
            "{\"key\": 1}",
        ],
        1,
    );
    assert!(err.contains("invalid --filter"), "{err}");
    let err = ws.fails(&["search", "--collection", "docs", "--vector", "[1, 0]"], 1);
    assert!(err.contains("expects 3"), "{err}");

    // Usage errors are clap's: exit code 2.
    ws.fails(&["search", "--collection", "docs"], 2);
    ws.fails(&["collection", "create", "--name", "x", "--dim", "0"], 2);
    ws.fails(
        &["import", "--from-paradoxlf", "dir", "--collection", "x"],
        2,
    );
    ws.fails(&["frobnicate"], 2);
}

#[test]
fn demo_runs_small() {
    let ws = Workspace::new();
    let out = ws.ok(&["demo", "--count", "3000", "--dim", "16"]);
    for expected in [
        "1. Load",
        "Filtered search",
        "all 5 results satisfy the filter",
        "20/20 stored vectors found themselves at rank 1",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // A second run replaces the demo collection rather than failing.
    let again = ws.ok(&["demo", "--count", "1000", "--dim", "8"]);
    assert!(
        again.contains("dropped the previous `demo` collection"),
        "{again}"
    );
    let info = ws.json(&["info", "--collection", "demo", "--json"]);
    assert_eq!(info["points"], json!(1000));
}

#[test]
fn bench_subcommands_print_one_json_object() {
    let ws = Workspace::new();
    let run = |args: &[&str]| -> Value {
        let stdout = ws.ok(args);
        assert_eq!(stdout.trim().lines().count(), 1, "{stdout}");
        serde_json::from_str(stdout.trim()).unwrap()
    };
    let ingest = run(&[
        "bench",
        "ingest",
        "--dim",
        "8",
        "--count",
        "3000",
        "--batch",
        "500",
        "--fsync",
        "never",
        "--dir",
        ws.dir.path().to_str().unwrap(),
    ]);
    assert_eq!(ingest["op"], "ingest");
    assert_eq!(ingest["fsync"], "never");
    assert_eq!(ingest["count"], 3000);
    assert!(ingest["vectors_per_s"].as_f64().unwrap() > 0.0);

    let scan = run(&[
        "bench",
        "scan",
        "--dim",
        "16",
        "--count",
        "20000",
        "--queries",
        "3",
    ]);
    for key in ["bytes_per_s", "stream_read_bytes_per_s", "ratio"] {
        assert!(scan[key].as_f64().unwrap() > 0.0, "{key}: {scan}");
    }

    let base = ws.path("base.npy");
    let queries = ws.path("q.npy");
    write_npy(&base, 4, &grid());
    write_npy(&queries, 4, &grid()[4 * 5..4 * 8]);
    let out_ids = ws.path("ids.npy");
    let batch = run(&[
        "bench",
        "batch",
        "--base",
        base.to_str().unwrap(),
        "--queries",
        queries.to_str().unwrap(),
        "--k",
        "2",
        "--threads",
        "1",
        "--out-ids",
        out_ids.to_str().unwrap(),
    ]);
    assert_eq!(
        (batch["n"].clone(), batch["nq"].clone()),
        (json!(20), json!(3))
    );
    assert_eq!(batch["threads"], 1);
    // Queries are base rows 5, 6, 7: each finds itself first.
    let bytes = std::fs::read(&out_ids).unwrap();
    let first_ids: Vec<i64> = (0..3)
        .map(|q| {
            let at = 128 + q * 2 * 8;
            i64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
        })
        .collect();
    assert_eq!(first_ids, vec![5, 6, 7]);

    let legacy = run(&[
        "bench",
        "legacy",
        "--base",
        base.to_str().unwrap(),
        "--queries",
        queries.to_str().unwrap(),
        "--k",
        "5",
    ]);
    assert_eq!(legacy["op"], "legacy");
    assert_eq!(legacy["nq"], 1000);
    assert!(legacy["total_seconds"].as_f64().unwrap() >= legacy["add_seconds"].as_f64().unwrap());

    let latencies = ws.dir.path().join("latencies.csv");
    let stream = run(&[
        "bench",
        "stream",
        "--dim",
        "8",
        "--initial",
        "2000",
        "--rate",
        "2000",
        "--batch",
        "100",
        "--seconds",
        "1",
        "--seal-threshold",
        "1000",
        "--index",
        "flat",
        "--latencies",
        latencies.to_str().unwrap(),
    ]);
    assert_eq!(stream["op"], "stream");
    for phase in ["idle", "idle_after"] {
        assert!(stream[phase]["queries"].as_u64().unwrap() > 0, "{stream}");
    }
    assert!(
        stream["stream"]["inserted"].as_u64().unwrap() > 0,
        "{stream}"
    );
    for key in ["p99_ratio", "p99_ratio_after", "p99_ratio_matched"] {
        assert!(stream[key].as_f64().unwrap() > 0.0, "{key}: {stream}");
    }
    let csv = std::fs::read_to_string(&latencies).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("phase,start_us,latency_us"));
    let mut phases: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    phases.dedup();
    assert_eq!(
        phases,
        ["idle", "stream", "upsert", "visibility", "idle_after"]
    );
}

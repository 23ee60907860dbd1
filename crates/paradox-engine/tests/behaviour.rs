//! Behaviour of the engine through its public API: writes, reads, filters, recovery,
//! compaction, snapshots and bad input.

use paradox_engine::{
    payload, CollectionConfig, Engine, EngineError, EngineOptions, Filter, FsyncPolicy, Metric,
    NewPoint, PointId, ScrollRequest, SearchRequest,
};
use rand::{Rng, SeedableRng};
use serde_json::json;

fn options(seal_threshold: usize) -> EngineOptions {
    EngineOptions {
        fsync: FsyncPolicy::Never,
        seal_threshold,
        parallel_threshold: 1024,
        // These tests count segments: seal inline, exactly at the threshold.
        maintenance_worker: false,
        ..Default::default()
    }
}

fn msg<T: std::fmt::Debug>(r: Result<T, EngineError>) -> String {
    r.map(|_| ()).unwrap_err().to_string()
}

fn random_points(n: usize, dim: usize, seed: u64, id_start: u64) -> Vec<NewPoint> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            NewPoint::new(id_start + i as u64, v)
                .with_payload(payload(json!({"i": i, "group": i % 4})))
        })
        .collect()
}

/// Exact top-k ids by brute force over what we wrote.
fn oracle(
    points: &[(PointId, Vec<f32>)],
    q: &[f32],
    k: usize,
    metric: Metric,
) -> Vec<(PointId, f32)> {
    let mut scored: Vec<(PointId, f32)> = points
        .iter()
        .map(|(id, v)| {
            let mut v = v.clone();
            let mut q = q.to_vec();
            if metric == Metric::Cosine {
                paradox_kernels::normalize(&mut v);
                paradox_kernels::normalize(&mut q);
            }
            (id.clone(), metric.distance(&q, &v))
        })
        .collect();
    scored.sort_by(|a, b| a.1.total_cmp(&b.1));
    scored.truncate(k);
    scored
}

#[test]
fn search_matches_brute_force_across_segments_and_metrics() {
    for metric in [Metric::L2, Metric::Dot, Metric::Cosine] {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open_with(dir.path(), options(700)).unwrap();
        let col = engine
            .create_collection(CollectionConfig::new("c", 16, metric))
            .unwrap();
        let pts = random_points(2500, 16, 7, 0);
        for chunk in pts.chunks(300) {
            col.upsert(chunk.to_vec()).unwrap();
        }
        assert!(col.info().sealed_segments >= 3, "{:?}", col.info());
        let written: Vec<(PointId, Vec<f32>)> = pts
            .iter()
            .map(|p| (p.id.clone(), p.vector.clone()))
            .collect();
        let queries = random_points(20, 16, 99, 0);
        let requests: Vec<SearchRequest> = queries
            .iter()
            .map(|q| SearchRequest::new(q.vector.clone(), 10))
            .collect();
        let batch = col.search_batch(&requests).unwrap();
        for (q, batch_hits) in queries.iter().zip(&batch) {
            let hits = col
                .search(&SearchRequest::new(q.vector.clone(), 10))
                .unwrap();
            let want = oracle(&written, &q.vector, 10, metric);
            for ((hit, b), (_, d)) in hits.iter().zip(batch_hits).zip(&want) {
                let score = metric.score_from_distance(*d);
                assert!(
                    (hit.score - score).abs() < 1e-3,
                    "{metric}: {} vs {score}",
                    hit.score
                );
                assert!(
                    (b.score - score).abs() < 1e-3,
                    "{metric} batch: {} vs {score}",
                    b.score
                );
            }
            assert_eq!(hits.len(), 10);
        }
    }
}

#[test]
fn upsert_replaces_and_delete_removes_everywhere_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open_with(dir.path(), options(100)).unwrap();
        let col = engine
            .create_collection(CollectionConfig::new("c", 4, Metric::L2))
            .unwrap();
        col.upsert(random_points(250, 4, 1, 0)).unwrap(); // seals twice
        let first = col.get(&[5u64.into()]).unwrap()[0].clone().unwrap();
        col.upsert(vec![NewPoint::new(5u64, vec![9.0, 9.0, 9.0, 9.0])
            .with_payload(payload(json!({"new": true})))])
            .unwrap();
        col.upsert(vec![NewPoint::new(240u64, vec![8.0, 8.0, 8.0, 8.0])])
            .unwrap(); // was growing
        assert_eq!(
            col.delete(&[7u64.into(), 241u64.into(), 100_000u64.into()])
                .unwrap()
                .count,
            2
        );
        let got = col.get(&[5u64.into()]).unwrap()[0].clone().unwrap();
        assert_eq!(got.vector, vec![9.0; 4]);
        assert_eq!(got.created_at, first.created_at);
        assert!(got.updated_at >= first.updated_at);
        assert_eq!(col.count(None).unwrap(), 248);
        let hit = &col.search(&SearchRequest::new(vec![9.0; 4], 1)).unwrap()[0];
        assert_eq!(hit.id, 5u64.into());
        assert_eq!(col.count(Some(&Filter::eq("new", true))).unwrap(), 1);
    }
    // Reopen: recovered from segments + deletes + log.
    let engine = Engine::open_with(dir.path(), options(100)).unwrap();
    let col = engine.collection("c").unwrap();
    assert_eq!(col.count(None).unwrap(), 248);
    assert!(col
        .get(&[7u64.into(), 241u64.into()])
        .unwrap()
        .iter()
        .all(Option::is_none));
    assert_eq!(
        col.get(&[5u64.into()]).unwrap()[0].as_ref().unwrap().vector,
        vec![9.0; 4]
    );
    let hits = col.search(&SearchRequest::new(vec![8.0; 4], 2)).unwrap();
    assert_eq!(hits[0].id, 240u64.into());
    // Compaction reclaims the deleted rows and keeps every live point.
    col.flush().unwrap();
    let before = col.info();
    assert!(before.deleted_rows > 0);
    let report = col.compact().unwrap();
    assert!(report.rows_reclaimed > 0, "{report:?}");
    let after = col.info();
    assert_eq!(after.deleted_rows, 0);
    assert_eq!(after.points, 248);
    drop(col);
    drop(engine);
    let engine = Engine::open_with(dir.path(), options(100)).unwrap();
    let col = engine.collection("c").unwrap();
    assert_eq!(col.count(None).unwrap(), 248);
    assert_eq!(
        col.search(&SearchRequest::new(vec![9.0; 4], 1)).unwrap()[0].id,
        5u64.into()
    );
}

#[test]
fn filters_scroll_and_delete_by_filter() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options(64)).unwrap();
    let col = engine
        .create_collection(CollectionConfig::new("c", 8, Metric::Dot))
        .unwrap();
    col.upsert(random_points(200, 8, 3, 0)).unwrap();
    col.upsert(vec![
        NewPoint::new("alpha", vec![1.0; 8]).with_payload(payload(json!({"group": 9})))
    ])
    .unwrap();
    let g1 = Filter::eq("group", 1);
    let mut req = SearchRequest::new(vec![0.5; 8], 500);
    req.filter = Some(g1.clone());
    req.with_payload = true;
    let hits = col.search(&req).unwrap();
    assert_eq!(hits.len(), 50);
    assert!(hits
        .iter()
        .all(|h| h.payload.as_ref().unwrap()["group"] == 1));
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    // Scroll the whole collection in pages: every id once, in order, numbers before strings.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = col
            .scroll(&ScrollRequest {
                after: after.clone(),
                limit: 37,
                filter: None,
                with_vector: false,
            })
            .unwrap();
        seen.extend(page.points.iter().map(|p| p.id.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 201);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(seen.last().unwrap(), &PointId::from("alpha"));
    let deleted = col.delete_by_filter(&g1).unwrap();
    assert_eq!(deleted.count, 50);
    assert_eq!(col.count(Some(&g1)).unwrap(), 0);
    assert_eq!(col.count(None).unwrap(), 151);
}

#[test]
fn snapshot_restores_into_a_new_collection() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options(64)).unwrap();
    let col = engine
        .create_collection(CollectionConfig::new("src", 8, Metric::Cosine))
        .unwrap();
    col.upsert(random_points(150, 8, 5, 0)).unwrap();
    col.delete(&[3u64.into()]).unwrap();
    let file = dir.path().join("src.snap");
    let info = engine.snapshot_collection("src", &file).unwrap();
    assert_eq!(info.points, 149);
    col.upsert(random_points(10, 8, 6, 1000)).unwrap(); // after the snapshot: not in it
    let restored = engine.restore_collection(&file, Some("copy")).unwrap();
    assert_eq!(restored.count(None).unwrap(), 149);
    assert!(restored.get(&[3u64.into()]).unwrap()[0].is_none());
    let q = random_points(1, 8, 77, 0).pop().unwrap().vector;
    let a = col.search(&SearchRequest::new(q.clone(), 5)).unwrap();
    let b = restored.search(&SearchRequest::new(q, 5)).unwrap();
    assert_eq!(
        a.iter()
            .filter(|h| h.id.clone() < PointId::Num(1000))
            .count(),
        5.min(a.len())
    );
    assert_eq!(
        a.iter().map(|h| &h.id).take(1).collect::<Vec<_>>(),
        b.iter().map(|h| &h.id).take(1).collect::<Vec<_>>()
    );
    assert!(matches!(
        engine.restore_collection(&file, Some("copy")),
        Err(EngineError::CollectionExists(_))
    ));
    // A corrupted snapshot is refused and creates nothing.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    let bad = dir.path().join("bad.snap");
    std::fs::write(&bad, bytes).unwrap();
    assert!(engine.restore_collection(&bad, Some("bad")).is_err());
    assert!(engine.collection("bad").is_err());
    drop(restored);
    drop(col);
    drop(engine);
    let engine = Engine::open_with(dir.path(), options(64)).unwrap();
    assert_eq!(
        engine.list_collections(),
        vec!["copy".to_string(), "src".to_string()]
    );
    assert_eq!(engine.collection("copy").unwrap().count(None).unwrap(), 149);
}

#[test]
fn bad_input_gets_a_clear_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options(64)).unwrap();
    let col = engine
        .create_collection(CollectionConfig::new("docs", 3, Metric::Cosine))
        .unwrap();
    col.upsert(vec![NewPoint::new(1u64, vec![1.0, 0.0, 0.0])])
        .unwrap();
    assert_eq!(
        msg(col.upsert(vec![NewPoint::new(2u64, vec![1.0; 4])])),
        "dimension mismatch: collection `docs` expects 3, got 4 (point 2)"
    );
    assert!(
        msg(col.upsert(vec![NewPoint::new(2u64, vec![1.0, f32::NAN, 0.0])]))
            .contains("non-finite value (NaN) at position 1")
    );
    assert!(
        msg(col.upsert(vec![NewPoint::new(2u64, vec![f32::INFINITY, 0.0, 0.0])])).contains("inf")
    );
    assert!(msg(col.upsert(vec![NewPoint::new(2u64, vec![])])).contains("expects 3, got 0"));
    assert!(msg(col.upsert(vec![NewPoint::new(2u64, vec![0.0; 3])])).contains("all zeros"));
    assert!(msg(col.upsert(vec![
        NewPoint::new(2u64, vec![1.0; 3]),
        NewPoint::new(2u64, vec![1.0; 3])
    ]))
    .contains("duplicate id 2"));
    // A batch with one bad point writes nothing.
    assert!(col
        .upsert(vec![
            NewPoint::new(3u64, vec![1.0; 3]),
            NewPoint::new(4u64, vec![1.0; 2])
        ])
        .is_err());
    assert_eq!(col.count(None).unwrap(), 1);
    assert!(msg(col.search(&SearchRequest::new(vec![1.0; 3], 0)))
        .contains("`k`: must be between 1 and 10000, got 0"));
    assert!(msg(col.search(&SearchRequest::new(vec![1.0; 3], 10_001))).contains("got 10001"));
    assert!(msg(col.search(&SearchRequest::new(vec![1.0; 2], 1))).contains("expects 3, got 2"));
    // k beyond the count returns what exists.
    assert_eq!(
        col.search(&SearchRequest::new(vec![1.0; 3], 50))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(msg(engine.collection("nope")), "unknown collection `nope`");
    assert!(
        msg(engine.create_collection(CollectionConfig::new("docs", 3, Metric::L2)))
            .contains("already exists")
    );
    assert!(
        msg(engine.create_collection(CollectionConfig::new("../x", 3, Metric::L2)))
            .contains("invalid collection name")
    );
    assert!(
        msg(engine.create_collection(CollectionConfig::new("x", 0, Metric::L2)))
            .contains("dimension")
    );
    assert!(msg(col.scroll(&ScrollRequest {
        limit: 0,
        ..Default::default()
    }))
    .contains("limit"));
    // A second process (here: a second open) cannot take the directory.
    assert!(matches!(
        Engine::open(dir.path()),
        Err(EngineError::Locked(_))
    ));
    assert_eq!(col.count(None).unwrap(), 1);
}

#[test]
fn corrupt_files_are_refused_or_recovered_never_silently_dropped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open_with(dir.path(), options(50)).unwrap();
        let col = engine
            .create_collection(CollectionConfig::new("c", 4, Metric::L2))
            .unwrap();
        col.upsert(random_points(60, 4, 1, 0)).unwrap(); // one sealed segment + 10 in the log
        col.upsert(random_points(5, 4, 2, 100)).unwrap();
    }
    let col_dir = dir.path().join("collections/c");
    // Torn WAL tail: cut the last record in half -> opens, last batch gone, the rest intact.
    let wal_dir = col_dir.join("wal");
    let mut logs: Vec<_> = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    logs.sort();
    let last = logs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(len - 20)
        .unwrap();
    {
        let engine = Engine::open_with(dir.path(), options(50)).unwrap();
        let col = engine.collection("c").unwrap();
        assert_eq!(col.count(None).unwrap(), 60);
    }
    // A flipped byte inside a segment file: refuse to open, naming the file.
    let seg = std::fs::read_dir(&col_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[200] ^= 0x55;
    std::fs::write(&seg, bytes).unwrap();
    let err = Engine::open_with(dir.path(), options(50))
        .unwrap_err()
        .to_string();
    assert!(err.contains("seg-"), "{err}");
}

/// Filtered counts and deletes read sealed rows' payloads from their files (through the
/// payload index, or row by row for paths it does not index) and skip replaced rows.
#[test]
fn filtered_count_and_delete_over_reopened_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let deep = "a.b.c.d.e.f.g.h.i";
    let nested = |v: i64| json!({"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i": v}}}}}}}}});
    {
        let engine = Engine::open_with(dir.path(), options(64)).unwrap();
        let col = engine
            .create_collection(CollectionConfig::new("c", 4, Metric::L2))
            .unwrap();
        let points: Vec<NewPoint> = (0..300u64)
            .map(|i| {
                let mut p = nested(i as i64 % 3);
                p["group"] = json!(i % 4);
                NewPoint::new(i, vec![i as f32, 1.0, 0.0, 0.0]).with_payload(payload(p))
            })
            .collect();
        col.upsert(points).unwrap();
        // Replace ids 0..40 (sealed rows) with group 9 and no deep value.
        col.upsert(
            (0..40u64)
                .map(|i| {
                    NewPoint::new(i, vec![0.0, 1.0, 0.0, i as f32])
                        .with_payload(payload(json!({"group": 9})))
                })
                .collect(),
        )
        .unwrap();
        col.flush().unwrap();
    }
    let engine = Engine::open_with(dir.path(), options(64)).unwrap();
    let col = engine.collection("c").unwrap();
    let expect = |pred: &dyn Fn(u64) -> bool| (0..300u64).filter(|&i| pred(i)).count();
    let g1 = Filter::eq("group", 1);
    assert_eq!(
        col.count(Some(&g1)).unwrap(),
        expect(&|i| i >= 40 && i % 4 == 1)
    );
    assert_eq!(col.count(Some(&Filter::eq("group", 9))).unwrap(), 40);
    let deep2 = Filter::eq(deep, 2);
    assert_eq!(
        col.count(Some(&deep2)).unwrap(),
        expect(&|i| i >= 40 && i % 3 == 2)
    );
    let deleted = col.delete_by_filter(&deep2).unwrap();
    assert_eq!(deleted.count, expect(&|i| i >= 40 && i % 3 == 2));
    assert_eq!(col.count(Some(&deep2)).unwrap(), 0);
    assert_eq!(
        col.count(None).unwrap(),
        300 - expect(&|i| i >= 40 && i % 3 == 2)
    );
    // Reads after the delete still decode every kept row from the files.
    let kept = col.get(&[PointId::Num(1), PointId::Num(45)]).unwrap();
    assert_eq!(kept[0].as_ref().unwrap().payload["group"], json!(9));
    assert_eq!(kept[1].as_ref().unwrap().payload["group"], json!(1));
}

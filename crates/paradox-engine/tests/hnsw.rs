//! Sealed segments with HNSW: background builds, persisted graphs, deletes and filters
//! through the graph, and recall against exact search.

mod common;

use common::{clustered, options, recall, DIM};
use paradox_engine::{
    CollectionConfig, Engine, Filter, HnswConfig, IndexConfig, Metric, PointId, SearchRequest,
};
use std::collections::HashSet;

fn config() -> CollectionConfig {
    CollectionConfig {
        index: IndexConfig::Hnsw(HnswConfig {
            m: 12,
            ef_construction: 100,
            ef_search: 64,
            ..HnswConfig::default()
        }),
        ..CollectionConfig::new("g", DIM, Metric::Cosine)
    }
}

#[test]
fn graphs_are_built_in_the_background_persisted_and_searched() {
    let dir = tempfile::tempdir().unwrap();
    let queries = clustered(40, 99, 1_000_000);
    {
        let engine = Engine::open_with(dir.path(), options()).unwrap();
        let col = engine.create_collection(config()).unwrap();
        for chunk in clustered(9500, 1, 0).chunks(500) {
            col.upsert(chunk.to_vec()).unwrap();
        }
        // Searches work while graphs are still being built (exact fallback).
        assert_eq!(
            col.search(&SearchRequest::new(queries[0].vector.clone(), 10))
                .unwrap()
                .len(),
            10
        );
        col.wait_for_indexes();
        assert_eq!(col.info().sealed_segments, 3);
        let graphs = std::fs::read_dir(dir.path().join("collections/g"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".hnsw")
            })
            .count();
        assert_eq!(graphs, 3);
        let r = recall(&col, &queries, None);
        assert!(r >= 0.95, "recall {r}");
        for (name, filter) in [
            ("1%", Filter::eq("tag", "rare")),
            ("10%", Filter::eq("tag", "some")),
            ("50%", Filter::eq("bucket", 1)),
        ] {
            let r = recall(&col, &queries, Some(filter));
            assert!(r >= 0.95, "filtered {name}: recall {r}");
        }
        // Deleted points never come back, through the graph either.
        let victims: Vec<PointId> = (0..3000u64).step_by(3).map(PointId::Num).collect();
        col.delete(&victims).unwrap();
        let dead: HashSet<PointId> = victims.into_iter().collect();
        for q in &queries {
            let hits = col
                .search(&SearchRequest::new(q.vector.clone(), 20))
                .unwrap();
            assert!(hits.iter().all(|h| !dead.contains(&h.id)));
        }
        assert!(recall(&col, &queries, None) >= 0.95);
    }
    // Reopen: graphs load from their files, no rebuild.
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.collection("g").unwrap();
    assert_eq!(col.pending_index_builds(), 0);
    assert!(recall(&col, &queries, None) >= 0.95);
    // Compaction rewrites the segment with deletions and rebuilds its graph; the old graph
    // file goes with the old segment.
    col.compact().unwrap();
    col.wait_for_indexes();
    let names: Vec<String> = std::fs::read_dir(dir.path().join("collections/g"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let segments = names
        .iter()
        .filter(|n| n.ends_with(".pdx") && n.starts_with("seg-"))
        .count();
    let graphs = names.iter().filter(|n| n.ends_with(".hnsw")).count();
    assert_eq!(segments, graphs, "{names:?}");
    assert!(recall(&col, &queries, None) >= 0.95);
}

#[test]
fn a_segment_compacted_alone_keeps_its_graph_minus_the_deleted_rows() {
    let dir = tempfile::tempdir().unwrap();
    let queries = clustered(40, 99, 1_000_000);
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.create_collection(config()).unwrap();
    col.upsert(clustered(3000, 1, 0)).unwrap();
    col.flush().unwrap();
    col.wait_for_indexes();
    assert_eq!(col.info().sealed_segments, 1);
    assert_eq!(col.maintenance_info().graphs_kept, 0);
    let victims: Vec<PointId> = (0..3000u64).step_by(4).map(PointId::Num).collect();
    col.delete(&victims).unwrap();
    col.flush().unwrap();
    let report = col.compact().unwrap();
    assert_eq!(report.rows_reclaimed, 750);
    // The new segment serves through the derived graph at once, with its graph file
    // written; nothing was queued for a build.
    assert_eq!(col.maintenance_info().graphs_kept, 1);
    assert_eq!(col.pending_index_builds(), 0);
    let graphs = std::fs::read_dir(dir.path().join("collections/g"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".hnsw")
        })
        .count();
    assert_eq!(graphs, 1);
    let dead: HashSet<PointId> = victims.into_iter().collect();
    for q in &queries {
        let hits = col
            .search(&SearchRequest::new(q.vector.clone(), 20))
            .unwrap();
        assert_eq!(hits.len(), 20);
        assert!(hits.iter().all(|h| !dead.contains(&h.id)));
    }
    let r = recall(&col, &queries, None);
    assert!(r >= 0.95, "recall {r}");
    // Reopen: the derived graph loads from its file.
    drop(col);
    drop(engine);
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.collection("g").unwrap();
    assert_eq!(col.pending_index_builds(), 0);
    assert_eq!(col.count(None).unwrap(), 2250);
    assert!(recall(&col, &queries, None) >= 0.95);
}

#[test]
fn a_damaged_graph_file_is_rebuilt_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open_with(dir.path(), options()).unwrap();
        let col = engine.create_collection(config()).unwrap();
        col.upsert(clustered(3000, 2, 0)).unwrap();
        col.wait_for_indexes();
    }
    let graph = std::fs::read_dir(dir.path().join("collections/g"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "hnsw"))
        .unwrap();
    let mut bytes = std::fs::read(&graph).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&graph, bytes).unwrap();
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.collection("g").unwrap();
    assert_eq!(col.count(None).unwrap(), 3000);
    col.wait_for_indexes();
    let queries = clustered(20, 7, 500_000);
    let r = recall(&col, &queries, None);
    assert!(r >= 0.95, "recall {r}");
}

#[test]
fn bad_index_parameters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let bad = CollectionConfig {
        index: IndexConfig::Hnsw(HnswConfig {
            m: 1,
            ..HnswConfig::default()
        }),
        ..CollectionConfig::new("bad", 4, Metric::L2)
    };
    let err = engine.create_collection(bad).unwrap_err().to_string();
    assert!(err.contains("m must be between 2 and 64, got 1"), "{err}");
    let col = engine
        .create_collection(CollectionConfig::new("ok", 4, Metric::L2))
        .unwrap();
    let mut req = SearchRequest::new(vec![1.0; 4], 3);
    req.params.ef = Some(0);
    assert!(col.search(&req).unwrap_err().to_string().contains("`ef`"));
}

#[test]
fn compressed_traversal_encodings_keep_recall_and_persist() {
    use paradox_engine::TraversalEncoding;
    for encoding in [
        TraversalEncoding::Sq8,
        TraversalEncoding::F16,
        TraversalEncoding::Bf16,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = CollectionConfig {
            index: IndexConfig::Hnsw(HnswConfig {
                m: 12,
                ef_construction: 100,
                ef_search: 64,
                encoding,
                rerank: 3,
            }),
            ..CollectionConfig::new("g", DIM, Metric::Cosine)
        };
        let queries = clustered(40, 99, 1_000_000);
        {
            let engine = Engine::open_with(dir.path(), options()).unwrap();
            let col = engine.create_collection(config).unwrap();
            col.upsert(clustered(3000, 1, 0)).unwrap();
            col.wait_for_indexes();
            let r = recall(&col, &queries, None);
            assert!(r >= 0.95, "{encoding:?}: recall {r}");
            let r = recall(&col, &queries, Some(Filter::eq("tag", "some")));
            assert!(r >= 0.95, "{encoding:?} filtered: recall {r}");
        }
        let engine = Engine::open_with(dir.path(), options()).unwrap();
        let col = engine.collection("g").unwrap();
        assert_eq!(
            col.pending_index_builds(),
            0,
            "{encoding:?}: graph and codes reload from the file"
        );
        assert!(recall(&col, &queries, None) >= 0.95);
    }
}

#[test]
fn snapshots_carry_graphs_so_a_restore_needs_no_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.create_collection(config()).unwrap();
    col.upsert(clustered(3000, 1, 0)).unwrap();
    col.wait_for_indexes();
    let file = dir.path().join("g.snap");
    engine.snapshot_collection("g", &file).unwrap();
    let restored = engine.restore_collection(&file, Some("copy")).unwrap();
    assert_eq!(
        restored.pending_index_builds(),
        0,
        "graph restored with the snapshot"
    );
    let queries = clustered(20, 5, 900_000);
    assert!(recall(&restored, &queries, None) >= 0.95);
}

#[test]
fn selective_payload_values_get_graphs_that_filtered_searches_walk() {
    let dir = tempfile::tempdir().unwrap();
    let options = paradox_engine::EngineOptions {
        seal_threshold: 12_000,
        ..options()
    };
    let queries = clustered(40, 99, 1_000_000);
    // `team` 7 on every 11th point (1,091 of 12,000: a graph), `tag` "some" (1,200 rows,
    // 10 %: at the limit, a graph), "rare" (120: too few rows), `bucket` (half: too many).
    let points: Vec<_> = clustered(12_000, 1, 0)
        .into_iter()
        .enumerate()
        .map(|(i, mut p)| {
            p.payload.insert(
                "team".into(),
                serde_json::json!(if i % 11 == 3 { 7 } else { 1 }),
            );
            p
        })
        .collect();
    let engine = Engine::open_with(dir.path(), options.clone()).unwrap();
    let col = engine.create_collection(config()).unwrap();
    for chunk in points.chunks(2000) {
        col.upsert(chunk.to_vec()).unwrap();
    }
    col.flush().unwrap();
    col.wait_for_indexes();
    assert_eq!(col.info().sealed_segments, 1);
    assert_eq!(col.info().payload_graphs, 2);
    let team = Filter::eq("team", 7);
    let filters = [
        ("team", team.clone()),
        ("some", Filter::eq("tag", "some")),
        // Nearly all of the team's rows pass: walked with the rest as the mask.
        (
            "team and not rare",
            Filter::And(vec![
                team.clone(),
                Filter::Not(Box::new(Filter::eq("tag", "rare"))),
            ]),
        ),
        // Half pass: scanned instead; the answers are the same either way.
        (
            "team and bucket",
            Filter::And(vec![team.clone(), Filter::eq("bucket", 0)]),
        ),
    ];
    for (name, filter) in &filters {
        let r = recall(&col, &queries, Some(filter.clone()));
        assert!(r >= 0.95, "{name}: recall {r}");
    }
    // Deleted rows of the value never come back from its graph.
    let victims: Vec<PointId> = (0..12_000u64)
        .filter(|i| i % 11 == 3 && i % 2 == 0)
        .take(50)
        .map(PointId::Num)
        .collect();
    col.delete(&victims).unwrap();
    let dead: HashSet<PointId> = victims.into_iter().collect();
    for q in &queries {
        let mut request = SearchRequest::new(q.vector.clone(), 20);
        request.filter = Some(team.clone());
        let hits = col.search(&request).unwrap();
        assert_eq!(hits.len(), 20);
        assert!(hits.iter().all(|h| !dead.contains(&h.id)));
    }
    assert!(recall(&col, &queries, Some(team.clone())) >= 0.95);
    // Most of a value's rows deleted: its live rows are scored exactly instead.
    let some = Filter::eq("tag", "some");
    let gone: Vec<PointId> = (0..12_000u64)
        .filter(|i| i % 10 == 1 && i % 11 != 3)
        .take(700)
        .map(PointId::Num)
        .collect();
    col.delete(&gone).unwrap();
    let gone: HashSet<PointId> = gone.into_iter().collect();
    for q in &queries {
        let mut request = SearchRequest::new(q.vector.clone(), 10);
        request.filter = Some(some.clone());
        let hits = col.search(&request).unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|h| !gone.contains(&h.id)));
    }
    assert!(recall(&col, &queries, Some(some)) >= 0.99);
    // Persisted with the graph: a reopen builds nothing and keeps them.
    drop(col);
    drop(engine);
    let engine = Engine::open_with(dir.path(), options).unwrap();
    let col = engine.collection("g").unwrap();
    assert_eq!(col.pending_index_builds(), 0);
    assert_eq!(col.info().payload_graphs, 2);
    // A compaction renumbers rows: the derived graph gets payload graphs of its own, by
    // the same rules on the rows left (11,250: "some" keeps 500 rows, too few; the team's
    // 1,041 still qualify).
    col.compact().unwrap();
    assert_eq!(col.maintenance_info().graphs_kept, 1);
    assert_eq!(col.info().payload_graphs, 1);
    for (name, filter) in &filters {
        let r = recall(&col, &queries, Some(filter.clone()));
        assert!(r >= 0.95, "{name} after compaction: recall {r}");
    }
}

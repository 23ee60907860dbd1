//! Sealed segments with IVF indexes (flat, PQ, SQ8 lists): background builds, persisted
//! inverted files, filters, deletes, snapshots and per-request `nprobe`.

mod common;

use common::{clustered, options, recall, DIM};
use paradox_engine::{
    CollectionConfig, Engine, Filter, IndexConfig, IvfConfig, Metric, PointId, SearchRequest,
};
use std::collections::HashSet;

/// An IVF variant of [`IndexConfig`].
type IvfKind = fn(IvfConfig) -> IndexConfig;

fn ivf(kind: IvfKind) -> CollectionConfig {
    CollectionConfig {
        index: kind(IvfConfig {
            nlist: 24,
            nprobe: 8,
            m: 4,
            rerank: 8,
            ..IvfConfig::default()
        }),
        ..CollectionConfig::new("v", DIM, Metric::Cosine)
    }
}

fn files_with(dir: &std::path::Path, suffix: &str) -> usize {
    std::fs::read_dir(dir.join("collections/v"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(suffix)
        })
        .count()
}

#[test]
fn every_ivf_kind_is_built_persisted_and_searched() {
    let kinds: [(&str, IvfKind); 5] = [
        ("ivf_flat", IndexConfig::IvfFlat),
        ("ivf_pq", IndexConfig::IvfPq),
        ("ivf_sq8", IndexConfig::IvfSq8),
        ("ivf_opq_pq", IndexConfig::IvfOpqPq),
        ("ivf_pq4", IndexConfig::IvfPq4),
    ];
    for (name, kind) in kinds {
        let dir = tempfile::tempdir().unwrap();
        let queries = clustered(40, 99, 1_000_000);
        {
            let engine = Engine::open_with(dir.path(), options()).unwrap();
            let mut config = ivf(kind);
            if name == "ivf_pq4" {
                // Half a byte per sub-quantiser: 16 of them (8 bytes) where PQ uses 4 bytes.
                config.index = kind(IvfConfig {
                    m: 16,
                    ..config.index.ivf().unwrap()
                });
            }
            let col = engine.create_collection(config).unwrap();
            assert_eq!(col.config().index.kind(), name);
            for chunk in clustered(6500, 1, 0).chunks(500) {
                col.upsert(chunk.to_vec()).unwrap();
            }
            col.wait_for_indexes();
            assert_eq!(files_with(dir.path(), ".ivf"), 2, "{name}");
            assert_eq!(files_with(dir.path(), ".hnsw"), 0, "{name}");
            let r = recall(&col, &queries, None);
            assert!(r >= 0.95, "{name}: recall {r}");
            for (label, filter) in [
                ("1%", Filter::eq("tag", "rare")),
                ("10%", Filter::eq("tag", "some")),
                ("50%", Filter::eq("bucket", 1)),
            ] {
                let r = recall(&col, &queries, Some(filter));
                assert!(r >= 0.95, "{name} filtered {label}: recall {r}");
            }
            // Deletes reach indexed segments.
            let victims: Vec<PointId> = (0..3000u64).step_by(3).map(PointId::Num).collect();
            col.delete(&victims).unwrap();
            let dead: HashSet<PointId> = victims.into_iter().collect();
            for q in &queries {
                let hits = col
                    .search(&SearchRequest::new(q.vector.clone(), 20))
                    .unwrap();
                assert!(hits.iter().all(|h| !dead.contains(&h.id)), "{name}");
            }
        }
        // Reopen: the inverted files load, nothing is rebuilt.
        let engine = Engine::open_with(dir.path(), options()).unwrap();
        let col = engine.collection("v").unwrap();
        assert_eq!(col.pending_index_builds(), 0, "{name}");
        let r = recall(&col, &queries, None);
        assert!(r >= 0.95, "{name} reopened: recall {r}");
        // Snapshots carry the inverted files: a restore needs no build either. (Sealing
        // the last 500 points first, so every segment has its file.)
        col.flush().unwrap();
        col.wait_for_indexes();
        let files = files_with(dir.path(), ".ivf");
        assert_eq!(files, 3, "{name}");
        let snap = dir.path().join("v.snapshot");
        engine.snapshot_collection("v", &snap).unwrap();
        engine.drop_collection("v").unwrap();
        engine.restore_collection(&snap, None).unwrap();
        let col = engine.collection("v").unwrap();
        assert_eq!(col.pending_index_builds(), 0, "{name} restored");
        assert_eq!(files_with(dir.path(), ".ivf"), files, "{name} restored");
        assert!(recall(&col, &queries, None) >= 0.95, "{name} restored");
    }
}

#[test]
fn nprobe_per_request_trades_recall_for_work() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.create_collection(ivf(IndexConfig::IvfFlat)).unwrap();
    col.upsert(clustered(3000, 3, 0)).unwrap();
    col.wait_for_indexes();
    let queries = clustered(30, 5, 1_000_000);
    let found = |nprobe| -> usize {
        queries
            .iter()
            .map(|q| {
                let mut req = SearchRequest::new(q.vector.clone(), 10);
                req.params.nprobe = Some(nprobe);
                col.search(&req).unwrap().len()
            })
            .sum()
    };
    // Every list visited: exact, so every query gets its 10.
    assert_eq!(found(24), 300);
    let mut req = SearchRequest::new(queries[0].vector.clone(), 10);
    req.params.nprobe = Some(0);
    let err = col.search(&req).unwrap_err().to_string();
    assert!(err.contains("`nprobe`"), "{err}");
}

#[test]
fn ivf_parameters_that_cannot_fit_the_dimension_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let config = CollectionConfig {
        index: IndexConfig::IvfPq(IvfConfig {
            m: 5,
            ..IvfConfig::default()
        }),
        ..CollectionConfig::new("bad", DIM, Metric::L2)
    };
    let err = engine.create_collection(config).unwrap_err().to_string();
    assert!(err.contains("pq m must divide the dimension 16"), "{err}");
    let json = r#"{"name":"j","dimension":16,"metric":"l2","index":{"kind":"ivf_sq8","nprobe":4}}"#;
    let parsed: CollectionConfig = serde_json::from_str(json).unwrap();
    assert_eq!(parsed.index.kind(), "ivf_sq8");
    assert_eq!(parsed.index.ivf().unwrap().nprobe, 4);
}

#[test]
fn the_index_kind_can_change_later_and_is_rebuilt_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let queries = clustered(30, 99, 1_000_000);
    {
        let engine = Engine::open_with(dir.path(), options()).unwrap();
        let col = engine
            .create_collection(CollectionConfig {
                index: IndexConfig::parse("hnsw").unwrap(),
                ..CollectionConfig::new("v", DIM, Metric::Cosine)
            })
            .unwrap();
        for chunk in clustered(6500, 1, 0).chunks(500) {
            col.upsert(chunk.to_vec()).unwrap();
        }
        col.wait_for_indexes();
        assert_eq!(files_with(dir.path(), ".hnsw"), 2);

        // hnsw -> ivf_pq: searches keep working during the rebuild, then use the new index.
        col.set_index_config(ivf(IndexConfig::IvfPq).index).unwrap();
        assert_eq!(col.config().index.kind(), "ivf_pq");
        assert_eq!(
            col.search(&SearchRequest::new(queries[0].vector.clone(), 10))
                .unwrap()
                .len(),
            10
        );
        col.wait_for_indexes();
        assert_eq!(files_with(dir.path(), ".ivf"), 2);
        assert_eq!(files_with(dir.path(), ".hnsw"), 0, "the old graphs go");
        let r = recall(&col, &queries, None);
        assert!(r >= 0.95, "after the switch: recall {r}");

        // A bad config is refused and changes nothing.
        let bad = IndexConfig::IvfPq(IvfConfig {
            m: 7,
            ..IvfConfig::default()
        });
        let err = col.set_index_config(bad).unwrap_err().to_string();
        assert!(err.contains("divide the dimension"), "{err}");
        assert_eq!(col.info().index.kind(), "ivf_pq");
    }
    // The change is persisted: reopening loads the inverted files, nothing is rebuilt.
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.collection("v").unwrap();
    assert_eq!(col.config().index.kind(), "ivf_pq");
    assert_eq!(col.pending_index_builds(), 0);

    // Search-time settings apply at once, without a rebuild.
    let mut narrow = ivf(IndexConfig::IvfPq).index.ivf().unwrap();
    narrow.nprobe = 1;
    col.set_index_config(IndexConfig::IvfPq(narrow)).unwrap();
    assert_eq!(col.pending_index_builds(), 0);
    let narrow_recall = recall(&col, &queries, None);
    narrow.nprobe = 24;
    col.set_index_config(IndexConfig::IvfPq(narrow)).unwrap();
    let wide_recall = recall(&col, &queries, None);
    assert!(
        wide_recall > narrow_recall,
        "nprobe 24 {wide_recall} vs 1 {narrow_recall}"
    );

    // -> flat: indexes are dropped, searches are exact.
    col.set_index_config(IndexConfig::Flat).unwrap();
    assert_eq!(files_with(dir.path(), ".ivf"), 0);
    assert_eq!(recall(&col, &queries, None), 1.0);
}

#[test]
fn ivf_codes_can_stay_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let queries = clustered(30, 99, 1_000_000);
    let on_disk = |flag| {
        let mut config = ivf(IndexConfig::IvfPq).index.ivf().unwrap();
        config.on_disk = flag;
        IndexConfig::IvfPq(config)
    };
    {
        let engine = Engine::open_with(dir.path(), options()).unwrap();
        let col = engine
            .create_collection(CollectionConfig {
                index: on_disk(true),
                ..CollectionConfig::new("v", DIM, Metric::Cosine)
            })
            .unwrap();
        for chunk in clustered(6500, 1, 0).chunks(500) {
            col.upsert(chunk.to_vec()).unwrap();
        }
        col.wait_for_indexes();
        let r = recall(&col, &queries, None);
        assert!(r >= 0.95, "on disk: recall {r}");
        // Switching the codes into RAM reloads the same files, no rebuild.
        col.set_index_config(on_disk(false)).unwrap();
        assert_eq!(col.pending_index_builds(), 0);
        assert!(recall(&col, &queries, None) >= r - 1e-9);
        col.set_index_config(on_disk(true)).unwrap();
    }
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.collection("v").unwrap();
    assert_eq!(col.pending_index_builds(), 0);
    assert!(col.index_config().ivf().unwrap().on_disk);
    assert!(recall(&col, &queries, None) >= 0.95);
}

#[test]
fn ivf_lists_page_into_a_cache_that_keeps_to_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let queries = clustered(30, 99, 1_000_000);
    let paged = |on_disk, cache_bytes| {
        let mut config = ivf(IndexConfig::IvfPq).index.ivf().unwrap();
        config.on_disk = on_disk;
        config.cache_bytes = cache_bytes;
        IndexConfig::IvfPq(config)
    };
    // 4-byte codes: 6,500 rows are 26,000 bytes of lists; 8 KiB holds about a third.
    let budget = 8 * 1024;
    {
        let engine = Engine::open_with(dir.path(), options()).unwrap();
        // A cache of lists read from disk needs the lists on disk.
        let err = engine
            .create_collection(CollectionConfig {
                index: paged(false, budget),
                ..CollectionConfig::new("v", DIM, Metric::Cosine)
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cache_bytes") && err.contains("on_disk"),
            "{err}"
        );
        let col = engine
            .create_collection(CollectionConfig {
                index: paged(true, budget),
                ..CollectionConfig::new("v", DIM, Metric::Cosine)
            })
            .unwrap();
        for chunk in clustered(6500, 1, 0).chunks(500) {
            col.upsert(chunk.to_vec()).unwrap();
        }
        col.wait_for_indexes();
        let r = recall(&col, &queries, None);
        assert!(r >= 0.95, "paged: recall {r}");
        let stats = col.info().ivf_list_cache.expect("a list cache");
        assert_eq!(stats.budget_bytes, budget);
        assert!(stats.misses > 0 && stats.read_bytes > 0, "{stats:?}");
        assert!(stats.resident_bytes <= budget, "{stats:?}");
        assert_eq!(stats.read_errors, 0);
        // The same queries again: some lists are found in the cache.
        assert_eq!(recall(&col, &queries, None), r);
        let again = col.info().ivf_list_cache.unwrap();
        assert!(again.hits > stats.hits, "{again:?}");
        assert!(again.resident_bytes <= budget, "{again:?}");

        // Mapped and RAM codes give the same answers; switching reloads the files.
        col.set_index_config(paged(true, 0)).unwrap();
        assert_eq!(col.pending_index_builds(), 0);
        assert!(col.info().ivf_list_cache.is_none());
        assert_eq!(recall(&col, &queries, None), r);
        col.set_index_config(paged(false, 0)).unwrap();
        assert_eq!(recall(&col, &queries, None), r);
        // A budget big enough for every list: after one pass, only hits.
        col.set_index_config(paged(true, 1 << 20)).unwrap();
        assert_eq!(col.pending_index_builds(), 0);
        assert_eq!(recall(&col, &queries, None), r);
        let warm = col.info().ivf_list_cache.unwrap();
        assert_eq!(recall(&col, &queries, None), r);
        let after = col.info().ivf_list_cache.unwrap();
        assert_eq!(after.misses, warm.misses, "{after:?}");
        assert!(after.hits > warm.hits);
    }
    // Reopened: the config (and its budget) comes back from the manifest, no rebuild.
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.collection("v").unwrap();
    assert_eq!(col.pending_index_builds(), 0);
    assert_eq!(col.index_config().ivf().unwrap().cache_bytes, 1 << 20);
    assert!(recall(&col, &queries, None) >= 0.95);
    assert!(col.info().ivf_list_cache.unwrap().misses > 0);
}

#[test]
fn batched_ivf_searches_match_searches_one_by_one() {
    for (name, kind, on_disk, cache_bytes) in [
        ("ivf_pq", IndexConfig::IvfPq as IvfKind, false, 0),
        ("ivf_sq8 on disk", IndexConfig::IvfSq8 as IvfKind, true, 0),
        (
            "ivf_opq_pq paged",
            IndexConfig::IvfOpqPq as IvfKind,
            true,
            4096,
        ),
        ("ivf_flat", IndexConfig::IvfFlat as IvfKind, false, 0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open_with(dir.path(), options()).unwrap();
        let mut config = ivf(kind);
        let mut params = config.index.ivf().unwrap();
        params.on_disk = on_disk;
        params.cache_bytes = cache_bytes;
        config.index = kind(params);
        let col = engine.create_collection(config).unwrap();
        for chunk in clustered(6500, 1, 0).chunks(500) {
            col.upsert(chunk.to_vec()).unwrap();
        }
        col.wait_for_indexes();
        assert_eq!(col.info().sealed_segments, 2);
        // The first segment is searched in groups by list; the second has a deleted row
        // (searched query by query); the growing segment exactly, with deletions.
        col.upsert(clustered(300, 5, 7_000_000)).unwrap();
        let mut gone: Vec<PointId> = (6000..6100u64).map(PointId::Num).collect();
        gone.push(PointId::Num(3500));
        col.delete(&gone).unwrap();
        let requests: Vec<SearchRequest> = clustered(90, 99, 1_000_000)
            .into_iter()
            .enumerate()
            .map(|(i, q)| SearchRequest::new(q.vector, 1 + i % 12))
            .collect();
        let batch = col.search_batch(&requests).unwrap();
        assert_eq!(batch.len(), requests.len());
        for (request, got) in requests.iter().zip(&batch) {
            let one = col.search(request).unwrap();
            let ids = |hits: &[paradox_engine::ScoredPoint]| {
                hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>()
            };
            assert_eq!(ids(got), ids(&one), "{name}");
            assert_eq!(got.len(), request.k, "{name}");
        }
    }
}

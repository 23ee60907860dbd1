//! Every acknowledged write is visible to readers at once and stays visible while
//! segments are sealed, indexed in the background and merged by compaction; deleted points
//! never come back. A writer, two readers and a maintenance thread run together.

use paradox_engine::{
    Collection, CollectionConfig, Engine, EngineOptions, FsyncPolicy, IndexConfig, IvfConfig,
    Metric, NewPoint, PointId, SearchRequest,
};
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const DIM: usize = 16;
const BATCHES: u64 = 120;
const BATCH: u64 = 100;

/// The vector of point `id`: deterministic, so readers can recompute it.
fn vector_of(id: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(id);
    (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// An engine sealing every 1,000 rows with one `ivf_flat` collection of 16 lists searched
/// with `nprobe`. (The engine is returned to keep it open.)
fn ivf_flat_collection(dir: &std::path::Path, nprobe: usize) -> (Engine, Arc<Collection>) {
    let engine = Engine::open_with(
        dir,
        EngineOptions {
            fsync: FsyncPolicy::Never,
            seal_threshold: 1000,
            parallel_threshold: 1024,
            ..Default::default()
        },
    )
    .unwrap();
    let config = CollectionConfig {
        index: IndexConfig::IvfFlat(IvfConfig {
            nlist: 16,
            nprobe,
            ..IvfConfig::default()
        }),
        ..CollectionConfig::new("live", DIM, Metric::L2)
    };
    let col = engine.create_collection(config).unwrap();
    (engine, col)
}

#[test]
fn acknowledged_writes_stay_visible_through_seals_builds_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    // IVF with flat lists: a point's own vector always lands in the first list probed,
    // so "searchable" can be checked exactly through the index as well.
    let (_engine, col) = ivf_flat_collection(dir.path(), 1);
    // `acked` = ids below it are acknowledged; ids ≡ 7 (mod 10) are deleted right after.
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let writer = {
        let (col, acked) = (col.clone(), acked.clone());
        std::thread::spawn(move || {
            for b in 0..BATCHES {
                let points: Vec<NewPoint> = (b * BATCH..(b + 1) * BATCH)
                    .map(|id| NewPoint::new(id, vector_of(id)))
                    .collect();
                col.upsert(points).unwrap();
                let dead: Vec<PointId> = (b * BATCH..(b + 1) * BATCH)
                    .filter(|id| id % 10 == 7)
                    .map(PointId::Num)
                    .collect();
                col.delete(&dead).unwrap();
                acked.store((b + 1) * BATCH, Ordering::SeqCst);
            }
        })
    };
    let maintenance = {
        let (col, done) = (col.clone(), done.clone());
        std::thread::spawn(move || {
            let mut rounds = 0;
            while !done.load(Ordering::SeqCst) {
                col.flush().unwrap();
                col.compact().unwrap();
                rounds += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            rounds
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|seed| {
            let (col, acked, done) = (col.clone(), acked.clone(), done.clone());
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let mut checks = 0u64;
                while !done.load(Ordering::SeqCst) {
                    let upto = acked.load(Ordering::SeqCst);
                    if upto == 0 {
                        continue;
                    }
                    // The newest acknowledged point and a random older one.
                    for id in [upto - 1, rng.random_range(0..upto)] {
                        let alive = id % 10 != 7;
                        let got = col.get(&[PointId::Num(id)]).unwrap();
                        assert_eq!(got[0].is_some(), alive, "get({id}) with {upto} acked");
                        let hits = col.search(&SearchRequest::new(vector_of(id), 3)).unwrap();
                        if alive {
                            assert_eq!(
                                hits.first().map(|h| h.id.clone()),
                                Some(PointId::Num(id)),
                                "search for point {id} ({upto} acked)"
                            );
                        } else {
                            assert!(
                                hits.iter().all(|h| h.id != PointId::Num(id)),
                                "deleted point {id} returned"
                            );
                        }
                        checks += 1;
                    }
                }
                checks
            })
        })
        .collect();

    writer.join().unwrap();
    col.wait_for_indexes();
    done.store(true, Ordering::SeqCst);
    let checks: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let rounds = maintenance.join().unwrap();
    assert!(checks > 100, "only {checks} reader checks ran");
    assert!(rounds > 0);
    let total = BATCHES * BATCH;
    assert_eq!(col.count(None).unwrap() as u64, total - total / 10);
    assert!(col.info().sealed_segments >= 1);
    // After everything settled, every live point is found through the indexes.
    for id in (0..total).step_by(37).filter(|id| id % 10 != 7) {
        let hits = col.search(&SearchRequest::new(vector_of(id), 1)).unwrap();
        assert_eq!(hits[0].id, PointId::Num(id));
    }
}

/// New points are appended while searches run, replacements wait for them: a search never
/// sees a replaced point twice or not at all, whether its rows are growing or sealed, while
/// a stream of new points goes in beside. Twenty "sentinel" points far from the rest are
/// moved back and forth between two vectors; every search near them must return exactly
/// the twenty, once each.
#[test]
fn replaced_points_are_never_seen_twice_or_missing_while_new_points_stream_in() {
    const SENTINELS: u64 = 20;
    const FIRST_SENTINEL: u64 = 1_000_000;
    let sentinel = |j: u64, round: u64| -> NewPoint {
        let mut v = vec![0.0f32; DIM];
        v[0] = 100.0 + j as f32 * 0.01;
        v[1] = if round.is_multiple_of(2) { 0.5 } else { -0.5 };
        NewPoint::new(FIRST_SENTINEL + j, v)
    };
    let dir = tempfile::tempdir().unwrap();
    // Every list probed: the default search is as complete as the exact one.
    let (_engine, col) = ivf_flat_collection(dir.path(), 16);
    col.upsert((0..SENTINELS).map(|j| sentinel(j, 0)).collect())
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let col = col.clone();
        std::thread::spawn(move || {
            for round in 1..=60u64 {
                // New points only (appended while searches run), then every sentinel moved
                // (a replacement: under the write lock).
                let fresh: Vec<NewPoint> = (round * BATCH..(round + 1) * BATCH)
                    .map(|id| NewPoint::new(id, vector_of(id)))
                    .collect();
                col.upsert(fresh).unwrap();
                col.upsert((0..SENTINELS).map(|j| sentinel(j, round)).collect())
                    .unwrap();
                if round.is_multiple_of(20) {
                    col.flush().unwrap();
                }
            }
        })
    };
    let readers: Vec<_> = [false, true]
        .into_iter()
        .map(|exact| {
            let (col, done) = (col.clone(), done.clone());
            std::thread::spawn(move || {
                let mut checks = 0u64;
                let mut query = vec![0.0f32; DIM];
                query[0] = 100.0;
                let mut request = SearchRequest::new(query, SENTINELS as usize);
                request.params.exact = exact;
                while !done.load(Ordering::SeqCst) {
                    let mut ids: Vec<PointId> = col
                        .search(&request)
                        .unwrap()
                        .into_iter()
                        .map(|h| h.id)
                        .collect();
                    ids.sort();
                    let expected: Vec<PointId> = (0..SENTINELS)
                        .map(|j| PointId::Num(FIRST_SENTINEL + j))
                        .collect();
                    assert_eq!(ids, expected, "search {checks} (exact: {exact})");
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    writer.join().unwrap();
    done.store(true, Ordering::SeqCst);
    for reader in readers {
        assert!(reader.join().unwrap() > 10);
    }
    assert_eq!(col.count(None).unwrap() as u64, SENTINELS + 60 * BATCH);
}

//! Background maintenance under load: writers upsert and delete without pause while the
//! worker seals the growing segment every couple of hundred rows, merges small segments
//! and compacts segments whose rows were replaced or deleted. Readers check all along that
//! every acknowledged write is visible (by `get` and by an exact search) and that deleted
//! points never come back; at the end a reopen must give the same contents.

use paradox_engine::{
    CollectionConfig, Engine, EngineOptions, FsyncPolicy, HnswConfig, IndexConfig, Metric,
    NewPoint, PointId, ScrollRequest, SearchParams, SearchRequest,
};
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const DIM: usize = 8;
const WRITERS: u64 = 2;
const IDS_PER_WRITER: u64 = 300;
const OPS_PER_WRITER: usize = 1500;

fn options() -> EngineOptions {
    EngineOptions {
        fsync: FsyncPolicy::Never,
        // A seal every 200 rows; tiers of ~16 KiB, so merges of merges happen too.
        seal_threshold: 200,
        seal_bytes: 16 << 10,
        merge_factor: 4,
        compact_deleted_fraction: 0.2,
        parallel_threshold: 256,
        ..Default::default()
    }
}

/// The vector of version `version` of point `id`.
fn vector_of(id: u64, version: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(id * 1_000_003 + version);
    (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Per id: `(changes << 32) | state`, `changes` odd while a write of it is in flight,
/// `state` = 0 when absent or deleted, else the acknowledged version + 1.
struct Slots(Vec<AtomicU64>);

impl Slots {
    fn begin(&self, id: u64) -> u64 {
        let slot = &self.0[id as usize];
        let now = slot.load(Ordering::SeqCst);
        slot.store(now + (1 << 32), Ordering::SeqCst);
        now
    }

    fn end(&self, id: u64, before: u64, state: u32) {
        self.0[id as usize].store(((before >> 32) + 2) << 32 | state as u64, Ordering::SeqCst);
    }
}

#[test]
fn readers_see_every_acknowledged_write_while_segments_are_sealed_merged_and_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let config = CollectionConfig {
        index: IndexConfig::Hnsw(HnswConfig {
            m: 8,
            ef_construction: 40,
            ..HnswConfig::default()
        }),
        ..CollectionConfig::new("live", DIM, Metric::L2)
    };
    let col = engine.create_collection(config).unwrap();
    let total_ids = WRITERS * IDS_PER_WRITER;
    let slots = Arc::new(Slots((0..total_ids).map(|_| AtomicU64::new(0)).collect()));
    let done = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (col, slots) = (col.clone(), slots.clone());
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(100 + w);
                let ids = w * IDS_PER_WRITER..(w + 1) * IDS_PER_WRITER;
                let mut version = vec![0u64; IDS_PER_WRITER as usize];
                for _ in 0..OPS_PER_WRITER {
                    let batch: Vec<u64> = {
                        let mut b: Vec<u64> = (0..rng.random_range(1..12))
                            .map(|_| rng.random_range(ids.clone()))
                            .collect();
                        b.sort_unstable();
                        b.dedup();
                        b
                    };
                    let before: Vec<u64> = batch.iter().map(|&id| slots.begin(id)).collect();
                    if rng.random_bool(0.2) {
                        let dead: Vec<PointId> = batch.iter().map(|&id| PointId::Num(id)).collect();
                        col.delete(&dead).unwrap();
                        for (&id, b) in batch.iter().zip(before) {
                            slots.end(id, b, 0);
                        }
                    } else {
                        let points: Vec<NewPoint> = batch
                            .iter()
                            .map(|&id| {
                                let v = &mut version[(id - ids.start) as usize];
                                *v += 1;
                                NewPoint::new(id, vector_of(id, *v))
                            })
                            .collect();
                        col.upsert(points).unwrap();
                        for (&id, b) in batch.iter().zip(before) {
                            let v = version[(id - ids.start) as usize];
                            slots.end(id, b, v as u32 + 1);
                        }
                    }
                }
            })
        })
        .collect();

    let readers: Vec<_> = (0..2u64)
        .map(|seed| {
            let (col, slots, done) = (col.clone(), slots.clone(), done.clone());
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let mut checks = 0u64;
                // `last` = the state this id last had when it was stable (for deleted
                // ids: which vector to search for).
                let mut last_version = vec![0u64; total_ids as usize];
                while !done.load(Ordering::SeqCst) {
                    let id = rng.random_range(0..total_ids);
                    let first = slots.0[id as usize].load(Ordering::SeqCst);
                    if (first >> 32) % 2 == 1 {
                        continue;
                    }
                    let state = first & 0xFFFF_FFFF;
                    if state > 0 {
                        last_version[id as usize] = state - 1;
                    }
                    let got = col.get(&[PointId::Num(id)]).unwrap().remove(0);
                    let probe = vector_of(id, last_version[id as usize].max(1));
                    let hits = col
                        .search(&SearchRequest {
                            params: SearchParams {
                                exact: true,
                                ..SearchParams::default()
                            },
                            ..SearchRequest::new(probe.clone(), 3)
                        })
                        .unwrap();
                    if slots.0[id as usize].load(Ordering::SeqCst) != first {
                        continue; // written meanwhile: nothing to assert
                    }
                    if state == 0 {
                        assert!(got.is_none(), "deleted or absent point {id} found by get");
                        assert!(
                            hits.iter().all(|h| h.id != PointId::Num(id)),
                            "deleted or absent point {id} returned by search"
                        );
                    } else {
                        let point =
                            got.unwrap_or_else(|| panic!("acknowledged point {id} missing"));
                        assert_eq!(point.vector, probe, "point {id} has a stale version");
                        assert_eq!(
                            hits.first().map(|h| (h.id.clone(), h.score)),
                            Some((PointId::Num(id), 0.0)),
                            "exact search misses acknowledged point {id}"
                        );
                    }
                    checks += 1;
                }
                checks
            })
        })
        .collect();

    for writer in writers {
        writer.join().unwrap();
    }
    col.wait_for_indexes();
    done.store(true, Ordering::SeqCst);
    let checks: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(checks > 1000, "only {checks} reader checks ran");

    let info = col.info();
    let work = &info.maintenance;
    assert!(work.worker, "{work:?}");
    assert!(work.seals >= 10, "too few seals: {work:?}");
    assert!(work.merges >= 1, "no merge ran: {work:?}");
    assert!(work.compactions >= 1, "no compaction ran: {work:?}");
    assert_eq!(
        work.queue_depth, 0,
        "work left after wait_for_indexes: {work:?}"
    );
    assert_eq!(work.last_error, None);
    // Merges keep the segment count down: at most factor − 1 per tier (a handful here).
    assert!(info.sealed_segments <= 12, "{info:?}");

    // Every point is what its writer last acknowledged.
    let contents = |col: &paradox_engine::Collection| {
        let mut points = Vec::new();
        let mut after = None;
        loop {
            let page = col
                .scroll(&ScrollRequest {
                    after,
                    limit: 1000,
                    with_vector: true,
                    ..ScrollRequest::default()
                })
                .unwrap();
            points.extend(page.points.into_iter().map(|p| (p.id, p.vector)));
            match page.next {
                Some(next) => after = Some(next),
                None => return points,
            }
        }
    };
    let expected: Vec<(PointId, Vec<f32>)> = (0..total_ids)
        .filter_map(|id| {
            let state = slots.0[id as usize].load(Ordering::SeqCst) & 0xFFFF_FFFF;
            (state > 0).then(|| (PointId::Num(id), vector_of(id, state - 1)))
        })
        .collect();
    let before = contents(&col);
    assert_eq!(before, expected);
    assert_eq!(col.count(None).unwrap(), expected.len());

    // A reopen (log replay over the persisted segments) gives the same contents.
    drop(col);
    drop(engine);
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.collection("live").unwrap();
    assert_eq!(contents(&col), expected);
    for (id, vector) in expected.iter().step_by(17) {
        let hits = col.search(&SearchRequest::new(vector.clone(), 1)).unwrap();
        assert_eq!(&hits[0].id, id);
    }
}

#[test]
fn without_a_worker_writers_seal_at_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(
        dir.path(),
        EngineOptions {
            fsync: FsyncPolicy::Never,
            seal_threshold: 100,
            ..Default::default()
        },
    )
    .unwrap();
    let col = engine
        .create_collection(CollectionConfig::new("c", DIM, Metric::L2))
        .unwrap();
    // Stop the worker: the growing segment then may not pass twice the threshold.
    col.stop_maintenance();
    for batch in 0..30u64 {
        let points: Vec<NewPoint> = (batch * 10..batch * 10 + 10)
            .map(|id| NewPoint::new(id, vector_of(id, 1)))
            .collect();
        col.upsert(points).unwrap();
        let info = col.info();
        assert!(
            info.growing_rows < 100,
            "no seal at the threshold: {info:?}"
        );
        assert!(!info.maintenance.worker);
    }
    assert_eq!(col.info().sealed_segments, 3);
    assert_eq!(col.count(None).unwrap(), 300);
}

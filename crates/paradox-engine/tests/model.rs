//! Model-based property test: random sequences of upserts, deletes, checkpoints,
//! compactions and reopens, checked after every step against a plain `HashMap` model
//! (gets, counts and exact top-k by brute force). Plus recovery after cutting the log at
//! every byte offset of its last record.

use paradox_engine::{
    CollectionConfig, Engine, EngineOptions, FsyncPolicy, Metric, NewPoint, PointId, SearchRequest,
};
use proptest::prelude::*;
use std::collections::HashMap;

const DIM: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Upsert(Vec<(u64, [i8; DIM])>),
    Delete(Vec<u64>),
    Flush,
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec((0u64..40, any::<[i8; DIM]>()), 1..12).prop_map(|mut v| {
            v.sort_by_key(|p| p.0);
            v.dedup_by_key(|p| p.0);
            Op::Upsert(v)
        }),
        2 => proptest::collection::vec(0u64..40, 1..6).prop_map(Op::Delete),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

fn vector(v: &[i8; DIM]) -> Vec<f32> {
    v.iter().map(|&x| x as f32 / 16.0).collect()
}

fn open(dir: &std::path::Path) -> Engine {
    Engine::open_with(
        dir,
        EngineOptions {
            fsync: FsyncPolicy::Never,
            seal_threshold: 16,
            parallel_threshold: 8,
            ..Default::default()
        },
    )
    .unwrap()
}

fn check(engine: &Engine, model: &HashMap<u64, Vec<f32>>) -> Result<(), TestCaseError> {
    let col = engine.collection("m").unwrap();
    prop_assert_eq!(col.count(None).unwrap(), model.len());
    let ids: Vec<PointId> = (0..40).map(PointId::Num).collect();
    for (id, got) in ids.iter().zip(col.get(&ids).unwrap()) {
        let PointId::Num(n) = id else { unreachable!() };
        prop_assert_eq!(got.map(|p| p.vector), model.get(n).cloned(), "id {}", n);
    }
    let query = vec![0.3, -0.2, 0.1, 0.05];
    let hits = col.search(&SearchRequest::new(query.clone(), 5)).unwrap();
    let mut want: Vec<f32> = model
        .values()
        .map(|v| paradox_kernels::l2_squared(&query, v))
        .collect();
    want.sort_by(f32::total_cmp);
    want.truncate(5);
    let got: Vec<f32> = hits.iter().map(|h| h.score).collect();
    prop_assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        prop_assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{} vs {}", g, w);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_a_hashmap_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = open(dir.path());
        engine.create_collection(CollectionConfig::new("m", DIM, Metric::L2)).unwrap();
        let mut model: HashMap<u64, Vec<f32>> = HashMap::new();
        for op in ops {
            let col = engine.collection("m").unwrap();
            match op {
                Op::Upsert(points) => {
                    col.upsert(points.iter().map(|(id, v)| NewPoint::new(*id, vector(v))).collect()).unwrap();
                    for (id, v) in points {
                        model.insert(id, vector(&v));
                    }
                }
                Op::Delete(ids) => {
                    let ids_p: Vec<PointId> = ids.iter().map(|&i| i.into()).collect();
                    let existing = ids.iter().filter(|i| model.contains_key(i)).collect::<std::collections::HashSet<_>>().len();
                    prop_assert_eq!(col.delete(&ids_p).unwrap().count, existing);
                    for id in ids {
                        model.remove(&id);
                    }
                }
                Op::Flush => col.flush().unwrap(),
                Op::Compact => {
                    col.compact().unwrap();
                }
                Op::Reopen => {
                    drop(col);
                    drop(engine);
                    engine = open(dir.path());
                }
            }
            check(&engine, &model)?;
        }
    }
}

/// Cutting the log anywhere inside its last record loses exactly that record.
#[test]
fn log_cut_at_every_offset_of_the_last_record_recovers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open_with(
            dir.path(),
            EngineOptions {
                fsync: FsyncPolicy::Never,
                seal_threshold: 1000,
                parallel_threshold: 8,
                ..Default::default()
            },
        )
        .unwrap();
        let col = engine
            .create_collection(CollectionConfig::new("m", DIM, Metric::L2))
            .unwrap();
        col.upsert(
            (0..10u64)
                .map(|i| NewPoint::new(i, vec![i as f32; DIM]))
                .collect(),
        )
        .unwrap();
        col.upsert(vec![NewPoint::new(99u64, vec![9.0; DIM])])
            .unwrap();
    }
    let wal_dir = dir.path().join("collections/m/wal");
    let log = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let full = std::fs::read(&log).unwrap();
    // The last record is the single-point upsert: find its length by re-encoding size.
    let last_record_len = {
        let engine_len_with_one = full.len();
        let copy = tempfile::tempdir().unwrap();
        {
            let e = Engine::open_with(
                copy.path(),
                EngineOptions {
                    fsync: FsyncPolicy::Never,
                    seal_threshold: 1000,
                    parallel_threshold: 8,
                    ..Default::default()
                },
            )
            .unwrap();
            let c = e
                .create_collection(CollectionConfig::new("m", DIM, Metric::L2))
                .unwrap();
            c.upsert(
                (0..10u64)
                    .map(|i| NewPoint::new(i, vec![i as f32; DIM]))
                    .collect(),
            )
            .unwrap();
        }
        let other = std::fs::read_dir(copy.path().join("collections/m/wal"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .max()
            .unwrap();
        engine_len_with_one - std::fs::metadata(other).unwrap().len() as usize
    };
    assert!(last_record_len > 20);
    for cut in (full.len() - last_record_len)..full.len() {
        let scratch = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), scratch.path());
        let target = scratch
            .path()
            .join("collections/m/wal")
            .join(log.file_name().unwrap());
        std::fs::write(&target, &full[..cut]).unwrap();
        let engine = Engine::open_with(
            scratch.path(),
            EngineOptions {
                fsync: FsyncPolicy::Never,
                seal_threshold: 1000,
                parallel_threshold: 8,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let col = engine.collection("m").unwrap();
        assert_eq!(col.count(None).unwrap(), 10, "cut at {cut}");
        assert!(col.get(&[99u64.into()]).unwrap()[0].is_none());
        // The log keeps working after the cut.
        col.upsert(vec![NewPoint::new(100u64, vec![1.0; DIM])])
            .unwrap();
        drop(col);
        drop(engine);
        let engine = Engine::open_with(scratch.path(), EngineOptions::default()).unwrap();
        assert_eq!(
            engine.collection("m").unwrap().count(None).unwrap(),
            11,
            "cut at {cut}, after reopen"
        );
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&entry.path(), &dest);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

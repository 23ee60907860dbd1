//! Collections keeping history: every past version with its time span, as-of searches
//! that see the memory as it was, across seals, indexes, compaction, restarts, log replay
//! and snapshots.

use paradox_engine::{
    CollectionConfig, Engine, EngineOptions, Filter, FsyncPolicy, HnswConfig, IndexConfig, Metric,
    NewPoint, PointId, SearchParams, SearchRequest,
};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DIM: usize = 8;

fn options() -> EngineOptions {
    EngineOptions {
        fsync: FsyncPolicy::Never,
        seal_threshold: 150,
        parallel_threshold: 1024,
        ..Default::default()
    }
}

fn config(history: bool) -> CollectionConfig {
    CollectionConfig {
        history,
        index: IndexConfig::Hnsw(HnswConfig::default()),
        ..CollectionConfig::new("h", DIM, Metric::L2)
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A time after every write so far and before every later one.
fn boundary() -> i64 {
    let t = now();
    while now() <= t {
        std::thread::sleep(Duration::from_millis(1));
    }
    t
}

fn as_of(vector: &[f32], k: usize, t: i64, exact: bool) -> SearchRequest {
    SearchRequest {
        as_of: Some(t),
        with_vector: true,
        params: SearchParams {
            exact,
            ..Default::default()
        },
        ..SearchRequest::new(vector.to_vec(), k)
    }
}

#[test]
fn versions_and_as_of_search_follow_one_point_through_its_life() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.create_collection(config(true)).unwrap();
    let id = PointId::Num(1);
    let before = boundary();
    col.upsert(vec![NewPoint::new(1u64, vec![1.0; DIM])])
        .unwrap();
    let t1 = boundary();
    col.upsert(vec![NewPoint::new(1u64, vec![2.0; DIM])])
        .unwrap();
    let t2 = boundary();
    col.delete(std::slice::from_ref(&id)).unwrap();
    let t3 = boundary();

    let versions = col.history(&id).unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[0].point.vector, vec![1.0; DIM]);
    assert_eq!(versions[1].point.vector, vec![2.0; DIM]);
    assert_eq!(versions[0].valid_to, Some(versions[1].point.updated_at));
    assert!(versions[1]
        .valid_to
        .is_some_and(|end| end > t2 - 1 && end <= t3));
    assert!(col.get(std::slice::from_ref(&id)).unwrap()[0].is_none());

    let query = vec![0.0; DIM];
    for exact in [true, false] {
        let hits = |t| col.search(&as_of(&query, 5, t, exact)).unwrap();
        assert!(hits(before).is_empty());
        assert_eq!(hits(t1)[0].vector.as_deref(), Some(&[1.0; DIM][..]));
        assert_eq!(hits(t2)[0].vector.as_deref(), Some(&[2.0; DIM][..]));
        assert!(hits(t3).is_empty());
    }
    assert!(col
        .search(&SearchRequest::new(query, 5))
        .unwrap()
        .is_empty());
}

#[test]
fn collections_without_history_refuse_history_questions_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.create_collection(config(false)).unwrap();
    col.upsert(vec![NewPoint::new(1u64, vec![1.0; DIM])])
        .unwrap();
    let error = col
        .search(&as_of(&[0.0; DIM], 1, now(), false))
        .unwrap_err();
    assert!(error.to_string().contains("as_of"), "{error}");
    assert!(error.to_string().contains("history"), "{error}");
    let error = col.history(&PointId::Num(1)).unwrap_err();
    assert!(error.to_string().contains("history"), "{error}");
}

/// The state after each round, kept by the test: id -> vector.
type Model = HashMap<u64, Vec<f32>>;

fn exact_top(model: &Model, query: &[f32], k: usize) -> Vec<u64> {
    exact_top_where(model, query, k, |_| true)
}

/// A point's payload: `{"pos": first coordinate > 0}`, so it changes with its vector.
fn payload_of(vector: &[f32]) -> paradox_engine::Payload {
    let mut payload = paradox_engine::Payload::new();
    payload.insert("pos".into(), (vector[0] > 0.0).into());
    payload
}

fn exact_top_where(
    model: &Model,
    query: &[f32],
    k: usize,
    keep: impl Fn(&[f32]) -> bool,
) -> Vec<u64> {
    let mut all: Vec<(f32, u64)> = model
        .iter()
        .filter(|(_, v)| keep(v))
        .map(|(id, v)| {
            let d = v.iter().zip(query).map(|(a, b)| (a - b) * (a - b)).sum();
            (d, *id)
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|(_, id)| id).collect()
}

fn ids(hits: &[paradox_engine::ScoredPoint]) -> Vec<u64> {
    hits.iter()
        .map(|h| match h.id {
            PointId::Num(n) => n,
            PointId::Str(_) => unreachable!("numeric ids only"),
        })
        .collect()
}

/// Rounds of random upserts, rewrites and deletes, with seals, compaction and a restart
/// between them; at every round's end time the as-of search must equal brute force
/// over the model of that round.
#[test]
fn as_of_searches_match_a_model_of_every_past_round() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut model = Model::new();
    let mut rounds: Vec<(i64, Model)> = Vec::new();
    let queries: Vec<Vec<f32>> = (0..12)
        .map(|_| (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    let check = |col: &paradox_engine::Collection, rounds: &[(i64, Model)]| {
        for (t, state) in rounds {
            for q in &queries {
                let hits = col.search(&as_of(q, 10, *t, true)).unwrap();
                assert_eq!(ids(&hits), exact_top(state, q, 10), "as of {t}");
                for hit in &hits {
                    let PointId::Num(n) = hit.id else {
                        unreachable!()
                    };
                    assert_eq!(hit.vector.as_deref(), Some(&state[&n][..]));
                }
                // With a filter on the payload of the version current at `t` (sealed
                // segments answer it from their payload index, the rest row by row).
                for pos in [true, false] {
                    let filtered = SearchRequest {
                        filter: Some(Filter::eq("pos", pos)),
                        ..as_of(q, 10, *t, true)
                    };
                    let hits = col.search(&filtered).unwrap();
                    let truth = exact_top_where(state, q, 10, |v| (v[0] > 0.0) == pos);
                    assert_eq!(ids(&hits), truth, "as of {t}, pos = {pos}");
                }
            }
        }
    };
    for phase in 0..3 {
        let engine = Engine::open_with(dir.path(), options()).unwrap();
        let col = match engine.collection("h") {
            Ok(col) => col,
            Err(_) => engine.create_collection(config(true)).unwrap(),
        };
        // Everything recorded before the restart reads back the same.
        check(&col, &rounds);
        for round in 0..4 {
            let mut points = Vec::new();
            for _ in 0..60 {
                let id = rng.random_range(0..120u64);
                if points.iter().any(|p: &NewPoint| p.id == PointId::Num(id)) {
                    continue;
                }
                let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                model.insert(id, v.clone());
                points.push(NewPoint::new(id, v.clone()).with_payload(payload_of(&v)));
            }
            col.upsert(points).unwrap();
            let dead: Vec<u64> = (0..10).map(|_| rng.random_range(0..120u64)).collect();
            let dead_ids: Vec<PointId> = dead.iter().map(|&id| PointId::Num(id)).collect();
            col.delete(&dead_ids).unwrap();
            for id in dead {
                model.remove(&id);
            }
            rounds.push((boundary(), model.clone()));
            match (phase + round) % 3 {
                0 => col.flush().unwrap(),
                1 => {
                    col.compact().unwrap();
                }
                _ => {}
            }
        }
        col.wait_for_indexes();
        check(&col, &rounds);
        // Approximate (through the graphs) agrees closely with exact.
        let (t, state) = rounds.last().unwrap();
        let mut found = 0;
        for q in &queries {
            let hits = col.search(&as_of(q, 10, *t, false)).unwrap();
            let truth = exact_top(state, q, 10);
            found += ids(&hits).iter().filter(|id| truth.contains(id)).count();
        }
        assert!(found as f64 >= 0.9 * 10.0 * queries.len() as f64, "{found}");
        // The same with a filter, at the latest round and at the first (where the
        // version times exclude most rows the filter's set holds).
        for (t, state) in [rounds.last().unwrap(), &rounds[0]] {
            let (mut found, mut wanted) = (0, 0);
            for q in &queries {
                let filtered = SearchRequest {
                    filter: Some(Filter::eq("pos", true)),
                    ..as_of(q, 10, *t, false)
                };
                let hits = col.search(&filtered).unwrap();
                let truth = exact_top_where(state, q, 10, |v| v[0] > 0.0);
                assert!(ids(&hits).iter().all(|id| state[id][0] > 0.0));
                found += ids(&hits).iter().filter(|id| truth.contains(id)).count();
                wanted += truth.len();
            }
            assert!(found as f64 >= 0.9 * wanted as f64, "{found} of {wanted}");
        }
        // Phase 1 ends without a flush: the last rounds come back by log replay.
    }

    // A snapshot carries the history.
    let engine = Engine::open_with(dir.path(), options()).unwrap();
    let col = engine.collection("h").unwrap();
    let file = dir.path().join("h.snap");
    engine.snapshot_collection("h", &file).unwrap();
    drop(col);
    let other = tempfile::tempdir().unwrap();
    let restored_engine = Engine::open_with(other.path(), options()).unwrap();
    let restored = restored_engine
        .restore_collection(&file, Some("h"))
        .unwrap();
    check(&restored, &rounds);
}

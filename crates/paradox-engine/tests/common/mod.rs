//! Helpers shared by the index integration tests: options with a small seal threshold,
//! clustered points with filterable payloads, and recall against exact search.

use paradox_engine::{
    payload, EngineOptions, Filter, FsyncPolicy, NewPoint, PointId, SearchParams, SearchRequest,
};
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::HashSet;

pub const DIM: usize = 16;

pub fn options() -> EngineOptions {
    EngineOptions {
        fsync: FsyncPolicy::Never,
        seal_threshold: 3000,
        parallel_threshold: 1024,
        // These tests count segments and index files: seal inline, exactly at the
        // threshold (tests/maintenance.rs covers the worker).
        maintenance_worker: false,
        ..Default::default()
    }
}

pub fn clustered(n: usize, seed: u64, id_start: u64) -> Vec<NewPoint> {
    // One fixed set of centres: data and queries come from the same mixture.
    let mut centre_rng = rand::rngs::StdRng::seed_from_u64(0xC3A7);
    let centres: Vec<Vec<f32>> = (0..12)
        .map(|_| {
            (0..DIM)
                .map(|_| centre_rng.random_range(-1.0f32..1.0))
                .collect()
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let c = &centres[rng.random_range(0..centres.len())];
            let v: Vec<f32> = c
                .iter()
                .map(|x| x + rng.random_range(-0.3f32..0.3))
                .collect();
            // tag: 1% -> "rare", 10% -> "some", else "common"; bucket: i % 2 (50%)
            let tag = if i % 100 == 0 {
                "rare"
            } else if i % 10 == 1 {
                "some"
            } else {
                "common"
            };
            NewPoint::new(id_start + i as u64, v)
                .with_payload(payload(json!({"tag": tag, "bucket": i % 2})))
        })
        .collect()
}

pub fn recall(
    col: &paradox_engine::Collection,
    queries: &[NewPoint],
    filter: Option<Filter>,
) -> f64 {
    let mut hit = 0;
    let mut total = 0;
    for q in queries {
        let mut exact = SearchRequest::new(q.vector.clone(), 10);
        exact.filter = filter.clone();
        exact.params = SearchParams {
            exact: true,
            ..Default::default()
        };
        let truth: HashSet<PointId> = col
            .search(&exact)
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect();
        let mut approx = SearchRequest::new(q.vector.clone(), 10);
        approx.filter = filter.clone();
        let got = col.search(&approx).unwrap();
        if let Some(f) = &filter {
            let ids: Vec<PointId> = got.iter().map(|h| h.id.clone()).collect();
            for p in col.get(&ids).unwrap().into_iter().flatten() {
                assert!(f.matches(&p.payload), "a hit does not match the filter");
            }
        }
        hit += got.iter().filter(|h| truth.contains(&h.id)).count();
        total += truth.len();
    }
    hit as f64 / total.max(1) as f64
}

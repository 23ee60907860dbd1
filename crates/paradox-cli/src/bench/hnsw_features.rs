//! `paradox bench hnsw-features`: the HNSW capabilities beyond the plain recall/QPS curve,
//! on one data set, in one run:
//!
//! * compressed traversal (SQ8, f16) with exact re-rank vs f32: recall@10, single-thread
//!   QPS and bytes of traversal vectors;
//! * filtered search through the engine at 1%, 10% and 50% selectivity: recall@10 and QPS
//!   against an exact scan of only the matching points (the baseline the issue names),
//!   both over a copy of them gathered beforehand and reading them in place (at 1% and
//!   10% the three take turns three times and each keeps its fastest round);
//! * real deletes: delete 30% of an index, repair, insert as many new points, and compare
//!   recall at a fixed `ef` with a fresh build over the same final set.

use super::check_dims;
use crate::formats::{read_vectors, Matrix};
use crate::store::MetricArg;
use anyhow::Result;
use clap::Args;
use paradox_engine::{
    payload, CollectionConfig, Engine, EngineOptions, Filter, FsyncPolicy, HnswConfig, IndexConfig,
    NewPoint, PointId, SearchParams, SearchRequest,
};
use paradox_index::{
    search_encoded, EncodedVectors, FlatIndex, HnswIndex, HnswParams, Metric, TopK, VectorEncoding,
    VectorIndex, VectorView,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

/// `paradox bench hnsw-features` flags.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints {\"op\":\"hnsw_features\",\"encodings\":[...],\"filters\":[...],\"deletes\":{...}}.\n\n\
Example:\n    paradox bench hnsw-features --base base.npy --queries q.npy --metric cosine"
)]
pub struct HnswFeaturesArgs {
    /// Base vectors (.npy or .fvecs).
    #[arg(long, value_name = "FILE")]
    pub base: PathBuf,
    /// Query vectors (.npy or .fvecs).
    #[arg(long, value_name = "FILE")]
    pub queries: PathBuf,
    /// Metric (cosine normalises base and queries first).
    #[arg(long, value_enum, default_value = "l2")]
    pub metric: MetricArg,
    /// Links per node on upper levels.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// Beam width while building.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Beam widths for the encoding curves, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,24,32,48,64,96,128")]
    pub ef: Vec<usize>,
    /// Re-rank factor of the compressed encodings: the best `rerank × 10` candidates of
    /// the traversal (which widens its beam to at least that) are scored exactly.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rerank: u32,
    /// Fixed beam width for the filter and delete experiments.
    #[arg(long, default_value_t = 64)]
    pub fixed_ef: usize,
    /// Which experiments to run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "encodings,filters,deletes"
    )]
    pub parts: Vec<String>,
    /// Queries used (at most this many from the file).
    #[arg(long, default_value_t = 1000)]
    pub max_queries: usize,
}

const K: usize = 10;
/// Rounds of the filtered comparison (each side keeps its fastest) for filters matching
/// at most 1 in [`FILTER_ROUNDS_FROM_MODULO`] rows; broader ones (whose scans are slow
/// and whose ratios are large) get one.
const FILTER_ROUNDS: usize = 3;
const FILTER_ROUNDS_FROM_MODULO: usize = 10;

fn normalise(matrix: &mut Matrix) {
    for row in matrix.data.chunks_exact_mut(matrix.dim) {
        paradox_kernels::normalize(row);
    }
}

fn exact_top(
    view: VectorView<'_>,
    q: &[f32],
    allow: Option<&(dyn Fn(u32) -> bool + Sync)>,
) -> Vec<u64> {
    FlatIndex
        .search(view, q, K, allow, &Default::default())
        .iter()
        .map(|n| n.key)
        .collect()
}

fn recall(got: &[u64], truth: &[u64]) -> f64 {
    got.iter().filter(|g| truth.contains(g)).count() as f64 / truth.len().max(1) as f64
}

/// Timed passes over the queries per point of a curve; the fastest counts.
const TIMED_PASSES: usize = 3;

/// Runs `f` over the queries on this thread (untimed over the first 100, then
/// [`TIMED_PASSES`] timed passes); returns (mean recall, QPS of the fastest pass).
fn timed(
    queries: &Matrix,
    truth: &[Vec<u64>],
    mut f: impl FnMut(&[f32]) -> Vec<u64>,
) -> (f64, f64) {
    // A warm-up pass over the first queries, then the fastest of `TIMED_PASSES` passes
    // (searches are deterministic: every pass returns the same results).
    for i in 0..queries.rows.min(100) {
        std::hint::black_box(f(queries.row(i)));
    }
    let mut seconds = f64::INFINITY;
    let mut results = Vec::new();
    for _ in 0..TIMED_PASSES {
        let start = Instant::now();
        results = (0..queries.rows).map(|i| f(queries.row(i))).collect();
        seconds = seconds.min(start.elapsed().as_secs_f64());
    }
    let r = results
        .iter()
        .zip(truth)
        .map(|(g, t)| recall(g, t))
        .sum::<f64>()
        / queries.rows as f64;
    (r, queries.rows as f64 / seconds)
}

/// Runs the benchmark.
pub fn run(args: HnswFeaturesArgs) -> Result<Value> {
    let metric = args.metric.metric();
    let mut base = read_vectors(&args.base)?;
    let mut queries = read_vectors(&args.queries)?;
    check_dims(&base, &queries)?;
    queries.rows = queries.rows.min(args.max_queries);
    queries.data.truncate(queries.rows * queries.dim);
    if metric.normalizes() {
        normalise(&mut base);
        normalise(&mut queries);
    }
    let dim = base.dim;
    let params = HnswParams {
        m: args.m,
        ef_construction: args.ef_construction,
        ..Default::default()
    };
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let view = VectorView {
        data: &base.data,
        dim,
        metric,
    };
    let part = |name: &str| args.parts.iter().any(|p| p == name);

    // Over the whole base: only the encodings part needs it (filters and deletes have
    // their own, over the rows they search).
    let truth: Vec<Vec<u64>> = if part("encodings") {
        eprintln!(
            "hnsw-features: exact ground truth for {} queries",
            queries.rows
        );
        (0..queries.rows)
            .map(|i| exact_top(view, queries.row(i), None))
            .collect()
    } else {
        Vec::new()
    };
    eprintln!(
        "hnsw-features: building the graph over {} x {dim}",
        base.rows
    );
    // 1. Encodings.
    let mut encodings = Vec::new();
    let wanted: &[VectorEncoding] = if part("encodings") {
        &[
            VectorEncoding::F32,
            VectorEncoding::Sq8,
            VectorEncoding::F16,
        ]
    } else {
        &[]
    };
    let index = HnswIndex::build(
        if wanted.is_empty() {
            VectorView {
                data: &[],
                dim,
                metric,
            }
        } else {
            view
        },
        params,
    );
    for &encoding in wanted {
        let encoded =
            (encoding != VectorEncoding::F32).then(|| EncodedVectors::encode(view, encoding));
        let traversal_bytes = encoded
            .as_ref()
            .map_or(base.data.len() * 4, |e| e.memory_bytes());
        let mut curve = Vec::new();
        for &ef in &args.ef {
            let (r, qps) = one_thread.install(|| {
                timed(&queries, &truth, |q| {
                    let hits = match &encoded {
                        Some(e) => {
                            search_encoded(&index, e, view, q, K, ef, args.rerank as usize, None)
                        }
                        None => index.search(
                            view,
                            q,
                            K,
                            None,
                            &paradox_index::SearchParams {
                                ef: Some(ef),
                                nprobe: None,
                                ..Default::default()
                            },
                        ),
                    };
                    hits.iter().map(|n| n.key).collect()
                })
            });
            curve.push(json!({"ef": ef, "recall_at_10": r, "qps_1thread": qps}));
        }
        eprintln!("hnsw-features: encoding {} done", encoding.as_str());
        encodings.push(json!({
            "encoding": encoding.as_str(), "rerank": if encoding == VectorEncoding::F32 { 1 } else { args.rerank },
            "traversal_bytes": traversal_bytes,
            "traversal_bytes_per_vector": traversal_bytes as f64 / base.rows as f64,
            "curve": curve,
        }));
    }

    // 2. Filtered search through the engine.
    let filters = if part("filters") {
        filtered(&args, &base, &queries, metric)?
    } else {
        vec![]
    };

    // 3. Deletes: build on the first part, delete 30%, repair, insert as many new rows.
    let deletes = if part("deletes") {
        deletes(&base, &queries, metric, params, args.fixed_ef)
    } else {
        Value::Null
    };

    Ok(json!({
        "op": "hnsw_features",
        "n": base.rows, "dim": dim, "metric": metric.as_str(), "m": args.m,
        "ef_construction": args.ef_construction, "nq": queries.rows,
        "simd": paradox_kernels::simd_level(),
        "encodings": encodings, "filters": filters, "deletes": deletes,
    }))
}

fn filtered(
    args: &HnswFeaturesArgs,
    base: &Matrix,
    queries: &Matrix,
    metric: Metric,
) -> Result<Vec<Value>> {
    let dir = tempfile::tempdir()?;
    let options = EngineOptions {
        fsync: FsyncPolicy::Never,
        seal_threshold: base.rows,
        // One sealed segment, as the comparison assumes: no seal by log bytes first.
        seal_bytes: usize::MAX,
        ..Default::default()
    };
    let engine = Engine::open_with(dir.path(), options)?;
    let hnsw = HnswConfig {
        m: args.m,
        ef_construction: args.ef_construction,
        ..HnswConfig::default()
    };
    let collection = engine.create_collection(CollectionConfig {
        index: IndexConfig::Hnsw(hnsw),
        ..CollectionConfig::new("features", base.dim, metric)
    })?;
    eprintln!("hnsw-features: loading the engine collection (one sealed segment)");
    for first in (0..base.rows).step_by(10_000) {
        let last = (first + 10_000).min(base.rows);
        let points = (first..last)
            .map(|r| {
                NewPoint::new(r as u64, base.row(r).to_vec()).with_payload(payload(
                    json!({"p1": r % 100 == 0, "p10": r % 10 == 0, "p50": r % 2 == 0}),
                ))
            })
            .collect();
        collection.upsert(points)?;
    }
    collection.flush()?;
    collection.wait_for_indexes();
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let base_view = VectorView {
        data: &base.data,
        dim: base.dim,
        metric,
    };
    let mut out = Vec::new();
    for (name, key, modulo) in [
        ("1%", "p1", 100usize),
        ("10%", "p10", 10),
        ("50%", "p50", 2),
    ] {
        let filter = Filter::eq(key, true);
        // The baseline: an exact scan of only the matching points, already gathered.
        let matching: Vec<usize> = (0..base.rows).filter(|r| r % modulo == 0).collect();
        let gathered: Vec<f32> = matching
            .iter()
            .flat_map(|&r| base.row(r).iter().copied())
            .collect();
        let gathered_view = VectorView {
            data: &gathered,
            dim: base.dim,
            metric,
        };
        let gathered_scan = |q: &[f32]| -> Vec<u64> {
            exact_top(gathered_view, q, None)
                .iter()
                .map(|&j| matching[j as usize] as u64)
                .collect()
        };
        let truth: Vec<Vec<u64>> = (0..queries.rows)
            .map(|i| gathered_scan(queries.row(i)))
            .collect();
        // The same scan reading the matching rows where they are stored (the list of
        // rows given for free): what a search without an index over the matches costs.
        let rows: Vec<u32> = matching.iter().map(|&r| r as u32).collect();
        let in_place_scan = |q: &[f32]| -> Vec<u64> {
            let mut top = TopK::new(K);
            FlatIndex::scan_rows(base_view, q, &rows, 0, &mut top);
            top.into_sorted_vec().iter().map(|n| n.key).collect()
        };
        let search = |q: &[f32]| -> Vec<u64> {
            let mut request = SearchRequest::new(q.to_vec(), K);
            request.filter = Some(filter.clone());
            request.params = SearchParams {
                ef: Some(args.fixed_ef),
                ..Default::default()
            };
            collection
                .search(&request)
                .map(|hits| {
                    hits.into_iter()
                        .filter_map(|h| match h.id {
                            PointId::Num(n) => Some(n),
                            PointId::Str(_) => None,
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        // The three take turns, `rounds` times, and each keeps its fastest round: the
        // box's load comes and goes, and alternating gives each the same chances.
        let rounds = if modulo >= FILTER_ROUNDS_FROM_MODULO {
            FILTER_ROUNDS
        } else {
            1
        };
        let (mut scan_qps, mut in_place_qps, mut qps, mut r) = (0f64, 0f64, 0f64, 0f64);
        for _ in 0..rounds {
            scan_qps = scan_qps.max(
                one_thread
                    .install(|| timed(queries, &truth, gathered_scan))
                    .1,
            );
            in_place_qps = in_place_qps.max(
                one_thread
                    .install(|| timed(queries, &truth, in_place_scan))
                    .1,
            );
            let (recall, ours) = one_thread.install(|| timed(queries, &truth, search));
            (r, qps) = (recall, qps.max(ours));
        }
        eprintln!(
            "hnsw-features: filter {name}: recall {r:.4}, {qps:.0} q/s vs exact scan of the \
             matches {scan_qps:.0} q/s gathered, {in_place_qps:.0} q/s in place"
        );
        out.push(json!({
            "selectivity": name, "matching": matching.len(), "ef": args.fixed_ef, "rounds": rounds,
            "recall_at_10": r, "qps_1thread": qps, "exact_scan_of_matching_qps_1thread": scan_qps,
            "ratio_vs_exact_scan": qps / scan_qps,
            "exact_scan_in_place_qps_1thread": in_place_qps,
            "ratio_vs_exact_scan_in_place": qps / in_place_qps,
            "payload_graphs": collection.info().payload_graphs,
            "sealed_segments": collection.info().sealed_segments,
        }));
    }
    Ok(out)
}

/// The beam of the second repair `deletes` times: the engine's compaction's
/// (`COMPACTION_REPAIR_EF`).
const LOCAL_REPAIR_EF: usize = 32;

fn deletes(
    base: &Matrix,
    queries: &Matrix,
    metric: Metric,
    params: HnswParams,
    ef: usize,
) -> Value {
    let dim = base.dim;
    // Rows [0, n0) are built; 30% of them are deleted; rows [n0, n0 + deleted) are inserted.
    let n0 = (base.rows as f64 / 1.3) as usize;
    let victims: HashSet<u32> = (0..n0 as u32)
        .filter(|r| (r.wrapping_mul(2_654_435_761) >> 7) % 10 < 3)
        .collect();
    let added = victims.len().min(base.rows - n0);
    let total = n0 + added;
    let start = Instant::now();
    let mut index = HnswIndex::build(
        VectorView {
            data: &base.data[..n0 * dim],
            dim,
            metric,
        },
        params,
    );
    let build_seconds = start.elapsed().as_secs_f64();
    for &v in &victims {
        index.delete(v);
    }
    let view = VectorView {
        data: &base.data[..total * dim],
        dim,
        metric,
    };
    let live = |r: u32| !victims.contains(&r);
    let truth: Vec<Vec<u64>> = (0..queries.rows)
        .map(|i| exact_top(view, queries.row(i), Some(&live)))
        .collect();
    let p = paradox_index::SearchParams {
        ef: Some(ef),
        nprobe: None,
        ..Default::default()
    };
    // Repairs with a beam of `repair_ef`, inserts the new rows, measures recall.
    let finish = |mut index: HnswIndex, repair_ef: usize| {
        let start = Instant::now();
        index.repair_with(
            VectorView {
                data: &base.data[..n0 * dim],
                dim,
                metric,
            },
            repair_ef,
        );
        let repair_seconds = start.elapsed().as_secs_f64();
        let start = Instant::now();
        for i in n0..total {
            index.insert(VectorView {
                data: &base.data[..(i + 1) * dim],
                dim,
                metric,
            });
        }
        let insert_seconds = start.elapsed().as_secs_f64();
        let (recall, _) = timed(queries, &truth, |q| {
            index
                .search(view, q, K, None, &p)
                .iter()
                .map(|n| n.key)
                .collect()
        });
        (repair_seconds, insert_seconds, recall)
    };
    // The same deleted graph, copied, for the repair with the local beam the engine's
    // compaction uses.
    let copy = HnswIndex::from_bytes(&index.to_bytes()).expect("a graph's own bytes decode");
    let (repair_seconds, insert_seconds, after) = finish(index, params.ef_construction);
    let (local_repair_seconds, local_insert_seconds, local_after) = finish(copy, LOCAL_REPAIR_EF);
    // A fresh build over exactly the surviving + inserted rows.
    let rows: Vec<usize> = (0..total).filter(|&r| live(r as u32)).collect();
    let data: Vec<f32> = rows
        .iter()
        .flat_map(|&r| base.row(r).iter().copied())
        .collect();
    let fresh_view = VectorView {
        data: &data,
        dim,
        metric,
    };
    let fresh = HnswIndex::build(fresh_view, params);
    let (fresh_recall, _) = timed(queries, &truth, |q| {
        fresh
            .search(fresh_view, q, K, None, &p)
            .iter()
            .map(|n| rows[n.key as usize] as u64)
            .collect()
    });
    eprintln!(
        "hnsw-features: deletes: recall {after:.4} after delete+repair+insert \
         ({local_after:.4} with repair ef {LOCAL_REPAIR_EF}) vs {fresh_recall:.4} fresh (ef {ef})"
    );
    json!({
        "built": n0, "deleted": victims.len(), "inserted": added, "ef": ef,
        "recall_after": after, "recall_fresh_build": fresh_recall, "difference": fresh_recall - after,
        "build_seconds": build_seconds, "repair_seconds": repair_seconds, "insert_seconds": insert_seconds,
        "repair_ef": params.ef_construction,
        "local_repair": {
            "repair_ef": LOCAL_REPAIR_EF, "recall_after": local_after,
            "difference": fresh_recall - local_after, "repair_seconds": local_repair_seconds,
            "insert_seconds": local_insert_seconds,
        },
    })
}

//! Adapter-backed search on a real encoder switch (issue #7, claims 1 and 2).
//!
//! Data: `bench/lifecycle/make_pairs.py` (WordNet glosses and example sentences encoded by
//! all-MiniLM-L6-v2 truncated to 3 layers = v1 and the full model = v2; v2_256 = v2
//! randomly projected to 256-d). Task: each query is a usage example; its relevant
//! document is its own synset's definition; recall@10 = the share of queries whose
//! definition is in their top 10.
//!
//! For each new space (v2 384-d, v2_256 256-d), adapter kind and calibration size, it
//! measures:
//! * query side: an adapter fitted new → v1 on the calibration documents maps each new-space
//!   query into v1, searched exactly over the v1 documents; the headline is its recall@10
//!   divided by that of full re-encoding (new queries over new documents, exact);
//! * the same plus re-scoring: the top 100 from v1 are re-scored with the true new-space
//!   query where the document has a new vector (a random 50% of the corpus, or all 100%);
//! * neighbour recall: overlap of the top 10 with the exact new-space top 10;
//! * migration: an adapter fitted v1 → new maps every stored v1 vector into the new space
//!   as a provisional vector; new-space queries are searched over those.
//!
//! Then the cost: `map_into` per query (µs) and `map_batch` over all documents against the
//! encoder's measured rate (`meta.json`, written by make_pairs.py).
//!
//! Run: `cargo run --release -p paradox-lifecycle --example adapter_bench -- [--quick]
//! [--data bench/data/lifecycle] [--out bench/results/lifecycle/adapters.json]
//! [--sizes 1000,5000] [--kinds procrustes,affine,low_rank,mlp] [--mlp-hidden 128,256]
//! [--cost-rounds 5]`.
//!
//! `--sizes`, `--kinds` and `--mlp-hidden` narrow or widen the grid (the cost table uses the
//! largest size); `--cost-rounds` repeats the whole cost table that many times, adapters
//! interleaved, and reports the median round (a shared machine's noise moves whole rounds).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use paradox_kernels::TopK;
use paradox_lifecycle::adapter::{Adapter, AdapterKind};
use paradox_lifecycle::VectorMap;
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use rayon::prelude::*;
use serde_json::json;

const K: usize = 10;
const CANDIDATES: usize = 100;
const RIDGES: [f32; 4] = [1e-3, 1e-2, 1e-1, 1.0];
const LOW_RANK: usize = 128;

/// Hidden units of the MLP adapter unless `--mlp-hidden` says otherwise.
const MLP_HIDDEN: usize = 512;
/// Rounds of the cost table unless `--cost-rounds` says otherwise.
const COST_ROUNDS: usize = 5;

struct Args {
    data: PathBuf,
    out: PathBuf,
    quick: bool,
    sizes: Option<Vec<usize>>,
    kinds: Option<Vec<String>>,
    mlp_hidden: Vec<usize>,
    cost_rounds: usize,
}

fn parse_list<T: std::str::FromStr>(flag: &str, text: Option<String>) -> Vec<T> {
    let text = text.unwrap_or_else(|| panic!("{flag} needs a comma-separated list"));
    text.split(',')
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{flag}: cannot parse `{v}`"))
        })
        .collect()
}

fn parse_args() -> Args {
    let mut args = Args {
        data: PathBuf::from("bench/data/lifecycle"),
        out: PathBuf::from("bench/results/lifecycle/adapters.json"),
        quick: false,
        sizes: None,
        kinds: None,
        mlp_hidden: vec![MLP_HIDDEN],
        cost_rounds: COST_ROUNDS,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--data" => args.data = it.next().expect("--data PATH").into(),
            "--out" => args.out = it.next().expect("--out PATH").into(),
            "--quick" => args.quick = true,
            "--sizes" => args.sizes = Some(parse_list("--sizes", it.next())),
            "--kinds" => {
                let names: Vec<String> = parse_list("--kinds", it.next());
                for name in &names {
                    assert!(
                        ["procrustes", "affine", "low_rank", "mlp"].contains(&name.as_str()),
                        "--kinds: unknown kind `{name}` (procrustes, affine, low_rank, mlp)"
                    );
                }
                args.kinds = Some(names);
            }
            "--mlp-hidden" => args.mlp_hidden = parse_list("--mlp-hidden", it.next()),
            "--cost-rounds" => {
                args.cost_rounds = parse_list("--cost-rounds", it.next())[0];
                assert!(args.cost_rounds > 0, "--cost-rounds must be at least 1");
            }
            other => panic!("unknown argument {other}; see the file's doc comment"),
        }
    }
    args
}

/// A C-order `.npy` array of `<f4` or `<i4`, as f32 values (i4 converted) and its shape.
fn read_npy(path: &Path) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; generate it with `bench/.venv/bin/python bench/lifecycle/make_pairs.py`",
            path.display()
        )
    });
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let body = &bytes[start + header_len..];
    let values = if header.contains("'<f4'") {
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    } else if header.contains("'<i4'") {
        body.chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect()
    } else {
        panic!("{}: unsupported dtype in {header}", path.display())
    };
    (values, shape)
}

/// Exact top-`k` by inner product of every query: (doc ids, scores), best first.
fn search(queries: &[f32], docs: &[f32], dim: usize, k: usize) -> Vec<Vec<(u32, f32)>> {
    queries
        .par_chunks(64 * dim)
        .flat_map_iter(|block| {
            let mut tops: Vec<TopK> = (0..block.len() / dim).map(|_| TopK::new(k)).collect();
            paradox_kernels::batch_topk(block, docs, dim, false, 0, &mut tops);
            tops.into_iter()
                .map(|t| {
                    t.into_sorted_vec()
                        .into_iter()
                        .map(|n| (n.key as u32, -n.distance))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn normalize_rows(x: &mut [f32], dim: usize) {
    for row in x.chunks_exact_mut(dim) {
        paradox_kernels::normalize(row);
    }
}

fn gather(data: &[f32], dim: usize, idx: &[usize]) -> Vec<f32> {
    idx.iter()
        .flat_map(|&i| data[i * dim..(i + 1) * dim].iter().copied())
        .collect()
}

/// Share of queries whose relevant document is in the first `K` of `ranked`.
fn task_recall(ranked: &[Vec<u32>], relevant: &[u32]) -> f64 {
    let hits = ranked
        .iter()
        .zip(relevant)
        .filter(|(r, want)| r.iter().take(K).any(|d| d == *want))
        .count();
    hits as f64 / relevant.len() as f64
}

/// Mean overlap of the first `K` of `ranked` with `exact` (top `K` each).
fn neighbour_recall(ranked: &[Vec<u32>], exact: &[Vec<u32>]) -> f64 {
    let total: usize = ranked
        .iter()
        .zip(exact)
        .map(|(r, e)| {
            let e: HashSet<u32> = e.iter().take(K).copied().collect();
            r.iter().take(K).filter(|d| e.contains(d)).count()
        })
        .sum();
    total as f64 / (K * ranked.len()) as f64
}

fn ids(results: &[Vec<(u32, f32)>]) -> Vec<Vec<u32>> {
    results
        .iter()
        .map(|r| r.iter().map(|p| p.0).collect())
        .collect()
}

/// Maps every query with `adapter` into the old space, normalises, and searches the old
/// documents: the top `CANDIDATES` per query with their old-space scores.
fn query_side(
    adapter: &Adapter,
    queries: &[f32],
    old_docs: &[f32],
    d_old: usize,
) -> Vec<Vec<(u32, f32)>> {
    let mut mapped = adapter.map_batch(queries);
    normalize_rows(&mut mapped, d_old);
    search(&mapped, old_docs, d_old, CANDIDATES)
}

/// Task recall@10 after re-scoring the candidates that have a new-space vector
/// (`covered`) with the true new-space query. Old-space scores of the others are put on
/// the new scale first by a per-query least-squares line fitted on the covered candidates
/// (which have both scores), so the two kinds of score can be merged.
fn rescore(
    cands: &[Vec<(u32, f32)>],
    queries: &[f32],
    new_docs: &[f32],
    dn: usize,
    relevant: &[u32],
    covered: &(dyn Fn(u32) -> bool + Sync),
) -> f64 {
    let ranked: Vec<Vec<u32>> = cands
        .par_iter()
        .enumerate()
        .map(|(q, list)| {
            let query = &queries[q * dn..(q + 1) * dn];
            let true_score = |d: u32| {
                paradox_kernels::dot(query, &new_docs[d as usize * dn..(d as usize + 1) * dn])
            };
            let pairs: Vec<(f64, f64)> = list
                .iter()
                .filter(|(d, _)| covered(*d))
                .map(|&(d, s)| (s as f64, true_score(d) as f64))
                .collect();
            let (slope, intercept) = line_fit(&pairs);
            let mut scored: Vec<(f32, u32)> = list
                .iter()
                .map(|&(d, s)| {
                    if covered(d) {
                        (true_score(d), d)
                    } else {
                        ((slope * s as f64 + intercept) as f32, d)
                    }
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            scored.into_iter().map(|p| p.1).collect()
        })
        .collect();
    task_recall(&ranked, relevant)
}

/// Least-squares `y ≈ slope · x + intercept`; the identity when there is too little data.
fn line_fit(pairs: &[(f64, f64)]) -> (f64, f64) {
    if pairs.len() < 3 {
        return (1.0, 0.0);
    }
    let n = pairs.len() as f64;
    let (mx, my) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = pairs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pairs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 {
        return (0.0, my);
    }
    let slope = sxy / sxx;
    (slope, my - slope * mx)
}

/// One encoder's side of the data.
struct Space {
    name: &'static str,
    dim: usize,
    docs: Vec<f32>,
    queries: Vec<f32>,
}

fn kinds(ridge_affine: f32, ridge_low: f32, args: &Args) -> Vec<AdapterKind> {
    let mut kinds = vec![
        AdapterKind::Procrustes,
        AdapterKind::Affine {
            ridge: ridge_affine,
        },
        AdapterKind::LowRank {
            rank: LOW_RANK,
            ridge: ridge_low,
        },
    ];
    kinds.extend(args.mlp_hidden.iter().map(|&hidden| AdapterKind::Mlp {
        hidden,
        epochs: if args.quick { 5 } else { 40 },
        lr: 1e-3,
    }));
    kinds.retain(|k| {
        args.kinds
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == k.name()))
    });
    kinds
}

/// The ridge with the best held-out cosine (calibration pairs only: no peeking at the task).
fn pick_ridge(
    make: impl Fn(f32) -> AdapterKind,
    x: &[f32],
    dx: usize,
    y: &[f32],
    dy: usize,
) -> f32 {
    let mut best = (f32::MIN, RIDGES[0]);
    for ridge in RIDGES {
        let fit = Adapter::fit(make(ridge), x, dx, y, dy, 11).unwrap();
        let c = fit.fit_report().holdout_cosine;
        if c > best.0 {
            best = (c, ridge);
        }
    }
    best.1
}

fn main() {
    let args = parse_args();
    let load = |name: &str| read_npy(&args.data.join(name));
    let (docs_v1, shape) = load("docs_v1.npy");
    let (n_docs, d1) = (shape[0], shape[1]);
    let (queries_v1, _) = load("queries_v1.npy");
    let relevant: Vec<u32> = load("query_doc.npy").0.iter().map(|&v| v as u32).collect();
    let n_queries = relevant.len();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(args.data.join("meta.json")).unwrap()).unwrap();
    let encode_rate = meta["encode_sentences_per_s"].as_f64().unwrap();
    let new_spaces = vec![
        Space {
            name: "v2 (384-d)",
            dim: 384,
            docs: load("docs_v2.npy").0,
            queries: load("queries_v2.npy").0,
        },
        Space {
            name: "v2_256 (256-d)",
            dim: 256,
            docs: load("docs_v2_256.npy").0,
            queries: load("queries_v2_256.npy").0,
        },
    ];
    println!(
        "data: {n_docs} documents, {n_queries} queries; v1 = {} ({d1}-d); simd {}; threads {}",
        meta["v1"].as_str().unwrap_or("MiniLM layers 1-3"),
        paradox_kernels::simd_level(),
        rayon::current_num_threads()
    );

    let v1_own = ids(&search(&queries_v1, &docs_v1, d1, K));
    let r_v1 = task_recall(&v1_own, &relevant);
    println!("recall@10, v1 queries over v1 docs (before the switch): {r_v1:.4}");

    let sizes: Vec<usize> = args.sizes.clone().unwrap_or(if args.quick {
        vec![1000, 5000]
    } else {
        vec![1000, 2000, 5000, 10000]
    });
    let mut order: Vec<usize> = (0..n_docs).collect();
    order.shuffle(&mut StdRng::seed_from_u64(42));
    // Half the corpus has new vectors for the 50% re-score (always including calibration).
    let half: HashSet<u32> = order[..n_docs / 2].iter().map(|&i| i as u32).collect();

    let mut rows = Vec::new();
    let mut to_time = Vec::new();
    for space in &new_spaces {
        let dn = space.dim;
        let exact = ids(&search(&space.queries, &space.docs, dn, K));
        let r_full = task_recall(&exact, &relevant);
        let naive = if dn == d1 {
            Some(task_recall(
                &ids(&search(&space.queries, &docs_v1, d1, K)),
                &relevant,
            ))
        } else {
            None
        };
        println!(
            "\n== new space {}: full re-encoding recall@10 {r_full:.4}; new queries over v1 \
             docs without adapter: {}",
            space.name,
            naive.map_or("n/a (dimensions differ)".to_string(), |r| format!("{r:.4}"))
        );
        println!(
            "{:<10} {:>6} {:>6} | {:>7} {:>7} {:>7} {:>6} {:>7} {:>7} {:>7} | {:>7} {:>6} {:>7} | {:>7} {:>6}",
            "kind", "pairs", "ridge", "q-fit", "q-adj", "q-side", "ratio", "+50%rs", "+100%rs",
            "nbr@10", "migrate", "ratio", "nbr@10", "hold.cos", "fit s"
        );
        for &n in &sizes {
            let cal = &order[..n];
            let new_cal = gather(&space.docs, dn, cal);
            let old_cal = gather(&docs_v1, d1, cal);
            let ridge_affine = pick_ridge(
                |r| AdapterKind::Affine { ridge: r },
                &new_cal,
                dn,
                &old_cal,
                d1,
            );
            let ridge_low = pick_ridge(
                |r| AdapterKind::LowRank {
                    rank: LOW_RANK,
                    ridge: r,
                },
                &new_cal,
                dn,
                &old_cal,
                d1,
            );
            for kind in kinds(ridge_affine, ridge_low, &args) {
                // Query side as fitted: new -> v1, queries mapped, v1 documents searched.
                let to_old = Adapter::fit(kind, &new_cal, dn, &old_cal, d1, 7).unwrap();
                let fitted_cands = query_side(&to_old, &space.queries, &docs_v1, d1);
                let r_fit = task_recall(&ids(&fitted_cands), &relevant);

                // Migration: v1 -> new, every stored vector mapped (normalised: cosine).
                let to_new = Adapter::fit(kind, &old_cal, d1, &new_cal, dn, 7).unwrap();
                let started = Instant::now();
                let mut provisional = to_new.map_batch(&docs_v1);
                let migrate_s = started.elapsed().as_secs_f64();
                normalize_rows(&mut provisional, dn);
                let m_ids = ids(&search(&space.queries, &provisional, dn, K));
                let r_m = task_recall(&m_ids, &relevant);
                let nbr_m = neighbour_recall(&m_ids, &exact);

                // Query side through the adjoint of the migration map (linear kinds).
                let adjoint = to_new.adjoint().ok();
                let adj_cands = adjoint
                    .as_ref()
                    .map(|a| query_side(a, &space.queries, &docs_v1, d1));
                let r_adj = adj_cands.as_ref().map(|c| task_recall(&ids(c), &relevant));

                // The recommended query side: the adjoint where there is one.
                let (best_name, best_map, cands) = match (&adjoint, adj_cands) {
                    (Some(a), Some(c)) => ("adjoint", a, c),
                    _ => ("fitted", &to_old, fitted_cands),
                };
                let q_ids = ids(&cands);
                let r_q = task_recall(&q_ids, &relevant);
                let nbr_q = neighbour_recall(&q_ids, &exact);
                let r_half = rescore(&cands, &space.queries, &space.docs, dn, &relevant, &|d| {
                    half.contains(&d)
                });
                let r_all = rescore(&cands, &space.queries, &space.docs, dn, &relevant, &|_| {
                    true
                });
                let fit = to_new.fit_report().clone();
                let ridge = match kind {
                    AdapterKind::Affine { ridge } | AdapterKind::LowRank { ridge, .. } => {
                        format!("{ridge}")
                    }
                    AdapterKind::Mlp { hidden, .. } => format!("h{hidden}"),
                    _ => "-".into(),
                };
                println!(
                    "{:<10} {:>6} {:>6} | {:>7.4} {:>7} {:>7.4} {:>6.3} {:>7.4} {:>7.4} {:>7.4} | {:>7.4} {:>6.3} {:>7.4} | {:>7.4} {:>6.1}",
                    kind.name(), n, ridge, r_fit,
                    r_adj.map_or("-".to_string(), |r| format!("{r:.4}")),
                    r_q, r_q / r_full, r_half, r_all, nbr_q, r_m, r_m / r_full,
                    nbr_m, fit.holdout_cosine, fit.fit_seconds + to_old.fit_report().fit_seconds
                );
                rows.push(json!({
                    "new_space": space.name, "kind": kind, "pairs": n,
                    "recall_full": r_full,
                    "recall_query_side_fitted": r_fit,
                    "recall_query_side_adjoint": r_adj,
                    "query_side_used": best_name,
                    "recall_query_side": r_q, "ratio_query_side": r_q / r_full,
                    "recall_rescore_50": r_half, "recall_rescore_100": r_all,
                    "ratio_rescore_50": r_half / r_full,
                    "neighbour_recall_query_side": nbr_q,
                    "recall_migrated": r_m, "ratio_migrated": r_m / r_full,
                    "neighbour_recall_migrated": nbr_m,
                    "fit_to_old": to_old.fit_report(), "fit_to_new": fit,
                    "residual_kept": [to_old.has_residual(), to_new.has_residual()],
                }));
                if n == *sizes.last().unwrap() {
                    to_time.push(Timed {
                        adapter: best_map.clone(),
                        how: best_name,
                        space: space.name,
                        dim: dn,
                        migrate_s,
                    });
                }
            }
        }
    }

    println!(
        "\n== cost (adapters fitted on {} pairs; median of {} rounds, min-max of the \
         rounds' medians)",
        sizes.last().unwrap(),
        args.cost_rounds
    );
    let timing = time_adapters(&to_time, &new_spaces, args.cost_rounds, n_docs, encode_rate);
    println!(
        "{:<16} {:<10} {:>8} {:>5} {:>10} {:>13} {:>10} {:>10} {:>12} {:>12} {:>10} {:>10}",
        "new space",
        "kind",
        "map",
        "res",
        "µs median",
        "(min-max)",
        "µs mean",
        "p99 µs",
        "migrate s",
        "encode s",
        "% measured",
        "% @390/s"
    );
    for t in &timing {
        println!(
            "{:<16} {:<10} {:>8} {:>5} {:>10.2} {:>13} {:>10.2} {:>10.2} {:>12.4} {:>12.1} {:>10.3} {:>10.3}",
            t["new_space"].as_str().unwrap(),
            t["kind"].as_str().unwrap(),
            t["query_map"].as_str().unwrap(),
            t["residual_hidden"]
                .as_u64()
                .map_or("-".to_string(), |h| h.to_string()),
            t["map_into_us_median"].as_f64().unwrap(),
            format!(
                "({:.2}-{:.2})",
                t["map_into_us_median_min"].as_f64().unwrap(),
                t["map_into_us_median_max"].as_f64().unwrap()
            ),
            t["map_into_us_mean"].as_f64().unwrap(),
            t["map_into_us_p99"].as_f64().unwrap(),
            t["migrate_seconds"].as_f64().unwrap(),
            t["encode_seconds_measured"].as_f64().unwrap(),
            t["migrate_pct_of_encode_measured"].as_f64().unwrap(),
            t["migrate_pct_of_encode_at_390"].as_f64().unwrap(),
        );
    }
    let report = json!({
        "machine": { "simd": paradox_kernels::simd_level(), "threads": rayon::current_num_threads() },
        "data": { "docs": n_docs, "queries": n_queries, "meta": meta },
        "recall_v1_before_switch": r_v1,
        "rows": rows,
        "cost": timing,
    });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    println!("\nwrote {}", args.out.display());
}

/// A query map whose cost is measured after the quality rows.
struct Timed {
    adapter: Adapter,
    how: &'static str,
    space: &'static str,
    /// Dimension of the new space (the queries' space).
    dim: usize,
    migrate_s: f64,
}

/// Per-query cost of `map_into` for every adapter in `to_time`: `rounds` rounds, each timing
/// every adapter in turn (median, mean and p99 over batches of 100 calls, single thread);
/// the round with the median median is reported, with the spread of the rounds' medians.
/// Also the migration cost against re-encoding.
fn time_adapters(
    to_time: &[Timed],
    spaces: &[Space],
    rounds: usize,
    n_docs: usize,
    encode_rate: f64,
) -> Vec<serde_json::Value> {
    let mut per_round: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); to_time.len()];
    for _ in 0..rounds {
        for (t, stats) in to_time.iter().zip(per_round.iter_mut()) {
            let space = spaces.iter().find(|s| s.name == t.space).unwrap();
            assert_eq!(space.dim, t.dim);
            stats.push(time_map_into(&t.adapter, &space.queries));
        }
    }
    let encode_s = n_docs as f64 / encode_rate;
    let encode_390 = n_docs as f64 / 390.0;
    to_time
        .iter()
        .zip(per_round)
        .map(|(t, mut stats)| {
            stats.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (median, mean, p99) = stats[stats.len() / 2];
            let residual_hidden = match t.adapter.kind() {
                AdapterKind::Mlp { hidden, .. } if t.adapter.has_residual() => Some(hidden),
                _ => None,
            };
            json!({
                "new_space": t.space, "kind": t.adapter.kind().name(), "query_map": t.how,
                "residual_hidden": residual_hidden,
                "map_into_us_mean": mean, "map_into_us_median": median, "map_into_us_p99": p99,
                "map_into_us_median_min": stats[0].0,
                "map_into_us_median_max": stats[stats.len() - 1].0,
                "map_into_us_rounds": stats.iter().map(|s| s.0).collect::<Vec<_>>(),
                "migrate_seconds": t.migrate_s, "encode_seconds_measured": encode_s,
                "migrate_pct_of_encode_measured": 100.0 * t.migrate_s / encode_s,
                "migrate_pct_of_encode_at_390": 100.0 * t.migrate_s / encode_390,
            })
        })
        .collect()
}

/// (median, mean, p99) µs per `map_into` call over batches of 100 calls, single thread.
fn time_map_into(adapter: &Adapter, queries: &[f32]) -> (f64, f64, f64) {
    let din = adapter.dim_in();
    let mut out = vec![0.0f32; adapter.dim_out()];
    let mut per_call = Vec::new();
    for _round in 0..20 {
        for block in queries.chunks_exact(100 * din) {
            let started = Instant::now();
            for q in block.chunks_exact(din) {
                adapter.map_into(q, &mut out);
            }
            per_call.push(started.elapsed().as_secs_f64() * 1e6 / 100.0);
            std::hint::black_box(&out);
        }
    }
    per_call.sort_by(|a, b| a.total_cmp(b));
    let mean = per_call.iter().sum::<f64>() / per_call.len() as f64;
    let median = per_call[per_call.len() / 2];
    let p99 = per_call[(per_call.len() * 99 / 100).min(per_call.len() - 1)];
    (median, mean, p99)
}

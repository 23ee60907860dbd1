//! `paradox bench ivf`: train and fill an IVF index over a `.npy` base and trace its recall
//! vs QPS curve over `nprobe`, for comparison with FAISS `IndexIVFPQ` / `IndexIVFFlat` /
//! `IndexIVFScalarQuantizer` (+ `IndexRefineFlat`) in the same run (`bench/ivf.py`).
//!
//! Timing follows `bench hnsw`: **build** is `IvfIndex::build` alone (training + filing)
//! on `--build-threads` threads; the **single-thread** pass times each query call; the
//! **all-threads** pass spreads the queries over `--threads` threads. The fastest of
//! `--reps` repetitions is reported.

use anyhow::{ensure, Context, Result};
use clap::{Args, ValueEnum};
use paradox_index::{IvfCodec, IvfIndex, IvfParams, SearchParams, VectorIndex, VectorView};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::hnsw::{
    best_of, exact_truth, micros, normalise_rows, per_second, percentile, read_truth, recall_at,
    rss_bytes, single_thread_pass,
};
use crate::formats::read_vectors;
use crate::store::MetricArg;

/// What the inverted lists store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CodecArg {
    /// Row numbers only (exact distances).
    Flat,
    /// Product quantisation of the residual (`--m` bytes per vector).
    Pq,
    /// 8-bit scalar quantisation of the residual (one byte per dimension).
    Sq8,
    /// PQ of the residual after a learned rotation (OPQ).
    OpqPq,
    /// 4-bit PQ of the residual with fast scan (`--m` sub-quantisers, `m / 2` bytes).
    Pq4,
}

/// `bench ivf` flags.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints {\"op\":\"ivf\",\"n\",\"dim\",\"metric\",\"nlist\",\"codec\",\
    \"m\",\"rerank\",\"build_seconds\",\"code_bytes_per_vector\",\"index_bytes\",\
    \"curve\":[{\"nprobe\",\"recall_at_1\",\"recall_at_10\",\"qps_1thread\",\"p50_us\",\
    \"p95_us\",\"p99_us\",\"qps_all_threads\"}],...}.\n\nExample:\n  \
    paradox bench ivf --base base.npy --queries q.npy --gt gt.npy --nlist 1024 \\\n    \
    --codec pq --m 16 --rerank 4 --nprobe 4,8,16,32,64"
)]
pub struct IvfArgs {
    /// Base vectors (.npy or .fvecs); row i is neighbour i.
    #[arg(long, value_name = "FILE")]
    pub base: PathBuf,
    /// Query vectors (.npy or .fvecs).
    #[arg(long, value_name = "FILE")]
    pub queries: PathBuf,
    /// Exact neighbours: int64 .npy, nq rows, at least 10 columns [default: computed].
    #[arg(long, value_name = "FILE")]
    pub gt: Option<PathBuf>,
    /// Metric (cosine normalises base and queries first).
    #[arg(long, value_enum, default_value = "l2")]
    pub metric: MetricArg,
    /// Lists (k-means cells).
    #[arg(long, default_value_t = 1024)]
    pub nlist: usize,
    /// What lists store per vector.
    #[arg(long, value_enum, default_value = "pq")]
    pub codec: CodecArg,
    /// PQ sub-quantisers = bytes per code (must divide the dimension).
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// Candidates re-ranked exactly = rerank × k (0 = none).
    #[arg(long, default_value_t = 4)]
    pub rerank: usize,
    /// Lists visited per query, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32,64,128")]
    pub nprobe: Vec<usize>,
    /// k-means iterations.
    #[arg(long, default_value_t = 20)]
    pub train_iterations: usize,
    /// Capacity-capped cells.
    #[arg(long)]
    pub balanced: bool,
    /// Neighbours per query (recall@1, and @10 when >= 10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub k: u32,
    /// Threads of the all-threads search pass [default: all cores].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Threads of the build [default: all cores].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub build_threads: Option<u32>,
    /// Repetitions of each timed pass; the fastest is reported.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub reps: u32,
}

/// Runs the benchmark and returns its report.
pub fn run(args: IvfArgs) -> Result<Value> {
    ensure!(
        !args.nprobe.is_empty() && args.nprobe.iter().all(|&p| p > 0),
        "--nprobe needs positive values, got {:?}",
        args.nprobe
    );
    let codec = match args.codec {
        CodecArg::Flat => IvfCodec::Flat,
        CodecArg::Pq => IvfCodec::Pq { m: args.m },
        CodecArg::Sq8 => IvfCodec::Sq8,
        CodecArg::OpqPq => IvfCodec::OpqPq { m: args.m },
        CodecArg::Pq4 => IvfCodec::Pq4 { m: args.m },
    };
    let params = IvfParams {
        nlist: args.nlist,
        codec,
        rerank: args.rerank,
        train_iterations: args.train_iterations,
        balanced: args.balanced,
        ..Default::default()
    };
    let metric = args.metric.metric();
    let all_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let search_threads = args.threads.map_or(all_cores, |t| t as usize);
    let build_threads = args.build_threads.map_or(all_cores, |t| t as usize);
    let pool = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .context("cannot start a thread pool")
    };
    let (one_thread, all_threads, builders) =
        (pool(1)?, pool(search_threads)?, pool(build_threads)?);

    let mut base = read_vectors(&args.base)?;
    let mut queries = read_vectors(&args.queries)?;
    super::check_dims(&base, &queries)?;
    ensure!(queries.rows > 0, "the query file holds no vectors");
    params.validate(base.dim).map_err(anyhow::Error::msg)?;
    if metric.normalizes() {
        normalise_rows(&mut base, "base")?;
        normalise_rows(&mut queries, "query")?;
    }
    let (n, dim, nq) = (base.rows, base.dim, queries.rows);
    let k = args.k as usize;
    let truth = match &args.gt {
        Some(path) => read_truth(path, nq, k)?,
        None => all_threads.install(|| exact_truth(&base, &queries, metric, k)),
    };
    let view = VectorView {
        data: &base.data,
        dim,
        metric,
    };
    let rss_before = rss_bytes();
    eprintln!(
        "bench ivf: building over {n} x {dim} ({metric}), nlist = {}, codec = {}, \
         {build_threads} threads",
        args.nlist,
        codec.as_str()
    );
    let started = Instant::now();
    let index = builders
        .install(|| IvfIndex::build(view, params))
        .map_err(anyhow::Error::msg)?;
    let build_time = started.elapsed();
    let rss_after = rss_bytes();
    eprintln!("bench ivf: built in {:.2} s", build_time.as_secs_f64());

    let mut curve = Vec::new();
    for &nprobe in &args.nprobe {
        let search_params = SearchParams {
            ef: None,
            nprobe: Some(nprobe),
            ..Default::default()
        };
        let search = |q: usize| index.search(view, queries.row(q), k, None, &search_params);
        let (mut latencies, found) = one_thread.install(|| {
            for q in 0..nq.min(100) {
                std::hint::black_box(search(q));
            }
            single_thread_pass(nq, args.reps, search)
        });
        let single_time: Duration = latencies.iter().sum();
        let (parallel_time, _) = all_threads.install(|| {
            best_of(args.reps, || {
                let started = Instant::now();
                let found: Vec<_> = (0..nq).into_par_iter().map(search).collect();
                (started.elapsed(), found)
            })
        });
        // All queries in one call, grouped by list (`IvfIndex::search_batch`).
        let batch = || index.search_batch(view, &queries.data, k, &search_params);
        let (batch_1thread, batch_found) = one_thread.install(|| {
            best_of(args.reps, || {
                let started = Instant::now();
                let found = batch();
                (started.elapsed(), found)
            })
        });
        let (batch_all_threads, _) = all_threads.install(|| {
            best_of(args.reps, || {
                let started = Instant::now();
                let found = batch();
                (started.elapsed(), found)
            })
        });
        latencies.sort_unstable();
        let mut point = json!({
            "nprobe": nprobe,
            "recall_at_1": recall_at(&found, &truth, 1),
        });
        if k >= 10 {
            point["recall_at_10"] = recall_at(&found, &truth, 10).into();
        }
        point["qps_1thread"] = per_second(nq, single_time);
        point["p50_us"] = micros(percentile(&latencies, 0.50));
        point["p95_us"] = micros(percentile(&latencies, 0.95));
        point["p99_us"] = micros(percentile(&latencies, 0.99));
        point["qps_all_threads"] = per_second(nq, parallel_time);
        point["qps_batch_1thread"] = per_second(nq, batch_1thread);
        point["qps_batch_all_threads"] = per_second(nq, batch_all_threads);
        point["recall_at_10_batch"] = recall_at(&batch_found, &truth, 10.min(k)).into();
        eprintln!("bench ivf: {point}");
        curve.push(point);
    }
    let sizes = index.list_sizes();
    Ok(json!({
        "op": "ivf",
        "n": n,
        "nq": nq,
        "dim": dim,
        "metric": metric.as_str(),
        "nlist": index.nlist(),
        "codec": codec.as_str(),
        "m": matches!(
            codec,
            IvfCodec::Pq { .. } | IvfCodec::OpqPq { .. } | IvfCodec::Pq4 { .. }
        )
        .then_some(args.m),
        "rerank": args.rerank,
        "balanced": args.balanced,
        "k": k,
        "build_threads": build_threads,
        "search_threads": search_threads,
        "simd": paradox_kernels::simd_level(),
        "build_seconds": super::seconds(build_time),
        "code_bytes_per_vector": index.code_bytes() as f64 / n as f64,
        "index_bytes": index.memory_bytes(),
        "largest_list": sizes.iter().max(),
        "rss_delta_build_bytes": rss_after.zip(rss_before).map(|(a, b)| a.saturating_sub(b)),
        "index_file_bytes": index.to_bytes().len(),
        "curve": curve,
    }))
}

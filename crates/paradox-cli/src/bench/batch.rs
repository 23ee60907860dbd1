//! `paradox bench batch`: exact batched search throughput on real files, for comparison
//! with FAISS in the same run. Loading the base is not timed; one `search_batch` over all
//! queries is.

use anyhow::{Context, Result};
use clap::Args;
use paradox_engine::{CollectionConfig, FsyncPolicy, Payload, SearchRequest};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;

use crate::formats::read_vectors;
use crate::store::{GlobalArgs, MetricArg};

/// `bench batch` flags.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints {\"op\":\"batch\",\"n\",\"nq\",\"dim\",\"threads\",\"seconds\",\
    \"qps\"}.\n\nExample:\n  \
    paradox bench batch --base base.npy --queries q.npy --k 10 --threads 2 --out-ids ids.npy"
)]
pub struct BatchArgs {
    /// Base vectors (.npy or .fvecs); row i gets id i.
    #[arg(long, value_name = "FILE")]
    pub base: PathBuf,
    /// Query vectors (.npy or .fvecs).
    #[arg(long, value_name = "FILE")]
    pub queries: PathBuf,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Search threads [default: all cores].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Metric of the collection.
    #[arg(long, value_enum, default_value = "l2")]
    pub metric: MetricArg,
    /// Write the result ids as an nq x k int64 .npy (or .ivecs); -1 pads missing results.
    #[arg(long, value_name = "FILE")]
    pub out_ids: Option<PathBuf>,
}

/// Runs the benchmark and returns its report.
pub fn run(args: BatchArgs, global: &GlobalArgs) -> Result<Value> {
    let base = read_vectors(&args.base)?;
    let queries = read_vectors(&args.queries)?;
    super::check_dims(&base, &queries)?;
    let threads = args
        .threads
        .map(|t| t as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start the search thread pool")?;

    let store = tempfile::tempdir().context("cannot create a temporary store")?;
    let engine = GlobalArgs {
        data_dir: store.path().to_path_buf(),
        fsync: global.fsync,
    }
    .open_engine_with(Some(
        global.fsync.map_or(FsyncPolicy::Never, |f| f.policy()),
    ))?;
    // Exact search is what is measured (against FAISS IndexFlatIP): no graph index.
    let mut config = CollectionConfig::new("bench_batch", base.dim, args.metric.metric());
    config.index = paradox_engine::IndexConfig::Flat;
    let collection = engine.create_collection(config)?;
    eprintln!(
        "bench batch: loading {} x {} (not timed)",
        base.rows, base.dim
    );
    pool.install(|| super::load_rows(&collection, &base, 10_000, |_| Payload::new()))?;
    collection.flush()?;

    let requests: Vec<SearchRequest> = (0..queries.rows)
        .map(|q| SearchRequest {
            vector: queries.row(q).to_vec(),
            k: args.k,
            filter: None,
            with_payload: false,
            with_vector: false,
            params: Default::default(),
            as_of: None,
        })
        .collect();
    eprintln!(
        "bench batch: {} queries, k = {}, {threads} threads",
        queries.rows, args.k
    );
    let started = Instant::now();
    let results = pool.install(|| collection.search_batch(&requests))?;
    let elapsed = started.elapsed();
    if let Some(path) = &args.out_ids {
        super::write_result_ids(path, args.k, &results)?;
    }
    let secs = elapsed.as_secs_f64();
    eprintln!(
        "bench batch: {secs:.3} s, {:.0} queries/s",
        queries.rows as f64 / secs.max(1e-9)
    );
    Ok(json!({
        "op": "batch",
        "n": base.rows,
        "nq": queries.rows,
        "dim": base.dim,
        "threads": threads,
        "seconds": super::seconds(elapsed),
        "qps": (queries.rows as f64 / secs.max(1e-9) * 10.0).round() / 10.0,
    }))
}

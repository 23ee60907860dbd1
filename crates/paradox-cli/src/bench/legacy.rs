//! `paradox bench legacy`: the workload paradoxlf 0.17 users ran, timed end to end: create
//! an l2 collection, add every vector (batches of 1000, payload `{"i": row}`), then 1000
//! single-query searches one at a time.

use anyhow::{Context, Result};
use clap::Args;
use paradox_engine::{CollectionConfig, Metric, SearchRequest};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;

use crate::formats::read_vectors;
use crate::store::GlobalArgs;

/// Vectors per add call, as paradoxlf users batched them.
const ADD_BATCH: usize = 1000;

/// `bench legacy` flags.
#[derive(Debug, Args)]
#[command(after_help = "Prints {\"op\":\"legacy\",\"n\",\"nq\",\"add_seconds\",\
    \"query_seconds\",\"total_seconds\"}.\n\nExample:\n  \
    paradox bench legacy --base base.npy --queries q.npy --k 5")]
pub struct LegacyArgs {
    /// Base vectors (.npy or .fvecs); row i gets id i.
    #[arg(long, value_name = "FILE")]
    pub base: PathBuf,
    /// Query vectors (.npy or .fvecs), used in order and cycled if fewer than --searches.
    #[arg(long, value_name = "FILE")]
    pub queries: PathBuf,
    /// Neighbours per query.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Number of single-query searches.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub searches: u32,
    /// Write the result ids as an nq x k int64 .npy (or .ivecs); -1 pads missing results.
    #[arg(long, value_name = "FILE")]
    pub out_ids: Option<PathBuf>,
}

/// Runs the benchmark and returns its report.
pub fn run(args: LegacyArgs, global: &GlobalArgs) -> Result<Value> {
    let base = read_vectors(&args.base)?;
    let queries = read_vectors(&args.queries)?;
    super::check_dims(&base, &queries)?;
    anyhow::ensure!(queries.rows > 0, "the query file holds no vectors");
    let store = tempfile::tempdir().context("cannot create a temporary store")?;
    let engine = GlobalArgs {
        data_dir: store.path().to_path_buf(),
        fsync: global.fsync,
    }
    .open_engine()?;
    eprintln!(
        "bench legacy: adding {} x {}, then {} searches (k = {})",
        base.rows, base.dim, args.searches, args.k
    );

    let started = Instant::now();
    let collection = engine.create_collection(CollectionConfig {
        // paradoxlf scans exactly; so does this side of the comparison.
        index: paradox_engine::IndexConfig::Flat,
        ..CollectionConfig::new("bench_legacy", base.dim, Metric::L2)
    })?;
    super::load_rows(&collection, &base, ADD_BATCH, |row| {
        let mut payload = paradox_engine::Payload::new();
        payload.insert("i".into(), Value::from(row as u64));
        payload
    })?;
    let added = Instant::now();
    let nq = args.searches as usize;
    let mut results = Vec::with_capacity(nq);
    for q in 0..nq {
        results.push(collection.search(&SearchRequest {
            vector: queries.row(q % queries.rows).to_vec(),
            k: args.k,
            filter: None,
            with_payload: true,
            with_vector: false,
            params: Default::default(),
            as_of: None,
        })?);
    }
    let finished = Instant::now();
    if let Some(path) = &args.out_ids {
        super::write_result_ids(path, args.k, &results)?;
    }
    let (add, query) = (added - started, finished - added);
    eprintln!(
        "bench legacy: add {:.3} s, queries {:.3} s",
        add.as_secs_f64(),
        query.as_secs_f64()
    );
    Ok(json!({
        "op": "legacy",
        "n": base.rows,
        "nq": nq,
        "add_seconds": super::seconds(add),
        "query_seconds": super::seconds(query),
        "total_seconds": super::seconds(finished - started),
    }))
}

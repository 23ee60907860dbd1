//! `paradox bench ingest`: how many vectors per second are acknowledged under a given
//! fsync policy. Each upsert returns once its WAL record is durable per the policy, so the
//! clock, running from the first upsert to the last acknowledgement, measures durable ingest.

use anyhow::{Context, Result};
use clap::Args;
use paradox_engine::{CollectionConfig, Metric, NewPoint};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;

use crate::store::{FsyncArg, GlobalArgs};
use crate::synth::GaussianMixture;

/// `bench ingest` flags (the fsync policy is the global `--fsync`, default interval).
#[derive(Debug, Args)]
#[command(
    after_help = "Prints {\"op\":\"ingest\",\"dim\",\"count\",\"batch\",\"fsync\",\
    \"seconds\",\"vectors_per_s\"}.\n\nExample:\n  \
    paradox bench ingest --dim 128 --count 1000000 --batch 1000 --fsync interval"
)]
pub struct IngestArgs {
    /// Vector dimension.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub dim: u32,
    /// Number of vectors.
    #[arg(long, default_value_t = 1_000_000)]
    pub count: u64,
    /// Vectors per upsert.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Parent directory for the fresh temporary store (default: the system temp dir). The
    /// store is deleted afterwards.
    #[arg(long, value_name = "TMPDIR")]
    pub dir: Option<PathBuf>,
    /// Seed for the synthetic vectors.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs the benchmark and returns its report.
pub fn run(args: IngestArgs, global: &GlobalArgs) -> Result<Value> {
    let fsync = global.fsync.unwrap_or(FsyncArg::Interval);
    let (dim, count, batch) = (args.dim as usize, args.count as usize, args.batch as usize);
    let store = match &args.dir {
        Some(parent) => tempfile::tempdir_in(parent)
            .with_context(|| format!("cannot create a temporary store in {}", parent.display()))?,
        None => tempfile::tempdir().context("cannot create a temporary store")?,
    };
    eprintln!(
        "bench ingest: generating {count} x {dim} clustered vectors (store {})",
        store.path().display()
    );
    let mixture = GaussianMixture::new(dim, 64, args.seed);
    // Build every batch before the clock starts: only the engine's work is timed.
    let mut batches: Vec<Vec<NewPoint>> = Vec::with_capacity(count.div_ceil(batch));
    for first in (0..count).step_by(batch) {
        let n = batch.min(count - first);
        let (data, _) = mixture.rows(first as u64, n);
        batches.push(
            data.chunks_exact(dim)
                .enumerate()
                .map(|(i, row)| NewPoint::new((first + i) as u64, row.to_vec()))
                .collect(),
        );
    }
    let engine = crate::store::GlobalArgs {
        data_dir: store.path().to_path_buf(),
        fsync: Some(fsync),
    }
    .open_engine()?;
    let collection =
        engine.create_collection(CollectionConfig::new("bench_ingest", dim, Metric::L2))?;

    eprintln!(
        "bench ingest: upserting in batches of {batch}, fsync {}",
        fsync.name()
    );
    let started = Instant::now();
    for (i, points) in batches.into_iter().enumerate() {
        collection
            .upsert(points)
            .with_context(|| format!("upsert of batch {i} failed"))?;
    }
    let elapsed = started.elapsed();
    let secs = elapsed.as_secs_f64();
    eprintln!("bench ingest: {count} vectors in {secs:.3} s");
    drop(collection);
    drop(engine);
    Ok(json!({
        "op": "ingest",
        "dim": dim,
        "count": count,
        "batch": batch,
        "fsync": fsync.name(),
        "seconds": super::seconds(elapsed),
        "vectors_per_s": (count as f64 / secs.max(1e-9)).round(),
    }))
}

//! `paradox bench`: machine-readable micro-benchmarks for the harness in `bench/`.
//!
//! Contract: each subcommand prints exactly ONE JSON object on stdout (keys documented per
//! subcommand, kept stable for the harness); anything meant for people goes to stderr.
//! Data generation and loading that a benchmark does not measure happen before its clock
//! starts.

mod batch;
mod disk;
mod hnsw;
mod hnsw_features;
mod ingest;
mod ivf;
mod legacy;
mod scan;
mod server;
mod server_target;
mod stream;

use anyhow::{ensure, Context, Result};
use clap::Subcommand;
use paradox_engine::{Collection, NewPoint, Payload, PointId, ScoredPoint};
use serde_json::Value;
use std::path::Path;

use crate::formats::fvecs::VecsWriter;
use crate::formats::npy::{DType, NpyWriter};
use crate::formats::Matrix;
use crate::store::GlobalArgs;

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Durable ingest throughput: vectors/s acknowledged under an fsync policy.
    Ingest(ingest::IngestArgs),
    /// Single-thread exact scan speed vs the machine's streaming-read bandwidth.
    Scan(scan::ScanArgs),
    /// Exact batched search over .npy base/query files (compare with FAISS).
    Batch(batch::BatchArgs),
    /// The paradoxlf 0.17 workload: add everything, then 1000 single searches.
    Legacy(legacy::LegacyArgs),
    /// HNSW build time, memory and the recall vs QPS curve over ef (compare with hnswlib).
    Hnsw(hnsw::HnswArgs),
    /// HNSW features: compressed traversal, filtered search, deletes with repair.
    HnswFeatures(hnsw_features::HnswFeaturesArgs),
    /// IVF (flat, PQ, OPQ-PQ, SQ8 lists) build time, code size and recall vs QPS over nprobe.
    Ivf(ivf::IvfArgs),
    /// Query latency under a sustained insert stream vs idle, and write visibility.
    Stream(stream::StreamArgs),
    /// IVF search with codes and vectors on disk, cold, under an outside RAM budget.
    Disk(disk::DiskArgs),
    /// Load generator for running servers: Paradox over gRPC and REST, and Chroma; QPS,
    /// latency percentiles and recall@10 per concurrency, and a soak with upserts.
    Server(Box<server::ServerArgs>),
}

/// Runs a `bench` subcommand and prints its JSON report.
pub fn run(command: BenchCommand, global: &GlobalArgs) -> Result<()> {
    let report = match command {
        BenchCommand::Ingest(args) => ingest::run(args, global)?,
        BenchCommand::Scan(args) => scan::run(args)?,
        BenchCommand::Batch(args) => batch::run(args, global)?,
        BenchCommand::Legacy(args) => legacy::run(args, global)?,
        BenchCommand::Hnsw(args) => hnsw::run(args)?,
        BenchCommand::HnswFeatures(args) => hnsw_features::run(args)?,
        BenchCommand::Ivf(args) => ivf::run(args)?,
        BenchCommand::Stream(args) => stream::run(args, global)?,
        BenchCommand::Disk(args) => disk::run(args)?,
        BenchCommand::Server(args) => server::run(*args)?,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Upserts `vectors` with ids `0..rows` in batches of `batch`, each point's payload made by
/// `payload(row)`.
fn load_rows(
    collection: &Collection,
    vectors: &Matrix,
    batch: usize,
    payload: impl Fn(usize) -> Payload,
) -> Result<()> {
    for first in (0..vectors.rows).step_by(batch.max(1)) {
        let last = (first + batch).min(vectors.rows);
        let points: Vec<NewPoint> = (first..last)
            .map(|row| {
                NewPoint::new(row as u64, vectors.row(row).to_vec()).with_payload(payload(row))
            })
            .collect();
        collection
            .upsert(points)
            .with_context(|| format!("loading rows {first}..{last}"))?;
    }
    Ok(())
}

/// Checks base and query files agree on the dimension.
fn check_dims(base: &Matrix, queries: &Matrix) -> Result<()> {
    ensure!(base.rows > 0, "the base file holds no vectors");
    ensure!(
        base.dim == queries.dim,
        "dimension mismatch: base vectors have dimension {}, queries {}",
        base.dim,
        queries.dim
    );
    Ok(())
}

/// Writes result ids as an `nq x k` matrix (-1 where fewer than `k` were found) for the
/// harness to compare with FAISS: int64 `.npy`, or `.ivecs` when the path says so.
fn write_result_ids(path: &Path, k: usize, results: &[Vec<ScoredPoint>]) -> Result<()> {
    let rows = results.iter().map(|hits| {
        let mut row: Vec<i64> = hits
            .iter()
            .take(k)
            .map(|hit| match &hit.id {
                PointId::Num(n) => *n as i64,
                PointId::Str(_) => -1,
            })
            .collect();
        row.resize(k, -1);
        row
    });
    let context = || format!("writing {}", path.display());
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ivecs"))
    {
        let mut writer = VecsWriter::create(path, k)?;
        for row in rows {
            let narrow: Vec<i32> = row
                .iter()
                .map(|&id| i32::try_from(id).unwrap_or(-1))
                .collect();
            writer.write_i32_rows(&narrow)?;
        }
        writer.finish().with_context(context)
    } else {
        let mut writer = NpyWriter::create(path, DType::I64, k)?;
        for row in rows {
            writer.write_i64(&row)?;
        }
        writer.finish().with_context(context).map(drop)
    }
}

/// Rounds seconds for the report (µs resolution keeps the JSON short).
fn seconds(d: std::time::Duration) -> Value {
    Value::from((d.as_secs_f64() * 1e6).round() / 1e6)
}

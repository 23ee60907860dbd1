//! `paradox bench stream`: query latency while a sustained insert stream runs, against the
//! same queries on the idle collection, and how soon acknowledged writes are searchable.
//!
//! Phases (one fresh temporary store, fsync `interval` unless the global `--fsync` says
//! otherwise):
//! 1. **preload** `--initial` clustered vectors and wait for their indexes;
//! 2. **idle**: one thread runs queries back to back for `--seconds` (or `--query-rate`
//!    per second on a fixed schedule, each timed from its due time); per-call latencies;
//! 3. **stream**: a writer upserts batches of `--batch` at `--rate` vectors/s (paced by
//!    the clock; the vectors are made before phase 2, not while it is timed) while the
//!    query thread runs as in 2. Segments seal at `--seal-threshold`
//!    and are indexed in the background during the phase. After every acknowledged batch
//!    the writer searches for the batch's last vector, with the collection's own index and
//!    default parameters (the search a user makes), and records how long until it came
//!    back as the top hit: the visibility lag, bounded by one search because a write is
//!    applied before it is acknowledged.
//!
//! 4. **idle after**: once the stream's segments are indexed, the idle queries again, on
//!    the grown collection.
//!
//! The stream phase queries a collection growing from `--initial` to `--initial` plus
//! what it inserted, so part of its slowdown against phase 2 is the larger collection,
//! not the writes. The report gives p50/p95/p99 of the three query phases and three
//! ratios of stream p99 to idle p99: `p99_ratio` against phase 2 (the smaller
//! collection), `p99_ratio_after` against phase 4 (the larger one) and
//! `p99_ratio_matched` against phases 2 and 4 pooled, which span the sizes the stream
//! phase saw (the goal is stream p99 ≤ 2× idle p99); then the achieved insert rate and
//! the worst visibility lag. `--latencies FILE` writes every timed call, to see when the
//! slow ones happened.

use anyhow::{ensure, Context, Result};
use clap::Args;
use paradox_engine::{
    CollectionConfig, EngineOptions, IndexConfig, Metric, NewPoint, PointId, SearchRequest,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hnsw::{micros, percentile};
use crate::store::{FsyncArg, GlobalArgs};
use crate::synth::GaussianMixture;

/// Most stream vectors made before the measured phases (floats: 2 GiB).
const MAX_PREPARED_FLOATS: usize = 1 << 29;

/// `bench stream` flags.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints {\"op\":\"stream\",\"dim\",\"initial\",\"rate\",\"index\",\
    \"idle\":{\"queries\",\"p50_us\",\"p95_us\",\"p99_us\"},\"stream\":{...,\
    \"inserted\",\"inserts_per_s\",\"max_visibility_lag_us\"},\"idle_after\":{...},\
    \"p99_ratio\",\"p99_ratio_after\",\"p99_ratio_matched\"}.\n\nExample:\n  \
    paradox bench stream --initial 200000 --rate 20000 --seconds 20 --index ivf_pq"
)]
pub struct StreamArgs {
    /// Vector dimension.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub dim: u32,
    /// Vectors loaded (and indexed) before measuring.
    #[arg(long, default_value_t = 200_000)]
    pub initial: usize,
    /// Target insert rate during the stream phase, vectors per second.
    #[arg(long, default_value_t = 20_000)]
    pub rate: u32,
    /// Vectors per upsert.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Length of each measured phase.
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Collection index (`collection create --index` forms).
    #[arg(long, default_value = "auto", value_parser = crate::commands::collection::parse_index)]
    pub index: IndexConfig,
    /// Points per growing segment before it is sealed and indexed.
    #[arg(long, default_value_t = 100_000)]
    pub seal_threshold: usize,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Seed of the synthetic vectors.
    #[arg(long, default_value_t = 3)]
    pub seed: u64,
    /// Queries per second, on a fixed schedule (latency counted from each query's due
    /// time, so a stall also counts against the queries it delayed); 0: back to back,
    /// each query sent when the previous one returns.
    #[arg(long, default_value_t = 0)]
    pub query_rate: u32,
    /// Writes every timed call as a CSV line `phase,start_us,latency_us` (phase `idle`,
    /// `stream`, `idle_after`; `upsert` for the writer's batches and `visibility` for its
    /// searches until the batch's last point came back, from the acknowledgement; start
    /// counted from the first idle query).
    #[arg(long)]
    pub latencies: Option<std::path::PathBuf>,
}

/// Per-call timings of one phase: when each call started (since the benchmark's clock
/// origin) and how long it took, in call order.
type Timings = Vec<(Duration, Duration)>;

/// What the stream's writer did: vectors inserted, for how long, the worst visibility lag,
/// and the timings of its upserts and of its visibility checks.
type WriterRun = (u64, Duration, Duration, Timings, Timings);

/// Runs the benchmark and returns its report.
pub fn run(args: StreamArgs, global: &GlobalArgs) -> Result<Value> {
    let fsync = global.fsync.unwrap_or(FsyncArg::Interval);
    ensure!(args.seconds > 0, "--seconds must be positive");
    let dim = args.dim as usize;
    let store = tempfile::tempdir().context("cannot create a temporary store")?;
    let engine = paradox_engine::Engine::open_with(
        store.path(),
        EngineOptions {
            fsync: fsync.policy(),
            seal_threshold: args.seal_threshold,
            ..EngineOptions::default()
        },
    )?;
    let collection = engine.create_collection(CollectionConfig {
        index: args.index,
        ..CollectionConfig::new("bench_stream", dim, Metric::L2)
    })?;
    let mixture = GaussianMixture::new(dim, 64, args.seed);
    eprintln!("bench stream: preloading {} x {dim}", args.initial);
    for first in (0..args.initial).step_by(10_000) {
        let n = 10_000.min(args.initial - first);
        collection.upsert(points(&mixture, first as u64, n))?;
    }
    collection.flush()?;
    collection.wait_for_indexes();
    let queries = mixture.rows(u64::MAX / 2, 1000).0;
    let query_at = |i: usize| {
        let q = i % 1000;
        queries[q * dim..(q + 1) * dim].to_vec()
    };
    let phase = Duration::from_secs(args.seconds);
    // The stream's vectors, made before anything is timed: a client would make them
    // elsewhere, and making them here (in parallel, on the search pool) would take CPU
    // from the queries being measured. 10 % and a batch more than the phase should use;
    // the writer makes any beyond that as it goes.
    let planned = (u64::from(args.rate) * args.seconds * 11 / 10) as usize + args.batch as usize;
    ensure!(
        planned.saturating_mul(dim) <= MAX_PREPARED_FLOATS,
        "--rate x --seconds x --dim is {} floats of stream vectors, above {MAX_PREPARED_FLOATS} made up front; lower one of them",
        planned.saturating_mul(dim)
    );
    let prepared = mixture.rows(args.initial as u64, planned).0;

    eprintln!("bench stream: idle queries for {} s", args.seconds);
    let origin = Instant::now();
    let timed_queries = || {
        query_loop(
            &collection,
            &query_at,
            args.k,
            phase,
            args.query_rate,
            origin,
        )
    };
    let idle = timed_queries()?;

    eprintln!(
        "bench stream: {} vectors/s in batches of {} for {} s, queries alongside",
        args.rate, args.batch, args.seconds
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (collection, stop) = (collection.clone(), stop.clone());
        let (batch, rate, first_id) = (args.batch as usize, args.rate as f64, args.initial as u64);
        std::thread::spawn(move || -> Result<WriterRun> {
            let started = Instant::now();
            let (mut inserted, mut worst_lag) = (0u64, Duration::ZERO);
            let (mut upserts, mut checks) = (Vec::new(), Vec::new());
            while !stop.load(Ordering::SeqCst) {
                // Pace: the batch is due when the rate says so.
                let due = Duration::from_secs_f64(inserted as f64 / rate);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                let start = inserted as usize;
                let batch_points = match prepared.get(start * dim..(start + batch) * dim) {
                    Some(rows) => rows_to_points(rows, dim, first_id + inserted),
                    None => points(&mixture, first_id + inserted, batch),
                };
                let last = batch_points
                    .last()
                    .map(|p| (p.id.clone(), p.vector.clone()));
                let sent = Instant::now();
                collection.upsert(batch_points)?;
                let acked = Instant::now();
                upserts.push((sent - origin, acked - sent));
                inserted += batch as u64;
                if let Some((id, vector)) = last {
                    let lag = visibility_lag(&collection, id, vector, acked)?;
                    checks.push((acked - origin, lag));
                    worst_lag = worst_lag.max(lag);
                }
            }
            Ok((inserted, started.elapsed(), worst_lag, upserts, checks))
        })
    };
    let busy = timed_queries()?;
    stop.store(true, Ordering::SeqCst);
    let (inserted, write_time, worst_lag, upserts, checks) = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))??;
    let sealed_segments = collection.info().sealed_segments;
    let pending_at_end = collection.pending_index_builds();
    let maintenance = collection.maintenance_info();
    eprintln!("bench stream: waiting for the stream's indexes, then idle queries again");
    collection.flush()?;
    collection.wait_for_indexes();
    let after = timed_queries()?;
    if let Some(path) = &args.latencies {
        write_latencies(
            path,
            &[
                ("idle", &idle),
                ("stream", &busy),
                ("upsert", &upserts),
                ("visibility", &checks),
                ("idle_after", &after),
            ],
        )?;
    }
    let [idle, busy, after] = [idle, busy, after].map(sorted_latencies);
    let mut pooled: Vec<Duration> = idle.iter().chain(&after).copied().collect();
    pooled.sort_unstable();
    let p99 = |l: &[Duration]| percentile(l, 0.99).as_secs_f64().max(1e-9);
    Ok(json!({
        "op": "stream",
        "dim": dim,
        "initial": args.initial,
        "rate": args.rate,
        "batch": args.batch,
        "seal_threshold": args.seal_threshold,
        "index": args.index,
        "fsync": fsync.name(),
        "query_rate": args.query_rate,
        "idle": summary(&idle),
        "stream": {
            "latency": summary(&busy),
            "inserted": inserted,
            "inserts_per_s": inserted as f64 / write_time.as_secs_f64(),
            "max_visibility_lag_us": micros(worst_lag),
            "sealed_segments": sealed_segments,
            "index_builds_pending_at_end": pending_at_end,
            "maintenance": maintenance,
        },
        "idle_after": summary(&after),
        "p99_ratio": p99(&busy) / p99(&idle),
        "p99_ratio_after": p99(&busy) / p99(&after),
        "p99_ratio_matched": p99(&busy) / p99(&pooled),
    }))
}

fn points(mixture: &GaussianMixture, first: u64, n: usize) -> Vec<NewPoint> {
    let (data, _) = mixture.rows(first, n);
    rows_to_points(&data, data.len() / n.max(1), first)
}

/// Points `first, first + 1, ...` with the vectors of `rows` (row-major, `dim` wide).
fn rows_to_points(rows: &[f32], dim: usize, first: u64) -> Vec<NewPoint> {
    rows.chunks_exact(dim.max(1))
        .enumerate()
        .map(|(i, row)| NewPoint::new(first + i as u64, row.to_vec()))
        .collect()
}

/// Searches until `id` comes back as the top hit for its own vector; the time since
/// `acked`. The search is the collection's default one, not an exact scan: an exact scan
/// of the whole collection per check would take a large share of the cores the measured
/// queries run on, and hold the state's read lock long enough to queue background swaps
/// (and every query behind them), so the check would distort what it measures.
fn visibility_lag(
    collection: &paradox_engine::Collection,
    id: PointId,
    vector: Vec<f32>,
    acked: Instant,
) -> Result<Duration> {
    let request = SearchRequest::new(vector, 1);
    for _ in 0..10_000 {
        if collection.search(&request)?.first().map(|h| &h.id) == Some(&id) {
            return Ok(acked.elapsed());
        }
    }
    anyhow::bail!("acknowledged point {id:?} not searchable after 10000 searches")
}

/// One query at a time for `phase`; per-call timings (see [`Timings`]).
fn query_loop(
    collection: &paradox_engine::Collection,
    query_at: &dyn Fn(usize) -> Vec<f32>,
    k: usize,
    phase: Duration,
    query_rate: u32,
    origin: Instant,
) -> Result<Timings> {
    let started = Instant::now();
    let interval = (query_rate > 0).then(|| Duration::from_secs_f64(1.0 / query_rate as f64));
    let mut latencies = Vec::new();
    let mut i = 0;
    while started.elapsed() < phase {
        let request = SearchRequest::new(query_at(i), k);
        // On a schedule: a query sent late (the previous one overran its slot) is timed
        // from when it was due; one sent on time from when it was sent (a sleep's
        // overshoot is not the engine's).
        let asked = match interval {
            Some(interval) => {
                let due = started + interval * i as u32;
                match due.checked_duration_since(Instant::now()) {
                    Some(wait) => {
                        std::thread::sleep(wait);
                        Instant::now()
                    }
                    None => due,
                }
            }
            None => Instant::now(),
        };
        std::hint::black_box(collection.search(&request)?);
        latencies.push((asked - origin, asked.elapsed()));
        i += 1;
    }
    Ok(latencies)
}

fn sorted_latencies(timings: Timings) -> Vec<Duration> {
    let mut latencies: Vec<Duration> = timings.into_iter().map(|(_, took)| took).collect();
    latencies.sort_unstable();
    latencies
}

/// Writes `--latencies`: one CSV line per call, phase by phase.
fn write_latencies(path: &std::path::Path, phases: &[(&str, &Timings)]) -> Result<()> {
    use std::io::Write;
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "phase,start_us,latency_us")?;
    for (phase, timings) in phases {
        for (start, took) in timings.iter() {
            writeln!(out, "{phase},{},{}", start.as_micros(), took.as_micros())?;
        }
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

fn summary(sorted: &[Duration]) -> Value {
    json!({
        "queries": sorted.len(),
        "p50_us": micros(percentile(sorted, 0.50)),
        "p95_us": micros(percentile(sorted, 0.95)),
        "p99_us": micros(percentile(sorted, 0.99)),
    })
}

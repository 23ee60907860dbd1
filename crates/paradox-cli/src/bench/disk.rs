//! `paradox bench disk`: IVF search with the codes and vectors left on disk, under a RAM
//! budget set from outside (a memory cgroup; `bench/disk.sh` sets one up).
//!
//! Two phases, run as two processes so the query phase can be confined:
//! * `--phase build`: loads the base into a store at `--store` as one sealed segment with
//!   the given IVF index (`on_disk` forced on) and waits for the index;
//! * `--phase query`: reopens the store, unmaps and evicts its files' pages
//!   (`madvise` / `posix_fadvise(DONTNEED)`, best effort), and runs the queries
//!   one at a time for each `--nprobe`: recall@10, p50/p95/p99 latency, the process's peak
//!   RSS and, when run in a memory cgroup, its peak usage (page cache included). With
//!   `--cgroup` it joins that memory cgroup only after opening the store, so the group's
//!   limit bounds what searching reads and allocates, not the per-point state the open
//!   builds (reported as `open_anon_bytes`). With
//!   `--cache-bytes` the lists are read into a list cache of that budget (the counters of
//!   which are reported per `--nprobe`) instead of through the mapped index file. With
//!   `--batch N` the queries go N at a time through `search_batch` (latencies per batch;
//!   `qps` is the whole pass either way).

use anyhow::{ensure, Context, Result};
use clap::{Args, ValueEnum};
use paradox_engine::{
    CollectionConfig, Engine, EngineOptions, FsyncPolicy, IndexConfig, NewPoint, PointId,
    SearchRequest,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::hnsw::{micros, percentile, read_truth, status_kib};
use crate::formats::read_vectors;
use crate::store::MetricArg;

/// Which half of the benchmark to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Phase {
    /// Create the store and build its index.
    Build,
    /// Query the store cold.
    Query,
}

/// `bench disk` flags.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints {\"op\":\"disk\",\"phase\",...}; the query phase adds \
    \"curve\":[{\"nprobe\",\"recall_at_10\",\"p50_us\",\"p95_us\",\"p99_us\"}],\
    \"peak_rss_bytes\",\"cgroup_peak_bytes\".\n\nExample:\n  \
    paradox bench disk --phase build --store /data/s --base b.npy --queries q.npy \\\n    \
    --index '{\"kind\":\"ivf_pq\",\"m\":32,\"nlist\":4096}'\n  \
    paradox bench disk --phase query --store /data/s --queries q.npy --gt gt.npy"
)]
pub struct DiskArgs {
    /// Phase to run.
    #[arg(long, value_enum)]
    pub phase: Phase,
    /// Store directory (created by the build phase).
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// Base vectors (.npy or .fvecs), build phase.
    #[arg(long, value_name = "FILE")]
    pub base: Option<PathBuf>,
    /// Query vectors (.npy or .fvecs).
    #[arg(long, value_name = "FILE")]
    pub queries: PathBuf,
    /// Exact neighbours (int64 .npy, at least 10 columns), query phase.
    #[arg(long, value_name = "FILE")]
    pub gt: Option<PathBuf>,
    /// Metric, build phase.
    #[arg(long, value_enum, default_value = "l2")]
    pub metric: MetricArg,
    /// IVF index, build phase (`on_disk` is forced on).
    #[arg(long, default_value = "ivf_pq", value_parser = crate::commands::collection::parse_index)]
    pub index: IndexConfig,
    /// Lists visited, comma-separated, query phase.
    #[arg(long, value_delimiter = ',', default_value = "8,16,32,64")]
    pub nprobe: Vec<usize>,
    /// Query phase: read lists into a cache of this many bytes (the index's
    /// `cache_bytes`; 0 = map the index file) instead of the store's setting.
    #[arg(long, value_name = "BYTES")]
    pub cache_bytes: Option<u64>,
    /// Query phase: move into this memory cgroup (v1 or v2 directory) once the store is
    /// open, so its limit bounds what searching adds (lists, vectors, page cache) and not
    /// the state opening builds (reported as `open_anon_bytes`).
    #[arg(long, value_name = "DIR")]
    pub cgroup: Option<PathBuf>,
    /// Query phase: send the queries in batches of this many (`search_batch`, grouped by
    /// list) instead of one at a time; latencies are then per batch.
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
}

const COLLECTION: &str = "disk";

/// Runs one phase and returns its report.
pub fn run(args: DiskArgs) -> Result<Value> {
    match args.phase {
        Phase::Build => build(args),
        Phase::Query => query(args),
    }
}

fn build(args: DiskArgs) -> Result<Value> {
    let base_path = args.base.as_ref().context("--phase build needs --base")?;
    let mut ivf = args.index.ivf().context(
        "bench disk needs an IVF index (ivf_pq, ivf_opq_pq, ivf_pq4, ivf_sq8, ivf_flat)",
    )?;
    ivf.on_disk = true;
    let index = args.index.with_ivf(ivf);
    let base = read_vectors(base_path)?;
    ensure!(base.rows > 0, "the base file holds no vectors");
    let engine = Engine::open_with(
        &args.store,
        EngineOptions {
            fsync: FsyncPolicy::Never,
            // One sealed segment: neither the row nor the byte threshold splits the base.
            seal_threshold: base.rows,
            seal_bytes: usize::MAX,
            ..EngineOptions::default()
        },
    )?;
    let collection = engine.create_collection(CollectionConfig {
        index,
        ..CollectionConfig::new(COLLECTION, base.dim, args.metric.metric())
    })?;
    let started = Instant::now();
    for first in (0..base.rows).step_by(10_000) {
        let last = (first + 10_000).min(base.rows);
        let points = (first..last)
            .map(|row| NewPoint::new(row as u64, base.row(row).to_vec()))
            .collect();
        collection.upsert(points)?;
    }
    collection.flush()?;
    collection.wait_for_indexes();
    let info = collection.info();
    Ok(json!({
        "op": "disk",
        "phase": "build",
        "n": base.rows,
        "dim": base.dim,
        "index": collection.index_config(),
        "seconds": super::seconds(started.elapsed()),
        "segment_bytes": info.segment_bytes,
        "sealed_segments": info.sealed_segments,
        "vector_bytes": base.rows * base.dim * 4,
    }))
}

fn query(args: DiskArgs) -> Result<Value> {
    let queries = read_vectors(&args.queries)?;
    let truth = match &args.gt {
        Some(path) => Some(read_truth(path, queries.rows, 10)?),
        None => None,
    };
    // No maintenance worker: nothing maps or unmaps store files behind the queries' back
    // (`drop_mapped_pages` relies on it).
    let engine = Engine::open_with(
        &args.store,
        EngineOptions {
            maintenance_worker: false,
            ..EngineOptions::default()
        },
    )?;
    let collection = engine.collection(COLLECTION)?;
    if let Some(cache_bytes) = args.cache_bytes {
        let mut ivf = collection
            .index_config()
            .ivf()
            .context("the store's collection has no IVF index")?;
        ivf.cache_bytes = cache_bytes;
        // Reopens the index files with the codes where asked; nothing is rebuilt.
        collection.set_index_config(collection.index_config().with_ivf(ivf))?;
    }
    ensure!(
        collection.pending_index_builds() == 0,
        "the store's index files are missing or stale: run --phase build again"
    );
    let files = args.store.join("collections").join(COLLECTION);
    // After the open (which reads every section once to check its checksum), every page
    // of the store goes: those this process maps stay cached whatever fadvise says, so
    // they are unmapped first.
    let unmapped = drop_mapped_pages(&files);
    let evicted = evict_from_page_cache(&files)?;
    let open_anon_bytes = status_kib("RssAnon:").map(|k| k * 1024);
    if let Some(group) = &args.cgroup {
        // Charges made before the move stay where they were (cgroup v1 without
        // move_charge_at_immigrate, and v2): the limit applies to what comes after.
        std::fs::write(group.join("cgroup.procs"), std::process::id().to_string())
            .with_context(|| format!("joining the memory cgroup {}", group.display()))?;
    }
    let batch = args.batch.unwrap_or(1).max(1);
    let mut curve = Vec::new();
    for &nprobe in &args.nprobe {
        let mut latencies = Vec::with_capacity(queries.rows);
        let mut hits = 0usize;
        let started = Instant::now();
        for first in (0..queries.rows).step_by(batch) {
            let asked: Vec<usize> = (first..(first + batch).min(queries.rows)).collect();
            let requests: Vec<SearchRequest> = asked
                .iter()
                .map(|&q| {
                    let mut request = SearchRequest::new(queries.row(q).to_vec(), 10);
                    request.params.nprobe = Some(nprobe);
                    request
                })
                .collect();
            let sent = Instant::now();
            let found = if args.batch.is_some() {
                collection.search_batch(&requests)?
            } else {
                vec![collection.search(&requests[0])?]
            };
            latencies.push(sent.elapsed());
            if let Some(truth) = &truth {
                for (&q, found) in asked.iter().zip(&found) {
                    hits += found
                        .iter()
                        .filter(|h| matches!(h.id, PointId::Num(id) if truth[q].contains(&id)))
                        .count();
                }
            }
        }
        let total = started.elapsed();
        latencies.sort_unstable();
        let point = json!({
            "nprobe": nprobe,
            "batch": args.batch,
            "qps": queries.rows as f64 / total.as_secs_f64().max(1e-9),
            "recall_at_10": truth.as_ref().map(|_| hits as f64 / (queries.rows * 10) as f64),
            "p50_us": micros(percentile(&latencies, 0.50)),
            "p95_us": micros(percentile(&latencies, 0.95)),
            "p99_us": micros(percentile(&latencies, 0.99)),
            "mean_us": micros(latencies.iter().sum::<Duration>() / latencies.len().max(1) as u32),
            "list_cache": collection.info().ivf_list_cache,
        });
        eprintln!("bench disk: {point}");
        curve.push(point);
    }
    Ok(json!({
        "op": "disk",
        "phase": "query",
        "nq": queries.rows,
        "evicted_bytes": evicted,
        "unmapped_bytes": unmapped,
        "open_anon_bytes": open_anon_bytes,
        "anon_bytes_after": status_kib("RssAnon:").map(|k| k * 1024),
        "curve": curve,
        "peak_rss_bytes": status_kib("VmHWM:").map(|k| k * 1024),
        "cgroup_peak_bytes": cgroup_peak_bytes(),
    }))
}

/// Drops this process's page-table entries for every mapping of a file under `dir`
/// (`madvise(MADV_DONTNEED)`, found in `/proc/self/maps`), so the next eviction can drop
/// those pages from the page cache; returns the bytes of the mappings.
fn drop_mapped_pages(dir: &Path) -> u64 {
    let mut total = 0;
    #[cfg(target_os = "linux")]
    {
        let Ok(dir) = dir.canonicalize() else {
            return 0;
        };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return 0;
        };
        for line in maps.lines() {
            // `start-end perms offset dev inode path`
            let mut fields = line.split_whitespace();
            let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some(path) = fields.nth(3) else {
                continue;
            };
            if !Path::new(path).starts_with(&dir) || perms.contains('w') {
                continue;
            }
            let Some((start, end)) = range.split_once('-').and_then(|(a, b)| {
                Some((
                    usize::from_str_radix(a, 16).ok()?,
                    usize::from_str_radix(b, 16).ok()?,
                ))
            }) else {
                continue;
            };
            // SAFETY: the range is a read-only mapping of a store file (from the kernel's
            // own list), shared or private and never written. For such a mapping
            // MADV_DONTNEED only drops the page-table entries: the next read faults the
            // same bytes back in from the file, so no slice into the mapping sees a change.
            // Nothing unmaps it meanwhile (which could let the range be reused by memory
            // that DONTNEED would zero): the engine runs no maintenance worker, its index
            // builds are done (checked by the caller), and this thread is the only one
            // using it.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
            total += (end - start) as u64;
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
    total
}

/// Drops the page-cache pages of every file in `dir` (recursively); returns their bytes.
fn evict_from_page_cache(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            total += evict_from_page_cache(&path)?;
            continue;
        }
        let file = std::fs::File::open(&path)?;
        total += file.metadata()?.len();
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a plain syscall on an open descriptor; DONTNEED only drops clean
            // cached pages and never changes the file.
            unsafe {
                libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            }
        }
    }
    Ok(total)
}

/// Peak memory of this process's memory cgroup (v1 or v2), page cache included.
fn cgroup_peak_bytes() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let candidates = if controllers.split(',').any(|c| c == "memory") {
            vec![format!(
                "/sys/fs/cgroup/memory{path}/memory.max_usage_in_bytes"
            )]
        } else if controllers.is_empty() {
            vec![format!("/sys/fs/cgroup{path}/memory.peak")]
        } else {
            continue;
        };
        for file in candidates {
            if let Some(v) = std::fs::read_to_string(file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return Some(v);
            }
        }
    }
    None
}

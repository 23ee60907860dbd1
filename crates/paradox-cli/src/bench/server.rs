//! `paradox bench server`: a load generator for running servers. It drives Paradox over
//! gRPC and over REST, and Chroma over its HTTP API, with the same queries from the same
//! process (the harness is `bench/server.sh`, which starts the servers).
//!
//! What is measured, and how:
//!
//! * **runs**: for each concurrency `c` (`--concurrency`, default 1, 8, 64) and each
//!   target in turn (so drift on a shared machine hits all of them alike), `c` closed-loop
//!   workers, each with its own connection, send one search at a time for `--seconds`
//!   after `--warmup-seconds` untimed. Worker `w` sends queries `w, w + c, w + 2c, ...`
//!   (cycling through the query file). QPS is successful searches over the wall time of
//!   the timed phase; p50/p95/p99 are per request, as the client sees them; recall@10 is
//!   graded on every timed answer against the ground truth. Failures are counted (no
//!   retries). With `--server-pid` / `--chroma-pid`, the server's CPU time per query is
//!   reported too, and the load generator's own (on a small machine they share cores);
//! * **ef**: Paradox's beam width is per request: `--ef`, or the smallest value of
//!   `--ef-grid` whose recall@10 over every query reaches `--target-recall` (one untimed
//!   pass each). Chroma's `ef_search` is a collection setting (`--chroma-ef` at load; the
//!   harness tunes it, restarting Chroma in between);
//! * **soak** (`--soak-seconds`): `--soak-concurrency` workers against one Paradox
//!   target, each operation a search or, with probability `--soak-write-fraction`, the
//!   upsert of one random base row with its own vector (so the ground truth stays true).
//!   Reports errors, latencies and recall after `--soak-warmup-seconds`, and the server's
//!   RSS over time (`--server-pid`).
//!
//! `--recall-only` prints each target's recall@10 over every query and exits (the
//! harness's Chroma `ef_search` search). `--load-chroma` (re)creates Chroma's collection
//! from `--base` first. Paradox's collection is loaded before its server starts (`paradox
//! import`), so its segments are sealed and indexed when the clock starts.

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hnsw::read_truth;
use super::server_target::{self, ChromaHnsw, Connection, Endpoint, Kind};
use crate::formats::{read_vectors, Matrix};

/// Neighbours graded.
const RECALL_AT: usize = 10;
/// Workers of an untimed recall pass.
const PASS_CONCURRENCY: usize = 8;
/// Longest error message kept in a report.
const ERROR_TEXT: usize = 200;

/// `bench server` flags.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints {\"op\":\"server\",\"queries\",\"k\",\"ef\",\"chroma_ef\",\
    \"machine\",\"runs\":[{\"target\",\"concurrency\",\"queries\",\"errors\",\"seconds\",\"qps\",\
    \"p50_ms\",\"p95_ms\",\"p99_ms\",\"recall_at_10\",\"server_cpu_ms_per_query\",\
    \"client_cpu_ms_per_query\"}],\"ratios\":[{\"concurrency\",\"grpc_over_chroma\",\
    \"rest_over_chroma\"}],\"soak\":{..}}.\n\nExample:\n  \
    paradox bench server --grpc http://127.0.0.1:8334 --rest http://127.0.0.1:8333 \\\n    \
    --chroma http://127.0.0.1:8000 --collection minilm --queries q.npy --gt gt.npy \\\n    \
    --server-pid $PARADOX_PID --chroma-pid $CHROMA_PID --concurrency 1,8,64 --seconds 10"
)]
pub struct ServerArgs {
    /// Paradox gRPC endpoint, e.g. http://127.0.0.1:8334.
    #[arg(long, value_name = "URL")]
    pub grpc: Option<String>,
    /// Paradox REST endpoint, e.g. http://127.0.0.1:8333.
    #[arg(long, value_name = "URL")]
    pub rest: Option<String>,
    /// Chroma server, e.g. http://127.0.0.1:8000.
    #[arg(long, value_name = "URL")]
    pub chroma: Option<String>,
    /// Paradox API key.
    #[arg(long, env = "PARADOX_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Collection name (the same on every server).
    #[arg(long, default_value = "minilm")]
    pub collection: String,
    /// Query vectors (.npy or .fvecs).
    #[arg(long, value_name = "FILE")]
    pub queries: PathBuf,
    /// Exact neighbours of the queries: int64 .npy, best first, at least 10 columns.
    #[arg(long, value_name = "FILE")]
    pub gt: PathBuf,
    /// Base vectors (row i has id i): for --load-chroma and the soak's upserts.
    #[arg(long, value_name = "FILE")]
    pub base: Option<PathBuf>,
    /// Neighbours per search (at least 10).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Concurrencies to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub concurrency: Vec<usize>,
    /// Timed seconds per run.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Untimed seconds before each run.
    #[arg(long, default_value_t = 2.0)]
    pub warmup_seconds: f64,
    /// Paradox's per-request beam width [default: tuned over --ef-grid].
    #[arg(long)]
    pub ef: Option<usize>,
    /// Beam widths tried, in order, when tuning `ef`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "16,24,32,48,64,96,128,192,256,384,512"
    )]
    pub ef_grid: Vec<usize>,
    /// Recall@10 the tuned `ef` must reach.
    #[arg(long, default_value_t = 0.95)]
    pub target_recall: f64,
    /// Print each target's recall@10 over every query and exit.
    #[arg(long)]
    pub recall_only: bool,
    /// (Re)create Chroma's collection (cosine HNSW) from --base before measuring.
    #[arg(long, requires_all = ["chroma", "base"])]
    pub load_chroma: bool,
    /// Chroma HNSW links per node (`max_neighbors`), for --load-chroma.
    #[arg(long, default_value_t = 16)]
    pub chroma_m: usize,
    /// Chroma HNSW build beam width, for --load-chroma.
    #[arg(long, default_value_t = 200)]
    pub chroma_ef_construction: usize,
    /// Chroma `ef_search`: set at --load-chroma, or updated (then restart Chroma).
    #[arg(long)]
    pub chroma_ef: Option<usize>,
    /// Paradox server process, for its CPU time and RSS.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Chroma server process, for its CPU time.
    #[arg(long, value_name = "PID")]
    pub chroma_pid: Option<u32>,
    /// Skip the query runs (e.g. to soak only).
    #[arg(long)]
    pub no_runs: bool,
    /// Soak for this long against gRPC (else REST): mixed searches and upserts.
    #[arg(long, value_name = "SECONDS")]
    pub soak_seconds: Option<f64>,
    /// Soak workers.
    #[arg(long, default_value_t = 32)]
    pub soak_concurrency: usize,
    /// Share of soak operations that are upserts.
    #[arg(long, default_value_t = 0.1)]
    pub soak_write_fraction: f64,
    /// Soak seconds before latencies count and the "after warm-up" RSS is read.
    #[arg(long, default_value_t = 60.0)]
    pub soak_warmup_seconds: f64,
    /// Seconds between soak samples (RSS and counters).
    #[arg(long, default_value_t = 30.0)]
    pub soak_sample_seconds: f64,
}

/// The queries and what they should find.
#[derive(Debug)]
struct Workload {
    queries: Matrix,
    truth: Vec<Vec<u64>>,
    base: Option<Matrix>,
    k: usize,
}

impl Workload {
    /// How many of `found`'s first 10 ids are among query `q`'s true 10 nearest.
    fn hits(&self, q: usize, found: &[u64]) -> u64 {
        let truth = &self.truth[q];
        found
            .iter()
            .take(RECALL_AT)
            .filter(|id| truth.contains(id))
            .count() as u64
    }
}

/// What one worker saw.
#[derive(Debug, Default)]
struct Tally {
    latencies_us: Vec<u32>,
    hits: u64,
    errors: u64,
    error_texts: HashMap<String, u64>,
}

impl Tally {
    fn failed(&mut self, error: &anyhow::Error) {
        self.errors += 1;
        let mut text = format!("{error:#}");
        text.truncate(ERROR_TEXT);
        *self.error_texts.entry(text).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.hits += other.hits;
        self.errors += other.errors;
        for (text, n) in other.error_texts {
            *self.error_texts.entry(text).or_default() += n;
        }
    }

    fn recall(&self) -> f64 {
        let graded = self.latencies_us.len();
        if graded == 0 {
            return 0.0;
        }
        round(self.hits as f64 / (graded * RECALL_AT) as f64, 4)
    }

    /// Latency percentiles in ms (the latencies must be sorted).
    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        round(f64::from(self.latencies_us[index]) / 1000.0, 3)
    }

    fn errors_json(&self) -> Value {
        let mut texts: Vec<_> = self.error_texts.iter().collect();
        texts.sort_by(|a, b| b.1.cmp(a.1));
        texts
            .into_iter()
            .take(5)
            .map(|(text, n)| json!({"count": n, "message": text}))
            .collect()
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

fn micros(elapsed: Duration) -> u32 {
    u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX)
}

/// Runs `bench server`.
pub fn run(args: ServerArgs) -> Result<Value> {
    ensure!(
        args.grpc.is_some() || args.rest.is_some() || args.chroma.is_some(),
        "give at least one target: --grpc, --rest or --chroma"
    );
    ensure!(
        args.k >= RECALL_AT,
        "--k {} is below {RECALL_AT}: recall@{RECALL_AT} needs at least {RECALL_AT} hits",
        args.k
    );
    ensure!(
        args.concurrency.iter().all(|&c| c > 0) && args.soak_concurrency > 0,
        "concurrency must be at least 1"
    );
    ensure!(
        (0.0..=1.0).contains(&args.soak_write_fraction),
        "--soak-write-fraction must be within 0..1"
    );
    if args.soak_seconds.is_some() {
        ensure!(
            args.grpc.is_some() || args.rest.is_some(),
            "the soak runs against Paradox: give --grpc or --rest"
        );
        ensure!(
            args.base.is_some(),
            "the soak upserts base rows: give --base"
        );
    }
    let queries = read_vectors(&args.queries)?;
    ensure!(queries.rows > 0, "{}: no queries", args.queries.display());
    let truth = read_truth(&args.gt, queries.rows, RECALL_AT)?;
    let base = match &args.base {
        Some(path) => {
            let base = read_vectors(path)?;
            ensure!(
                base.dim == queries.dim,
                "dimension mismatch: base vectors have dimension {}, queries {}",
                base.dim,
                queries.dim
            );
            Some(base)
        }
        None => None,
    };
    let workload = Arc::new(Workload {
        queries,
        truth,
        base,
        k: args.k,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(drive(args, workload))
}

async fn drive(args: ServerArgs, workload: Arc<Workload>) -> Result<Value> {
    let machine_start = load_average();
    if args.load_chroma {
        let (url, base) = (args.chroma.as_deref(), workload.base.as_ref());
        let (Some(url), Some(base)) = (url, base) else {
            bail!("--load-chroma needs --chroma and --base");
        };
        let hnsw = ChromaHnsw {
            m: args.chroma_m,
            ef_construction: args.chroma_ef_construction,
            ef_search: args.chroma_ef.unwrap_or(100),
        };
        eprintln!("loading {} rows into Chroma...", base.rows);
        let seconds = server_target::load_chroma(url, &args.collection, hnsw, base).await?;
        eprintln!("Chroma loaded in {seconds:.1} s");
    } else if let (Some(url), Some(ef)) = (&args.chroma, args.chroma_ef) {
        server_target::set_chroma_ef(url, &args.collection, ef).await?;
    }

    let mut targets = Vec::new();
    for (kind, url) in [
        (Kind::Grpc, &args.grpc),
        (Kind::Rest, &args.rest),
        (Kind::Chroma, &args.chroma),
    ] {
        if let Some(url) = url {
            let mut endpoint = Endpoint::new(kind, url, args.api_key.clone(), &args.collection);
            endpoint.resolve().await?;
            targets.push(endpoint);
        }
    }
    let pid_of = |kind: Kind| match kind {
        Kind::Chroma => args.chroma_pid,
        Kind::Grpc | Kind::Rest => args.server_pid,
    };

    if args.recall_only {
        let mut recalls = serde_json::Map::new();
        for target in &targets {
            let recall = recall_pass(target, &workload, args.ef).await?;
            eprintln!("{}: recall@10 {recall:.4}", target.kind.name());
            recalls.insert(target.kind.name().into(), recall.into());
        }
        return Ok(json!({"op": "server_recall", "ef": args.ef, "recall_at_10": recalls}));
    }

    let paradox = targets.iter().find(|t| t.kind != Kind::Chroma).cloned();
    let (ef, tuning) = match (args.ef, &paradox) {
        (Some(ef), _) => (Some(ef), Value::Null),
        (None, Some(target)) => {
            let (ef, curve) = tune_ef(target, &workload, &args.ef_grid, args.target_recall).await?;
            (Some(ef), curve)
        }
        (None, None) => (None, Value::Null),
    };

    let mut runs = Vec::new();
    if !args.no_runs {
        for &concurrency in &args.concurrency {
            for target in &targets {
                let run = timed_run(
                    target,
                    concurrency,
                    &args,
                    &workload,
                    ef,
                    pid_of(target.kind),
                )
                .await?;
                eprintln!("{}", run_line(&run));
                runs.push(run);
            }
        }
    }
    let ratios = ratios(&runs, &args.concurrency);

    let soak = match (args.soak_seconds, &paradox) {
        (Some(seconds), Some(target)) => {
            let target = targets
                .iter()
                .find(|t| t.kind == Kind::Grpc)
                .unwrap_or(target);
            Some(soak(target, seconds, &args, &workload, ef).await?)
        }
        _ => None,
    };

    let report = json!({
        "op": "server",
        "collection": args.collection,
        "queries": workload.queries.rows,
        "dim": workload.queries.dim,
        "k": args.k,
        "ef": ef,
        "ef_tuning": tuning,
        "chroma_ef": args.chroma_ef,
        "seconds_per_run": args.seconds,
        "connections": "one per worker (gRPC: HTTP/2, REST and Chroma: HTTP/1.1 keep-alive)",
        "machine": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "cpu": cpu_model(),
            "load_average_start": machine_start,
            "load_average_end": load_average(),
        },
        "runs": runs,
        "ratios": ratios,
        "soak": soak,
    });
    print_summary(&report);
    Ok(report)
}

/// Workers' connections, opened before any clock starts.
async fn connect(target: &Endpoint, workers: usize) -> Result<Vec<Connection>> {
    let mut connections = Vec::with_capacity(workers);
    for _ in 0..workers {
        connections.push(Connection::open(target).await?);
    }
    Ok(connections)
}

/// Recall@10 over every query once (untimed), `PASS_CONCURRENCY` workers.
async fn recall_pass(
    target: &Endpoint,
    workload: &Arc<Workload>,
    ef: Option<usize>,
) -> Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for connection in connect(target, PASS_CONCURRENCY).await? {
        let (workload, next) = (workload.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut hits = 0u64;
            loop {
                let q = next.fetch_add(1, Ordering::Relaxed);
                if q >= workload.queries.rows {
                    return Ok::<u64, anyhow::Error>(hits);
                }
                let found = connection
                    .search(workload.queries.row(q), workload.k, ef)
                    .await
                    .with_context(|| format!("query {q}"))?;
                hits += workload.hits(q, &found);
            }
        }));
    }
    let mut hits = 0;
    for task in tasks {
        hits += task.await.context("a recall worker panicked")??;
    }
    Ok(round(
        hits as f64 / (workload.queries.rows * RECALL_AT) as f64,
        4,
    ))
}

/// The smallest `ef` of `grid` reaching `target_recall`, and the recall of each tried.
async fn tune_ef(
    target: &Endpoint,
    workload: &Arc<Workload>,
    grid: &[usize],
    target_recall: f64,
) -> Result<(usize, Value)> {
    ensure!(!grid.is_empty(), "--ef-grid is empty");
    let mut curve = Vec::new();
    for &ef in grid {
        let recall = recall_pass(target, workload, Some(ef)).await?;
        eprintln!("tuning: ef {ef} recall@10 {recall:.4}");
        curve.push(json!({"ef": ef, "recall_at_10": recall}));
        if recall >= target_recall {
            return Ok((ef, json!({"target_recall": target_recall, "tried": curve})));
        }
    }
    let largest = *grid.last().expect("grid is not empty");
    eprintln!("tuning: no ef in the grid reaches recall@10 {target_recall}; using {largest}");
    Ok((
        largest,
        json!({"target_recall": target_recall, "tried": curve, "reached": false}),
    ))
}

/// Closed-loop workers searching until `until`; latencies counted from `count_from`.
async fn search_loop(
    connections: Vec<Connection>,
    workload: &Arc<Workload>,
    ef: Option<usize>,
    count_from: Instant,
    until: Instant,
) -> Result<(Vec<Connection>, Tally)> {
    let workers = connections.len();
    let mut tasks = Vec::with_capacity(workers);
    for (worker, connection) in connections.into_iter().enumerate() {
        let workload = workload.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut i = worker;
            while Instant::now() < until {
                let q = i % workload.queries.rows;
                i += workers;
                let sent = Instant::now();
                let answer = connection
                    .search(workload.queries.row(q), workload.k, ef)
                    .await;
                if sent < count_from {
                    continue;
                }
                match answer {
                    Ok(found) => {
                        tally.latencies_us.push(micros(sent.elapsed()));
                        tally.hits += workload.hits(q, &found);
                    }
                    Err(e) => tally.failed(&e),
                }
            }
            (connection, tally)
        }));
    }
    let mut connections = Vec::with_capacity(workers);
    let mut tally = Tally::default();
    for task in tasks {
        let (connection, worker) = task.await.context("a search worker panicked")?;
        connections.push(connection);
        tally.merge(worker);
    }
    Ok((connections, tally))
}

/// One timed run of `concurrency` workers against `target`.
async fn timed_run(
    target: &Endpoint,
    concurrency: usize,
    args: &ServerArgs,
    workload: &Arc<Workload>,
    ef: Option<usize>,
    server_pid: Option<u32>,
) -> Result<Value> {
    let ef = if target.kind == Kind::Chroma {
        None
    } else {
        ef
    };
    let connections = connect(target, concurrency).await?;
    let warm_until = Instant::now() + Duration::from_secs_f64(args.warmup_seconds);
    let (connections, _) = search_loop(connections, workload, ef, warm_until, warm_until).await?;

    let server_cpu = cpu_seconds(server_pid);
    let client_cpu = cpu_seconds(None);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds);
    let (_, mut tally) = search_loop(connections, workload, ef, started, until).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let per_query = |before: Option<f64>, pid: Option<u32>| -> Value {
        match (before, cpu_seconds(pid)) {
            (Some(b), Some(a)) if !tally.latencies_us.is_empty() => {
                round((a - b) * 1000.0 / tally.latencies_us.len() as f64, 4).into()
            }
            _ => Value::Null,
        }
    };
    let server_cpu = if server_pid.is_some() {
        per_query(server_cpu, server_pid)
    } else {
        Value::Null
    };
    let client_cpu = per_query(client_cpu, None);
    tally.latencies_us.sort_unstable();
    Ok(json!({
        "target": target.kind.name(),
        "concurrency": concurrency,
        "queries": tally.latencies_us.len(),
        "errors": tally.errors,
        "error_messages": tally.errors_json(),
        "seconds": round(elapsed, 3),
        "qps": round(tally.latencies_us.len() as f64 / elapsed, 1),
        "p50_ms": tally.percentile_ms(0.50),
        "p95_ms": tally.percentile_ms(0.95),
        "p99_ms": tally.percentile_ms(0.99),
        "recall_at_10": tally.recall(),
        "server_cpu_ms_per_query": server_cpu,
        "client_cpu_ms_per_query": client_cpu,
    }))
}

/// Paradox QPS over Chroma QPS per concurrency, where both ran.
fn ratios(runs: &[Value], concurrencies: &[usize]) -> Value {
    let qps = |target: &str, c: usize| {
        runs.iter()
            .find(|r| r["target"] == target && r["concurrency"] == c)
            .and_then(|r| r["qps"].as_f64())
    };
    concurrencies
        .iter()
        .filter_map(|&c| {
            let chroma = qps(Kind::Chroma.name(), c).filter(|&q| q > 0.0)?;
            let over = |target: Kind| qps(target.name(), c).map(|q| round(q / chroma, 3));
            Some(json!({
                "concurrency": c,
                "grpc_over_chroma": over(Kind::Grpc),
                "rest_over_chroma": over(Kind::Rest),
            }))
        })
        .collect()
}

/// Counters the soak's workers share with its sampler.
#[derive(Debug, Default)]
struct SoakCounters {
    searches: AtomicU64,
    upserts: AtomicU64,
    errors: AtomicU64,
}

/// Mixed searches and upserts for `seconds` (see the module doc).
async fn soak(
    target: &Endpoint,
    seconds: f64,
    args: &ServerArgs,
    workload: &Arc<Workload>,
    ef: Option<usize>,
) -> Result<Value> {
    let rows = workload.base.as_ref().map_or(0, |b| b.rows) as u64;
    ensure!(rows > 0, "the soak needs base rows to upsert");
    eprintln!(
        "soak: {seconds} s against {}, {} workers, {:.0}% upserts",
        target.kind.name(),
        args.soak_concurrency,
        args.soak_write_fraction * 100.0
    );
    let connections = connect(target, args.soak_concurrency).await?;
    let counters = Arc::new(SoakCounters::default());
    let started = Instant::now();
    let warm_until = started + Duration::from_secs_f64(args.soak_warmup_seconds.min(seconds));
    let until = started + Duration::from_secs_f64(seconds);
    let write_threshold = (args.soak_write_fraction * u64::MAX as f64) as u64;

    let sampler = {
        let counters = counters.clone();
        let pid = args.server_pid;
        let every = Duration::from_secs_f64(args.soak_sample_seconds.max(1.0));
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut next = started;
            loop {
                let now = Instant::now();
                samples.push(json!({
                    "t": round(now.duration_since(started).as_secs_f64(), 1),
                    "rss_bytes": pid.and_then(rss_bytes),
                    "rss_anon_bytes": pid.and_then(|pid| rss_part(pid, "RssAnon:")),
                    "rss_file_bytes": pid.and_then(|pid| rss_part(pid, "RssFile:")),
                    "searches": counters.searches.load(Ordering::Relaxed),
                    "upserts": counters.upserts.load(Ordering::Relaxed),
                    "errors": counters.errors.load(Ordering::Relaxed),
                }));
                if now >= until {
                    return samples;
                }
                next += every;
                tokio::time::sleep_until(next.min(until).into()).await;
            }
        })
    };
    let rss_after_warmup = {
        let pid = args.server_pid;
        tokio::spawn(async move {
            tokio::time::sleep_until(warm_until.into()).await;
            pid.and_then(rss_bytes)
        })
    };

    let mut tasks = Vec::new();
    for (worker, connection) in connections.into_iter().enumerate() {
        let (workload, counters) = (workload.clone(), counters.clone());
        tasks.push(tokio::spawn(async move {
            let base = workload
                .base
                .as_ref()
                .expect("checked: the soak has base rows");
            let mut search = Tally::default();
            let mut upsert = Tally::default();
            let mut state =
                0x9E37_79B9_7F4A_7C15u64 ^ (worker as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407);
            let mut i = worker;
            while Instant::now() < until {
                let draw = xorshift(&mut state);
                let sent = Instant::now();
                let counted = sent >= warm_until;
                if draw < write_threshold {
                    let row = xorshift(&mut state) % rows;
                    match connection.upsert(row, base.row(row as usize)).await {
                        Ok(()) => {
                            counters.upserts.fetch_add(1, Ordering::Relaxed);
                            if counted {
                                upsert.latencies_us.push(micros(sent.elapsed()));
                            }
                        }
                        Err(e) => {
                            counters.errors.fetch_add(1, Ordering::Relaxed);
                            upsert.failed(&e);
                        }
                    }
                } else {
                    let q = i % workload.queries.rows;
                    i += 1;
                    match connection
                        .search(workload.queries.row(q), workload.k, ef)
                        .await
                    {
                        Ok(found) => {
                            counters.searches.fetch_add(1, Ordering::Relaxed);
                            if counted {
                                search.latencies_us.push(micros(sent.elapsed()));
                                search.hits += workload.hits(q, &found);
                            }
                        }
                        Err(e) => {
                            counters.errors.fetch_add(1, Ordering::Relaxed);
                            search.failed(&e);
                        }
                    }
                }
            }
            (search, upsert)
        }));
    }
    let (mut search, mut upsert) = (Tally::default(), Tally::default());
    for task in tasks {
        let (s, u) = task.await.context("a soak worker panicked")?;
        search.merge(s);
        upsert.merge(u);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let samples = sampler.await.context("the soak sampler panicked")?;
    let rss_after_warmup = rss_after_warmup.await.unwrap_or(None);
    let rss_end = args.server_pid.and_then(rss_bytes);
    let counted_seconds = (elapsed - args.soak_warmup_seconds.min(seconds)).max(1e-9);
    search.latencies_us.sort_unstable();
    upsert.latencies_us.sort_unstable();
    let kind = |tally: &Tally| {
        json!({
            "ops_after_warmup": tally.latencies_us.len(),
            "per_second": round(tally.latencies_us.len() as f64 / counted_seconds, 1),
            "errors": tally.errors,
            "error_messages": tally.errors_json(),
            "p50_ms": tally.percentile_ms(0.50),
            "p95_ms": tally.percentile_ms(0.95),
            "p99_ms": tally.percentile_ms(0.99),
        })
    };
    let mut searches = kind(&search);
    searches["recall_at_10"] = search.recall().into();
    let report = json!({
        "target": target.kind.name(),
        "seconds": round(elapsed, 1),
        "warmup_seconds": args.soak_warmup_seconds.min(seconds),
        "concurrency": args.soak_concurrency,
        "write_fraction": args.soak_write_fraction,
        "errors": search.errors + upsert.errors,
        "search": searches,
        "upsert": kind(&upsert),
        "rss_bytes_after_warmup": rss_after_warmup,
        "rss_bytes_end": rss_end,
        "samples": samples,
    });
    Ok(report)
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// User + system CPU seconds of process `pid` (this process when `None`), from
/// `/proc/<pid>/stat`; `None` where unreadable.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) / ticks as f64)
}

/// Resident set size of process `pid`, from `/proc/<pid>/status`.
fn rss_bytes(pid: u32) -> Option<u64> {
    rss_part(pid, "VmRSS:")
}

/// One part of a process's resident set (`RssAnon:`: heap and stacks; `RssFile:`: mapped
/// files, here the sealed segments), in bytes.
fn rss_part(pid: u32, field: &str) -> Option<u64> {
    status_field(
        &Path::new("/proc").join(pid.to_string()).join("status"),
        field,
    )
    .map(|kib| kib * 1024)
}

fn status_field(path: &Path, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

fn load_average() -> Option<Vec<f64>> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace()
        .take(3)
        .map(|v| v.parse().ok())
        .collect()
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

fn run_line(run: &Value) -> String {
    format!(
        "{:<13} c={:<3} qps {:>9.1}  p50 {:>7.3} ms  p95 {:>7.3} ms  p99 {:>7.3} ms  recall@10 {:.4}  errors {}  server cpu {} ms/q  client cpu {} ms/q",
        run["target"].as_str().unwrap_or("?"),
        run["concurrency"],
        run["qps"].as_f64().unwrap_or(0.0),
        run["p50_ms"].as_f64().unwrap_or(0.0),
        run["p95_ms"].as_f64().unwrap_or(0.0),
        run["p99_ms"].as_f64().unwrap_or(0.0),
        run["recall_at_10"].as_f64().unwrap_or(0.0),
        run["errors"],
        run["server_cpu_ms_per_query"],
        run["client_cpu_ms_per_query"],
    )
}

/// The people's version of the report, on stderr.
fn print_summary(report: &Value) {
    eprintln!();
    eprintln!(
        "load average at start {} and end {} ({} cores)",
        report["machine"]["load_average_start"],
        report["machine"]["load_average_end"],
        report["machine"]["cores"]
    );
    eprintln!(
        "ef (Paradox, per request): {}; Chroma ef_search: {}",
        report["ef"], report["chroma_ef"]
    );
    if let Some(runs) = report["runs"].as_array() {
        for run in runs {
            eprintln!("{}", run_line(run));
        }
    }
    if let Some(ratios) = report["ratios"].as_array() {
        for ratio in ratios {
            eprintln!(
                "c={}: gRPC QPS / Chroma QPS = {}, REST QPS / Chroma QPS = {}",
                ratio["concurrency"], ratio["grpc_over_chroma"], ratio["rest_over_chroma"]
            );
        }
    }
    let soak = &report["soak"];
    if soak.is_object() {
        eprintln!(
            "soak {} s: errors {}, search {}/s p99 {} ms recall@10 {}, upsert {}/s p99 {} ms, RSS after warm-up {} -> end {}",
            soak["seconds"],
            soak["errors"],
            soak["search"]["per_second"],
            soak["search"]["p99_ms"],
            soak["search"]["recall_at_10"],
            soak["upsert"]["per_second"],
            soak["upsert"]["p99_ms"],
            soak["rss_bytes_after_warmup"],
            soak["rss_bytes_end"],
        );
    }
}

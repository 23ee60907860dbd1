//! `paradox demo`: the five-minute tour. Loads ~100k clustered vectors with payloads into a
//! `demo` collection, then shows plain and filtered searches, latencies, counts, collection
//! info and an exact-recall sanity check. It doubles as a smoke test: every filtered result
//! is checked against the filter, and the run fails if a stored vector does not find itself.

use anyhow::{ensure, Context, Result};
use clap::Args;
use paradox_engine::{
    Collection, CollectionConfig, Engine, Filter, Metric, NewPoint, Payload, PointId, SearchRequest,
};
use rand::Rng;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::commands::info::render_info;
use crate::output::{bytes, duration, excerpt, progress, thousands, Table};
use crate::store::{open_collection, GlobalArgs};
use crate::synth::{row_rng, GaussianMixture};

const COLLECTION: &str = "demo";
const CLUSTERS: usize = 64;
const CATEGORIES: [&str; 4] = ["news", "science", "sports", "music"];
const BATCH: usize = 1000;
const K: usize = 5;
/// Separates the payload random stream from the vector stream of the same row.
const PAYLOAD_SALT: u64 = 0x7061_796c_6f61_6421;

/// `demo` flags.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  paradox demo\n  paradox demo --count 20000 --dim 64\n  \
    paradox --data-dir /tmp/px demo"
)]
pub struct DemoArgs {
    /// Number of vectors to load.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Vector dimension.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(2..))]
    pub dim: u32,
    /// Seed for the synthetic data (same seed, same data).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Runs `demo`.
pub fn run(args: DemoArgs, global: &GlobalArgs) -> Result<()> {
    let started = Instant::now();
    let count = args.count as usize;
    let dim = args.dim as usize;
    println!("Paradox demo");
    println!(
        "  {} vectors, {dim} dimensions, {CLUSTERS} anisotropic clusters, metric cosine",
        thousands(count as u64)
    );
    println!("  data directory: {}", global.data_dir.display());

    let engine = global.open_engine()?;
    let collection = fresh_collection(&engine, dim)?;
    let mixture = GaussianMixture::new(dim, CLUSTERS, args.seed);

    section("1. Load");
    let generated = Instant::now();
    let (vectors, clusters) = mixture.rows(0, count);
    let payloads: Vec<Payload> = clusters
        .iter()
        .enumerate()
        .map(|(i, &c)| demo_payload(args.seed, i as u64, c as usize))
        .collect();
    println!(
        "  generated {} vectors + payloads in {}",
        thousands(count as u64),
        duration(generated.elapsed())
    );
    let load_time = load(&collection, dim, &vectors, payloads)?;
    let flushed = Instant::now();
    collection.flush().context("flushing the demo collection")?;
    println!(
        "  loaded in {} ({} vectors/s, batches of {BATCH}); flush {}",
        duration(load_time),
        thousands((count as f64 / load_time.as_secs_f64().max(1e-9)) as u64),
        duration(flushed.elapsed())
    );

    section(&format!("2. Nearest neighbours (k = {K}) of 5 new points"));
    for q in 0..5u64 {
        let mut query = vec![0f32; dim];
        let cluster = mixture.fill_row(count as u64 + q, &mut query);
        let (results, took) = timed_search(&collection, query, None)?;
        let same = results
            .iter()
            .filter(|r| payload_u64(r.payload.as_ref(), "cluster") == Some(cluster as u64))
            .count();
        println!(
            "\n  query {}: a fresh point from cluster {cluster}  ({}, {same}/{} neighbours \
             from its cluster)",
            q + 1,
            duration(took),
            results.len()
        );
        print!("{}", demo_table(&results).render(4));
    }

    section("3. Filtered search");
    let queries = mixture.rows(count as u64 + 100, 3).0;
    for (demo_filter, query) in demo_filters().iter().zip(queries.chunks_exact(dim)) {
        let filter: Filter = serde_json::from_value(demo_filter.json.clone())
            .context("the demo's filter JSON no longer matches the engine's filter format")?;
        let (results, took) = timed_search(&collection, query.to_vec(), Some(filter))?;
        let matching = results
            .iter()
            .filter(|r| r.payload.as_ref().is_some_and(demo_filter.matches))
            .count();
        println!("\n  {}  ({})", demo_filter.title, duration(took));
        println!("    filter: {}", demo_filter.json);
        print!("{}", demo_table(&results).render(4));
        ensure!(
            matching == results.len() && results.len() == K,
            "filtered search returned {} results, {matching} matching the filter",
            results.len()
        );
        println!("    all {K} results satisfy the filter");
    }

    section("4. Latency");
    latency_report(&collection, &mixture, count, dim)?;

    section("5. Count and info");
    let science: Filter = serde_json::from_value(demo_filters()[0].json.clone())?;
    println!(
        "  count: {} points, {} with category = science",
        thousands(collection.count(None)? as u64),
        thousands(collection.count(Some(&science))? as u64)
    );
    print!(
        "{}",
        render_info(&serde_json::to_value(collection.info())?)
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    );
    println!(
        "  raw vectors alone: {}",
        bytes((count * dim * std::mem::size_of::<f32>()) as u64)
    );

    section("6. Exact recall");
    self_recall(&collection, count)?;

    println!(
        "\nDone in {}. Try:\n  paradox search --collection demo --id 42 -k 5\n  \
         paradox info --collection demo",
        duration(started.elapsed())
    );
    Ok(())
}

fn section(title: &str) {
    println!("\n== {title}");
}

/// Drops any earlier `demo` collection and creates an empty one.
fn fresh_collection(engine: &Engine, dim: usize) -> Result<std::sync::Arc<Collection>> {
    if engine.list_collections().iter().any(|n| n == COLLECTION) {
        engine
            .drop_collection(COLLECTION)
            .context("cannot drop the previous demo collection")?;
        println!("  dropped the previous `{COLLECTION}` collection");
    }
    engine
        .create_collection(CollectionConfig::new(COLLECTION, dim, Metric::Cosine))
        .context("cannot create the demo collection")?;
    open_collection(engine, COLLECTION)
}

/// The payload of demo row `index`: its cluster, a category that mostly follows the
/// cluster (so filters and neighbours interact), a year and a title.
fn demo_payload(seed: u64, index: u64, cluster: usize) -> Payload {
    let mut rng = row_rng(seed ^ PAYLOAD_SALT, index);
    let category = if rng.random_bool(0.7) {
        CATEGORIES[cluster % CATEGORIES.len()]
    } else {
        CATEGORIES[rng.random_range(0..CATEGORIES.len())]
    };
    let year: u64 = rng.random_range(1990..=2025);
    let payload = json!({
        "cluster": cluster,
        "category": category,
        "year": year,
        "title": format!("point {index}"),
    });
    match payload {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// Upserts everything in batches with a progress bar; returns the time spent in upserts.
fn load(
    collection: &Collection,
    dim: usize,
    vectors: &[f32],
    payloads: Vec<Payload>,
) -> Result<Duration> {
    let count = payloads.len();
    let bar = progress(Some(count as u64), "loading");
    let mut in_upserts = Duration::ZERO;
    let mut payloads = payloads.into_iter();
    for (batch_no, rows) in vectors.chunks(BATCH * dim).enumerate() {
        let first = batch_no * BATCH;
        let points: Vec<NewPoint> = rows
            .chunks_exact(dim)
            .zip(payloads.by_ref())
            .enumerate()
            .map(|(i, (row, payload))| {
                NewPoint::new((first + i) as u64, row.to_vec()).with_payload(payload)
            })
            .collect();
        let n = points.len();
        let started = Instant::now();
        collection
            .upsert(points)
            .with_context(|| format!("loading demo points {first}..{}", first + n))?;
        in_upserts += started.elapsed();
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(in_upserts)
}

fn timed_search(
    collection: &Collection,
    vector: Vec<f32>,
    filter: Option<Filter>,
) -> Result<(Vec<paradox_engine::ScoredPoint>, Duration)> {
    let request = SearchRequest {
        vector,
        k: K,
        filter,
        with_payload: true,
        with_vector: false,
        params: Default::default(),
        as_of: None,
    };
    let started = Instant::now();
    let results = collection.search(&request).context("demo search failed")?;
    Ok((results, started.elapsed()))
}

fn payload_u64(payload: Option<&Payload>, key: &str) -> Option<u64> {
    payload?.get(key)?.as_u64()
}

fn demo_table(results: &[paradox_engine::ScoredPoint]) -> Table {
    let mut table = Table::new(&[
        "rank", "id", "score", "cluster", "category", "year", "title",
    ]);
    for (rank, result) in results.iter().enumerate() {
        let field = |key: &str| {
            result
                .payload
                .as_ref()
                .and_then(|p| p.get(key))
                .map(|v| excerpt(v, 24))
                .unwrap_or_default()
        };
        table.row(vec![
            (rank + 1).to_string(),
            result.id.to_string(),
            format!("{:.4}", result.score),
            field("cluster"),
            field("category"),
            field("year"),
            field("title"),
        ]);
    }
    table
}

/// A filter shown by the demo, with the same predicate in Rust to check the results.
struct DemoFilter {
    title: &'static str,
    json: Value,
    matches: fn(&Payload) -> bool,
}

fn demo_filters() -> Vec<DemoFilter> {
    fn category(p: &Payload) -> &str {
        p.get("category").and_then(Value::as_str).unwrap_or("")
    }
    fn year(p: &Payload) -> u64 {
        p.get("year").and_then(Value::as_u64).unwrap_or(0)
    }
    vec![
        DemoFilter {
            title: "category = science",
            json: json!({"key": "category", "eq": "science"}),
            matches: |p| category(p) == "science",
        },
        DemoFilter {
            title: "2010 <= year < 2020",
            json: json!({"key": "year", "range": {"gte": 2010, "lt": 2020}}),
            matches: |p| (2010..2020).contains(&year(p)),
        },
        DemoFilter {
            title: "(category = music or category = sports) and year >= 2015",
            json: json!({"and": [
                {"or": [
                    {"key": "category", "eq": "music"},
                    {"key": "category", "eq": "sports"}
                ]},
                {"key": "year", "range": {"gte": 2015}}
            ]}),
            matches: |p| matches!(category(p), "music" | "sports") && year(p) >= 2015,
        },
    ]
}

/// Times 200 single searches (p50/p95/p99) and one batch of 200 (queries per second).
fn latency_report(
    collection: &Collection,
    mixture: &GaussianMixture,
    count: usize,
    dim: usize,
) -> Result<()> {
    const QUERIES: usize = 200;
    let (queries, _) = mixture.rows(count as u64 + 1000, QUERIES);
    let requests: Vec<SearchRequest> = queries
        .chunks_exact(dim)
        .map(|q| SearchRequest {
            vector: q.to_vec(),
            k: 10,
            filter: None,
            with_payload: false,
            with_vector: false,
            params: Default::default(),
            as_of: None,
        })
        .collect();
    let mut latencies = Vec::with_capacity(QUERIES);
    for request in &requests {
        let started = Instant::now();
        collection.search(request)?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "  {QUERIES} single searches (k = 10): p50 {}, p95 {}, p99 {}",
        duration(at(0.50)),
        duration(at(0.95)),
        duration(at(0.99))
    );
    let started = Instant::now();
    collection.search_batch(&requests)?;
    let batch = started.elapsed();
    println!(
        "  one batch of {QUERIES}: {} ({} queries/s on {} threads)",
        duration(batch),
        thousands((QUERIES as f64 / batch.as_secs_f64().max(1e-9)) as u64),
        rayon::current_num_threads()
    );
    Ok(())
}

/// Searches with stored vectors: each must come back as its own nearest neighbour.
fn self_recall(collection: &Collection, count: usize) -> Result<()> {
    const PROBES: usize = 20;
    let ids: Vec<PointId> = (0..PROBES)
        .map(|i| PointId::from((i * count / PROBES) as u64))
        .collect();
    let stored = collection.get(&ids)?;
    let mut found = 0;
    for (id, point) in ids.iter().zip(stored) {
        let point = point.with_context(|| format!("stored point {id} is missing"))?;
        let results = collection.search(&SearchRequest {
            vector: point.vector,
            k: 1,
            filter: None,
            with_payload: false,
            with_vector: false,
            params: Default::default(),
            as_of: None,
        })?;
        found += usize::from(results.first().is_some_and(|r| &r.id == id));
    }
    println!("  {found}/{PROBES} stored vectors found themselves at rank 1");
    ensure!(
        found == PROBES,
        "exact recall check failed: only {found} of {PROBES} stored vectors found themselves"
    );
    Ok(())
}

//! Load generator for a running `paradox serve`: search QPS and latency percentiles over
//! REST and gRPC at several concurrencies. Not a test; run on demand:
//!
//! ```sh
//! target/release/paradox serve --fsync never &
//! cargo run --release -p paradox-server --example loadgen -- \
//!     --rest http://127.0.0.1:8333 --grpc http://127.0.0.1:8334 \
//!     --dim 128 --points 100000 --seconds 10 --concurrency 1,8,64
//! ```
//!
//! It creates (or reuses) collection `loadgen`, fills it with random unit vectors, then for
//! each transport and concurrency runs that many closed-loop clients searching `k = 10`
//! for `--seconds` and prints one JSON line per run: QPS and p50/p95/p99 in milliseconds.

use paradox_client::{Client, ClientConfig, NewPoint, Search};
use serde_json::json;
use std::time::{Duration, Instant};

struct Args {
    rest: String,
    grpc: String,
    dim: usize,
    points: usize,
    seconds: f64,
    concurrency: Vec<usize>,
    key: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        rest: "http://127.0.0.1:8333".into(),
        grpc: "http://127.0.0.1:8334".into(),
        dim: 128,
        points: 100_000,
        seconds: 10.0,
        concurrency: vec![1, 8, 64],
        key: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rest" => args.rest = value(),
            "--grpc" => args.grpc = value(),
            "--dim" => args.dim = value().parse().expect("--dim N"),
            "--points" => args.points = value().parse().expect("--points N"),
            "--seconds" => args.seconds = value().parse().expect("--seconds S"),
            "--api-key" => args.key = Some(value()),
            "--concurrency" => {
                args.concurrency = value()
                    .split(',')
                    .map(|c| c.trim().parse().expect("--concurrency 1,8,64"))
                    .collect()
            }
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// xorshift: reproducible vectors without a dependency.
fn random_vector(seed: &mut u64, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

async fn run(args: &Args, transport: &str, concurrency: usize, queries: &[Vec<f32>]) {
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let queries = queries.to_vec();
        let (rest, grpc, key) = (args.rest.clone(), args.grpc.clone(), args.key.clone());
        let transport = transport.to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let http = reqwest::Client::new();
            let mut config = ClientConfig::new(grpc);
            config.api_key = key.clone();
            let client = Client::connect(config).await.expect("gRPC connects");
            let url = format!("{rest}/v1/collections/loadgen/search");
            let mut i = worker;
            while Instant::now() < deadline {
                let query = &queries[i % queries.len()];
                i += concurrency;
                let t = Instant::now();
                if transport == "rest" {
                    let mut request = http.post(&url).json(&json!({"vector": query, "k": 10}));
                    if let Some(key) = &key {
                        request = request.bearer_auth(key);
                    }
                    let response = request.send().await.expect("REST search");
                    assert!(response.status().is_success(), "REST search failed");
                    response.bytes().await.expect("REST body");
                } else {
                    client
                        .search("loadgen", Search::new(query.clone(), 10))
                        .await
                        .expect("gRPC search");
                }
                latencies.push(t.elapsed().as_micros() as u64);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "{}",
        json!({
            "transport": transport,
            "concurrency": concurrency,
            "queries": all.len(),
            "qps": (all.len() as f64 / elapsed).round(),
            "p50_ms": percentile(&all, 0.50),
            "p95_ms": percentile(&all, 0.95),
            "p99_ms": percentile(&all, 0.99),
        })
    );
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let mut config = ClientConfig::new(args.grpc.clone());
    config.api_key = args.key.clone();
    let client = Client::connect(config).await.expect("gRPC connects");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let existing = client
        .collection("loadgen")
        .await
        .map(|c| c.points)
        .unwrap_or(0);
    if existing as usize != args.points {
        let _ = client.delete_collection("loadgen").await;
        client
            .create_collection("loadgen", args.dim, "cosine", None)
            .await
            .expect("create collection");
        let load = Instant::now();
        for start in (0..args.points).step_by(1000) {
            let end = (start + 1000).min(args.points);
            let batch = (start..end)
                .map(|i| NewPoint::new(i as u64, random_vector(&mut seed, args.dim)))
                .collect();
            client.upsert("loadgen", batch).await.expect("upsert");
        }
        eprintln!(
            "loaded {} points in {:.1}s",
            args.points,
            load.elapsed().as_secs_f64()
        );
    }
    let queries: Vec<Vec<f32>> = (0..1000)
        .map(|_| random_vector(&mut seed, args.dim))
        .collect();
    for transport in ["rest", "grpc"] {
        for &concurrency in &args.concurrency {
            run(&args, transport, concurrency, &queries).await;
        }
    }
}

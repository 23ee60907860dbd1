//! Hybrid (generator + surrogate + CMA-ES) vs a plain GA on a latent-space task run
//! through the engine: find a query vector whose 10 nearest stored neighbours have a
//! mean `quality` (a payload field) of at least the target. One evaluation = one
//! engine search.
//!
//! Two data sets: synthetic (40 Gaussian clusters in 16-D, L2), or real embeddings
//! (`--hybrid-data base.npy,queries.npy`, e.g. the MiniLM set of `bench/hnsw.py`, cosine):
//! there the quality of a stored sentence is a bump around a held-out sentence (the first
//! query), so the task is "find a query whose neighbours are about what that sentence is
//! about" without ever seeing it.

use super::super::median;
use paradox_engine::{CollectionConfig, Engine, Metric, NewPoint, PointId, SearchRequest};
use paradox_mind::evolution::{
    AskTell, Cmaes, CmaesConfig, Crossover, Ga, GaConfig, KnnSurrogate, Mutation,
    SurrogateAssisted, SurrogateConfig,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

const SYNTHETIC_DIM: usize = 16;
const SYNTHETIC_POINTS: usize = 20_000;
const NEIGHBOURS: usize = 10;
const BUDGET: u64 = 20_000;

/// Stored vectors, the hidden goal their quality peaks at, and how to measure it.
struct Data {
    name: String,
    vectors: Vec<Vec<f64>>,
    goal: Vec<f64>,
    metric: Metric,
    /// Width of the quality bump (L2 distance).
    width: f64,
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

fn unit(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|x| x / n).collect()
}

/// 40 Gaussian clusters in 16-D; the quality peak sits next to one of them.
fn synthetic() -> Data {
    let mut rng = StdRng::seed_from_u64(2024);
    let centers: Vec<Vec<f64>> = (0..40)
        .map(|_| {
            (0..SYNTHETIC_DIM)
                .map(|_| rng.random_range(-3.0..3.0))
                .collect()
        })
        .collect();
    // A narrow target among 40 clusters.
    let goal: Vec<f64> = centers[7]
        .iter()
        .map(|c| c + rng.random_range(-0.5..0.5))
        .collect();
    let vectors = (0..SYNTHETIC_POINTS)
        .map(|i| {
            centers[i % centers.len()]
                .iter()
                .map(|m| {
                    m + 0.8
                        * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng)
                })
                .collect()
        })
        .collect();
    Data {
        name: format!("synthetic: 40 clusters, {SYNTHETIC_POINTS} points, d = {SYNTHETIC_DIM}"),
        vectors,
        goal,
        metric: Metric::L2,
        width: 3.0,
    }
}

/// Reads a little-endian float32 C-order `.npy` matrix.
fn read_npy(path: &str, max_rows: usize) -> Vec<Vec<f64>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    assert!(bytes.starts_with(b"\x93NUMPY"), "{path}: not a .npy file");
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).expect("header");
    assert!(
        header.contains("'<f4'") && header.contains("'fortran_order': False"),
        "{path}: need C-order float32, got {header}"
    );
    let shape = &header[header.find("'shape': (").expect("shape") + 10..];
    let dims: Vec<usize> = shape[..shape.find(')').expect("shape")]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("shape"))
        .collect();
    let (rows, cols) = (dims[0], dims[1]);
    let data = &bytes[start + header_len..];
    (0..rows.min(max_rows))
        .map(|r| {
            (0..cols)
                .map(|c| {
                    let o = (r * cols + c) * 4;
                    f32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]) as f64
                })
                .collect()
        })
        .collect()
}

/// Real embeddings (cosine): quality peaks at the first query, a sentence not stored;
/// the bump's width is the distance from it to its 20th nearest stored sentence.
fn real(files: &str, max_rows: usize) -> Data {
    let (base, queries) = files
        .split_once(',')
        .expect("--hybrid-data takes base.npy,queries.npy");
    let vectors: Vec<Vec<f64>> = read_npy(base, max_rows).iter().map(|v| unit(v)).collect();
    let goal = unit(&read_npy(queries, 1)[0]);
    let mut d: Vec<f64> = vectors.iter().map(|v| dist(v, &goal)).collect();
    d.sort_by(f64::total_cmp);
    let width = d[20.min(d.len() - 1)];
    Data {
        name: format!(
            "real embeddings: {} x {} from {base}, goal = first row of {queries}",
            vectors.len(),
            goal.len()
        ),
        vectors,
        goal,
        metric: Metric::Cosine,
        width,
    }
}

/// Stored points seen in search results: id → (vector, quality).
type Seen = Rc<RefCell<HashMap<PointId, (Vec<f64>, f64)>>>;

struct Task {
    collection: Arc<paradox_engine::Collection>,
    target: f64,
    center: Vec<f64>,
    spread: f64,
}

impl Task {
    /// Mean quality of the 10 nearest stored points (negated: lower is better).
    fn evaluate(&self, x: &[f64], seen: Option<&Seen>) -> f64 {
        let mut request = SearchRequest::new(x.iter().map(|v| *v as f32).collect(), NEIGHBOURS);
        request.with_payload = true;
        request.with_vector = seen.is_some();
        let hits = self.collection.search(&request).expect("search");
        let mut total = 0.0;
        for h in &hits {
            let q = h
                .payload
                .as_ref()
                .and_then(|p| p.get("quality"))
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            total += q;
            if let (Some(seen), Some(v)) = (seen, &h.vector) {
                seen.borrow_mut()
                    .entry(h.id.clone())
                    .or_insert_with(|| (v.iter().map(|x| *x as f64).collect(), q));
            }
        }
        -total / hits.len().max(1) as f64
    }
}

/// Loads `data` into an engine collection with each point's quality as payload.
fn build_task(dir: &std::path::Path, data: &Data) -> Task {
    let dim = data.goal.len();
    let engine = Engine::open(dir).expect("engine");
    let collection = engine
        .create_collection(CollectionConfig::new("latent_task", dim, data.metric))
        .expect("collection");
    let mut rng = StdRng::seed_from_u64(2025);
    let mut batch = Vec::new();
    for (i, v) in data.vectors.iter().enumerate() {
        let d = dist(v, &data.goal);
        let quality = (-d * d / (2.0 * data.width * data.width)).exp() + 0.02 * rng.random::<f64>();
        let payload = json!({"quality": quality})
            .as_object()
            .expect("object")
            .clone();
        batch.push(
            NewPoint::new(i as u64, v.iter().map(|x| *x as f32).collect()).with_payload(payload),
        );
        if batch.len() == 5_000 {
            collection
                .upsert(std::mem::take(&mut batch))
                .expect("upsert");
        }
    }
    collection.upsert(batch).expect("upsert");
    collection.flush().expect("flush");
    collection.wait_for_indexes();
    // Start from the data's mean, spread like the data (RMS per-coordinate deviation,
    // or the synthetic task's 3.0).
    let n = data.vectors.len() as f64;
    let center: Vec<f64> = (0..dim)
        .map(|c| data.vectors.iter().map(|v| v[c]).sum::<f64>() / n)
        .collect();
    let spread = if data.metric == Metric::L2 {
        3.0
    } else {
        let var = data
            .vectors
            .iter()
            .map(|v| dist(v, &center).powi(2))
            .sum::<f64>()
            / (n * dim as f64);
        var.sqrt()
    };
    let center = if data.metric == Metric::L2 {
        vec![0.0; dim]
    } else {
        center
    };
    let mut task = Task {
        collection,
        target: 0.0,
        center,
        spread,
    };
    // Best achievable, approximately: the best mean over queries at stored points
    // (a sample) — the target asks for 95% of it.
    let mut best = 0.0f64;
    for i in (0..data.vectors.len()).step_by(7) {
        best = best.max(-task.evaluate(&data.vectors[i], None));
    }
    task.target = 0.95 * best;
    task
}

fn run_ga(task: &Task, seed: u64) -> u64 {
    let mut ga = Ga::new(
        task.center.clone(),
        GaConfig {
            seed,
            init_sigma: task.spread,
            // The default operators' steps (0.1 and 0.05) are for the synthetic task's
            // spread of 3: keep them in proportion to the data's spread.
            operators: vec![
                (
                    Crossover::Blend { alpha: 0.5 },
                    Mutation::Gaussian {
                        sigma: task.spread / 30.0,
                    },
                ),
                (
                    Crossover::Uniform,
                    Mutation::Gaussian {
                        sigma: task.spread / 30.0,
                    },
                ),
                (
                    Crossover::Arithmetic,
                    Mutation::Cauchy {
                        scale: task.spread / 60.0,
                    },
                ),
            ],
            ..Default::default()
        },
    );
    while ga.evaluations() < BUDGET {
        let xs = ga.ask();
        let fs: Vec<f64> = xs.iter().map(|x| task.evaluate(x, None)).collect();
        ga.tell(&xs, &fs);
        if -ga.best().1 >= task.target {
            return ga.evaluations();
        }
    }
    BUDGET
}

fn run_hybrid(task: &Task, seed: u64) -> u64 {
    let seen: Seen = Rc::new(RefCell::new(HashMap::new()));
    let generator_seen = seen.clone();
    // Generator plugin: proposes queries built from the best stored points the
    // searches have revealed so far (their centroid, and blends of pairs).
    let generator = move |n: usize, rng: &mut StdRng| -> Vec<Vec<f64>> {
        let seen = generator_seen.borrow();
        let mut top: Vec<&(Vec<f64>, f64)> = seen.values().collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        top.truncate(NEIGHBOURS);
        if top.is_empty() {
            return Vec::new();
        }
        let dim = top[0].0.len();
        let mut out = vec![(0..dim)
            .map(|i| top.iter().map(|t| t.0[i]).sum::<f64>() / top.len() as f64)
            .collect()];
        while out.len() < n {
            let (a, b) = (
                rng.random_range(0..top.len()),
                rng.random_range(0..top.len()),
            );
            let w: f64 = rng.random();
            out.push(
                (0..dim)
                    .map(|i| w * top[a].0[i] + (1.0 - w) * top[b].0[i])
                    .collect(),
            );
        }
        out
    };
    let es = Cmaes::new(
        task.center.clone(),
        CmaesConfig {
            sigma0: task.spread / 2.0,
            seed,
            ..Default::default()
        },
    );
    let lambda = es.population();
    let mut sa = SurrogateAssisted::new(
        es,
        KnnSurrogate::new(5),
        SurrogateConfig::for_dimension(task.center.len(), lambda),
    )
    .with_generator(Box::new(generator), 3, seed);
    while sa.evaluations() < BUDGET {
        sa.step(|x| task.evaluate(x, Some(&seen)));
        if -sa.best().1 >= task.target {
            return sa.evaluations();
        }
    }
    BUDGET
}

pub fn section_hybrid(seeds: u64, data: Option<(&str, usize)>) -> Value {
    let seeds = seeds.min(7);
    let data = match data {
        Some((files, rows)) => real(files, rows),
        None => synthetic(),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let task = build_task(dir.path(), &data);
    println!(
        "\n== Hybrid (generator + kNN surrogate + CMA-ES) vs GA: evaluations (engine searches) until the 10-NN mean quality >= {:.3} ({}, budget {BUDGET})",
        task.target, data.name
    );
    let ga: Vec<u64> = (1..=seeds).map(|s| run_ga(&task, s)).collect();
    let hybrid: Vec<u64> = (1..=seeds).map(|s| run_hybrid(&task, s)).collect();
    let mut gm: Vec<f64> = ga.iter().map(|v| *v as f64).collect();
    let mut hm: Vec<f64> = hybrid.iter().map(|v| *v as f64).collect();
    let (gmed, hmed) = (median(&mut gm), median(&mut hm));
    let ga_solved = ga.iter().filter(|v| **v < BUDGET).count();
    let hy_solved = hybrid.iter().filter(|v| **v < BUDGET).count();
    println!("GA     median {gmed:>8.0} (solved {ga_solved}/{seeds}; unsolved count as the budget) runs {ga:?}");
    println!("hybrid median {hmed:>8.0} (solved {hy_solved}/{seeds}) runs {hybrid:?}");
    println!("gain {:.1}x fewer evaluations", gmed / hmed);
    json!({"data": data.name, "target": task.target, "budget": BUDGET, "ga": ga, "hybrid": hybrid,
           "ga_median": gmed, "hybrid_median": hmed, "gain": gmed / hmed,
           "ga_solved": ga_solved, "hybrid_solved": hy_solved})
}

//! Hybrid (generator + surrogate + CMA-ES) vs a plain GA on a latent-space task run
//! through the engine: find a query vector whose 10 nearest stored neighbours have a
//! mean `quality` (a payload field) of at least the target. One evaluation = one
//! engine search.

use super::super::median;
use paradox_engine::{CollectionConfig, Engine, Metric, NewPoint, PointId, SearchRequest};
use paradox_mind::evolution::{
    AskTell, Cmaes, CmaesConfig, Ga, GaConfig, KnnSurrogate, SurrogateAssisted, SurrogateConfig,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

const DIM: usize = 16;
const POINTS: usize = 20_000;
const NEIGHBOURS: usize = 10;
const BUDGET: u64 = 20_000;

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

/// 40 Gaussian clusters in 16-D; quality is a bump (width 3) around a hidden
/// location next to one cluster, plus noise.
fn build_task(dir: &std::path::Path) -> Task {
    let engine = Engine::open(dir).expect("engine");
    let collection = engine
        .create_collection(CollectionConfig::new("latent_task", DIM, Metric::L2))
        .expect("collection");
    let mut rng = StdRng::seed_from_u64(2024);
    let centers: Vec<Vec<f64>> = (0..40)
        .map(|_| (0..DIM).map(|_| rng.random_range(-3.0..3.0)).collect())
        .collect();
    // The quality peak sits next to one cluster: a narrow target among 40 clusters.
    let goal: Vec<f64> = centers[7]
        .iter()
        .map(|c| c + rng.random_range(-0.5..0.5))
        .collect();
    let mut batch = Vec::new();
    for i in 0..POINTS {
        let c = &centers[i % centers.len()];
        let v: Vec<f64> = c
            .iter()
            .map(|m| {
                m + 0.8 * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng)
            })
            .collect();
        let d2: f64 = v.iter().zip(&goal).map(|(a, b)| (a - b) * (a - b)).sum();
        let quality = (-d2 / (2.0 * 3.0f64.powi(2))).exp() + 0.02 * rng.random::<f64>();
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
    let mut task = Task {
        collection,
        target: 0.0,
        center: vec![0.0; DIM],
        spread: 3.0,
    };
    // Best achievable, approximately: the best mean over queries at stored points
    // (a sample) — the target asks for 95% of it.
    let mut best = 0.0f64;
    for i in (0..POINTS).step_by(7) {
        let p = task.collection.get(&[PointId::Num(i as u64)]).expect("get")[0]
            .clone()
            .expect("point");
        let x: Vec<f64> = p.vector.iter().map(|v| *v as f64).collect();
        best = best.max(-task.evaluate(&x, None));
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
        SurrogateConfig::for_dimension(DIM, lambda),
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

pub fn section_hybrid(seeds: u64) -> Value {
    let seeds = seeds.min(7);
    let dir = tempfile::tempdir().expect("temp dir");
    let task = build_task(dir.path());
    println!(
        "\n== Hybrid (generator + kNN surrogate + CMA-ES) vs GA: evaluations (engine searches) until the 10-NN mean quality >= {:.3} ({POINTS} points, d = {DIM}, budget {BUDGET})",
        task.target
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
    json!({"target": task.target, "budget": BUDGET, "ga": ga, "hybrid": hybrid,
           "ga_median": gmed, "hybrid_median": hmed, "gain": gmed / hmed,
           "ga_solved": ga_solved, "hybrid_solved": hy_solved})
}

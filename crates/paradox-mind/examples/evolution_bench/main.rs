//! Guided-evolution benchmarks, printed as tables and written as JSON.
//!
//! ```text
//! cargo run --release -p paradox-mind --example evolution_bench -- --json out.json
//! cargo run --release -p paradox-mind --example evolution_bench -- --sections cmaes,rastrigin
//! ```
//!
//! Sections: `cmaes` (evaluations to f < 1e-8 on sphere, ellipsoid, Rosenbrock at
//! d = 10, 20, 40; the same settings as `bench/mind/cmaes_vs_pycma.py` gives pycma),
//! `rastrigin` (BIPOP success rate, 10-D), `surrogate`, `hybrid`, `novelty`.
//! `--hybrid-data base.npy,queries.npy` (and `--hybrid-rows N`) runs the hybrid task on
//! real embeddings instead of the synthetic clusters.

use paradox_mind::evolution::{problems, AskTell, Cmaes, CmaesConfig, RestartStrategy, Restarts};
use rand::Rng;
use serde_json::{json, Value};
use std::time::Instant;

mod bench_tasks;

const TARGET: f64 = 1e-8;
/// Starting point `x0 = X0_VALUE · 1` and step `SIGMA0`, shared with the pycma script.
const X0_VALUE: f64 = 0.5;
const SIGMA0: f64 = 0.5;

struct Args {
    json: Option<String>,
    sections: Vec<String>,
    seeds: u64,
    rastrigin_runs: u64,
    surrogate_dims: Vec<usize>,
    hybrid_data: Option<String>,
    hybrid_rows: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        json: None,
        sections: ["cmaes", "rastrigin", "surrogate", "hybrid", "novelty"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        seeds: 11,
        rastrigin_runs: 20,
        surrogate_dims: vec![10],
        hybrid_data: None,
        hybrid_rows: usize::MAX,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--json" => args.json = Some(value),
            "--sections" => args.sections = value.split(',').map(str::to_string).collect(),
            "--seeds" => args.seeds = value.parse().expect("--seeds takes a number"),
            "--rastrigin-runs" => args.rastrigin_runs = value.parse().expect("a number"),
            "--surrogate-dims" => {
                args.surrogate_dims = value
                    .split(',')
                    .map(|d| d.parse().expect("--surrogate-dims takes numbers"))
                    .collect()
            }
            "--hybrid-data" => args.hybrid_data = Some(value),
            "--hybrid-rows" => {
                args.hybrid_rows = value.parse().expect("--hybrid-rows takes a number")
            }
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// Plain CMA-ES until f < 1e-8 or 200,000 evaluations; returns (evaluations, best).
pub fn cmaes_run(f: fn(&[f64]) -> f64, n: usize, seed: u64, separable: bool) -> (u64, f64) {
    let mut es = Cmaes::new(
        vec![X0_VALUE; n],
        CmaesConfig {
            sigma0: SIGMA0,
            separable,
            target: Some(TARGET),
            max_evaluations: Some(200_000),
            seed,
            ..Default::default()
        },
    );
    while es.should_stop().is_none() {
        let xs = es.ask();
        let fs: Vec<f64> = xs.iter().map(|x| f(x)).collect();
        es.tell(&xs, &fs);
    }
    (es.evaluations(), es.best().1)
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

fn section_cmaes(seeds: u64) -> Value {
    println!("\n== CMA-ES: evaluations to f < 1e-8 (x0 = {X0_VALUE}·1, sigma0 = {SIGMA0}, {seeds} seeds)");
    println!(
        "{:<11} {:>4} {:>10} {:>8} {:>12}",
        "function", "d", "median", "solved", "sep median"
    );
    let mut rows = Vec::new();
    for name in ["sphere", "ellipsoid", "rosenbrock"] {
        let f = problems::by_name(name).expect("known function");
        for n in [10usize, 20, 40] {
            let start = Instant::now();
            let runs: Vec<(u64, f64)> = (1..=seeds).map(|s| cmaes_run(f, n, s, false)).collect();
            let secs = start.elapsed().as_secs_f64();
            let mut evals: Vec<f64> = runs.iter().map(|r| r.0 as f64).collect();
            let solved = runs.iter().filter(|r| r.1 < TARGET).count();
            let mut sep: Vec<f64> = if name == "rosenbrock" {
                Vec::new()
            } else {
                (1..=seeds)
                    .map(|s| cmaes_run(f, n, s, true).0 as f64)
                    .collect()
            };
            let sep_median = if sep.is_empty() {
                f64::NAN
            } else {
                median(&mut sep)
            };
            let med = median(&mut evals);
            println!("{name:<11} {n:>4} {med:>10.0} {solved:>5}/{seeds} {sep_median:>12.0}");
            rows.push(json!({
                "function": name, "dim": n, "median_evaluations": med,
                "solved": solved, "runs": seeds,
                "evaluations": runs.iter().map(|r| r.0).collect::<Vec<_>>(),
                "sep_median_evaluations": if sep.is_empty() { Value::Null } else { json!(sep_median) },
                "seconds": secs,
            }));
        }
    }
    json!({"x0": X0_VALUE, "sigma0": SIGMA0, "target": TARGET, "rows": rows})
}

fn section_rastrigin(runs: u64) -> Value {
    let n = 10;
    println!(
        "\n== BIPOP-CMA-ES on {n}-D Rastrigin (x0 ~ U[-4,4]^n, sigma0 = 2, budget 1e6, 9 restarts)"
    );
    let mut results = Vec::new();
    for seed in 1..=runs {
        let restarts = Restarts {
            strategy: RestartStrategy::Bipop,
            base: CmaesConfig {
                sigma0: 2.0,
                target: Some(TARGET),
                seed,
                ..Default::default()
            },
            max_evaluations: 1_000_000,
            max_restarts: 9,
        };
        let outcome = restarts.minimize(
            |rng| (0..n).map(|_| rng.random_range(-4.0..4.0)).collect(),
            |xs| xs.iter().map(|x| problems::rastrigin(x)).collect(),
        );
        results.push((
            outcome.best_f < TARGET,
            outcome.evaluations,
            outcome.runs.len(),
        ));
    }
    let solved = results.iter().filter(|r| r.0).count();
    let mut evals: Vec<f64> = results.iter().filter(|r| r.0).map(|r| r.1 as f64).collect();
    let med = if evals.is_empty() {
        f64::NAN
    } else {
        median(&mut evals)
    };
    println!(
        "solved {solved}/{runs} ({:.0}%), median evaluations of solved runs {med:.0}",
        100.0 * solved as f64 / runs as f64
    );
    json!({"dim": n, "runs": runs, "solved": solved, "median_evaluations_solved": med,
           "per_run": results.iter().map(|r| json!({"solved": r.0, "evaluations": r.1, "cma_runs": r.2})).collect::<Vec<_>>()})
}

fn main() {
    let args = parse_args();
    let mut report = serde_json::Map::new();
    for section in &args.sections {
        let value = match section.as_str() {
            "cmaes" => section_cmaes(args.seeds),
            "rastrigin" => section_rastrigin(args.rastrigin_runs),
            "surrogate" => bench_tasks::section_surrogate(args.seeds, &args.surrogate_dims),
            "hybrid" => bench_tasks::section_hybrid(
                args.seeds,
                args.hybrid_data.as_deref().map(|f| (f, args.hybrid_rows)),
            ),
            "novelty" => bench_tasks::section_novelty(20),
            other => panic!("unknown section {other}"),
        };
        report.insert(section.clone(), value);
    }
    if let Some(path) = args.json {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&Value::Object(report)).expect("json"),
        )
        .unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        println!("\nwrote {path}");
    }
}

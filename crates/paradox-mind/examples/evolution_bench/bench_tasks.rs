//! Benchmark sections beyond plain CMA-ES.

use super::{cmaes_run, median, SIGMA0, TARGET, X0_VALUE};
use paradox_mind::evolution::{
    problems, Cmaes, CmaesConfig, QuadraticSurrogate, SurrogateAssisted, SurrogateConfig,
};
use serde_json::{json, Value};

mod hybrid;
mod novelty;

pub use hybrid::section_hybrid;
pub use novelty::section_novelty;

fn surrogate_run(f: fn(&[f64]) -> f64, n: usize, seed: u64) -> (u64, f64) {
    let config = CmaesConfig {
        sigma0: SIGMA0,
        seed,
        ..Default::default()
    };
    let es = Cmaes::new(vec![X0_VALUE; n], config);
    let lambda = es.population();
    let mut sa = SurrogateAssisted::new(
        es,
        QuadraticSurrogate::new(),
        SurrogateConfig::for_dimension(n, lambda),
    );
    while sa.best().1 >= TARGET && sa.evaluations() < 200_000 && sa.es.should_stop().is_none() {
        sa.step(f);
    }
    (sa.evaluations(), sa.best().1)
}

pub fn section_surrogate(seeds: u64, dims: &[usize]) -> Value {
    println!("\n== Surrogate-assisted CMA-ES (quadratic model, tau gate 0.8) vs plain CMA-ES: true evaluations to f < 1e-8");
    println!(
        "{:<11} {:>4} {:>10} {:>8} {:>10} {:>8} {:>7}",
        "function", "d", "plain", "solved", "surrogate", "solved", "gain"
    );
    let mut rows = Vec::new();
    for name in ["ellipsoid", "rosenbrock"] {
        let f = problems::by_name(name).expect("known");
        // Default d = 10 only: a full quadratic model in 20-D costs ~10 ms per refit,
        // minutes per seed on a small machine (`--surrogate-dims 10,20` to include it).
        for &n in dims {
            let plain: Vec<(u64, f64)> = (1..=seeds).map(|s| cmaes_run(f, n, s, false)).collect();
            let assisted: Vec<(u64, f64)> = (1..=seeds).map(|s| surrogate_run(f, n, s)).collect();
            let mut pe: Vec<f64> = plain.iter().map(|r| r.0 as f64).collect();
            let mut ae: Vec<f64> = assisted.iter().map(|r| r.0 as f64).collect();
            let (pm, am) = (median(&mut pe), median(&mut ae));
            let ps = plain.iter().filter(|r| r.1 < TARGET).count();
            let ss = assisted.iter().filter(|r| r.1 < TARGET).count();
            println!(
                "{name:<11} {n:>4} {pm:>10.0} {ps:>5}/{seeds} {am:>10.0} {ss:>5}/{seeds} {:>6.2}x",
                pm / am
            );
            rows.push(
                json!({"function": name, "dim": n, "plain_median": pm, "plain_solved": ps,
                "surrogate_median": am, "surrogate_solved": ss, "gain": pm / am,
                "surrogate_evaluations": assisted.iter().map(|r| r.0).collect::<Vec<_>>()}),
            );
        }
    }
    json!({"rows": rows})
}

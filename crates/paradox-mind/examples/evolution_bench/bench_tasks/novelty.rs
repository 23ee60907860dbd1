//! Novelty search vs fitness-only search on a deceptive trap.
//!
//! Genome: 10 numbers. Behaviour: `b = tanh(W·x)`, a point of the square (−1, 1)²
//! (`W` fixed, 2 × 10). Fitness (minimised) `min(‖b − L‖ + 0.5, 10·‖b − G‖)`: from
//! the start (b ≈ 0) the gradient leads to the trap `L = (−0.7, −0.7)` (fitness 0.5);
//! the goal `G = (0.8, 0.8)` (fitness 0) has a basin of radius ≈ 0.25 on the far side.
//! A run is solved when some evaluated behaviour comes within 0.05 of `G`. Both searches
//! are the same GA (population 50, same operators); only the score differs: fitness, or
//! novelty (mean distance to the 15 nearest behaviours of archive + population; the 3
//! most novel of each generation are archived).

use paradox_mind::evolution::{AskTell, Ga, GaConfig, NoveltyArchive};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const GENOME: usize = 10;
const BUDGET: u64 = 10_000;
const GOAL: [f64; 2] = [0.8, 0.8];
const TRAP: [f64; 2] = [-0.7, -0.7];

fn behaviour(w: &[[f64; GENOME]; 2], x: &[f64]) -> [f64; 2] {
    let dot = |row: &[f64; GENOME]| row.iter().zip(x).map(|(a, b)| a * b).sum::<f64>().tanh();
    [dot(&w[0]), dot(&w[1])]
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn fitness(b: &[f64; 2]) -> f64 {
    (dist(b, &TRAP) + 0.5).min(10.0 * dist(b, &GOAL))
}

fn run(seed: u64, novelty: bool) -> Option<u64> {
    let mut rng = StdRng::seed_from_u64(77);
    let mut w = [[0.0; GENOME]; 2];
    for row in w.iter_mut() {
        for v in row.iter_mut() {
            *v = rng.random_range(-0.5..0.5);
        }
    }
    let mut ga = Ga::new(
        vec![0.0; GENOME],
        GaConfig {
            seed,
            init_sigma: 0.1,
            ..Default::default()
        },
    );
    let mut archive = NoveltyArchive::new(15);
    while ga.evaluations() < BUDGET {
        let xs = ga.ask();
        let behaviours: Vec<Vec<f64>> = xs.iter().map(|x| behaviour(&w, x).to_vec()).collect();
        for (i, b) in behaviours.iter().enumerate() {
            if dist(b, &GOAL) < 0.05 {
                return Some(ga.evaluations() + i as u64 + 1);
            }
        }
        let scores: Vec<f64> = if novelty {
            let novelties: Vec<f64> = behaviours
                .iter()
                .enumerate()
                .map(|(i, b)| archive.novelty(b, &behaviours, Some(i)))
                .collect();
            let mut order: Vec<usize> = (0..xs.len()).collect();
            order.sort_by(|&a, &b| novelties[b].total_cmp(&novelties[a]));
            for &i in order.iter().take(3) {
                archive.add(behaviours[i].clone());
            }
            novelties.iter().map(|n| -n).collect()
        } else {
            behaviours.iter().map(|b| fitness(&[b[0], b[1]])).collect()
        };
        ga.tell(&xs, &scores);
    }
    None
}

pub fn section_novelty(seeds: u64) -> Value {
    println!("\n== Novelty search vs fitness-only GA on a deceptive trap ({seeds} seeds, budget {BUDGET} evaluations)");
    let fitness_runs: Vec<Option<u64>> = (1..=seeds).map(|s| run(s, false)).collect();
    let novelty_runs: Vec<Option<u64>> = (1..=seeds).map(|s| run(s, true)).collect();
    let solved = |runs: &[Option<u64>]| runs.iter().filter(|r| r.is_some()).count();
    let (fs, ns) = (solved(&fitness_runs), solved(&novelty_runs));
    println!("fitness-only solved {fs}/{seeds}; novelty solved {ns}/{seeds}");
    json!({"seeds": seeds, "budget": BUDGET, "fitness_solved": fs, "novelty_solved": ns,
           "fitness_runs": fitness_runs, "novelty_runs": novelty_runs})
}

//! Restart strategies for CMA-ES: IPOP (double the population at each restart; Auger &
//! Hansen 2005) and BIPOP (interleave large-population runs with small-population,
//! small-step runs, giving both regimes the same evaluation budget; Hansen 2009).
//! A run restarts when any local stopping criterion fires (everything in
//! [`StopReason`] except the target and the budget).

use super::{seeded_rng, AskTell, Cmaes, CmaesConfig, StopReason};
use rand::rngs::StdRng;
use rand::Rng;

/// Which restart schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartStrategy {
    /// One run, no restart.
    None,
    /// Increasing population: `λ_k = λ_default · 2^k`.
    Ipop,
    /// Bi-population: large runs as IPOP, small runs with
    /// `λ = ⌊λ_def (λ_large / (2 λ_def))^{U²}⌋` and `σ = σ₀ · 10^{−2U}`.
    Bipop,
}

/// One CMA-ES run of a restart schedule.
#[derive(Debug, Clone)]
pub struct RestartRun {
    /// Population size used.
    pub population: usize,
    /// Initial step size used.
    pub sigma0: f64,
    /// Evaluations spent.
    pub evaluations: u64,
    /// Best fitness reached.
    pub best: f64,
    /// Why it stopped.
    pub stop: StopReason,
}

/// Runs CMA-ES with restarts on a batch objective until the target, the total budget or
/// the restart limit. `initial` picks each run's starting point (the same `x0` every
/// time, or a random point of the domain).
#[derive(Debug)]
pub struct Restarts {
    /// The schedule.
    pub strategy: RestartStrategy,
    /// Settings of the first run (its `seed` seeds the whole schedule).
    pub base: CmaesConfig,
    /// Total evaluation budget across runs.
    pub max_evaluations: u64,
    /// Most large-population restarts after the first run (BIPOP's interleaved
    /// small-population runs do not count, as in pycma's `restarts`).
    pub max_restarts: usize,
}

/// What a restart schedule produced.
#[derive(Debug, Clone)]
pub struct RestartOutcome {
    /// Best point found.
    pub best_x: Vec<f64>,
    /// Its fitness.
    pub best_f: f64,
    /// Evaluations across all runs.
    pub evaluations: u64,
    /// The runs, in order.
    pub runs: Vec<RestartRun>,
}

impl Restarts {
    /// Minimises `objective` (called on each whole population, so it may evaluate in
    /// parallel).
    pub fn minimize(
        &self,
        initial: impl FnMut(&mut StdRng) -> Vec<f64>,
        mut objective: impl FnMut(&[Vec<f64>]) -> Vec<f64>,
    ) -> RestartOutcome {
        match self.try_minimize(initial, |xs| {
            Ok::<_, std::convert::Infallible>(objective(xs))
        }) {
            Ok(outcome) => outcome,
            Err(never) => match never {},
        }
    }

    /// [`Restarts::minimize`] with an objective that can fail (a callback into another
    /// language, a remote evaluator): the first error ends the schedule and is returned.
    /// `objective` must return one value per candidate.
    pub fn try_minimize<E>(
        &self,
        mut initial: impl FnMut(&mut StdRng) -> Vec<f64>,
        mut objective: impl FnMut(&[Vec<f64>]) -> Result<Vec<f64>, E>,
    ) -> Result<RestartOutcome, E> {
        let mut rng = seeded_rng(self.base.seed ^ 0x9E37_79B9_7F4A_7C15);
        let mut outcome = RestartOutcome {
            best_x: Vec::new(),
            best_f: f64::INFINITY,
            evaluations: 0,
            runs: Vec::new(),
        };
        let x0 = initial(&mut rng);
        let n = x0.len();
        let default_lambda = self
            .base
            .population
            .unwrap_or(4 + (3.0 * (n as f64).ln()).floor() as usize);
        let mut large_runs = 0u32;
        let mut large_budget = 0u64;
        let mut small_budget = 0u64;
        let mut next_x0 = Some(x0);
        for run_index in 0usize.. {
            let remaining = self.max_evaluations.saturating_sub(outcome.evaluations);
            if remaining == 0 {
                break;
            }
            let mut config = self.base.clone();
            config.seed = self.base.seed.wrapping_add(1_000_003 * run_index as u64);
            config.max_evaluations = Some(remaining);
            let mut is_large = true;
            if run_index > 0 {
                match self.strategy {
                    RestartStrategy::None => break,
                    RestartStrategy::Ipop => {
                        if large_runs as usize >= self.max_restarts {
                            break;
                        }
                        large_runs += 1;
                        config.population = Some(default_lambda << large_runs);
                    }
                    RestartStrategy::Bipop => {
                        if large_budget <= small_budget || large_runs == 0 {
                            if large_runs as usize >= self.max_restarts {
                                break;
                            }
                            large_runs += 1;
                            config.population = Some(default_lambda << large_runs);
                        } else {
                            is_large = false;
                            let u: f64 = rng.random();
                            let large = (default_lambda << large_runs) as f64;
                            let lambda = (default_lambda as f64
                                * (large / (2.0 * default_lambda as f64)).powf(u * u))
                            .floor() as usize;
                            config.population = Some(lambda.max(default_lambda));
                            config.sigma0 = self.base.sigma0 * 10f64.powf(-2.0 * u);
                        }
                    }
                }
            }
            let start = next_x0.take().unwrap_or_else(|| initial(&mut rng));
            let mut es = Cmaes::new(start, config.clone());
            let stop = loop {
                if let Some(reason) = es.should_stop() {
                    break reason;
                }
                let xs = es.ask();
                let fs = objective(&xs)?;
                es.tell(&xs, &fs);
            };
            let (bx, bf) = es.best();
            if bf < outcome.best_f {
                outcome.best_f = bf;
                outcome.best_x = bx.to_vec();
            }
            outcome.evaluations += es.evaluations();
            if run_index > 0 {
                if is_large {
                    large_budget += es.evaluations();
                } else {
                    small_budget += es.evaluations();
                }
            }
            outcome.runs.push(RestartRun {
                population: es.population(),
                sigma0: config.sigma0,
                evaluations: es.evaluations(),
                best: bf,
                stop,
            });
            if matches!(stop, StopReason::Target) {
                break;
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evolution::problems;

    #[test]
    fn bipop_solves_rastrigin_5d() {
        let restarts = Restarts {
            strategy: RestartStrategy::Bipop,
            base: CmaesConfig {
                sigma0: 2.0,
                target: Some(1e-8),
                seed: 11,
                ..Default::default()
            },
            max_evaluations: 300_000,
            max_restarts: 12,
        };
        let outcome = restarts.minimize(
            |rng| (0..5).map(|_| rng.random_range(-4.0..4.0)).collect(),
            |xs| xs.iter().map(|x| problems::rastrigin(x)).collect(),
        );
        assert!(
            outcome.best_f < 1e-8,
            "best {} after {:?}",
            outcome.best_f,
            outcome.runs
        );
        assert!(outcome.runs.len() > 1, "rastrigin should need restarts");
    }
}

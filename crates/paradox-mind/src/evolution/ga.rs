//! A real-coded genetic algorithm: tournament selection, crossover, mutation, elitism,
//! optional adaptive operator selection ([`OperatorBandit`]), a [`SafetyGuard`] and
//! [`Generator`] plugins whose proposals take the place of some offspring.
//!
//! Generational with elitism: the `elite` best of a generation survive, the rest of
//! the next population are offspring. With `adaptive`, each offspring's (crossover,
//! mutation) pair is an arm of a UCB bandit rewarded 1 when the child beats its better
//! parent.

use super::{argsort, sanitize, seeded_rng, AskTell, Generator, OperatorBandit, SafetyGuard};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// How two parents combine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Crossover {
    /// BLX-α: each gene uniform in the parents' interval widened by `alpha` per side.
    Blend {
        /// Widening factor.
        alpha: f64,
    },
    /// Each gene from either parent with probability ½.
    Uniform,
    /// `w·a + (1 − w)·b` for one random `w ∈ [0, 1]`.
    Arithmetic,
}

/// How a child is perturbed (gene-wise, with probability `mutation_rate`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mutation {
    /// Add `N(0, sigma²)`.
    Gaussian {
        /// Standard deviation.
        sigma: f64,
    },
    /// Add Cauchy noise of scale `scale` (heavy tails: occasional long jumps).
    Cauchy {
        /// Scale.
        scale: f64,
    },
}

/// Settings of [`Ga`].
#[derive(Debug, Clone)]
pub struct GaConfig {
    /// Population size.
    pub population: usize,
    /// Survivors copied unchanged into the next generation.
    pub elite: usize,
    /// Tournament size.
    pub tournament: usize,
    /// Probability of crossover (else the child copies one parent).
    pub crossover_rate: f64,
    /// Probability that a gene mutates.
    pub mutation_rate: f64,
    /// The (crossover, mutation) operator pairs available.
    pub operators: Vec<(Crossover, Mutation)>,
    /// Choose operators by bandit (else uniformly at random).
    pub adaptive: bool,
    /// Spread of the initial population around `x0`.
    pub init_sigma: f64,
    /// RNG seed.
    pub seed: u64,
}

impl Default for GaConfig {
    fn default() -> Self {
        GaConfig {
            population: 50,
            elite: 2,
            tournament: 3,
            crossover_rate: 0.9,
            mutation_rate: 0.1,
            operators: vec![
                (
                    Crossover::Blend { alpha: 0.5 },
                    Mutation::Gaussian { sigma: 0.1 },
                ),
                (Crossover::Uniform, Mutation::Gaussian { sigma: 0.1 }),
                (Crossover::Arithmetic, Mutation::Cauchy { scale: 0.05 }),
            ],
            adaptive: true,
            init_sigma: 1.0,
            seed: 0,
        }
    }
}

/// The genetic algorithm; see the module doc.
pub struct Ga {
    config: GaConfig,
    rng: StdRng,
    x0: Vec<f64>,
    population: Vec<Vec<f64>>,
    fitness: Vec<f64>,
    /// Per asked offspring: operator arm and its better parent's fitness.
    pending: Vec<Option<(usize, f64)>>,
    bandit: OperatorBandit,
    guard: Option<SafetyGuard>,
    generator: Option<(Box<dyn Generator>, usize)>,
    best: (Vec<f64>, f64),
    evaluations: u64,
}

impl std::fmt::Debug for Ga {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ga")
            .field("config", &self.config)
            .field("evaluations", &self.evaluations)
            .field("best", &self.best.1)
            .finish_non_exhaustive()
    }
}

impl Ga {
    /// A GA whose first population is spread around `x0`.
    pub fn new(x0: Vec<f64>, config: GaConfig) -> Ga {
        assert!(
            !config.operators.is_empty(),
            "GA needs at least one operator pair"
        );
        assert!(
            config.population > config.elite,
            "population must exceed elite"
        );
        Ga {
            rng: seeded_rng(config.seed),
            bandit: OperatorBandit::new(config.operators.len(), 0.3, 0.99),
            best: (x0.clone(), f64::INFINITY),
            x0,
            config,
            population: Vec::new(),
            fitness: Vec::new(),
            pending: Vec::new(),
            guard: None,
            generator: None,
            evaluations: 0,
        }
    }

    /// Repairs every candidate with `guard` before it is proposed.
    pub fn with_guard(mut self, guard: SafetyGuard) -> Ga {
        self.guard = Some(guard);
        self
    }

    /// Lets `generator` propose `per_generation` of each generation's offspring.
    pub fn with_generator(mut self, generator: Box<dyn Generator>, per_generation: usize) -> Ga {
        self.generator = Some((generator, per_generation));
        self
    }

    /// The operator bandit (its values show which operators paid off).
    pub fn bandit(&self) -> &OperatorBandit {
        &self.bandit
    }

    /// The current population and its fitness.
    pub fn population(&self) -> (&[Vec<f64>], &[f64]) {
        (&self.population, &self.fitness)
    }

    fn tournament(&mut self) -> usize {
        let n = self.population.len();
        let mut best = self.rng.random_range(0..n);
        for _ in 1..self.config.tournament {
            let c = self.rng.random_range(0..n);
            if sanitize(self.fitness[c]) < sanitize(self.fitness[best]) {
                best = c;
            }
        }
        best
    }

    fn child(&mut self, arm: usize) -> (Vec<f64>, f64) {
        let (crossover, mutation) = self.config.operators[arm];
        let (a, b) = (self.tournament(), self.tournament());
        let parent_best = sanitize(self.fitness[a]).min(sanitize(self.fitness[b]));
        let (pa, pb) = (&self.population[a], &self.population[b]);
        let mut x: Vec<f64> = if self.rng.random::<f64>() < self.config.crossover_rate {
            match crossover {
                Crossover::Blend { alpha } => pa
                    .iter()
                    .zip(pb)
                    .map(|(u, v)| {
                        let (lo, hi) = (u.min(*v), u.max(*v));
                        let span = hi - lo;
                        lo - alpha * span + self.rng.random::<f64>() * (1.0 + 2.0 * alpha) * span
                    })
                    .collect(),
                Crossover::Uniform => pa
                    .iter()
                    .zip(pb)
                    .map(|(u, v)| if self.rng.random::<bool>() { *u } else { *v })
                    .collect(),
                Crossover::Arithmetic => {
                    let w: f64 = self.rng.random();
                    pa.iter()
                        .zip(pb)
                        .map(|(u, v)| w * u + (1.0 - w) * v)
                        .collect()
                }
            }
        } else {
            pa.clone()
        };
        for gene in x.iter_mut() {
            if self.rng.random::<f64>() < self.config.mutation_rate {
                *gene += match mutation {
                    Mutation::Gaussian { sigma } => {
                        sigma
                            * <StandardNormal as Distribution<f64>>::sample(
                                &StandardNormal,
                                &mut self.rng,
                            )
                    }
                    Mutation::Cauchy { scale } => {
                        scale * (std::f64::consts::PI * (self.rng.random::<f64>() - 0.5)).tan()
                    }
                };
            }
        }
        (x, parent_best)
    }
}

impl AskTell for Ga {
    fn ask(&mut self) -> Vec<Vec<f64>> {
        let mut out = Vec::new();
        self.pending.clear();
        if self.population.is_empty() {
            for i in 0..self.config.population {
                let x = if i == 0 {
                    self.x0.clone()
                } else {
                    self.x0
                        .iter()
                        .map(|v| {
                            v + self.config.init_sigma
                                * <StandardNormal as Distribution<f64>>::sample(
                                    &StandardNormal,
                                    &mut self.rng,
                                )
                        })
                        .collect()
                };
                out.push(x);
                self.pending.push(None);
            }
        } else {
            let offspring = self.config.population - self.config.elite;
            if let Some((generator, count)) = self.generator.as_mut() {
                let proposals = generator.propose((*count).min(offspring), &mut self.rng);
                for x in proposals.into_iter().take(offspring) {
                    out.push(x);
                    self.pending.push(None);
                }
            }
            while out.len() < offspring {
                let arm = if self.config.adaptive {
                    self.bandit.select(&mut self.rng)
                } else {
                    self.rng.random_range(0..self.config.operators.len())
                };
                let (x, parent_best) = self.child(arm);
                out.push(x);
                self.pending.push(Some((arm, parent_best)));
            }
        }
        if let Some(guard) = &self.guard {
            guard.repair_all(&mut out);
        }
        out
    }

    /// Candidates must be those of the last `ask`, in order.
    fn tell(&mut self, candidates: &[Vec<f64>], fitness: &[f64]) {
        assert_eq!(candidates.len(), fitness.len(), "one fitness per candidate");
        self.evaluations += fitness.len() as u64;
        for (x, f) in candidates.iter().zip(fitness) {
            if sanitize(*f) < self.best.1 {
                self.best = (x.clone(), sanitize(*f));
            }
        }
        for (i, f) in fitness.iter().enumerate() {
            if let Some(Some((arm, parent_best))) = self.pending.get(i) {
                let reward = if sanitize(*f) < *parent_best {
                    1.0
                } else {
                    0.0
                };
                self.bandit.update(*arm, reward);
            }
        }
        if self.population.is_empty() {
            self.population = candidates.to_vec();
            self.fitness = fitness.to_vec();
            return;
        }
        let order = argsort(&self.fitness);
        let mut population: Vec<Vec<f64>> = order[..self.config.elite]
            .iter()
            .map(|&i| self.population[i].clone())
            .collect();
        let mut values: Vec<f64> = order[..self.config.elite]
            .iter()
            .map(|&i| self.fitness[i])
            .collect();
        population.extend_from_slice(candidates);
        values.extend_from_slice(fitness);
        self.population = population;
        self.fitness = values;
    }

    fn best(&self) -> (&[f64], f64) {
        (&self.best.0, self.best.1)
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evolution::problems;

    #[test]
    fn ga_improves_the_sphere_and_guard_holds() {
        let guard = SafetyGuard {
            max_norm: Some(3.0),
            ..Default::default()
        };
        let mut ga = Ga::new(
            vec![2.0; 5],
            GaConfig {
                seed: 3,
                ..Default::default()
            },
        )
        .with_guard(guard.clone());
        let mut first_best = None;
        for _ in 0..200 {
            let xs = ga.ask();
            assert!(xs.iter().all(|x| guard.is_allowed(x)));
            let fs: Vec<f64> = xs.iter().map(|x| problems::sphere(x)).collect();
            ga.tell(&xs, &fs);
            first_best.get_or_insert(ga.best().1);
        }
        assert!(
            ga.best().1 < 1e-2 * first_best.unwrap(),
            "best {}",
            ga.best().1
        );
        assert!(ga.bandit().counts().iter().all(|c| *c > 0.0));
    }

    #[test]
    fn generator_proposals_enter_the_population() {
        let generator = |n: usize, _: &mut StdRng| vec![vec![0.0; 3]; n];
        let mut ga = Ga::new(
            vec![5.0; 3],
            GaConfig {
                seed: 1,
                ..Default::default()
            },
        )
        .with_generator(Box::new(generator), 2);
        for _ in 0..2 {
            let xs = ga.ask();
            let fs: Vec<f64> = xs.iter().map(|x| problems::sphere(x)).collect();
            ga.tell(&xs, &fs);
        }
        assert_eq!(ga.best().1, 0.0);
    }
}

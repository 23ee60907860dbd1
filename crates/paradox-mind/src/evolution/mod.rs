//! Guided evolution over latent vectors: an ask/tell optimiser framework.
//!
//! Every optimiser here **minimises**: pass `-score` to maximise. The loop is always
//!
//! ```
//! use paradox_mind::evolution::{AskTell, Cmaes, CmaesConfig, problems};
//! let mut es = Cmaes::new(vec![1.0; 5], CmaesConfig { sigma0: 0.5, seed: 1, ..Default::default() });
//! while es.should_stop().is_none() {
//!     let candidates = es.ask();
//!     let fitness: Vec<f64> = candidates.iter().map(|x| problems::sphere(x)).collect();
//!     es.tell(&candidates, &fitness);
//! }
//! assert!(es.best().1 < 1e-8);
//! ```
//!
//! Pieces: [`Cmaes`] (full and separable, active by default) with [`Restarts`] (IPOP,
//! BIPOP); [`Ga`] (real-coded genetic algorithm with operators chosen by an
//! [`OperatorBandit`]); [`NoveltyArchive`] / [`EngineNoveltyArchive`] (novelty = mean
//! distance to the k nearest behaviours); [`MapElites`] (grid or CVT cells);
//! [`SurrogateAssisted`] (a regression model screens candidates while its rank
//! correlation with true fitness stays high); [`Generator`] plugins, [`Feedback`] from
//! humans, and a [`SafetyGuard`] (norm bounds, boxes, forbidden balls).

mod bandit;
mod cmaes;
mod feedback;
mod ga;
mod guard;
pub mod linalg;
mod map_elites;
mod novelty;
pub mod problems;
mod restarts;
mod surrogate;

pub use bandit::OperatorBandit;
pub use feedback::Feedback;
pub use ga::{Crossover, Ga, GaConfig, Mutation};
pub use guard::{ForbiddenBall, SafetyGuard};
pub use map_elites::{Elite, MapElites};
pub use novelty::{EngineNoveltyArchive, NoveltyArchive};

pub use cmaes::{Cmaes, CmaesConfig, StopReason};
pub use restarts::{RestartOutcome, RestartRun, RestartStrategy, Restarts};
pub use surrogate::{
    kendall_tau, spearman_rho, KnnSurrogate, QuadraticSurrogate, Surrogate, SurrogateAssisted,
    SurrogateConfig,
};

use rand::rngs::StdRng;
use rand::SeedableRng;

/// The ask/tell protocol: `ask` proposes candidates, the caller evaluates them (any way
/// it likes: in parallel, by a human, through the engine) and `tell`s the fitness back,
/// lower being better. `tell` must receive the candidates of the last `ask` (an
/// optimiser may accept others, such as injected ones, and says so).
pub trait AskTell {
    /// The next candidates to evaluate.
    fn ask(&mut self) -> Vec<Vec<f64>>;
    /// Fitness of `candidates` (same order; NaN counts as +∞).
    fn tell(&mut self, candidates: &[Vec<f64>], fitness: &[f64]);
    /// The best candidate told so far and its fitness.
    fn best(&self) -> (&[f64], f64);
    /// Evaluations told so far.
    fn evaluations(&self) -> u64;
}

/// A generator plugin: proposes candidates from outside the optimiser (a language
/// model, stored points, a human's sketch...). Closures `FnMut(usize, &mut StdRng) ->
/// Vec<Vec<f64>>` are generators.
pub trait Generator {
    /// Up to `n` candidates.
    fn propose(&mut self, n: usize, rng: &mut StdRng) -> Vec<Vec<f64>>;
}

impl<F> Generator for F
where
    F: FnMut(usize, &mut StdRng) -> Vec<Vec<f64>>,
{
    fn propose(&mut self, n: usize, rng: &mut StdRng) -> Vec<Vec<f64>> {
        self(n, rng)
    }
}

/// The deterministic RNG every optimiser uses.
pub fn seeded_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// NaN fitness sorts last.
pub(crate) fn sanitize(f: f64) -> f64 {
    if f.is_nan() {
        f64::INFINITY
    } else {
        f
    }
}

/// Indices of `fitness` sorted best (lowest) first.
pub(crate) fn argsort(fitness: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..fitness.len()).collect();
    order.sort_by(|&a, &b| sanitize(fitness[a]).total_cmp(&sanitize(fitness[b])));
    order
}

pub(crate) fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

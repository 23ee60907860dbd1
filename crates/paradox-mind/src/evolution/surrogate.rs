//! Surrogate-assisted search: a regression model over the evaluated points ranks new
//! candidates, and only the most promising are evaluated for real, **while the model's
//! rank correlation with true fitness stays high**.
//!
//! Gate (after lq-CMA-ES, Hansen 2019): each truly evaluated candidate leaves a pair
//! (prediction made before its evaluation, true value). Kendall's τ over the last
//! `window` pairs decides how far the model is trusted: at `τ ≥ min_tau` a generation
//! evaluates only its `min_evaluations` best-predicted candidates; below, it evaluates
//! more in growing chunks (refitting after each) until τ recovers or the whole
//! population is evaluated, so a bad model costs evaluations, never wrong decisions
//! taken on its word alone. Unevaluated candidates are told to the optimiser with
//! model values shifted to rank after the generation's best true value.

use super::linalg::cholesky_solve;
use super::{argsort, dist2, sanitize, seeded_rng, AskTell, Cmaes, Generator};
use rand::rngs::StdRng;
use std::collections::VecDeque;

/// A regression model of fitness.
pub trait Surrogate: std::fmt::Debug {
    /// Fits the model to evaluated points; false when there is too little data.
    fn fit(&mut self, xs: &[Vec<f64>], fs: &[f64]) -> bool;
    /// Predicted fitness of `x` (only meaningful after a successful `fit`).
    fn predict(&self, x: &[f64]) -> f64;
}

/// k-nearest-neighbour regression: the inverse-distance-weighted mean fitness of the
/// `k` nearest evaluated points.
#[derive(Debug, Clone)]
pub struct KnnSurrogate {
    /// Neighbours averaged.
    pub k: usize,
    xs: Vec<Vec<f64>>,
    fs: Vec<f64>,
}

impl KnnSurrogate {
    /// A model averaging `k` neighbours.
    pub fn new(k: usize) -> Self {
        KnnSurrogate {
            k: k.max(1),
            xs: Vec::new(),
            fs: Vec::new(),
        }
    }
}

impl Surrogate for KnnSurrogate {
    fn fit(&mut self, xs: &[Vec<f64>], fs: &[f64]) -> bool {
        self.xs = xs.to_vec();
        self.fs = fs.to_vec();
        xs.len() >= self.k
    }

    fn predict(&self, x: &[f64]) -> f64 {
        let mut near: Vec<(f64, f64)> = self
            .xs
            .iter()
            .zip(&self.fs)
            .map(|(p, f)| (dist2(p, x), *f))
            .collect();
        let k = self.k.min(near.len());
        if k == 0 {
            return f64::INFINITY;
        }
        near.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
        let (mut num, mut den) = (0.0, 0.0);
        for (d2, f) in &near[..k] {
            if *d2 == 0.0 {
                return *f;
            }
            let w = 1.0 / d2.sqrt();
            num += w * f;
            den += w;
        }
        num / den
    }
}

/// Least-squares polynomial model: full quadratic when there are at least `1.1 ×`
/// its `(n+1)(n+2)/2` coefficients of data, else diagonal quadratic (`2n + 1`), else
/// linear (`n + 1`). Coordinates are standardised per dimension over the training set.
#[derive(Debug, Clone, Default)]
pub struct QuadraticSurrogate {
    center: Vec<f64>,
    scale: Vec<f64>,
    coef: Vec<f64>,
    kind: PolyKind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum PolyKind {
    #[default]
    Linear,
    Diagonal,
    Full,
}

impl QuadraticSurrogate {
    /// An unfitted model.
    pub fn new() -> Self {
        QuadraticSurrogate::default()
    }

    fn features(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.push(1.0);
        let z: Vec<f64> = x
            .iter()
            .zip(&self.center)
            .zip(&self.scale)
            .map(|((x, c), s)| (x - c) / s)
            .collect();
        out.extend_from_slice(&z);
        match self.kind {
            PolyKind::Linear => {}
            PolyKind::Diagonal => out.extend(z.iter().map(|v| v * v)),
            PolyKind::Full => {
                for i in 0..z.len() {
                    for j in i..z.len() {
                        out.push(z[i] * z[j]);
                    }
                }
            }
        }
    }

    /// Most recent points a fit in dimension `n` uses (enough for the full model).
    pub fn training_size(n: usize) -> usize {
        ((n + 1) * (n + 2) / 2) * 11 / 10 + 5
    }
}

impl Surrogate for QuadraticSurrogate {
    fn fit(&mut self, xs: &[Vec<f64>], fs: &[f64]) -> bool {
        let Some(first) = xs.first() else {
            return false;
        };
        let n = first.len();
        let m = xs.len();
        let enough = |p: usize| m * 10 >= p * 11;
        self.kind = if enough((n + 1) * (n + 2) / 2) {
            PolyKind::Full
        } else if enough(2 * n + 1) {
            PolyKind::Diagonal
        } else if enough(n + 1) {
            PolyKind::Linear
        } else {
            return false;
        };
        self.center = (0..n)
            .map(|i| xs.iter().map(|x| x[i]).sum::<f64>() / m as f64)
            .collect();
        self.scale = (0..n)
            .map(|i| {
                let var = xs
                    .iter()
                    .map(|x| (x[i] - self.center[i]).powi(2))
                    .sum::<f64>()
                    / m as f64;
                if var > 0.0 {
                    var.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        let mut phi = Vec::new();
        self.features(first, &mut phi);
        let p = phi.len();
        let mut ata = vec![0.0; p * p];
        let mut atb = vec![0.0; p];
        for (x, f) in xs.iter().zip(fs) {
            self.features(x, &mut phi);
            let f = sanitize(*f);
            if !f.is_finite() {
                continue;
            }
            for i in 0..p {
                atb[i] += phi[i] * f;
                let row = &mut ata[i * p..(i + 1) * p];
                for (a, pj) in row[i..].iter_mut().zip(&phi[i..]) {
                    *a += phi[i] * pj;
                }
            }
        }
        for i in 0..p {
            for j in 0..i {
                ata[i * p + j] = ata[j * p + i];
            }
        }
        match cholesky_solve(&ata, &atb, p, 1e-12) {
            Some(coef) => {
                self.coef = coef;
                true
            }
            None => false,
        }
    }

    fn predict(&self, x: &[f64]) -> f64 {
        let mut phi = Vec::with_capacity(self.coef.len());
        self.features(x, &mut phi);
        phi.iter().zip(&self.coef).map(|(a, b)| a * b).sum()
    }
}

/// Kendall's τ-a between two equally long sequences (1: same order, −1: reversed).
pub fn kendall_tau(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let mut score = 0.0;
    for i in 0..n {
        for j in (i + 1)..n {
            score += ((a[i] - a[j]) * (b[i] - b[j])).signum();
        }
    }
    score / (n * (n - 1) / 2) as f64
}

/// Spearman's ρ (Pearson correlation of ranks, ties broken by position).
pub fn spearman_rho(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let ranks = |v: &[f64]| {
        let mut r = vec![0.0; n];
        for (rank, i) in argsort(&v[..n]).into_iter().enumerate() {
            r[i] = rank as f64;
        }
        r
    };
    let (ra, rb) = (ranks(a), ranks(b));
    let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y).powi(2)).sum();
    1.0 - 6.0 * d2 / (n as f64 * ((n * n) as f64 - 1.0))
}

/// Settings of [`SurrogateAssisted`].
#[derive(Debug, Clone)]
pub struct SurrogateConfig {
    /// Kendall τ at or above which the model is trusted.
    pub min_tau: f64,
    /// Pairs (prediction, truth) τ is computed over (at least 15).
    pub window: usize,
    /// True evaluations per generation while the model is trusted.
    pub min_evaluations: usize,
    /// Most recent evaluated points the model is fitted on.
    pub training_size: usize,
}

impl SurrogateConfig {
    /// Defaults for dimension `n` and population `lambda`: τ ≥ 0.8 over the last
    /// `max(λ, 15)` pairs, one true evaluation per trusted generation, the most recent
    /// `1.1 × (n+1)(n+2)/2 + 5` points for fitting. (0.85, lq-CMA-ES's value, gave
    /// 1.97× on 10-D Rosenbrock; 0.7 gave 2.6× but lost a run; see `docs/mind.md`.)
    pub fn for_dimension(n: usize, lambda: usize) -> Self {
        SurrogateConfig {
            min_tau: 0.8,
            window: lambda.max(15),
            min_evaluations: 1,
            training_size: QuadraticSurrogate::training_size(n),
        }
    }
}

/// CMA-ES whose candidates are screened by a [`Surrogate`]; see the module doc. With
/// a [`Generator`] ([`SurrogateAssisted::with_generator`]) this is the hybrid search:
/// the generator's proposals replace part of each generation's samples, the model
/// screens them together, and CMA-ES learns from whichever were good (injected
/// points are clipped by [`Cmaes::clip_injected`] before being told).
pub struct SurrogateAssisted<S: Surrogate> {
    /// The optimiser driven.
    pub es: Cmaes,
    /// The model.
    pub model: S,
    config: SurrogateConfig,
    archive: VecDeque<(Vec<f64>, f64)>,
    pairs: VecDeque<(f64, f64)>,
    evaluations: u64,
    best: (Vec<f64>, f64),
    model_ready: bool,
    generator: Option<(Box<dyn Generator>, usize, StdRng)>,
}

impl<S: Surrogate> std::fmt::Debug for SurrogateAssisted<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurrogateAssisted")
            .field("es", &self.es)
            .field("model", &self.model)
            .field("evaluations", &self.evaluations)
            .field("best", &self.best.1)
            .finish_non_exhaustive()
    }
}

impl<S: Surrogate> SurrogateAssisted<S> {
    /// Lets `generator` propose up to `per_generation` candidates each generation
    /// (they replace that many of CMA-ES's samples). `seed` seeds the generator's RNG.
    pub fn with_generator(
        mut self,
        generator: Box<dyn Generator>,
        per_generation: usize,
        seed: u64,
    ) -> Self {
        self.generator = Some((generator, per_generation, seeded_rng(seed)));
        self
    }

    /// Wraps `es`.
    pub fn new(es: Cmaes, model: S, config: SurrogateConfig) -> Self {
        let x0 = es.mean().to_vec();
        SurrogateAssisted {
            es,
            model,
            config,
            archive: VecDeque::new(),
            pairs: VecDeque::new(),
            evaluations: 0,
            best: (x0, f64::INFINITY),
            model_ready: false,
            generator: None,
        }
    }

    /// True evaluations so far.
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }

    /// Best truly evaluated point and its fitness.
    pub fn best(&self) -> (&[f64], f64) {
        (&self.best.0, self.best.1)
    }

    /// Kendall τ of the recent (prediction, truth) pairs; `None` with fewer than 15.
    pub fn current_tau(&self) -> Option<f64> {
        if self.pairs.len() < 15 {
            return None;
        }
        let (p, t): (Vec<f64>, Vec<f64>) = self.pairs.iter().copied().unzip();
        Some(kendall_tau(&p, &t))
    }

    fn refit(&mut self) {
        let (xs, fs): (Vec<Vec<f64>>, Vec<f64>) = self.archive.iter().cloned().unzip();
        self.model_ready = self.model.fit(&xs, &fs);
    }

    fn record(&mut self, x: &[f64], f: f64, predicted: Option<f64>) {
        self.evaluations += 1;
        let f = sanitize(f);
        if f < self.best.1 {
            self.best = (x.to_vec(), f);
        }
        self.archive.push_back((x.to_vec(), f));
        while self.archive.len() > self.config.training_size {
            self.archive.pop_front();
        }
        if let Some(p) = predicted {
            self.pairs.push_back((p, f));
            while self.pairs.len() > self.config.window.max(15) {
                self.pairs.pop_front();
            }
        }
    }

    /// One generation: ask, screen, evaluate what the gate requires, tell. Returns the
    /// number of true evaluations spent.
    pub fn step(&mut self, mut objective: impl FnMut(&[f64]) -> f64) -> usize {
        let mut xs = self.es.ask();
        let lambda = xs.len();
        let mut injected = vec![false; lambda];
        if let Some((generator, count, rng)) = self.generator.as_mut() {
            let proposals = generator.propose((*count).min(lambda), rng);
            for (k, x) in proposals.into_iter().take(lambda).enumerate() {
                xs[lambda - 1 - k] = x;
                injected[lambda - 1 - k] = true;
            }
        }
        let mut fitness = vec![f64::NAN; lambda];
        let mut evaluated = vec![false; lambda];
        let mut spent = 0;
        if !self.model_ready {
            for (i, x) in xs.iter().enumerate() {
                fitness[i] = objective(x);
                evaluated[i] = true;
                self.record(x, fitness[i], None);
            }
            self.refit();
            self.tell_clipped(xs, &fitness, &injected);
            return lambda;
        }
        let trusted = self.current_tau().is_some_and(|t| t >= self.config.min_tau);
        let mut chunk = if trusted {
            self.config.min_evaluations.max(1)
        } else {
            lambda.div_ceil(10).max(1)
        };
        loop {
            let predictions: Vec<f64> = xs.iter().map(|x| self.model.predict(x)).collect();
            let order = argsort(&predictions);
            let todo: Vec<usize> = order
                .into_iter()
                .filter(|&i| !evaluated[i])
                .take(chunk)
                .collect();
            for i in todo {
                fitness[i] = objective(&xs[i]);
                evaluated[i] = true;
                spent += 1;
                self.record(&xs[i], fitness[i], Some(predictions[i]));
            }
            self.refit();
            let done = evaluated.iter().all(|e| *e);
            let good = self.current_tau().is_some_and(|t| t >= self.config.min_tau);
            if done || (good && self.model_ready) {
                break;
            }
            chunk = (chunk * 3).div_ceil(2);
        }
        let best_true = (0..lambda)
            .filter(|&i| evaluated[i])
            .map(|i| sanitize(fitness[i]))
            .fold(f64::INFINITY, f64::min);
        let predictions: Vec<f64> = (0..lambda)
            .map(|i| {
                if evaluated[i] {
                    fitness[i]
                } else {
                    self.model.predict(&xs[i])
                }
            })
            .collect();
        let min_unevaluated = (0..lambda)
            .filter(|&i| !evaluated[i])
            .map(|i| predictions[i])
            .fold(f64::INFINITY, f64::min);
        let shift = if min_unevaluated.is_finite() && best_true.is_finite() {
            (best_true - min_unevaluated).max(0.0) + 1e-12 * best_true.abs().max(1e-300)
        } else {
            0.0
        };
        for i in 0..lambda {
            if !evaluated[i] {
                fitness[i] = predictions[i] + shift;
            }
        }
        self.tell_clipped(xs, &fitness, &injected);
        spent
    }

    fn tell_clipped(&mut self, mut xs: Vec<Vec<f64>>, fitness: &[f64], injected: &[bool]) {
        for (x, inj) in xs.iter_mut().zip(injected) {
            if *inj {
                self.es.clip_injected(x);
            }
        }
        self.es.tell(&xs, fitness);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evolution::{problems, CmaesConfig};

    #[test]
    fn rank_correlations_know_order() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(kendall_tau(&a, &[10.0, 20.0, 30.0, 40.0]), 1.0);
        assert_eq!(kendall_tau(&a, &[4.0, 3.0, 2.0, 1.0]), -1.0);
        assert!((spearman_rho(&a, &[1.0, 3.0, 2.0, 4.0]) - 0.8).abs() < 1e-12);
    }

    #[test]
    fn quadratic_model_is_exact_on_a_quadratic() {
        let n = 4;
        let mut rng = crate::evolution::seeded_rng(1);
        use rand::Rng;
        let xs: Vec<Vec<f64>> = (0..40)
            .map(|_| (0..n).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        let fs: Vec<f64> = xs
            .iter()
            .map(|x| problems::ellipsoid(x) + 3.0 * x[0] * x[1])
            .collect();
        let mut model = QuadraticSurrogate::new();
        assert!(model.fit(&xs, &fs));
        let probe = [0.3, -0.2, 0.7, 0.1];
        let truth = problems::ellipsoid(&probe) + 3.0 * probe[0] * probe[1];
        assert!((model.predict(&probe) - truth).abs() < 1e-6 * truth.abs().max(1.0));
    }

    /// A model that lies: the gate must notice and evaluate every candidate.
    #[derive(Debug)]
    struct Liar;
    impl Surrogate for Liar {
        fn fit(&mut self, _: &[Vec<f64>], _: &[f64]) -> bool {
            true
        }
        fn predict(&self, x: &[f64]) -> f64 {
            -problems::sphere(x)
        }
    }

    #[test]
    fn gate_falls_back_to_true_evaluations_when_the_model_is_wrong() {
        let es = Cmaes::new(
            vec![1.0; 5],
            CmaesConfig {
                sigma0: 0.3,
                seed: 5,
                ..Default::default()
            },
        );
        let lambda = es.population();
        let config = SurrogateConfig::for_dimension(5, lambda);
        let mut sa = SurrogateAssisted::new(es, Liar, config);
        for _ in 0..10 {
            sa.step(problems::sphere);
        }
        assert!(sa.current_tau().unwrap() < 0.0);
        let spent = sa.step(problems::sphere);
        assert_eq!(
            spent, lambda,
            "an anti-correlated model must not save evaluations"
        );
    }

    #[test]
    fn quadratic_surrogate_saves_most_evaluations_on_the_ellipsoid() {
        let n = 6;
        let mut es = Cmaes::new(
            vec![0.5; n],
            CmaesConfig {
                sigma0: 0.5,
                seed: 2,
                ..Default::default()
            },
        );
        let lambda = es.population();
        let mut sa = SurrogateAssisted::new(
            Cmaes::new(
                vec![0.5; n],
                CmaesConfig {
                    sigma0: 0.5,
                    seed: 2,
                    ..Default::default()
                },
            ),
            QuadraticSurrogate::new(),
            SurrogateConfig::for_dimension(n, lambda),
        );
        while sa.best().1 > 1e-8 && sa.evaluations() < 20_000 {
            sa.step(problems::ellipsoid);
        }
        while es.best().1 > 1e-8 && es.evaluations() < 20_000 {
            let xs = es.ask();
            let fs: Vec<f64> = xs.iter().map(|x| problems::ellipsoid(x)).collect();
            es.tell(&xs, &fs);
        }
        assert!(
            sa.best().1 <= 1e-8,
            "surrogate run stalled at {}",
            sa.best().1
        );
        assert!(
            sa.evaluations() * 2 < es.evaluations(),
            "surrogate {} vs plain {}",
            sa.evaluations(),
            es.evaluations()
        );
    }
}

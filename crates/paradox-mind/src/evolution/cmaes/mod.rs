//! CMA-ES: the covariance matrix adaptation evolution strategy (Hansen, "The CMA
//! Evolution Strategy: A Tutorial", 2016), with the defaults pycma uses.
//!
//! Per generation: sample `λ` points `x = m + σ·B·D·z`, rank them, move the mean to the
//! weighted recombination of the best `μ`, adapt `σ` by cumulative step-size adaptation
//! (CSA), and `C` by a rank-one update (evolution path `p_c`) plus a rank-μ update.
//! Full CMA-ES uses *active* covariance adaptation (negative weights for the worst
//! `λ − μ`); the eigendecomposition `C = B·D²·Bᵀ` is refreshed every
//! `max(1, ⌊1 / (10 n (c₁ + c_μ))⌋)` generations. Separable CMA-ES (Ros & Hansen 2008)
//! keeps only the diagonal of `C`, with learning rates multiplied by `(n + 2) / 3`:
//! O(n) per sample, for high dimensions.

use super::linalg::symmetric_eigen;
use super::{argsort, sanitize, seeded_rng, AskTell};
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use std::collections::VecDeque;

mod stop;

/// Settings; `Default` gives pycma's defaults (σ₀ must usually be set by the caller).
#[derive(Debug, Clone)]
pub struct CmaesConfig {
    /// Initial step size (a quarter to a third of the search range is typical).
    pub sigma0: f64,
    /// Population size `λ` (default `4 + ⌊3 ln n⌋`).
    pub population: Option<usize>,
    /// Diagonal covariance only (sep-CMA-ES).
    pub separable: bool,
    /// Negative weights for the worst half (full CMA-ES only; pycma's default).
    pub active: bool,
    /// Stop once the best fitness is at or below this.
    pub target: Option<f64>,
    /// Stop after this many evaluations.
    pub max_evaluations: Option<u64>,
    /// Stop when the recent fitness range is below this (pycma `tolfun`).
    pub tol_fun: f64,
    /// Stop when every coordinate's step is below this (pycma `tolx`).
    pub tol_x: f64,
    /// Seed of the sampler.
    pub seed: u64,
}

impl Default for CmaesConfig {
    fn default() -> Self {
        CmaesConfig {
            sigma0: 1.0,
            population: None,
            separable: false,
            active: true,
            target: None,
            max_evaluations: None,
            tol_fun: 1e-11,
            tol_x: 1e-11,
            seed: 0,
        }
    }
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The target fitness was reached.
    Target,
    /// The evaluation budget is spent.
    MaxEvaluations,
    /// Too many generations (pycma `maxiter`: `100 + 150 (n+3)² / √λ`).
    MaxIterations,
    /// Fitness values of recent generations span less than `tol_fun`.
    TolFun,
    /// Every coordinate's step size is below `tol_x`.
    TolX,
    /// The condition number of `C` exceeds 1e14.
    ConditionCov,
    /// Adding 0.1σ along a principal axis does not change the mean.
    NoEffectAxis,
    /// Adding 0.2σ to a coordinate does not change it.
    NoEffectCoord,
    /// The median fitness stopped improving over a long window.
    Stagnation,
}

impl StopReason {
    /// The reason's name in reports and bindings: `target`, `max_evaluations`,
    /// `max_iterations`, `tol_fun`, `tol_x`, `condition_cov`, `no_effect_axis`,
    /// `no_effect_coord`, `stagnation`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Target => "target",
            StopReason::MaxEvaluations => "max_evaluations",
            StopReason::MaxIterations => "max_iterations",
            StopReason::TolFun => "tol_fun",
            StopReason::TolX => "tol_x",
            StopReason::ConditionCov => "condition_cov",
            StopReason::NoEffectAxis => "no_effect_axis",
            StopReason::NoEffectCoord => "no_effect_coord",
            StopReason::Stagnation => "stagnation",
        }
    }
}

/// Strategy constants derived from `n` and `λ`.
#[derive(Debug, Clone)]
struct Params {
    lambda: usize,
    mu: usize,
    weights: Vec<f64>,
    mueff: f64,
    cc: f64,
    cs: f64,
    c1: f64,
    cmu: f64,
    damps: f64,
    chi_n: f64,
    eigen_gap: u64,
}

impl Params {
    fn new(n: usize, lambda: usize, separable: bool, active: bool) -> Params {
        let nf = n as f64;
        let mu = lambda / 2;
        let raw: Vec<f64> = (0..lambda)
            .map(|i| ((lambda as f64 + 1.0) / 2.0).ln() - ((i + 1) as f64).ln())
            .collect();
        let pos_sum: f64 = raw[..mu].iter().sum();
        let pos_sq: f64 = raw[..mu].iter().map(|w| w * w).sum();
        let mueff = pos_sum * pos_sum / pos_sq;
        let neg: &[f64] = &raw[mu..];
        let neg_sum: f64 = neg.iter().map(|w| w.abs()).sum();
        let neg_sq: f64 = neg.iter().map(|w| w * w).sum();
        let mueff_neg = if neg_sq > 0.0 {
            neg_sum * neg_sum / neg_sq
        } else {
            0.0
        };

        let alpha_cov = 2.0;
        let mut c1 = alpha_cov / ((nf + 1.3).powi(2) + mueff);
        let mut cmu = (1.0 - c1).min(
            alpha_cov * (0.25 + mueff + 1.0 / mueff - 2.0)
                / ((nf + 2.0).powi(2) + alpha_cov * mueff / 2.0),
        );
        if separable {
            let factor = (nf + 2.0) / 3.0;
            c1 = (c1 * factor).min(1.0);
            cmu = (cmu * factor).min(1.0 - c1);
        }
        let cs = (mueff + 2.0) / (nf + mueff + 5.0);
        let damps = 1.0 + 2.0 * (((mueff - 1.0) / (nf + 1.0)).sqrt() - 1.0).max(0.0) + cs;
        let cc = (4.0 + mueff / nf) / (nf + 4.0 + 2.0 * mueff / nf);

        let use_negative = active && !separable && neg_sum > 0.0;
        let neg_scale = if use_negative {
            let alpha_mu = 1.0 + c1 / cmu;
            let alpha_mueff = 1.0 + 2.0 * mueff_neg / (mueff + 2.0);
            let alpha_posdef = (1.0 - c1 - cmu) / (nf * cmu);
            alpha_mu.min(alpha_mueff).min(alpha_posdef) / neg_sum
        } else {
            0.0
        };
        let weights = raw
            .iter()
            .enumerate()
            .map(|(i, &w)| if i < mu { w / pos_sum } else { w * neg_scale })
            .collect();
        let chi_n = nf.sqrt() * (1.0 - 1.0 / (4.0 * nf) + 1.0 / (21.0 * nf * nf));
        let eigen_gap = if separable {
            1
        } else {
            ((1.0 / (10.0 * nf * (c1 + cmu))).floor() as u64).max(1)
        };
        Params {
            lambda,
            mu,
            weights,
            mueff,
            cc,
            cs,
            c1,
            cmu,
            damps,
            chi_n,
            eigen_gap,
        }
    }
}

/// A CMA-ES run; see the module doc. Implements [`AskTell`]; `tell` accepts any `λ`
/// candidates (injected ones included), not only those of the last `ask`.
#[derive(Debug)]
pub struct Cmaes {
    config: CmaesConfig,
    p: Params,
    n: usize,
    mean: Vec<f64>,
    sigma: f64,
    /// Full: `n × n` covariance. Separable: its diagonal (`n` entries).
    cov: Vec<f64>,
    /// Eigenvectors (columns), full only.
    b: Vec<f64>,
    /// Square roots of the eigenvalues (full) or of the diagonal (separable).
    d: Vec<f64>,
    pc: Vec<f64>,
    ps: Vec<f64>,
    generation: u64,
    eigen_generation: u64,
    evaluations: u64,
    best_x: Vec<f64>,
    best_f: f64,
    /// Best fitness per generation, most recent last (for `TolFun` and stagnation).
    history: VecDeque<f64>,
    /// Median fitness per generation (stagnation).
    medians: Vec<f64>,
    last_generation_f: Vec<f64>,
    rng: StdRng,
}

impl Cmaes {
    /// A run from `x0` (its length is the dimension `n ≥ 1`).
    pub fn new(x0: Vec<f64>, config: CmaesConfig) -> Cmaes {
        let n = x0.len();
        assert!(n >= 1, "CMA-ES needs a dimension of at least 1");
        assert!(config.sigma0 > 0.0, "CMA-ES needs sigma0 > 0");
        let lambda = config
            .population
            .unwrap_or(4 + (3.0 * (n as f64).ln()).floor() as usize)
            .max(2);
        let p = Params::new(n, lambda, config.separable, config.active);
        let (cov, b) = if config.separable {
            (vec![1.0; n], Vec::new())
        } else {
            let mut identity = vec![0.0; n * n];
            for i in 0..n {
                identity[i * n + i] = 1.0;
            }
            (identity.clone(), identity)
        };
        Cmaes {
            rng: seeded_rng(config.seed),
            sigma: config.sigma0,
            config,
            p,
            n,
            best_x: x0.clone(),
            mean: x0,
            cov,
            b,
            d: vec![1.0; n],
            pc: vec![0.0; n],
            ps: vec![0.0; n],
            generation: 0,
            eigen_generation: 0,
            evaluations: 0,
            best_f: f64::INFINITY,
            history: VecDeque::new(),
            medians: Vec::new(),
            last_generation_f: Vec::new(),
        }
    }

    /// Population size `λ`.
    pub fn population(&self) -> usize {
        self.p.lambda
    }

    /// Current mean.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Current step size.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// Generations completed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Dimension.
    pub fn dimension(&self) -> usize {
        self.n
    }

    /// Shortens the step from the mean to `x` so that its Mahalanobis length
    /// `‖C^{-1/2}(x − m)‖/σ` is at most `√n + 2n/(n+2)` (pycma's rule for injected
    /// solutions). Use it on candidates that did not come from [`AskTell::ask`]
    /// (generator proposals) before telling them, so one far-away point cannot blow
    /// up the step size or the covariance.
    pub fn clip_injected(&self, x: &mut [f64]) {
        let n = self.n;
        let y: Vec<f64> = x
            .iter()
            .zip(&self.mean)
            .map(|(x, m)| (x - m) / self.sigma)
            .collect();
        let mut z = vec![0.0; n];
        self.inv_sqrt(&y, &mut z);
        let length = z.iter().map(|v| v * v).sum::<f64>().sqrt();
        let limit = (n as f64).sqrt() + 2.0 * n as f64 / (n as f64 + 2.0);
        if length > limit {
            let scale = limit / length;
            for ((xi, m), yi) in x.iter_mut().zip(&self.mean).zip(&y) {
                *xi = m + self.sigma * yi * scale;
            }
        }
    }

    /// `C^{1/2}·z` for a standard normal `z`, in `out`.
    fn transform(&self, z: &[f64], out: &mut [f64]) {
        let n = self.n;
        if self.config.separable {
            for i in 0..n {
                out[i] = self.d[i] * z[i];
            }
        } else {
            for (i, o) in out.iter_mut().enumerate() {
                let row = &self.b[i * n..(i + 1) * n];
                *o = row
                    .iter()
                    .zip(&self.d)
                    .zip(z)
                    .map(|((b, d), z)| b * d * z)
                    .sum();
            }
        }
    }

    /// `C^{-1/2}·y` in `out`.
    fn inv_sqrt(&self, y: &[f64], out: &mut [f64]) {
        let n = self.n;
        if self.config.separable {
            for i in 0..n {
                out[i] = y[i] / self.d[i];
            }
            return;
        }
        let mut tmp = vec![0.0; n];
        for (j, t) in tmp.iter_mut().enumerate() {
            let s: f64 = y
                .iter()
                .enumerate()
                .map(|(i, yi)| self.b[i * n + j] * yi)
                .sum();
            *t = s / self.d[j];
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.b[i * n..(i + 1) * n]
                .iter()
                .zip(&tmp)
                .map(|(b, t)| b * t)
                .sum();
        }
    }

    fn update_eigen(&mut self) {
        let n = self.n;
        if self.config.separable {
            for i in 0..n {
                self.d[i] = self.cov[i].max(1e-300).sqrt();
            }
            return;
        }
        let (values, vectors) = symmetric_eigen(&self.cov, n);
        self.b = vectors;
        for (d, v) in self.d.iter_mut().zip(values) {
            *d = v.max(1e-300).sqrt();
        }
        self.eigen_generation = self.generation;
    }
}

impl AskTell for Cmaes {
    fn ask(&mut self) -> Vec<Vec<f64>> {
        let n = self.n;
        let mut z = vec![0.0; n];
        let mut y = vec![0.0; n];
        (0..self.p.lambda)
            .map(|_| {
                for zi in z.iter_mut() {
                    *zi = StandardNormal.sample(&mut self.rng);
                }
                self.transform(&z, &mut y);
                self.mean
                    .iter()
                    .zip(&y)
                    .map(|(m, y)| m + self.sigma * y)
                    .collect()
            })
            .collect()
    }

    fn tell(&mut self, candidates: &[Vec<f64>], fitness: &[f64]) {
        assert_eq!(
            candidates.len(),
            self.p.lambda,
            "tell needs λ = {} candidates",
            self.p.lambda
        );
        assert_eq!(candidates.len(), fitness.len(), "one fitness per candidate");
        let n = self.n;
        let p = self.p.clone();
        self.evaluations += fitness.len() as u64;
        let order = argsort(fitness);
        let best = order[0];
        if sanitize(fitness[best]) < self.best_f {
            self.best_f = sanitize(fitness[best]);
            self.best_x = candidates[best].clone();
        }
        // Steps y_i = (x_i − m)/σ in rank order.
        let ys: Vec<Vec<f64>> = order
            .iter()
            .map(|&i| {
                candidates[i]
                    .iter()
                    .zip(&self.mean)
                    .map(|(x, m)| (x - m) / self.sigma)
                    .collect()
            })
            .collect();
        let mut yw = vec![0.0; n];
        for (y, w) in ys.iter().zip(&p.weights).take(p.mu) {
            for (a, b) in yw.iter_mut().zip(y) {
                *a += w * b;
            }
        }
        for (m, y) in self.mean.iter_mut().zip(&yw) {
            *m += self.sigma * y;
        }
        let mut c_inv_yw = vec![0.0; n];
        self.inv_sqrt(&yw, &mut c_inv_yw);
        let cs_factor = (p.cs * (2.0 - p.cs) * p.mueff).sqrt();
        for (ps, v) in self.ps.iter_mut().zip(&c_inv_yw) {
            *ps = (1.0 - p.cs) * *ps + cs_factor * v;
        }
        let ps_norm = self.ps.iter().map(|v| v * v).sum::<f64>().sqrt();
        let gen = self.generation + 1;
        let hsig_threshold = (1.4 + 2.0 / (n as f64 + 1.0)) * p.chi_n;
        let hsig = ps_norm / (1.0 - (1.0 - p.cs).powi((2 * gen).min(100_000) as i32)).sqrt()
            < hsig_threshold;
        let cc_factor = (p.cc * (2.0 - p.cc) * p.mueff).sqrt();
        for (pc, y) in self.pc.iter_mut().zip(&yw) {
            *pc = (1.0 - p.cc) * *pc + if hsig { cc_factor * y } else { 0.0 };
        }
        let delta_h = if hsig { 0.0 } else { p.cc * (2.0 - p.cc) };
        let weight_sum: f64 = p.weights.iter().sum();
        let decay = 1.0 + p.c1 * delta_h - p.c1 - p.cmu * weight_sum;
        if self.config.separable {
            for i in 0..n {
                let rank_mu: f64 = ys
                    .iter()
                    .zip(&p.weights)
                    .take(p.mu)
                    .map(|(y, w)| w * y[i] * y[i])
                    .sum();
                self.cov[i] =
                    decay * self.cov[i] + p.c1 * self.pc[i] * self.pc[i] + p.cmu * rank_mu;
            }
        } else {
            // Effective weights: negative ones rescaled by n / ‖C^{-1/2} y‖².
            let mut tmp = vec![0.0; n];
            let effective: Vec<f64> = ys
                .iter()
                .zip(&p.weights)
                .map(|(y, &w)| {
                    if w >= 0.0 {
                        w
                    } else {
                        self.inv_sqrt(y, &mut tmp);
                        let norm2: f64 = tmp.iter().map(|v| v * v).sum();
                        w * n as f64 / norm2.max(1e-300)
                    }
                })
                .collect();
            for i in 0..n {
                for j in 0..=i {
                    let mut rank_mu = 0.0;
                    for (y, w) in ys.iter().zip(&effective) {
                        if *w != 0.0 {
                            rank_mu += w * y[i] * y[j];
                        }
                    }
                    let v = decay * self.cov[i * n + j]
                        + p.c1 * self.pc[i] * self.pc[j]
                        + p.cmu * rank_mu;
                    self.cov[i * n + j] = v;
                    self.cov[j * n + i] = v;
                }
            }
        }
        self.sigma *= ((p.cs / p.damps) * (ps_norm / p.chi_n - 1.0))
            .min(1.0)
            .exp();
        self.generation = gen;
        if self.config.separable || gen - self.eigen_generation >= p.eigen_gap {
            self.update_eigen();
        }
        let mut sorted: Vec<f64> = order.iter().map(|&i| sanitize(fitness[i])).collect();
        self.history.push_back(sorted[0]);
        let hist_len = 10 + (30.0 * n as f64 / p.lambda as f64).ceil() as usize;
        while self.history.len() > hist_len {
            self.history.pop_front();
        }
        self.medians.push(sorted[sorted.len() / 2]);
        sorted.truncate(sorted.len());
        self.last_generation_f = sorted;
    }

    fn best(&self) -> (&[f64], f64) {
        (&self.best_x, self.best_f)
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evolution::problems;

    fn run(f: fn(&[f64]) -> f64, n: usize, separable: bool, seed: u64) -> (f64, u64) {
        let mut es = Cmaes::new(
            vec![0.3; n],
            CmaesConfig {
                sigma0: 0.5,
                separable,
                target: Some(1e-8),
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
        (es.best().1, es.evaluations())
    }

    #[test]
    fn sphere_10d_reaches_1e8_quickly() {
        let (f, evals) = run(problems::sphere, 10, false, 1);
        assert!(f < 1e-8, "best {f}");
        // pycma needs ~1,600 evaluations here.
        assert!(evals < 2_500, "took {evals} evaluations");
    }

    #[test]
    fn ellipsoid_10d_learns_the_covariance() {
        let (f, evals) = run(problems::ellipsoid, 10, false, 2);
        assert!(f < 1e-8, "best {f}");
        assert!(evals < 9_000, "took {evals} evaluations");
    }

    #[test]
    fn separable_solves_the_separable_ellipsoid_faster_than_its_dimension_suggests() {
        let (f, evals) = run(problems::ellipsoid, 20, true, 3);
        assert!(f < 1e-8, "best {f}");
        assert!(evals < 20_000, "took {evals} evaluations");
    }

    #[test]
    fn rosenbrock_10d_is_solved() {
        let (f, _) = run(problems::rosenbrock, 10, false, 4);
        assert!(f < 1e-8, "best {f}");
    }

    #[test]
    fn weights_follow_the_tutorial() {
        let p = Params::new(10, 10, false, true);
        let positive: f64 = p.weights[..p.mu].iter().sum();
        assert!((positive - 1.0).abs() < 1e-12);
        assert!(p.weights[p.mu..].iter().all(|w| *w < 0.0));
        assert!((p.mueff - 3.167).abs() < 0.01, "mueff {}", p.mueff);
    }
}

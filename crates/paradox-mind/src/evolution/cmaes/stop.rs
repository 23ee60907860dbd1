//! Stopping criteria of a CMA-ES run (pycma's defaults).

use super::{Cmaes, StopReason};

impl Cmaes {
    /// Why the run should stop, or `None` to go on. Criteria follow pycma's defaults.
    pub fn should_stop(&self) -> Option<StopReason> {
        let n = self.n as f64;
        if let Some(target) = self.config.target {
            if self.best_f <= target {
                return Some(StopReason::Target);
            }
        }
        if let Some(max) = self.config.max_evaluations {
            if self.evaluations >= max {
                return Some(StopReason::MaxEvaluations);
            }
        }
        if self.generation == 0 {
            return None;
        }
        let max_iter = 100.0 + 150.0 * (n + 3.0).powi(2) / (self.p.lambda as f64).sqrt();
        if self.generation as f64 >= max_iter {
            return Some(StopReason::MaxIterations);
        }
        let hist_len = 10 + (30.0 * n / self.p.lambda as f64).ceil() as usize;
        if self.history.len() >= hist_len {
            let (lo, hi) = self
                .history
                .iter()
                .chain(&self.last_generation_f)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &f| {
                    (lo.min(f), hi.max(f))
                });
            if hi - lo < self.config.tol_fun {
                return Some(StopReason::TolFun);
            }
        }
        let cov_diag = |i: usize| {
            if self.config.separable {
                self.cov[i]
            } else {
                self.cov[i * self.n + i]
            }
        };
        if (0..self.n).all(|i| {
            self.sigma * cov_diag(i).sqrt() < self.config.tol_x
                && self.sigma * self.pc[i].abs() < self.config.tol_x
        }) {
            return Some(StopReason::TolX);
        }
        let (dmin, dmax) = self.d.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &d| {
            (lo.min(d), hi.max(d))
        });
        if (dmax / dmin).powi(2) > 1e14 {
            return Some(StopReason::ConditionCov);
        }
        let axis = (self.generation as usize) % self.n;
        if (0..self.n).all(|i| {
            let step = if self.config.separable {
                if i == axis {
                    0.1 * self.sigma * self.d[i]
                } else {
                    0.0
                }
            } else {
                0.1 * self.sigma * self.d[axis] * self.b[i * self.n + axis]
            };
            self.mean[i] + step == self.mean[i]
        }) {
            return Some(StopReason::NoEffectAxis);
        }
        if (0..self.n).any(|i| self.mean[i] + 0.2 * self.sigma * cov_diag(i).sqrt() == self.mean[i])
        {
            return Some(StopReason::NoEffectCoord);
        }
        // pycma `tolstagnation`: over the last `100 + 100 n^1.5 / λ` generations, the
        // median fitness of the newest fifth is no better than that of the oldest fifth.
        let window = 100 + (100.0 * n.powf(1.5) / self.p.lambda as f64) as usize;
        let len = self.medians.len();
        if len > window {
            let fifth = (window / 5).max(1);
            let recent = &self.medians[len - fifth..];
            let older = &self.medians[len - window..len - window + fifth];
            if median(recent) >= median(older) {
                return Some(StopReason::Stagnation);
            }
        }
        None
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

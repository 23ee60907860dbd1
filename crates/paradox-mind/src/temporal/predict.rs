//! Predicting where a trajectory goes next.

use super::Trajectory;
use crate::error::{MindError, Result};
use crate::evolution::linalg::cholesky_solve;

/// How to extrapolate a [`Trajectory`].
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// Extend the last segment's velocity.
    Linear,
    /// Extend the mean velocity of the last `window` segments (`None`: all).
    Average {
        /// Segments averaged.
        window: Option<usize>,
    },
    /// Constant-velocity Kalman filter per dimension (white-acceleration process noise
    /// of spectral density `process_noise`, measurement variance `measurement_noise`),
    /// run over the samples, then extended. Smooths noisy histories.
    Kalman {
        /// Process noise spectral density (units² / s³).
        process_noise: f64,
        /// Measurement noise variance (units²).
        measurement_noise: f64,
    },
    /// Autoregressive model of order `order` on the increments between samples (one
    /// set of coefficients shared by all dimensions, least squares), iterated one mean
    /// sampling interval at a time. Captures oscillation and damping.
    Autoregressive {
        /// Number of past increments each increment depends on.
        order: usize,
    },
}

pub(super) fn predict(traj: &Trajectory, t: i64, method: &Prediction) -> Result<Vec<f32>> {
    let n = traj.len();
    let last_t = traj.times[n - 1];
    let last = &traj.vectors[n - 1];
    let ahead = (t - last_t) as f64 / 1000.0;
    let extend = |velocity: &[f64]| -> Vec<f32> {
        last.iter()
            .zip(velocity)
            .map(|(x, v)| (*x as f64 + v * ahead) as f32)
            .collect()
    };
    let need = |samples: usize| {
        if n < samples {
            Err(MindError::invalid(
                "trajectory",
                format!("{method:?} needs at least {samples} samples, got {n}"),
            ))
        } else {
            Ok(())
        }
    };
    match method {
        Prediction::Linear => {
            need(2)?;
            let dt = (last_t - traj.times[n - 2]) as f64 / 1000.0;
            let v: Vec<f64> = last
                .iter()
                .zip(&traj.vectors[n - 2])
                .map(|(b, a)| (*b as f64 - *a as f64) / dt)
                .collect();
            Ok(extend(&v))
        }
        Prediction::Average { window } => {
            need(2)?;
            let segments = window.unwrap_or(n - 1).clamp(1, n - 1);
            let first = n - 1 - segments;
            let dt = (last_t - traj.times[first]) as f64 / 1000.0;
            let v: Vec<f64> = last
                .iter()
                .zip(&traj.vectors[first])
                .map(|(b, a)| (*b as f64 - *a as f64) / dt)
                .collect();
            Ok(extend(&v))
        }
        Prediction::Kalman {
            process_noise,
            measurement_noise,
        } => {
            let (q, r) = (*process_noise, *measurement_noise);
            if q < 0.0 || r <= 0.0 {
                return Err(MindError::invalid(
                    "kalman",
                    "process_noise must be ≥ 0 and measurement_noise > 0",
                ));
            }
            let dim = traj.dimension();
            let mut out = Vec::with_capacity(dim);
            for d in 0..dim {
                let (mut x, mut v) = (traj.vectors[0][d] as f64, 0.0);
                let (mut p00, mut p01, mut p11) = (r, 0.0, 1e6);
                for i in 1..n {
                    let dt = (traj.times[i] - traj.times[i - 1]) as f64 / 1000.0;
                    x += v * dt;
                    let n00 = p00 + 2.0 * dt * p01 + dt * dt * p11 + q * dt.powi(3) / 3.0;
                    let n01 = p01 + dt * p11 + q * dt * dt / 2.0;
                    let n11 = p11 + q * dt;
                    let s = n00 + r;
                    let (k0, k1) = (n00 / s, n01 / s);
                    let y = traj.vectors[i][d] as f64 - x;
                    x += k0 * y;
                    v += k1 * y;
                    p00 = (1.0 - k0) * n00;
                    p01 = (1.0 - k0) * n01;
                    p11 = n11 - k1 * n01;
                }
                out.push((x + v * ahead) as f32);
            }
            Ok(out)
        }
        Prediction::Autoregressive { order } => {
            let p = *order;
            if p == 0 {
                return Err(MindError::invalid("order", "must be at least 1"));
            }
            need(p + 3)?;
            let inc: Vec<Vec<f64>> = traj
                .vectors
                .windows(2)
                .map(|w| {
                    w[1].iter()
                        .zip(&w[0])
                        .map(|(b, a)| *b as f64 - *a as f64)
                        .collect()
                })
                .collect();
            let mut ata = vec![0.0; p * p];
            let mut atb = vec![0.0; p];
            for t in p..inc.len() {
                for (d, target) in inc[t].iter().enumerate() {
                    for i in 0..p {
                        let xi = inc[t - 1 - i][d];
                        atb[i] += xi * target;
                        for j in 0..p {
                            ata[i * p + j] += xi * inc[t - 1 - j][d];
                        }
                    }
                }
            }
            let coef = cholesky_solve(&ata, &atb, p, 1e-9).ok_or_else(|| {
                MindError::invalid("trajectory", "autoregressive fit is singular")
            })?;
            let mean_dt = (last_t - traj.times[0]) as f64 / (n - 1) as f64;
            let steps = ((t - last_t) as f64 / mean_dt).round().max(0.0) as usize;
            let mut history = inc;
            let mut x: Vec<f64> = last.iter().map(|v| *v as f64).collect();
            for _ in 0..steps {
                let h = history.len();
                let next: Vec<f64> = (0..x.len())
                    .map(|d| (0..p).map(|j| coef[j] * history[h - 1 - j][d]).sum())
                    .collect();
                for (xi, di) in x.iter_mut().zip(&next) {
                    *xi += di;
                }
                history.push(next);
            }
            Ok(x.into_iter().map(|v| v as f32).collect())
        }
    }
}

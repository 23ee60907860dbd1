//! Fitting the adapters' maps: orthogonal Procrustes, ridge least squares (full and
//! reduced rank) and the residual MLP trained with Adam.

use rand::{rngs::StdRng, seq::SliceRandom};
use rand_distr::{Distribution, Normal};

use super::layers::{add_rows, LinearMap};
use super::{gather, MLP_BATCH};
use crate::error::{LifecycleError, Result};
use crate::linalg::{
    centered, cholesky, cholesky_solve, column_means, cross_product, matmul_abt, matmul_f64,
    symmetric_eigen, thin_svd, transpose, transpose_f64,
};

/// Orthogonal Procrustes: `W = U Vᵀ` from `XᵀY = U Σ Vᵀ`, stored as `Wᵀ` (`d_out × d_in`).
pub(super) fn procrustes(xs: &[f32], din: usize, ys: &[f32], dout: usize) -> Result<LinearMap> {
    let m = cross_product(xs, din, ys, dout);
    let svd = thin_svd(&m, din, dout)?;
    let k = din.min(dout);
    // weight[o][i] = Σ_j V[o][j] U[i][j].
    let weight = matmul_f64(&svd.v, &transpose_f64(&svd.u, din, k), dout, k, din);
    Ok(LinearMap::dense(
        weight.into_iter().map(|v| v as f32).collect(),
        &vec![0.0; dout],
        din,
    ))
}

/// A ridge least-squares fit `y − μy = (x − μx) B`, with what reduced-rank needs.
pub(super) struct RidgeFit {
    din: usize,
    dout: usize,
    mean_x: Vec<f64>,
    mean_y: Vec<f64>,
    /// Centred `XᵀX` (`din × din`), without the ridge.
    gram: Vec<f64>,
    /// `B` (`din × dout`).
    coef: Vec<f64>,
}

impl RidgeFit {
    pub(super) fn new(
        xs: &[f32],
        din: usize,
        ys: &[f32],
        dout: usize,
        ridge: f32,
    ) -> Result<RidgeFit> {
        let mean_x = column_means(xs, din);
        let mean_y = column_means(ys, dout);
        let xc = centered(xs, din, &mean_x);
        let yc = centered(ys, dout, &mean_y);
        let gram = cross_product(&xc, din, &xc, din);
        let mut coef = cross_product(&xc, din, &yc, dout);
        let trace: f64 = (0..din).map(|i| gram[i * din + i]).sum();
        let lambda = ridge as f64 * trace / din as f64;
        let mut factor = gram.clone();
        for i in 0..din {
            factor[i * din + i] += lambda;
        }
        cholesky(&mut factor, din).map_err(|e| {
            LifecycleError::Numerical(format!(
                "least-squares fit of {} pairs in {din} dimensions with ridge {ridge}: {e}",
                xs.len() / din
            ))
        })?;
        cholesky_solve(&factor, din, &mut coef, dout);
        Ok(RidgeFit {
            din,
            dout,
            mean_x,
            mean_y,
            gram,
            coef,
        })
    }

    /// The bias `μy − apply(μx)` that makes the linear part `apply` pass through the means.
    fn bias_for(&self, apply: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f32> {
        let mapped_mean = apply(&self.mean_x);
        self.mean_y
            .iter()
            .zip(&mapped_mean)
            .map(|(m, p)| (m - p) as f32)
            .collect()
    }

    pub(super) fn dense(&self) -> LinearMap {
        let weight = transpose_f64(&self.coef, self.din, self.dout);
        let bias = self.bias_for(|x| matmul_f64(&weight, x, self.dout, self.din, 1));
        LinearMap::dense(
            weight.into_iter().map(|v| v as f32).collect(),
            &bias,
            self.din,
        )
    }

    /// Projects the fit onto the top-`rank` principal directions `V_r` of its fitted values
    /// (eigenvectors of `Bᵀ XᵀX B`): `y = μy + V_r V_rᵀ Bᵀ (x − μx)`.
    pub(super) fn reduced_rank(&self, rank: usize) -> Result<LinearMap> {
        let (din, dout) = (self.din, self.dout);
        let coef_t = transpose_f64(&self.coef, din, dout);
        let gram_coef = matmul_f64(&self.gram, &self.coef, din, din, dout);
        let fitted_gram = matmul_f64(&coef_t, &gram_coef, dout, din, dout);
        let eigen = symmetric_eigen(&fitted_gram, dout)?;
        let directions = &eigen.vectors[..rank * dout]; // rank × dout
        let down = matmul_f64(directions, &coef_t, rank, dout, din); // rank × din
        let up = transpose_f64(directions, rank, dout); // dout × rank
        let bias = self.bias_for(|x| {
            let low = matmul_f64(&down, x, rank, din, 1);
            matmul_f64(&up, &low, dout, rank, 1)
        });
        Ok(LinearMap::factored(
            rank,
            down.into_iter().map(|v| v as f32).collect(),
            up.into_iter().map(|v| v as f32).collect(),
            &bias,
            din,
        ))
    }
}

/// A residual network in `f32`, as trained: `w2 · relu(w1 · x + b1) + b2`; `w1` is
/// `hidden × d_in`, `w2` is `d_out × hidden`.
#[derive(Debug, Clone)]
pub(super) struct ResidualNet {
    pub(super) hidden: usize,
    pub(super) w1: Vec<f32>,
    pub(super) b1: Vec<f32>,
    pub(super) w2: Vec<f32>,
    pub(super) b2: Vec<f32>,
}

/// Trains the residual MLP of an [`super::AdapterKind::Mlp`] (in `f32`; the adapter
/// quantises the result).
///
/// Inputs are standardised (centred, scaled to unit mean variance) and targets scaled to
/// unit mean square while training; both scalings are folded into the weights at the end,
/// so applying the network is just `w2 · relu(w1 · x + b1) + b2`. `w2` starts at zero, so
/// training starts from the affine map exactly.
pub(super) struct ResidualTrainer {
    pub(super) d_in: usize,
    pub(super) d_out: usize,
    pub(super) hidden: usize,
    pub(super) epochs: usize,
    pub(super) lr: f32,
}

/// Adam state for one parameter tensor.
struct AdamSlot {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl AdamSlot {
    fn new(len: usize) -> AdamSlot {
        AdamSlot {
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }

    fn step(&mut self, param: &mut [f32], grad: &[f32], lr: f32, t: i32) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        const EPS: f32 = 1e-8;
        let c1 = 1.0 - B1.powi(t);
        let c2 = 1.0 - B2.powi(t);
        for (((p, g), m), v) in param
            .iter_mut()
            .zip(grad)
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
        {
            *m = B1 * *m + (1.0 - B1) * g;
            *v = B2 * *v + (1.0 - B2) * g * g;
            *p -= lr * (*m / c1) / ((*v / c2).sqrt() + EPS);
        }
    }
}

impl ResidualTrainer {
    pub(super) fn train(
        &self,
        xs: &[f32],
        residual: &[f32],
        rng: &mut StdRng,
    ) -> Result<Option<ResidualNet>> {
        let (din, dout, hidden) = (self.d_in, self.d_out, self.hidden);
        let n = xs.len() / din;
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        let n_val = (n / 10).max(1);
        let (val_idx, train_idx) = order.split_at(n_val);
        if train_idx.is_empty() {
            return Ok(None);
        }

        let mean_x = column_means(xs, din);
        let xc = centered(xs, din, &mean_x);
        let rms = |v: &[f32]| {
            (v.iter().map(|&a| (a as f64).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        let in_rms = rms(&xc);
        let out_rms = rms(residual);
        if out_rms == 0.0 || !out_rms.is_finite() {
            return Ok(None);
        }
        let in_scale = if in_rms > 0.0 {
            (1.0 / in_rms) as f32
        } else {
            1.0
        };
        let out_scale = (1.0 / out_rms) as f32;
        let x_std: Vec<f32> = xc.iter().map(|v| v * in_scale).collect();
        let r_std: Vec<f32> = residual.iter().map(|v| v * out_scale).collect();
        let (x_val, r_val) = (gather(&x_std, din, val_idx), gather(&r_std, dout, val_idx));

        let init = Normal::new(0.0f32, (2.0 / din as f32).sqrt())
            .map_err(|e| LifecycleError::Numerical(format!("mlp init: {e}")))?;
        let mut net = ResidualNet {
            hidden,
            w1: (0..hidden * din).map(|_| init.sample(rng)).collect(),
            b1: vec![0.0; hidden],
            w2: vec![0.0; dout * hidden],
            b2: vec![0.0; dout],
        };
        let mut adam = [
            AdamSlot::new(net.w1.len()),
            AdamSlot::new(hidden),
            AdamSlot::new(net.w2.len()),
            AdamSlot::new(dout),
        ];
        let mut best_loss = self.loss(&net, &x_val, &r_val);
        let mut best: Option<ResidualNet> = None;

        let batch = MLP_BATCH.min(train_idx.len());
        let mut grads = Gradients::new(batch, din, dout, hidden);
        let mut shuffled = train_idx.to_vec();
        let mut step = 0i32;
        for _ in 0..self.epochs {
            shuffled.shuffle(rng);
            for chunk in shuffled.chunks(batch) {
                let xb = gather(&x_std, din, chunk);
                let rb = gather(&r_std, dout, chunk);
                grads.compute(&net, &xb, &rb);
                step = step.saturating_add(1);
                adam[0].step(&mut net.w1, &grads.w1, self.lr, step);
                adam[1].step(&mut net.b1, &grads.b1, self.lr, step);
                adam[2].step(&mut net.w2, &grads.w2, self.lr, step);
                adam[3].step(&mut net.b2, &grads.b2, self.lr, step);
            }
            let loss = self.loss(&net, &x_val, &r_val);
            if !loss.is_finite() {
                return Err(LifecycleError::Numerical(format!(
                    "mlp adapter training diverged (lr {}); try a smaller lr",
                    self.lr
                )));
            }
            if loss < best_loss {
                best_loss = loss;
                best = Some(net.clone());
            }
        }
        // Fold the standardisation into the weights:
        // w1 (s (x − μ)) + b1 = (s w1) x + (b1 − s w1 μ);  (w2 h + b2) / t.
        Ok(best.map(|mut net| {
            net.w1.iter_mut().for_each(|w| *w *= in_scale);
            for (row, b) in net.w1.chunks_exact(din).zip(net.b1.iter_mut()) {
                let shift: f64 = row.iter().zip(&mean_x).map(|(&w, m)| w as f64 * m).sum();
                *b -= shift as f32;
            }
            net.w2.iter_mut().for_each(|w| *w /= out_scale);
            net.b2.iter_mut().for_each(|b| *b /= out_scale);
            net
        }))
    }

    /// Mean squared error per value of `net` on standardised inputs and targets.
    fn loss(&self, net: &ResidualNet, xs: &[f32], rs: &[f32]) -> f64 {
        let rows = xs.len() / self.d_in;
        let mut h = vec![0.0; rows * self.hidden];
        let mut y = vec![0.0; rows * self.d_out];
        forward(net, xs, self.d_in, &mut h, &mut y);
        y.iter()
            .zip(rs)
            .map(|(&p, &r)| ((p - r) as f64).powi(2))
            .sum::<f64>()
            / rs.len().max(1) as f64
    }
}

/// `h = relu(xs w1ᵀ + b1)`, `y = h w2ᵀ + b2` for a block of rows.
fn forward(net: &ResidualNet, xs: &[f32], din: usize, h: &mut [f32], y: &mut [f32]) {
    matmul_abt(xs, &net.w1, din, h);
    for row in h.chunks_exact_mut(net.hidden) {
        for (v, b) in row.iter_mut().zip(&net.b1) {
            *v = (*v + b).max(0.0);
        }
    }
    matmul_abt(h, &net.w2, net.hidden, y);
    add_rows(y, &net.b2);
}

/// Gradient buffers of one mini-batch, reused across steps.
struct Gradients {
    h: Vec<f32>,
    y: Vec<f32>,
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
}

impl Gradients {
    fn new(batch: usize, din: usize, dout: usize, hidden: usize) -> Gradients {
        Gradients {
            h: vec![0.0; batch * hidden],
            y: vec![0.0; batch * dout],
            w1: vec![0.0; hidden * din],
            b1: vec![0.0; hidden],
            w2: vec![0.0; dout * hidden],
            b2: vec![0.0; dout],
        }
    }

    /// Gradients of `½ · mean over rows of ‖y − r‖²` at `net` for the batch (`xb`, `rb`).
    fn compute(&mut self, net: &ResidualNet, xb: &[f32], rb: &[f32]) {
        let hidden = net.hidden;
        let dout = net.b2.len();
        let din = net.w1.len() / hidden;
        let rows = xb.len() / din;
        let (h, y) = (&mut self.h[..rows * hidden], &mut self.y[..rows * dout]);
        forward(net, xb, din, h, y);
        // dY = (y − r) / rows, in place.
        let inv = 1.0 / rows as f32;
        for (g, &r) in y.iter_mut().zip(rb) {
            *g = (*g - r) * inv;
        }
        let dy = &*y;
        // dW2 = dYᵀ H; db2 = colsum(dY).
        matmul_abt(
            &transpose(dy, rows, dout),
            &transpose(h, rows, hidden),
            rows,
            &mut self.w2,
        );
        column_sums(dy, dout, &mut self.b2);
        // dH = dY W2, masked by the ReLU.
        let mut dh = vec![0.0; rows * hidden];
        matmul_abt(dy, &transpose(&net.w2, dout, hidden), dout, &mut dh);
        for (g, &a) in dh.iter_mut().zip(h.iter()) {
            if a <= 0.0 {
                *g = 0.0;
            }
        }
        // dW1 = dHᵀ X; db1 = colsum(dH).
        matmul_abt(
            &transpose(&dh, rows, hidden),
            &transpose(xb, rows, din),
            rows,
            &mut self.w1,
        );
        column_sums(&dh, hidden, &mut self.b1);
    }
}

/// `out[j] = Σ_rows m[row][j]`.
fn column_sums(m: &[f32], cols: usize, out: &mut [f32]) {
    out.fill(0.0);
    for row in m.chunks_exact(cols) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

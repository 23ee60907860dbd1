//! Adapters: maps from one encoder version's vector space into another's, learned from
//! paired samples (row `i` of `source` and row `i` of `target` encode the same item).
//!
//! An adapter lets a collection keep serving while its encoder changes: queries encoded by
//! the new version are mapped into the old space and searched over the stored vectors
//! (query-side adaptation), or stored vectors are mapped into the new space as provisional
//! vectors until they are re-encoded (migration through the adapter).
//!
//! Four kinds ([`AdapterKind`]), cheapest first:
//!
//! * **Procrustes**: the orthogonal (or, across dimensions, semi-orthogonal) `W` maximising
//!   `tr(Wᵀ SᵀT)`, from the thin SVD `SᵀT = U Σ Vᵀ`, `W = U Vᵀ`. Preserves norms and angles
//!   when `d_source ≤ d_target`; no bias, no centring.
//! * **Affine**: ridge least squares with a bias, `y = B x + c`, solved from the normal
//!   equations by Cholesky; the ridge is relative to the mean eigenvalue of the centred
//!   source covariance (`λ = ridge · tr(XᵀX) / d_source`), so one value suits any scale.
//! * **LowRank**: reduced-rank regression: the affine fit projected onto the top-`rank`
//!   principal directions of its fitted values, stored as two thin factors so a query costs
//!   `O((d_source + d_target) · rank)`.
//! * **Mlp**: the affine map plus a residual one-hidden-layer ReLU network trained with Adam
//!   mini-batches on the squared error, deterministic from the seed. Training stops at the
//!   epoch with the lowest error on an inner validation split; if no epoch beats the plain
//!   affine map there, the residual is dropped.
//!
//! [`Adapter::fit`] holds out about 10% of the pairs (at least 2), fits on the rest, and
//! reports agreement on both in [`AdapterFit`]; the adapter returned is the one reported on.
//!
//! A fitted residual network is stored in `i8`: weights quantised per unit, inputs per
//! call, products in exact integers (the rule of `paradox_kernels::matvec::QuantizedMatrix`).
//! That is what keeps a 384-d adapter with 512 hidden units under 10 µs per query: its
//! weights are a quarter of the `f32` bytes (the `f32` network did not fit in L2 with the
//! affine base) and AVX-512 VNNI does 64 multiply-adds per instruction. On the bench data
//! it changed recall by at most 0.0005 (`bench/lifecycle/README.md`). The fit report
//! describes the quantised adapter.
//!
//! Applying one ([`VectorMap::map_into`]) runs `paradox_kernels::matvec` on matrices packed
//! when the adapter is built (fitted, loaded or deserialised), never per call, and
//! allocates nothing for ranks and hidden layers up to 1024 (`layers`);
//! [`VectorMap::map_batch`] runs the blocked GEMM for the linear part across threads.
//!
//! Files: [`Adapter::save`] writes the parameter container of [`crate::tensor_file`] with
//! magic `PDXADAPT`; the header records the format, kind, dimensions and fit report. The
//! layout and its versions are described in `file`; files written before `i8` residuals
//! (format 1) load, and compute what they did.

use std::fmt;
use std::path::Path;
use std::time::Instant;

use paradox_kernels::matvec::MAX_QUANTIZED_COLS;
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{LifecycleError, Result};
use crate::linalg::{check_rows, column_means, transpose};
use crate::VectorMap;

mod file;
mod fit;
mod layers;
#[cfg(test)]
mod tests;

use file::AdapterParams;
use fit::{procrustes, ResidualTrainer, RidgeFit};
use layers::{LinearMap, Residual};

/// Fewest pairs [`Adapter::fit`] accepts (at least 2 are held out for the report).
pub const MIN_PAIRS: usize = 10;
/// Largest hidden layer of an [`AdapterKind::Mlp`].
pub const MAX_MLP_HIDDEN: usize = 4096;
/// Most training epochs of an [`AdapterKind::Mlp`].
pub const MAX_MLP_EPOCHS: usize = 100_000;
/// Relative ridge of the affine base under an [`AdapterKind::Mlp`].
pub const MLP_BASE_RIDGE: f32 = 0.01;
/// Mini-batch size of the residual MLP's Adam steps.
const MLP_BATCH: usize = 128;
/// Rows per task in [`Adapter::map_batch`].
const BATCH_BLOCK_ROWS: usize = 512;

/// Which map an adapter learns; see the module docs for the methods.
///
/// ```
/// use paradox_lifecycle::adapter::AdapterKind;
/// let kind: AdapterKind = serde_json::from_str(r#"{"kind":"low_rank","rank":64,"ridge":0.01}"#).unwrap();
/// assert_eq!(kind, AdapterKind::LowRank { rank: 64, ridge: 0.01 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AdapterKind {
    /// Orthogonal Procrustes `y = W x`. When `d_source != d_target`, `W` is semi-orthogonal:
    /// the same as zero-padding the smaller space to the larger dimension, solving the
    /// square problem, and truncating the result (orthonormal columns of `Wᵀ` when
    /// `d_source ≥ d_target`, orthonormal rows otherwise).
    Procrustes,
    /// Ridge least squares with a bias; `ridge ≥ 0` relative to the mean source variance.
    Affine {
        /// Relative ridge (`0` = plain least squares; `1e-3`–`1e-1` typical).
        ridge: f32,
    },
    /// Reduced-rank affine map of rank `1 ≤ rank ≤ min(d_source, d_target)`.
    LowRank {
        /// Rank of the map.
        rank: usize,
        /// Relative ridge of the underlying least-squares fit.
        ridge: f32,
    },
    /// Affine map (ridge [`MLP_BASE_RIDGE`]) plus a residual ReLU MLP.
    Mlp {
        /// Hidden units (`1..=MAX_MLP_HIDDEN`).
        hidden: usize,
        /// Passes over the training pairs (`1..=MAX_MLP_EPOCHS`).
        epochs: usize,
        /// Adam learning rate (`0 < lr ≤ 1`; `1e-3` typical).
        lr: f32,
    },
}

impl AdapterKind {
    /// Short stable name: `procrustes`, `affine`, `low_rank`, `mlp`.
    pub fn name(self) -> &'static str {
        match self {
            AdapterKind::Procrustes => "procrustes",
            AdapterKind::Affine { .. } => "affine",
            AdapterKind::LowRank { .. } => "low_rank",
            AdapterKind::Mlp { .. } => "mlp",
        }
    }

    fn validate(self, d_source: usize, d_target: usize) -> Result<()> {
        let bad = |why: String| Err(LifecycleError::InvalidArgument(why));
        let check_ridge = |ridge: f32| {
            if ridge.is_finite() && ridge >= 0.0 {
                Ok(())
            } else {
                bad(format!(
                    "adapter ridge must be finite and >= 0, got {ridge}"
                ))
            }
        };
        match self {
            AdapterKind::Procrustes => Ok(()),
            AdapterKind::Affine { ridge } => check_ridge(ridge),
            AdapterKind::LowRank { rank, ridge } => {
                let most = d_source.min(d_target);
                if rank == 0 || rank > most {
                    return bad(format!(
                        "low-rank adapter rank must be in 1..={most} (min of {d_source} and \
                         {d_target}), got {rank}"
                    ));
                }
                check_ridge(ridge)
            }
            AdapterKind::Mlp { hidden, epochs, lr } => {
                if hidden == 0 || hidden > MAX_MLP_HIDDEN {
                    return bad(format!(
                        "mlp adapter hidden units must be in 1..={MAX_MLP_HIDDEN}, got {hidden}"
                    ));
                }
                if epochs == 0 || epochs > MAX_MLP_EPOCHS {
                    return bad(format!(
                        "mlp adapter epochs must be in 1..={MAX_MLP_EPOCHS}, got {epochs}"
                    ));
                }
                if !(lr.is_finite() && lr > 0.0 && lr <= 1.0) {
                    return bad(format!("mlp adapter lr must be in (0, 1], got {lr}"));
                }
                Ok(())
            }
        }
    }
}

/// How well a fitted adapter agrees with its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterFit {
    /// Pairs given to [`Adapter::fit`].
    pub pairs: usize,
    /// Pairs held out of training and used for the `holdout_*` figures.
    pub holdout: usize,
    /// Mean cosine between mapped sources and targets over the training pairs.
    pub train_cosine: f32,
    /// Mean cosine between mapped sources and targets over the held-out pairs.
    pub holdout_cosine: f32,
    /// `1 − SSE / SST` over the held-out pairs (SST around their mean target; 0 when the
    /// held-out targets are all equal).
    pub holdout_r2: f32,
    /// Wall-clock seconds spent in [`Adapter::fit`].
    pub fit_seconds: f32,
}

/// A fitted map from a source space (`dim_in`) into a target space (`dim_out`).
///
/// ```
/// use paradox_lifecycle::adapter::{Adapter, AdapterKind};
/// use paradox_lifecycle::VectorMap;
/// // Target = source with its two coordinates swapped.
/// let source: Vec<f32> = (0..40).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
/// let target: Vec<f32> = source.chunks(2).flat_map(|p| [p[1], p[0]]).collect();
/// let adapter = Adapter::fit(AdapterKind::Procrustes, &source, 2, &target, 2, 0).unwrap();
/// let y = adapter.map(&[1.0, 2.0]);
/// assert!((y[0] - 2.0).abs() < 1e-4 && (y[1] - 1.0).abs() < 1e-4);
/// ```
///
/// Serialises as its parameters (plain vectors); the packed forms are rebuilt when it is
/// deserialised.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "AdapterParams", try_from = "AdapterParams")]
pub struct Adapter {
    kind: AdapterKind,
    dim_in: usize,
    dim_out: usize,
    fit: AdapterFit,
    linear: LinearMap,
    residual: Option<Residual>,
}

impl Adapter {
    /// Learns a map from `source` rows (`d_source`-dimensional) to `target` rows
    /// (`d_target`-dimensional); row `i` of each must describe the same item.
    ///
    /// About 10% of the pairs (at least 2), chosen by `seed`, are held out and reported in
    /// [`Adapter::fit_report`]. Errors: [`LifecycleError::InvalidArgument`] for a zero
    /// dimension, a length that is not whole rows, different row counts, non-finite
    /// values, fewer than [`MIN_PAIRS`] pairs, or kind parameters out of range;
    /// [`LifecycleError::Numerical`] when the least-squares system is singular (with
    /// `ridge = 0` and fewer pairs than dimensions, say).
    pub fn fit(
        kind: AdapterKind,
        source: &[f32],
        d_source: usize,
        target: &[f32],
        d_target: usize,
        seed: u64,
    ) -> Result<Adapter> {
        let started = Instant::now();
        let n = check_rows("adapter source", source, d_source)?;
        let n_target = check_rows("adapter target", target, d_target)?;
        if n != n_target {
            return Err(LifecycleError::InvalidArgument(format!(
                "adapter source has {n} rows but target has {n_target}; row i of each must \
                 encode the same item"
            )));
        }
        if n < MIN_PAIRS {
            return Err(LifecycleError::InvalidArgument(format!(
                "adapter needs at least {MIN_PAIRS} pairs, got {n}"
            )));
        }
        kind.validate(d_source, d_target)?;

        let mut rng = StdRng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let holdout = n.div_ceil(10).max(2);
        let (held, train) = order.split_at(holdout);
        let (xs, ys) = (
            gather(source, d_source, train),
            gather(target, d_target, train),
        );

        let (linear, residual) = match kind {
            AdapterKind::Procrustes => (procrustes(&xs, d_source, &ys, d_target)?, None),
            AdapterKind::Affine { ridge } => {
                let fit = RidgeFit::new(&xs, d_source, &ys, d_target, ridge)?;
                (fit.dense(), None)
            }
            AdapterKind::LowRank { rank, ridge } => {
                let fit = RidgeFit::new(&xs, d_source, &ys, d_target, ridge)?;
                (fit.reduced_rank(rank)?, None)
            }
            AdapterKind::Mlp { hidden, epochs, lr } => {
                let base = RidgeFit::new(&xs, d_source, &ys, d_target, MLP_BASE_RIDGE)?.dense();
                let adapter = Adapter::assemble(kind, d_source, d_target, base, None);
                let mut residual_target = adapter.map_batch(&xs);
                for (r, y) in residual_target.iter_mut().zip(&ys) {
                    *r = y - *r;
                }
                let net = ResidualTrainer {
                    d_in: d_source,
                    d_out: d_target,
                    hidden,
                    epochs,
                    lr,
                }
                .train(&xs, &residual_target, &mut rng)?;
                let residual = match net {
                    None => None,
                    Some(n) if ![&n.w1, &n.b1, &n.w2, &n.b2].iter().all(|v| finite(v)) => {
                        return Err(LifecycleError::Numerical(format!(
                            "mlp adapter training produced non-finite weights (lr {lr}); try \
                             a smaller lr"
                        )));
                    }
                    // Beyond what an i8 layer holds exactly (not an embedding size in
                    // practice): keep f32.
                    Some(n) if d_source > MAX_QUANTIZED_COLS || hidden > MAX_QUANTIZED_COLS => {
                        Some(Residual::f32(n.w1, &n.b1, n.w2, &n.b2, d_source))
                    }
                    Some(n) => Some(Residual::quantize(&n.w1, &n.b1, &n.w2, &n.b2, d_source)),
                };
                (adapter.linear, residual)
            }
        };
        let mut adapter = Adapter::assemble(kind, d_source, d_target, linear, residual);
        let (train_cosine, _) = adapter.agreement(&xs, &ys);
        let (holdout_cosine, holdout_r2) = adapter.agreement(
            &gather(source, d_source, held),
            &gather(target, d_target, held),
        );
        adapter.fit = AdapterFit {
            pairs: n,
            holdout,
            train_cosine,
            holdout_cosine,
            holdout_r2,
            fit_seconds: started.elapsed().as_secs_f32(),
        };
        Ok(adapter)
    }

    fn assemble(
        kind: AdapterKind,
        dim_in: usize,
        dim_out: usize,
        linear: LinearMap,
        residual: Option<Residual>,
    ) -> Adapter {
        Adapter {
            kind,
            dim_in,
            dim_out,
            fit: AdapterFit {
                pairs: 0,
                holdout: 0,
                train_cosine: 0.0,
                holdout_cosine: 0.0,
                holdout_r2: 0.0,
                fit_seconds: 0.0,
            },
            linear,
            residual,
        }
    }

    /// The kind this adapter was fitted as.
    pub fn kind(&self) -> AdapterKind {
        self.kind
    }

    /// Agreement with the training and held-out pairs, measured by [`Adapter::fit`].
    pub fn fit_report(&self) -> &AdapterFit {
        &self.fit
    }

    /// Whether an [`AdapterKind::Mlp`] kept its residual network (it is dropped when it
    /// never beat the affine map on the inner validation split). Always false otherwise.
    pub fn has_residual(&self) -> bool {
        self.residual.is_some()
    }

    /// The adjoint of a linear adapter: the map `q ↦ Wᵀ q` from the target space back into
    /// the source space, with `⟨adjoint(q), x⟩ = ⟨q, map(x)⟩ − ⟨q, bias⟩` for every `x`.
    ///
    /// This is the right query-side map for search. To rank stored source-space vectors `x`
    /// for a target-space query `q` by the score the target space would give them,
    /// `⟨q, map(x)⟩`, map the query with the adjoint instead of the stored vectors with the
    /// adapter: the constant `⟨q, bias⟩` does not change the ranking, and one query costs one
    /// matrix-vector product. It also beats an adapter fitted in the other direction: a
    /// least-squares fit shrinks its predictions toward the target mean, which blurs
    /// rankings, while the adjoint of the forward fit scores with the forward fit's best
    /// estimate of each stored vector. For Procrustes the adjoint is the inverse map.
    ///
    /// The result keeps this adapter's kind and fit report (which describe the forward
    /// map). [`AdapterKind::Mlp`] has no adjoint: [`LifecycleError::InvalidArgument`].
    pub fn adjoint(&self) -> Result<Adapter> {
        if self.residual.is_some() {
            return Err(LifecycleError::InvalidArgument(
                "an mlp adapter with a residual network is not linear and has no adjoint".into(),
            ));
        }
        let (din, dout) = (self.dim_in, self.dim_out);
        let zero = vec![0.0; din];
        let linear = match &self.linear {
            LinearMap::Dense { weight, .. } => {
                LinearMap::dense(transpose(weight, dout, din), &zero, dout)
            }
            LinearMap::Factored { rank, down, up, .. } => LinearMap::factored(
                *rank,
                transpose(up, dout, *rank),
                transpose(down, *rank, din),
                &zero,
                dout,
            ),
        };
        let mut adjoint = Adapter::assemble(self.kind, dout, din, linear, None);
        adjoint.fit = self.fit.clone();
        Ok(adjoint)
    }

    /// Like [`VectorMap::map`], but a wrong input length is an error instead of a panic.
    pub fn map_checked(&self, x: &[f32]) -> Result<Vec<f32>> {
        if x.len() != self.dim_in {
            return Err(LifecycleError::InvalidArgument(format!(
                "adapter expects {}-dimensional vectors, got {}",
                self.dim_in,
                x.len()
            )));
        }
        Ok(self.map(x))
    }

    /// Mean cosine and R² of the mapped `xs` against `ys`.
    fn agreement(&self, xs: &[f32], ys: &[f32]) -> (f32, f32) {
        let predicted = self.map_batch(xs);
        let n = ys.len() / self.dim_out;
        if n == 0 {
            return (0.0, 0.0);
        }
        let cosine: f64 = predicted
            .chunks_exact(self.dim_out)
            .zip(ys.chunks_exact(self.dim_out))
            .map(|(p, y)| paradox_kernels::cosine_similarity(p, y) as f64)
            .sum::<f64>()
            / n as f64;
        let mean_y = column_means(ys, self.dim_out);
        let (mut sse, mut sst) = (0.0f64, 0.0f64);
        for (p_row, y_row) in predicted
            .chunks_exact(self.dim_out)
            .zip(ys.chunks_exact(self.dim_out))
        {
            for ((&p, &y), &m) in p_row.iter().zip(y_row).zip(&mean_y) {
                sse += (p as f64 - y as f64).powi(2);
                sst += (y as f64 - m).powi(2);
            }
        }
        let r2 = if sst > 0.0 { 1.0 - sse / sst } else { 0.0 };
        (cosine as f32, r2 as f32)
    }

    /// Writes the adapter to `path` atomically (format: the `file` module).
    pub fn save(&self, path: &Path) -> Result<()> {
        file::save(self, path)
    }

    /// Reads an adapter written by [`Adapter::save`], of this version or an earlier one. A
    /// damaged or foreign file is [`LifecycleError::Corrupt`]; a missing one is
    /// [`LifecycleError::Io`].
    pub fn load(path: &Path) -> Result<Adapter> {
        file::load(path)
    }

    /// Maps a block of rows single-threaded (the unit of work of `map_batch`).
    fn map_block(&self, xs: &[f32], out: &mut [f32]) {
        self.linear.apply_block(xs, self.dim_in, out);
        if let Some(residual) = &self.residual {
            residual.add_block(xs, self.dim_in, out);
        }
    }
}

impl fmt::Display for Adapter {
    /// One line: kind, dimensions, and what the map preserves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} adapter {} -> {}",
            self.kind.name(),
            self.dim_in,
            self.dim_out
        )?;
        match self.kind {
            AdapterKind::Procrustes if self.dim_in == self.dim_out => write!(f, " (orthogonal)"),
            AdapterKind::Procrustes if self.dim_in < self.dim_out => {
                write!(
                    f,
                    " (semi-orthogonal: an isometric embedding, zero-padded source)"
                )
            }
            AdapterKind::Procrustes => {
                write!(
                    f,
                    " (semi-orthogonal: a rotation then truncation, not norm-preserving)"
                )
            }
            AdapterKind::LowRank { rank, .. } => write!(f, " (rank {rank})"),
            AdapterKind::Mlp { .. } if self.residual.is_none() => {
                write!(f, " (residual dropped: affine only)")
            }
            _ => Ok(()),
        }
    }
}

impl VectorMap for Adapter {
    fn dim_in(&self) -> usize {
        self.dim_in
    }

    fn dim_out(&self) -> usize {
        self.dim_out
    }

    /// # Panics
    ///
    /// If `x.len() != dim_in` or `out.len() != dim_out` (use [`Adapter::map_checked`] for
    /// untrusted input).
    fn map_into(&self, x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), self.dim_in, "adapter input dimension");
        assert_eq!(out.len(), self.dim_out, "adapter output dimension");
        self.linear.apply(x, out);
        if let Some(residual) = &self.residual {
            residual.add_into(x, out);
        }
    }

    /// Maps whole blocks through the blocked GEMM, blocks spread across the rayon pool.
    fn map_batch(&self, xs: &[f32]) -> Vec<f32> {
        let (din, dout) = (self.dim_in, self.dim_out);
        let n = xs.len() / din;
        let mut out = vec![0.0; n * dout];
        xs[..n * din]
            .par_chunks(BATCH_BLOCK_ROWS * din)
            .zip(out.par_chunks_mut(BATCH_BLOCK_ROWS * dout))
            .for_each(|(x, o)| self.map_block(x, o));
        out
    }
}

/// Whether every value is finite.
fn finite(values: &[f32]) -> bool {
    values.iter().all(|v| v.is_finite())
}

/// The rows `indices` of the row set `data`, gathered in that order.
fn gather(data: &[f32], dim: usize, indices: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len() * dim);
    for &i in indices {
        out.extend_from_slice(&data[i * dim..(i + 1) * dim]);
    }
    out
}

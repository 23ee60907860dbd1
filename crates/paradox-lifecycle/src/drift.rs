//! Drift detection: has the distribution of recent vectors moved away from a reference
//! window? (An encoder switched under a collection, a new topic arrived, a pipeline broke.)
//!
//! [`detect_drift`] subsamples each window to at most [`DriftConfig::max_samples`] rows
//! and computes three scores on the pooled sample `Z` (`nx` reference rows, `ny` recent):
//!
//! * **MMD²** (the decision): the unbiased maximum mean discrepancy with the RBF kernel
//!   `k(a, b) = exp(−‖a − b‖² / h)`, `h` = the median squared distance of the pooled sample
//!   (the median heuristic). Its null distribution comes from `permutations` random
//!   relabellings of the pooled rows; `mmd_p_value = (1 + #{perm ≥ observed}) / (1 + P)`,
//!   and `drifted = mmd_p_value ≤ alpha`. Because the windows are exchangeable under "no
//!   drift", this rejects a same-distribution pair with probability at most `alpha`, by
//!   construction.
//! * **Mean shift**: `‖mean(reference) − mean(recent)‖`, with the `1 − alpha` quantile of
//!   the same relabellings as its threshold.
//! * **Classifier AUC**: a shrunk linear discriminant (Fisher LDA on the pooled within-class
//!   covariance plus its mean eigenvalue times the identity) trained on one half of each
//!   window and scored on the other half, then the halves swapped (cross-fitted); the AUC
//!   is the mean of the two held-out AUCs (0.5 = indistinguishable, 1 = separable). Its
//!   threshold is the one-sided normal approximation to the Mann-Whitney null,
//!   `0.5 + z_{1−alpha} · sqrt(mean fold variance)`: an approximation, not an exact test
//!   (on real 384-d embeddings it fires more often than `alpha` on same-distribution
//!   windows; see `bench/lifecycle/README.md`). It is reported, never the decision.
//!
//! Cost: one Gram matrix of the pooled sample through the blocked GEMM (`m² d` for
//! `m = nx + ny`), `m²` exponentials, then every relabelling at once as one more GEMM
//! (`(P + 1) × m` indicators times the `m × m` kernel matrix), so 200 permutations cost
//! about as much as the Gram matrix itself. Memory is `m²` floats: `max_samples` is capped
//! at [`MAX_DRIFT_SAMPLES`] per window.

use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{LifecycleError, Result};
use crate::linalg::{
    centered, check_rows, cholesky, cholesky_solve, column_means, cross_product, matmul_abt,
    transpose,
};

/// Fewest vectors each window must have.
pub const MIN_DRIFT_SAMPLES: usize = 10;
/// Largest `max_samples` (the kernel matrix of two such windows is 400 MB).
pub const MAX_DRIFT_SAMPLES: usize = 5000;
/// Most permutations per call.
pub const MAX_PERMUTATIONS: usize = 10_000;

/// Settings of [`detect_drift`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftConfig {
    /// Random relabellings for the permutation tests (default 200). The smallest possible
    /// p-value is `1 / (permutations + 1)`, which must not exceed `alpha`.
    pub permutations: usize,
    /// False-alarm rate of the MMD test, in `(0, 1)` (default 0.05).
    pub alpha: f32,
    /// Each window is subsampled (without replacement) to at most this many rows
    /// (default 1000, at most [`MAX_DRIFT_SAMPLES`]).
    pub max_samples: usize,
    /// Seed of the subsampling, the relabellings and the classifier split.
    pub seed: u64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            permutations: 200,
            alpha: 0.05,
            max_samples: 1000,
            seed: 0,
        }
    }
}

/// What [`detect_drift`] found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftReport {
    /// Reference rows used (after subsampling).
    pub reference: usize,
    /// Recent rows used (after subsampling).
    pub recent: usize,
    /// `‖mean(reference) − mean(recent)‖`.
    pub mean_shift: f32,
    /// `1 − alpha` quantile of the mean shift under random relabelling.
    pub mean_shift_threshold: f32,
    /// Unbiased MMD² (RBF kernel, median-heuristic bandwidth); may be slightly negative.
    pub mmd: f32,
    /// `1 − alpha` quantile of MMD² under random relabelling.
    pub mmd_threshold: f32,
    /// Permutation p-value of `mmd`.
    pub mmd_p_value: f32,
    /// Cross-fitted AUC of a linear discriminant telling recent from reference.
    pub auc: f32,
    /// One-sided normal-approximation threshold of `auc` at `alpha`.
    pub auc_threshold: f32,
    /// Whether the MMD permutation test rejects "same distribution" at `alpha`.
    pub drifted: bool,
}

/// Compares `recent` against `reference` (row sets of dimension `dim`); see the module docs.
///
/// Errors ([`LifecycleError::InvalidArgument`]): zero dimension, lengths that are not whole
/// rows, non-finite values, a window with fewer than [`MIN_DRIFT_SAMPLES`] rows, `alpha`
/// outside `(0, 1)`, `permutations` outside `1..=MAX_PERMUTATIONS` or too few for `alpha`,
/// `max_samples` outside `MIN_DRIFT_SAMPLES..=MAX_DRIFT_SAMPLES`.
///
/// ```
/// use paradox_lifecycle::drift::{detect_drift, DriftConfig};
/// let reference: Vec<f32> = (0..400).map(|i| ((i * 37 % 101) as f32) / 101.0).collect();
/// let recent: Vec<f32> = reference.iter().map(|v| v + 1.0).collect();
/// let report = detect_drift(&reference, &recent, 4, &DriftConfig::default()).unwrap();
/// assert!(report.drifted && report.auc > 0.9);
/// ```
pub fn detect_drift(
    reference: &[f32],
    recent: &[f32],
    dim: usize,
    config: &DriftConfig,
) -> Result<DriftReport> {
    validate_config(config)?;
    let n_reference = check_rows("drift reference", reference, dim)?;
    let n_recent = check_rows("drift recent", recent, dim)?;
    for (what, n) in [("reference", n_reference), ("recent", n_recent)] {
        if n < MIN_DRIFT_SAMPLES {
            return Err(LifecycleError::InvalidArgument(format!(
                "drift {what} window needs at least {MIN_DRIFT_SAMPLES} vectors, got {n}"
            )));
        }
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let reference = subsample(reference, dim, config.max_samples, &mut rng);
    let recent = subsample(recent, dim, config.max_samples, &mut rng);
    let (nx, ny) = (reference.len() / dim, recent.len() / dim);
    let m = nx + ny;
    let mut pooled = reference.clone();
    pooled.extend_from_slice(&recent);

    // Labellings: row 0 is the observed one (reference first), rows 1..=P are random.
    let labels = labellings(nx, ny, config.permutations, &mut rng);
    let rows = config.permutations + 1;

    let kernel = rbf_kernel(&pooled, dim, m);
    let mmd = mmd_per_labelling(&kernel, &labels, nx, ny);
    let shift = mean_shift_per_labelling(&pooled, dim, &labels, nx, ny);

    let alpha = config.alpha as f64;
    let exceed = mmd[1..].iter().filter(|&&s| s >= mmd[0]).count();
    let p_value = (1 + exceed) as f64 / rows as f64;
    let (auc, auc_threshold) = cross_fitted_auc(&reference, &recent, dim, alpha, &mut rng)?;
    Ok(DriftReport {
        reference: nx,
        recent: ny,
        mean_shift: shift[0] as f32,
        mean_shift_threshold: upper_quantile(&shift[1..], alpha) as f32,
        mmd: mmd[0] as f32,
        mmd_threshold: upper_quantile(&mmd[1..], alpha) as f32,
        mmd_p_value: p_value as f32,
        auc: auc as f32,
        auc_threshold: auc_threshold as f32,
        drifted: p_value <= alpha,
    })
}

fn validate_config(config: &DriftConfig) -> Result<()> {
    let bad = |why: String| Err(LifecycleError::InvalidArgument(why));
    let alpha = config.alpha;
    if !(alpha > 0.0 && alpha < 1.0) {
        return bad(format!("drift alpha must be in (0, 1), got {alpha}"));
    }
    let p = config.permutations;
    if p == 0 || p > MAX_PERMUTATIONS {
        return bad(format!(
            "drift permutations must be in 1..={MAX_PERMUTATIONS}, got {p}"
        ));
    }
    if ((p + 1) as f64) * (alpha as f64) < 1.0 {
        let needed = (1.0 / alpha as f64).ceil() as usize - 1;
        return bad(format!(
            "with {p} permutations the smallest p-value is 1/{} > alpha {alpha}: use at least \
             {needed}",
            p + 1
        ));
    }
    let s = config.max_samples;
    if !(MIN_DRIFT_SAMPLES..=MAX_DRIFT_SAMPLES).contains(&s) {
        return bad(format!(
            "drift max_samples must be in {MIN_DRIFT_SAMPLES}..={MAX_DRIFT_SAMPLES}, got {s}"
        ));
    }
    Ok(())
}

/// At most `max` rows of `data`, chosen uniformly without replacement.
fn subsample(data: &[f32], dim: usize, max: usize, rng: &mut StdRng) -> Vec<f32> {
    let n = data.len() / dim;
    if n <= max {
        return data.to_vec();
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.partial_shuffle(rng, max);
    let mut out = Vec::with_capacity(max * dim);
    for &i in &order[..max] {
        out.extend_from_slice(&data[i * dim..(i + 1) * dim]);
    }
    out
}

/// `(P + 1) × m` indicator rows: 1 where a pooled row belongs to the first group. Row 0 is
/// the observed split (the first `nx` rows); the others are uniform random relabellings.
fn labellings(nx: usize, ny: usize, permutations: usize, rng: &mut StdRng) -> Vec<f32> {
    let m = nx + ny;
    let mut labels = vec![0.0f32; (permutations + 1) * m];
    labels[..nx].fill(1.0);
    let mut order: Vec<usize> = (0..m).collect();
    for row in labels.chunks_exact_mut(m).skip(1) {
        order.partial_shuffle(rng, nx);
        for &i in &order[..nx] {
            row[i] = 1.0;
        }
    }
    labels
}

/// The `m × m` RBF kernel matrix of the pooled rows, with a zero diagonal (the unbiased
/// MMD never pairs a row with itself).
fn rbf_kernel(pooled: &[f32], dim: usize, m: usize) -> Vec<f32> {
    let mut gram = vec![0.0f32; m * m];
    matmul_abt(pooled, pooled, dim, &mut gram);
    let norms: Vec<f32> = (0..m).map(|i| gram[i * m + i]).collect();
    let mut upper = Vec::with_capacity(m * (m - 1) / 2);
    for i in 0..m {
        for j in 0..m {
            let d2 = (norms[i] + norms[j] - 2.0 * gram[i * m + j]).max(0.0);
            gram[i * m + j] = d2;
            if j > i {
                upper.push(d2);
            }
        }
    }
    let mid = upper.len() / 2;
    let (_, median, _) = upper.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    let mut bandwidth = *median;
    if bandwidth <= 0.0 {
        // More than half the pairs coincide: fall back to the mean, then to 1.
        let mean = upper.iter().map(|&v| v as f64).sum::<f64>() / upper.len().max(1) as f64;
        bandwidth = if mean > 0.0 { mean as f32 } else { 1.0 };
    }
    let inv = 1.0 / bandwidth;
    for (i, row) in gram.chunks_exact_mut(m).enumerate() {
        for v in row.iter_mut() {
            *v = (-*v * inv).exp();
        }
        row[i] = 0.0;
    }
    gram
}

/// Unbiased MMD² for every labelling, from one GEMM `R = L K`: with `x` the indicator of
/// the first group, `Sxx = x·R`, `Sxy = (1 − x)·R`, `Syy = ΣK − Sxx − 2 Sxy`.
fn mmd_per_labelling(kernel: &[f32], labels: &[f32], nx: usize, ny: usize) -> Vec<f64> {
    let m = nx + ny;
    let rows = labels.len() / m;
    let mut r = vec![0.0f32; rows * m];
    // K is symmetric, so its rows are its columns: L Kᵀ = L K.
    matmul_abt(labels, kernel, m, &mut r);
    let total: f64 = kernel.iter().map(|&v| v as f64).sum();
    let (fx, fy) = (nx as f64, ny as f64);
    labels
        .chunks_exact(m)
        .zip(r.chunks_exact(m))
        .map(|(x, r_row)| {
            let (mut sxx, mut sxy) = (0.0f64, 0.0f64);
            for (&xi, &ri) in x.iter().zip(r_row) {
                if xi > 0.5 {
                    sxx += ri as f64;
                } else {
                    sxy += ri as f64;
                }
            }
            let syy = total - sxx - 2.0 * sxy;
            sxx / (fx * (fx - 1.0)) + syy / (fy * (fy - 1.0)) - 2.0 * sxy / (fx * fy)
        })
        .collect()
}

/// `‖mean(first group) − mean(second group)‖` for every labelling, the group sums from one
/// GEMM `L Z`.
fn mean_shift_per_labelling(
    pooled: &[f32],
    dim: usize,
    labels: &[f32],
    nx: usize,
    ny: usize,
) -> Vec<f64> {
    let m = nx + ny;
    let rows = labels.len() / m;
    let mut sums = vec![0.0f32; rows * dim];
    matmul_abt(labels, &transpose(pooled, m, dim), m, &mut sums);
    let total: Vec<f64> = column_means(pooled, dim)
        .iter()
        .map(|v| v * m as f64)
        .collect();
    sums.chunks_exact(dim)
        .map(|s| {
            s.iter()
                .zip(&total)
                .map(|(&sx, &t)| {
                    let diff = sx as f64 / nx as f64 - (t - sx as f64) / ny as f64;
                    diff * diff
                })
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// The `1 − alpha` quantile of `values` (nearest rank, rounding up).
fn upper_quantile(values: &[f64], alpha: f64) -> f64 {
    if values.is_empty() {
        return f64::INFINITY;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = ((1.0 - alpha) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Cross-fitted AUC of a shrunk LDA, and its one-sided normal-approximation threshold.
fn cross_fitted_auc(
    reference: &[f32],
    recent: &[f32],
    dim: usize,
    alpha: f64,
    rng: &mut StdRng,
) -> Result<(f64, f64)> {
    let halves = |data: &[f32], rng: &mut StdRng| {
        let n = data.len() / dim;
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        let (a, b) = order.split_at(n / 2);
        let pick = |idx: &[usize]| {
            let mut out = Vec::with_capacity(idx.len() * dim);
            for &i in idx {
                out.extend_from_slice(&data[i * dim..(i + 1) * dim]);
            }
            out
        };
        (pick(a), pick(b))
    };
    let (ref_a, ref_b) = halves(reference, rng);
    let (rec_a, rec_b) = halves(recent, rng);
    let mut aucs = [0.0f64; 2];
    let mut variance = 0.0;
    for (fold, (train, test)) in [
        ((&ref_a, &rec_a), (&ref_b, &rec_b)),
        ((&ref_b, &rec_b), (&ref_a, &rec_a)),
    ]
    .into_iter()
    .enumerate()
    {
        let direction = lda_direction(train.0, train.1, dim)?;
        let score = |rows: &[f32]| -> Vec<f64> {
            rows.chunks_exact(dim)
                .map(|r| r.iter().zip(&direction).map(|(&a, &w)| a as f64 * w).sum())
                .collect()
        };
        let (negatives, positives) = (score(test.0), score(test.1));
        aucs[fold] = auc(&negatives, &positives);
        let (n0, n1) = (negatives.len() as f64, positives.len() as f64);
        variance += (n0 + n1 + 1.0) / (12.0 * n0 * n1) / 2.0;
    }
    let mean_auc = (aucs[0] + aucs[1]) / 2.0;
    // The folds share data (one's training half is the other's test half), so their AUCs
    // are not independent; the threshold takes the conservative end and treats them as one
    // fold (variance of the mean = the mean fold variance).
    let threshold = 0.5 + normal_quantile(1.0 - alpha) * variance.sqrt();
    Ok((mean_auc, threshold))
}

/// Fisher discriminant direction `(S_w + (tr S_w / d) I)⁻¹ (μ₁ − μ₀)`.
fn lda_direction(negatives: &[f32], positives: &[f32], dim: usize) -> Result<Vec<f64>> {
    let mean0 = column_means(negatives, dim);
    let mean1 = column_means(positives, dim);
    let c0 = centered(negatives, dim, &mean0);
    let c1 = centered(positives, dim, &mean1);
    let s0 = cross_product(&c0, dim, &c0, dim);
    let s1 = cross_product(&c1, dim, &c1, dim);
    let dof = ((negatives.len() + positives.len()) / dim)
        .saturating_sub(2)
        .max(1) as f64;
    let mut scatter: Vec<f64> = s0.iter().zip(&s1).map(|(a, b)| (a + b) / dof).collect();
    let trace: f64 = (0..dim).map(|i| scatter[i * dim + i]).sum();
    let shrink = (trace / dim as f64).max(1e-12);
    for i in 0..dim {
        scatter[i * dim + i] += shrink;
    }
    cholesky(&mut scatter, dim)?;
    let mut direction: Vec<f64> = mean1.iter().zip(&mean0).map(|(a, b)| a - b).collect();
    cholesky_solve(&scatter, dim, &mut direction, 1);
    Ok(direction)
}

/// Probability that a positive scores above a negative (ties count half).
fn auc(negatives: &[f64], positives: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = negatives
        .iter()
        .map(|&s| (s, false))
        .chain(positives.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mean_rank * all[i..=j].iter().filter(|e| e.1).count() as f64;
        i = j + 1;
    }
    let (n0, n1) = (negatives.len() as f64, positives.len() as f64);
    if n0 == 0.0 || n1 == 0.0 {
        return 0.5;
    }
    (rank_sum - n1 * (n1 + 1.0) / 2.0) / (n0 * n1)
}

/// Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    const P_LOW: f64 = 0.02425;
    if p <= 0.0 {
        f64::NEG_INFINITY
    } else if p >= 1.0 {
        f64::INFINITY
    } else if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_known_values() {
        assert!((normal_quantile(0.95) - 1.644_853_6).abs() < 1e-6);
        assert!((normal_quantile(0.5)).abs() < 1e-9);
        assert!((normal_quantile(0.01) + 2.326_347_9).abs() < 1e-6);
    }

    #[test]
    fn auc_counts_ties_half() {
        assert_eq!(auc(&[0.0, 1.0], &[2.0, 3.0]), 1.0);
        assert_eq!(auc(&[2.0, 3.0], &[0.0, 1.0]), 0.0);
        assert_eq!(auc(&[1.0], &[1.0]), 0.5);
    }

    #[test]
    fn upper_quantile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(upper_quantile(&v, 0.05), 95.0);
    }
}

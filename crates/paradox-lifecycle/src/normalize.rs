//! Per-space normalisation: centring and ZCA whitening, fitted on a sample of a space.
//!
//! Embedding spaces are anisotropic: a few directions carry most of the variance and every
//! vector shares a common mean direction, which crowds cosine scores together. Centring
//! removes the mean; whitening also equalises the variance of every direction.
//!
//! * [`NormalizeMode::Center`]: `y = x − μ`.
//! * [`NormalizeMode::Whiten`]: ZCA, `y = W (x − μ)` with `W = U (Λ + eps)^{-1/2} Uᵀ` from
//!   the sample covariance `Σ = U Λ Uᵀ` (divisor `n − 1`). Of all whitening matrices ZCA is
//!   the one that moves vectors least, so whitened vectors stay close to the originals.
//!   `eps` is absolute (in the units of the covariance's eigenvalues): it caps the gain of
//!   low-variance directions at `eps^{-1/2}`. With `eps = 0` the covariance must be full
//!   rank, or fitting is a [`LifecycleError::Numerical`] error.
//!
//! A [`Normalizer`] is a [`VectorMap`] with `dim_in == dim_out`; applying it is a
//! subtraction and (for whitening) one matrix-vector product. Files use the container of
//! [`crate::linalg`] with magic `PDXNORML`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{LifecycleError, Result};
use crate::linalg::{centered, check_rows, column_means, cross_product_f64, symmetric_eigen};
use crate::tensor_file::{read_tensor_file, write_tensor_file};
use crate::VectorMap;

/// Fewest sample vectors [`Normalizer::fit`] accepts.
pub const MIN_NORMALIZE_SAMPLES: usize = 2;
/// Magic of normaliser files.
const MAGIC: &[u8; 8] = b"PDXNORML";
/// Dimensions up to which `map_into` keeps its scratch on the stack.
const STACK_SCRATCH: usize = 1024;

/// What a [`Normalizer`] does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum NormalizeMode {
    /// Subtract the sample mean.
    Center,
    /// Subtract the mean, then ZCA-whiten; `eps ≥ 0` is added to every covariance
    /// eigenvalue.
    Whiten {
        /// Regulariser added to the covariance eigenvalues.
        eps: f32,
    },
}

/// A fitted centring or whitening of one vector space.
///
/// ```
/// use paradox_lifecycle::normalize::{NormalizeMode, Normalizer};
/// use paradox_lifecycle::VectorMap;
/// let sample = [1.0, 10.0, 3.0, 14.0, 2.0, 12.0];
/// let center = Normalizer::fit(&sample, 2, NormalizeMode::Center).unwrap();
/// assert_eq!(center.map(&[2.0, 12.0]), vec![0.0, 0.0]);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Normalizer {
    mode: NormalizeMode,
    dim: usize,
    samples: usize,
    mean: Vec<f32>,
    /// `W` (`dim × dim`), present for whitening.
    whitening: Option<Vec<f32>>,
}

/// The header of a normaliser file.
#[derive(Debug, Serialize, Deserialize)]
struct NormalizerHeader {
    mode: NormalizeMode,
    dim: usize,
    samples: usize,
}

impl Normalizer {
    /// Fits `mode` on `sample` (`n` rows of `dim` values).
    ///
    /// Errors: [`LifecycleError::InvalidArgument`] for a zero dimension, a length that is
    /// not whole rows, non-finite values, fewer than [`MIN_NORMALIZE_SAMPLES`] rows, or a
    /// negative or non-finite `eps`; [`LifecycleError::Numerical`] when `eps = 0` and the
    /// sample covariance is singular.
    pub fn fit(sample: &[f32], dim: usize, mode: NormalizeMode) -> Result<Normalizer> {
        let n = check_rows("normaliser sample", sample, dim)?;
        if n < MIN_NORMALIZE_SAMPLES {
            return Err(LifecycleError::InvalidArgument(format!(
                "normaliser needs at least {MIN_NORMALIZE_SAMPLES} sample vectors, got {n}"
            )));
        }
        if let NormalizeMode::Whiten { eps } = mode {
            if !(eps.is_finite() && eps >= 0.0) {
                return Err(LifecycleError::InvalidArgument(format!(
                    "whitening eps must be finite and >= 0, got {eps}"
                )));
            }
        }
        let mean64 = column_means(sample, dim);
        let mean: Vec<f32> = mean64.iter().map(|&m| m as f32).collect();
        let whitening = match mode {
            NormalizeMode::Center => None,
            NormalizeMode::Whiten { eps } => {
                let xc = centered(sample, dim, &mean64);
                // f64 accumulation: W is applied at the covariance's full condition number.
                let mut cov = cross_product_f64(&xc, dim, &xc, dim);
                let scale = 1.0 / (n - 1) as f64;
                cov.iter_mut().for_each(|c| *c *= scale);
                let w = zca(&cov, dim, eps as f64)?;
                Some(w.into_iter().map(|v| v as f32).collect())
            }
        };
        Ok(Normalizer {
            mode,
            dim,
            samples: n,
            mean,
            whitening,
        })
    }

    /// The mode it was fitted with.
    pub fn mode(&self) -> NormalizeMode {
        self.mode
    }

    /// The sample mean it subtracts.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// How many vectors it was fitted on.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Writes the normaliser to `path` (atomically; format in [`crate::linalg`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        let header = NormalizerHeader {
            mode: self.mode,
            dim: self.dim,
            samples: self.samples,
        };
        let meta = serde_json::to_value(&header)
            .map_err(|e| LifecycleError::InvalidArgument(format!("normaliser header: {e}")))?;
        let mut tensors: Vec<(&str, &[f32])> = vec![("mean", &self.mean)];
        if let Some(w) = &self.whitening {
            tensors.push(("whitening", w));
        }
        write_tensor_file(path, MAGIC, meta, &tensors)
    }

    /// Reads a normaliser written by [`Normalizer::save`]; a damaged or foreign file is
    /// [`LifecycleError::Corrupt`].
    pub fn load(path: &Path) -> Result<Normalizer> {
        let mut file = read_tensor_file(path, MAGIC)?;
        let corrupt = |why: String| LifecycleError::Corrupt(format!("{}: {why}", path.display()));
        let header: NormalizerHeader = serde_json::from_value(file.meta.clone())
            .map_err(|e| corrupt(format!("normaliser header: {e}")))?;
        let dim = header.dim;
        if dim == 0 {
            return Err(corrupt("dimension 0".into()));
        }
        let mean = file.take("mean", dim)?;
        let whitening = match header.mode {
            NormalizeMode::Center => None,
            NormalizeMode::Whiten { .. } => {
                let len = dim
                    .checked_mul(dim)
                    .ok_or_else(|| corrupt(format!("dimension {dim} overflows")))?;
                Some(file.take("whitening", len)?)
            }
        };
        if let Some((name, _)) = file.tensors.first() {
            return Err(corrupt(format!("unexpected tensor `{name}`")));
        }
        Ok(Normalizer {
            mode: header.mode,
            dim,
            samples: header.samples,
            mean,
            whitening,
        })
    }
}

/// `U (Λ + eps)^{-1/2} Uᵀ` for the covariance `cov` (`dim × dim`).
fn zca(cov: &[f64], dim: usize, eps: f64) -> Result<Vec<f64>> {
    let eigen = symmetric_eigen(cov, dim)?;
    let largest = eigen.values.first().copied().unwrap_or(0.0).max(0.0);
    let mut gains = Vec::with_capacity(dim);
    for &value in &eigen.values {
        // Eigenvalues of a PSD matrix below this are rounding noise around zero.
        let floor = largest * 1e-12;
        let regularised = value.max(0.0) + eps;
        if regularised <= floor || regularised <= 0.0 {
            return Err(LifecycleError::Numerical(format!(
                "sample covariance is singular (eigenvalue {value:e} against largest \
                 {largest:e}); whiten with eps > 0 or fit on more varied vectors"
            )));
        }
        gains.push(1.0 / regularised.sqrt());
    }
    let mut w = vec![0.0f64; dim * dim];
    for (k, gain) in gains.iter().enumerate() {
        let u = &eigen.vectors[k * dim..(k + 1) * dim];
        for r in 0..dim {
            let ur = u[r] * gain;
            let row = &mut w[r * dim..(r + 1) * dim];
            for (wv, &uc) in row.iter_mut().zip(u) {
                *wv += ur * uc;
            }
        }
    }
    Ok(w)
}

impl VectorMap for Normalizer {
    fn dim_in(&self) -> usize {
        self.dim
    }

    fn dim_out(&self) -> usize {
        self.dim
    }

    /// # Panics
    ///
    /// If `x` or `out` is not `dim` long.
    fn map_into(&self, x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), self.dim, "normaliser input dimension");
        assert_eq!(out.len(), self.dim, "normaliser output dimension");
        let centre = |x: &[f32], dst: &mut [f32]| {
            for ((d, &v), m) in dst.iter_mut().zip(x).zip(&self.mean) {
                *d = v - m;
            }
        };
        match &self.whitening {
            None => centre(x, out),
            // W (x − μ) rather than W x − W μ: no cancellation between large terms.
            Some(w) if self.dim <= STACK_SCRATCH => {
                let mut buf = [0.0f32; STACK_SCRATCH];
                centre(x, &mut buf[..self.dim]);
                paradox_kernels::dot_one_to_many(&buf[..self.dim], w, out);
            }
            Some(w) => {
                let mut buf = vec![0.0f32; self.dim];
                centre(x, &mut buf);
                paradox_kernels::dot_one_to_many(&buf, w, out);
            }
        }
    }
}

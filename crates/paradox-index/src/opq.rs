//! Optimised product quantisation (Ge et al., 2013, the non-parametric variant): an
//! orthogonal rotation `R` learned so that PQ loses less on `x·R` than on `x`.
//!
//! Alternating minimisation on a sample `X`, from a random rotation: train PQ on `X·R` and take its
//! reconstruction `Y`; then the best orthogonal `R` for `‖X·R − Y‖` is the polar factor of
//! `Xᵀ·Y` (orthogonal Procrustes), computed here by Newton–Schulz iteration with the
//! blocked matrix kernel (no eigen-solver needed). A rotation preserves L2 distances and
//! inner products, so searching rotated codes with a rotated query changes nothing but
//! the quantisation error.

use crate::pq::ProductQuantizer;
use paradox_kernels::dot_many_to_many;

/// Newton–Schulz steps at most; it stops earlier once `Z·Zᵀ` is the identity to 1e-6.
const POLAR_STEPS: usize = 60;

/// An orthogonal `dim × dim` rotation, applied to row vectors: `rotated = x · R`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    dim: usize,
    /// `Rᵀ`, row-major: row `j` is column `j` of `R`, so `rotated[j] = x · row_j`.
    transposed: Vec<f32>,
}

impl Rotation {
    /// The identity.
    pub fn identity(dim: usize) -> Rotation {
        let mut transposed = vec![0f32; dim * dim];
        for i in 0..dim {
            transposed[i * dim + i] = 1.0;
        }
        Rotation { dim, transposed }
    }

    /// Learns the rotation on `sample` (`dim` values per row) for a PQ of `m` sub-spaces:
    /// `iterations` rounds of PQ training (`pq_iterations` k-means steps each) and
    /// Procrustes.
    pub fn learn(
        sample: &[f32],
        dim: usize,
        m: usize,
        iterations: usize,
        pq_iterations: usize,
        seed: u64,
    ) -> Result<Rotation, String> {
        let n = sample.len() / dim.max(1);
        // Start from a random rotation (as FAISS does): the identity is a fixed point of
        // the alternation, however unbalanced the sub-spaces' variances are.
        let mut rng = crate::kmeans::SplitMix::new(seed ^ 0x0F0F);
        let gaussian: Vec<f32> = (0..dim * dim)
            .map(|_| (rng.next_f64() + rng.next_f64() + rng.next_f64() - 1.5) as f32)
            .collect();
        let mut rotation = Rotation {
            dim,
            transposed: polar_factor(&gaussian, dim),
        };
        let x_t = transpose(sample, n, dim);
        let mut rotated = vec![0f32; sample.len()];
        let mut decoded = vec![0f32; sample.len()];
        for round in 0..iterations {
            rotation.apply_rows(sample, &mut rotated);
            let pq = ProductQuantizer::train(
                &rotated,
                dim,
                m,
                pq_iterations,
                seed.wrapping_add(round as u64),
            )?;
            let codes = pq.encode_all(&rotated);
            for (code, out) in codes.chunks_exact(m).zip(decoded.chunks_exact_mut(dim)) {
                pq.decode(code, out);
            }
            // M = Xᵀ·Y = (Xᵀ)·(Yᵀ)ᵀ: rows of Xᵀ against rows of Yᵀ.
            let y_t = transpose(&decoded, n, dim);
            let mut product = vec![0f32; dim * dim];
            dot_many_to_many(&x_t, &y_t, n, &mut product);
            let r = polar_factor(&product, dim);
            rotation = Rotation {
                dim,
                transposed: transpose(&r, dim, dim),
            };
        }
        Ok(rotation)
    }

    /// Rebuilds a rotation from `Rᵀ` (e.g. read from a file), checking it is orthogonal.
    pub fn from_transposed(dim: usize, transposed: Vec<f32>) -> Result<Rotation, String> {
        if transposed.len() != dim * dim {
            return Err(format!(
                "rotation holds {} values, dimension {dim} needs {}",
                transposed.len(),
                dim * dim
            ));
        }
        let rotation = Rotation { dim, transposed };
        if rotation.orthogonality_error() > 1e-3 {
            return Err("rotation is not orthogonal".into());
        }
        Ok(rotation)
    }

    /// `Rᵀ`, row-major.
    pub fn transposed(&self) -> &[f32] {
        &self.transposed
    }

    /// `out = x · R` for one row: one SIMD dot product per output (the blocked kernel
    /// would pack all of `R` for a single row).
    pub fn apply(&self, x: &[f32], out: &mut [f32]) {
        for (o, column) in out.iter_mut().zip(self.transposed.chunks_exact(self.dim)) {
            *o = paradox_kernels::dot(x, column);
        }
    }

    /// `out = X · R` for many rows.
    pub fn apply_rows(&self, rows: &[f32], out: &mut [f32]) {
        // The blocked kernel is single-threaded; blocks of rows go to the rayon pool.
        use rayon::prelude::*;
        let block = 256 * self.dim;
        out.par_chunks_mut(block)
            .zip(rows.par_chunks(block))
            .for_each(|(out, rows)| dot_many_to_many(rows, &self.transposed, self.dim, out));
    }

    /// `max |R·Rᵀ − I|`.
    fn orthogonality_error(&self) -> f32 {
        let d = self.dim;
        let mut gram = vec![0f32; d * d];
        dot_many_to_many(&self.transposed, &self.transposed, d, &mut gram);
        let mut worst = 0f32;
        for i in 0..d {
            for j in 0..d {
                let want = if i == j { 1.0 } else { 0.0 };
                worst = worst.max((gram[i * d + j] - want).abs());
            }
        }
        worst
    }
}

/// `rows × cols` row-major → `cols × rows` row-major.
fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; a.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = a[r * cols + c];
        }
    }
    out
}

/// The orthogonal polar factor `U·Vᵀ` of `M = U·Σ·Vᵀ` (`d × d`, row-major), by
/// Newton–Schulz: `Z ← 1.5·Z − 0.5·Z·Zᵀ·Z` from `Z = M / ‖M‖_F`, which maps each singular
/// value `σ ∈ (0, 1]` towards 1 and keeps the singular vectors. A zero matrix gives the
/// identity.
fn polar_factor(m: &[f32], d: usize) -> Vec<f32> {
    let norm = m.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    if !(norm > 0.0 && norm.is_finite()) {
        return Rotation::identity(d).transposed;
    }
    let mut z: Vec<f32> = m.iter().map(|&x| (x as f64 / norm) as f32).collect();
    let mut gram = vec![0f32; d * d];
    let mut cubic = vec![0f32; d * d];
    for _ in 0..POLAR_STEPS {
        // gram = Z·Zᵀ (rows of Z against rows of Z).
        dot_many_to_many(&z, &z, d, &mut gram);
        let off_identity = (0..d * d)
            .map(|i| (gram[i] - if i / d == i % d { 1.0 } else { 0.0 }).abs())
            .fold(0f32, f32::max);
        if off_identity < 1e-6 {
            break;
        }
        // cubic = gram·Z = rows of gram against rows of Zᵀ.
        let z_t = transpose(&z, d, d);
        dot_many_to_many(&gram, &z_t, d, &mut cubic);
        for (zi, &ci) in z.iter_mut().zip(&cubic) {
            *zi = 1.5 * *zi - 0.5 * ci;
        }
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::SplitMix;

    fn random(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix::new(seed);
        (0..n * dim).map(|_| rng.next_f64() as f32 - 0.5).collect()
    }

    #[test]
    fn polar_factor_is_orthogonal_and_recovers_a_rotation() {
        let d = 12;
        // A random orthogonal Q (polar factor of a random matrix), then M = Q·S with S
        // symmetric positive definite: the polar factor of M is Q again.
        let q = polar_factor(&random(d, d, 1), d);
        let rot = Rotation::from_transposed(d, transpose(&q, d, d)).unwrap();
        assert!(rot.orthogonality_error() < 1e-4);
        let mut s = vec![0f32; d * d];
        for i in 0..d {
            s[i * d + i] = 1.0 + i as f32;
        }
        // M = Q·S: rows of Q against rows of Sᵀ (= S).
        let mut m = vec![0f32; d * d];
        dot_many_to_many(&q, &s, d, &mut m);
        let back = polar_factor(&m, d);
        for (a, b) in back.iter().zip(&q) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn learned_rotation_reduces_quantisation_error_on_correlated_data() {
        // All the variance in the first half: plain PQ (m = 2) spends one codebook on
        // noise; a rotation can spread the signal over both sub-spaces.
        let (n, dim, m) = (2000, 8, 2);
        let raw = random(n, dim, 3);
        let data: Vec<f32> = raw
            .iter()
            .enumerate()
            .map(|(i, &x)| if i % dim < 4 { 10.0 * x } else { 0.01 * x })
            .collect();
        let error = |rotation: &Rotation| {
            let mut rotated = vec![0f32; data.len()];
            rotation.apply_rows(&data, &mut rotated);
            let pq = ProductQuantizer::train(&rotated, dim, m, 10, 9).unwrap();
            let codes = pq.encode_all(&rotated);
            let mut out = vec![0f32; dim];
            let mut total = 0f64;
            for (row, code) in rotated.chunks_exact(dim).zip(codes.chunks_exact(m)) {
                pq.decode(code, &mut out);
                total += paradox_kernels::l2_squared(row, &out) as f64;
            }
            total
        };
        let learned = Rotation::learn(&data, dim, m, 8, 4, 5).unwrap();
        assert!(learned.orthogonality_error() < 1e-3);
        let plain = error(&Rotation::identity(dim));
        let better = error(&learned);
        assert!(better < 0.7 * plain, "OPQ error {better} vs PQ {plain}");
        // Rotations keep distances.
        let mut a = vec![0f32; dim];
        let mut b = vec![0f32; dim];
        learned.apply(&data[..dim], &mut a);
        learned.apply(&data[dim..2 * dim], &mut b);
        let before = paradox_kernels::l2_squared(&data[..dim], &data[dim..2 * dim]);
        assert!((paradox_kernels::l2_squared(&a, &b) - before).abs() < 1e-4);
    }
}

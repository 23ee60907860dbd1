//! Small dense linear algebra for the optimisers: a symmetric eigensolver (cyclic
//! Jacobi) and a Cholesky solve for least squares. Matrices are row-major `n × n`
//! `Vec<f64>`. Sizes here are the search dimension (tens to a few hundred), so O(n³)
//! with a small constant is the right trade against a dependency.

/// Eigendecomposition of a symmetric matrix: returns `(eigenvalues, eigenvectors)`,
/// eigenvector `j` being column `j` of the row-major `n × n` result, so
/// `a = V · diag(λ) · Vᵀ`. Only the symmetric part of `a` is used.
///
/// Cyclic Jacobi rotations until the off-diagonal mass is below `1e-24` of the
/// diagonal's (quadratic convergence: typically 6 to 10 sweeps).
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(a.len(), n * n, "symmetric_eigen: matrix is not n × n");
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            m[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
        }
    }
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..64 {
        let mut off = 0.0;
        let mut diag = 0.0;
        for i in 0..n {
            diag += m[i * n + i] * m[i * n + i];
            for j in (i + 1)..n {
                off += m[i * n + j] * m[i * n + j];
            }
        }
        if off <= 1e-24 * diag || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in (p + 1)..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let app = m[p * n + p];
                let aqq = m[q * n + q];
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // Columns p, q of M (M ← M·J), then rows (M ← Jᵀ·M), then V ← V·J.
                for k in 0..n {
                    let mkp = m[k * n + p];
                    let mkq = m[k * n + q];
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let mpk = m[p * n + k];
                    let mqk = m[q * n + k];
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let values = (0..n).map(|i| m[i * n + i]).collect();
    (values, v)
}

/// Solves `a · x = b` for a symmetric positive (semi-)definite `a` by Cholesky, adding
/// `ridge · mean(diag)` to the diagonal so rank-deficient least-squares systems still
/// answer. Returns `None` if the factorisation fails even so.
pub fn cholesky_solve(a: &[f64], b: &[f64], n: usize, ridge: f64) -> Option<Vec<f64>> {
    let mean_diag = (0..n).map(|i| a[i * n + i]).sum::<f64>() / n.max(1) as f64;
    let shift = ridge * mean_diag.max(1e-300);
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j];
            if i == j {
                sum += shift;
            }
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut sum = b[i];
        for k in 0..i {
            sum -= l[i * n + k] * y[k];
        }
        y[i] = sum / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut sum = y[i];
        for k in (i + 1)..n {
            sum -= l[k * n + i] * x[k];
        }
        x[i] = sum / l[i * n + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_reconstructs_a_random_symmetric_matrix() {
        let n = 12;
        let mut a = vec![0.0; n * n];
        let mut state = 7u64;
        for i in 0..n {
            for j in 0..=i {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
                a[i * n + j] = v;
                a[j * n + i] = v;
            }
        }
        let (values, vectors) = symmetric_eigen(&a, n);
        for i in 0..n {
            for j in 0..n {
                let r: f64 = (0..n)
                    .map(|k| vectors[i * n + k] * values[k] * vectors[j * n + k])
                    .sum();
                assert!(
                    (r - a[i * n + j]).abs() < 1e-10,
                    "entry ({i},{j}) off by {}",
                    r - a[i * n + j]
                );
                let orth: f64 = (0..n)
                    .map(|k| vectors[k * n + i] * vectors[k * n + j])
                    .sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((orth - expected).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn cholesky_solves_a_spd_system() {
        let a = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0];
        let x_true = [1.0, -2.0, 0.5];
        let b: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * x_true[j]).sum())
            .collect();
        let x = cholesky_solve(&a, &b, 3, 0.0).unwrap();
        for i in 0..3 {
            assert!((x[i] - x_true[i]).abs() < 1e-12);
        }
    }
}

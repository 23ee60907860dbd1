//! The small dense linear algebra the adapters, normalisers and drift detector need (their
//! parameter files are `tensor_file.rs`).
//!
//! Dimensions here are those of embedding spaces (`d ≤ 1024`), so everything is written
//! directly rather than pulled from a LAPACK: products of many rows (`XᵀY` over thousands
//! of samples) go through the blocked `f32` GEMM of `paradox-kernels`, split across threads;
//! the `d × d` factorisations (Cholesky, symmetric eigendecomposition, thin SVD) run in
//! `f64`, where `O(d³)` is a few hundred milliseconds at most.
//!
//! Conventions: matrices are row-major slices with their shape passed alongside; a "row
//! set" is `n` vectors of dimension `dim` stored back to back (`n * dim` values).

use rayon::prelude::*;

use crate::error::{LifecycleError, Result};

// ---------------------------------------------------------------------------------------
// Input validation
// ---------------------------------------------------------------------------------------

/// Checks that `data` is a row set of dimension `dim` with only finite values, and returns
/// its number of rows. `what` names the argument in the error ("`source`").
pub fn check_rows(what: &str, data: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(LifecycleError::InvalidArgument(format!(
            "{what}: dimension must be at least 1, got 0"
        )));
    }
    if !data.len().is_multiple_of(dim) {
        return Err(LifecycleError::InvalidArgument(format!(
            "{what}: {} values is not a whole number of {dim}-dimensional rows",
            data.len()
        )));
    }
    if let Some(at) = data.iter().position(|v| !v.is_finite()) {
        return Err(LifecycleError::InvalidArgument(format!(
            "{what}: row {} column {} is {} (values must be finite)",
            at / dim,
            at % dim,
            data[at]
        )));
    }
    Ok(data.len() / dim)
}

// ---------------------------------------------------------------------------------------
// f32 products through the kernels' GEMM
// ---------------------------------------------------------------------------------------

/// The transpose of the `rows × cols` matrix `a` (a `cols × rows` matrix).
pub fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    debug_assert_eq!(a.len(), rows * cols);
    let mut t = vec![0.0; rows * cols];
    // Blocked so both sides stay in cache for large matrices.
    const B: usize = 32;
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    t[c * rows + r] = a[r * cols + c];
                }
            }
        }
    }
    t
}

/// Rows of `a` per parallel task in [`matmul_abt`]: enough work to amortise the task.
const ROWS_PER_TASK: usize = 64;

/// `out = a · bᵀ` for `a` (`m × k`) and `b` (`n × k`), both row-major; `out` is `m × n`.
///
/// The blocked GEMM of `paradox-kernels`, with the rows of `a` split across the rayon pool
/// when there are enough of them. Deterministic: every entry is summed in the same order
/// whatever the split.
pub fn matmul_abt(a: &[f32], b: &[f32], k: usize, out: &mut [f32]) {
    if k == 0 {
        out.fill(0.0);
        return;
    }
    let (m, n) = (a.len() / k, b.len() / k);
    debug_assert_eq!(out.len(), m * n);
    if n == 0 || m == 0 {
        return;
    }
    if m < 2 * ROWS_PER_TASK || m * n * k < (1 << 22) {
        paradox_kernels::dot_many_to_many(a, b, k, out);
        return;
    }
    let tasks = rayon::current_num_threads().max(1) * 4;
    let rows_per_task = m.div_ceil(tasks).max(ROWS_PER_TASK);
    a.par_chunks(rows_per_task * k)
        .zip(out.par_chunks_mut(rows_per_task * n))
        .for_each(|(a_part, out_part)| paradox_kernels::dot_many_to_many(a_part, b, k, out_part));
}

/// Column means of the row set `x` (dimension `dim`), in `f64`.
pub fn column_means(x: &[f32], dim: usize) -> Vec<f64> {
    let mut sums = vec![0.0f64; dim];
    let n = x.len() / dim.max(1);
    for row in x.chunks_exact(dim) {
        for (s, &v) in sums.iter_mut().zip(row) {
            *s += v as f64;
        }
    }
    let inv = if n > 0 { 1.0 / n as f64 } else { 0.0 };
    sums.iter_mut().for_each(|s| *s *= inv);
    sums
}

/// The row set `x` with `means` subtracted from every row.
pub fn centered(x: &[f32], dim: usize, means: &[f64]) -> Vec<f32> {
    let means32: Vec<f32> = means.iter().map(|&m| m as f32).collect();
    let mut out = x.to_vec();
    for row in out.chunks_exact_mut(dim) {
        for (v, m) in row.iter_mut().zip(&means32) {
            *v -= m;
        }
    }
    out
}

/// `aᵀ · b` for row sets `a` (`n × da`) and `b` (`n × db`) with the same `n`: a `da × db`
/// matrix in `f64` (accumulated in `f32` by the GEMM, one row of the result per task).
pub fn cross_product(a: &[f32], da: usize, b: &[f32], db: usize) -> Vec<f64> {
    let n = a.len() / da;
    debug_assert_eq!(b.len(), n * db);
    let at = transpose(a, n, da);
    let bt = if std::ptr::eq(a, b) && da == db {
        at.clone()
    } else {
        transpose(b, n, db)
    };
    let mut out = vec![0.0f32; da * db];
    matmul_abt(&at, &bt, n, &mut out);
    out.into_iter().map(f64::from).collect()
}

/// `aᵀ · b` like [`cross_product`], but accumulated in `f64` throughout: slower (no GEMM),
/// and needed where the result is inverted at full condition number (whitening).
pub fn cross_product_f64(a: &[f32], da: usize, b: &[f32], db: usize) -> Vec<f64> {
    let n = a.len() / da;
    debug_assert_eq!(b.len(), n * db);
    let mut out = vec![0.0f64; da * db];
    // Each task owns a band of output rows and sweeps every sample row.
    let band = da.div_ceil(rayon::current_num_threads().max(1) * 2).max(8);
    out.par_chunks_mut(band * db)
        .enumerate()
        .for_each(|(t, out_band)| {
            let first = t * band;
            let rows = out_band.len() / db;
            let mut b64 = vec![0.0f64; db];
            for r in 0..n {
                for (dst, &v) in b64.iter_mut().zip(&b[r * db..(r + 1) * db]) {
                    *dst = v as f64;
                }
                let a_row = &a[r * da + first..r * da + first + rows];
                for (i, &av) in a_row.iter().enumerate() {
                    let av = av as f64;
                    if av == 0.0 {
                        continue;
                    }
                    for (o, &bv) in out_band[i * db..(i + 1) * db].iter_mut().zip(&b64) {
                        *o += av * bv;
                    }
                }
            }
        });
    out
}

// ---------------------------------------------------------------------------------------
// f64 dense algebra
// ---------------------------------------------------------------------------------------

/// `a · b` for `a` (`m × k`) and `b` (`k × n`), row-major `f64`; returns `m × n`.
pub fn matmul_f64(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    debug_assert_eq!(a.len(), m * k);
    debug_assert_eq!(b.len(), k * n);
    let mut c = vec![0.0f64; m * n];
    if n == 0 {
        return c;
    }
    c.par_chunks_mut(n).enumerate().for_each(|(i, c_row)| {
        let a_row = &a[i * k..(i + 1) * k];
        for (p, &aip) in a_row.iter().enumerate() {
            if aip == 0.0 {
                continue;
            }
            for (cv, &bv) in c_row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *cv += aip * bv;
            }
        }
    });
    c
}

/// The transpose of the `rows × cols` `f64` matrix `a`.
pub fn transpose_f64(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = a[r * cols + c];
        }
    }
    t
}

/// Cholesky factorisation in place: on success the lower triangle of `a` (`n × n`,
/// symmetric positive definite) holds `L` with `L Lᵀ = A`; the strict upper triangle is
/// zeroed. A non-positive or non-finite pivot is [`LifecycleError::Numerical`].
pub fn cholesky(a: &mut [f64], n: usize) -> Result<()> {
    debug_assert_eq!(a.len(), n * n);
    for j in 0..n {
        let mut pivot = a[j * n + j];
        for p in 0..j {
            pivot -= a[j * n + p] * a[j * n + p];
        }
        if !(pivot > 0.0 && pivot.is_finite()) {
            return Err(LifecycleError::Numerical(format!(
                "matrix is not positive definite (pivot {pivot:e} at {j} of {n}); \
                 more samples or a larger ridge would make it so"
            )));
        }
        let diag = pivot.sqrt();
        a[j * n + j] = diag;
        for i in (j + 1)..n {
            let mut v = a[i * n + j];
            for p in 0..j {
                v -= a[i * n + p] * a[j * n + p];
            }
            a[i * n + j] = v / diag;
        }
        for c in (j + 1)..n {
            a[j * n + c] = 0.0;
        }
    }
    Ok(())
}

/// Solves `A X = B` in place given the Cholesky factor `l` of `A` (`n × n`, from
/// [`cholesky`]); `b` is `n × ncols` and becomes `X`.
pub fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64], ncols: usize) {
    debug_assert_eq!(b.len(), n * ncols);
    // Forward: L Y = B, one row of B at a time (each an axpy over ncols values).
    for i in 0..n {
        let (done, rest) = b.split_at_mut(i * ncols);
        let row = &mut rest[..ncols];
        for p in 0..i {
            let lip = l[i * n + p];
            if lip != 0.0 {
                for (v, &w) in row.iter_mut().zip(&done[p * ncols..(p + 1) * ncols]) {
                    *v -= lip * w;
                }
            }
        }
        let inv = 1.0 / l[i * n + i];
        row.iter_mut().for_each(|v| *v *= inv);
    }
    // Backward: Lᵀ X = Y.
    for i in (0..n).rev() {
        let (head, done) = b.split_at_mut((i + 1) * ncols);
        let row = &mut head[i * ncols..];
        for p in (i + 1)..n {
            let lpi = l[p * n + i];
            if lpi != 0.0 {
                let other = &done[(p - i - 1) * ncols..(p - i) * ncols];
                for (v, &w) in row.iter_mut().zip(other) {
                    *v -= lpi * w;
                }
            }
        }
        let inv = 1.0 / l[i * n + i];
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Eigendecomposition of a symmetric matrix: `A = Σ_k values[k] · v_k v_kᵀ`.
#[derive(Debug, Clone)]
pub struct SymmetricEigen {
    /// Eigenvalues, largest first.
    pub values: Vec<f64>,
    /// Unit eigenvectors as rows (`n × n`): row `k` belongs to `values[k]`.
    pub vectors: Vec<f64>,
}

/// Eigendecomposition of the symmetric `n × n` matrix `a` (only symmetric input is
/// meaningful): Householder tridiagonalisation then implicit QL with Wilkinson shifts (the
/// EISPACK `tred2`/`tql2` pair, as in JAMA). Non-convergence or non-finite input is
/// [`LifecycleError::Numerical`].
pub fn symmetric_eigen(a: &[f64], n: usize) -> Result<SymmetricEigen> {
    debug_assert_eq!(a.len(), n * n);
    if a.iter().any(|v| !v.is_finite()) {
        return Err(LifecycleError::Numerical(
            "eigendecomposition of a matrix with non-finite entries".into(),
        ));
    }
    if n == 0 {
        return Ok(SymmetricEigen {
            values: Vec::new(),
            vectors: Vec::new(),
        });
    }
    let mut v = a.to_vec();
    let mut d = vec![0.0f64; n];
    let mut e = vec![0.0f64; n];
    tred2(&mut v, &mut d, &mut e, n);
    // tql2 rotates pairs of columns of V; with V transposed they are contiguous rows.
    let mut vt = transpose_f64(&v, n, n);
    tql2(&mut vt, &mut d, &mut e, n)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[j].total_cmp(&d[i]));
    let values = order.iter().map(|&i| d[i]).collect();
    let mut vectors = Vec::with_capacity(n * n);
    for &i in &order {
        vectors.extend_from_slice(&vt[i * n..(i + 1) * n]);
    }
    Ok(SymmetricEigen { values, vectors })
}

/// Householder reduction of the symmetric matrix `v` to tridiagonal form (diagonal `d`,
/// sub-diagonal `e`), accumulating the orthogonal transform in `v`.
fn tred2(v: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    let at = |r: usize, c: usize| r * n + c;
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
    }
    for i in (1..n).rev() {
        let mut scale = 0.0;
        let mut h = 0.0;
        for &dk in d.iter().take(i) {
            scale += dk.abs();
        }
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
                v[at(j, i)] = 0.0;
            }
        } else {
            for dk in d.iter_mut().take(i) {
                *dk /= scale;
                h += *dk * *dk;
            }
            let mut f = d[i - 1];
            let mut g = h.sqrt();
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].fill(0.0);
            for j in 0..i {
                f = d[j];
                v[at(j, i)] = f;
                g = e[j] + v[at(j, j)] * f;
                for k in (j + 1)..i {
                    g += v[at(k, j)] * d[k];
                    e[k] += v[at(k, j)] * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                f = d[j];
                g = e[j];
                for k in j..i {
                    v[at(k, j)] -= f * e[k] + g * d[k];
                }
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
            }
        }
        d[i] = h;
    }
    for i in 0..(n - 1) {
        v[at(n - 1, i)] = v[at(i, i)];
        v[at(i, i)] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[at(k, i + 1)] / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[at(k, i + 1)] * v[at(k, j)];
                }
                for k in 0..=i {
                    v[at(k, j)] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[at(k, i + 1)] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
        v[at(n - 1, j)] = 0.0;
    }
    v[at(n - 1, n - 1)] = 1.0;
    e[0] = 0.0;
}

/// Most QL iterations spent on one eigenvalue before giving up (30 is the classic bound).
const QL_MAX_ITERATIONS: usize = 60;

/// Implicit QL on the tridiagonal (`d`, `e`), rotating the rows of `vt` (the transposed
/// eigenvector matrix). Leaves the eigenvalues in `d`, unsorted.
fn tql2(vt: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) -> Result<()> {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut f = 0.0f64;
    let mut tst1 = 0.0f64;
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n {
            if e[m].abs() <= eps * tst1 {
                break;
            }
            m += 1;
        }
        if m == n {
            m = n - 1;
        }
        if m > l {
            let mut iterations = 0;
            loop {
                iterations += 1;
                if iterations > QL_MAX_ITERATIONS {
                    return Err(LifecycleError::Numerical(format!(
                        "symmetric eigendecomposition did not converge (eigenvalue {l} of {n})"
                    )));
                }
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in d.iter_mut().skip(l + 2) {
                    *di -= h;
                }
                f += h;
                p = d[m];
                let mut c = 1.0;
                let mut c2 = c;
                let mut c3 = c;
                let el1 = e[l + 1];
                let mut s = 0.0;
                let mut s2 = 0.0;
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    let (lo, hi) = vt.split_at_mut((i + 1) * n);
                    let row_i = &mut lo[i * n..];
                    let row_next = &mut hi[..n];
                    for (a, b) in row_i.iter_mut().zip(row_next.iter_mut()) {
                        let old_next = *b;
                        *b = s * *a + c * old_next;
                        *a = c * *a - s * old_next;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if !p.is_finite() {
                    return Err(LifecycleError::Numerical(
                        "symmetric eigendecomposition produced a non-finite value".into(),
                    ));
                }
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
    Ok(())
}

/// Thin singular value decomposition `M = U diag(s) Vᵀ` of a `rows × cols` matrix.
#[derive(Debug, Clone)]
pub struct ThinSvd {
    /// `rows × k` with orthonormal columns (`k = min(rows, cols)`).
    pub u: Vec<f64>,
    /// `k` singular values, largest first.
    pub s: Vec<f64>,
    /// `cols × k` with orthonormal columns.
    pub v: Vec<f64>,
}

/// Thin SVD of the `rows × cols` matrix `m` (row-major), through the eigendecomposition of
/// the smaller Gram matrix. Directions with a zero singular value get arbitrary orthonormal
/// completions, so `U` and `V` always have orthonormal columns.
///
/// Squaring the matrix halves the digits of the smallest singular values; for the uses
/// here (Procrustes rotations of well-sampled data) the error stays far below `1e-6`.
pub fn thin_svd(m: &[f64], rows: usize, cols: usize) -> Result<ThinSvd> {
    debug_assert_eq!(m.len(), rows * cols);
    if rows < cols {
        let flipped = thin_svd(&transpose_f64(m, rows, cols), cols, rows)?;
        return Ok(ThinSvd {
            u: flipped.v,
            s: flipped.s,
            v: flipped.u,
        });
    }
    let k = cols;
    let mt = transpose_f64(m, rows, cols);
    let gram = matmul_f64(&mt, m, cols, rows, cols);
    let eigen = symmetric_eigen(&gram, cols)?;
    let s: Vec<f64> = eigen.values.iter().map(|&l| l.max(0.0).sqrt()).collect();
    // V: column j is eigenvector j.
    let v = transpose_f64(&eigen.vectors, k, cols);
    let mut u = matmul_f64(m, &v, rows, cols, k);
    let tiny = s.first().copied().unwrap_or(0.0) * 1e-12;
    for j in 0..k {
        let scale = if s[j] > tiny { 1.0 / s[j] } else { 0.0 };
        for r in 0..rows {
            u[r * k + j] *= scale;
        }
    }
    orthonormalize_columns(&mut u, rows, k);
    Ok(ThinSvd { u, s, v })
}

/// Makes the columns of `a` (`rows × cols`, `cols ≤ rows`) orthonormal by modified
/// Gram-Schmidt, twice over; a column that vanishes (zero or dependent) is replaced by the
/// first standard basis vector independent of the previous columns.
pub fn orthonormalize_columns(a: &mut [f64], rows: usize, cols: usize) {
    debug_assert!(cols <= rows);
    let mut column = vec![0.0f64; rows];
    let mut next_basis = 0usize;
    for j in 0..cols {
        for (r, c) in column.iter_mut().enumerate() {
            *c = a[r * cols + j];
        }
        let original = column.iter().map(|x| x * x).sum::<f64>().sqrt();
        let mut norm = project_out(a, rows, cols, j, &mut column);
        while norm <= 1e-10 * original.max(1.0) && next_basis < rows {
            column.fill(0.0);
            column[next_basis] = 1.0;
            next_basis += 1;
            norm = project_out(a, rows, cols, j, &mut column);
        }
        let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        for (r, &c) in column.iter().enumerate() {
            a[r * cols + j] = c * inv;
        }
    }
}

/// Removes from `column` its components along the first `j` columns of `a` (two passes),
/// returning the remaining norm.
fn project_out(a: &[f64], rows: usize, cols: usize, j: usize, column: &mut [f64]) -> f64 {
    for _ in 0..2 {
        for q in 0..j {
            let mut dot = 0.0;
            for r in 0..rows {
                dot += a[r * cols + q] * column[r];
            }
            for r in 0..rows {
                column[r] -= dot * a[r * cols + q];
            }
        }
    }
    column.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
    }

    #[test]
    fn eigen_reconstructs_symmetric_matrix() {
        let n = 40;
        let r = random(n * n, 1);
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = r[i * n + j] + r[j * n + i];
            }
        }
        let eig = symmetric_eigen(&a, n).unwrap();
        assert!(eig.values.windows(2).all(|w| w[0] >= w[1]));
        for k in 0..n {
            let v = &eig.vectors[k * n..(k + 1) * n];
            for i in 0..n {
                let av: f64 = (0..n).map(|j| a[i * n + j] * v[j]).sum();
                assert!((av - eig.values[k] * v[i]).abs() < 1e-9, "A v != λ v");
            }
        }
    }

    #[test]
    fn cholesky_solves_and_rejects_indefinite() {
        let n = 30;
        let r = random(n * n, 2);
        let mut a = matmul_f64(&transpose_f64(&r, n, n), &r, n, n, n);
        for i in 0..n {
            a[i * n + i] += 1.0;
        }
        let x_true = random(n * 2, 3);
        let mut b = matmul_f64(&a, &x_true, n, n, 2);
        let mut l = a.clone();
        cholesky(&mut l, n).unwrap();
        cholesky_solve(&l, n, &mut b, 2);
        for (x, t) in b.iter().zip(&x_true) {
            assert!((x - t).abs() < 1e-8);
        }
        let mut bad = vec![1.0, 2.0, 2.0, 1.0];
        assert!(matches!(
            cholesky(&mut bad, 2),
            Err(LifecycleError::Numerical(_))
        ));
    }

    #[test]
    fn thin_svd_reconstructs_both_shapes() {
        for (rows, cols) in [(12, 7), (7, 12), (9, 9)] {
            let m = random(rows * cols, 4);
            let svd = thin_svd(&m, rows, cols).unwrap();
            let k = rows.min(cols);
            for r in 0..rows {
                for c in 0..cols {
                    let v: f64 = (0..k)
                        .map(|j| svd.u[r * k + j] * svd.s[j] * svd.v[c * k + j])
                        .sum();
                    assert!((v - m[r * cols + c]).abs() < 1e-8);
                }
            }
        }
    }

    #[test]
    fn matmul_abt_matches_naive() {
        let (m, n, k) = (300, 50, 70);
        let a: Vec<f32> = random(m * k, 5).iter().map(|&v| v as f32).collect();
        let b: Vec<f32> = random(n * k, 6).iter().map(|&v| v as f32).collect();
        let mut out = vec![0.0; m * n];
        matmul_abt(&a, &b, k, &mut out);
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|p| a[i * k + p] * b[j * k + p]).sum();
                assert!((out[i * n + j] - want).abs() < 1e-4);
            }
        }
    }
}

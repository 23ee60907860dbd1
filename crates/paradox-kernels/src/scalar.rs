//! Portable kernels: the fallback on CPUs without a SIMD level, and the baseline the SIMD
//! levels are benchmarked against.
//!
//! No explicit SIMD, but written so the compiler can vectorise it for the baseline target
//! (eight independent partial sums; a fixed-size `R × 8` micro-kernel tile for the blocked
//! many-vs-many driver in [`crate::gemm`]).

use crate::dispatch::{KernelTable, SimdLevel};
use crate::gemm::{self, DistanceKind, MicroKernel, Output, Tile};

pub(crate) static TABLE: KernelTable = KernelTable {
    level: SimdLevel::Scalar,
    l2_squared,
    dot,
    l2_squared_one_to_many,
    dot_one_to_many,
    l2_squared_gather,
    dot_gather,
    dot_many_to_many,
    l2_squared_many_to_many,
    many_to_many,
};

const LANES: usize = 8;

pub(crate) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Applies `pairwise` to the query and each row; rows that `out` has no slot for (or slots
/// without a full row) are left alone, and an empty query gives 0 for every slot.
pub(crate) fn one_to_many(
    query: &[f32],
    rows: &[f32],
    out: &mut [f32],
    pairwise: fn(&[f32], &[f32]) -> f32,
) {
    let dim = query.len();
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(dim)) {
        *o = pairwise(query, row);
    }
}

/// Applies `pairwise` to the query and row `rows[i]` of `data` for each slot of `out` (up
/// to `rows.len()`); an empty query gives 0. Panics if a row lies past `data`.
pub(crate) fn gather(
    query: &[f32],
    data: &[f32],
    rows: &[u32],
    out: &mut [f32],
    pairwise: fn(&[f32], &[f32]) -> f32,
) {
    let dim = query.len();
    for (o, &row) in out.iter_mut().zip(rows) {
        *o = pairwise(query, &data[row as usize * dim..][..dim]);
    }
}

fn l2_squared_gather(query: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    gather(query, data, rows, out, l2_squared)
}

fn dot_gather(query: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    gather(query, data, rows, out, dot)
}

fn l2_squared_one_to_many(query: &[f32], rows: &[f32], out: &mut [f32]) {
    one_to_many(query, rows, out, l2_squared)
}

fn dot_one_to_many(query: &[f32], rows: &[f32], out: &mut [f32]) {
    one_to_many(query, rows, out, dot)
}

fn dot_many_to_many(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    many_to_many(queries, rows, dim, DistanceKind::Dot, Output::Matrix(out))
}

fn l2_squared_many_to_many(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    many_to_many(queries, rows, dim, DistanceKind::L2, Output::Matrix(out))
}

fn many_to_many(queries: &[f32], rows: &[f32], dim: usize, kind: DistanceKind, out: Output<'_>) {
    // SAFETY: the scalar micro-kernel needs no CPU feature beyond the compilation target.
    unsafe { gemm::run::<ScalarMicro>(queries, rows, dim, kind, out) }
}

/// `R × 8` tile, fixed-size arrays the compiler keeps in (vector) registers.
struct ScalarMicro;

const SCALAR_MR: usize = 4;

impl MicroKernel for ScalarMicro {
    const MR: usize = SCALAR_MR;
    const NR: usize = LANES;
    const DOT: fn(&[f32], &[f32]) -> f32 = dot;

    unsafe fn tile(rows: usize, kc: usize, q: *const f32, x: *const f32, tile: &Tile) {
        // SAFETY: the contract of `tile` is forwarded unchanged; `rows <= MR`.
        unsafe {
            match rows {
                4 => scalar_tile::<4>(kc, q, x, tile),
                3 => scalar_tile::<3>(kc, q, x, tile),
                2 => scalar_tile::<2>(kc, q, x, tile),
                _ => scalar_tile::<1>(kc, q, x, tile),
            }
        }
    }
}

/// # Safety
///
/// As [`MicroKernel::tile`] with `rows == R`.
unsafe fn scalar_tile<const R: usize>(kc: usize, q: *const f32, x: *const f32, tile: &Tile) {
    // SAFETY: the caller guarantees `q` holds `kc * R` floats and `x` `kc * LANES`.
    let (q, x) = unsafe {
        (
            std::slice::from_raw_parts(q, kc * R),
            std::slice::from_raw_parts(x, kc * LANES),
        )
    };
    let mut acc = [[0f32; LANES]; R];
    for (qk, xk) in q.chunks_exact(R).zip(x.chunks_exact(LANES)) {
        for i in 0..R {
            for j in 0..LANES {
                acc[i][j] += qk[i] * xk[j];
            }
        }
    }
    for (i, acc_row) in acc.iter().enumerate() {
        // SAFETY: forwarded from the caller: row `i < R` of the tile and its norms exist.
        unsafe { gemm::store_row(tile, i, acc_row) };
    }
}

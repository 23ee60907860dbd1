//! AArch64 NEON kernels (4 `f32` lanes, 32 vector registers).
//!
//! NEON is part of the AArch64 baseline, so this level is chosen at compile time (the
//! module only exists when `target_feature = "neon"`); no runtime detection is needed.
//!
//! # Blocking scheme
//!
//! * **Pairwise**: four independent accumulators over 16 floats per iteration, then
//!   4-float steps, then a scalar tail.
//! * **One-vs-many**: four rows at a time share each query load, one accumulator each.
//! * **Many-vs-many**: the shared blocked driver in [`crate::gemm`] with a `6 × 16`
//!   micro-kernel: 24 accumulators (6 queries × 4 vectors of 4 rows) + 4 row vectors;
//!   per `k` four loads from the packed row panel and 6 by-scalar FMAs per vector.
//!
//! All intrinsic calls sit inside `unsafe` blocks that also dereference pointers, so the
//! code compiles whether or not a given toolchain marks the arithmetic intrinsics safe.

use std::arch::aarch64::*;

use crate::dispatch::{KernelTable, SimdLevel};
use crate::gemm::{self, DistanceKind, MicroKernel, Output, Tile};

/// NEON is baseline on this target: the table is always valid.
pub(crate) static TABLE: KernelTable = KernelTable {
    level: SimdLevel::Neon,
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

fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    pairwise::<true>(a, b)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    pairwise::<false>(a, b)
}

fn l2_squared_one_to_many(query: &[f32], rows: &[f32], out: &mut [f32]) {
    one_to_many::<true>(query, rows, out)
}

fn dot_one_to_many(query: &[f32], rows: &[f32], out: &mut [f32]) {
    one_to_many::<false>(query, rows, out)
}

fn l2_squared_gather(query: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    crate::scalar::gather(query, data, rows, out, l2_squared)
}

fn dot_gather(query: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    crate::scalar::gather(query, data, rows, out, dot)
}

fn dot_many_to_many(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    many_to_many(queries, rows, dim, DistanceKind::Dot, Output::Matrix(out))
}

fn l2_squared_many_to_many(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    many_to_many(queries, rows, dim, DistanceKind::L2, Output::Matrix(out))
}

fn many_to_many(queries: &[f32], rows: &[f32], dim: usize, kind: DistanceKind, out: Output<'_>) {
    // SAFETY: NEON is enabled at compile time for this target.
    unsafe { gemm::run::<NeonMicro>(queries, rows, dim, kind, out) }
}

/// Scalar contribution of one element pair.
#[inline]
fn scalar_step<const L2: bool>(x: f32, y: f32) -> f32 {
    if L2 {
        (x - y) * (x - y)
    } else {
        x * y
    }
}

fn pairwise<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: every vector load reads `i..i + 4 <= n` floats of both slices.
    let mut sum = unsafe {
        let mut acc = [vdupq_n_f32(0.0); 4];
        while i + 16 <= n {
            for (u, acc) in acc.iter_mut().enumerate() {
                let x = vld1q_f32(pa.add(i + 4 * u));
                let y = vld1q_f32(pb.add(i + 4 * u));
                *acc = if L2 {
                    let d = vsubq_f32(x, y);
                    vfmaq_f32(*acc, d, d)
                } else {
                    vfmaq_f32(*acc, x, y)
                };
            }
            i += 16;
        }
        while i + 4 <= n {
            let x = vld1q_f32(pa.add(i));
            let y = vld1q_f32(pb.add(i));
            acc[0] = if L2 {
                let d = vsubq_f32(x, y);
                vfmaq_f32(acc[0], d, d)
            } else {
                vfmaq_f32(acc[0], x, y)
            };
            i += 4;
        }
        vaddvq_f32(vaddq_f32(
            vaddq_f32(acc[0], acc[1]),
            vaddq_f32(acc[2], acc[3]),
        ))
    };
    for (&x, &y) in a[i..n].iter().zip(&b[i..n]) {
        sum += scalar_step::<L2>(x, y);
    }
    sum
}

fn one_to_many<const L2: bool>(query: &[f32], rows: &[f32], out: &mut [f32]) {
    let dim = query.len();
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    let n = out.len().min(rows.len() / dim);
    let full = dim - dim % 4;
    let q = query.as_ptr();
    let mut r = 0;
    while r + 4 <= n {
        let group = &rows[r * dim..(r + 4) * dim];
        let p = group.as_ptr();
        // SAFETY: rows `r..r + 4` are inside `group`; every load reads `k..k + 4 <= full`
        // of the query and of each row.
        let mut sums = unsafe {
            let mut acc = [vdupq_n_f32(0.0); 4];
            let mut k = 0;
            while k < full {
                let qv = vld1q_f32(q.add(k));
                for (j, acc) in acc.iter_mut().enumerate() {
                    let x = vld1q_f32(p.add(j * dim + k));
                    *acc = if L2 {
                        let d = vsubq_f32(x, qv);
                        vfmaq_f32(*acc, d, d)
                    } else {
                        vfmaq_f32(*acc, x, qv)
                    };
                }
                k += 4;
            }
            [
                vaddvq_f32(acc[0]),
                vaddvq_f32(acc[1]),
                vaddvq_f32(acc[2]),
                vaddvq_f32(acc[3]),
            ]
        };
        for (j, sum) in sums.iter_mut().enumerate() {
            let row = &group[j * dim..(j + 1) * dim];
            for (&x, &y) in row[full..].iter().zip(&query[full..]) {
                *sum += scalar_step::<L2>(x, y);
            }
        }
        out[r..r + 4].copy_from_slice(&sums);
        r += 4;
    }
    for (o, row) in out[r..n].iter_mut().zip(rows[r * dim..].chunks_exact(dim)) {
        *o = pairwise::<L2>(query, row);
    }
}

/// The `6 × 16` register-blocked micro-kernel.
struct NeonMicro;

impl MicroKernel for NeonMicro {
    const MR: usize = 6;
    const NR: usize = 16;
    const DOT: fn(&[f32], &[f32]) -> f32 = dot;

    unsafe fn tile(rows: usize, kc: usize, q: *const f32, x: *const f32, tile: &Tile) {
        // SAFETY: the contract of `tile` is forwarded unchanged, with `R == rows`.
        unsafe {
            match rows {
                6 => tile_kernel::<6>(kc, q, x, tile),
                5 => tile_kernel::<5>(kc, q, x, tile),
                4 => tile_kernel::<4>(kc, q, x, tile),
                3 => tile_kernel::<3>(kc, q, x, tile),
                2 => tile_kernel::<2>(kc, q, x, tile),
                _ => tile_kernel::<1>(kc, q, x, tile),
            }
        }
    }
}

/// # Safety
///
/// As [`MicroKernel::tile`] with `rows == R`.
unsafe fn tile_kernel<const R: usize>(kc: usize, q: *const f32, x: *const f32, t: &Tile) {
    let mut sums = [[0f32; 16]; R];
    // SAFETY: per the contract, `q` holds `kc * R` floats and `x` `kc * 16`; the pointers
    // advance by one `k` per iteration and end one past the end; `sums[i]` has 16 floats.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); 4]; R];
        let (mut qk, mut xk) = (q, x);
        for _ in 0..kc {
            let b = [
                vld1q_f32(xk),
                vld1q_f32(xk.add(4)),
                vld1q_f32(xk.add(8)),
                vld1q_f32(xk.add(12)),
            ];
            for (i, acc) in acc.iter_mut().enumerate() {
                let a = *qk.add(i);
                for (acc, &b) in acc.iter_mut().zip(&b) {
                    *acc = vfmaq_n_f32(*acc, b, a);
                }
            }
            qk = qk.add(R);
            xk = xk.add(16);
        }
        for (acc, sums) in acc.iter().zip(sums.iter_mut()) {
            for (j, &v) in acc.iter().enumerate() {
                vst1q_f32(sums.as_mut_ptr().add(4 * j), v);
            }
        }
    }
    for (i, sums) in sums.iter().enumerate() {
        // SAFETY: forwarded from the caller: row `i < R` of the tile and its norms exist.
        unsafe { gemm::store_row(t, i, sums) };
    }
}

//! AVX2 + FMA kernels (8 `f32` lanes, 16 vector registers).
//!
//! # Blocking scheme
//!
//! * **Pairwise**: four independent accumulators over 32 floats per iteration, then
//!   8-float steps, then one `vmaskmov` load for the tail (masked lanes are not accessed).
//! * **One-vs-many**: four rows at a time share each query load; the four sums are reduced
//!   together with three `hadd`s. Prefetch of the next group of rows as in AVX-512.
//! * **Many-vs-many**: the shared blocked driver in [`crate::gemm`] with a `6 × 16`
//!   micro-kernel: 12 accumulators (6 queries × 2 vectors of 8 rows) + 2 row vectors + 1
//!   broadcast = 15 of 16 registers; per `k` two aligned loads and 6 broadcasts feed 12 FMAs.

use std::arch::x86_64::*;

use super::{hsum256, hsum256x4};
use crate::dispatch::{KernelTable, SimdLevel};
use crate::gemm::{self, DistanceKind, Finish, MicroKernel, Output, Tile};

/// The AVX2 table, if this CPU has AVX2 and FMA.
pub(crate) fn table() -> Option<&'static KernelTable> {
    let supported = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    supported.then_some(&TABLE)
}

/// Only reachable through [`table`], which checks the CPU first: that is what makes the
/// safe wrappers below sound.
static TABLE: KernelTable = KernelTable {
    level: SimdLevel::Avx2,
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

/// Prefetch the group of four rows after the current one while streaming.
const PREFETCH: bool = true;

fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: only reachable through `TABLE`, handed out after detecting the features.
    unsafe { pairwise::<true>(a, b) }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: only reachable through `TABLE`, handed out after detecting the features.
    unsafe { pairwise::<false>(a, b) }
}

fn l2_squared_one_to_many(query: &[f32], rows: &[f32], out: &mut [f32]) {
    // SAFETY: only reachable through `TABLE`, handed out after detecting the features.
    unsafe { one_to_many::<true>(query, rows, out) }
}

fn dot_one_to_many(query: &[f32], rows: &[f32], out: &mut [f32]) {
    // SAFETY: only reachable through `TABLE`, handed out after detecting the features.
    unsafe { one_to_many::<false>(query, rows, out) }
}

fn dot_many_to_many(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    many_to_many(queries, rows, dim, DistanceKind::Dot, Output::Matrix(out))
}

fn l2_squared_many_to_many(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    many_to_many(queries, rows, dim, DistanceKind::L2, Output::Matrix(out))
}

fn many_to_many(queries: &[f32], rows: &[f32], dim: usize, kind: DistanceKind, out: Output<'_>) {
    // SAFETY: only reachable through `TABLE`, handed out after detecting the features.
    unsafe { gemm::run::<Avx2Micro>(queries, rows, dim, kind, out) }
}

/// `vmaskmov` mask of the first `len` lanes (`len` in `0..=8`).
#[inline]
#[target_feature(enable = "avx2")]
fn lanes(len: usize) -> __m256i {
    const ONES_THEN_ZEROS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    let start = 8 - len.min(8);
    // SAFETY: `start + 8 <= 16`: the load reads inside the array.
    unsafe { _mm256_loadu_si256(ONES_THEN_ZEROS[start..].as_ptr().cast()) }
}

/// One accumulation step: `acc + (a − b)²` for L2, `acc + a·b` for dot.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn step<const L2: bool>(a: __m256, b: __m256, acc: __m256) -> __m256 {
    if L2 {
        let d = _mm256_sub_ps(a, b);
        _mm256_fmadd_ps(d, d, acc)
    } else {
        _mm256_fmadd_ps(a, b, acc)
    }
}

/// # Safety
///
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn pairwise<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: full loads read `i..i + 8 <= n` of both slices; the tail load is masked to
    // the lanes below `n` (masked-off lanes are not accessed).
    unsafe {
        while i + 32 <= n {
            for (u, acc) in acc.iter_mut().enumerate() {
                let off = i + 8 * u;
                let (x, y) = (_mm256_loadu_ps(pa.add(off)), _mm256_loadu_ps(pb.add(off)));
                *acc = step::<L2>(x, y, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            let (x, y) = (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            acc[0] = step::<L2>(x, y, acc[0]);
            i += 8;
        }
        if i < n {
            let m = lanes(n - i);
            let (x, y) = (
                _mm256_maskload_ps(pa.add(i), m),
                _mm256_maskload_ps(pb.add(i), m),
            );
            acc[1] = step::<L2>(x, y, acc[1]);
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    hsum256(sum)
}

/// Distances from the query at `q` to four rows at `rows`, each `dim` floats long
/// (`full = dim − dim % 8`, `tail` masks the rest), prefetching the matching line of each
/// row at `ahead` as it goes.
///
/// # Safety
///
/// The CPU supports AVX2 and FMA; `q` and every `rows[j]` point to `dim` readable floats.
/// `ahead` may be anything: prefetches never fault.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn group4<const L2: bool>(
    q: *const f32,
    rows: [*const f32; 4],
    ahead: [*const f32; 4],
    full: usize,
    tail: Option<__m256i>,
) -> __m128 {
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut k = 0;
    // SAFETY: every load reads `k..k + 8 <= full <= dim` of the query and of each row, or
    // the tail lanes below `dim` under a mask (the caller's contract); prefetches use
    // wrapping arithmetic.
    unsafe {
        while k < full {
            let qv = _mm256_loadu_ps(q.add(k));
            for (j, acc) in acc.iter_mut().enumerate() {
                // One prefetch per 64-byte line: every other 8-float step.
                if PREFETCH && k % 16 == 0 {
                    _mm_prefetch::<_MM_HINT_T0>(ahead[j].wrapping_add(k).cast::<i8>());
                }
                *acc = step::<L2>(_mm256_loadu_ps(rows[j].add(k)), qv, *acc);
            }
            k += 8;
        }
        if let Some(tail) = tail {
            let qv = _mm256_maskload_ps(q.add(full), tail);
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_maskload_ps(rows[j].add(full), tail);
                *acc = step::<L2>(x, qv, *acc);
            }
        }
    }
    hsum256x4(acc[0], acc[1], acc[2], acc[3])
}

/// # Safety
///
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn one_to_many<const L2: bool>(query: &[f32], rows: &[f32], out: &mut [f32]) {
    let dim = query.len();
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    let n = out.len().min(rows.len() / dim);
    let full = dim - dim % 8;
    let tail = (!dim.is_multiple_of(8)).then(|| lanes(dim % 8));
    let mut r = 0;
    while r + 4 <= n {
        let p = rows[r * dim..(r + 4) * dim].as_ptr();
        // SAFETY: rows `r..r + 4` are inside `rows` (`r + 4 <= n <= rows.len() / dim`),
        // each `dim` floats from `p + j·dim`.
        let sums = unsafe {
            let group = [p, p.add(dim), p.add(2 * dim), p.add(3 * dim)];
            let ahead = group.map(|row| row.wrapping_add(4 * dim));
            group4::<L2>(query.as_ptr(), group, ahead, full, tail)
        };
        // SAFETY: `out[r..r + 4]` exists because `r + 4 <= n <= out.len()`.
        unsafe { _mm_storeu_ps(out[r..r + 4].as_mut_ptr(), sums) };
        r += 4;
    }
    for (o, row) in out[r..n].iter_mut().zip(rows[r * dim..].chunks_exact(dim)) {
        // SAFETY: same features as this function.
        *o = unsafe { pairwise::<L2>(query, row) };
    }
}

/// # Safety
///
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gather<const L2: bool>(query: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    let dim = query.len();
    let n = out.len().min(rows.len());
    if dim == 0 {
        out[..n].fill(0.0);
        return;
    }
    let full = dim - dim % 8;
    let tail = (!dim.is_multiple_of(8)).then(|| lanes(dim % 8));
    let row = |i: usize| data[rows[i] as usize * dim..][..dim].as_ptr();
    let ahead = |i: usize| {
        rows.get(i + 8).map_or(std::ptr::null(), |&r| {
            data.as_ptr().wrapping_add(r as usize * dim)
        })
    };
    let mut r = 0;
    while r + 4 <= n {
        let group = [row(r), row(r + 1), row(r + 2), row(r + 3)];
        let next = [ahead(r), ahead(r + 1), ahead(r + 2), ahead(r + 3)];
        // SAFETY: each pointer in `group` starts a bounds-checked `dim`-float row.
        let sums = unsafe { group4::<L2>(query.as_ptr(), group, next, full, tail) };
        // SAFETY: `out[r..r + 4]` exists because `r + 4 <= n <= out.len()`.
        unsafe { _mm_storeu_ps(out[r..r + 4].as_mut_ptr(), sums) };
        r += 4;
    }
    for i in r..n {
        // SAFETY: same features as this function.
        out[i] = unsafe { pairwise::<L2>(query, &data[rows[i] as usize * dim..][..dim]) };
    }
}

fn l2_squared_gather(query: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    // SAFETY: only reachable through `TABLE`, handed out after detecting the features.
    unsafe { gather::<true>(query, data, rows, out) }
}

fn dot_gather(query: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    // SAFETY: only reachable through `TABLE`, handed out after detecting the features.
    unsafe { gather::<false>(query, data, rows, out) }
}

/// The `6 × 16` register-blocked micro-kernel.
struct Avx2Micro;

impl MicroKernel for Avx2Micro {
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

    unsafe fn pack_panel(src: &[f32], dim: usize, dst: &mut [f32]) {
        // SAFETY: the contract of `pack_panel` is forwarded unchanged.
        unsafe { pack_panel(src, dim, dst) }
    }
}

/// Packs a full panel (16 rows) with 8 × 8 in-register transposes, 8 dimensions at a
/// time; leftover dimensions and short panels go through the portable loop.
///
/// # Safety
///
/// As [`MicroKernel::pack_panel`] with `NR = 16`, and the CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn pack_panel(src: &[f32], dim: usize, dst: &mut [f32]) {
    const NR: usize = 16;
    let full = if src.len() == NR * dim {
        dim - dim % 8
    } else {
        0
    };
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for k0 in (0..full).step_by(8) {
        for half in 0..2 {
            // SAFETY: rows `8 * half..8 * half + 8 < 16` and dimensions `k0..k0 + 8 <= dim`
            // are inside `src`; stores go to lines `k0..k0 + 8` of `dst` (`dim × 16`) at
            // offset `8 * half`: 32-byte aligned as `dst` is 64-byte aligned.
            unsafe {
                let mut block = [_mm256_setzero_ps(); 8];
                for (r, v) in block.iter_mut().enumerate() {
                    *v = _mm256_loadu_ps(s.add((8 * half + r) * dim + k0));
                }
                for (k, v) in transpose8(block).into_iter().enumerate() {
                    _mm256_store_ps(d.add((k0 + k) * NR + 8 * half), v);
                }
            }
        }
    }
    crate::gemm::pack_panel_columns(src, dim, NR, full, dst);
}

/// Transposes an 8 × 8 block held as 8 row vectors (24 shuffles).
#[inline]
#[target_feature(enable = "avx2")]
fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    // Within each 128-bit lane `l`: `u[4g + c]` = column `4l + c` of rows `4g..4g + 4`.
    let mut u = [_mm256_setzero_ps(); 8];
    for g in 0..2 {
        let (a, b, c, d) = (r[4 * g], r[4 * g + 1], r[4 * g + 2], r[4 * g + 3]);
        let (ab_lo, ab_hi) = (_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
        let (cd_lo, cd_hi) = (_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
        u[4 * g] = _mm256_shuffle_ps::<0x44>(ab_lo, cd_lo);
        u[4 * g + 1] = _mm256_shuffle_ps::<0xEE>(ab_lo, cd_lo);
        u[4 * g + 2] = _mm256_shuffle_ps::<0x44>(ab_hi, cd_hi);
        u[4 * g + 3] = _mm256_shuffle_ps::<0xEE>(ab_hi, cd_hi);
    }
    let mut out = [_mm256_setzero_ps(); 8];
    for c in 0..4 {
        out[c] = _mm256_permute2f128_ps::<0x20>(u[c], u[4 + c]);
        out[4 + c] = _mm256_permute2f128_ps::<0x31>(u[c], u[4 + c]);
    }
    out
}

/// # Safety
///
/// As [`MicroKernel::tile`] with `rows == R`, and the CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_kernel<const R: usize>(kc: usize, q: *const f32, x: *const f32, t: &Tile) {
    let mut lo = [_mm256_setzero_ps(); R];
    let mut hi = [_mm256_setzero_ps(); R];
    // SAFETY: per the contract, `q` holds `kc * R` floats and `x` `kc * 16` floats, 64-byte
    // aligned; the pointers advance by one `k` per iteration and end one past the end.
    unsafe {
        let (mut qk, mut xk) = (q, x);
        for _ in 0..kc {
            let (b0, b1) = (_mm256_load_ps(xk), _mm256_load_ps(xk.add(8)));
            for i in 0..R {
                let a = _mm256_set1_ps(*qk.add(i));
                lo[i] = _mm256_fmadd_ps(a, b0, lo[i]);
                hi[i] = _mm256_fmadd_ps(a, b1, hi[i]);
            }
            qk = qk.add(R);
            xk = xk.add(16);
        }
    }
    let (m0, m1) = (lanes(t.cols), lanes(t.cols.saturating_sub(8)));
    let minus_two = _mm256_set1_ps(-2.0);
    // SAFETY: per the contract, row `i < R` of the tile has `cols` writable floats at
    // `c + i * ldc`; loads and stores are masked to those lanes (the upper half's address
    // is formed with wrapping arithmetic since it may lie past the tile when `cols <= 8`);
    // with `Finish::L2` there are `R` query norms and 16 row norms.
    unsafe {
        let x_norms = match t.finish {
            Finish::L2 { x_norms, .. } => {
                [_mm256_loadu_ps(x_norms), _mm256_loadu_ps(x_norms.add(8))]
            }
            _ => [_mm256_setzero_ps(); 2],
        };
        for i in 0..R {
            let c = t.c.add(i * t.ldc);
            let c_hi = c.wrapping_add(8);
            let (mut v0, mut v1) = (lo[i], hi[i]);
            if t.accumulate {
                v0 = _mm256_add_ps(v0, _mm256_maskload_ps(c, m0));
                v1 = _mm256_add_ps(v1, _mm256_maskload_ps(c_hi, m1));
            }
            match t.finish {
                Finish::Raw => {}
                Finish::Negate => {
                    v0 = _mm256_mul_ps(v0, _mm256_set1_ps(-1.0));
                    v1 = _mm256_mul_ps(v1, _mm256_set1_ps(-1.0));
                }
                Finish::L2 { q_norms, .. } => {
                    let qn = _mm256_set1_ps(*q_norms.add(i));
                    let zero = _mm256_setzero_ps();
                    let d0 = _mm256_fmadd_ps(minus_two, v0, _mm256_add_ps(qn, x_norms[0]));
                    let d1 = _mm256_fmadd_ps(minus_two, v1, _mm256_add_ps(qn, x_norms[1]));
                    v0 = _mm256_max_ps(d0, zero);
                    v1 = _mm256_max_ps(d1, zero);
                }
            }
            _mm256_maskstore_ps(c, m0, v0);
            _mm256_maskstore_ps(c_hi, m1, v1);
        }
    }
}

//! AVX-512 kernels (16 `f32` lanes, 32 vector registers).
//!
//! # Blocking scheme
//!
//! * **Pairwise**: four independent accumulators over 64 floats per iteration (hides the
//!   4-cycle FMA latency), then 16-float steps, then one masked load for the tail: any
//!   length, any alignment, never a read past the slices.
//! * **One-vs-many**: four rows at a time share each query load (5 loads per 4 FMAs); the
//!   four sums are reduced together (`hsum256x4`). The loop is memory-bound, so the one
//!   extra lever is software prefetch of the next group of rows ([`PREFETCH`]), kept only
//!   because it measured faster.
//! * **Many-vs-many**: the shared blocked driver in [`crate::gemm`] with a `14 × 32`
//!   micro-kernel: 28 accumulators (14 queries × 2 vectors of 16 rows) + 2 row vectors = 30
//!   of 32 registers; per `k` two aligned loads from the packed row panel (L2) and 14
//!   broadcasts from the packed query panel (L1) feed 28 FMAs.

use std::arch::x86_64::*;

use super::hsum256x4;
use crate::dispatch::{KernelTable, SimdLevel};
use crate::gemm::{self, DistanceKind, Finish, MicroKernel, Output, Tile};

/// The AVX-512 table, if this CPU has AVX-512F, AVX2 and FMA.
pub(crate) fn table() -> Option<&'static KernelTable> {
    let supported = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma");
    supported.then_some(&TABLE)
}

/// Only reachable through [`table`], which checks the CPU first: that is what makes the
/// safe wrappers below sound.
static TABLE: KernelTable = KernelTable {
    level: SimdLevel::Avx512,
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
    unsafe { gemm::run::<Avx512Micro>(queries, rows, dim, kind, out) }
}

/// Mask of the first `len` lanes (`len` in `0..=16`).
#[inline]
fn lanes(len: usize) -> __mmask16 {
    ((1u32 << len.min(16)) - 1) as __mmask16
}

/// One accumulation step: `acc + (a − b)²` for L2, `acc + a·b` for dot.
#[inline]
#[target_feature(enable = "avx512f")]
fn step<const L2: bool>(a: __m512, b: __m512, acc: __m512) -> __m512 {
    if L2 {
        let d = _mm512_sub_ps(a, b);
        _mm512_fmadd_ps(d, d, acc)
    } else {
        _mm512_fmadd_ps(a, b, acc)
    }
}

/// Sums the 16 lanes of four vectors: `[Σa, Σb, Σc, Σd]`.
#[inline]
#[target_feature(enable = "avx512f,avx2")]
fn hsum512x4(a: __m512, b: __m512, c: __m512, d: __m512) -> __m128 {
    hsum256x4(fold256(a), fold256(b), fold256(c), fold256(d))
}

/// Adds the upper 256 bits of `v` onto the lower.
#[inline]
#[target_feature(enable = "avx512f")]
fn fold256(v: __m512) -> __m256 {
    let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    _mm256_add_ps(_mm512_castps512_ps256(v), high)
}

/// # Safety
///
/// The CPU supports AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn pairwise<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: full loads read `i..i + 16 <= n` of both slices; the tail load is masked to
    // the lanes below `n` (masked-off lanes are not accessed).
    unsafe {
        while i + 64 <= n {
            for (u, acc) in acc.iter_mut().enumerate() {
                let off = i + 16 * u;
                let (x, y) = (_mm512_loadu_ps(pa.add(off)), _mm512_loadu_ps(pb.add(off)));
                *acc = step::<L2>(x, y, *acc);
            }
            i += 64;
        }
        while i + 16 <= n {
            let (x, y) = (_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
            acc[0] = step::<L2>(x, y, acc[0]);
            i += 16;
        }
        if i < n {
            let m = lanes(n - i);
            let (x, y) = (
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
            );
            acc[1] = step::<L2>(x, y, acc[1]);
        }
    }
    let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(sum)
}

/// Distances from the query at `q` to four rows at `rows`, each `dim` floats long
/// (`full = dim − dim % 16`, `tail` masks the rest), prefetching the matching line of each
/// row at `ahead` as it goes.
///
/// # Safety
///
/// The CPU supports AVX-512F, AVX2 and FMA; `q` and every `rows[j]` point to `dim`
/// readable floats. `ahead` may be anything: prefetches never fault.
#[inline]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn group4<const L2: bool>(
    q: *const f32,
    rows: [*const f32; 4],
    ahead: [*const f32; 4],
    full: usize,
    tail: __mmask16,
) -> __m128 {
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut k = 0;
    // SAFETY: every load reads `k..k + 16 <= full <= dim` of the query and of each row, or
    // the tail lanes below `dim` under a mask (the caller's contract); prefetches use
    // wrapping arithmetic.
    unsafe {
        while k < full {
            let qv = _mm512_loadu_ps(q.add(k));
            for (j, acc) in acc.iter_mut().enumerate() {
                if PREFETCH {
                    _mm_prefetch::<_MM_HINT_T0>(ahead[j].wrapping_add(k).cast::<i8>());
                }
                *acc = step::<L2>(_mm512_loadu_ps(rows[j].add(k)), qv, *acc);
            }
            k += 16;
        }
        if tail != 0 {
            let qv = _mm512_maskz_loadu_ps(tail, q.add(full));
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_maskz_loadu_ps(tail, rows[j].add(full));
                *acc = step::<L2>(x, qv, *acc);
            }
        }
    }
    hsum512x4(acc[0], acc[1], acc[2], acc[3])
}

/// # Safety
///
/// The CPU supports AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn one_to_many<const L2: bool>(query: &[f32], rows: &[f32], out: &mut [f32]) {
    let dim = query.len();
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    let n = out.len().min(rows.len() / dim);
    let full = dim - dim % 16;
    let tail = lanes(dim % 16);
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
/// The CPU supports AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gather<const L2: bool>(query: &[f32], data: &[f32], rows: &[u32], out: &mut [f32]) {
    let dim = query.len();
    let n = out.len().min(rows.len());
    if dim == 0 {
        out[..n].fill(0.0);
        return;
    }
    let full = dim - dim % 16;
    let tail = lanes(dim % 16);
    // Bounds-checked slice of one row: a row past the data panics here, before any load.
    let row = |i: usize| data[rows[i] as usize * dim..][..dim].as_ptr();
    // Scattered rows miss the caches and often the TLB: prefetch two groups ahead.
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

/// The `14 × 32` register-blocked micro-kernel.
struct Avx512Micro;

impl MicroKernel for Avx512Micro {
    const MR: usize = 14;
    const NR: usize = 32;
    const DOT: fn(&[f32], &[f32]) -> f32 = dot;

    unsafe fn tile(rows: usize, kc: usize, q: *const f32, x: *const f32, tile: &Tile) {
        // SAFETY: the contract of `tile` is forwarded unchanged, with `R == rows`.
        unsafe {
            match rows {
                14 => tile_kernel::<14>(kc, q, x, tile),
                13 => tile_kernel::<13>(kc, q, x, tile),
                12 => tile_kernel::<12>(kc, q, x, tile),
                11 => tile_kernel::<11>(kc, q, x, tile),
                10 => tile_kernel::<10>(kc, q, x, tile),
                9 => tile_kernel::<9>(kc, q, x, tile),
                8 => tile_kernel::<8>(kc, q, x, tile),
                7 => tile_kernel::<7>(kc, q, x, tile),
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

/// Packs a full panel (32 rows) with 16 × 16 in-register transposes, 16 dimensions at a
/// time; leftover dimensions and short panels go through the portable loop.
///
/// # Safety
///
/// As [`MicroKernel::pack_panel`] with `NR = 32`, and the CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn pack_panel(src: &[f32], dim: usize, dst: &mut [f32]) {
    const NR: usize = 32;
    let full = if src.len() == NR * dim {
        dim - dim % 16
    } else {
        0
    };
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for k0 in (0..full).step_by(16) {
        for half in 0..2 {
            // SAFETY: rows `16 * half..16 * half + 16 < 32` and dimensions `k0..k0 + 16 <=
            // dim` are inside `src`; stores go to lines `k0..k0 + 16` of `dst` (`dim × 32`)
            // at offset `16 * half`: 64-byte aligned as `dst` is.
            unsafe {
                let mut block = [_mm512_setzero_ps(); 16];
                for (r, v) in block.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(s.add((16 * half + r) * dim + k0));
                }
                for (k, v) in transpose16(block).into_iter().enumerate() {
                    _mm512_store_ps(d.add((k0 + k) * NR + 16 * half), v);
                }
            }
        }
    }
    crate::gemm::pack_panel_columns(src, dim, NR, full, dst);
}

/// Transposes a 16 × 16 block held as 16 row vectors (64 shuffles).
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    // Within each 128-bit lane `l`: `u[4g + c]` = column `4l + c` of rows `4g..4g + 4`.
    let mut u = [_mm512_setzero_ps(); 16];
    for g in 0..4 {
        let (a, b, c, d) = (r[4 * g], r[4 * g + 1], r[4 * g + 2], r[4 * g + 3]);
        let (ab_lo, ab_hi) = (_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
        let (cd_lo, cd_hi) = (_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
        u[4 * g] = _mm512_shuffle_ps::<0x44>(ab_lo, cd_lo);
        u[4 * g + 1] = _mm512_shuffle_ps::<0xEE>(ab_lo, cd_lo);
        u[4 * g + 2] = _mm512_shuffle_ps::<0x44>(ab_hi, cd_hi);
        u[4 * g + 3] = _mm512_shuffle_ps::<0xEE>(ab_hi, cd_hi);
    }
    // Gather lane `l` of `u[c]`, `u[4 + c]`, `u[8 + c]`, `u[12 + c]` into column `4l + c`.
    let mut out = [_mm512_setzero_ps(); 16];
    for c in 0..4 {
        let v0 = _mm512_shuffle_f32x4::<0x88>(u[c], u[4 + c]);
        let v1 = _mm512_shuffle_f32x4::<0xDD>(u[c], u[4 + c]);
        let w0 = _mm512_shuffle_f32x4::<0x88>(u[8 + c], u[12 + c]);
        let w1 = _mm512_shuffle_f32x4::<0xDD>(u[8 + c], u[12 + c]);
        out[c] = _mm512_shuffle_f32x4::<0x88>(v0, w0);
        out[8 + c] = _mm512_shuffle_f32x4::<0xDD>(v0, w0);
        out[4 + c] = _mm512_shuffle_f32x4::<0x88>(v1, w1);
        out[12 + c] = _mm512_shuffle_f32x4::<0xDD>(v1, w1);
    }
    out
}

/// # Safety
///
/// As [`MicroKernel::tile`] with `rows == R`, and the CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn tile_kernel<const R: usize>(kc: usize, q: *const f32, x: *const f32, t: &Tile) {
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    // SAFETY: per the contract, `q` holds `kc * R` floats and `x` `kc * 32` floats, 64-byte
    // aligned; the pointers advance by one `k` per iteration and end one past the end.
    unsafe {
        let (mut qk, mut xk) = (q, x);
        for _ in 0..kc {
            let (b0, b1) = (_mm512_load_ps(xk), _mm512_load_ps(xk.add(16)));
            for i in 0..R {
                let a = _mm512_set1_ps(*qk.add(i));
                lo[i] = _mm512_fmadd_ps(a, b0, lo[i]);
                hi[i] = _mm512_fmadd_ps(a, b1, hi[i]);
            }
            qk = qk.add(R);
            xk = xk.add(32);
        }
    }
    let (m0, m1) = (lanes(t.cols), lanes(t.cols.saturating_sub(16)));
    let minus_two = _mm512_set1_ps(-2.0);
    // SAFETY: per the contract, row `i < R` of the tile has `cols` writable floats at
    // `c + i * ldc`; loads and stores are masked to those lanes (the upper half's address
    // is formed with wrapping arithmetic since it may lie past the tile when `cols <= 16`);
    // with `Finish::L2` there are `R` query norms and 32 row norms.
    unsafe {
        let x_norms = match t.finish {
            Finish::L2 { x_norms, .. } => {
                [_mm512_loadu_ps(x_norms), _mm512_loadu_ps(x_norms.add(16))]
            }
            _ => [_mm512_setzero_ps(); 2],
        };
        for i in 0..R {
            let c = t.c.add(i * t.ldc);
            let c_hi = c.wrapping_add(16);
            let (mut v0, mut v1) = (lo[i], hi[i]);
            if t.accumulate {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, c));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, c_hi));
            }
            match t.finish {
                Finish::Raw => {}
                Finish::Negate => {
                    v0 = _mm512_mul_ps(v0, _mm512_set1_ps(-1.0));
                    v1 = _mm512_mul_ps(v1, _mm512_set1_ps(-1.0));
                }
                Finish::L2 { q_norms, .. } => {
                    let qn = _mm512_set1_ps(*q_norms.add(i));
                    let zero = _mm512_setzero_ps();
                    let d0 = _mm512_fmadd_ps(minus_two, v0, _mm512_add_ps(qn, x_norms[0]));
                    let d1 = _mm512_fmadd_ps(minus_two, v1, _mm512_add_ps(qn, x_norms[1]));
                    v0 = _mm512_max_ps(d0, zero);
                    v1 = _mm512_max_ps(d1, zero);
                }
            }
            _mm512_mask_storeu_ps(c, m0, v0);
            _mm512_mask_storeu_ps(c_hi, m1, v1);
        }
    }
}

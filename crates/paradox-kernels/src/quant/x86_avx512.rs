//! AVX-512 quantised kernels (16 lanes).
//!
//! Each step turns 16 codes into 16 `f32` lanes in registers and feeds one or two FMAs:
//!
//! * SQ8: `vpmovzxbd` (16 bytes → 16 × i32) + `vcvtdq2ps`;
//! * f16: `vcvtph2ps` (16 halves → 16 floats, exact);
//! * bf16: `vpmovzxwd` (16 × u16 → 16 × u32) + a 16-bit left shift, which puts the bf16
//!   bits in the high half of each `f32` lane (exactly its value).
//!
//! Four independent accumulators over 64 dimensions per iteration hide the FMA latency;
//! then 16-dimension steps; the last partial step runs on zero-padded stack copies, so no
//! load ever reads past a slice.

use std::arch::x86_64::*;

use super::{padded, QuantTable};
use crate::dispatch::SimdLevel;

/// The AVX-512 table, if this CPU has AVX-512F (and AVX2, which every AVX-512 CPU has;
/// the 4-bit PQ scan uses the AVX2 kernel).
pub(super) fn table() -> Option<&'static QuantTable> {
    (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx2")).then_some(&TABLE)
}

/// Only reachable through [`table`], which checks the CPU first: that is what makes the
/// safe wrappers below sound.
static TABLE: QuantTable = QuantTable {
    level: SimdLevel::Avx512,
    sq8_dot,
    sq8_l2_squared,
    f16_dot,
    f16_l2_squared,
    bf16_dot,
    bf16_l2_squared,
    sq8_dot_i8: super::scalar::sq8_dot_i8,
    sq8_dot_i8_gather: super::scalar::sq8_dot_i8_gather,
    pq_l2_rows,
    pq_neg_dot_rows,
    pq_l2_nearest,
    pq4_block: super::x86_avx2::pq4_block,
    prefer_i8: false,
};

fn pq_l2_rows(sub: &[f32], book: &[f32], out: &mut [f32]) {
    // SAFETY: only reachable through `TABLE`, handed out after detecting the features.
    unsafe { pq_l2_rows_kernel(sub, book, out) }
}

fn pq_neg_dot_rows(sub: &[f32], book: &[f32], out: &mut [f32]) {
    // SAFETY: as for `pq_l2_rows`.
    unsafe { pq_neg_dot_rows_kernel(sub, book, out) }
}

fn pq_l2_nearest(sub: &[f32], book: &[f32]) -> usize {
    // SAFETY: as for `pq_l2_rows`.
    unsafe { pq_l2_nearest_kernel(sub, book) }
}

/// The portable body, compiled with this level's features (the compiler vectorises it
/// across the 256 codewords).
#[target_feature(enable = "avx512f,avx2,fma")]
fn pq_l2_rows_kernel(sub: &[f32], book: &[f32], out: &mut [f32]) {
    super::pq::l2_rows_body(sub, book, out)
}

#[target_feature(enable = "avx512f,avx2,fma")]
fn pq_l2_nearest_kernel(sub: &[f32], book: &[f32]) -> usize {
    super::pq::l2_nearest_body(sub, book)
}

#[target_feature(enable = "avx512f,avx2,fma")]
fn pq_neg_dot_rows_kernel(sub: &[f32], book: &[f32], out: &mut [f32]) {
    super::pq::neg_dot_rows_body(sub, book, out)
}

/// Code formats (`CODE` parameter).
const U8: u8 = 0;
const F16: u8 = 1;
const BF16: u8 = 2;

/// Accumulation rules (`OP` parameter): `q · x`, `(q − x)²`, `(q − s · x)²`.
const DOT: u8 = 0;
const L2: u8 = 1;
const SCALED_L2: u8 = 2;

fn sq8_dot(weights: &[f32], codes: &[u8]) -> f32 {
    let n = weights.len().min(codes.len());
    // SAFETY: only reachable through `TABLE`, handed out after detecting the features;
    // `n` is within both slices.
    unsafe { kernel::<U8, DOT>(weights, weights, codes, n) }
}

fn sq8_l2_squared(offsets: &[f32], scales: &[f32], codes: &[u8]) -> f32 {
    let n = offsets.len().min(scales.len()).min(codes.len());
    // SAFETY: as in `sq8_dot`; `n` is within all three slices.
    unsafe { kernel::<U8, SCALED_L2>(offsets, scales, codes, n) }
}

fn f16_dot(query: &[f32], codes: &[u8]) -> f32 {
    let n = query.len().min(codes.len() / 2);
    // SAFETY: as in `sq8_dot`; the codes hold `2 n` bytes.
    unsafe { kernel::<F16, DOT>(query, query, codes, n) }
}

fn f16_l2_squared(query: &[f32], codes: &[u8]) -> f32 {
    let n = query.len().min(codes.len() / 2);
    // SAFETY: as in `f16_dot`.
    unsafe { kernel::<F16, L2>(query, query, codes, n) }
}

fn bf16_dot(query: &[f32], codes: &[u8]) -> f32 {
    let n = query.len().min(codes.len() / 2);
    // SAFETY: as in `f16_dot`.
    unsafe { kernel::<BF16, DOT>(query, query, codes, n) }
}

fn bf16_l2_squared(query: &[f32], codes: &[u8]) -> f32 {
    let n = query.len().min(codes.len() / 2);
    // SAFETY: as in `f16_dot`.
    unsafe { kernel::<BF16, L2>(query, query, codes, n) }
}

/// Bytes per code of a format.
const fn code_bytes(code: u8) -> usize {
    if code == U8 {
        1
    } else {
        2
    }
}

/// 16 codes at `p` as 16 `f32` lanes.
///
/// # Safety
///
/// `p` points to 16 codes (16 or 32 readable bytes); the CPU supports AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load16<const CODE: u8>(p: *const u8) -> __m512 {
    // SAFETY: the caller guarantees the bytes are readable; loads are unaligned.
    unsafe {
        match CODE {
            U8 => _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(p.cast()))),
            F16 => _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())),
            _ => {
                let wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(p.cast()));
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(wide))
            }
        }
    }
}

/// One step over 16 dimensions: `q` and `s` (scales, `SCALED_L2` only) point to 16 floats,
/// `c` to 16 codes.
///
/// # Safety
///
/// As [`load16`], and `q` (and `s` for `SCALED_L2`) point to 16 readable floats.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn step<const CODE: u8, const OP: u8>(
    q: *const f32,
    s: *const f32,
    c: *const u8,
    acc: __m512,
) -> __m512 {
    // SAFETY: forwarded from the caller.
    unsafe {
        let x = load16::<CODE>(c);
        let qv = _mm512_loadu_ps(q);
        match OP {
            DOT => _mm512_fmadd_ps(qv, x, acc),
            L2 => {
                let d = _mm512_sub_ps(qv, x);
                _mm512_fmadd_ps(d, d, acc)
            }
            _ => {
                let d = _mm512_fnmadd_ps(_mm512_loadu_ps(s), x, qv);
                _mm512_fmadd_ps(d, d, acc)
            }
        }
    }
}

/// The sum of `OP` over the first `n` dimensions.
///
/// # Safety
///
/// `n <= q.len()`, `n <= s.len()` when `OP == SCALED_L2`, `n * code_bytes(CODE) <=
/// codes.len()`; the CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const CODE: u8, const OP: u8>(
    q: &[f32],
    s: &[f32],
    codes: &[u8],
    n: usize,
) -> f32 {
    let width = code_bytes(CODE);
    let (pq, ps, pc) = (q.as_ptr(), s.as_ptr(), codes.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every step reads dimensions `i..i + 16 <= n`, inside the slices per the
    // contract (`s` is read only for `SCALED_L2`).
    unsafe {
        while i + 64 <= n {
            for (u, a) in acc.iter_mut().enumerate() {
                let k = i + 16 * u;
                *a = step::<CODE, OP>(pq.add(k), ps.add(k), pc.add(k * width), *a);
            }
            i += 64;
        }
        while i + 16 <= n {
            acc[0] = step::<CODE, OP>(pq.add(i), ps.add(i), pc.add(i * width), acc[0]);
            i += 16;
        }
    }
    if i < n {
        let q_tail: [f32; 16] = padded(&q[i..n]);
        let s_tail: [f32; 16] = if OP == SCALED_L2 {
            padded(&s[i..n])
        } else {
            [0.0; 16]
        };
        let c_tail: [u8; 32] = padded(&codes[i * width..n * width]);
        // SAFETY: the padded copies hold 16 floats and 32 bytes.
        acc[1] =
            unsafe { step::<CODE, OP>(q_tail.as_ptr(), s_tail.as_ptr(), c_tail.as_ptr(), acc[1]) };
    }
    let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(sum)
}

/// The AVX-512 table with `vpdpbusd` for [`QuantTable::sq8_dot_i8`], if this CPU has
/// AVX-512 VNNI (and BW, for the masked byte loads).
pub(super) fn vnni_table() -> Option<&'static QuantTable> {
    let supported = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni");
    supported.then_some(&VNNI_TABLE)
}

/// Only reachable through [`vnni_table`], which checks the CPU first.
static VNNI_TABLE: QuantTable = QuantTable {
    sq8_dot_i8: vnni_dot_i8,
    sq8_dot_i8_gather: vnni_dot_i8_gather,
    prefer_i8: true,
    ..TABLE
};

fn vnni_dot_i8(weights: &[i8], codes: &[u8]) -> i32 {
    let n = weights.len().min(codes.len());
    // SAFETY: only reachable through `VNNI_TABLE`, handed out after detecting the
    // features; `n` is within both slices.
    unsafe { vnni_kernel(weights, codes, n) }
}

fn vnni_dot_i8_gather(
    weights: &[i8],
    codes: &[u8],
    row_bytes: usize,
    rows: &[u32],
    out: &mut [i32],
) {
    let dim = weights.len();
    super::check_row_bytes(dim, row_bytes);
    let n = out.len().min(rows.len());
    // Bounds-checked start of one row: a row past `codes` panics here, before any load.
    let row = |i: usize| codes[rows[i] as usize * row_bytes..][..dim].as_ptr();
    // Scattered rows (a graph walk) miss the caches: prefetch a group ahead.
    let ahead = |i: usize| {
        rows.get(i + 4).map_or(std::ptr::null(), |&r| {
            codes.as_ptr().wrapping_add(r as usize * row_bytes)
        })
    };
    let mut r = 0;
    while r + 4 <= n {
        let group = [row(r), row(r + 1), row(r + 2), row(r + 3)];
        let next = [ahead(r), ahead(r + 1), ahead(r + 2), ahead(r + 3)];
        // SAFETY: only reachable through `VNNI_TABLE`, handed out after detecting the
        // features; each pointer in `group` starts a bounds-checked `dim`-byte row.
        let sums = unsafe { vnni_group4(weights.as_ptr(), group, next, dim) };
        out[r..r + 4].copy_from_slice(&sums);
        r += 4;
    }
    super::dot_i8_rows(
        weights,
        codes,
        row_bytes,
        &rows[r..n],
        &mut out[r..n],
        vnni_dot_i8,
    );
}

/// Four rows' [`vnni_kernel`] sums in one pass over the weights (each weight load feeds
/// four `vpdpbusd`), reduced together; `next` rows (or null) are prefetched meanwhile.
///
/// # Safety
///
/// `weights` and each `rows[j]` point to `dim` readable bytes; the CPU supports AVX-512F,
/// BW and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni_group4(
    weights: *const i8,
    rows: [*const u8; 4],
    next: [*const u8; 4],
    dim: usize,
) -> [i32; 4] {
    let mut acc = [_mm512_setzero_si512(); 4];
    let mut i = 0;
    // SAFETY: full loads read `i..i + 64 <= dim` bytes of each row and the weights; the
    // last loads are masked to the bytes below `dim`. Prefetches never fault.
    unsafe {
        while i < dim {
            let m: __mmask64 = if dim - i >= 64 {
                !0
            } else {
                (1u64 << (dim - i)) - 1
            };
            let w = _mm512_maskz_loadu_epi8(m, weights.add(i).cast());
            for j in 0..4 {
                let c = _mm512_maskz_loadu_epi8(m, rows[j].add(i).cast());
                acc[j] = _mm512_dpbusd_epi32(acc[j], c, w);
                if !next[j].is_null() {
                    _mm_prefetch::<_MM_HINT_T0>(next[j].wrapping_add(i).cast());
                }
            }
            i += 64;
        }
        // 4 × 16 lanes → 4 sums: halve each to 8 lanes, then two rounds of pairwise adds.
        let half = |a: __m512i| {
            _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64::<1>(a))
        };
        let h01 = _mm256_hadd_epi32(half(acc[0]), half(acc[1]));
        let h23 = _mm256_hadd_epi32(half(acc[2]), half(acc[3]));
        let h = _mm256_hadd_epi32(h01, h23);
        let sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
        let mut out = [0i32; 4];
        _mm_storeu_si128(out.as_mut_ptr().cast(), sums);
        out
    }
}

/// `Σ weights[i] · codes[i]` over `n` dimensions, 64 per `vpdpbusd` (unsigned codes ×
/// signed weights, four products summed into each `i32` lane; no overflow below 2²⁴
/// dimensions). Two accumulators over 128 dimensions per iteration, then masked 64-byte
/// steps.
///
/// # Safety
///
/// `n <= weights.len()`, `n <= codes.len()`; the CPU supports AVX-512F, BW and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni_kernel(weights: &[i8], codes: &[u8], n: usize) -> i32 {
    let (pw, pc) = (weights.as_ptr(), codes.as_ptr());
    let mut acc = [_mm512_setzero_si512(); 2];
    let mut i = 0;
    // SAFETY: full loads read `i..i + 64 <= n` of both slices; the last loads are masked
    // to the bytes below `n` (masked-off bytes are not accessed).
    unsafe {
        while i + 128 <= n {
            for (u, a) in acc.iter_mut().enumerate() {
                let k = i + 64 * u;
                let c = _mm512_loadu_si512(pc.add(k).cast());
                let w = _mm512_loadu_si512(pw.add(k).cast());
                *a = _mm512_dpbusd_epi32(*a, c, w);
            }
            i += 128;
        }
        while i < n {
            let m: __mmask64 = if n - i >= 64 {
                !0
            } else {
                (1u64 << (n - i)) - 1
            };
            let c = _mm512_maskz_loadu_epi8(m, pc.add(i).cast());
            let w = _mm512_maskz_loadu_epi8(m, pw.add(i).cast());
            acc[1] = _mm512_dpbusd_epi32(acc[1], c, w);
            i += 64;
        }
    }
    _mm512_reduce_add_epi32(_mm512_add_epi32(acc[0], acc[1]))
}

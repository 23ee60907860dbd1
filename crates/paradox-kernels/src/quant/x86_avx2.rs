//! AVX2 + FMA + F16C quantised kernels (8 lanes): the AVX-512 scheme at half width
//! (`vpmovzxbd`/`vcvtdq2ps` for SQ8, `vcvtph2ps` for f16, `vpmovzxwd` + shift for bf16;
//! four accumulators over 32 dimensions, then 8-dimension steps, then one step on
//! zero-padded copies).

use std::arch::x86_64::*;

use super::{padded, QuantTable};
use crate::dispatch::SimdLevel;

/// The AVX2 table, if this CPU has AVX2, FMA and F16C.
pub(super) fn table() -> Option<&'static QuantTable> {
    let supported = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    supported.then_some(&TABLE)
}

/// Only reachable through [`table`], which checks the CPU first: that is what makes the
/// safe wrappers below sound.
static TABLE: QuantTable = QuantTable {
    level: SimdLevel::Avx2,
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
    pq4_block,
    prefer_i8: false,
};

/// See [`super::pq::pq4_block`]. Also used by the AVX-512 table, whose detection checks
/// AVX2 as well.
pub(super) fn pq4_block(lut: &[u8], block: &[u8], out: &mut [u16; super::PQ4_BLOCK]) {
    // SAFETY: only reachable through `TABLE` or the AVX-512 table, both handed out after
    // detecting AVX2.
    unsafe { pq4_block_kernel(lut, block, out) }
}

/// Two sub-quantisers per 256-bit step: lane 0 holds sub-quantiser `j`'s 16 code bytes
/// and 16-entry table, lane 1 those of `j + 1` (both arrays are sub-quantiser major, so
/// one unaligned load each). `vpshufb` looks up 16 rows per lane in the low nibbles and
/// 16 in the high ones; the bytes are widened to `u16` into four accumulators (rows
/// 0–7, 8–15, 16–23, 24–31 per lane), and the two lanes are added at the end.
#[target_feature(enable = "avx2")]
fn pq4_block_kernel(lut: &[u8], block: &[u8], out: &mut [u16; super::PQ4_BLOCK]) {
    let pairs = lut.len() / 32;
    let low = _mm256_set1_epi8(0x0f);
    let zero = _mm256_setzero_si256();
    let mut acc = [_mm256_setzero_si256(); 4];
    for p in 0..pairs {
        // SAFETY: `32p + 32 <= lut.len() == block.len()` (checked by the caller); the
        // loads are unaligned.
        let (codes, table) = unsafe {
            (
                _mm256_loadu_si256(block.as_ptr().add(32 * p) as *const __m256i),
                _mm256_loadu_si256(lut.as_ptr().add(32 * p) as *const __m256i),
            )
        };
        let lo = _mm256_and_si256(codes, low);
        let hi = _mm256_and_si256(_mm256_srli_epi16(codes, 4), low);
        let d_lo = _mm256_shuffle_epi8(table, lo);
        let d_hi = _mm256_shuffle_epi8(table, hi);
        acc[0] = _mm256_add_epi16(acc[0], _mm256_unpacklo_epi8(d_lo, zero));
        acc[1] = _mm256_add_epi16(acc[1], _mm256_unpackhi_epi8(d_lo, zero));
        acc[2] = _mm256_add_epi16(acc[2], _mm256_unpacklo_epi8(d_hi, zero));
        acc[3] = _mm256_add_epi16(acc[3], _mm256_unpackhi_epi8(d_hi, zero));
    }
    let mut sums = [0u16; super::PQ4_BLOCK];
    for (q, a) in acc.iter().enumerate() {
        let both = _mm_add_epi16(_mm256_castsi256_si128(*a), _mm256_extracti128_si256(*a, 1));
        // SAFETY: `sums[8q..8q + 8]` is 16 bytes inside `sums`.
        unsafe { _mm_storeu_si128(sums.as_mut_ptr().add(8 * q) as *mut __m128i, both) };
    }
    // An odd last sub-quantiser: the portable loop.
    if !lut.len().is_multiple_of(32) {
        let tail = 32 * pairs;
        super::pq::pq4_block(&lut[tail..], &block[tail..], &mut sums);
    }
    for (o, s) in out.iter_mut().zip(sums) {
        *o = o.wrapping_add(s);
    }
}

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
#[target_feature(enable = "avx2,fma")]
fn pq_l2_rows_kernel(sub: &[f32], book: &[f32], out: &mut [f32]) {
    super::pq::l2_rows_body(sub, book, out)
}

#[target_feature(enable = "avx2,fma")]
fn pq_l2_nearest_kernel(sub: &[f32], book: &[f32]) -> usize {
    super::pq::l2_nearest_body(sub, book)
}

#[target_feature(enable = "avx2,fma")]
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

/// 8 codes at `p` as 8 `f32` lanes.
///
/// # Safety
///
/// `p` points to 8 codes (8 or 16 readable bytes); the CPU supports AVX2, FMA and F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load8<const CODE: u8>(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees the bytes are readable; loads are unaligned.
    unsafe {
        match CODE {
            U8 => _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast()))),
            F16 => _mm256_cvtph_ps(_mm_loadu_si128(p.cast())),
            _ => {
                let wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()));
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(wide))
            }
        }
    }
}

/// One step over 8 dimensions: `q` and `s` (scales, `SCALED_L2` only) point to 8 floats,
/// `c` to 8 codes.
///
/// # Safety
///
/// As [`load8`], and `q` (and `s` for `SCALED_L2`) point to 8 readable floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn step<const CODE: u8, const OP: u8>(
    q: *const f32,
    s: *const f32,
    c: *const u8,
    acc: __m256,
) -> __m256 {
    // SAFETY: forwarded from the caller.
    unsafe {
        let x = load8::<CODE>(c);
        let qv = _mm256_loadu_ps(q);
        match OP {
            DOT => _mm256_fmadd_ps(qv, x, acc),
            L2 => {
                let d = _mm256_sub_ps(qv, x);
                _mm256_fmadd_ps(d, d, acc)
            }
            _ => {
                let d = _mm256_fnmadd_ps(_mm256_loadu_ps(s), x, qv);
                _mm256_fmadd_ps(d, d, acc)
            }
        }
    }
}

/// The sum of `OP` over the first `n` dimensions.
///
/// # Safety
///
/// `n <= q.len()`, `n <= s.len()` when `OP == SCALED_L2`, `n * code_bytes(CODE) <=
/// codes.len()`; the CPU supports AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn kernel<const CODE: u8, const OP: u8>(
    q: &[f32],
    s: &[f32],
    codes: &[u8],
    n: usize,
) -> f32 {
    let width = code_bytes(CODE);
    let (pq, ps, pc) = (q.as_ptr(), s.as_ptr(), codes.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every step reads dimensions `i..i + 8 <= n`, inside the slices per the
    // contract (`s` is read only for `SCALED_L2`).
    unsafe {
        while i + 32 <= n {
            for (u, a) in acc.iter_mut().enumerate() {
                let k = i + 8 * u;
                *a = step::<CODE, OP>(pq.add(k), ps.add(k), pc.add(k * width), *a);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = step::<CODE, OP>(pq.add(i), ps.add(i), pc.add(i * width), acc[0]);
            i += 8;
        }
    }
    if i < n {
        let q_tail: [f32; 8] = padded(&q[i..n]);
        let s_tail: [f32; 8] = if OP == SCALED_L2 {
            padded(&s[i..n])
        } else {
            [0.0; 8]
        };
        let c_tail: [u8; 16] = padded(&codes[i * width..n * width]);
        // SAFETY: the padded copies hold 8 floats and 16 bytes.
        acc[1] =
            unsafe { step::<CODE, OP>(q_tail.as_ptr(), s_tail.as_ptr(), c_tail.as_ptr(), acc[1]) };
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let quad = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps::<1>(sum));
    let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
    _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps::<0b01>(pair, pair)))
}

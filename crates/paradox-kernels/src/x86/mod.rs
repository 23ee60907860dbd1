//! x86-64 kernels: AVX2+FMA ([`avx2`]) and AVX-512 ([`avx512`]), plus the horizontal
//! reductions both share.
//!
//! Every function here is compiled with `#[target_feature]` and must only run on a CPU that
//! has those features; each level's `table()` checks them with `is_x86_feature_detected!`
//! before handing out the (private) functions, see [`crate::dispatch`].

pub(crate) mod avx2;
pub(crate) mod avx512;

use std::arch::x86_64::*;

/// Sum of the eight lanes of `v`.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum256(v: __m256) -> f32 {
    let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
    let single = _mm_add_ss(pair, _mm_shuffle_ps::<0b01>(pair, pair));
    _mm_cvtss_f32(single)
}

/// `[Σa, Σb, Σc, Σd]`: four horizontal sums at once (three `hadd`s instead of four trees).
#[inline]
#[target_feature(enable = "avx2")]
fn hsum256x4(a: __m256, b: __m256, c: __m256, d: __m256) -> __m128 {
    // hadd(a, b) = [a01 a23 b01 b23 | a45 a67 b45 b67]; a second round gives
    // [a0123 b0123 c0123 d0123 | a4567 b4567 c4567 d4567].
    let abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    _mm_add_ps(
        _mm256_castps256_ps128(abcd),
        _mm256_extractf128_ps::<1>(abcd),
    )
}

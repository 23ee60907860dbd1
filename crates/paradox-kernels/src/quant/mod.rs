//! Compressed vector codes and the distances from an `f32` query to them.
//!
//! Graph traversal touches a few thousand rows per query in random order, so it is bound by
//! memory traffic more than by arithmetic. Storing the traversal copy of the vectors in
//! fewer bytes per dimension makes more of it fit in cache; the exact `f32` rows are read
//! only to re-rank the final candidates. Three codes are supported:
//!
//! * **SQ8** (1 byte per dimension): [`Sq8Quantizer`] maps each dimension's range
//!   `[min_i, max_i]` linearly onto `0..=255`. Distances are *asymmetric*: the query stays
//!   `f32` and is folded into per-query weights ([`Sq8Query`]), so the hot loop is a
//!   byte → `f32` conversion and one or two FMAs per dimension.
//! * **f16** and **bf16** (2 bytes per dimension): IEEE half precision (11-bit mantissa,
//!   range ±65504) and bfloat16 (8-bit mantissa, the full `f32` range), converted to `f32`
//!   in registers ([`encode_f16`], [`encode_bf16`]).
//!
//! * **PQ tables**: the per-query lookup tables of product quantisation (see
//!   [`QuantTable::pq_l2_rows`]).
//!
//! Every code row is a plain byte slice: `dim` bytes for SQ8, `2 · dim` little-endian bytes
//! for f16 and bf16, with no alignment requirement.
//!
//! Kernels are dispatched like the `f32` ones: [`quant_table`] picks the widest
//! [`QuantTable`] this CPU supports on first use (AVX-512, AVX2+FMA+F16C, else portable
//! Rust), honouring `PARADOX_SIMD`. The `#[target_feature]` functions behind a table are
//! reachable only through that table, which exists only once detection succeeded.
//! There are no NEON versions yet: AArch64 uses the portable kernels, which the compiler
//! vectorises for the baseline target.

mod float16;
mod pq;
mod scalar;
mod sq8;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86_avx2;
#[cfg(target_arch = "x86_64")]
mod x86_avx512;

use std::sync::OnceLock;

use crate::dispatch::{SimdLevel, SIMD_ENV_VAR};

pub use float16::{decode_bf16, decode_f16, encode_bf16, encode_f16};
pub use pq::{PQ4_BLOCK, PQ_TABLE_WIDTH};

/// 4-bit PQ fast scan of one block through the selected kernel table.
///
/// `lut`: 16 `u8` partial distances per sub-quantiser (`m × 16` bytes). `block`: the
/// codes of 32 rows, 16 bytes per sub-quantiser, byte `i` holding row `i`'s 4-bit code in
/// its low nibble and row `i + 16`'s in its high nibble (`m × 16` bytes). Adds row `r`'s
/// `Σ_j lut[16j + code_j(r)]` to `out[r]`. Panics if the lengths differ or are not a
/// multiple of 16.
#[inline]
pub fn pq4_block(lut: &[u8], block: &[u8], out: &mut [u16; PQ4_BLOCK]) {
    assert!(
        lut.len() == block.len() && lut.len().is_multiple_of(16),
        "pq4 lut and block must both be m × 16 bytes"
    );
    (quant_table().pq4_block)(lut, block, out)
}
pub use sq8::{Sq8Quantizer, Sq8Query, Sq8Range};

/// The signature of [`QuantTable::sq8_dot_i8_gather`]:
/// `(weights, codes, row_bytes, rows, out)`.
pub type Sq8DotI8Gather =
    fn(weights: &[i8], codes: &[u8], row_bytes: usize, rows: &[u32], out: &mut [i32]);

/// Panics unless a code row of `row_bytes` bytes holds `dim` codes.
fn check_row_bytes(dim: usize, row_bytes: usize) {
    assert!(
        dim <= row_bytes,
        "{dim} weights for rows of {row_bytes} bytes"
    );
}

/// [`QuantTable::sq8_dot_i8_gather`] one row at a time through a one-row `kernel`.
fn dot_i8_rows(
    weights: &[i8],
    codes: &[u8],
    row_bytes: usize,
    rows: &[u32],
    out: &mut [i32],
    kernel: fn(&[i8], &[u8]) -> i32,
) {
    let dim = weights.len();
    check_row_bytes(dim, row_bytes);
    for (o, &r) in out.iter_mut().zip(rows) {
        *o = kernel(weights, &codes[r as usize * row_bytes..][..dim]);
    }
}

/// The quantised-distance kernels of one [`SimdLevel`], as plain function pointers.
///
/// Lengths: a kernel reads `n = min(query length, code dimensions)` dimensions, where an
/// SQ8 row has one byte per dimension and an f16/bf16 row two. All sums are in `f32`.
#[derive(Debug)]
pub struct QuantTable {
    /// The instruction set behind these pointers.
    pub level: SimdLevel,
    /// `Σ weights[i] · codes[i]` (the SQ8 inner product once the query is folded in).
    pub sq8_dot: fn(weights: &[f32], codes: &[u8]) -> f32,
    /// `Σ (offsets[i] − scales[i] · codes[i])²` (the SQ8 squared L2 distance with
    /// `offsets = query − min`).
    pub sq8_l2_squared: fn(offsets: &[f32], scales: &[f32], codes: &[u8]) -> f32,
    /// `query · decode_f16(codes)`.
    pub f16_dot: fn(query: &[f32], codes: &[u8]) -> f32,
    /// `‖query − decode_f16(codes)‖²`.
    pub f16_l2_squared: fn(query: &[f32], codes: &[u8]) -> f32,
    /// `query · decode_bf16(codes)`.
    pub bf16_dot: fn(query: &[f32], codes: &[u8]) -> f32,
    /// `‖query − decode_bf16(codes)‖²`.
    pub bf16_l2_squared: fn(query: &[f32], codes: &[u8]) -> f32,
    /// `Σ weights[i] · codes[i]` in exact integer arithmetic (a query quantised to `i8`
    /// against SQ8 codes; no overflow below 2²⁴ dimensions).
    pub sq8_dot_i8: fn(weights: &[i8], codes: &[u8]) -> i32,
    /// [`QuantTable::sq8_dot_i8`] of `weights` against many code rows: `out[j]` for the
    /// row starting at byte `rows[j] × row_bytes` of `codes` (its first `weights.len()`
    /// bytes; `weights.len() <= row_bytes`). Panics when a row is past `codes`.
    pub sq8_dot_i8_gather: Sq8DotI8Gather,
    /// PQ table row: `out[c] = Σ_d (sub[d] − book[d·256 + c])²` for the 256 codewords of
    /// a dimension-major codebook (`sub.len() × 256` values; `out.len() >= 256`).
    pub pq_l2_rows: fn(sub: &[f32], book: &[f32], out: &mut [f32]),
    /// PQ table row: `out[c] = −Σ_d sub[d] · book[d·256 + c]` (same layout).
    pub pq_neg_dot_rows: fn(sub: &[f32], book: &[f32], out: &mut [f32]),
    /// PQ encoding of one sub-vector: the codeword `c` with the smallest
    /// [`QuantTable::pq_l2_rows`] distance (the first on ties; same layout).
    pub pq_l2_nearest: fn(sub: &[f32], book: &[f32]) -> usize,
    /// 4-bit PQ fast scan of one block of [`PQ4_BLOCK`] rows: adds each row's quantised
    /// distance through the `u8` lookup table to `out` (layouts: [`pq4_block`]).
    pub pq4_block: fn(lut: &[u8], block: &[u8], out: &mut [u16; PQ4_BLOCK]),
    /// Whether [`QuantTable::sq8_dot_i8`] is faster than [`QuantTable::sq8_dot`] here
    /// (AVX-512 VNNI `vpdpbusd`, 64 bytes per instruction), so [`Sq8Query::fast_distance`]
    /// quantises the query to `i8`.
    pub prefer_i8: bool,
}

/// The quantised kernel table used by [`Sq8Query`] and the crate-level functions: the
/// widest level this CPU supports, or the one forced by `PARADOX_SIMD` when it can run.
/// Chosen on the first call, then fixed for the process.
#[inline]
pub fn quant_table() -> &'static QuantTable {
    static SELECTED: OnceLock<&'static QuantTable> = OnceLock::new();
    SELECTED.get_or_init(|| {
        let forced = std::env::var(SIMD_ENV_VAR)
            .ok()
            .and_then(|name| SimdLevel::parse(&name))
            .and_then(quant_table_for);
        forced
            .or_else(|| {
                [SimdLevel::Avx512, SimdLevel::Avx2]
                    .into_iter()
                    .find_map(quant_table_for)
            })
            .unwrap_or(&scalar::TABLE)
    })
}

/// The quantised kernel table of one level, or `None` when this CPU cannot run it or it has
/// no quantised kernels (NEON). Tests and benchmarks compare levels with it. The AVX-512
/// table uses VNNI for [`QuantTable::sq8_dot_i8`] where the CPU has it.
pub fn quant_table_for(level: SimdLevel) -> Option<&'static QuantTable> {
    match level {
        SimdLevel::Scalar => Some(&scalar::TABLE),
        SimdLevel::Neon => None,
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => x86_avx2::table(),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => x86_avx512::vnni_table().or_else(x86_avx512::table),
        #[cfg(not(target_arch = "x86_64"))]
        SimdLevel::Avx2 | SimdLevel::Avx512 => None,
    }
}

/// `Σ weights[i] · codes[i]`; see [`QuantTable::sq8_dot`].
#[inline]
pub fn sq8_dot(weights: &[f32], codes: &[u8]) -> f32 {
    (quant_table().sq8_dot)(weights, codes)
}

/// `Σ weights[i] · codes[i]` in integers; see [`QuantTable::sq8_dot_i8`].
#[inline]
pub fn sq8_dot_i8(weights: &[i8], codes: &[u8]) -> i32 {
    (quant_table().sq8_dot_i8)(weights, codes)
}

/// `Σ (offsets[i] − scales[i] · codes[i])²`; see [`QuantTable::sq8_l2_squared`].
#[inline]
pub fn sq8_l2_squared(offsets: &[f32], scales: &[f32], codes: &[u8]) -> f32 {
    (quant_table().sq8_l2_squared)(offsets, scales, codes)
}

/// Inner product of an `f32` query and an f16 code row.
#[inline]
pub fn f16_dot(query: &[f32], codes: &[u8]) -> f32 {
    (quant_table().f16_dot)(query, codes)
}

/// Squared L2 distance between an `f32` query and an f16 code row.
#[inline]
pub fn f16_l2_squared(query: &[f32], codes: &[u8]) -> f32 {
    (quant_table().f16_l2_squared)(query, codes)
}

/// Inner product of an `f32` query and a bf16 code row.
#[inline]
pub fn bf16_dot(query: &[f32], codes: &[u8]) -> f32 {
    (quant_table().bf16_dot)(query, codes)
}

/// Squared L2 distance between an `f32` query and a bf16 code row.
#[inline]
pub fn bf16_l2_squared(query: &[f32], codes: &[u8]) -> f32 {
    (quant_table().bf16_l2_squared)(query, codes)
}

/// The first `src.len() <= N` values of `src` followed by zeros: SIMD kernels run their
/// last, partial step on such a copy, so they never read past a slice. Zero lanes add
/// nothing to any of the sums above (a zero code decodes to zero in f16/bf16, and SQ8 pads
/// its weights, offsets and scales with zeros as well).
#[cfg(target_arch = "x86_64")]
#[inline]
fn padded<T: Copy + Default, const N: usize>(src: &[T]) -> [T; N] {
    let mut out = [T::default(); N];
    out[..src.len()].copy_from_slice(src);
    out
}

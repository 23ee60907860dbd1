//! f16 and bf16 code rows: `2 · dim` little-endian bytes per row.
//!
//! Encoding rounds to nearest, ties to even (the `half` crate), so a value's relative error
//! is at most 2⁻¹¹ in f16 and 2⁻⁸ in bf16. f16 covers ±65504 and flushes magnitudes below
//! about 6·10⁻⁸ to zero (normalised embeddings sit well inside); bf16 has the `f32` range.
//! Decoding is exact.

use half::{bf16, f16};

/// Writes `row` as f16 into `out` (`out.len() == 2 * row.len()`, little-endian).
///
/// ```
/// use paradox_kernels::quant::{decode_f16, encode_f16};
/// let mut code = [0u8; 6];
/// encode_f16(&[1.0, -0.5, 0.1], &mut code);
/// let mut back = [0f32; 3];
/// decode_f16(&code, &mut back);
/// assert_eq!(&back[..2], &[1.0, -0.5]);
/// assert!((back[2] - 0.1).abs() < 1e-4);
/// ```
pub fn encode_f16(row: &[f32], out: &mut [u8]) {
    assert_eq!(
        out.len(),
        2 * row.len(),
        "f16 code row must be 2 bytes per value"
    );
    for (x, o) in row.iter().zip(out.chunks_exact_mut(2)) {
        o.copy_from_slice(&f16::from_f32(*x).to_bits().to_le_bytes());
    }
}

/// Writes `row` as bf16 into `out` (`out.len() == 2 * row.len()`, little-endian).
pub fn encode_bf16(row: &[f32], out: &mut [u8]) {
    assert_eq!(
        out.len(),
        2 * row.len(),
        "bf16 code row must be 2 bytes per value"
    );
    for (x, o) in row.iter().zip(out.chunks_exact_mut(2)) {
        o.copy_from_slice(&bf16::from_f32(*x).to_bits().to_le_bytes());
    }
}

/// Decodes an f16 code row into `out` (`codes.len() == 2 * out.len()`).
pub fn decode_f16(codes: &[u8], out: &mut [f32]) {
    assert_eq!(
        codes.len(),
        2 * out.len(),
        "f16 code row must be 2 bytes per value"
    );
    for (c, o) in codes.chunks_exact(2).zip(out.iter_mut()) {
        *o = f16_to_f32([c[0], c[1]]);
    }
}

/// Decodes a bf16 code row into `out` (`codes.len() == 2 * out.len()`).
pub fn decode_bf16(codes: &[u8], out: &mut [f32]) {
    assert_eq!(
        codes.len(),
        2 * out.len(),
        "bf16 code row must be 2 bytes per value"
    );
    for (c, o) in codes.chunks_exact(2).zip(out.iter_mut()) {
        *o = bf16_to_f32([c[0], c[1]]);
    }
}

/// One f16 value from its two little-endian bytes, exactly.
///
/// Branch-free so the portable kernels vectorise (the `half` crate's software conversion
/// branches per value, about 5× slower): the exponent and mantissa bits are moved into
/// place in an `f32` and multiplied by 2¹¹², which re-biases the exponent from 15 to 127.
/// That one multiply is exact for normal values and also turns f16 subnormals (which land
/// as `f32` subnormals) into the right normal `f32`. Infinity and NaN (exponent 31) keep
/// an all-ones exponent instead.
#[inline]
pub(super) fn f16_to_f32(bytes: [u8; 2]) -> f32 {
    let bits = u16::from_le_bytes(bytes) as u32;
    let sign = (bits & 0x8000) << 16;
    let magnitude = bits & 0x7fff;
    let shifted = magnitude << 13;
    let finite = f32::from_bits(shifted) * f32::from_bits(0x7780_0000); // 2^112
    let value = if magnitude >= 0x7c00 {
        shifted | 0x7f80_0000
    } else {
        finite.to_bits()
    };
    f32::from_bits(value | sign)
}

/// One bf16 value from its two little-endian bytes: the high half of an `f32`.
#[inline]
pub(super) fn bf16_to_f32(bytes: [u8; 2]) -> f32 {
    f32::from_bits((u16::from_le_bytes(bytes) as u32) << 16)
}

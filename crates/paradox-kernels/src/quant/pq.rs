//! Product-quantisation distance tables: one sub-query against the 256 codewords of its
//! sub-space, laid out dimension-major (`dsub × 256`: row `d` holds dimension `d` of
//! every codeword). The loops run across codewords, so they vectorise at any `dsub`; the
//! x86 tables compile the same bodies with AVX2+FMA or AVX-512 enabled.

/// Codewords per sub-space.
pub const PQ_TABLE_WIDTH: usize = 256;

/// `out[c] = Σ_d (sub[d] − book[d][c])²`.
#[inline(always)]
pub(super) fn l2_rows_body(sub: &[f32], book: &[f32], out: &mut [f32]) {
    let out = &mut out[..PQ_TABLE_WIDTH];
    out.fill(0.0);
    for (&q, column) in sub.iter().zip(book.chunks_exact(PQ_TABLE_WIDTH)) {
        for (o, &c) in out.iter_mut().zip(column) {
            let diff = q - c;
            *o = diff.mul_add(diff, *o);
        }
    }
}

/// `out[c] = −Σ_d sub[d] · book[d][c]`.
#[inline(always)]
pub(super) fn neg_dot_rows_body(sub: &[f32], book: &[f32], out: &mut [f32]) {
    let out = &mut out[..PQ_TABLE_WIDTH];
    out.fill(0.0);
    for (&q, column) in sub.iter().zip(book.chunks_exact(PQ_TABLE_WIDTH)) {
        for (o, &c) in out.iter_mut().zip(column) {
            *o = (-q).mul_add(c, *o);
        }
    }
}

/// Portable versions (the scalar table).
pub(super) fn l2_rows(sub: &[f32], book: &[f32], out: &mut [f32]) {
    // Without FMA in the target, `mul_add` would be a slow libm call: spell it out.
    let out = &mut out[..PQ_TABLE_WIDTH];
    out.fill(0.0);
    for (&q, column) in sub.iter().zip(book.chunks_exact(PQ_TABLE_WIDTH)) {
        for (o, &c) in out.iter_mut().zip(column) {
            let diff = q - c;
            *o += diff * diff;
        }
    }
}

/// See [`l2_rows`].
pub(super) fn neg_dot_rows(sub: &[f32], book: &[f32], out: &mut [f32]) {
    let out = &mut out[..PQ_TABLE_WIDTH];
    out.fill(0.0);
    for (&q, column) in sub.iter().zip(book.chunks_exact(PQ_TABLE_WIDTH)) {
        for (o, &c) in out.iter_mut().zip(column) {
            *o -= q * c;
        }
    }
}

/// Rows per 4-bit fast-scan block.
pub const PQ4_BLOCK: usize = 32;

/// 4-bit PQ fast scan, portable version (the oracle of the SIMD one): adds, for each of
/// the 32 rows of `block`, its quantised distance `Σ_j lut[j·16 + code_j]` to `out`.
///
/// Layouts (`m` = `lut.len() / 16` sub-quantisers, `block.len() == lut.len()`):
/// `lut` holds 16 `u8` partial distances per sub-quantiser; `block` holds 16 bytes per
/// sub-quantiser, byte `i` carrying row `i`'s code in its low nibble and row `i + 16`'s
/// in its high nibble. Sums of up to 257 sub-quantisers cannot overflow `u16`.
pub(super) fn pq4_block(lut: &[u8], block: &[u8], out: &mut [u16; PQ4_BLOCK]) {
    for (table, codes) in lut.chunks_exact(16).zip(block.chunks_exact(16)) {
        for (i, &byte) in codes.iter().enumerate() {
            out[i] = out[i].wrapping_add(table[(byte & 15) as usize] as u16);
            out[i + 16] = out[i + 16].wrapping_add(table[(byte >> 4) as usize] as u16);
        }
    }
}

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

/// The codeword nearest to `sub` under squared L2 (the first on ties): the distances of
/// [`l2_rows_body`] and a branch-free search over them, sixteen lanes wide so that it
/// compiles to packed compares and blends (a scalar search with a data-dependent branch
/// costs more than the distances).
#[inline(always)]
pub(super) fn l2_nearest_body(sub: &[f32], book: &[f32]) -> usize {
    let mut distances = [0f32; PQ_TABLE_WIDTH];
    l2_rows_body(sub, book, &mut distances);
    first_min(&distances)
}

/// The portable [`l2_nearest_body`] (the scalar table).
pub(super) fn l2_nearest(sub: &[f32], book: &[f32]) -> usize {
    let mut distances = [0f32; PQ_TABLE_WIDTH];
    l2_rows(sub, book, &mut distances);
    first_min(&distances)
}

/// Position of the first smallest of 256 distances (0 if none is below infinity; NaN
/// never wins). Two branch-free passes that compile to packed instructions: the smallest
/// value (sixteen lanes of `min`), then the first chunk holding it (packed equality
/// tests gathered into a bit mask).
#[inline(always)]
fn first_min(distances: &[f32; PQ_TABLE_WIDTH]) -> usize {
    const LANES: usize = 16;
    let chunks = distances.as_chunks::<LANES>().0;
    let mut lanes = [f32::INFINITY; LANES];
    for chunk in chunks {
        for (m, &d) in lanes.iter_mut().zip(chunk) {
            *m = if d < *m { d } else { *m };
        }
    }
    let min = lanes
        .iter()
        .fold(f32::INFINITY, |a, &b| if b < a { b } else { a });
    for (c, chunk) in chunks.iter().enumerate() {
        let mask = chunk.iter().enumerate().fold(0u32, |mask, (lane, &d)| {
            mask | (u32::from(d == min) << lane)
        });
        if mask != 0 {
            return c * LANES + mask.trailing_zeros() as usize;
        }
    }
    0
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

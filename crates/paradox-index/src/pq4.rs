//! 4-bit product quantisation with fast scan (André et al., "Cache locality is not
//! enough", 2015; the layout FAISS calls "fast scan").
//!
//! A vector is cut into `m` sub-vectors, each replaced by the 4-bit index of its nearest
//! of 16 codewords: `m / 2` bytes per vector. The search tables (16 entries per
//! sub-quantiser) are quantised to `u8` so that a whole table fits in half a SIMD
//! register and `vpshufb` looks up 16 or 32 codes per instruction
//! ([`paradox_kernels::pq4_block`]). Codes are stored in blocks of 32 rows, interleaved
//! for that instruction ([`pack_block`]).
//!
//! Quantised table: `lut[j][c] = round((t[j][c] − min_j) · scale)` with one `scale` for
//! all sub-quantisers (so sums stay comparable) chosen so the largest range maps to 255;
//! the distance estimate of a code is `Σ_j lut / scale + Σ_j min_j`. The rounding error
//! (at most `m / (2 · scale)`) is why fast-scan results are re-ranked exactly.

use paradox_kernels::PQ4_BLOCK;

/// Codewords per sub-quantiser (4-bit codes).
pub const PQ4_CODEWORDS: usize = 16;

/// A trained 4-bit product quantiser.
#[derive(Debug, Clone, PartialEq)]
pub struct Pq4Quantizer {
    dim: usize,
    m: usize,
    /// `m × 16 × dsub` codewords, sub-space major.
    codebooks: Vec<f32>,
}

/// A query's table quantised to bytes, ready for [`paradox_kernels::pq4_block`].
#[derive(Debug, Clone, Default)]
pub struct Pq4Lut {
    /// `m × 16` bytes.
    pub bytes: Vec<u8>,
    /// Byte units per distance unit.
    pub scale: f32,
    /// `Σ_j min_j`: added to every estimate.
    pub bias: f32,
}

impl Pq4Lut {
    /// Quantises a float table of `m × 16` partial distances (reusing `self`'s buffer).
    pub fn quantise(&mut self, table: &[f32]) {
        let mut bias = 0f32;
        let mut widest = 0f32;
        for sub in table.chunks_exact(PQ4_CODEWORDS) {
            let (lo, hi) = sub
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                });
            bias += lo;
            widest = widest.max(hi - lo);
        }
        let scale = if widest > 0.0 { 255.0 / widest } else { 1.0 };
        self.bytes.clear();
        for sub in table.chunks_exact(PQ4_CODEWORDS) {
            let lo = sub.iter().copied().fold(f32::INFINITY, f32::min);
            self.bytes.extend(
                sub.iter()
                    .map(|&x| ((x - lo) * scale).round().min(255.0) as u8),
            );
        }
        self.scale = scale;
        self.bias = bias;
    }

    /// The distance a quantised sum stands for.
    #[inline]
    pub fn distance(&self, sum: u16) -> f32 {
        self.bias + sum as f32 / self.scale
    }

    /// The largest quantised sum whose distance is below `threshold` (`None`: none is),
    /// for pruning whole blocks and rows before converting.
    #[inline]
    pub fn sum_below(&self, threshold: f32) -> Option<u32> {
        let units = (threshold - self.bias) * self.scale;
        if units.is_nan() || units <= 0.0 {
            None
        } else {
            // Rows whose sum is at most this may be below the threshold (ceil keeps the
            // test conservative; the exact comparison is made on the converted value).
            Some(units.ceil().min(u32::MAX as f32) as u32)
        }
    }
}

impl Pq4Quantizer {
    /// Learns `m` codebooks of 16 codewords from `rows` (`dim` values each). `m` must
    /// divide `dim` and there must be at least 16 rows.
    pub fn train(
        rows: &[f32],
        dim: usize,
        m: usize,
        iterations: usize,
        seed: u64,
    ) -> Result<Pq4Quantizer, String> {
        let books =
            crate::pq::train_codebooks("pq4", rows, dim, m, PQ4_CODEWORDS, iterations, seed)?;
        Self::from_parts(dim, m, books)
    }

    /// Rebuilds a quantiser from its parts (e.g. read from a file).
    pub fn from_parts(dim: usize, m: usize, codebooks: Vec<f32>) -> Result<Self, String> {
        if m == 0 || !dim.is_multiple_of(m) || codebooks.len() != dim * PQ4_CODEWORDS {
            return Err(format!(
                "pq4 codebooks: dim {dim}, m {m}, {} values",
                codebooks.len()
            ));
        }
        Ok(Pq4Quantizer { dim, m, codebooks })
    }

    /// Sub-quantisers (two per byte of code).
    pub fn m(&self) -> usize {
        self.m
    }

    /// The codewords, `m × 16 × dsub`.
    pub fn codebooks(&self) -> &[f32] {
        &self.codebooks
    }

    fn dsub(&self) -> usize {
        self.dim / self.m
    }

    fn word(&self, j: usize, c: usize) -> &[f32] {
        let dsub = self.dsub();
        let at = (j * PQ4_CODEWORDS + c) * dsub;
        &self.codebooks[at..at + dsub]
    }

    /// Encodes one vector: `m` codes in `0..16`, one per byte.
    pub fn encode(&self, row: &[f32], codes: &mut [u8]) {
        let dsub = self.dsub();
        for (j, slot) in codes.iter_mut().enumerate().take(self.m) {
            let sub = &row[j * dsub..(j + 1) * dsub];
            let mut best = (f32::INFINITY, 0u8);
            for c in 0..PQ4_CODEWORDS {
                let d = paradox_kernels::l2_squared(sub, self.word(j, c));
                if d < best.0 {
                    best = (d, c as u8);
                }
            }
            *slot = best.1;
        }
    }

    /// The vector codes stand for.
    pub fn decode(&self, codes: &[u8], out: &mut [f32]) {
        let dsub = self.dsub();
        for (j, &c) in codes.iter().enumerate().take(self.m) {
            out[j * dsub..(j + 1) * dsub].copy_from_slice(self.word(j, c as usize));
        }
    }

    /// Fills `table` (`m × 16`) with squared L2 distances from `query`'s sub-vectors to
    /// every codeword.
    pub fn l2_table(&self, query: &[f32], table: &mut [f32]) {
        self.fill_table(query, table, paradox_kernels::l2_squared);
    }

    /// Fills `table` (`m × 16`) with negated inner products (lower is closer).
    pub fn neg_dot_table(&self, query: &[f32], table: &mut [f32]) {
        self.fill_table(query, table, |a, b| -paradox_kernels::dot(a, b));
    }

    fn fill_table(&self, query: &[f32], table: &mut [f32], f: impl Fn(&[f32], &[f32]) -> f32) {
        let dsub = self.dsub();
        for j in 0..self.m {
            let sub = &query[j * dsub..(j + 1) * dsub];
            for c in 0..PQ4_CODEWORDS {
                table[j * PQ4_CODEWORDS + c] = f(sub, self.word(j, c));
            }
        }
    }
}

/// Bytes of one packed block of 32 rows for `m` sub-quantisers.
pub fn block_bytes(m: usize) -> usize {
    m * PQ4_CODEWORDS
}

/// Blocks needed for `rows` rows.
pub fn blocks_for(rows: usize) -> usize {
    rows.div_ceil(PQ4_BLOCK)
}

/// Packs the codes of up to 32 rows (`codes[r]` = row `r`'s `m` codes, one per byte) into
/// one block: 16 bytes per sub-quantiser, byte `i` = row `i` | row `i + 16` << 4. Missing
/// rows are code 0 (the caller never reports them).
pub fn pack_block(codes: &[&[u8]], m: usize, out: &mut [u8]) {
    out.fill(0);
    for (r, code) in codes.iter().enumerate().take(PQ4_BLOCK) {
        for (j, &c) in code.iter().enumerate().take(m) {
            let byte = &mut out[j * PQ4_CODEWORDS + r % 16];
            *byte |= if r < 16 { c & 15 } else { (c & 15) << 4 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::SplitMix;

    fn random(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix::new(seed);
        (0..n * dim).map(|_| rng.next_f64() as f32 - 0.5).collect()
    }

    #[test]
    fn fast_scan_estimates_track_the_distance_to_the_decoded_vector() {
        let (dim, m) = (32, 16);
        let rows = random(500, dim, 1);
        let pq = Pq4Quantizer::train(&rows, dim, m, 10, 2).unwrap();
        let codes: Vec<Vec<u8>> = rows
            .chunks_exact(dim)
            .map(|r| {
                let mut c = vec![0u8; m];
                pq.encode(r, &mut c);
                c
            })
            .collect();
        let query = random(1, dim, 9);
        for (name, neg_dot) in [("l2", false), ("dot", true)] {
            let mut table = vec![0f32; m * PQ4_CODEWORDS];
            if neg_dot {
                pq.neg_dot_table(&query, &mut table);
            } else {
                pq.l2_table(&query, &mut table);
            }
            let mut lut = Pq4Lut::default();
            lut.quantise(&table);
            let mut decoded = vec![0f32; dim];
            let mut block = vec![0u8; block_bytes(m)];
            for chunk in codes.chunks(PQ4_BLOCK) {
                let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                pack_block(&refs, m, &mut block);
                let mut sums = [0u16; PQ4_BLOCK];
                paradox_kernels::pq4_block(&lut.bytes, &block, &mut sums);
                for (code, &sum) in chunk.iter().zip(&sums) {
                    pq.decode(code, &mut decoded);
                    let exact = if neg_dot {
                        -paradox_kernels::dot(&query, &decoded)
                    } else {
                        paradox_kernels::l2_squared(&query, &decoded)
                    };
                    // Each of the m lookups is off by at most half a byte unit.
                    let bound = m as f32 * 0.5 / lut.scale + 1e-4;
                    let estimate = lut.distance(sum);
                    assert!(
                        (estimate - exact).abs() <= bound,
                        "{name}: {estimate} vs {exact}"
                    );
                    let cut = lut.sum_below(exact + bound).unwrap();
                    assert!(sum as u32 <= cut, "{name}: pruning would drop a candidate");
                }
            }
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(Pq4Quantizer::train(&random(100, 10, 1), 10, 3, 2, 0)
            .unwrap_err()
            .contains("multiple of 3"));
        assert!(Pq4Quantizer::train(&random(10, 8, 1), 8, 2, 2, 0)
            .unwrap_err()
            .contains("at least 16"));
    }
}

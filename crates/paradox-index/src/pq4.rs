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
//!
//! Attenuation and the search gain: with 16 codewords per sub-space a decoded residual
//! `r̂` keeps only part of the residual `r` (each codeword is the mean of its cell, so
//! `r̂` is shrunk towards 0): along a query direction `p`, `p·r̂ ≈ β p·r` plus noise,
//! with β ≈ 0.2 at 4-bit m = 16 and ≈ 0.5 at m = 64 on 384-d sentence embeddings. An IVF
//! estimate adds that shrunk term to an *exact* per-list term (`−q·c`, `‖q − c‖²`), so
//! rows far from their centroid in the query's direction, which is where the true
//! neighbours in other lists sit, were pushed down (recall@10 0.87 vs 0.93 for FAISS,
//! which codes raw vectors, at m = 64 on MiniLM). Searches therefore stretch the
//! residual part by `gain = 1 / β`, measured on the training residuals at train time
//! ([`Pq4Quantizer::gain`]; the search tables [`Pq4Quantizer::neg_dot_search_table`]
//! and [`Pq4Quantizer::l2_search_table`] include it), which makes the estimate
//! proportional to the exact score again plus noise.

use paradox_kernels::PQ4_BLOCK;

/// Codewords per sub-quantiser (4-bit codes).
pub const PQ4_CODEWORDS: usize = 16;

/// Training residuals used as pseudo-queries when measuring the attenuation.
const GAIN_PROBES: usize = 256;
/// Training residuals whose codes are measured against them.
const GAIN_TARGETS: usize = 4096;
/// Upper bound of the search gain: a quantiser that keeps almost nothing of the residual
/// (β → 0) would otherwise let its noise drown the exact per-list term.
const MAX_GAIN: f32 = 8.0;

/// A trained 4-bit product quantiser.
#[derive(Debug, Clone, PartialEq)]
pub struct Pq4Quantizer {
    dim: usize,
    m: usize,
    /// `m × 16 × dsub` codewords, sub-space major.
    codebooks: Vec<f32>,
    /// The same codewords `m × dsub × 16` (dimension-major within a sub-space), for
    /// building L2 tables 16 codewords at a time.
    by_dim: Vec<f32>,
    /// Stretch of the residual part of search estimates, `1 / β` (see the module docs).
    gain: f32,
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
        // Sub-tables as fixed-size arrays: the minima, maxima and conversions below then
        // compile to whole-vector instructions (a search quantises one table per probed
        // list under L2, so this runs nprobe times per query).
        let subs = || {
            table
                .chunks_exact(PQ4_CODEWORDS)
                .map(|sub| <&[f32; PQ4_CODEWORDS]>::try_from(sub).expect("16 codewords"))
        };
        let range = |sub: &[f32; PQ4_CODEWORDS]| {
            sub.iter().fold((sub[0], sub[0]), |(lo, hi), &x| {
                (if x < lo { x } else { lo }, if x > hi { x } else { hi })
            })
        };
        let mut bias = 0f32;
        let mut widest = 0f32;
        for sub in subs() {
            let (lo, hi) = range(sub);
            bias += lo;
            widest = widest.max(hi - lo);
        }
        let scale = if widest > 0.0 { 255.0 / widest } else { 1.0 };
        self.bytes
            .resize(table.len() / PQ4_CODEWORDS * PQ4_CODEWORDS, 0);
        for (sub, out) in subs().zip(self.bytes.chunks_exact_mut(PQ4_CODEWORDS)) {
            let lo = range(sub).0;
            // Nearest, ties up: the values are never negative, so adding a half and
            // truncating (`as` saturates at 255) rounds as `round` would, without its
            // library call per entry.
            for (o, &x) in out.iter_mut().zip(sub) {
                *o = ((x - lo) * scale + 0.5) as u8;
            }
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
        let pq = Self::from_parts(dim, m, books)?;
        let gain = match pq.attenuation(rows) {
            Some(beta) if beta.is_finite() && beta > 0.0 => (1.0 / beta).clamp(1.0, MAX_GAIN),
            _ => 1.0,
        };
        pq.with_gain(gain)
    }

    /// Rebuilds a quantiser from its parts (e.g. read from a file), with a gain of 1 (set
    /// the trained one with [`Self::with_gain`]).
    pub fn from_parts(dim: usize, m: usize, codebooks: Vec<f32>) -> Result<Self, String> {
        if m == 0 || !dim.is_multiple_of(m) || codebooks.len() != dim * PQ4_CODEWORDS {
            return Err(format!(
                "pq4 codebooks: dim {dim}, m {m}, {} values",
                codebooks.len()
            ));
        }
        let dsub = dim / m;
        let mut by_dim = vec![0f32; codebooks.len()];
        for (words, out) in codebooks
            .chunks_exact(PQ4_CODEWORDS * dsub)
            .zip(by_dim.chunks_exact_mut(PQ4_CODEWORDS * dsub))
        {
            for (c, word) in words.chunks_exact(dsub).enumerate() {
                for (d, &x) in word.iter().enumerate() {
                    out[d * PQ4_CODEWORDS + c] = x;
                }
            }
        }
        Ok(Pq4Quantizer {
            dim,
            m,
            codebooks,
            by_dim,
            gain: 1.0,
        })
    }

    /// The same quantiser with search gain `gain` (in `(0, 8]`; training never sets more).
    pub fn with_gain(self, gain: f32) -> Result<Self, String> {
        if !(gain > 0.0 && gain <= MAX_GAIN) {
            return Err(format!("pq4 gain must be in (0, {MAX_GAIN}], got {gain}"));
        }
        Ok(Pq4Quantizer { gain, ..self })
    }

    /// How much search tables stretch the residual part of an estimate: `1 / β`, where β
    /// is the slope of `p·r̂` on `p·r` measured at training (1 for a quantiser built by
    /// [`Self::from_parts`]).
    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// The attenuation β of the codes of `rows`: the least-squares slope of `p·r̂` on
    /// `p·r`, over pairs of a training row `r` (decoded `r̂`) and another training row
    /// `p` taken as a query direction (queries point where the data does, which a random
    /// direction would not: there β is lower). `None` with fewer than two rows.
    fn attenuation(&self, rows: &[f32]) -> Option<f32> {
        let dim = self.dim;
        let n = rows.len() / dim;
        let probe_every = n.div_ceil(GAIN_PROBES).max(2);
        let target_every = n.div_ceil(GAIN_TARGETS).max(1);
        let (mut probes, mut targets, mut decoded) = (Vec::new(), Vec::new(), Vec::new());
        let mut code = vec![0u8; self.m];
        let mut row_hat = vec![0f32; dim];
        for (i, row) in rows.chunks_exact(dim).enumerate() {
            if i % probe_every == 0 {
                probes.extend_from_slice(row);
            } else if i % target_every == 0 {
                targets.extend_from_slice(row);
                self.encode(row, &mut code);
                self.decode(&code, &mut row_hat);
                decoded.extend_from_slice(&row_hat);
            }
        }
        if probes.is_empty() || targets.is_empty() {
            return None;
        }
        let pairs = probes.len() / dim * (targets.len() / dim);
        let (mut coded, mut exact) = (vec![0f32; pairs], vec![0f32; pairs]);
        paradox_kernels::dot_many_to_many(&probes, &decoded, dim, &mut coded);
        paradox_kernels::dot_many_to_many(&probes, &targets, dim, &mut exact);
        let (covariance, variance) = coded
            .iter()
            .zip(&exact)
            .fold((0f64, 0f64), |(c, v), (&y, &x)| {
                (c + y as f64 * x as f64, v + x as f64 * x as f64)
            });
        (variance > 0.0).then(|| (covariance / variance) as f32)
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

    /// Fills `table` (`m × 16`) for scanning codes under `Metric::Dot`: negated inner
    /// products of `query`'s sub-vectors with every codeword, times [`Self::gain`]. Add
    /// `−q·c` per list.
    pub fn neg_dot_search_table(&self, query: &[f32], table: &mut [f32]) {
        let gain = self.gain;
        self.fill_table(query, table, |a, b| -gain * paradox_kernels::dot(a, b));
    }

    /// Fills `table` (`m × 16`) for scanning codes under `Metric::L2`, from the residual
    /// query `q − c`: entry `‖pⱼ‖² + gain · (‖pⱼ − w‖² − ‖pⱼ‖²)` for sub-vector `pⱼ` and
    /// codeword `w`, so the cross term `−2 p·r̂` and the norm `‖r̂‖²` are both stretched.
    /// Stretching the cross term alone, or the norm by `gain²` (the distance to
    /// `c + gain · r̂`), measured worse on MiniLM.
    pub fn l2_search_table(&self, residual_query: &[f32], table: &mut [f32]) {
        // Per sub-space, the 16 codewords side by side: one 16-wide multiply-add per
        // dimension, no call per codeword.
        let dsub = self.dsub();
        for ((row, sub), words) in table
            .chunks_exact_mut(PQ4_CODEWORDS)
            .zip(residual_query.chunks_exact(dsub))
            .zip(self.by_dim.chunks_exact(PQ4_CODEWORDS * dsub))
            .take(self.m)
        {
            let mut squared = [0f32; PQ4_CODEWORDS];
            let mut own = 0f32;
            for (&q, words) in sub.iter().zip(words.chunks_exact(PQ4_CODEWORDS)) {
                own += q * q;
                for (acc, &w) in squared.iter_mut().zip(words) {
                    let diff = q - w;
                    *acc += diff * diff;
                }
            }
            for (slot, &l2) in row.iter_mut().zip(&squared) {
                *slot = own + self.gain * (l2 - own);
            }
        }
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

    /// An L2 table entry is `‖q_j‖² + gain · (‖q_j − word‖² − ‖q_j‖²)` for each
    /// sub-space `j` and codeword.
    #[test]
    fn l2_search_tables_hold_the_stretched_distance_to_each_codeword() {
        let (dim, m) = (48, 8);
        let rows = random(400, dim, 11);
        let pq = Pq4Quantizer::train(&rows, dim, m, 8, 3).unwrap();
        let query = random(1, dim, 12);
        let mut table = vec![f32::NAN; m * PQ4_CODEWORDS];
        pq.l2_search_table(&query, &mut table);
        let dsub = dim / m;
        for j in 0..m {
            let sub = &query[j * dsub..(j + 1) * dsub];
            let own: f32 = sub.iter().map(|x| x * x).sum();
            for c in 0..PQ4_CODEWORDS {
                let l2: f32 = sub
                    .iter()
                    .zip(pq.word(j, c))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                let want = own + pq.gain() * (l2 - own);
                let got = table[j * PQ4_CODEWORDS + c];
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "{j} {c}: {got} vs {want}"
                );
            }
        }
    }

    /// Each entry is its sub-table's offset from the minimum in units of the widest range
    /// over 255, rounded to nearest; the minimum of every sub-table is 0 and the widest
    /// range's maximum is 255.
    #[test]
    fn a_quantised_table_rounds_each_entry_to_the_nearest_step() {
        let table: Vec<f32> = random(8 * PQ4_CODEWORDS, 1, 7)
            .iter()
            .enumerate()
            .map(|(i, x)| x * (1 + i / PQ4_CODEWORDS) as f32)
            .collect();
        let mut lut = Pq4Lut::default();
        lut.quantise(&table);
        assert_eq!(lut.bytes.len(), table.len());
        for (sub, bytes) in table
            .chunks_exact(PQ4_CODEWORDS)
            .zip(lut.bytes.chunks_exact(PQ4_CODEWORDS))
        {
            let lo = sub.iter().copied().fold(f32::INFINITY, f32::min);
            for (&x, &b) in sub.iter().zip(bytes) {
                let want = ((x - lo) * lut.scale).round().min(255.0) as u8;
                assert_eq!(b, want, "entry {x}");
            }
            assert_eq!(*bytes.iter().min().unwrap(), 0);
        }
        assert_eq!(*lut.bytes.iter().max().unwrap(), 255);
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

    /// Least-squares slope of the search table's estimate of `p·r` on the exact `p·r`,
    /// over held-out rows `r` and query directions `p` drawn like the training rows.
    fn estimate_slope(pq: &Pq4Quantizer, dim: usize) -> f64 {
        let (rows, probes) = (random(400, dim, 11), random(40, dim, 12));
        let m = pq.m();
        let mut table = vec![0f32; m * PQ4_CODEWORDS];
        let mut code = vec![0u8; m];
        let (mut covariance, mut variance) = (0f64, 0f64);
        for p in probes.chunks_exact(dim) {
            pq.neg_dot_search_table(p, &mut table);
            for r in rows.chunks_exact(dim) {
                pq.encode(r, &mut code);
                let estimate: f32 = code
                    .iter()
                    .enumerate()
                    .map(|(j, &c)| -table[j * PQ4_CODEWORDS + c as usize])
                    .sum();
                let exact = paradox_kernels::dot(p, r) as f64;
                covariance += estimate as f64 * exact;
                variance += exact * exact;
            }
        }
        covariance / variance
    }

    #[test]
    fn search_tables_undo_the_attenuation_of_coarse_codes() {
        // 16 codewords per 8-d sub-space keep little of a uniform residual: `q·r̂` is about
        // 0.4 `q·r`. Added to an exact per-list term (`−q·c` in IVF), that ranked rows
        // far from their centroid, the neighbours found in other lists, too low
        // (recall@10 0.87 instead of 0.94 at m = 64 on MiniLM). The search tables must
        // scale the residual term back to a slope of about 1.
        let (dim, m) = (64, 8);
        let pq = Pq4Quantizer::train(&random(4000, dim, 10), dim, m, 10, 3).unwrap();
        let plain = Pq4Quantizer::from_parts(dim, m, pq.codebooks().to_vec()).unwrap();
        let attenuated = estimate_slope(&plain, dim);
        let corrected = estimate_slope(&pq, dim);
        assert!(attenuated < 0.7, "plain codes: slope {attenuated}");
        assert!(
            (0.9..1.1).contains(&corrected),
            "gain {}: slope {corrected}",
            pq.gain()
        );

        // The L2 table stretches `‖p − r̂‖² − ‖p‖²` by the same gain.
        let p = random(1, dim, 13);
        let (mut stretched, mut exact) = (vec![0f32; m * 16], vec![0f32; m * 16]);
        pq.l2_search_table(&p, &mut stretched);
        pq.l2_table(&p, &mut exact);
        let own = paradox_kernels::norm_squared(&p);
        let mut code = vec![0u8; m];
        for r in random(20, dim, 14).chunks_exact(dim) {
            pq.encode(r, &mut code);
            let sum = |t: &[f32]| -> f32 {
                code.iter()
                    .enumerate()
                    .map(|(j, &c)| t[j * PQ4_CODEWORDS + c as usize])
                    .sum()
            };
            let want = own + pq.gain() * (sum(&exact) - own);
            assert!((sum(&stretched) - want).abs() < 1e-3 * want.abs().max(1.0));
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

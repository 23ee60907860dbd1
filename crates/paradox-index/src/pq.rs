//! Product quantisation (Jégou et al., 2011): a vector is cut into `m` sub-vectors of
//! `dim / m` values and each is replaced by the byte naming its nearest of 256 codewords,
//! learned per sub-space by k-means. A code is `m` bytes.
//!
//! Searching uses asymmetric distances: for one query, a table of `m × 256` partial
//! distances (query sub-vector to every codeword) is computed once, after which a
//! code's distance is `m` table lookups and adds ([`ProductQuantizer::adc`]).
//!
//! Partial distances add up exactly for squared L2 and for inner products, the two
//! internal distances of [`Metric`](paradox_kernels::Metric): `‖q − x̂‖² = Σⱼ ‖qⱼ − x̂ⱼ‖²`
//! and `q·x̂ = Σⱼ qⱼ·x̂ⱼ`.

use crate::kmeans::{self, KMeansParams};
use paradox_kernels::quant_table;
use rayon::prelude::*;

/// Codewords per sub-quantiser (8-bit codes).
pub const PQ_CODEWORDS: usize = 256;

/// A trained product quantiser.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductQuantizer {
    dim: usize,
    m: usize,
    /// `m × 256 × dsub` codewords, sub-space major.
    codebooks: Vec<f32>,
    /// The same codewords transposed per sub-space, `m × dsub × 256`: a table row (one
    /// sub-query against all 256 codewords) is then `dsub` passes of contiguous,
    /// vectorisable arithmetic instead of 256 tiny dot products.
    transposed: Vec<f32>,
}

/// Codewords of each sub-space laid out dimension-major (see `transposed`).
fn transpose(codebooks: &[f32], m: usize, dsub: usize) -> Vec<f32> {
    let mut out = vec![0f32; codebooks.len()];
    for j in 0..m {
        let book = &codebooks[j * PQ_CODEWORDS * dsub..(j + 1) * PQ_CODEWORDS * dsub];
        let dst = &mut out[j * PQ_CODEWORDS * dsub..(j + 1) * PQ_CODEWORDS * dsub];
        for (c, word) in book.chunks_exact(dsub).enumerate() {
            for (d, &x) in word.iter().enumerate() {
                dst[d * PQ_CODEWORDS + c] = x;
            }
        }
    }
    out
}

/// Learns `m` codebooks of `k` codewords each, one k-means per sub-space of `dim / m`
/// values; returns them concatenated (`m × k × dsub`). `name` prefixes the errors.
pub(crate) fn train_codebooks(
    name: &str,
    rows: &[f32],
    dim: usize,
    m: usize,
    k: usize,
    iterations: usize,
    seed: u64,
) -> Result<Vec<f32>, String> {
    if m == 0 || dim == 0 || !dim.is_multiple_of(m) {
        return Err(format!(
            "{name} m must divide the dimension: {dim} is not a multiple of {m}"
        ));
    }
    let n = rows.len() / dim;
    if n < k {
        return Err(format!("{name} needs at least {k} training rows, got {n}"));
    }
    let dsub = dim / m;
    let books: Result<Vec<Vec<f32>>, String> = (0..m)
        .into_par_iter()
        .map(|j| {
            let sub: Vec<f32> = rows
                .chunks_exact(dim)
                .flat_map(|r| r[j * dsub..(j + 1) * dsub].iter().copied())
                .collect();
            kmeans::train(
                &sub,
                dsub,
                &KMeansParams {
                    k,
                    iterations,
                    seed: seed.wrapping_add(j as u64),
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())
        })
        .collect();
    Ok(books?.concat())
}

impl ProductQuantizer {
    /// Learns `m` codebooks from `rows` (`dim` values each). `dim` must be a multiple of
    /// `m` and there must be at least 256 rows.
    pub fn train(
        rows: &[f32],
        dim: usize,
        m: usize,
        iterations: usize,
        seed: u64,
    ) -> Result<ProductQuantizer, String> {
        let books = train_codebooks("pq", rows, dim, m, PQ_CODEWORDS, iterations, seed)?;
        Self::from_parts(dim, m, books)
    }

    /// Rebuilds a quantiser from its parts (e.g. read from a file).
    pub fn from_parts(dim: usize, m: usize, codebooks: Vec<f32>) -> Result<Self, String> {
        if m == 0 || !dim.is_multiple_of(m) || codebooks.len() != dim * PQ_CODEWORDS {
            return Err(format!(
                "pq codebooks: dim {dim}, m {m}, {} values",
                codebooks.len()
            ));
        }
        let transposed = transpose(&codebooks, m, dim / m);
        Ok(ProductQuantizer {
            dim,
            m,
            codebooks,
            transposed,
        })
    }

    /// Vector length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Sub-quantisers = bytes per code.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Values per sub-vector.
    pub fn dsub(&self) -> usize {
        self.dim / self.m
    }

    /// The codewords, `m × 256 × dsub`.
    pub fn codebooks(&self) -> &[f32] {
        &self.codebooks
    }

    fn book(&self, j: usize) -> &[f32] {
        let size = PQ_CODEWORDS * self.dsub();
        &self.codebooks[j * size..(j + 1) * size]
    }

    /// Sub-space `j`'s codewords, dimension-major (`dsub × 256`).
    #[inline]
    fn transposed_book(&self, j: usize) -> &[f32] {
        let size = PQ_CODEWORDS * self.dsub();
        &self.transposed[j * size..(j + 1) * size]
    }

    /// Squared L2 distances from one sub-vector (of sub-space `j`) to its 256 codewords.
    #[inline]
    fn l2_row(&self, j: usize, sub: &[f32], out: &mut [f32]) {
        (quant_table().pq_l2_rows)(sub, self.transposed_book(j), out)
    }

    /// Negated inner products of one sub-vector (of sub-space `j`) with its codewords.
    #[inline]
    fn neg_dot_row(&self, j: usize, sub: &[f32], out: &mut [f32]) {
        (quant_table().pq_neg_dot_rows)(sub, self.transposed_book(j), out)
    }

    /// Encodes one vector into `m` bytes.
    pub fn encode(&self, row: &[f32], code: &mut [u8]) {
        let dsub = self.dsub();
        let nearest = quant_table().pq_l2_nearest;
        for (j, slot) in code.iter_mut().enumerate().take(self.m) {
            let sub = &row[j * dsub..(j + 1) * dsub];
            *slot = nearest(sub, self.transposed_book(j)) as u8;
        }
    }

    /// Encodes many rows in parallel (`rows.len() / dim` codes of `m` bytes).
    pub fn encode_all(&self, rows: &[f32]) -> Vec<u8> {
        let mut codes = vec![0u8; rows.len() / self.dim * self.m];
        codes
            .par_chunks_mut(self.m * 256)
            .zip(rows.par_chunks(self.dim * 256))
            .for_each(|(codes, rows)| {
                for (code, row) in codes
                    .chunks_exact_mut(self.m)
                    .zip(rows.chunks_exact(self.dim))
                {
                    self.encode(row, code);
                }
            });
        codes
    }

    /// The vector a code stands for.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        let dsub = self.dsub();
        for (j, &c) in code.iter().enumerate().take(self.m) {
            let word = &self.book(j)[c as usize * dsub..(c as usize + 1) * dsub];
            out[j * dsub..(j + 1) * dsub].copy_from_slice(word);
        }
    }

    /// Fills `table` (`m × 256`) with squared L2 distances from the sub-vectors of
    /// `query` to every codeword.
    pub fn l2_table(&self, query: &[f32], table: &mut [f32]) {
        let dsub = self.dsub();
        for (j, t) in table
            .chunks_exact_mut(PQ_CODEWORDS)
            .enumerate()
            .take(self.m)
        {
            self.l2_row(j, &query[j * dsub..(j + 1) * dsub], t);
        }
    }

    /// Fills `table` (`m × 256`) with negated inner products of the sub-vectors of
    /// `query` with every codeword (lower is closer, as for `Metric::Dot`).
    pub fn neg_dot_table(&self, query: &[f32], table: &mut [f32]) {
        let dsub = self.dsub();
        for (j, t) in table
            .chunks_exact_mut(PQ_CODEWORDS)
            .enumerate()
            .take(self.m)
        {
            self.neg_dot_row(j, &query[j * dsub..(j + 1) * dsub], t);
        }
    }

    /// Asymmetric distance of one code through a table from [`Self::l2_table`] or
    /// [`Self::neg_dot_table`].
    #[inline]
    pub fn adc(table: &[f32], code: &[u8]) -> f32 {
        // Four independent sums hide the add latency; codes are short (8..64 bytes).
        let mut acc = [0f32; 4];
        let mut chunks = code.chunks_exact(4);
        let mut j = 0;
        for c in &mut chunks {
            for (lane, &b) in c.iter().enumerate() {
                // Bounds-checked: `table.len() == m × 256` and a byte is < 256.
                acc[lane] += table[(j + lane) * PQ_CODEWORDS + b as usize];
            }
            j += 4;
        }
        for (lane, &b) in chunks.remainder().iter().enumerate() {
            acc[lane] += table[(j + lane) * PQ_CODEWORDS + b as usize];
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3])
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
    fn adc_equals_distance_to_decoded_vector() {
        let (dim, m) = (16, 4);
        let rows = random(600, dim, 1);
        let pq = ProductQuantizer::train(&rows, dim, m, 8, 3).unwrap();
        let codes = pq.encode_all(&rows);
        let query = random(1, dim, 99);
        let mut l2 = vec![0f32; m * PQ_CODEWORDS];
        let mut ip = vec![0f32; m * PQ_CODEWORDS];
        pq.l2_table(&query, &mut l2);
        pq.neg_dot_table(&query, &mut ip);
        let mut decoded = vec![0f32; dim];
        for code in codes.chunks_exact(m).take(50) {
            pq.decode(code, &mut decoded);
            let exact_l2 = paradox_kernels::l2_squared(&query, &decoded);
            let exact_ip = -paradox_kernels::dot(&query, &decoded);
            assert!((ProductQuantizer::adc(&l2, code) - exact_l2).abs() < 1e-4);
            assert!((ProductQuantizer::adc(&ip, code) - exact_ip).abs() < 1e-4);
        }
    }

    #[test]
    fn reconstruction_error_is_small_against_data_spread() {
        let (dim, m) = (32, 8);
        let rows = random(2000, dim, 5);
        let pq = ProductQuantizer::train(&rows, dim, m, 10, 1).unwrap();
        let codes = pq.encode_all(&rows);
        let mut decoded = vec![0f32; dim];
        let (mut err, mut spread) = (0f64, 0f64);
        for (row, code) in rows.chunks_exact(dim).zip(codes.chunks_exact(m)) {
            pq.decode(code, &mut decoded);
            err += paradox_kernels::l2_squared(row, &decoded) as f64;
            spread += paradox_kernels::norm_squared(row) as f64;
        }
        // Uniform data in [-0.5, 0.5): 256 codewords per 4-d sub-space cut the error to
        // well under a third of the variance.
        assert!(err < 0.35 * spread, "error {err} vs spread {spread}");
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(ProductQuantizer::train(&random(300, 10, 1), 10, 3, 2, 0)
            .unwrap_err()
            .contains("multiple of 3"));
        assert!(ProductQuantizer::train(&random(10, 8, 1), 8, 2, 2, 0)
            .unwrap_err()
            .contains("at least 256"));
    }
}

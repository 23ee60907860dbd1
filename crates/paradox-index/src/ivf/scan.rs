//! Scoring inverted lists for one query.
//!
//! A [`QueryScan`] holds what a query needs before any list is read: the PQ table (inner
//! products: one per query), the rotated query (OPQ), the SQ8 query, the quantised 4-bit
//! table; with L2 the tables depend on the list's centroid too and are rebuilt per list
//! into the same buffers. [`QueryScan::list`] then scores one list's rows from its codes.
//! A search scans its probed lists with one `QueryScan`; a batch keeps one per query and
//! hands each list's codes to every query that probes it; a group of indexes with the same
//! quantisers (see `super::group`) scans list `l` of every index with the table made once.

use super::{IvfIndex, Residuals};
use crate::pq::{ProductQuantizer, PQ_CODEWORDS};
use crate::pq4::{self, Pq4Lut, PQ4_CODEWORDS};
use crate::VectorView;
use paradox_kernels::{Metric, Sq8Query, TopK};

/// Rows of an SQ8 list scored per call of the batched kernel.
const SQ8_BLOCK: usize = 64;

/// `0, 1, …`: the positions of a block's rows in its codes.
const BLOCK_POSITIONS: [u32; SQ8_BLOCK] = {
    let mut positions = [0u32; SQ8_BLOCK];
    let mut i = 0;
    while i < SQ8_BLOCK {
        positions[i] = i as u32;
        i += 1;
    }
    positions
};

/// One query made ready to score lists of an [`IvfIndex`]. See the module docs.
pub(super) struct QueryScan<'a> {
    index: &'a IvfIndex,
    query: &'a [f32],
    /// OPQ: the query rotated (codes and centroids live in the rotated space); empty
    /// otherwise.
    rotated: Vec<f32>,
    /// L2: `query − centroid` of the list being scanned.
    residual: Vec<f32>,
    /// PQ / 4-bit PQ partial distances.
    table: Vec<f32>,
    /// 4-bit PQ: `table` quantised to bytes.
    lut: Pq4Lut,
    /// SQ8 with inner products: the query's scorer, shared by every list.
    sq8: Option<Sq8Query<'a>>,
    /// The candidates are re-ranked (see [`QueryScan::new`]).
    reranked: bool,
    /// The list whose L2 table (`table`, `lut`) is ready, if any.
    table_list: Option<usize>,
}

impl<'a> QueryScan<'a> {
    /// `reranked`: the candidates are re-ranked exactly afterwards, so their scores may
    /// be coarser (SQ8 under L2 then goes through the integer kernel, whose distances can
    /// be off by 10 % or more: the expansion it needs subtracts large terms). SQ8 under
    /// inner products always does: its integer scores stay within a few per cent.
    pub(super) fn new(index: &'a IvfIndex, query: &'a [f32], reranked: bool) -> QueryScan<'a> {
        let dim = index.dim;
        let l2 = index.metric == Metric::L2;
        let mut scan = QueryScan {
            index,
            query,
            rotated: Vec::new(),
            residual: vec![0f32; dim],
            table: Vec::new(),
            lut: Pq4Lut::default(),
            sq8: None,
            reranked,
            table_list: None,
        };
        match &index.residuals {
            Residuals::Flat => {}
            Residuals::Pq(pq) => {
                scan.table = vec![0f32; pq.m() * PQ_CODEWORDS];
                if !l2 {
                    pq.neg_dot_table(query, &mut scan.table);
                }
            }
            Residuals::OpqPq { rotation, pq, .. } => {
                scan.rotated = vec![0f32; dim];
                rotation.apply(query, &mut scan.rotated);
                scan.table = vec![0f32; pq.m() * PQ_CODEWORDS];
                if !l2 {
                    pq.neg_dot_table(&scan.rotated, &mut scan.table);
                }
            }
            Residuals::Pq4(pq) => {
                scan.table = vec![0f32; pq.m() * PQ4_CODEWORDS];
                if !l2 {
                    pq.neg_dot_search_table(query, &mut scan.table);
                    scan.lut.quantise(&scan.table);
                }
            }
            Residuals::Sq8(sq) => {
                if !l2 {
                    scan.sq8 = Some(sq.query(query, Metric::Dot));
                }
            }
        }
        scan
    }

    /// Scores list `l` of `part`, whose codes are `codes`, into `top` under keys
    /// `key_base + row` (rows `allowed` rejects are skipped). `part` is the index the scan
    /// was made for, or one with the same quantisers. `Flat` lists are scored exactly
    /// from `vectors` (`part`'s rows).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn list(
        &mut self,
        part: &IvfIndex,
        vectors: VectorView<'_>,
        l: usize,
        codes: &[u8],
        allowed: &dyn Fn(u32) -> bool,
        key_base: u64,
        top: &mut TopK,
    ) {
        let QueryScan {
            index,
            query,
            rotated,
            residual,
            table,
            lut,
            sq8,
            reranked,
            table_list,
        } = self;
        let dim = index.dim;
        let l2 = index.metric == Metric::L2;
        let rows = part.list_rows(l);
        // Per-list L2 tables are made once per list, whichever part is scanned.
        let fresh_table = *table_list != Some(l);
        *table_list = Some(l);
        // `query − centroid` into `residual`, for per-list L2 tables.
        let residual_of = |residual: &mut Vec<f32>, query: &[f32], centroids: &[f32]| {
            let centroid = &centroids[l * dim..(l + 1) * dim];
            for ((r, &q), &c) in residual.iter_mut().zip(query).zip(centroid) {
                *r = q - c;
            }
        };
        // Inner products: `−q·c`, the list's constant.
        let dot_base = |query: &[f32], centroids: &[f32]| {
            -paradox_kernels::dot(query, &centroids[l * dim..(l + 1) * dim])
        };
        match &index.residuals {
            Residuals::Flat => {
                for &row in rows {
                    if allowed(row) {
                        let d = index.metric.distance(query, vectors.row(row as usize));
                        top.push(key_base + row as u64, d);
                    }
                }
            }
            Residuals::Pq(pq) | Residuals::OpqPq { pq, .. } => {
                let (query, centroids): (&[f32], &[f32]) = match &index.residuals {
                    Residuals::OpqPq {
                        rotated_centroids, ..
                    } => (rotated, rotated_centroids),
                    _ => (query, &index.centroids),
                };
                let base = if l2 {
                    if fresh_table {
                        residual_of(residual, query, centroids);
                        pq.l2_table(residual, table);
                    }
                    0.0
                } else {
                    dot_base(query, centroids)
                };
                let m = pq.m();
                for (code, &row) in codes.chunks_exact(m).zip(rows) {
                    let d = base + ProductQuantizer::adc(table, code);
                    if d < top.threshold() && allowed(row) {
                        top.push(key_base + row as u64, d);
                    }
                }
            }
            Residuals::Sq8(sq) => match sq8 {
                // Inner products: the list's rows in blocks through the batched kernel
                // (with AVX-512 VNNI, integer products four rows per pass over the
                // query's weights; see `Sq8Query::fast_distances`).
                Some(scorer) => {
                    let base = dot_base(query, &index.centroids);
                    let mut out = [0f32; SQ8_BLOCK];
                    for (block, rows) in codes.chunks(SQ8_BLOCK * dim).zip(rows.chunks(SQ8_BLOCK)) {
                        let out = &mut out[..rows.len()];
                        scorer.fast_distances(block, dim, &BLOCK_POSITIONS[..rows.len()], out);
                        for (&d, &row) in out.iter().zip(rows) {
                            let d = base + d;
                            if d < top.threshold() && allowed(row) {
                                top.push(key_base + row as u64, d);
                            }
                        }
                    }
                }
                // L2: the list's own residual query; with the code norms (codes in RAM,
                // candidates re-ranked), blocks of rows through the batched kernel, else
                // each row decoded in `f32` registers.
                None => {
                    residual_of(residual, query, &index.centroids);
                    let scorer = sq.query(residual, Metric::L2);
                    // SQ8 under L2, codes in RAM and the candidates re-ranked: every row's
                    // code norm, in code order, for the batched kernel.
                    let Some(norms) = reranked.then(|| part.sq8_norms()).flatten() else {
                        for (code, &row) in codes.chunks_exact(dim).zip(rows) {
                            let d = scorer.distance(code);
                            if d < top.threshold() && allowed(row) {
                                top.push(key_base + row as u64, d);
                            }
                        }
                        return;
                    };
                    let norms = &norms[part.offsets[l] as usize..part.offsets[l + 1] as usize];
                    let mut out = [0f32; SQ8_BLOCK];
                    for ((block, rows), norms) in codes
                        .chunks(SQ8_BLOCK * dim)
                        .zip(rows.chunks(SQ8_BLOCK))
                        .zip(norms.chunks(SQ8_BLOCK))
                    {
                        let out = &mut out[..rows.len()];
                        let positions = &BLOCK_POSITIONS[..rows.len()];
                        scorer.fast_distances_with_norms(block, positions, norms, out);
                        for (&d, &row) in out.iter().zip(rows) {
                            if d < top.threshold() && allowed(row) {
                                top.push(key_base + row as u64, d);
                            }
                        }
                    }
                }
            },
            Residuals::Pq4(pq) => {
                // Per block of 32 rows, one kernel call gives every row's quantised
                // distance; rows that cannot beat the threshold are skipped before any
                // conversion. The tables stretch the residual part of each estimate by
                // the quantiser's gain (see `crate::pq4`: 4-bit codes shrink it).
                let base = if l2 {
                    if fresh_table {
                        residual_of(residual, query, &index.centroids);
                        pq.l2_search_table(residual, table);
                        lut.quantise(table);
                    }
                    0.0
                } else {
                    dot_base(query, &index.centroids)
                };
                let block_bytes = pq4::block_bytes(pq.m());
                for (rows, block) in rows
                    .chunks(paradox_kernels::PQ4_BLOCK)
                    .zip(codes.chunks_exact(block_bytes))
                {
                    let Some(cut) = lut.sum_below(top.threshold() - base) else {
                        continue;
                    };
                    let mut sums = [0u16; paradox_kernels::PQ4_BLOCK];
                    paradox_kernels::pq4_block(&lut.bytes, block, &mut sums);
                    for (&row, &sum) in rows.iter().zip(&sums) {
                        if sum as u32 <= cut && allowed(row) {
                            let d = base + lut.distance(sum);
                            if d < top.threshold() {
                                top.push(key_base + row as u64, d);
                            }
                        }
                    }
                }
            }
        }
    }
}

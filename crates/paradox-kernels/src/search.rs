//! Exact top-k search built on the kernels: distances are computed a block at a time into a
//! small buffer and offered to [`TopK::push_block`], so no `nq × n` matrix is ever held.

use crate::dispatch::KernelTable;
use crate::gemm::{DistanceKind, Output};
use crate::TopK;

/// Rows per block in [`scan_topk`]: 1 KiB of distances on the stack, small enough to stay
/// in L1 between the kernel and the selection.
pub(crate) const SCAN_BLOCK_ROWS: usize = 256;

pub(crate) fn scan_topk(
    table: &KernelTable,
    query: &[f32],
    rows: &[f32],
    metric_is_l2: bool,
    row_key_base: u64,
    top: &mut TopK,
) {
    let dim = query.len();
    if dim == 0 || top.k() == 0 {
        return;
    }
    let mut distances = [0f32; SCAN_BLOCK_ROWS];
    let mut key = row_key_base;
    for block in rows.chunks(SCAN_BLOCK_ROWS * dim) {
        let out = &mut distances[..block.len() / dim];
        if metric_is_l2 {
            (table.l2_squared_one_to_many)(query, block, out);
        } else {
            (table.dot_one_to_many)(query, block, out);
            for d in out.iter_mut() {
                *d = -*d;
            }
        }
        top.push_block(key, out);
        key += out.len() as u64;
    }
}

pub(crate) fn scan_rows_topk(
    table: &KernelTable,
    query: &[f32],
    data: &[f32],
    rows: &[u32],
    metric_is_l2: bool,
    row_key_base: u64,
    top: &mut TopK,
) {
    if top.k() == 0 {
        return;
    }
    let mut distances = [0f32; SCAN_BLOCK_ROWS];
    for block in rows.chunks(SCAN_BLOCK_ROWS) {
        let out = &mut distances[..block.len()];
        if metric_is_l2 {
            (table.l2_squared_gather)(query, data, block, out);
        } else {
            (table.dot_gather)(query, data, block, out);
            for d in out.iter_mut() {
                *d = -*d;
            }
        }
        top.push_block_rows(row_key_base, block, out);
    }
}

pub(crate) fn batch_topk(
    table: &KernelTable,
    queries: &[f32],
    rows: &[f32],
    dim: usize,
    metric_is_l2: bool,
    row_key_base: u64,
    tops: &mut [TopK],
) {
    if dim == 0 {
        return;
    }
    let nq = (queries.len() / dim).min(tops.len());
    debug_assert_eq!(queries.len() / dim, tops.len(), "one TopK per query");
    match nq {
        0 => {}
        // One query gains nothing from packing: stream the rows once.
        1 => scan_topk(
            table,
            &queries[..dim],
            rows,
            metric_is_l2,
            row_key_base,
            &mut tops[0],
        ),
        _ => {
            let kind = if metric_is_l2 {
                DistanceKind::L2
            } else {
                DistanceKind::NegDot
            };
            let output = Output::TopK {
                tops: &mut tops[..nq],
                key_base: row_key_base,
            };
            (table.many_to_many)(&queries[..nq * dim], rows, dim, kind, output);
        }
    }
}

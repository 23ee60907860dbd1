//! Many-vs-many distances as a blocked GEMM: `C[q][r] = queries[q] · rows[r]`.
//!
//! # Blocking scheme
//!
//! Shared by every instruction set; only the register-blocked micro-kernel
//! ([`MicroKernel`]) differs per level.
//!
//! * **Queries** are packed once per call into panels of `MR` queries, transposed so that
//!   for each dimension `k` the `MR` values `q[0..MR][k]` are adjacent (`[k][MR]`). The
//!   micro-kernel broadcasts them one by one. A last, shorter panel is packed with its own
//!   stride and run by a micro-kernel instantiated for that height: no padded queries.
//! * **Rows** are processed in blocks of `block_rows` (chosen from `dim` so a packed block,
//!   about 512 KiB, stays in L2 with room to spare). A block is packed into panels of `NR`
//!   rows, transposed so that one vector register holds dimension `k` of `NR` consecutive
//!   rows (`[k][NR]`; SIMD levels transpose in registers); the last panel is zero-padded
//!   and masked at store time. The buffer is 64-byte aligned.
//! * **k** is split into chunks of at most [`MAX_KC`] so that one query panel
//!   (`MR × kc × 4` bytes, ≤ 28 KiB) stays in L1 while the row panels of the block stream
//!   past it from L2. Later chunks accumulate into the output tile.
//! * Loop order: row block → query panel → k chunk → row panel → micro-kernel
//!   (`MR × NR` accumulators in registers, one broadcast FMA per accumulator per `k`).
//!   The finishing step (negation for `-dot`, `‖q‖² + ‖x‖² − 2q·x` clamped at 0 for L2)
//!   runs in registers on the last k chunk.
//!
//! Everything here is single-threaded by design: the engine parallelises across row ranges
//! (each rayon task calls the kernel on its own rows), which keeps the kernel free of
//! synchronisation. Scratch buffers are thread-local and reused, so steady-state calls do
//! not allocate.

use std::cell::Cell;

use crate::TopK;

/// Longest k chunk: one `14 × 512` query panel is 28 KiB, inside a 48 KiB L1.
pub(crate) const MAX_KC: usize = 512;
/// Target size of one packed row block: half of a 1 MiB L2 (Skylake-SP, Zen 4), leaving room
/// for the query panels streaming through. 1 MiB and 1.5 MiB measured no faster on a 2 MiB L2.
const ROW_BLOCK_BYTES: usize = 1 << 19;
/// Upper bound on rows per block, which bounds the top-k scratch tile (`MR × block_rows`).
const MAX_BLOCK_ROWS: usize = 1024;

/// Packed queries kept per thread between calls (16 MiB); a larger batch frees its buffer.
const SCRATCH_KEEP_FLOATS: usize = 4 << 20;

/// What the driver computes for each (query, row) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DistanceKind {
    /// `q · x`.
    Dot,
    /// `-(q · x)`: the dot-product distance (lower is closer).
    NegDot,
    /// `‖q − x‖²`, as `‖q‖² + ‖x‖² − 2 q·x` clamped at 0.
    L2,
}

/// Where results go.
#[derive(Debug)]
pub(crate) enum Output<'a> {
    /// Row-major `nq × n` matrix.
    Matrix(&'a mut [f32]),
    /// Each query's distances, a row block at a time, offered to `tops[q]` with keys
    /// `key_base + row`.
    TopK { tops: &'a mut [TopK], key_base: u64 },
}

/// How the micro-kernel finishes a tile once the accumulators hold the last k chunk.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Finish {
    /// Store `acc` (plus the tile's previous content when accumulating).
    Raw,
    /// Store `-acc`.
    Negate,
    /// Store `max(q_norms[i] + x_norms[j] - 2 acc, 0)`.
    L2 {
        q_norms: *const f32,
        x_norms: *const f32,
    },
}

/// One `rows × cols` output tile of the micro-kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tile {
    /// Top-left element; row `i` starts at `c + i * ldc`.
    pub c: *mut f32,
    pub ldc: usize,
    /// Valid columns (database rows), `1..=NR`; the rest of the register is not stored.
    pub cols: usize,
    /// Add the tile's current content (a previous k chunk) before finishing.
    pub accumulate: bool,
    pub finish: Finish,
}

/// A register-blocked `MR × NR` kernel for one instruction set.
pub(crate) trait MicroKernel {
    /// Queries per panel (broadcast operand).
    const MR: usize;
    /// Rows per panel (vector operand).
    const NR: usize;
    /// This level's pairwise dot product, for the norms of the L2 expansion.
    const DOT: fn(&[f32], &[f32]) -> f32;

    /// Computes `rows × NR` dot products over `kc` dimensions and stores them per `tile`.
    ///
    /// # Safety
    ///
    /// The CPU supports the kernel's target features; `rows` is in `1..=MR`; `q` points at
    /// `kc * rows` readable floats (`[k][rows]`), `x` at `kc * NR` (`[k][NR]`, 64-byte
    /// aligned); `tile.c` is valid for reads and writes of `tile.cols` floats in each of
    /// `rows` rows `ldc` apart; with [`Finish::L2`], `q_norms` holds `rows` floats and
    /// `x_norms` `NR`.
    unsafe fn tile(rows: usize, kc: usize, q: *const f32, x: *const f32, tile: &Tile);

    /// Packs `src` (`count <= NR` rows of `dim` floats) into `dst` (`dim × NR`, `[k][NR]`),
    /// zero-padding rows `count..NR`. Levels override it with an in-register transpose.
    ///
    /// # Safety
    ///
    /// The CPU supports the kernel's target features; `dst.len() == dim * NR` and `dst` is
    /// 64-byte aligned.
    unsafe fn pack_panel(src: &[f32], dim: usize, dst: &mut [f32]) {
        pack_panel_columns(src, dim, Self::NR, 0, dst);
    }
}

/// Finishes row `i` of a tile from plain accumulators (`acc[j]` for column `j`), for
/// micro-kernels that keep no masked vector stores (scalar, NEON).
///
/// # Safety
///
/// Row `i` of the tile holds `tile.cols <= acc.len()` valid floats; with [`Finish::L2`],
/// `q_norms[i]` and `x_norms[..tile.cols]` are readable.
pub(crate) unsafe fn store_row(tile: &Tile, i: usize, acc: &[f32]) {
    // SAFETY: per the contract.
    let out = unsafe { std::slice::from_raw_parts_mut(tile.c.add(i * tile.ldc), tile.cols) };
    for (j, (o, &sum)) in out.iter_mut().zip(acc).enumerate() {
        let v = if tile.accumulate { sum + *o } else { sum };
        *o = match tile.finish {
            Finish::Raw => v,
            Finish::Negate => -v,
            // SAFETY: per the contract, the norms of query `i` and column `j` exist.
            Finish::L2 { q_norms, x_norms } => unsafe {
                (*q_norms.add(i) + *x_norms.add(j) - 2.0 * v).max(0.0)
            },
        };
    }
}

/// 64-byte aligned, growable `f32` storage for packed panels.
#[derive(Debug, Default)]
struct AlignedBuf {
    lines: Vec<Line>,
}

#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

impl AlignedBuf {
    /// A slice of exactly `len` floats (contents unspecified), reusing the allocation.
    fn slice_mut(&mut self, len: usize) -> &mut [f32] {
        let lines = len.div_ceil(16);
        if self.lines.len() < lines {
            self.lines.resize(lines, Line([0.0; 16]));
        }
        // SAFETY: `Line` is `repr(C)` over `[f32; 16]` with no padding (64 bytes, align 64),
        // so `lines` contiguous `Line`s are `16 * lines >= len` initialised floats.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), len) }
    }
}

/// Per-thread buffers, reused across calls so that steady state does not allocate.
#[derive(Debug, Default)]
struct Scratch {
    queries: Vec<f32>,
    query_norms: Vec<f32>,
    rows: AlignedBuf,
    row_norms: Vec<f32>,
    tile: Vec<f32>,
}

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// Rows per block for `dim`: a multiple of `nr` whose packed block is about
/// [`ROW_BLOCK_BYTES`], at least one panel and at most [`MAX_BLOCK_ROWS`].
pub(crate) fn block_rows(dim: usize, nr: usize) -> usize {
    let fit = ROW_BLOCK_BYTES / (dim.max(1) * 4);
    (fit / nr * nr).clamp(nr, MAX_BLOCK_ROWS.max(nr))
}

/// Runs the blocked many-vs-many computation with micro-kernel `M`.
///
/// `nq = queries.len() / dim` (capped by the output), `n = rows.len() / dim`. For
/// [`Output::Matrix`] the output must hold `nq * n` floats; extra queries are ignored.
///
/// # Safety
///
/// The CPU supports `M`'s target features.
pub(crate) unsafe fn run<M: MicroKernel>(
    queries: &[f32],
    rows: &[f32],
    dim: usize,
    kind: DistanceKind,
    mut output: Output<'_>,
) {
    if dim == 0 {
        // Every vector is empty: all distances are 0 and there are no rows to rank.
        if let Output::Matrix(out) = output {
            out.fill(0.0);
        }
        return;
    }
    let n = rows.len() / dim;
    let nq = match &output {
        Output::Matrix(out) if n > 0 => (queries.len() / dim).min(out.len() / n),
        Output::Matrix(_) => 0,
        Output::TopK { tops, .. } => (queries.len() / dim).min(tops.len()),
    };
    if nq == 0 || n == 0 {
        return;
    }
    let queries = &queries[..nq * dim];
    let mut scratch = SCRATCH.take();
    let s = &mut scratch;

    pack_queries(queries, dim, M::MR, &mut s.queries);
    if kind == DistanceKind::L2 {
        s.query_norms.clear();
        s.query_norms
            .extend(queries.chunks_exact(dim).map(|q| (M::DOT)(q, q)));
    }

    let block = block_rows(dim, M::NR);
    let k_chunks = dim.div_ceil(MAX_KC);
    let kc_max = dim.div_ceil(k_chunks);
    if matches!(output, Output::TopK { .. }) && s.tile.len() < M::MR * block {
        s.tile.resize(M::MR * block, 0.0);
    }

    for block_start in (0..n).step_by(block) {
        let block_len = block.min(n - block_start);
        let block_rows = &rows[block_start * dim..(block_start + block_len) * dim];
        let panels = block_len.div_ceil(M::NR);
        let packed_rows = s.rows.slice_mut(panels * M::NR * dim);
        // SAFETY: features per the caller; `packed_rows` is aligned and holds `panels` panels.
        unsafe { pack_rows::<M>(block_rows, dim, packed_rows) };
        if kind == DistanceKind::L2 {
            s.row_norms.clear();
            s.row_norms
                .extend(block_rows.chunks_exact(dim).map(|x| (M::DOT)(x, x)));
            s.row_norms.resize(panels * M::NR, 0.0);
        }

        for q0 in (0..nq).step_by(M::MR) {
            let height = M::MR.min(nq - q0);
            // Panels before this one hold `q0` queries of `dim` values each.
            let q_panel = &s.queries[q0 * dim..(q0 + height) * dim];
            let (c_base, ldc) = match &mut output {
                Output::Matrix(out) => (out[q0 * n + block_start..].as_mut_ptr(), n),
                Output::TopK { .. } => (s.tile.as_mut_ptr(), block_len),
            };
            let mut k0 = 0;
            while k0 < dim {
                let kc = kc_max.min(dim - k0);
                let last = k0 + kc == dim;
                for panel in 0..panels {
                    let col0 = panel * M::NR;
                    let finish = match kind {
                        _ if !last => Finish::Raw,
                        DistanceKind::Dot => Finish::Raw,
                        DistanceKind::NegDot => Finish::Negate,
                        DistanceKind::L2 => Finish::L2 {
                            q_norms: s.query_norms[q0..].as_ptr(),
                            x_norms: s.row_norms[col0..].as_ptr(),
                        },
                    };
                    let tile = Tile {
                        // SAFETY: column `col0 < block_len` of a tile whose `height` rows of
                        // `block_len` columns lie inside `out` (Matrix: rows `q0..q0+height`
                        // of an `nq × n` matrix, `block_start + block_len <= n`) or inside
                        // `s.tile` (`MR * block` floats, `ldc = block_len <= block`).
                        c: unsafe { c_base.add(col0) },
                        ldc,
                        cols: M::NR.min(block_len - col0),
                        accumulate: k0 > 0,
                        finish,
                    };
                    let x_panel = &packed_rows[(panel * dim + k0) * M::NR..][..kc * M::NR];
                    // SAFETY: the caller guarantees the CPU features; `q_panel[k0 * height..]`
                    // holds `kc * height` floats and `x_panel` `kc * NR`, 64-byte aligned
                    // (`packed_rows` is aligned and `NR * 4` is a multiple of 64); the tile
                    // bounds are argued above; the L2 norms have `height` (queries) and `NR`
                    // (padded rows) entries from the given offsets.
                    unsafe {
                        M::tile(
                            height,
                            kc,
                            q_panel[k0 * height..].as_ptr(),
                            x_panel.as_ptr(),
                            &tile,
                        );
                    }
                }
                k0 += kc;
            }
            if let Output::TopK { tops, key_base } = &mut output {
                let key = *key_base + block_start as u64;
                for (i, top) in tops[q0..q0 + height].iter_mut().enumerate() {
                    top.push_block(key, &s.tile[i * block_len..(i + 1) * block_len]);
                }
            }
        }
    }
    // Keep small buffers for the next call; give back what a huge query batch needed.
    if scratch.queries.capacity() > SCRATCH_KEEP_FLOATS {
        scratch.queries = Vec::new();
    }
    SCRATCH.set(scratch);
}

/// Packs queries into panels of `mr` (the last may be shorter), each `[k][height]`.
fn pack_queries(queries: &[f32], dim: usize, mr: usize, dst: &mut Vec<f32>) {
    dst.clear();
    dst.resize(queries.len(), 0.0);
    for (panel, packed) in queries.chunks(mr * dim).zip(dst.chunks_mut(mr * dim)) {
        let height = panel.len() / dim;
        for (i, query) in panel.chunks_exact(dim).enumerate() {
            for (k, &v) in query.iter().enumerate() {
                packed[k * height + i] = v;
            }
        }
    }
}

/// Packs a block of rows into zero-padded panels of `M::NR` rows, each `[k][NR]`.
///
/// # Safety
///
/// The CPU supports `M`'s target features; `dst` is 64-byte aligned and holds
/// `rows.len() / dim` rows rounded up to whole panels.
unsafe fn pack_rows<M: MicroKernel>(rows: &[f32], dim: usize, dst: &mut [f32]) {
    let n = rows.len() / dim;
    for (panel, packed) in dst.chunks_exact_mut(M::NR * dim).enumerate() {
        let first = panel * M::NR;
        let count = M::NR.min(n - first);
        // SAFETY: features per the caller; each panel is `dim * NR` floats at a multiple of
        // `dim * NR * 4` bytes from an aligned start, and `NR * 4` is a multiple of 64.
        unsafe { M::pack_panel(&rows[first * dim..(first + count) * dim], dim, packed) };
    }
}

/// Portable packing of dimensions `k_start..dim` of one panel (see
/// [`MicroKernel::pack_panel`]); SIMD levels use it for the dimensions left after their
/// in-register transposes, and for short panels.
pub(crate) fn pack_panel_columns(
    src: &[f32],
    dim: usize,
    nr: usize,
    k_start: usize,
    dst: &mut [f32],
) {
    let count = src.len() / dim;
    for (j, row) in src.chunks_exact(dim).enumerate() {
        for (k, &v) in row.iter().enumerate().skip(k_start) {
            dst[k * nr + j] = v;
        }
    }
    if count < nr {
        for line in dst.chunks_exact_mut(nr).skip(k_start) {
            line[count..].fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_rows_is_a_bounded_multiple_of_nr() {
        for dim in [1, 3, 16, 128, 384, 768, 1536, 4096, 100_000] {
            for nr in [8, 16, 32] {
                let b = block_rows(dim, nr);
                assert_eq!(b % nr, 0, "dim {dim} nr {nr}");
                assert!(
                    b >= nr && b <= MAX_BLOCK_ROWS.max(nr),
                    "dim {dim} nr {nr} -> {b}"
                );
            }
        }
    }

    #[test]
    fn packing_transposes_and_pads() {
        let dim = 3;
        let rows: Vec<f32> = (0..5 * dim).map(|v| v as f32).collect();
        let mut packed = vec![f32::NAN; 2 * 4 * dim];
        pack_panel_columns(&rows[..4 * dim], dim, 4, 0, &mut packed[..4 * dim]);
        pack_panel_columns(&rows[4 * dim..], dim, 4, 0, &mut packed[4 * dim..]);
        // Panel 0, k = 1: rows 0..4 at dimension 1.
        assert_eq!(&packed[4..8], &[1.0, 4.0, 7.0, 10.0]);
        // Panel 1, k = 2: row 4 then padding.
        assert_eq!(&packed[12 + 8..12 + 12], &[14.0, 0.0, 0.0, 0.0]);

        let mut q = Vec::new();
        pack_queries(&rows, dim, 2, &mut q);
        // Panel 0 (queries 0, 1), k = 2; panel 2 holds query 4 alone.
        assert_eq!(&q[4..6], &[2.0, 5.0]);
        assert_eq!(&q[12..15], &[12.0, 13.0, 14.0]);
    }
}

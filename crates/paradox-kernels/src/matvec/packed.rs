//! [`PackedMatrix`]: `f32` weights in input-major panels, 64-byte aligned.

use super::{matvec_table, padded_bias, Aligned, Combine, MatvecTable, Panels};

/// A `rows × cols` `f32` matrix and a bias, packed for [`PackedMatrix::apply`]:
/// `out = W x + b`.
///
/// ```
/// use paradox_kernels::matvec::{Combine, PackedMatrix};
/// // W = [[1, 2], [3, 4], [5, 6]], b = [0, 0, 1].
/// let m = PackedMatrix::new(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], Some(&[0.0, 0.0, 1.0]), 3, 2);
/// let mut out = [0.0; 3];
/// m.apply(&[1.0, -1.0], &mut out, Combine::Store);
/// assert_eq!(out, [-1.0, -1.0, 0.0]);
/// ```
#[derive(Clone)]
pub struct PackedMatrix {
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) panels: Panels,
    /// Panel `p`, input `k`, row `r` of the panel at `(p · cols + k) · width + r`.
    pub(super) weights: Aligned<f32>,
    /// `padded_rows` values, zero past `rows`.
    pub(super) bias: Vec<f32>,
}

impl PackedMatrix {
    /// Packs `weight` (row-major, `rows × cols`: row `r` maps the input to output `r`) and
    /// `bias` (`rows` values; `None` = zero).
    ///
    /// # Panics
    ///
    /// If `rows` or `cols` is zero or a length does not match.
    pub fn new(weight: &[f32], bias: Option<&[f32]>, rows: usize, cols: usize) -> PackedMatrix {
        assert!(rows > 0 && cols > 0, "matrix must be at least 1 x 1");
        assert_eq!(weight.len(), rows * cols, "weight must be rows x cols");
        let panels = Panels::for_rows(rows);
        let width = panels.width();
        let mut packed = vec![0.0f32; panels.padded_rows() * cols];
        for (r, row) in weight.chunks_exact(cols).enumerate() {
            let (p, within) = (r / width, r % width);
            for (k, &w) in row.iter().enumerate() {
                packed[(p * cols + k) * width + within] = w;
            }
        }
        PackedMatrix {
            rows,
            cols,
            panels,
            weights: Aligned::new(&packed),
            bias: padded_bias(bias, rows, panels),
        }
    }

    /// Output dimension (`d_out`).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input dimension (`d_in`).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The weights back in row-major order (`rows × cols`), exactly as given.
    pub fn weights(&self) -> Vec<f32> {
        let width = self.panels.width();
        let packed = self.weights.as_slice();
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for r in 0..self.rows {
            let (p, within) = (r / width, r % width);
            out.extend((0..self.cols).map(|k| packed[(p * self.cols + k) * width + within]));
        }
        out
    }

    /// The bias (`rows` values).
    pub fn bias(&self) -> &[f32] {
        &self.bias[..self.rows]
    }

    /// `W x + b` into `out` as `combine` says, with the kernels of [`matvec_table`].
    /// Allocation-free.
    ///
    /// # Panics
    ///
    /// If `x.len() != cols` or `out.len() != rows`.
    #[inline]
    pub fn apply(&self, x: &[f32], out: &mut [f32], combine: Combine) {
        self.apply_on(matvec_table(), x, out, combine)
    }

    /// [`PackedMatrix::apply`] with one level's kernels (tests and benchmarks compare
    /// levels with it).
    pub fn apply_on(&self, table: &MatvecTable, x: &[f32], out: &mut [f32], combine: Combine) {
        self.check(x, out);
        (table.f32_matvec)(self, x, out, combine)
    }

    fn check(&self, x: &[f32], out: &[f32]) {
        assert_eq!(x.len(), self.cols, "matvec input length");
        assert_eq!(out.len(), self.rows, "matvec output length");
    }
}

impl std::fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedMatrix")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("panels", &self.panels)
            .finish_non_exhaustive()
    }
}

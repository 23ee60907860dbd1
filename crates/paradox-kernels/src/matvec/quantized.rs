//! [`QuantizedMatrix`]: `i8` weights with a scale per row, the input quantised per call, and
//! the rounding rule every level follows.

use super::{matvec_table, padded_bias, Aligned, Combine, MatvecTable, Panels};

/// Largest `d_in` of a [`QuantizedMatrix`]: keeps every `i32` sum exact (`255 · 127 · d_in
/// < 2³¹`).
pub const MAX_QUANTIZED_COLS: usize = 65_535;
/// Inputs of a [`QuantizedMatrix`] product up to this length are quantised into a stack
/// buffer; longer ones allocate.
const STACK_INPUT_BYTES: usize = 4096;

/// A `rows × cols` matrix stored as `i8` with one `f32` scale per row, and an `f32` bias,
/// packed for [`QuantizedMatrix::apply`]: `out ≈ W x + b` in integer arithmetic.
///
/// **Weights** (once, in [`QuantizedMatrix::quantize`]): row `r` with largest magnitude
/// `m_r` gets the scale `s_r = m_r / 127` and codes `q_rk = round(w_rk · (127 / m_r))` in
/// `−127..=127` (`round` = to nearest, ties to even; an all-zero row has scale 0).
///
/// **Inputs** (every call): with `m = max |x_k|`, an input with a negative value uses 127
/// levels per sign, `lim = 127`, stored as `q_k + 128` in a byte; an input without one (a
/// ReLU's output) uses all 256, `lim = 255`, stored as `q_k`. Then
/// `q_k = round(x_k · (lim / m))` and the input scale is `t = m / lim` (`m = 0`: all codes
/// zero, `t = 0`). Inputs must be finite.
///
/// **Product**: `acc_r = Σ_k q_rk · byte_k − offset · Σ_k q_rk` exactly in `i32`, then
/// `y_r = f32(acc_r) · (t · s_r) + b_r`, in that order, unfused. Every SIMD level computes
/// these same operations, so results are identical across levels.
///
/// The relative error against the `f32` product is about `(1/127 + 1/lim) / √3` of the
/// row's largest weight times the input's largest value, per term, in random directions.
///
/// ```
/// use paradox_kernels::matvec::{Combine, QuantizedMatrix};
/// let m = QuantizedMatrix::quantize(&[0.5, -1.0, 2.0, 0.25], None, 2, 2);
/// let mut out = [0.0; 2];
/// m.apply(&[1.0, 1.0], &mut out, Combine::Store);
/// assert!((out[0] + 0.5).abs() < 0.01 && (out[1] - 2.25).abs() < 0.02);
/// ```
#[derive(Clone)]
pub struct QuantizedMatrix {
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) panels: Panels,
    /// Panel `p`, input quad `j` (inputs `4j..4j + 4`), row `r` of the panel: 4 codes at
    /// `((p · quads + j) · width + r) · 4`. Inputs are zero-padded to whole quads.
    pub(super) codes: Aligned<i8>,
    /// `padded_rows` values, zero past `rows`.
    pub(super) scales: Vec<f32>,
    /// `Σ_k q_rk` per row (`padded_rows`, zero past `rows`).
    pub(super) code_sums: Vec<i32>,
    /// `padded_rows` values, zero past `rows`.
    pub(super) bias: Vec<f32>,
}

/// An input vector quantised for [`QuantizedMatrix`]: `offset + round(x_k / scale)` per
/// byte (the rule in the type's docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct InputScale {
    /// `t = m / lim`.
    pub(crate) scale: f32,
    /// 128 for a signed input, 0 for a non-negative one.
    pub(crate) offset: i32,
}

impl InputScale {
    /// The scale and offset for an input with largest magnitude `max_abs`, and the factor
    /// `lim / m` that quantises it.
    pub(crate) fn new(max_abs: f32, any_negative: bool) -> (InputScale, f32) {
        let (lim, offset) = if any_negative {
            (127.0f32, 128)
        } else {
            (255.0f32, 0)
        };
        if max_abs > 0.0 && max_abs.is_finite() {
            (
                InputScale {
                    scale: max_abs / lim,
                    offset,
                },
                lim / max_abs,
            )
        } else {
            (InputScale { scale: 0.0, offset }, 0.0)
        }
    }

    /// The largest code magnitude: 127 for a signed input, 255 otherwise.
    pub(crate) fn limit(self) -> i32 {
        if self.offset == 0 {
            255
        } else {
            127
        }
    }
}

/// One input value's code (the byte stored), by the rule in [`QuantizedMatrix`]'s docs.
#[inline]
pub(crate) fn input_code(x: f32, factor: f32, input: InputScale) -> u8 {
    let lim = input.limit();
    let q = ((x * factor).round_ties_even() as i32).clamp(-lim, lim);
    (q + input.offset) as u8
}

impl QuantizedMatrix {
    /// Quantises `weight` (row-major, `rows × cols`) row by row and packs it with `bias`
    /// (`rows` values; `None` = zero).
    ///
    /// # Panics
    ///
    /// If `rows` or `cols` is zero, `cols > MAX_QUANTIZED_COLS`, a length does not match,
    /// or a weight is not finite.
    pub fn quantize(
        weight: &[f32],
        bias: Option<&[f32]>,
        rows: usize,
        cols: usize,
    ) -> QuantizedMatrix {
        assert_eq!(weight.len(), rows * cols, "weight must be rows x cols");
        assert!(
            weight.iter().all(|w| w.is_finite()),
            "weights must be finite"
        );
        let mut codes = Vec::with_capacity(weight.len());
        let mut scales = Vec::with_capacity(rows);
        for row in weight.chunks_exact(cols.max(1)) {
            let max_abs = row.iter().fold(0.0f32, |m, w| m.max(w.abs()));
            if max_abs > 0.0 {
                let factor = 127.0 / max_abs;
                scales.push(max_abs / 127.0);
                codes.extend(
                    row.iter()
                        .map(|w| (w * factor).round_ties_even().clamp(-127.0, 127.0) as i8),
                );
            } else {
                scales.push(0.0);
                codes.extend(std::iter::repeat_n(0i8, cols));
            }
        }
        QuantizedMatrix::from_codes(&codes, &scales, bias, rows, cols)
    }

    /// Packs codes and scales made by [`QuantizedMatrix::quantize`] (as returned by
    /// [`QuantizedMatrix::codes`] and [`QuantizedMatrix::scales`]): the way back from a
    /// file, exactly.
    ///
    /// # Panics
    ///
    /// If `rows` or `cols` is zero, `cols > MAX_QUANTIZED_COLS`, a length does not match, a
    /// code is `-128`, or a scale is negative or not finite.
    pub fn from_codes(
        codes: &[i8],
        scales: &[f32],
        bias: Option<&[f32]>,
        rows: usize,
        cols: usize,
    ) -> QuantizedMatrix {
        assert!(rows > 0 && cols > 0, "matrix must be at least 1 x 1");
        assert!(
            cols <= MAX_QUANTIZED_COLS,
            "a quantized matrix has at most {MAX_QUANTIZED_COLS} columns, got {cols}"
        );
        assert_eq!(codes.len(), rows * cols, "codes must be rows x cols");
        assert_eq!(scales.len(), rows, "one scale per row");
        assert!(
            codes.iter().all(|&q| q != i8::MIN),
            "codes are in -127..=127"
        );
        assert!(
            scales.iter().all(|s| s.is_finite() && *s >= 0.0),
            "scales must be finite and >= 0"
        );
        let panels = Panels::for_rows(rows);
        let (width, quads) = (panels.width(), cols.div_ceil(4));
        let mut packed = vec![0i8; panels.padded_rows() * quads * 4];
        let mut code_sums = vec![0i32; panels.padded_rows()];
        for (r, row) in codes.chunks_exact(cols).enumerate() {
            let (p, within) = (r / width, r % width);
            for (k, &q) in row.iter().enumerate() {
                packed[((p * quads + k / 4) * width + within) * 4 + k % 4] = q;
            }
            code_sums[r] = row.iter().map(|&q| q as i32).sum();
        }
        let mut padded_scales = scales.to_vec();
        padded_scales.resize(panels.padded_rows(), 0.0);
        QuantizedMatrix {
            rows,
            cols,
            panels,
            codes: Aligned::new(&packed),
            scales: padded_scales,
            code_sums,
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

    /// The codes in row-major order (`rows × cols`).
    pub fn codes(&self) -> Vec<i8> {
        let (width, quads) = (self.panels.width(), self.quads());
        let packed = self.codes.as_slice();
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for r in 0..self.rows {
            let (p, within) = (r / width, r % width);
            out.extend(
                (0..self.cols).map(|k| packed[((p * quads + k / 4) * width + within) * 4 + k % 4]),
            );
        }
        out
    }

    /// One scale per row (`w_rk ≈ codes[r][k] · scales[r]`).
    pub fn scales(&self) -> &[f32] {
        &self.scales[..self.rows]
    }

    /// The bias (`rows` values).
    pub fn bias(&self) -> &[f32] {
        &self.bias[..self.rows]
    }

    /// The weights the product uses, `codes[r][k] · scales[r]`, row-major.
    pub fn dequantized(&self) -> Vec<f32> {
        let codes = self.codes();
        codes
            .chunks_exact(self.cols)
            .zip(&self.scales)
            .flat_map(|(row, &s)| row.iter().map(move |&q| q as f32 * s))
            .collect()
    }

    /// Input quads (inputs padded to a multiple of 4).
    pub(crate) fn quads(&self) -> usize {
        self.cols.div_ceil(4)
    }

    /// `W x + b` into `out` as `combine` says, by the rule in the type's docs, with the
    /// kernels of [`matvec_table`]. Allocation-free for `cols <= 4096`.
    ///
    /// # Panics
    ///
    /// If `x.len() != cols` or `out.len() != rows`.
    #[inline]
    pub fn apply(&self, x: &[f32], out: &mut [f32], combine: Combine) {
        self.apply_on(matvec_table(), x, out, combine)
    }

    /// [`QuantizedMatrix::apply`] with one level's kernels.
    pub fn apply_on(&self, table: &MatvecTable, x: &[f32], out: &mut [f32], combine: Combine) {
        assert_eq!(x.len(), self.cols, "matvec input length");
        assert_eq!(out.len(), self.rows, "matvec output length");
        let bytes = self.quads() * 4;
        let mut run = |buf: &mut [u8]| {
            let input = (table.quantize)(x, &mut buf[..x.len()]);
            // Padding inputs meet zero weights; any code will do.
            buf[x.len()..].fill(0);
            (table.i8_matvec)(self, buf, input, out, combine);
        };
        if bytes <= STACK_INPUT_BYTES {
            let mut buf = [0u8; STACK_INPUT_BYTES];
            run(&mut buf[..bytes]);
        } else {
            run(&mut vec![0u8; bytes]);
        }
    }
}

impl std::fmt::Debug for QuantizedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantizedMatrix")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("panels", &self.panels)
            .finish_non_exhaustive()
    }
}

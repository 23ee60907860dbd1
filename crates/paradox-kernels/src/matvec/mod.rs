//! Matrix-vector products `y = W x + b` with the matrix packed once for them: the
//! single-vector path of small learned maps (adapters between embedding spaces), where one
//! call must finish in microseconds.
//!
//! A `d_out × d_in` matrix of a few hundred rows and columns is a few hundred KiB: it sits in
//! L2, and one product reads all of it once, so the cost is L2 bandwidth plus how well the
//! loads feed the FMAs. The layouts here are chosen for that:
//!
//! * **Column panels.** Rows are taken in groups of 16 (one AVX-512 register of outputs) and
//!   groups in *panels* of at most [`MAX_PANEL_GROUPS`]; inside a panel the weights are
//!   stored input-major: for each input `k`, the panel's outputs back to back. A product
//!   keeps a whole panel's outputs in registers, broadcasts `x[k]` and streams the weights
//!   once, in address order: no horizontal sums, one load per FMA. Rows are zero-padded to
//!   whole groups, so any `d_out` works.
//! * **64-byte alignment.** The packed weights start on a cache line, so no vector load
//!   splits a line (a plain `Vec<f32>` is only 4-byte aligned: measured 5.2 µs aligned vs
//!   7.3 µs misaligned for a 384 × 384 product with the one-to-many kernel).
//!
//! [`PackedMatrix`] holds `f32` weights. [`QuantizedMatrix`] holds `i8` weights (one scale
//! per row) and quantises each input vector on the fly to 8 bits (one scale per vector):
//! four times fewer bytes than `f32`, and on AVX-512 VNNI one `vpdpbusd` does 64
//! multiply-adds in exact integer arithmetic. The rounding rules are fixed (see
//! [`QuantizedMatrix`]) and every level computes the same integers, so its results are
//! identical on every SIMD level, bit for bit.
//!
//! Kernels are dispatched like the distance kernels: [`matvec_table`] picks the widest
//! [`MatvecTable`] this CPU supports on first use (AVX-512 with VNNI, AVX-512, AVX2+FMA,
//! portable Rust), honouring `PARADOX_SIMD`; [`matvec_table_for`] gives one level's table
//! for tests and benchmarks. The `#[target_feature]` functions behind a table are reachable
//! only through that table, which exists only once detection succeeded.
//!
//! Codemap: this file (the panel layout, aligned storage, dispatch), `packed`
//! ([`PackedMatrix`]), `quantized` ([`QuantizedMatrix`] and its rounding rule), `scalar`,
//! `x86_avx2`, `x86_avx512` (one module per level, its scheme at the top), `tests`.

mod packed;
mod quantized;
mod scalar;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86_avx2;
#[cfg(target_arch = "x86_64")]
mod x86_avx512;

use std::sync::OnceLock;

use crate::dispatch::{SimdLevel, SIMD_ENV_VAR};

pub use packed::PackedMatrix;
pub(crate) use quantized::{input_code, InputScale};
pub use quantized::{QuantizedMatrix, MAX_QUANTIZED_COLS};

/// Outputs per group: one AVX-512 register of `f32` (two AVX2 registers).
pub const GROUP: usize = 16;
/// Most groups in one panel: 24 accumulators + the broadcast input of AVX-512's 32 vector
/// registers.
pub const MAX_PANEL_GROUPS: usize = 24;

/// How a product `W x + b` is written into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// `out = W x + b`.
    Store,
    /// `out = max(W x + b, 0)` (a ReLU layer).
    StoreRelu,
    /// `out += W x + b` (a residual branch).
    Add,
}

/// How the rows of a matrix are split into panels (the same for every SIMD level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Panels {
    /// Groups of [`GROUP`] rows per panel (`1..=MAX_PANEL_GROUPS`).
    pub(crate) groups: usize,
    /// Number of panels.
    pub(crate) count: usize,
}

impl Panels {
    /// The fewest panels of at most [`MAX_PANEL_GROUPS`] groups, balanced.
    pub(crate) fn for_rows(rows: usize) -> Panels {
        let groups = rows.div_ceil(GROUP).max(1);
        let count = groups.div_ceil(MAX_PANEL_GROUPS);
        Panels {
            groups: groups.div_ceil(count),
            count,
        }
    }

    /// Rows per panel.
    pub(crate) fn width(self) -> usize {
        self.groups * GROUP
    }

    /// Rows including the zero padding of the last panel.
    pub(crate) fn padded_rows(self) -> usize {
        self.count * self.width()
    }
}

/// Immutable storage whose first element sits on a 64-byte boundary (a cache line).
///
/// Over-allocates by up to one line and remembers where the aligned part starts; a clone
/// finds its own start, since its allocation lands elsewhere.
pub(crate) struct Aligned<T> {
    buf: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Copy + Default> Aligned<T> {
    const LINE: usize = 64;

    pub(crate) fn new(values: &[T]) -> Aligned<T> {
        let size = std::mem::size_of::<T>();
        let mut buf = vec![T::default(); values.len() + Self::LINE / size];
        let misalignment = buf.as_ptr() as usize % Self::LINE;
        // `Vec<T>` is aligned to `size_of::<T>()` for the primitive types used here, so the
        // distance to the next line is a whole number of elements.
        let start = (Self::LINE - misalignment) % Self::LINE / size;
        buf[start..start + values.len()].copy_from_slice(values);
        Aligned {
            buf,
            start,
            len: values.len(),
        }
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl<T: Copy + Default> Clone for Aligned<T> {
    fn clone(&self) -> Aligned<T> {
        Aligned::new(self.as_slice())
    }
}

/// `bias` (or zeros) padded with zeros to the panels' rows.
pub(crate) fn padded_bias(bias: Option<&[f32]>, rows: usize, panels: Panels) -> Vec<f32> {
    let mut padded = match bias {
        Some(b) => {
            assert_eq!(b.len(), rows, "bias must have one value per row");
            b.to_vec()
        }
        None => vec![0.0; rows],
    };
    padded.resize(panels.padded_rows(), 0.0);
    padded
}

/// The matrix-vector kernels of one [`SimdLevel`].
///
/// The function pointers take the packed types and are private to the crate: use
/// [`PackedMatrix::apply_on`] and [`QuantizedMatrix::apply_on`].
pub struct MatvecTable {
    /// The instruction set behind these kernels.
    pub level: SimdLevel,
    /// `out (combine) W x + b`; lengths checked by the caller.
    pub(crate) f32_matvec: fn(&PackedMatrix, &[f32], &mut [f32], Combine),
    /// Quantises `x` into `codes` (`codes.len() == x.len()`).
    pub(crate) quantize: fn(&[f32], &mut [u8]) -> InputScale,
    /// The integer product of quantised `codes` (`quads · 4` bytes) and the epilogue.
    pub(crate) i8_matvec: fn(&QuantizedMatrix, &[u8], InputScale, &mut [f32], Combine),
}

impl std::fmt::Debug for MatvecTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatvecTable")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

/// The matrix-vector table used by [`PackedMatrix::apply`] and [`QuantizedMatrix::apply`]:
/// the widest level this CPU supports, or the one forced by `PARADOX_SIMD` when it can run.
/// Chosen on the first call, then fixed for the process.
#[inline]
pub fn matvec_table() -> &'static MatvecTable {
    static SELECTED: OnceLock<&'static MatvecTable> = OnceLock::new();
    SELECTED.get_or_init(|| {
        let forced = std::env::var(SIMD_ENV_VAR)
            .ok()
            .and_then(|name| SimdLevel::parse(&name))
            .and_then(matvec_table_for);
        forced
            .or_else(|| {
                [SimdLevel::Avx512, SimdLevel::Avx2]
                    .into_iter()
                    .find_map(matvec_table_for)
            })
            .unwrap_or(&scalar::TABLE)
    })
}

/// The matrix-vector table of one level, or `None` when this CPU cannot run it or it has no
/// kernels here (NEON: AArch64 uses the portable ones, which the compiler vectorises). The
/// AVX-512 table uses VNNI for the quantised product where the CPU has it.
pub fn matvec_table_for(level: SimdLevel) -> Option<&'static MatvecTable> {
    match level {
        SimdLevel::Scalar => Some(&scalar::TABLE),
        SimdLevel::Neon => None,
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => x86_avx2::table(),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => x86_avx512::table(),
        #[cfg(not(target_arch = "x86_64"))]
        SimdLevel::Avx2 | SimdLevel::Avx512 => None,
    }
}

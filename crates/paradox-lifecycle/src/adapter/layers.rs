//! An adapter's parameters as it applies them: each matrix kept row-major for the blocked
//! GEMM of [`VectorMap::map_batch`](crate::VectorMap::map_batch) and packed once, when the
//! adapter is built, for the single-vector kernels of `paradox_kernels::matvec` that
//! [`VectorMap::map_into`](crate::VectorMap::map_into) uses.
//!
//! A new residual network is stored in `i8` ([`ResidualPrecision::Int8`]): its weights
//! quantised per hidden / output unit, its inputs per call, products in exact integers
//! (`vpdpbusd` on AVX-512 VNNI). Both [`Residual::add_into`] and [`Residual::add_block`] run
//! that same rule, row by row, so `map_into` and `map_batch` agree on the residual bit for
//! bit. Residuals read from files written before it (format 1) keep their `f32` weights
//! and results.

use paradox_kernels::matvec::{Combine, PackedMatrix, QuantizedMatrix};
use serde::{Deserialize, Serialize};

/// Scratch kept on the stack by [`with_scratch`]; larger needs fall back to the heap.
const STACK_SCRATCH: usize = 1024;

/// The linear part of an adapter.
#[derive(Debug, Clone)]
pub(super) enum LinearMap {
    /// `y = weight · x + bias`; `weight` is `d_out × d_in`.
    Dense {
        weight: Vec<f32>,
        /// `weight` and the bias, packed.
        packed: PackedMatrix,
    },
    /// `y = up · (down · x) + bias`; `down` is `rank × d_in`, `up` is `d_out × rank`.
    Factored {
        rank: usize,
        down: Vec<f32>,
        up: Vec<f32>,
        packed_down: PackedMatrix,
        /// `up` and the bias, packed.
        packed_up: PackedMatrix,
    },
}

impl LinearMap {
    /// `weight · x + bias` with `weight` of `d_out × d_in`.
    pub(super) fn dense(weight: Vec<f32>, bias: &[f32], d_in: usize) -> LinearMap {
        let packed = PackedMatrix::new(&weight, Some(bias), bias.len(), d_in);
        LinearMap::Dense { weight, packed }
    }

    /// `up · (down · x) + bias` with `down` of `rank × d_in` and `up` of `d_out × rank`.
    pub(super) fn factored(
        rank: usize,
        down: Vec<f32>,
        up: Vec<f32>,
        bias: &[f32],
        d_in: usize,
    ) -> LinearMap {
        let packed_down = PackedMatrix::new(&down, None, rank, d_in);
        let packed_up = PackedMatrix::new(&up, Some(bias), bias.len(), rank);
        LinearMap::Factored {
            rank,
            down,
            up,
            packed_down,
            packed_up,
        }
    }

    pub(super) fn bias(&self) -> &[f32] {
        match self {
            LinearMap::Dense { packed, .. } => packed.bias(),
            LinearMap::Factored { packed_up, .. } => packed_up.bias(),
        }
    }

    /// `out = map(x)` through the packed kernels; allocation-free for `rank <= 1024`.
    pub(super) fn apply(&self, x: &[f32], out: &mut [f32]) {
        match self {
            LinearMap::Dense { packed, .. } => packed.apply(x, out, Combine::Store),
            LinearMap::Factored {
                rank,
                packed_down,
                packed_up,
                ..
            } => with_scratch(*rank, |low| {
                packed_down.apply(x, low, Combine::Store);
                packed_up.apply(low, out, Combine::Store);
            }),
        }
    }

    /// `out = map(xs)` for a block of rows through the blocked GEMM.
    pub(super) fn apply_block(&self, xs: &[f32], d_in: usize, out: &mut [f32]) {
        match self {
            LinearMap::Dense { weight, .. } => {
                paradox_kernels::dot_many_to_many(xs, weight, d_in, out);
            }
            LinearMap::Factored { rank, down, up, .. } => {
                let mut low = vec![0.0; xs.len() / d_in * rank];
                paradox_kernels::dot_many_to_many(xs, down, d_in, &mut low);
                paradox_kernels::dot_many_to_many(&low, up, *rank, out);
            }
        }
        add_rows(out, self.bias());
    }
}

/// How a residual network's weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ResidualPrecision {
    /// `f32` weights: adapter files of format 1.
    #[default]
    F32,
    /// `i8` weights with one scale per unit, `i8` inputs (the rule of
    /// `paradox_kernels::matvec::QuantizedMatrix`).
    Int8,
}

/// The residual network of an [`super::AdapterKind::Mlp`]:
/// `y += layer2 · relu(layer1 · x + b1) + b2`.
#[derive(Debug, Clone)]
pub(super) enum Residual {
    /// `w1` is `hidden × d_in`, `w2` is `d_out × hidden`, row-major (the biases are in the
    /// packed layers).
    F32 {
        w1: Vec<f32>,
        w2: Vec<f32>,
        layer1: PackedMatrix,
        layer2: PackedMatrix,
    },
    Int8 {
        layer1: QuantizedMatrix,
        layer2: QuantizedMatrix,
    },
}

impl Residual {
    /// An `f32` network (format-1 files).
    pub(super) fn f32(w1: Vec<f32>, b1: &[f32], w2: Vec<f32>, b2: &[f32], d_in: usize) -> Self {
        let hidden = b1.len();
        let layer1 = PackedMatrix::new(&w1, Some(b1), hidden, d_in);
        let layer2 = PackedMatrix::new(&w2, Some(b2), b2.len(), hidden);
        Residual::F32 {
            w1,
            w2,
            layer1,
            layer2,
        }
    }

    /// Quantises a trained `f32` network to [`ResidualPrecision::Int8`].
    pub(super) fn quantize(w1: &[f32], b1: &[f32], w2: &[f32], b2: &[f32], d_in: usize) -> Self {
        let hidden = b1.len();
        Residual::Int8 {
            layer1: QuantizedMatrix::quantize(w1, Some(b1), hidden, d_in),
            layer2: QuantizedMatrix::quantize(w2, Some(b2), b2.len(), hidden),
        }
    }

    pub(super) fn hidden(&self) -> usize {
        match self {
            Residual::F32 { layer1, .. } => layer1.rows(),
            Residual::Int8 { layer1, .. } => layer1.rows(),
        }
    }

    /// `out += residual(x)` through the packed kernels; allocation-free for hidden layers of
    /// up to 1024 units.
    pub(super) fn add_into(&self, x: &[f32], out: &mut [f32]) {
        with_scratch(self.hidden(), |hidden| match self {
            Residual::F32 { layer1, layer2, .. } => {
                layer1.apply(x, hidden, Combine::StoreRelu);
                layer2.apply(hidden, out, Combine::Add);
            }
            Residual::Int8 { layer1, layer2 } => {
                layer1.apply(x, hidden, Combine::StoreRelu);
                layer2.apply(hidden, out, Combine::Add);
            }
        })
    }

    /// `out += residual(xs)` for a block of rows: the blocked GEMM for `f32` weights; for
    /// `i8`, [`Residual::add_into`] row by row (a row reads the 1/4-size weights from cache,
    /// and the results are those of `map_into` exactly).
    pub(super) fn add_block(&self, xs: &[f32], d_in: usize, out: &mut [f32]) {
        let d_out = out.len() / (xs.len() / d_in).max(1);
        match self {
            Residual::F32 {
                w1,
                w2,
                layer1,
                layer2,
            } => {
                let (rows, hidden) = (xs.len() / d_in, layer1.rows());
                let mut h = vec![0.0; rows * hidden];
                paradox_kernels::dot_many_to_many(xs, w1, d_in, &mut h);
                for row in h.chunks_exact_mut(hidden) {
                    for (v, b) in row.iter_mut().zip(layer1.bias()) {
                        *v = (*v + b).max(0.0);
                    }
                }
                let mut extra = vec![0.0; rows * d_out];
                paradox_kernels::dot_many_to_many(&h, w2, hidden, &mut extra);
                for (o_row, e_row) in out.chunks_exact_mut(d_out).zip(extra.chunks_exact(d_out)) {
                    for ((o, e), b) in o_row.iter_mut().zip(e_row).zip(layer2.bias()) {
                        *o += e + b;
                    }
                }
            }
            Residual::Int8 { .. } => {
                for (x, o) in xs.chunks_exact(d_in).zip(out.chunks_exact_mut(d_out)) {
                    self.add_into(x, o);
                }
            }
        }
    }
}

/// Adds `bias` to every `bias.len()`-sized row of `rows`.
pub(super) fn add_rows(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// Runs `f` on a scratch buffer of `len` floats, on the stack when small enough.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    if len <= STACK_SCRATCH {
        let mut buf = [0.0f32; STACK_SCRATCH];
        f(&mut buf[..len])
    } else {
        f(&mut vec![0.0f32; len])
    }
}

//! Portable matrix-vector kernels: the fallback on CPUs without a SIMD level (AArch64
//! included), and the oracle the SIMD levels are tested against. One group of 16 outputs at
//! a time is accumulated over all inputs in a fixed-size array: a loop the compiler
//! unrolls, keeps in registers and vectorises for the baseline target.

use super::{input_code, Combine, InputScale, MatvecTable, PackedMatrix, QuantizedMatrix, GROUP};
use crate::dispatch::SimdLevel;

pub(super) static TABLE: MatvecTable = MatvecTable {
    level: SimdLevel::Scalar,
    f32_matvec,
    quantize,
    i8_matvec,
};

fn f32_matvec(m: &PackedMatrix, x: &[f32], out: &mut [f32], combine: Combine) {
    let (width, cols) = (m.panels.width(), m.cols);
    let weights = m.weights.as_slice();
    for p in 0..m.panels.count {
        let panel = &weights[p * cols * width..(p + 1) * cols * width];
        for g in 0..m.panels.groups {
            let first = p * width + GROUP * g;
            let valid = m.rows.saturating_sub(first).min(GROUP);
            if valid == 0 {
                break;
            }
            // One group's outputs in a fixed-size array the compiler keeps in registers.
            let mut acc = [0.0f32; GROUP];
            for (line, &xk) in panel.chunks_exact(width).zip(x) {
                let w = &line[GROUP * g..GROUP * (g + 1)];
                for (a, &w) in acc.iter_mut().zip(w) {
                    *a += xk * w;
                }
            }
            let rows = first..first + valid;
            finish_f32(
                &acc[..valid],
                &m.bias[rows.clone()],
                &mut out[rows],
                combine,
            );
        }
    }
}

/// `out (combine) acc + bias`, element by element.
pub(super) fn finish_f32(acc: &[f32], bias: &[f32], out: &mut [f32], combine: Combine) {
    for ((o, &a), &b) in out.iter_mut().zip(acc).zip(bias) {
        let v = a + b;
        match combine {
            Combine::Store => *o = v,
            Combine::StoreRelu => *o = v.max(0.0),
            Combine::Add => *o += v,
        }
    }
}

pub(super) fn quantize(x: &[f32], codes: &mut [u8]) -> InputScale {
    let (mut max_abs, mut any_negative) = (0.0f32, false);
    for &v in x {
        max_abs = max_abs.max(v.abs());
        any_negative |= v < 0.0;
    }
    let (input, factor) = InputScale::new(max_abs, any_negative);
    for (c, &v) in codes.iter_mut().zip(x) {
        *c = input_code(v, factor, input);
    }
    input
}

fn i8_matvec(
    m: &QuantizedMatrix,
    codes: &[u8],
    input: InputScale,
    out: &mut [f32],
    combine: Combine,
) {
    let (width, quads) = (m.panels.width(), m.quads());
    let weights = m.codes.as_slice();
    let codes = &codes[..quads * 4];
    for p in 0..m.panels.count {
        let panel = &weights[p * quads * width * 4..(p + 1) * quads * width * 4];
        for g in 0..m.panels.groups {
            let first = p * width + GROUP * g;
            let valid = m.rows.saturating_sub(first).min(GROUP);
            if valid == 0 {
                break;
            }
            let mut acc = [0i32; GROUP];
            for (line, x) in panel.chunks_exact(width * 4).zip(codes.chunks_exact(4)) {
                let x = [x[0] as i32, x[1] as i32, x[2] as i32, x[3] as i32];
                let w = &line[4 * GROUP * g..4 * GROUP * (g + 1)];
                for (a, w) in acc.iter_mut().zip(w.chunks_exact(4)) {
                    *a += w[0] as i32 * x[0]
                        + w[1] as i32 * x[1]
                        + w[2] as i32 * x[2]
                        + w[3] as i32 * x[3];
                }
            }
            for (i, &a) in acc[..valid].iter().enumerate() {
                let r = first + i;
                let v = dequantize(a, m.code_sums[r], input, m.scales[r], m.bias[r]);
                match combine {
                    Combine::Store => out[r] = v,
                    Combine::StoreRelu => out[r] = v.max(0.0),
                    Combine::Add => out[r] += v,
                }
            }
        }
    }
}

/// `f32(acc − offset · code_sum) · (t · s_r) + b_r`, the rule every level follows.
#[inline]
fn dequantize(acc: i32, code_sum: i32, input: InputScale, scale: f32, bias: f32) -> f32 {
    scaled(acc, code_sum, input, scale) + bias
}

/// `f32(acc − offset · code_sum) · (t · s_r)`: [`dequantize`] before the bias.
#[inline]
pub(super) fn scaled(acc: i32, code_sum: i32, input: InputScale, scale: f32) -> f32 {
    (acc - input.offset * code_sum) as f32 * (input.scale * scale)
}

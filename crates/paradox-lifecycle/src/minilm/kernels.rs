//! The numeric kernels of the forward pass: linear layers on `paradox_kernels`' GEMM,
//! strided attention products on the `gemm` crate, and
//! vectorised row operations (layer norm, bias + GELU, softmax) with their own `exp` and
//! `erf`.

use rayon::prelude::*;

use super::MIN_TOKENS_PER_TASK;

/// A strided, read-only matrix view into a slice; [`MatRef::new`] checks that every element
/// lies inside the slice, which is what makes the `gemm` call in [`matmul`] sound.
#[derive(Clone, Copy)]
pub(super) struct MatRef<'a> {
    data: &'a [f32],
    offset: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    pub(super) fn new(
        data: &'a [f32],
        offset: usize,
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        assert!(rows > 0 && cols > 0, "empty matrix view");
        let last = offset + (rows - 1) * row_stride + (cols - 1) * col_stride;
        assert!(last < data.len(), "matrix view past the end of its buffer");
        MatRef {
            data,
            offset,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }
}

/// `dst[offset + i * dst_row_stride + j] = scale * (lhs · rhs)[i][j]` for the
/// `lhs.rows × rhs.cols` result.
pub(super) fn matmul(
    dst: &mut [f32],
    offset: usize,
    dst_row_stride: usize,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    scale: f32,
) {
    assert_eq!(lhs.cols, rhs.rows, "matmul inner dimensions differ");
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    assert!(n <= dst_row_stride || m == 1, "destination rows overlap");
    assert!(
        offset + (m - 1) * dst_row_stride + n <= dst.len(),
        "matmul destination too short"
    );
    // SAFETY: `MatRef::new` checked that every element of `lhs` and `rhs` lies inside its
    // slice, and the asserts above that every destination element `offset + i * rs + j`
    // (i < m, j < n) lies inside `dst`, with distinct (i, j) never sharing an element since
    // n <= rs. `dst` is a unique borrow, so it cannot alias the shared `lhs`/`rhs` slices.
    // With `read_dst` false, gemm only writes `dst`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(offset),
            1,
            dst_row_stride as isize,
            false,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `out[t][o] = x[t] · weight[o]`: a linear layer without its bias, for `x` of rows
/// `in_dim` wide and `weight` `[out_dim][in_dim]` (`out` is `tokens × out_dim`).
///
/// The product runs on `paradox_kernels`' blocked GEMM (AVX-512 where the CPU has it),
/// single-threaded unless `threads > 1`, when the tokens are split across rayon tasks.
pub(super) fn linear_no_bias(
    x: &[f32],
    in_dim: usize,
    weight: &[f32],
    out_dim: usize,
    out: &mut [f32],
    threads: usize,
) {
    let tokens = x.len() / in_dim;
    debug_assert_eq!(out.len(), tokens * out_dim);
    debug_assert_eq!(weight.len(), out_dim * in_dim);
    if threads > 1 && tokens >= 2 * MIN_TOKENS_PER_TASK {
        let per_task = tokens.div_ceil(threads).max(MIN_TOKENS_PER_TASK);
        x.par_chunks(per_task * in_dim)
            .zip(out.par_chunks_mut(per_task * out_dim))
            .for_each(|(x, out)| paradox_kernels::dot_many_to_many(x, weight, in_dim, out));
    } else {
        paradox_kernels::dot_many_to_many(x, weight, in_dim, out);
    }
}

/// Compiles `fn $name` three times: for AVX-512F, for AVX2+FMA and for the baseline, and
/// picks the best the CPU has on each call (a cached feature check). The bodies are plain
/// loops written so that LLVM vectorises them (lane accumulators for reductions); the target
/// features let it use 16-wide registers and FMA without `-C target-cpu`.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, the only feature `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA, the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// Lanes of the vectorised reductions: one AVX-512 register of f32.
const LANES: usize = 16;

/// Sum of `values` in [`LANES`] independent accumulators (which LLVM keeps in one vector
/// register; a single accumulator would force a sequential float chain).
#[inline(always)]
fn lane_sum(values: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Sum of `(v - mean)²` over `values`, like [`lane_sum`].
#[inline(always)]
fn lane_sum_sq_dev(values: &[f32], mean: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += (v - mean) * (v - mean);
        }
    }
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// In place: `row = (row - mean) / sqrt(var + eps) * gamma + beta` (biased variance, as
/// BERT).
#[inline(always)]
fn layer_norm(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = lane_sum(row) / n;
    let var = lane_sum_sq_dev(row, mean) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

multiversion! {
    /// [`layer_norm`] on every `gamma.len()`-wide row of `x`.
    pub(super) fn layer_norm_rows(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        for row in x.chunks_exact_mut(gamma.len()) {
            layer_norm(row, gamma, beta, eps);
        }
    }
}

multiversion! {
    /// Row by row: `x = LayerNorm(x + out + bias)`, the residual step after a projection.
    pub(super) fn add_bias_residual_norm_rows(
        x: &mut [f32],
        out: &[f32],
        bias: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    ) {
        let width = bias.len();
        for (row, projected) in x.chunks_exact_mut(width).zip(out.chunks_exact(width)) {
            for ((r, o), b) in row.iter_mut().zip(projected).zip(bias) {
                *r += o + b;
            }
            layer_norm(row, gamma, beta, eps);
        }
    }
}

multiversion! {
    /// Adds `bias` to every `bias.len()`-wide row of `x`.
    pub(super) fn add_bias_rows(x: &mut [f32], bias: &[f32]) {
        for row in x.chunks_exact_mut(bias.len()) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
    }
}

multiversion! {
    /// Row by row, in place: `x = gelu(x + bias)`, the exact (erf) GELU of BERT.
    pub(super) fn add_bias_gelu_rows(x: &mut [f32], bias: &[f32]) {
        for row in x.chunks_exact_mut(bias.len()) {
            for (v, b) in row.iter_mut().zip(bias) {
                let t = *v + b;
                *v = 0.5 * t * (1.0 + erf(t * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    }
}

multiversion! {
    /// In place softmax of every `width`-wide row of `x`.
    pub(super) fn softmax_rows(x: &mut [f32], width: usize) {
        for row in x.chunks_exact_mut(width) {
            let mut lanes = [f32::NEG_INFINITY; LANES];
            let mut chunks = row.chunks_exact(LANES);
            for chunk in &mut chunks {
                for (m, v) in lanes.iter_mut().zip(chunk) {
                    *m = if *v > *m { *v } else { *m };
                }
            }
            let max = chunks
                .remainder()
                .iter()
                .chain(&lanes)
                .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
            for v in row.iter_mut() {
                *v = exp(*v - max);
            }
            let inv = 1.0 / lane_sum(row);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

/// `e^x` for `x` in about [-87, 88] (clamped outside), relative error below 2e-7: Cephes'
/// `expf` polynomial, written branch-free so that loops over it vectorise.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding then subtracting 1.5 * 2^23 rounds to the nearest integer without a call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let p = p * r * r + r + 1.0;
    // 2^n through the exponent bits. The low mantissa bits of `shifted` hold n as an
    // offset from ROUND, so integer arithmetic on the bits gives n without a float-to-int
    // conversion (whose saturating semantics do not vectorise); n is in [-126, 127] after
    // the clamp, so the exponent field stays in [1, 254].
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    p * scale
}

/// The error function, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7 in exact
/// arithmetic; with this file's `exp`, relative error below 5e-7, and f32 rounding, below
/// 5e-7 in all).
#[inline(always)]
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        let mut worst = 0.0f32;
        let mut x = -80.0f32;
        while x < 80.0 {
            let rel = ((exp(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(0.0) == 1.0);
    }

    #[test]
    fn erf_matches_reference_values() {
        // erf values from tables (to 9 digits).
        for (x, want) in [
            (0.0f32, 0.0f64),
            (0.1, 0.112_462_916),
            (0.5, 0.520_499_878),
            (1.0, 0.842_700_793),
            (2.0, 0.995_322_265),
            (-1.0, -0.842_700_793),
            (4.0, 0.999_999_985),
        ] {
            let got = f64::from(erf(x));
            // The formula's 1.5e-7 plus `exp`'s error (< 5e-7 relative, times e^-x² < 1)
            // and f32 rounding.
            assert!((got - want).abs() < 5e-7, "erf({x}) = {got} want {want}");
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        // Two rows of 20 (past one 16-lane chunk), the second shifted by a constant (small
        // enough that f32 keeps the differences exact to about 1e-6).
        let mut rows: Vec<f32> = (0..20).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
        rows.extend((0..20).map(|i| (i as f32 * 0.7).sin() * 3.0 + 40.0));
        rows[19] = -50.0;
        rows[39] = -10.0;
        softmax_rows(&mut rows, 20);
        for row in rows.chunks_exact(20) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        for (a, b) in rows[..20].iter().zip(&rows[20..]) {
            assert!(
                (a - b).abs() < 1e-5,
                "softmax is shift-invariant: {a} vs {b}"
            );
        }
        let ratio = rows[1] / rows[0];
        let want = ((0.7f32).sin() * 3.0).exp();
        assert!((ratio - want).abs() / want < 1e-5, "{ratio} vs {want}");
    }

    #[test]
    fn matmul_matches_naive_with_strides() {
        // lhs 3x2 taken from a 3x4 buffer (row stride 4), rhs = transpose of a 5x2 buffer.
        let a: Vec<f32> = (0..12).map(|v| v as f32 * 0.5 - 2.0).collect();
        let b: Vec<f32> = (0..10).map(|v| (v as f32).sin()).collect();
        let lhs = MatRef::new(&a, 1, 3, 2, 4, 1);
        let rhs = MatRef::new(&b, 0, 2, 5, 1, 2);
        let mut dst = vec![f32::NAN; 3 * 7];
        matmul(&mut dst, 1, 7, lhs, rhs, 2.0);
        for i in 0..3 {
            for j in 0..5 {
                let want = 2.0 * (a[1 + i * 4] * b[j * 2] + a[2 + i * 4] * b[j * 2 + 1]);
                let got = dst[1 + i * 7 + j];
                assert!((got - want).abs() < 1e-5, "({i},{j}) {got} vs {want}");
            }
        }
        assert!(
            dst[0].is_nan() && dst[6].is_nan(),
            "outside the result is untouched"
        );
    }

    #[test]
    #[should_panic(expected = "past the end")]
    fn matref_rejects_views_past_the_buffer() {
        let a = [0.0f32; 8];
        let _ = MatRef::new(&a, 1, 2, 4, 4, 1);
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let mut row = [1.0f32, 2.0, 3.0, 4.0];
        layer_norm(&mut row, &[1.0; 4], &[0.5; 4], 1e-12);
        let mean = row.iter().sum::<f32>() / 4.0;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 4.0;
        assert!((mean - 0.5).abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
    }
}

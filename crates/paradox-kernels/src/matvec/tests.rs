//! Every SIMD level of the matrix-vector kernels against naive references: an `f64` product
//! for [`PackedMatrix`], the documented integer rule (exactly) and the `f64` product (within
//! the quantisation bound) for [`QuantizedMatrix`]. Shapes are random, most of them not
//! multiples of 4, 8 or 16, some wider than one panel.

use super::*;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The tables this CPU can run (the portable one always).
fn tables() -> Vec<&'static MatvecTable> {
    SimdLevel::ALL
        .into_iter()
        .filter_map(matvec_table_for)
        .collect()
}

fn values(rng: &mut StdRng, len: usize, range: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-range..range)).collect()
}

const COMBINES: [Combine; 3] = [Combine::Store, Combine::StoreRelu, Combine::Add];

/// `start (combine) v`, as the kernels should write it.
fn combined(start: f32, v: f64, combine: Combine) -> f64 {
    match combine {
        Combine::Store => v,
        Combine::StoreRelu => v.max(0.0),
        Combine::Add => start as f64 + v,
    }
}

/// Checks `PackedMatrix` on every level against the `f64` product.
fn check_packed(rows: usize, cols: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let weight = values(&mut rng, rows * cols, 1.0);
    let bias = values(&mut rng, rows, 1.0);
    let x = values(&mut rng, cols, 2.0);
    let start = values(&mut rng, rows, 1.0);
    let m = PackedMatrix::new(&weight, Some(&bias), rows, cols);
    assert_eq!(m.weights(), weight);
    assert_eq!(m.bias(), &bias[..]);
    for table in tables() {
        for combine in COMBINES {
            let mut out = start.clone();
            m.apply_on(table, &x, &mut out, combine);
            for (r, row) in weight.chunks_exact(cols).enumerate() {
                let exact: f64 = row
                    .iter()
                    .zip(&x)
                    .map(|(&w, &v)| w as f64 * v as f64)
                    .sum::<f64>()
                    + bias[r] as f64;
                let scale: f64 = row
                    .iter()
                    .zip(&x)
                    .map(|(&w, &v)| (w as f64 * v as f64).abs())
                    .sum::<f64>()
                    + bias[r].abs() as f64
                    + start[r].abs() as f64;
                let want = combined(start[r], exact, combine);
                assert!(
                    (out[r] as f64 - want).abs() <= 1e-5 * scale + 1e-6,
                    "{} {rows}x{cols} {combine:?} row {r}: got {}, want {want}",
                    table.level,
                    out[r]
                );
            }
        }
    }
}

/// The documented rule of [`QuantizedMatrix`], written out naively.
fn rule(
    codes: &[i8],
    scales: &[f32],
    bias: &[f32],
    cols: usize,
    x: &[f32],
    start: &[f32],
    combine: Combine,
) -> Vec<f32> {
    let max_abs = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let signed = x.iter().any(|&v| v < 0.0);
    let lim = if signed { 127 } else { 255 };
    let (t, factor) = if max_abs > 0.0 {
        (max_abs / lim as f32, lim as f32 / max_abs)
    } else {
        (0.0, 0.0)
    };
    let q: Vec<i64> = x
        .iter()
        .map(|&v| ((v * factor).round_ties_even() as i64).clamp(-lim, lim))
        .collect();
    codes
        .chunks_exact(cols)
        .enumerate()
        .map(|(r, row)| {
            // The kernels' Σ q_rk · (q_k + offset) − offset · Σ q_rk is this, exactly.
            let acc: i64 = row.iter().zip(&q).map(|(&w, &v)| w as i64 * v).sum();
            let v = acc as i32 as f32 * (t * scales[r]) + bias[r];
            match combine {
                Combine::Store => v,
                Combine::StoreRelu => v.max(0.0),
                Combine::Add => start[r] + v,
            }
        })
        .collect()
}

/// Checks `QuantizedMatrix` on every level: exactly the rule, and within the quantisation
/// bound of the `f64` product.
fn check_quantized(rows: usize, cols: usize, seed: u64, non_negative_input: bool) {
    let mut rng = StdRng::seed_from_u64(seed);
    let weight = values(&mut rng, rows * cols, 1.0);
    let bias = values(&mut rng, rows, 1.0);
    let mut x = values(&mut rng, cols, 2.0);
    if non_negative_input {
        x.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    let start = values(&mut rng, rows, 1.0);
    let m = QuantizedMatrix::quantize(&weight, Some(&bias), rows, cols);
    let (codes, scales) = (m.codes(), m.scales().to_vec());
    assert!(codes.iter().all(|&q| q != i8::MIN));
    let again = QuantizedMatrix::from_codes(&codes, &scales, Some(&bias), rows, cols);
    let max_x = x.iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64;
    let input_step = max_x / if non_negative_input { 255.0 } else { 127.0 };
    for table in tables() {
        for combine in COMBINES {
            let want = rule(&codes, &scales, &bias, cols, &x, &start, combine);
            let mut out = start.clone();
            m.apply_on(table, &x, &mut out, combine);
            assert_eq!(
                out, want,
                "{} {rows}x{cols} {combine:?}: not the documented rule",
                table.level
            );
            let mut from_codes = start.clone();
            again.apply_on(table, &x, &mut from_codes, combine);
            assert_eq!(from_codes, out, "from_codes(codes(), scales()) differs");
            if combine != Combine::Store {
                continue;
            }
            for (r, row) in weight.chunks_exact(cols).enumerate() {
                let exact: f64 = row
                    .iter()
                    .zip(&x)
                    .map(|(&w, &v)| w as f64 * v as f64)
                    .sum::<f64>()
                    + bias[r] as f64;
                // Each term is off by at most half a weight step times |x| plus half an
                // input step times |w| (plus their product).
                let weight_step = scales[r] as f64;
                let bound: f64 = row
                    .iter()
                    .zip(&x)
                    .map(|(&w, &v)| {
                        0.5 * weight_step * (v as f64).abs()
                            + 0.5 * input_step * (w as f64).abs()
                            + 0.25 * weight_step * input_step
                    })
                    .sum::<f64>()
                    * 1.001
                    + 1e-5 * (exact.abs() + 1.0);
                assert!(
                    (out[r] as f64 - exact).abs() <= bound,
                    "{} {rows}x{cols} row {r}: {} vs exact {exact} (bound {bound})",
                    table.level,
                    out[r]
                );
            }
        }
    }
}

/// Shapes that cover one and several panels, partial groups, and short inputs.
const SHAPES: [(usize, usize); 10] = [
    (1, 1),
    (1, 17),
    (3, 5),
    (16, 16),
    (17, 33),
    (100, 7),
    (384, 384),
    (385, 129),
    (512, 384),
    (1000, 3),
];

#[test]
fn packed_matches_the_f64_product_on_fixed_shapes() {
    for (i, &(rows, cols)) in SHAPES.iter().enumerate() {
        check_packed(rows, cols, i as u64);
    }
}

#[test]
fn quantized_follows_its_rule_on_fixed_shapes() {
    for (i, &(rows, cols)) in SHAPES.iter().enumerate() {
        check_quantized(rows, cols, 100 + i as u64, false);
        check_quantized(rows, cols, 200 + i as u64, true);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    #[test]
    fn packed_matches_the_f64_product(rows in 1usize..800, cols in 1usize..200, seed: u64) {
        check_packed(rows, cols, seed);
    }

    #[test]
    fn quantized_follows_its_rule(
        rows in 1usize..800,
        cols in 1usize..200,
        seed: u64,
        non_negative: bool,
    ) {
        check_quantized(rows, cols, seed, non_negative);
    }
}

#[test]
fn panels_cover_the_rows_with_at_most_24_groups() {
    for rows in 1..3000 {
        let p = Panels::for_rows(rows);
        assert!((1..=MAX_PANEL_GROUPS).contains(&p.groups), "{rows}: {p:?}");
        assert!(p.padded_rows() >= rows, "{rows}: {p:?}");
        assert!(
            p.padded_rows() - rows < p.count * GROUP,
            "{rows}: {p:?} wastes a group"
        );
    }
    assert_eq!(
        Panels::for_rows(384),
        Panels {
            groups: 24,
            count: 1
        }
    );
    assert_eq!(
        Panels::for_rows(512),
        Panels {
            groups: 16,
            count: 2
        }
    );
}

#[test]
fn packed_weights_start_on_a_cache_line() {
    let m = PackedMatrix::new(&vec![1.0; 40 * 7], None, 40, 7);
    let copy = m.clone();
    for w in [&m.weights, &copy.weights] {
        assert_eq!(w.as_slice().as_ptr() as usize % 64, 0);
    }
    let q = QuantizedMatrix::quantize(&vec![1.0; 40 * 7], None, 40, 7);
    assert_eq!(q.clone().codes.as_slice().as_ptr() as usize % 64, 0);
}

#[test]
fn a_zero_input_gives_the_bias_and_zero_rows_give_zero() {
    let (rows, cols) = (20, 9);
    let mut weight = vec![0.5; rows * cols];
    weight[..cols].fill(0.0);
    let bias: Vec<f32> = (0..rows).map(|r| r as f32).collect();
    let m = QuantizedMatrix::quantize(&weight, Some(&bias), rows, cols);
    assert_eq!(m.scales()[0], 0.0);
    for table in tables() {
        let mut out = vec![9.0; rows];
        m.apply_on(table, &[0.0; 9], &mut out, Combine::Store);
        assert_eq!(out, bias, "{}", table.level);
        m.apply_on(table, &[1.0; 9], &mut out, Combine::Store);
        assert_eq!(out[0], 0.0, "{}", table.level);
    }
}

#[test]
fn non_negative_inputs_use_all_256_levels() {
    // Inputs 0..=255: exact codes with 256 levels; with 127 per sign, 3 would become 2.008.
    let cols = 256;
    let x: Vec<f32> = (0..cols).map(|k| k.min(255) as f32).collect();
    let weight: Vec<f32> = (0..cols).map(|k| if k == 3 { 1.0 } else { 0.0 }).collect();
    let m = QuantizedMatrix::quantize(&weight, None, 1, cols);
    for table in tables() {
        let mut out = [0.0];
        m.apply_on(table, &x, &mut out, Combine::Store);
        assert!((out[0] - 3.0).abs() < 1e-5, "{}: {}", table.level, out[0]);
    }
}

#[test]
#[should_panic(expected = "matvec input length")]
fn a_wrong_input_length_panics() {
    let m = PackedMatrix::new(&[1.0; 6], None, 2, 3);
    m.apply(&[1.0; 2], &mut [0.0; 2], Combine::Store);
}

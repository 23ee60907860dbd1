//! Every SIMD level of every quantised kernel against the portable one, and the codes'
//! error bounds.

use super::*;
use crate::Metric;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The quantised tables this CPU can run (the portable one always).
fn tables() -> Vec<&'static QuantTable> {
    SimdLevel::ALL
        .into_iter()
        .filter_map(quant_table_for)
        .collect()
}

fn values(rng: &mut StdRng, len: usize, range: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-range..range)).collect()
}

/// `got` within `1e-5` of `scale` (the sum of the terms' magnitudes) of `want`: SIMD levels
/// only add in a different order.
fn assert_close(got: f32, want: f32, scale: f64, what: &str) {
    let tol = 1e-5 * scale + 1e-6;
    assert!(
        (got as f64 - want as f64).abs() <= tol,
        "{what}: got {got}, portable {want} (tolerance {tol})"
    );
}

fn magnitude(terms: impl Iterator<Item = f64>) -> f64 {
    terms.map(f64::abs).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn sq8_kernels_match_portable(len in 0usize..400, off in 0usize..17, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let weights = values(&mut rng, len + off, 3.0);
        let scales: Vec<f32> = (0..len + off).map(|_| rng.random_range(0.0..0.02)).collect();
        let codes: Vec<u8> = (0..len + off).map(|_| rng.random()).collect();
        let (w, s, c) = (&weights[off..], &scales[off..], &codes[off..]);
        let dot_scale = magnitude(w.iter().zip(c).map(|(&w, &c)| w as f64 * c as f64));
        let want_dot = (scalar::TABLE.sq8_dot)(w, c);
        let want_l2 = (scalar::TABLE.sq8_l2_squared)(w, s, c);
        for t in tables() {
            let what = format!("{} len {len} offset {off}", t.level);
            assert_close((t.sq8_dot)(w, c), want_dot, dot_scale, &format!("sq8 dot {what}"));
            let got = (t.sq8_l2_squared)(w, s, c);
            assert_close(got, want_l2, want_l2 as f64, &format!("sq8 l2 {what}"));
        }
    }

    #[test]
    fn sq8_integer_dot_is_exact_on_every_level(len in 0usize..700, off in 0usize..65, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let weights: Vec<i8> = (0..len + off).map(|_| rng.random()).collect();
        let codes: Vec<u8> = (0..len + off).map(|_| rng.random()).collect();
        let (w, c) = (&weights[off..], &codes[off..]);
        let want: i64 = w.iter().zip(c).map(|(&w, &c)| w as i64 * c as i64).sum();
        for t in tables() {
            prop_assert_eq!((t.sq8_dot_i8)(w, c) as i64, want, "{} len {}", t.level, len);
        }
    }

    #[test]
    fn sq8_integer_gather_matches_the_row_kernel(
        dim in 0usize..300, pad in 0usize..9, count in 0usize..23, seed: u64,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let row_bytes = dim + pad;
        let stored = 40;
        let weights: Vec<i8> = (0..dim).map(|_| rng.random()).collect();
        let codes: Vec<u8> = (0..stored * row_bytes).map(|_| rng.random()).collect();
        let rows: Vec<u32> = (0..count).map(|_| rng.random_range(0..stored as u32)).collect();
        for t in tables() {
            let mut out = vec![i32::MIN; count];
            (t.sq8_dot_i8_gather)(&weights, &codes, row_bytes, &rows, &mut out);
            for (j, &r) in rows.iter().enumerate() {
                let row = &codes[r as usize * row_bytes..][..dim];
                prop_assert_eq!(out[j], (t.sq8_dot_i8)(&weights, row), "{} dim {} row {}", t.level, dim, j);
            }
        }
    }

    #[test]
    fn sq8_fast_distances_equal_fast_distance_row_by_row(
        dim in 1usize..200, count in 0usize..150, l2: bool, seed: u64,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let rows = values(&mut rng, 20 * dim, 1.0);
        let query = values(&mut rng, dim, 1.5);
        let sq8 = Sq8Quantizer::fit(&rows, dim);
        let metric = if l2 { Metric::L2 } else { Metric::Dot };
        // The layout `fast_distances` reads: codes, then under L2 the code norm.
        let row_bytes = dim + if l2 { 4 } else { 0 };
        let mut codes = vec![0u8; 20 * row_bytes];
        for (row, out) in rows.chunks_exact(dim).zip(codes.chunks_exact_mut(row_bytes)) {
            let (code, norm) = out.split_at_mut(dim);
            sq8.encode(row, code);
            if l2 {
                norm.copy_from_slice(&sq8.code_norm(code).to_le_bytes());
            }
        }
        let picked: Vec<u32> = (0..count).map(|_| rng.random_range(0..20u32)).collect();
        let folded = sq8.query(&query, metric);
        let mut got = vec![f32::NAN; count];
        folded.fast_distances(&codes, row_bytes, &picked, &mut got);
        for (j, &r) in picked.iter().enumerate() {
            let row = &codes[r as usize * row_bytes..][..row_bytes];
            let norm = if l2 { f32::from_le_bytes(row[dim..].try_into().unwrap()) } else { 0.0 };
            prop_assert_eq!(got[j].to_bits(), folded.fast_distance(&row[..dim], norm).to_bits());
        }
        // The same rows with the codes packed and the norms kept apart.
        let packed: Vec<u8> = codes
            .chunks_exact(row_bytes)
            .flat_map(|row| row[..dim].to_vec())
            .collect();
        let norms: Vec<f32> = packed.chunks_exact(dim).map(|c| sq8.code_norm(c)).collect();
        let mut apart = vec![f32::NAN; count];
        folded.fast_distances_with_norms(&packed, &picked, &norms, &mut apart);
        prop_assert_eq!(
            apart.iter().map(|d| d.to_bits()).collect::<Vec<_>>(),
            got.iter().map(|d| d.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn sq8_fast_distance_is_within_the_query_rounding_of_distance(
        dim in 1usize..300, seed: u64,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let rows = values(&mut rng, 10 * dim, 1.0);
        let query = values(&mut rng, dim, 1.5);
        let sq8 = Sq8Quantizer::fit(&rows, dim);
        let mut code = vec![0u8; dim];
        for row in rows.chunks_exact(dim) {
            sq8.encode(row, &mut code);
            let code_sum: f64 = code.iter().map(|&c| c as f64).sum();
            for t in tables() {
                for metric in [Metric::L2, Metric::Dot] {
                    let folded = sq8.query_with(t, &query, metric);
                    let want = folded.distance(&code) as f64;
                    let got = folded.fast_distance(&code, sq8.code_norm(&code)) as f64;
                    // Weights rounded to `i8` steps of `max |w| / 127` (`|w| ≤ 2 · 1.5 ·
                    // scale` for L2) err by half a step per unit of code; f32 rounding
                    // of the expanded L2 is relative to its terms (≤ 2.5² · dim each).
                    let largest = sq8.scales().iter().fold(0f32, |m, &s| m.max(s)) as f64 * 5.0;
                    let rounding = if t.prefer_i8 { largest / 254.0 * code_sum } else { 0.0 };
                    let tol = rounding + 1e-4 * (25.0 * dim as f64) + 1e-4;
                    prop_assert!((got - want).abs() <= tol,
                        "{} {metric}: fast {got} vs {want} (tolerance {tol})", t.level);
                }
            }
        }
    }

    #[test]
    fn half_kernels_match_portable(len in 0usize..400, off in 0usize..17, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let query = values(&mut rng, len + off, 2.0);
        let row = values(&mut rng, len, 2.0);
        let q = &query[off..];
        let dot_scale = magnitude(q.iter().zip(&row).map(|(&a, &b)| a as f64 * b as f64));
        type Kernels = (fn(&QuantTable) -> fn(&[f32], &[u8]) -> f32, &'static str);
        type Encode = fn(&[f32], &mut [u8]);
        let encodings: [(Encode, [Kernels; 2]); 2] = [
            (encode_f16, [(|t| t.f16_dot, "f16 dot"), (|t| t.f16_l2_squared, "f16 l2")]),
            (encode_bf16, [(|t| t.bf16_dot, "bf16 dot"), (|t| t.bf16_l2_squared, "bf16 l2")]),
        ];
        for (encode, kernels) in encodings {
            // An odd byte offset: code rows carry no alignment guarantee.
            let mut codes = vec![0u8; 2 * len + 1];
            encode(&row, &mut codes[1..]);
            let c = &codes[1..];
            for (kernel, name) in kernels {
                let want = kernel(&scalar::TABLE)(q, c);
                let scale = if name.ends_with("dot") { dot_scale } else { want as f64 };
                for t in tables() {
                    let what = format!("{name} {} len {len} offset {off}", t.level);
                    assert_close(kernel(t)(q, c), want, scale, &what);
                }
            }
        }
    }

    #[test]
    fn sq8_round_trip_is_within_half_a_step(
        dim in 1usize..70, n in 1usize..40, seed: u64,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let rows = values(&mut rng, n * dim, 5.0);
        let sq8 = Sq8Quantizer::fit_with(&rows, dim, Sq8Range::MinMax);
        let (mut code, mut back) = (vec![0u8; dim], vec![0f32; dim]);
        for row in rows.chunks_exact(dim) {
            sq8.encode(row, &mut code);
            sq8.decode(&code, &mut back);
            for i in 0..dim {
                let bound = sq8.scales()[i] / 2.0 * (1.0 + 1e-4) + 1e-6;
                prop_assert!(
                    (row[i] - back[i]).abs() <= bound,
                    "dim {i}: {} decoded as {} (bound {bound})", row[i], back[i]
                );
            }
        }
    }

    #[test]
    fn sq8_query_distance_is_the_distance_to_the_decoded_row(
        dim in 1usize..150, seed: u64,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let rows = values(&mut rng, 20 * dim, 1.0);
        let query = values(&mut rng, dim, 1.0);
        let sq8 = Sq8Quantizer::fit(&rows, dim);
        let (mut code, mut back) = (vec![0u8; dim], vec![0f32; dim]);
        for row in rows.chunks_exact(dim) {
            sq8.encode(row, &mut code);
            sq8.decode(&code, &mut back);
            let dot: f64 = query.iter().zip(&back).map(|(&a, &b)| a as f64 * b as f64).sum();
            let l2: f64 = query.iter().zip(&back).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
            let dot_scale = magnitude(query.iter().zip(&back).map(|(&a, &b)| a as f64 * b as f64));
            for t in tables() {
                let got = sq8.query_with(t, &query, Metric::Dot).distance(&code);
                prop_assert!((got as f64 + dot).abs() <= 1e-5 * dot_scale + 1e-5, "{} dot", t.level);
                let got = sq8.query_with(t, &query, Metric::L2).distance(&code);
                prop_assert!((got as f64 - l2).abs() <= 1e-4 * l2 + 1e-5, "{} l2 {got} {l2}", t.level);
            }
        }
    }

    #[test]
    fn half_round_trips_within_their_precision(x in -70000.0f32..70000.0, tiny in -1e-3f32..1e-3) {
        for value in [x, tiny, x * 1e-6] {
            let (mut code, mut back) = ([0u8; 2], [0f32; 1]);
            encode_bf16(&[value], &mut code);
            decode_bf16(&code, &mut back);
            prop_assert!((back[0] - value).abs() <= value.abs() * 2f32.powi(-8), "bf16 {value} -> {}", back[0]);
            encode_f16(&[value], &mut code);
            decode_f16(&code, &mut back);
            if value.abs() >= 65520.0 {
                // Past the halfway point above the largest half: rounds to infinity.
                prop_assert!(back[0].is_infinite() && back[0].signum() == value.signum());
            } else if value.abs() > 65504.0 {
                // Nearer the largest half (65504) than infinity: rounds to it.
                prop_assert!(back[0] == 65504.0f32.copysign(value), "f16 {value} -> {}", back[0]);
            } else {
                // Relative 2^-11 for normal halves; subnormals are spaced 2^-24 apart.
                let bound = (value.abs() * 2f32.powi(-11)).max(2f32.powi(-25));
                prop_assert!((back[0] - value).abs() <= bound, "f16 {value} -> {}", back[0]);
            }
        }
    }
}

#[test]
fn f16_encoding_rounds_past_the_largest_half_like_ieee() {
    for (value, want) in [
        (65504.0f32, 65504.0f32),
        (65519.73, 65504.0),
        (-65519.0, -65504.0),
        (65520.0, f32::INFINITY),
        (-70000.0, f32::NEG_INFINITY),
    ] {
        let (mut code, mut back) = ([0u8; 2], [0f32; 1]);
        encode_f16(&[value], &mut code);
        decode_f16(&code, &mut back);
        assert_eq!(back[0], want, "{value}");
        assert_eq!(
            back[0],
            half::f16::from_f32(value).to_f32(),
            "{value}: the reference"
        );
    }
}

#[test]
fn f16_decoding_is_exact_for_every_bit_pattern() {
    for bits in 0..=u16::MAX {
        let want = half::f16::from_bits(bits).to_f32();
        let got = float16::f16_to_f32(bits.to_le_bytes());
        if want.is_nan() {
            assert!(got.is_nan(), "{bits:#06x} decoded as {got}");
        } else {
            assert_eq!(got.to_bits(), want.to_bits(), "{bits:#06x}");
        }
    }
}

#[test]
fn a_constant_dimension_encodes_to_zero_and_decodes_exactly() {
    let rows = [3.0, 1.0, 3.0, 2.0, 3.0, -1.0];
    let sq8 = Sq8Quantizer::fit(&rows, 2);
    assert_eq!(sq8.scales()[0], 0.0);
    let mut code = [9u8; 2];
    sq8.encode(&[3.0, 2.0], &mut code);
    assert_eq!(code, [0, 255]);
    let mut back = [0f32; 2];
    sq8.decode(&code, &mut back);
    assert_eq!(back, [3.0, 2.0]);
    // Out-of-range and non-finite values clip instead of wrapping.
    sq8.encode(&[f32::NAN, 100.0], &mut code);
    assert_eq!(code, [0, 255]);
    sq8.encode(&[3.0, -100.0], &mut code);
    assert_eq!(code, [0, 0]);
}

#[test]
fn clipped_ranges_ignore_outliers() {
    let dim = 2;
    let mut rows: Vec<f32> = (0..10_000)
        .flat_map(|i| [i as f32 / 10_000.0, 1.0])
        .collect();
    rows[0] = -1000.0;
    rows[2] = 1000.0;
    let clipped = Sq8Quantizer::fit_with(
        &rows,
        dim,
        Sq8Range::Clipped {
            tail: 0.001,
            sample_rows: 100_000,
        },
    );
    let min_max = Sq8Quantizer::fit_with(&rows, dim, Sq8Range::MinMax);
    assert_eq!(min_max.mins()[0], -1000.0);
    assert!(clipped.mins()[0] >= 0.0 && clipped.mins()[0] < 0.01);
    assert!(clipped.scales()[0] * 255.0 < 1.0);
    assert_eq!(clipped.scales()[1], 0.0);
}

#[test]
fn from_parts_rejects_bad_ranges_with_the_dimension() {
    assert!(Sq8Quantizer::from_parts(vec![0.0], vec![]).is_err());
    let err = Sq8Quantizer::from_parts(vec![0.0, f32::NAN], vec![1.0, 1.0]).unwrap_err();
    assert!(err.contains("dimension 1"), "{err}");
    assert!(Sq8Quantizer::from_parts(vec![0.0], vec![-1.0]).is_err());
    let ok = Sq8Quantizer::from_parts(vec![0.5], vec![0.25]).unwrap();
    let mut back = [0f32];
    ok.decode(&[4], &mut back);
    assert_eq!(back, [1.5]);
}

#[test]
fn code_norm_is_the_squared_norm_of_the_decoded_offsets() {
    let sq8 = Sq8Quantizer::from_parts(vec![-1.0, 5.0], vec![0.5, 2.0]).unwrap();
    // Decoded: [-1 + 0.5 · 4, 5 + 2 · 3] = [1, 11]; offsets from the minimums [2, 6].
    assert_eq!(sq8.code_norm(&[4, 3]), 4.0 + 36.0);
    let query = [0.0, 10.0];
    for t in tables() {
        let folded = sq8.query_with(t, &query, Metric::L2);
        // ‖[0, 10] − [1, 11]‖² = 2.
        assert_eq!(folded.distance(&[4, 3]), 2.0);
        // Rounded to `i8` steps (VNNI), the weights [-1, -20] err by up to half a step
        // (20 / 254) per unit of code (4 + 3).
        let tol = if t.prefer_i8 {
            20.0 / 254.0 * 7.0
        } else {
            1e-4
        };
        assert!((folded.fast_distance(&[4, 3], 40.0) - 2.0).abs() <= tol);
    }
}

#[test]
fn the_selected_table_is_one_this_cpu_supports() {
    let level = quant_table().level;
    assert!(std::ptr::eq(quant_table_for(level).unwrap(), quant_table()));
    assert!(quant_table_for(SimdLevel::Scalar).is_some());
}

#[test]
fn pq_nearest_codeword_is_the_first_smallest_table_entry_at_every_level() {
    let mut rng = StdRng::seed_from_u64(44);
    for dsub in [1, 2, 4, 8, 16] {
        for trial in 0..20 {
            let mut book = values(&mut rng, dsub * PQ_TABLE_WIDTH, 2.0);
            let sub = values(&mut rng, dsub, 2.0);
            if trial % 4 == 0 {
                // Two copies of the nearest codeword, the later one first in the search
                // order of a 16-lane scan: the lower position must win.
                let mut l2 = vec![0f32; PQ_TABLE_WIDTH];
                super::pq::l2_rows(&sub, &book, &mut l2);
                let near = (0..PQ_TABLE_WIDTH)
                    .min_by(|&a, &b| l2[a].total_cmp(&l2[b]))
                    .unwrap();
                let copy = (near + 17 + trial) % PQ_TABLE_WIDTH;
                for d in 0..dsub {
                    book[d * PQ_TABLE_WIDTH + copy] = book[d * PQ_TABLE_WIDTH + near];
                }
            }
            for table in tables() {
                let mut l2 = vec![0f32; PQ_TABLE_WIDTH];
                (table.pq_l2_rows)(&sub, &book, &mut l2);
                let want =
                    (0..PQ_TABLE_WIDTH).fold(0, |best, c| if l2[c] < l2[best] { c } else { best });
                let got = (table.pq_l2_nearest)(&sub, &book);
                assert_eq!(got, want, "{:?} dsub {dsub} trial {trial}", table.level);
            }
        }
    }
}

#[test]
fn pq_table_rows_match_a_direct_computation_at_every_level() {
    let mut rng = StdRng::seed_from_u64(41);
    for dsub in [1, 2, 3, 4, 8, 12, 16, 32] {
        let sub = values(&mut rng, dsub, 2.0);
        let book = values(&mut rng, dsub * PQ_TABLE_WIDTH, 2.0);
        for table in tables() {
            let mut l2 = vec![0f32; PQ_TABLE_WIDTH];
            let mut ip = vec![0f32; PQ_TABLE_WIDTH];
            (table.pq_l2_rows)(&sub, &book, &mut l2);
            (table.pq_neg_dot_rows)(&sub, &book, &mut ip);
            for c in 0..PQ_TABLE_WIDTH {
                let column = (0..dsub).map(|d| book[d * PQ_TABLE_WIDTH + c] as f64);
                let want_l2: f64 = sub
                    .iter()
                    .zip(column.clone())
                    .map(|(&q, x)| (q as f64 - x).powi(2))
                    .sum();
                let want_ip: f64 = -sub
                    .iter()
                    .zip(column)
                    .map(|(&q, x)| q as f64 * x)
                    .sum::<f64>();
                let what = format!("{:?} dsub {dsub} codeword {c}", table.level);
                assert_close(l2[c], want_l2 as f32, 4.0 * dsub as f64, &what);
                assert_close(ip[c], want_ip as f32, 4.0 * dsub as f64, &what);
            }
        }
    }
}

#[test]
fn pq4_block_scan_matches_a_direct_lookup_at_every_level() {
    let mut rng = StdRng::seed_from_u64(43);
    // The largest `m` with every entry 255 sums to exactly `u16::MAX`.
    let cases = [1, 2, 3, 8, 15, 16, 64, 256, 257].map(|m| (m, false));
    for (m, saturated) in cases.into_iter().chain([(257, true), (68, true)]) {
        let lut: Vec<u8> = (0..m * 16)
            .map(|_| {
                if saturated {
                    255
                } else {
                    rng.random_range(0..=255u8)
                }
            })
            .collect();
        // Codes of 32 rows, then packed: byte i of sub-quantiser j = row i | row i+16 << 4.
        let codes: Vec<[u8; 32]> = (0..m)
            .map(|_| std::array::from_fn(|_| rng.random_range(0..16u8)))
            .collect();
        let block: Vec<u8> = codes
            .iter()
            .flat_map(|c| (0..16).map(move |i| c[i] | (c[i + 16] << 4)))
            .collect();
        let want: Vec<u32> = (0..32)
            .map(|r| {
                (0..m)
                    .map(|j| lut[j * 16 + codes[j][r] as usize] as u32)
                    .sum()
            })
            .collect();
        for table in tables() {
            let start = if saturated { 0 } else { 7 };
            let mut out = [start as u16; PQ4_BLOCK];
            (table.pq4_block)(&lut, &block, &mut out);
            for r in 0..32 {
                assert_eq!(
                    out[r] as u32,
                    want[r] + start,
                    "{:?} m {m} row {r}",
                    table.level
                );
            }
        }
    }
}

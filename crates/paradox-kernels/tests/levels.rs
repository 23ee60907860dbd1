//! Every SIMD level this CPU supports against an `f64` reference: pairwise, one-vs-many and
//! gathered rows at any length and alignment, many-vs-many, and exact top-k search.

use paradox_kernels::{kernel_table_for, KernelTable, SimdLevel, TopK};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The tables this CPU can run (scalar always; AVX2 / AVX-512 / NEON where supported).
fn tables() -> Vec<&'static KernelTable> {
    SimdLevel::ALL
        .into_iter()
        .filter_map(kernel_table_for)
        .collect()
}

/// `len` values in `[-1, 1)` starting `offset` floats into a fresh buffer, so the slice is
/// misaligned for any `offset % 16 != 0`.
fn data(rng: &mut StdRng, len: usize, offset: usize) -> Vec<f32> {
    (0..len + offset)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect()
}

fn ref_dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// `Σ|a_i b_i|`: the scale the rounding error of a dot product is relative to.
fn dot_scale(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 * y as f64).abs())
        .sum()
}

fn ref_l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum()
}

fn norm2(a: &[f32]) -> f64 {
    ref_dot(a, a)
}

const REL: f64 = 1e-4;

fn assert_close(got: f32, want: f64, scale: f64, what: &str) {
    let tol = REL * scale + 1e-6;
    assert!(
        (got as f64 - want).abs() <= tol,
        "{what}: got {got}, want {want} (tolerance {tol})"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn pairwise_matches_reference(
        len in 0usize..1100, off_a in 0usize..16, off_b in 0usize..16, seed: u64,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let a = data(&mut rng, len, off_a);
        let b = data(&mut rng, len, off_b);
        let (a, b) = (&a[off_a..], &b[off_b..]);
        for t in tables() {
            let what = format!("{} len {len}", t.level);
            assert_close((t.dot)(a, b), ref_dot(a, b), dot_scale(a, b), &format!("dot {what}"));
            let l2 = ref_l2(a, b);
            assert_close((t.l2_squared)(a, b), l2, l2, &format!("l2 {what}"));
        }
    }

    #[test]
    fn one_to_many_matches_reference(
        dim in 0usize..130, n in 0usize..23, off_q in 0usize..16, off_r in 0usize..16,
        seed: u64,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let q = data(&mut rng, dim, off_q);
        let rows = data(&mut rng, n * dim, off_r);
        let (q, rows) = (&q[off_q..], &rows[off_r..]);
        for t in tables() {
            let mut dots = vec![f32::NAN; n];
            let mut l2s = vec![f32::NAN; n];
            (t.dot_one_to_many)(q, rows, &mut dots);
            (t.l2_squared_one_to_many)(q, rows, &mut l2s);
            for i in 0..n {
                let row = &rows[i * dim..(i + 1) * dim];
                let what = format!("{} dim {dim} row {i}/{n}", t.level);
                assert_close(dots[i], ref_dot(q, row), dot_scale(q, row), &format!("dot {what}"));
                let l2 = ref_l2(q, row);
                assert_close(l2s[i], l2, l2, &format!("l2 {what}"));
            }
        }
    }

    #[test]
    fn gather_matches_reference(
        dim in 0usize..130, n in 1usize..23, picks in proptest::collection::vec(0usize..1000, 0..40),
        off in 0usize..16, seed: u64,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let q = data(&mut rng, dim, off);
        let rows = data(&mut rng, n * dim, off);
        let (q, rows) = (&q[off..], &rows[off..]);
        // Any order, repeats allowed.
        let picked: Vec<u32> = picks.iter().map(|&p| (p % n) as u32).collect();
        for t in tables() {
            let mut dots = vec![f32::NAN; picked.len()];
            let mut l2s = vec![f32::NAN; picked.len()];
            (t.dot_gather)(q, rows, &picked, &mut dots);
            (t.l2_squared_gather)(q, rows, &picked, &mut l2s);
            for (i, &r) in picked.iter().enumerate() {
                let row = &rows[r as usize * dim..][..dim];
                let what = format!("{} dim {dim} pick {i} row {r}/{n}", t.level);
                assert_close(dots[i], ref_dot(q, row), dot_scale(q, row), &format!("dot {what}"));
                assert_close(l2s[i], ref_l2(q, row), ref_l2(q, row), &format!("l2 {what}"));
            }
        }
    }

    #[test]
    fn many_to_many_matches_reference(
        dim in 1usize..600, nq in 0usize..31, n in 0usize..70, off in 0usize..16, seed: u64,
    ) {
        check_many_to_many(dim, nq, n, off, seed);
    }

    #[test]
    fn topk_search_matches_full_sort(
        dim in 1usize..70, nq in 1usize..20, n in 0usize..600, k in 0usize..40,
        l2: bool, base in 0u64..1_000_000, seed: u64,
    ) {
        check_topk(dim, nq, n, k, l2, base, seed);
    }
}

fn check_many_to_many(dim: usize, nq: usize, n: usize, off: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let queries = data(&mut rng, nq * dim, off);
    let rows = data(&mut rng, n * dim, off);
    let (queries, rows) = (&queries[off..], &rows[off..]);
    for t in tables() {
        let mut dots = vec![f32::NAN; nq * n];
        let mut l2s = vec![f32::NAN; nq * n];
        (t.dot_many_to_many)(queries, rows, dim, &mut dots);
        (t.l2_squared_many_to_many)(queries, rows, dim, &mut l2s);
        for qi in 0..nq {
            let q = &queries[qi * dim..(qi + 1) * dim];
            for i in 0..n {
                let x = &rows[i * dim..(i + 1) * dim];
                let what = format!("{} {nq}x{n}x{dim} at ({qi}, {i})", t.level);
                let got = dots[qi * n + i];
                assert_close(got, ref_dot(q, x), dot_scale(q, x), &format!("dot {what}"));
                // The expansion ‖q‖² + ‖x‖² − 2q·x loses precision relative to the norms.
                let got = l2s[qi * n + i];
                assert_close(
                    got,
                    ref_l2(q, x),
                    norm2(q) + norm2(x),
                    &format!("l2 {what}"),
                );
                assert!(got >= 0.0, "l2 {what} is negative: {got}");
            }
        }
    }
}

/// Shapes the random cases rarely reach: several row blocks, several k chunks, dims that
/// are not multiples of any vector width, and full and partial query panels.
#[test]
fn many_to_many_crosses_blocks_and_k_chunks() {
    for (dim, nq, n) in [(3, 15, 2100), (1100, 29, 260), (384, 14, 700), (777, 7, 70)] {
        check_many_to_many(dim, nq, n, 1, dim as u64);
    }
}

fn check_topk(dim: usize, nq: usize, n: usize, k: usize, l2: bool, base: u64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let queries = data(&mut rng, nq * dim, 0);
    let mut rows = data(&mut rng, n * dim, 0);
    // Duplicate some rows so that ties occur.
    for i in (3..n).step_by(7) {
        rows.copy_within((i - 3) * dim..(i - 2) * dim, i * dim);
    }
    let distance = |q: &[f32], x: &[f32]| if l2 { ref_l2(q, x) } else { -ref_dot(q, x) };
    let scale = |q: &[f32], x: &[f32]| {
        if l2 {
            norm2(q) + norm2(x)
        } else {
            dot_scale(q, x)
        }
    };
    for t in tables() {
        let mut batch: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
        t.batch_topk(&queries, &rows, dim, l2, base, &mut batch);
        for (qi, batch_top) in batch.into_iter().enumerate() {
            let q = &queries[qi * dim..(qi + 1) * dim];
            let mut scan_top = TopK::new(k);
            t.scan_topk(q, &rows, l2, base, &mut scan_top);
            // Every row, listed backwards: the same selection through the gather path.
            let backwards: Vec<u32> = (0..n as u32).rev().collect();
            let mut rows_top = TopK::new(k);
            t.scan_rows_topk(q, &rows, &backwards, l2, base, &mut rows_top);
            let mut want: Vec<f64> = rows.chunks_exact(dim).map(|x| distance(q, x)).collect();
            want.sort_by(f64::total_cmp);
            want.truncate(k);
            for (name, top) in [("batch", batch_top), ("scan", scan_top), ("rows", rows_top)] {
                let got = top.into_sorted_vec();
                let what = format!("{name} {} q{qi} {nq}x{n}x{dim} k {k} l2 {l2}", t.level);
                assert_eq!(got.len(), want.len(), "{what}: count");
                let mut keys: Vec<u64> = got.iter().map(|nb| nb.key).collect();
                keys.sort_unstable();
                keys.dedup();
                assert_eq!(keys.len(), got.len(), "{what}: duplicate keys");
                for (rank, (nb, &w)) in got.iter().zip(&want).enumerate() {
                    assert!(nb.key >= base && nb.key < base + n as u64, "{what}: key");
                    let x = &rows[(nb.key - base) as usize * dim..][..dim];
                    let s = scale(q, x);
                    // The reported distance is the row's own, and ranks like the reference.
                    assert_close(
                        nb.distance,
                        distance(q, x),
                        s,
                        &format!("{what} rank {rank}"),
                    );
                    assert_close(nb.distance, w, s, &format!("{what} rank {rank} vs sort"));
                }
            }
        }
    }
}

#[test]
fn topk_search_on_a_large_block() {
    check_topk(384, 30, 3000, 10, true, 7, 1);
    check_topk(384, 30, 3000, 10, false, 7, 2);
    check_topk(16, 2, 5000, 100, false, 0, 3);
}

#[test]
fn empty_and_degenerate_inputs() {
    for t in tables() {
        assert_eq!((t.dot)(&[], &[]), 0.0);
        assert_eq!((t.l2_squared)(&[], &[]), 0.0);
        let mut out = [1.0f32; 3];
        (t.dot_one_to_many)(&[], &[], &mut out);
        assert_eq!(out, [0.0; 3], "{}: empty query", t.level);
        let mut gathered = [1.0f32; 2];
        (t.l2_squared_gather)(&[], &[], &[0, 5], &mut gathered);
        assert_eq!(gathered, [0.0; 2], "{}: empty query, gather", t.level);
        let mut none: [f32; 0] = [];
        (t.l2_squared_many_to_many)(&[1.0, 2.0], &[], 2, &mut none);
        let mut tops = vec![TopK::new(3)];
        t.batch_topk(&[1.0, 2.0], &[], 2, true, 0, &mut tops);
        assert!(tops[0].is_empty());
    }
}

#[test]
fn every_level_this_cpu_supports_is_tested() {
    let levels: Vec<SimdLevel> = tables().iter().map(|t| t.level).collect();
    assert!(levels.contains(&SimdLevel::Scalar));
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        assert_eq!(levels.contains(&SimdLevel::Avx2), avx2);
        assert_eq!(
            levels.contains(&SimdLevel::Avx512),
            avx2 && is_x86_feature_detected!("avx512f")
        );
    }
    // The default table is the widest supported one unless PARADOX_SIMD forces another.
    if std::env::var_os(paradox_kernels::SIMD_ENV_VAR).is_none() {
        assert_eq!(
            paradox_kernels::kernel_table().level,
            *levels.last().unwrap()
        );
        assert_eq!(
            paradox_kernels::simd_level(),
            levels.last().unwrap().as_str()
        );
    }
}

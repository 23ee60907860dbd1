//! Adapters and normalisers on synthetic data with known answers.

use paradox_lifecycle::adapter::{Adapter, AdapterKind, MIN_PAIRS};
use paradox_lifecycle::linalg::orthonormalize_columns;
use paradox_lifecycle::normalize::{NormalizeMode, Normalizer};
use paradox_lifecycle::{LifecycleError, VectorMap};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// Anisotropic Gaussian rows: column `j` has standard deviation `1 / (1 + j / 4)`.
fn anisotropic(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut x = gaussian(n * dim, seed);
    for row in x.chunks_exact_mut(dim) {
        for (j, v) in row.iter_mut().enumerate() {
            *v /= 1.0 + j as f32 / 4.0;
        }
    }
    x
}

/// `rows × cols` matrix with orthonormal columns (`rows ≥ cols`).
fn orthonormal(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    let mut m: Vec<f64> = gaussian(rows * cols, seed)
        .iter()
        .map(|&v| v as f64)
        .collect();
    orthonormalize_columns(&mut m, rows, cols);
    m
}

/// `x · m` for row set `x` (`n × din`) and `m` (`din × dout`, f64).
fn times(x: &[f32], din: usize, m: &[f64], dout: usize) -> Vec<f32> {
    x.chunks_exact(din)
        .flat_map(|row| {
            (0..dout).map(move |o| {
                row.iter()
                    .enumerate()
                    .map(|(i, &v)| v as f64 * m[i * dout + o])
                    .sum::<f64>() as f32
            })
        })
        .collect()
}

fn unit(dim: usize, i: usize) -> Vec<f32> {
    let mut e = vec![0.0; dim];
    e[i] = 1.0;
    e
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn procrustes_recovers_a_rotation() {
    let (n, d) = (2000, 32);
    let source = anisotropic(n, d, 1);
    let rotation = orthonormal(d, d, 2);
    let target = times(&source, d, &rotation, d);
    let adapter = Adapter::fit(AdapterKind::Procrustes, &source, d, &target, d, 7).unwrap();
    for i in 0..d {
        let want: Vec<f32> = (0..d).map(|o| rotation[i * d + o] as f32).collect();
        let got = adapter.map(&unit(d, i));
        assert!(max_abs_diff(&got, &want) < 1e-4, "row {i} of the rotation");
    }
    let fit = adapter.fit_report();
    assert_eq!(fit.pairs, n);
    assert_eq!(fit.holdout, 200);
    assert!(
        fit.holdout_cosine > 0.9999 && fit.holdout_r2 > 0.9999,
        "{fit:?}"
    );
    assert_eq!(
        adapter.to_string(),
        "procrustes adapter 32 -> 32 (orthogonal)"
    );
}

#[test]
fn procrustes_across_dimensions_is_semi_orthogonal() {
    // 16 -> 24: an isometric embedding (orthonormal rows), recovered exactly.
    let (n, small, large) = (1500, 16, 24);
    let source = anisotropic(n, small, 3);
    let q = orthonormal(large, small, 4); // 24 × 16, orthonormal columns
    let embed: Vec<f64> = (0..small * large)
        .map(|k| q[(k % large) * small + k / large])
        .collect(); // 16 × 24
    let target = times(&source, small, &embed, large);
    let up = Adapter::fit(AdapterKind::Procrustes, &source, small, &target, large, 0).unwrap();
    for i in 0..small {
        let want: Vec<f32> = (0..large).map(|o| embed[i * large + o] as f32).collect();
        assert!(max_abs_diff(&up.map(&unit(small, i)), &want) < 1e-4);
    }
    assert!(up.to_string().contains("semi-orthogonal"));

    // 24 -> 16: a projection is not a rotation, but the fitted W (24 × 16, x ↦ x W) still
    // has orthonormal columns: WᵀW = I, so norms never grow.
    let wide = anisotropic(n, large, 5);
    let narrowed = times(&wide, large, &q, small);
    let down = Adapter::fit(AdapterKind::Procrustes, &wide, large, &narrowed, small, 0).unwrap();
    let w: Vec<Vec<f32>> = (0..large).map(|i| down.map(&unit(large, i))).collect();
    for a in 0..small {
        for b in 0..small {
            let dot: f32 = w.iter().map(|row| row[a] * row[b]).sum();
            let want = if a == b { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-4, "(WᵀW)[{a}][{b}] = {dot}");
        }
    }
    assert!(
        down.fit_report().holdout_r2 > 0.5,
        "{:?}",
        down.fit_report()
    );
    assert!(down.to_string().contains("semi-orthogonal"));
}

#[test]
fn affine_recovers_matrix_and_bias() {
    let (n, din, dout) = (1000, 12, 20);
    let source = anisotropic(n, din, 6);
    let matrix: Vec<f64> = gaussian(din * dout, 7).iter().map(|&v| v as f64).collect();
    let bias: Vec<f32> = gaussian(dout, 8);
    let mut target = times(&source, din, &matrix, dout);
    for row in target.chunks_exact_mut(dout) {
        for (v, b) in row.iter_mut().zip(&bias) {
            *v += b;
        }
    }
    let kind = AdapterKind::Affine { ridge: 0.0 };
    let adapter = Adapter::fit(kind, &source, din, &target, dout, 1).unwrap();
    assert!(max_abs_diff(&adapter.map(&vec![0.0; din]), &bias) < 1e-4);
    for i in 0..din {
        let got: Vec<f32> = adapter
            .map(&unit(din, i))
            .iter()
            .zip(&bias)
            .map(|(y, b)| y - b)
            .collect();
        let want: Vec<f32> = (0..dout).map(|o| matrix[i * dout + o] as f32).collect();
        assert!(max_abs_diff(&got, &want) < 1e-4, "column {i}");
    }
    assert!(adapter.fit_report().holdout_r2 > 0.99999);
    // A ridge shrinks the map: agreement drops but stays high.
    let ridged = Adapter::fit(
        AdapterKind::Affine { ridge: 0.5 },
        &source,
        din,
        &target,
        dout,
        1,
    )
    .unwrap();
    assert!(ridged.fit_report().holdout_r2 < adapter.fit_report().holdout_r2);
}

#[test]
fn low_rank_is_exact_on_rank_r_data() {
    let (n, din, dout, rank) = (1200, 24, 20, 3);
    let source = anisotropic(n, din, 9);
    let left: Vec<f64> = gaussian(din * rank, 10).iter().map(|&v| v as f64).collect();
    let right: Vec<f64> = gaussian(rank * dout, 11)
        .iter()
        .map(|&v| v as f64)
        .collect();
    let mut product = vec![0.0f64; din * dout];
    for i in 0..din {
        for k in 0..rank {
            for o in 0..dout {
                product[i * dout + o] += left[i * rank + k] * right[k * dout + o];
            }
        }
    }
    let mut target = times(&source, din, &product, dout);
    target.iter_mut().for_each(|v| *v += 0.25);

    let exact = Adapter::fit(
        AdapterKind::LowRank { rank, ridge: 0.0 },
        &source,
        din,
        &target,
        dout,
        2,
    )
    .unwrap();
    let probe = gaussian(50 * din, 12);
    let mut want = times(&probe, din, &product, dout);
    want.iter_mut().for_each(|v| *v += 0.25);
    assert!(max_abs_diff(&exact.map_batch(&probe), &want) < 1e-4);
    assert!(exact.fit_report().holdout_r2 > 0.99999);

    let truncated = Adapter::fit(
        AdapterKind::LowRank {
            rank: rank - 1,
            ridge: 0.0,
        },
        &source,
        din,
        &target,
        dout,
        2,
    )
    .unwrap();
    assert!(
        truncated.fit_report().holdout_r2 < 0.99,
        "{:?}",
        truncated.fit_report()
    );
}

#[test]
fn mlp_beats_affine_on_a_nonlinear_map_and_is_deterministic() {
    let (n, din, dout) = (3000, 8, 6);
    let source = gaussian(n * din, 13);
    let matrix: Vec<f64> = gaussian(din * dout, 14)
        .iter()
        .map(|&v| v as f64 * 0.3)
        .collect();
    let linear = times(&source, din, &matrix, dout);
    let target: Vec<f32> = linear
        .chunks_exact(dout)
        .zip(source.chunks_exact(din))
        .flat_map(|(y, x)| {
            let bump = x[0].abs() + (x[1] * x[2]).tanh();
            y.iter().map(move |v| v + bump).collect::<Vec<_>>()
        })
        .collect();
    let kind = AdapterKind::Mlp {
        hidden: 64,
        epochs: 60,
        lr: 3e-3,
    };
    let mlp = Adapter::fit(kind, &source, din, &target, dout, 3).unwrap();
    let affine = Adapter::fit(
        AdapterKind::Affine { ridge: 0.01 },
        &source,
        din,
        &target,
        dout,
        3,
    )
    .unwrap();
    assert!(mlp.has_residual());
    let (m, a) = (mlp.fit_report().holdout_r2, affine.fit_report().holdout_r2);
    assert!(m > a + 0.1, "mlp r2 {m} vs affine {a}");
    let again = Adapter::fit(kind, &source, din, &target, dout, 3).unwrap();
    assert_eq!(
        mlp.map_batch(&source[..100 * din]),
        again.map_batch(&source[..100 * din])
    );
}

fn fitted_kinds(din: usize, dout: usize) -> Vec<(AdapterKind, Adapter)> {
    let n = 400;
    let source = anisotropic(n, din, 20);
    let matrix: Vec<f64> = gaussian(din * dout, 21).iter().map(|&v| v as f64).collect();
    let target: Vec<f32> = times(&source, din, &matrix, dout)
        .iter()
        .map(|v| v.sin())
        .collect();
    [
        AdapterKind::Procrustes,
        AdapterKind::Affine { ridge: 0.01 },
        AdapterKind::LowRank {
            rank: 4,
            ridge: 0.01,
        },
        AdapterKind::Mlp {
            hidden: 16,
            epochs: 20,
            lr: 1e-2,
        },
    ]
    .into_iter()
    .map(|kind| {
        (
            kind,
            Adapter::fit(kind, &source, din, &target, dout, 5).unwrap(),
        )
    })
    .collect()
}

#[test]
fn map_batch_agrees_with_map_into() {
    let (din, dout) = (10, 7);
    let probe = gaussian(1100 * din, 22); // more than one block of map_batch
    for (kind, adapter) in fitted_kinds(din, dout) {
        let batch = adapter.map_batch(&probe);
        let single: Vec<f32> = probe
            .chunks_exact(din)
            .flat_map(|x| adapter.map(x))
            .collect();
        assert!(max_abs_diff(&batch, &single) < 1e-4, "{kind:?}");
    }
}

#[test]
fn save_load_round_trip_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (din, dout) = (10, 7);
    let probe = gaussian(20 * din, 23);
    for (kind, adapter) in fitted_kinds(din, dout) {
        let path = dir.path().join(format!("{}.adapter", kind.name()));
        adapter.save(&path).unwrap();
        let loaded = Adapter::load(&path).unwrap();
        assert_eq!(loaded.kind(), kind);
        assert_eq!(loaded.fit_report(), adapter.fit_report());
        assert_eq!(loaded.has_residual(), adapter.has_residual());
        assert_eq!(
            loaded.map_batch(&probe),
            adapter.map_batch(&probe),
            "{kind:?}"
        );

        let bytes = std::fs::read(&path).unwrap();
        for at in [3, 20, bytes.len() / 2, bytes.len() - 9, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            std::fs::write(&path, &damaged).unwrap();
            let err = Adapter::load(&path).unwrap_err();
            assert!(
                matches!(err, LifecycleError::Corrupt(_)),
                "byte {at}: {err}"
            );
        }
        std::fs::write(&path, &bytes[..bytes.len() - 30]).unwrap();
        assert!(matches!(
            Adapter::load(&path),
            Err(LifecycleError::Corrupt(_))
        ));
    }
    // A normaliser file is not an adapter, and a missing file is an I/O error.
    let normalizer = Normalizer::fit(&gaussian(50 * 4, 24), 4, NormalizeMode::Center).unwrap();
    let path = dir.path().join("n.norm");
    normalizer.save(&path).unwrap();
    let err = Adapter::load(&path).unwrap_err();
    assert!(
        matches!(err, LifecycleError::Corrupt(ref m) if m.contains("magic")),
        "{err}"
    );
    assert!(matches!(
        Adapter::load(&dir.path().join("missing")),
        Err(LifecycleError::Io { .. })
    ));
}

fn covariance(x: &[f32], dim: usize) -> Vec<f64> {
    let n = x.len() / dim;
    let mut mean = vec![0.0f64; dim];
    for row in x.chunks_exact(dim) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64 / n as f64;
        }
    }
    let mut cov = vec![0.0f64; dim * dim];
    for row in x.chunks_exact(dim) {
        for i in 0..dim {
            for j in 0..dim {
                cov[i * dim + j] +=
                    (row[i] as f64 - mean[i]) * (row[j] as f64 - mean[j]) / (n - 1) as f64;
            }
        }
    }
    cov
}

#[test]
fn whitening_gives_identity_covariance() {
    let (n, d) = (3000, 16);
    // Correlated: anisotropic rows mixed by a random matrix, plus an offset.
    let mixing: Vec<f64> = gaussian(d * d, 30).iter().map(|&v| v as f64).collect();
    let mut sample = times(&anisotropic(n, d, 31), d, &mixing, d);
    sample.iter_mut().for_each(|v| *v += 3.0);
    let whiten = Normalizer::fit(&sample, d, NormalizeMode::Whiten { eps: 0.0 }).unwrap();
    assert_eq!(whiten.mode(), NormalizeMode::Whiten { eps: 0.0 });
    let out = whiten.map_batch(&sample);
    let cov = covariance(&out, d);
    for i in 0..d {
        for j in 0..d {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!(
                (cov[i * d + j] - want).abs() < 1e-3,
                "cov[{i}][{j}] = {}",
                cov[i * d + j]
            );
        }
    }
    // ZCA is symmetric: the whitened sample stays aligned with the centred one.
    let center = Normalizer::fit(&sample, d, NormalizeMode::Center).unwrap();
    let centred = center.map_batch(&sample);
    let means: Vec<f64> = (0..d)
        .map(|j| centred.chunks_exact(d).map(|r| r[j] as f64).sum::<f64>() / n as f64)
        .collect();
    assert!(means.iter().all(|m| m.abs() < 1e-4));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.norm");
    whiten.save(&path).unwrap();
    let loaded = Normalizer::load(&path).unwrap();
    assert_eq!(
        loaded.map_batch(&sample[..10 * d]),
        whiten.map_batch(&sample[..10 * d])
    );
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        Normalizer::load(&path),
        Err(LifecycleError::Corrupt(_))
    ));
}

#[test]
fn whitening_a_singular_sample_needs_eps() {
    let d = 8;
    // Rank 3 sample in 8 dimensions.
    let basis: Vec<f64> = gaussian(3 * d, 40).iter().map(|&v| v as f64).collect();
    let sample = times(&gaussian(500 * 3, 41), 3, &basis, d);
    let err = Normalizer::fit(&sample, d, NormalizeMode::Whiten { eps: 0.0 }).unwrap_err();
    assert!(
        matches!(err, LifecycleError::Numerical(ref m) if m.contains("singular")),
        "{err}"
    );
    assert!(Normalizer::fit(&sample, d, NormalizeMode::Whiten { eps: 1e-3 }).is_ok());
}

fn invalid(result: Result<impl std::fmt::Debug, LifecycleError>, needle: &str) {
    match result {
        Err(LifecycleError::InvalidArgument(message)) => {
            assert!(
                message.contains(needle),
                "`{message}` should mention `{needle}`"
            )
        }
        other => panic!("expected InvalidArgument mentioning `{needle}`, got {other:?}"),
    }
}

#[test]
fn bad_adapter_input_is_rejected_with_a_reason() {
    let (n, d) = (50, 4);
    let x = gaussian(n * d, 50);
    let y = gaussian(n * d, 51);
    let affine = AdapterKind::Affine { ridge: 0.1 };
    invalid(
        Adapter::fit(affine, &x, 0, &y, d, 0),
        "dimension must be at least 1",
    );
    invalid(
        Adapter::fit(affine, &x, d, &y, 0, 0),
        "dimension must be at least 1",
    );
    invalid(
        Adapter::fit(affine, &x[..n * d - 1], d, &y, d, 0),
        "whole number",
    );
    invalid(Adapter::fit(affine, &x, d, &y[..(n - 1) * d], d, 0), "49");
    let mut nan = x.clone();
    nan[13] = f32::NAN;
    invalid(
        Adapter::fit(affine, &nan, d, &y, d, 0),
        "row 3 column 1 is NaN",
    );
    let mut inf = y.clone();
    inf[0] = f32::INFINITY;
    invalid(Adapter::fit(affine, &x, d, &inf, d, 0), "inf");
    let few = (MIN_PAIRS - 1) * d;
    invalid(
        Adapter::fit(affine, &x[..few], d, &y[..few], d, 0),
        "at least 10 pairs",
    );
    invalid(
        Adapter::fit(
            AdapterKind::LowRank {
                rank: 0,
                ridge: 0.1,
            },
            &x,
            d,
            &y,
            d,
            0,
        ),
        "rank",
    );
    invalid(
        Adapter::fit(
            AdapterKind::LowRank {
                rank: 5,
                ridge: 0.1,
            },
            &x,
            d,
            &y,
            d,
            0,
        ),
        "1..=4",
    );
    invalid(
        Adapter::fit(AdapterKind::Affine { ridge: -1.0 }, &x, d, &y, d, 0),
        "ridge",
    );
    invalid(
        Adapter::fit(AdapterKind::Affine { ridge: f32::NAN }, &x, d, &y, d, 0),
        "ridge",
    );
    let mlp = |hidden, epochs, lr| AdapterKind::Mlp { hidden, epochs, lr };
    invalid(Adapter::fit(mlp(0, 5, 1e-3), &x, d, &y, d, 0), "hidden");
    invalid(
        Adapter::fit(mlp(100_000, 5, 1e-3), &x, d, &y, d, 0),
        "hidden",
    );
    invalid(Adapter::fit(mlp(8, 0, 1e-3), &x, d, &y, d, 0), "epochs");
    invalid(Adapter::fit(mlp(8, 5, 0.0), &x, d, &y, d, 0), "lr");
    invalid(
        Adapter::fit(mlp(8, 5, f32::INFINITY), &x, d, &y, d, 0),
        "lr",
    );

    let adapter = Adapter::fit(affine, &x, d, &y, d, 0).unwrap();
    invalid(adapter.map_checked(&[1.0; 3]), "expects 4-dimensional");
    assert_eq!(adapter.map_checked(&x[..d]).unwrap(), adapter.map(&x[..d]));
}

#[test]
fn singular_least_squares_is_a_numerical_error() {
    // 20 pairs in 64 dimensions without a ridge: the normal equations are singular.
    let (n, d) = (20, 64);
    let (x, y) = (gaussian(n * d, 60), gaussian(n * d, 61));
    let err = Adapter::fit(AdapterKind::Affine { ridge: 0.0 }, &x, d, &y, d, 0).unwrap_err();
    assert!(matches!(err, LifecycleError::Numerical(_)), "{err}");
    assert!(Adapter::fit(AdapterKind::Affine { ridge: 0.1 }, &x, d, &y, d, 0).is_ok());
}

#[test]
fn bad_normalizer_input_is_rejected_with_a_reason() {
    let x = gaussian(40, 70);
    invalid(
        Normalizer::fit(&x, 0, NormalizeMode::Center),
        "dimension must be at least 1",
    );
    invalid(
        Normalizer::fit(&x[..39], 4, NormalizeMode::Center),
        "whole number",
    );
    invalid(
        Normalizer::fit(&x[..4], 4, NormalizeMode::Center),
        "at least 2",
    );
    let mut nan = x.clone();
    nan[7] = f32::NAN;
    invalid(Normalizer::fit(&nan, 4, NormalizeMode::Center), "NaN");
    invalid(
        Normalizer::fit(&x, 4, NormalizeMode::Whiten { eps: -1.0 }),
        "eps",
    );
    invalid(
        Normalizer::fit(&x, 4, NormalizeMode::Whiten { eps: f32::NAN }),
        "eps",
    );
}

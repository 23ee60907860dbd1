//! The single-vector path against the batch path, the `i8` residual against its `f32`
//! network, and the file format: format-1 files (written before `i8` residuals) still load
//! and compute what they did.

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;

use super::layers::Residual;
use super::*;
use crate::tensor_file::{read_tensor_file, write_tensor_file};

fn values(rng: &mut StdRng, len: usize, range: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-range..range)).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn max_abs(a: &[f32]) -> f32 {
    a.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// `y = x M + |x₀| + tanh(x₁ x₂)`: a linear map plus a bump only the MLP's residual can
/// learn (it keeps its residual on them).
fn pairs(n: usize, din: usize, dout: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let source = values(&mut rng, n * din, 1.0);
    let m = values(&mut rng, din * dout, 0.5);
    let target = source
        .chunks_exact(din)
        .flat_map(|x| {
            let m = &m;
            let bump = x[0].abs() + (x[1] * x[2] * 3.0).tanh();
            (0..dout).map(move |o| {
                let z: f32 = x.iter().enumerate().map(|(i, v)| v * m[i * dout + o]).sum();
                z + bump
            })
        })
        .collect();
    (source, target)
}

/// Every kind fitted on odd shapes (not multiples of 4, 8 or 16).
fn fitted(din: usize, dout: usize) -> Vec<Adapter> {
    let (source, target) = pairs(2000, din, dout, 1);
    [
        AdapterKind::Procrustes,
        AdapterKind::Affine { ridge: 0.01 },
        AdapterKind::LowRank {
            rank: din.min(dout) / 2 + 1,
            ridge: 0.01,
        },
        AdapterKind::Mlp {
            hidden: 37,
            epochs: 40,
            lr: 3e-3,
        },
    ]
    .into_iter()
    .map(|kind| Adapter::fit(kind, &source, din, &target, dout, 2).unwrap())
    .collect()
}

#[test]
fn map_into_equals_map_batch_for_every_kind_and_its_adjoint() {
    for (din, dout) in [(19, 23), (23, 19), (40, 33)] {
        let mut rng = StdRng::seed_from_u64(9);
        // More than one block of map_batch, for the adapter and its adjoint.
        let probe = values(&mut rng, 1100 * din.max(dout), 1.0);
        for adapter in fitted(din, dout) {
            if let AdapterKind::Mlp { .. } = adapter.kind() {
                assert!(adapter.has_residual(), "{din}->{dout}: the test needs one");
            }
            let mut maps = vec![adapter.clone()];
            maps.extend(adapter.adjoint().ok());
            for map in maps {
                let (d_in, d_out) = (map.dim_in(), map.dim_out());
                let batch = map.map_batch(&probe[..1100 * d_in]);
                let single: Vec<f32> = probe[..1100 * d_in]
                    .chunks_exact(d_in)
                    .flat_map(|x| map.map(x))
                    .collect();
                assert_eq!(batch.len(), 1100 * d_out);
                let tol = 1e-5 * (1.0 + max_abs(&batch));
                let diff = max_abs_diff(&batch, &single);
                assert!(diff <= tol, "{map}: map_into vs map_batch differ by {diff}");
            }
        }
    }
}

#[test]
fn the_int8_residual_follows_its_f32_network_closely() {
    let (din, hidden, dout) = (384, 512, 384);
    let mut rng = StdRng::seed_from_u64(3);
    let scale1 = (2.0 / din as f32).sqrt();
    let w1 = values(&mut rng, hidden * din, scale1);
    let b1 = values(&mut rng, hidden, 0.1);
    let w2 = values(&mut rng, dout * hidden, 0.05);
    let b2 = values(&mut rng, dout, 0.01);
    let exact = Residual::f32(w1.clone(), &b1, w2.clone(), &b2, din);
    let quantized = Residual::quantize(&w1, &b1, &w2, &b2, din);
    let xs = values(&mut rng, 50 * din, 1.0);
    let (mut a, mut b) = (vec![0.0; 50 * dout], vec![0.0; 50 * dout]);
    exact.add_block(&xs, din, &mut a);
    quantized.add_block(&xs, din, &mut b);
    // Relative error of the residual, over all outputs: about 1/127 per factor, averaged
    // over hundreds of terms.
    let err: f32 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt();
    let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(err / norm < 0.01, "relative error {}", err / norm);
}

#[test]
fn new_mlp_files_are_format_2_with_int8_codes_and_load_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = fitted(19, 23).pop().unwrap();
    assert!(adapter.has_residual());
    let path = dir.path().join("mlp.adapter");
    adapter.save(&path).unwrap();

    let raw = read_tensor_file(&path, b"PDXADAPT").unwrap();
    assert_eq!(raw.meta["format"], 2);
    assert_eq!(raw.meta["residual_precision"], "int8");
    let names: Vec<&str> = raw.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "weight",
            "bias",
            "mlp_w1_codes",
            "mlp_w1_scales",
            "mlp_b1",
            "mlp_w2_codes",
            "mlp_w2_scales",
            "mlp_b2"
        ]
    );
    let codes = &raw.tensors[2].1;
    assert!(codes
        .iter()
        .all(|q| q.fract() == 0.0 && (-127.0..=127.0).contains(q)));
    assert!(codes.iter().any(|&q| q.abs() == 127.0));

    let loaded = Adapter::load(&path).unwrap();
    let probe = values(&mut StdRng::seed_from_u64(4), 30 * 19, 1.0);
    assert_eq!(loaded.map_batch(&probe), adapter.map_batch(&probe));
    assert_eq!(loaded.map(&probe[..19]), adapter.map(&probe[..19]));
}

/// An MLP adapter file exactly as format 1 wrote it: no `format` key, `f32` residual.
fn write_format_1(path: &Path, din: usize, hidden: usize, dout: usize) -> [Vec<f32>; 6] {
    let mut rng = StdRng::seed_from_u64(5);
    let weight = values(&mut rng, dout * din, 0.5);
    let bias = values(&mut rng, dout, 0.5);
    let w1 = values(&mut rng, hidden * din, 0.5);
    let b1 = values(&mut rng, hidden, 0.5);
    let w2 = values(&mut rng, dout * hidden, 0.5);
    let b2 = values(&mut rng, dout, 0.5);
    let meta = json!({
        "kind": {"kind": "mlp", "hidden": hidden, "epochs": 3, "lr": 0.001},
        "dim_in": din,
        "dim_out": dout,
        "fit": {"pairs": 100, "holdout": 10, "train_cosine": 0.9, "holdout_cosine": 0.8,
                "holdout_r2": 0.7, "fit_seconds": 0.1},
        "residual_hidden": hidden,
    });
    write_tensor_file(
        path,
        b"PDXADAPT",
        meta,
        &[
            ("weight", &weight[..]),
            ("bias", &bias[..]),
            ("mlp_w1", &w1[..]),
            ("mlp_b1", &b1[..]),
            ("mlp_w2", &w2[..]),
            ("mlp_b2", &b2[..]),
        ],
    )
    .unwrap();
    [weight, bias, w1, b1, w2, b2]
}

/// The format-1 network, in `f64`.
fn format_1_reference(params: &[Vec<f32>; 6], x: &[f32], hidden: usize) -> Vec<f64> {
    let [weight, bias, w1, b1, w2, b2] = params;
    let dot =
        |row: &[f32], v: &[f64]| -> f64 { row.iter().zip(v).map(|(&a, b)| a as f64 * b).sum() };
    let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let h: Vec<f64> = (0..hidden)
        .map(|j| (dot(&w1[j * x.len()..(j + 1) * x.len()], &x) + b1[j] as f64).max(0.0))
        .collect();
    (0..bias.len())
        .map(|o| {
            dot(&weight[o * x.len()..(o + 1) * x.len()], &x)
                + bias[o] as f64
                + dot(&w2[o * hidden..(o + 1) * hidden], &h)
                + b2[o] as f64
        })
        .collect()
}

#[test]
fn format_1_files_still_load_and_compute_in_f32() {
    let dir = tempfile::tempdir().unwrap();
    let (din, hidden, dout) = (21, 45, 17);
    let path = dir.path().join("old.adapter");
    let params = write_format_1(&path, din, hidden, dout);
    let adapter = Adapter::load(&path).unwrap();
    assert!(adapter.has_residual());
    assert_eq!(adapter.fit_report().pairs, 100);

    let probe = values(&mut StdRng::seed_from_u64(6), 40 * din, 1.0);
    let batch = adapter.map_batch(&probe);
    for (x, (got, single)) in probe.chunks_exact(din).zip(
        batch
            .chunks_exact(dout)
            .zip(probe.chunks_exact(din).map(|x| adapter.map(x))),
    ) {
        let want = format_1_reference(&params, x, hidden);
        for ((&g, &s), &w) in got.iter().zip(&single).zip(&want) {
            assert!((g as f64 - w).abs() < 1e-4, "batch {g} vs f32 network {w}");
            assert!(
                (s as f64 - w).abs() < 1e-4,
                "map_into {s} vs f32 network {w}"
            );
        }
    }

    // Saved again, it stays f32 (format 2 with the format-1 tensors).
    let again = dir.path().join("again.adapter");
    adapter.save(&again).unwrap();
    let raw = read_tensor_file(&again, b"PDXADAPT").unwrap();
    assert_eq!(raw.meta["residual_precision"], "f32");
    assert!(raw.tensors.iter().any(|(n, _)| n == "mlp_w1"));
    assert_eq!(Adapter::load(&again).unwrap().map_batch(&probe), batch);
}

#[test]
fn a_later_format_and_bad_codes_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = fitted(19, 23).pop().unwrap();
    let path = dir.path().join("mlp.adapter");
    adapter.save(&path).unwrap();
    let raw = read_tensor_file(&path, b"PDXADAPT").unwrap();
    let rewrite = |meta: serde_json::Value, tensors: &[(String, Vec<f32>)]| {
        let views: Vec<(&str, &[f32])> =
            tensors.iter().map(|(n, v)| (n.as_str(), &v[..])).collect();
        write_tensor_file(&path, b"PDXADAPT", meta, &views).unwrap();
        Adapter::load(&path).unwrap_err().to_string()
    };

    let mut meta = raw.meta.clone();
    meta["format"] = json!(3);
    let err = rewrite(meta, &raw.tensors);
    assert!(err.contains("format 3"), "{err}");

    for bad in [0.5, 128.0, -128.0] {
        let mut tensors = raw.tensors.clone();
        tensors[2].1[7] = bad;
        let err = rewrite(raw.meta.clone(), &tensors);
        assert!(err.contains("mlp_w1_codes"), "{bad}: {err}");
    }
    let mut tensors = raw.tensors.clone();
    tensors[3].1[0] = -1.0;
    let err = rewrite(raw.meta.clone(), &tensors);
    assert!(err.contains("mlp_w1_scales"), "{err}");
}

#[test]
fn serde_round_trips_and_reads_the_old_form() {
    let probe = values(&mut StdRng::seed_from_u64(7), 10 * 19, 1.0);
    for adapter in fitted(19, 23) {
        let text = serde_json::to_string(&adapter).unwrap();
        let back: Adapter = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back.map_batch(&probe),
            adapter.map_batch(&probe),
            "{adapter}"
        );
        assert_eq!(back.fit_report(), adapter.fit_report());
    }
    // The serde form before int8 residuals: no precision, f32 weights.
    let old = json!({
        "kind": {"kind": "mlp", "hidden": 2, "epochs": 1, "lr": 0.1},
        "dim_in": 1, "dim_out": 1,
        "fit": {"pairs": 10, "holdout": 2, "train_cosine": 1.0, "holdout_cosine": 1.0,
                "holdout_r2": 1.0, "fit_seconds": 0.0},
        "linear": {"Dense": {"weight": [2.0], "bias": [1.0]}},
        "residual": {"hidden": 2, "w1": [1.0, -1.0], "b1": [0.0, 0.0], "w2": [3.0, 5.0],
                     "b2": [0.5]},
    });
    let adapter: Adapter = serde_json::from_value(old).unwrap();
    // 2·x + 1 + 3·relu(x) + 5·relu(−x) + 0.5
    assert_eq!(adapter.map(&[2.0]), vec![5.0 + 6.0 + 0.5]);
    assert_eq!(adapter.map(&[-1.0]), vec![-1.0 + 5.0 + 0.5]);
    let wrong = json!({
        "kind": {"kind": "affine", "ridge": 0.0}, "dim_in": 2, "dim_out": 1,
        "fit": {"pairs": 10, "holdout": 2, "train_cosine": 1.0, "holdout_cosine": 1.0,
                "holdout_r2": 1.0, "fit_seconds": 0.0},
        "linear": {"Dense": {"weight": [2.0], "bias": [1.0]}}, "residual": null,
    });
    let err = serde_json::from_value::<Adapter>(wrong)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`weight` has 1 values, expected 2"), "{err}");
}

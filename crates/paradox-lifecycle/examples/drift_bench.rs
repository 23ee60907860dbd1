//! Drift detection on a real encoder switch (issue #7, claim 3).
//!
//! Data: `bench/lifecycle/make_pairs.py` (WordNet definitions encoded by all-MiniLM-L6-v2
//! truncated to 3 layers = v1 and the full model = v2). Each trial draws fresh random
//! windows (500 / 500 by default) and calls `detect_drift` with a fresh seed:
//!
//! * switch: reference = v1 vectors of random documents; recent = v2 vectors of *other*
//!   documents (the encoder changed under the collection). Every trial should flag.
//! * same: reference and recent = v1 vectors of disjoint random documents from the same
//!   pool. Flags are false alarms; the MMD permutation test bounds them by alpha (0.05).
//! * topic (for information): reference from all documents; recent = v1 vectors of nouns
//!   only (WordNet is ~70% nouns, so this is a mild shift of topic mix).
//!
//! Run: `cargo run --release -p paradox-lifecycle --example drift_bench -- [--trials 100]
//! [--window 500] [--data bench/data/lifecycle] [--out bench/results/lifecycle/drift.json]`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use paradox_lifecycle::drift::{detect_drift, DriftConfig, DriftReport};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde_json::json;

/// A C-order `.npy` array of `<f4` or `<i4`, as f32 values (i4 converted) and its shape.
fn read_npy(path: &Path) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; generate it with `bench/.venv/bin/python bench/lifecycle/make_pairs.py`",
            path.display()
        )
    });
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let body = &bytes[start + header_len..];
    let values = if header.contains("'<f4'") {
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    } else if header.contains("'<i4'") {
        body.chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect()
    } else {
        panic!("{}: unsupported dtype in {header}", path.display())
    };
    (values, shape)
}

fn gather(data: &[f32], dim: usize, idx: &[usize]) -> Vec<f32> {
    idx.iter()
        .flat_map(|&i| data[i * dim..(i + 1) * dim].iter().copied())
        .collect()
}

#[derive(Default)]
struct Tally {
    trials: usize,
    mmd_flags: usize,
    mean_flags: usize,
    auc_flags: usize,
    seconds: Vec<f64>,
    mmd: Vec<f64>,
    auc: Vec<f64>,
}

impl Tally {
    fn add(&mut self, report: &DriftReport, seconds: f64) {
        self.trials += 1;
        self.mmd_flags += report.drifted as usize;
        self.mean_flags += (report.mean_shift > report.mean_shift_threshold) as usize;
        self.auc_flags += (report.auc > report.auc_threshold) as usize;
        self.seconds.push(seconds);
        self.mmd.push(report.mmd as f64);
        self.auc.push(report.auc as f64);
    }

    fn json(&self, case: &str) -> serde_json::Value {
        let t = self.trials as f64;
        let mut s = self.seconds.clone();
        s.sort_by(|a, b| a.total_cmp(b));
        json!({
            "case": case, "trials": self.trials,
            "mmd_flag_rate": self.mmd_flags as f64 / t,
            "mean_shift_flag_rate": self.mean_flags as f64 / t,
            "auc_flag_rate": self.auc_flags as f64 / t,
            "mean_mmd": self.mmd.iter().sum::<f64>() / t,
            "mean_auc": self.auc.iter().sum::<f64>() / t,
            "ms_per_call_median": 1e3 * s[s.len() / 2],
            "ms_per_call_mean": 1e3 * s.iter().sum::<f64>() / t,
        })
    }
}

fn main() {
    let mut data = PathBuf::from("bench/data/lifecycle");
    let mut out = PathBuf::from("bench/results/lifecycle/drift.json");
    let (mut trials, mut window) = (100usize, 500usize);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--data" => data = it.next().expect("--data PATH").into(),
            "--out" => out = it.next().expect("--out PATH").into(),
            "--trials" => trials = it.next().expect("--trials N").parse().unwrap(),
            "--window" => window = it.next().expect("--window N").parse().unwrap(),
            other => panic!("unknown argument {other}; see the file's doc comment"),
        }
    }
    let (v1, shape) = read_npy(&data.join("docs_v1.npy"));
    let (v2, _) = read_npy(&data.join("docs_v2.npy"));
    let pos: Vec<u8> = read_npy(&data.join("doc_pos.npy"))
        .0
        .iter()
        .map(|&p| p as u8)
        .collect();
    let (n, dim) = (shape[0], shape[1]);
    let nouns: Vec<usize> = (0..n).filter(|&i| pos[i] == 0).collect();
    println!(
        "data: {n} documents ({} nouns), {dim}-d; window {window}/{window}; {trials} trials; \
         simd {}, threads {}",
        nouns.len(),
        paradox_kernels::simd_level(),
        rayon::current_num_threads()
    );

    let mut cases = [
        ("switch v1 -> v2", Tally::default()),
        ("same distribution (v1)", Tally::default()),
        ("topic: nouns only (v1)", Tally::default()),
    ];
    for t in 0..trials {
        let mut rng = StdRng::seed_from_u64(1000 + t as u64);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let reference = gather(&v1, dim, &order[..window]);
        let others = &order[window..2 * window];
        let in_reference: std::collections::HashSet<usize> =
            order[..window].iter().copied().collect();
        let mut noun_pool: Vec<usize> = nouns
            .iter()
            .copied()
            .filter(|i| !in_reference.contains(i))
            .collect();
        noun_pool.shuffle(&mut rng);
        let recents = [
            gather(&v2, dim, others),
            gather(&v1, dim, others),
            gather(&v1, dim, &noun_pool[..window]),
        ];
        let config = DriftConfig {
            seed: t as u64,
            ..DriftConfig::default()
        };
        for ((_, tally), recent) in cases.iter_mut().zip(&recents) {
            let started = Instant::now();
            let report = detect_drift(&reference, recent, dim, &config).unwrap();
            tally.add(&report, started.elapsed().as_secs_f64());
        }
    }

    println!(
        "\n{:<24} {:>7} {:>10} {:>12} {:>10} {:>10} {:>9} {:>10}",
        "case",
        "trials",
        "MMD flags",
        "mean-shift",
        "AUC flags",
        "mean MMD²",
        "mean AUC",
        "ms/call"
    );
    let mut rows = Vec::new();
    for (case, tally) in &cases {
        let j = tally.json(case);
        println!(
            "{:<24} {:>7} {:>10.3} {:>12.3} {:>10.3} {:>10.5} {:>9.3} {:>10.1}",
            case,
            tally.trials,
            j["mmd_flag_rate"].as_f64().unwrap(),
            j["mean_shift_flag_rate"].as_f64().unwrap(),
            j["auc_flag_rate"].as_f64().unwrap(),
            j["mean_mmd"].as_f64().unwrap(),
            j["mean_auc"].as_f64().unwrap(),
            j["ms_per_call_median"].as_f64().unwrap(),
        );
        rows.push(j);
    }
    let config = DriftConfig::default();
    let report = json!({
        "machine": { "simd": paradox_kernels::simd_level(), "threads": rayon::current_num_threads() },
        "documents": n, "dim": dim, "window": window,
        "config": config, "cases": rows,
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&out, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    println!("\nwrote {}", out.display());
}

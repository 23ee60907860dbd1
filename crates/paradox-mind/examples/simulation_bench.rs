//! Throughput of one simulation step over 1M × 128 vectors, against plain memory
//! streams of the same bytes in the same run.
//!
//! ```text
//! cargo run --release -p paradox-mind --example simulation_bench -- [rows] [dim] [--json out.json]
//! ```
//!
//! Traffic is counted as bytes read + bytes written: an in-place step reads and writes
//! the buffer once (2 × 512 MB at 1M × 128). The reference streams, on the same rayon
//! pool, are a parallel copy into a second buffer and a parallel in-place scale; the
//! step's bandwidth is reported as a fraction of the faster of the two.

use paradox_mind::simulation::{Dynamics, Expression, Simulation, VectorBuffer};
use rayon::prelude::*;
use serde_json::json;
use std::time::Instant;

fn best_of<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json_path = args
        .iter()
        .position(|a| a == "--json")
        .map(|i| args[i + 1].clone());
    let positional: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let rows = positional.first().copied().unwrap_or(1_000_000);
    let dim = positional.get(1).copied().unwrap_or(128);
    let bytes = (rows * dim * 4) as f64;
    let traffic = 2.0 * bytes;
    let reps = 5;
    println!(
        "simulation step over {rows} x {dim} f32 ({:.0} MB), {} rayon threads, best of {reps}",
        bytes / 1e6,
        rayon::current_num_threads()
    );

    let data: Vec<f32> = (0..rows * dim)
        .into_par_iter()
        .map(|i| ((i * 2654435761) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let mut copy = vec![0.0f32; rows * dim];
    let copy_s = best_of(reps, || {
        copy.par_chunks_mut(1 << 16)
            .zip(data.par_chunks(1 << 16))
            .for_each(|(d, s)| d.copy_from_slice(s));
    });
    let mut scaled = data.clone();
    let scale_s = best_of(reps, || {
        scaled
            .par_chunks_mut(1 << 16)
            .for_each(|c| c.iter_mut().for_each(|v| *v *= 0.999_999));
    });
    drop(copy);
    drop(scaled);
    let reference = copy_s.min(scale_s);
    println!(
        "{:<28} {:>9.1} ms {:>7.2} GB/s",
        "reference: parallel copy",
        copy_s * 1e3,
        traffic / copy_s / 1e9
    );
    println!(
        "{:<28} {:>9.1} ms {:>7.2} GB/s",
        "reference: in-place scale",
        scale_s * 1e3,
        traffic / scale_s / 1e9
    );

    let center = vec![0.5f32; dim];
    let cases: Vec<(&str, Vec<Dynamics>)> = vec![
        ("decay", vec![Dynamics::Decay { rate: 0.01 }]),
        (
            "gravity well",
            vec![Dynamics::GravityWell {
                center: center.clone(),
                strength: 0.1,
                softening: 0.1,
            }],
        ),
        (
            "decay + gravity (fused)",
            vec![
                Dynamics::Decay { rate: 0.01 },
                Dynamics::GravityWell {
                    center,
                    strength: 0.1,
                    softening: 0.1,
                },
            ],
        ),
        (
            "attraction (16 centroids)",
            vec![Dynamics::Attraction {
                centroids: (0..16).map(|c| vec![c as f32 / 16.0; dim]).collect(),
                rate: 0.1,
            }],
        ),
        (
            "noise",
            vec![Dynamics::Noise {
                sigma: 0.01,
                seed: 1,
            }],
        ),
        (
            "expression: decay",
            vec![Dynamics::Expression(
                Expression::compile("x * (1 - rate * dt)", dim, &[("rate", 0.01)], &[])
                    .expect("expression"),
            )],
        ),
        (
            "expression: pull to c",
            vec![Dynamics::Expression(
                Expression::compile("x + 0.1 * dt * (c - x)", dim, &[], &[("c", vec![0.5; dim])])
                    .expect("expression"),
            )],
        ),
    ];
    let mut results = Vec::new();
    let buffer = VectorBuffer::from_flat(dim, data).expect("buffer");
    let mut sim = Simulation::new(buffer, Vec::new(), 0.1).expect("simulation");
    for (name, dynamics) in cases {
        let mut s = Simulation::new(
            std::mem::replace(
                &mut sim.buffer,
                VectorBuffer::from_flat(dim, Vec::new()).expect("empty"),
            ),
            dynamics,
            0.1,
        )
        .expect("simulation");
        let secs = best_of(reps, || s.step());
        let fraction = reference / secs;
        println!(
            "{name:<28} {:>9.1} ms {:>7.2} GB/s  {:>5.1}% of reference",
            secs * 1e3,
            traffic / secs / 1e9,
            100.0 * fraction
        );
        results.push(json!({"dynamics": name, "seconds": secs, "gb_per_s": traffic / secs / 1e9, "fraction_of_reference": fraction}));
        sim.buffer = s.buffer;
    }
    if let Some(path) = json_path {
        let report = json!({"rows": rows, "dim": dim, "threads": rayon::current_num_threads(),
            "copy_gb_per_s": traffic / copy_s / 1e9, "scale_gb_per_s": traffic / scale_s / 1e9, "steps": results});
        std::fs::write(&path, serde_json::to_string_pretty(&report).expect("json"))
            .expect("write json");
        println!("wrote {path}");
    }
}

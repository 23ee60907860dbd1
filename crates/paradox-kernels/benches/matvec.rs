//! Matrix-vector benchmarks, single thread, every SIMD level this CPU supports.
//!
//! `matvec/{rows}x{cols}/{variant}/{level}`: one product `W x` with `W` resident in cache
//! (the adapter shapes of `bench/lifecycle`: 384 × 384, 512 × 384, 384 × 512, 128 × 384),
//! for
//!
//! * `one_to_many_aligned`, `one_to_many_misaligned`: the row-major one-to-many kernel on a
//!   `W` that starts on a cache line, or 16 bytes after one (what a `Vec<f32>` may get);
//! * `packed_f32`: [`PackedMatrix`] (input-major panels, 64-byte aligned);
//! * `quantized_i8`: [`QuantizedMatrix`] (input quantised per call; `vpdpbusd` on AVX-512
//!   VNNI).
//!
//! Run with `cargo bench -p paradox-kernels --bench matvec`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use paradox_kernels::matvec::{matvec_table_for, Combine, PackedMatrix, QuantizedMatrix};
use paradox_kernels::{kernel_table_for, SimdLevel};

/// Deterministic pseudo-random values in `[-1, 1)`.
fn filled(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// A copy of `values` starting `offset_floats` after a 64-byte boundary, in `storage`.
fn placed<'a>(values: &[f32], offset_floats: usize, storage: &'a mut Vec<f32>) -> &'a [f32] {
    *storage = vec![0.0; values.len() + 32];
    let skip = (64 - storage.as_ptr() as usize % 64) % 64 / 4 + offset_floats;
    storage[skip..skip + values.len()].copy_from_slice(values);
    &storage[skip..skip + values.len()]
}

fn matvec(c: &mut Criterion) {
    let mut group = c.benchmark_group("matvec");
    for (rows, cols) in [(384, 384), (512, 384), (384, 512), (128, 384)] {
        let weight = filled(rows * cols, 1);
        let x = filled(cols, 2);
        let mut out = vec![0.0f32; rows];
        let packed = PackedMatrix::new(&weight, None, rows, cols);
        let quantized = QuantizedMatrix::quantize(&weight, None, rows, cols);
        let (mut aligned, mut misaligned) = (Vec::new(), Vec::new());
        let aligned = placed(&weight, 0, &mut aligned);
        let misaligned = placed(&weight, 4, &mut misaligned);
        for level in SimdLevel::ALL {
            let name = |variant: &str| format!("{rows}x{cols}/{variant}/{level}");
            if let Some(table) = kernel_table_for(level) {
                let kernel = table.dot_one_to_many;
                group.bench_function(name("one_to_many_aligned"), |b| {
                    b.iter(|| kernel(black_box(&x), black_box(aligned), &mut out))
                });
                group.bench_function(name("one_to_many_misaligned"), |b| {
                    b.iter(|| kernel(black_box(&x), black_box(misaligned), &mut out))
                });
            }
            if let Some(table) = matvec_table_for(level) {
                group.bench_function(name("packed_f32"), |b| {
                    b.iter(|| packed.apply_on(table, black_box(&x), &mut out, Combine::Store))
                });
                group.bench_function(name("quantized_i8"), |b| {
                    b.iter(|| quantized.apply_on(table, black_box(&x), &mut out, Combine::Store))
                });
            }
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
}

criterion_group! {
    name = benches;
    config = config();
    targets = matvec
}
criterion_main!(benches);

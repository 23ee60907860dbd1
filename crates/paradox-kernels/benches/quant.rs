//! Quantised distance benchmarks, single thread, every SIMD level this CPU supports.
//!
//! `distance/{metric}/d{dim}/{encoding}/{level}`: one query-to-row distance with the row in
//! L1, for `f32` (the plain kernels), `sq8` (`Sq8Query::fast_distance`, what graph
//! traversal uses: one inner product, `vpdpbusd` where the CPU has AVX-512 VNNI),
//! `sq8_decode` (`Sq8Query::distance`, `f32` arithmetic on the decoded row), `f16` and
//! `bf16`. This is the arithmetic cost only; in a graph search the row is usually
//! a cache miss, which is what the smaller codes save.
//!
//! Run with `cargo bench -p paradox-kernels --bench quant`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use paradox_kernels::quant::{encode_bf16, encode_f16, quant_table_for};
use paradox_kernels::{kernel_table_for, Metric, SimdLevel, Sq8Quantizer};

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

fn distance(c: &mut Criterion) {
    let mut group = c.benchmark_group("distance");
    for dim in [128, 384] {
        let rows = filled(64 * dim, 1);
        let (query, row) = (filled(dim, 2), &rows[..dim]);
        let sq8 = Sq8Quantizer::fit(&rows, dim);
        let mut sq8_code = vec![0u8; dim];
        sq8.encode(row, &mut sq8_code);
        let (mut f16_code, mut bf16_code) = (vec![0u8; 2 * dim], vec![0u8; 2 * dim]);
        encode_f16(row, &mut f16_code);
        encode_bf16(row, &mut bf16_code);
        for level in SimdLevel::ALL {
            let (Some(f32_table), Some(table)) = (kernel_table_for(level), quant_table_for(level))
            else {
                continue;
            };
            for metric in [Metric::L2, Metric::Dot] {
                let name = |encoding: &str| format!("{metric}/d{dim}/{encoding}/{level}");
                let (f32_kernel, f16_kernel, bf16_kernel) = match metric {
                    Metric::L2 => (
                        f32_table.l2_squared,
                        table.f16_l2_squared,
                        table.bf16_l2_squared,
                    ),
                    _ => (f32_table.dot, table.f16_dot, table.bf16_dot),
                };
                group.bench_function(name("f32"), |b| {
                    b.iter(|| f32_kernel(black_box(&query), black_box(row)))
                });
                let folded = sq8.query_with(table, &query, metric);
                let norm = sq8.code_norm(&sq8_code);
                group.bench_function(name("sq8"), |b| {
                    b.iter(|| folded.fast_distance(black_box(&sq8_code), black_box(norm)))
                });
                group.bench_function(name("sq8_decode"), |b| {
                    b.iter(|| folded.distance(black_box(&sq8_code)))
                });
                group.bench_function(name("f16"), |b| {
                    b.iter(|| f16_kernel(black_box(&query), black_box(&f16_code)))
                });
                group.bench_function(name("bf16"), |b| {
                    b.iter(|| bf16_kernel(black_box(&query), black_box(&bf16_code)))
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
    targets = distance
}
criterion_main!(benches);

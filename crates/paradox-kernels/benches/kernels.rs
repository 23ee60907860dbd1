//! Kernel benchmarks, single thread, every SIMD level this CPU supports.
//!
//! * `pairwise/*`: one distance at d = 128 / 384 / 768, per level.
//! * `stream/sum/*`: the machine's streaming-read bandwidth (sum of a 1 GiB `f32` array,
//!   portable and with AVX-512 loads; the faster is the reference);
//!   `one_to_many/*` scans the same 1 GiB as rows of d = 384, so the two GB/s figures give
//!   the fraction of bandwidth the exact scan reaches.
//! * `many_to_many/*`: 1000 queries × 100k rows × d = 384; throughput is reported in
//!   elements/s where one element is one FLOP (`2 · nq · n · d` per iteration), so
//!   "Gelem/s" reads as GFLOP/s. `matrix` writes the full 400 MB result, `topk_*` is
//!   [`batch_topk`] with k = 10 (what batched exact search runs).
//! * `push_block`: the top-k pre-filter over 1M distances.
//!
//! Run with `cargo bench -p paradox-kernels` (a few minutes), or filter, e.g.
//! `cargo bench -p paradox-kernels -- one_to_many`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use paradox_kernels::{kernel_table, kernel_table_for, KernelTable, SimdLevel, TopK};

const GIB: usize = 1 << 30;
const SCAN_DIM: usize = 384;

fn tables() -> Vec<&'static KernelTable> {
    SimdLevel::ALL
        .into_iter()
        .filter_map(kernel_table_for)
        .collect()
}

/// Deterministic pseudo-random values in `[-1, 1)`, fast enough to fill a GiB.
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

fn pairwise(c: &mut Criterion) {
    let mut group = c.benchmark_group("pairwise");
    for dim in [128, 384, 768] {
        let (a, b) = (filled(dim, 1), filled(dim, 2));
        group.throughput(Throughput::Elements(dim as u64));
        for t in tables() {
            group.bench_function(format!("dot/d{dim}/{}", t.level), |bench| {
                bench.iter(|| (t.dot)(black_box(&a), black_box(&b)))
            });
            group.bench_function(format!("l2/d{dim}/{}", t.level), |bench| {
                bench.iter(|| (t.l2_squared)(black_box(&a), black_box(&b)))
            });
        }
    }
    group.finish();
}

/// The reference streaming read: as simple as a sum gets, with enough independent
/// accumulators that memory, not the adds, is the limit (portable: 128-bit vectors on
/// x86-64, which keep fewer cache lines in flight than wider loads).
fn stream_sum(data: &[f32]) -> f32 {
    let mut acc = [0f32; 32];
    for chunk in data.chunks_exact(32) {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum()
}

/// The same sum with 512-bit loads (four accumulators), the fairest "how fast can one core
/// read" figure on an AVX-512 machine.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn stream_sum_avx512(data: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); 4];
    for chunk in data.chunks_exact(64) {
        for (u, a) in acc.iter_mut().enumerate() {
            // SAFETY: `chunk` holds 64 floats, so `16 * u + 16 <= 64` are in bounds.
            *a = _mm512_add_ps(*a, unsafe { _mm512_loadu_ps(chunk[16 * u..].as_ptr()) });
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(
        _mm512_add_ps(acc[0], acc[1]),
        _mm512_add_ps(acc[2], acc[3]),
    ))
}

fn scan(c: &mut Criterion) {
    let rows = filled(GIB / 4, 3);
    let query = filled(SCAN_DIM, 4);
    let mut out = vec![0f32; rows.len() / SCAN_DIM];
    let bytes = (out.len() * SCAN_DIM * 4) as u64;

    let mut group = c.benchmark_group("stream");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes((rows.len() * 4) as u64));
    group.bench_function("sum/1GiB/portable", |bench| {
        bench.iter(|| stream_sum(black_box(&rows)))
    });
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        group.bench_function("sum/1GiB/avx512", |bench| {
            // SAFETY: AVX-512F was detected just above.
            bench.iter(|| unsafe { stream_sum_avx512(black_box(&rows)) })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("one_to_many");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(bytes));
    for t in tables() {
        group.bench_function(format!("dot/d{SCAN_DIM}/1GiB/{}", t.level), |bench| {
            bench.iter(|| (t.dot_one_to_many)(black_box(&query), black_box(&rows), &mut out))
        });
    }
    let best = kernel_table();
    group.bench_function(format!("l2/d{SCAN_DIM}/1GiB/{}", best.level), |bench| {
        bench.iter(|| (best.l2_squared_one_to_many)(black_box(&query), black_box(&rows), &mut out))
    });
    group.finish();
}

fn many_to_many(c: &mut Criterion) {
    let (nq, n, dim, k) = (1000, 100_000, 384, 10);
    let queries = filled(nq * dim, 5);
    let rows = filled(n * dim, 6);
    let flops = 2 * (nq * n * dim) as u64;

    let mut group = c.benchmark_group("many_to_many");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(flops));
    let best = kernel_table();
    let mut out = vec![0f32; nq * n];
    group.bench_function(format!("matrix/{nq}x{n}x{dim}/{}", best.level), |bench| {
        bench.iter(|| (best.dot_many_to_many)(black_box(&queries), black_box(&rows), dim, &mut out))
    });
    drop(out);
    for t in tables()
        .into_iter()
        .filter(|t| t.level != SimdLevel::Scalar)
    {
        for l2 in [false, true] {
            let metric = if l2 { "l2" } else { "ip" };
            let name = format!("topk_{metric}/{nq}x{n}x{dim}/k{k}/{}", t.level);
            group.bench_function(name, |bench| {
                bench.iter(|| {
                    let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
                    t.batch_topk(black_box(&queries), black_box(&rows), dim, l2, 0, &mut tops);
                    tops
                })
            });
        }
    }
    group.finish();
}

fn push_block(c: &mut Criterion) {
    let distances = filled(1 << 20, 7);
    let mut group = c.benchmark_group("push_block");
    group.throughput(Throughput::Elements(distances.len() as u64));
    group.bench_function("1M/k10", |bench| {
        bench.iter(|| {
            let mut top = TopK::new(10);
            for block in distances.chunks(1024) {
                top.push_block(0, black_box(block));
            }
            top
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = pairwise, scan, many_to_many, push_block
}
criterion_main!(benches);

//! `paradox bench scan`: how close a single-thread exact scan comes to the memory
//! bandwidth limit.
//!
//! One large matrix (default 2M x 384 f32 = 2.9 GiB, far beyond any cache) is scanned
//! once per query with the kernels' top-k scan (k = 10, squared L2); the figure is bytes of
//! vectors read per second. In the same run a plain streaming sum over the same array gives
//! the machine's read bandwidth; `ratio` is scan / stream (see [`stream_sum`] for why the
//! reference uses wide loads and prefetch). Both use the median run, both run on this one
//! thread, and they alternate so drift on a shared machine hits both alike.

use anyhow::{ensure, Result};
use clap::Args;
use paradox_kernels::TopK;
use serde_json::{json, Value};
use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::synth::fill_uniform;

/// Neighbours kept per query.
const K: usize = 10;

/// `bench scan` flags.
#[derive(Debug, Args)]
#[command(
    after_help = "Prints {\"op\":\"scan\",\"dim\",\"count\",\"bytes_per_s\",\
    \"stream_read_bytes_per_s\",\"ratio\"}.\n\nExample:\n  \
    paradox bench scan --dim 384 --count 2000000 --queries 50"
)]
pub struct ScanArgs {
    /// Vector dimension.
    #[arg(long, default_value_t = 384, value_parser = clap::value_parser!(u32).range(1..))]
    pub dim: u32,
    /// Number of vectors in the scanned matrix.
    #[arg(long, default_value_t = 2_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Number of queries (one full scan each).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub queries: u32,
}

/// Runs the benchmark and returns its report.
pub fn run(args: ScanArgs) -> Result<Value> {
    let (dim, count) = (args.dim as usize, args.count as usize);
    let elems = count.saturating_mul(dim);
    let matrix_bytes = elems as f64 * 4.0;
    let mut matrix: Vec<f32> = Vec::new();
    ensure!(
        matrix.try_reserve_exact(elems).is_ok(),
        "cannot allocate {:.2} GiB for a {count} x {dim} matrix; pass a smaller --count",
        matrix_bytes / (1u64 << 30) as f64
    );
    matrix.resize(elems, 0.0);
    eprintln!(
        "bench scan: filling {count} x {dim} ({:.2} GiB), kernels: {}",
        matrix_bytes / (1u64 << 30) as f64,
        paradox_kernels::simd_level()
    );
    fill_uniform(7, &mut matrix);
    let mut queries = vec![0f32; args.queries as usize * dim];
    fill_uniform(8, &mut queries);

    // A plain thread of our own: nothing else (rayon included) runs during the timing.
    // One streaming pass before each scan, so that both see the same machine (these
    // machines are shared: bandwidth drifts with the neighbours' load).
    let (scan_times, stream_times, reference) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut scans = Vec::with_capacity(args.queries as usize);
                let mut streams = Vec::with_capacity(args.queries as usize);
                let mut reference = "";
                for query in queries.chunks_exact(dim) {
                    let started = Instant::now();
                    let (sum, how) = stream_sum(black_box(&matrix));
                    streams.push(started.elapsed());
                    black_box(sum);
                    reference = how;
                    let started = Instant::now();
                    black_box(scan(query, &matrix));
                    scans.push(started.elapsed());
                }
                (scans, streams, reference)
            })
            .join()
            .expect("the benchmark thread panicked")
    });
    let bytes_per_s = matrix_bytes / median(scan_times).as_secs_f64().max(1e-12);
    let stream_per_s = matrix_bytes / median(stream_times).as_secs_f64().max(1e-12);
    let ratio = bytes_per_s / stream_per_s;
    eprintln!(
        "bench scan: scan {:.2} GB/s, streaming read ({reference}) {:.2} GB/s, ratio {ratio:.3}",
        bytes_per_s / 1e9,
        stream_per_s / 1e9
    );
    Ok(json!({
        "op": "scan",
        "dim": dim,
        "count": count,
        "bytes_per_s": bytes_per_s.round(),
        "stream_read_bytes_per_s": stream_per_s.round(),
        "ratio": (ratio * 1e4).round() / 1e4,
    }))
}

/// One exact top-k scan (squared L2) over every row of `rows`.
fn scan(query: &[f32], rows: &[f32]) -> Vec<paradox_kernels::Neighbor> {
    let mut top = TopK::new(K);
    paradox_kernels::scan_topk(query, rows, true, 0, &mut top);
    top.into_sorted_vec()
}

/// Floats read ahead by the software prefetch of [`stream_sum`] (4 KiB).
const PREFETCH_AHEAD: usize = 1024;

/// Sum of all values: the streaming-read reference. A plain loop with 32 independent
/// accumulators (so it is bound by bandwidth, not by the latency of one add chain),
/// compiled for the widest SIMD level this CPU has and with software prefetch ahead.
/// Width and prefetch matter for one core's read bandwidth: measured here on a 768 MiB
/// array, the portable (SSE2) loop reads 10.1 GB/s, AVX2 11.7, AVX-512 13.5, AVX-512 with
/// prefetch 14.6. A weaker reference would flatter the kernels, so we use the strongest.
fn stream_sum(values: &[f32]) -> (f32, &'static str) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return (unsafe { x86::sum_avx512(values) }, "avx512 + prefetch");
        }
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return (unsafe { x86::sum_avx2(values) }, "avx2 + prefetch");
        }
    }
    (sum_lanes(values, |_| {}), "portable")
}

/// The summation loop; `prefetch` is offered the address `PREFETCH_AHEAD` floats past
/// each 32-float step (it may lie past the end: prefetches never fault).
#[inline(always)]
fn sum_lanes(values: &[f32], prefetch: impl Fn(*const f32)) -> f32 {
    let mut acc = [0f32; 32];
    let chunks = values.chunks_exact(32);
    let tail: f32 = chunks.remainder().iter().sum();
    let base = values.as_ptr();
    for (i, chunk) in chunks.enumerate() {
        prefetch(base.wrapping_add(i * 32 + PREFETCH_AHEAD));
        prefetch(base.wrapping_add(i * 32 + PREFETCH_AHEAD + 16));
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};

    fn prefetch(address: *const f32) {
        // SAFETY: a prefetch is a hint: it never faults and never changes memory, whatever
        // the address; SSE is part of the x86_64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(address.cast::<i8>()) }
    }

    /// # Safety
    ///
    /// The CPU supports AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn sum_avx512(values: &[f32]) -> f32 {
        super::sum_lanes(values, prefetch)
    }

    /// # Safety
    ///
    /// The CPU supports AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn sum_avx2(values: &[f32]) -> f32 {
        super::sum_lanes(values, prefetch)
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_the_exact_nearest_rows() {
        let dim = 8;
        let mut rows = vec![0f32; 1000 * dim];
        fill_uniform(1, &mut rows);
        let query = rows[637 * dim..638 * dim].to_vec();
        let found = scan(&query, &rows);
        assert_eq!(found.len(), K);
        assert_eq!(found[0].key, 637);
        let mut brute: Vec<(f32, u64)> = rows
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, r)| (paradox_kernels::l2_squared(&query, r), i as u64))
            .collect();
        brute.sort_by(|a, b| a.0.total_cmp(&b.0));
        let keys: Vec<u64> = found.iter().map(|n| n.key).collect();
        let expected: Vec<u64> = brute[..K].iter().map(|b| b.1).collect();
        assert_eq!(keys, expected);
    }

    #[test]
    fn stream_sum_adds_everything() {
        let values: Vec<f32> = (0..1003).map(|i| (i % 7) as f32).collect();
        let expected: f32 = values.iter().sum();
        assert_eq!(stream_sum(&values).0, expected);
        assert_eq!(sum_lanes(&values, |_| {}), expected);
    }

    #[test]
    fn tiny_run_reports_the_contract_keys() {
        let report = run(ScanArgs {
            dim: 16,
            count: 5000,
            queries: 3,
        })
        .unwrap();
        for key in [
            "op",
            "dim",
            "count",
            "bytes_per_s",
            "stream_read_bytes_per_s",
            "ratio",
        ] {
            assert!(report.get(key).is_some(), "missing {key}");
        }
        assert_eq!(report["op"], "scan");
        assert!(report["ratio"].as_f64().unwrap() > 0.0);
    }
}

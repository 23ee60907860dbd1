//! Append throughput of the write-ahead log (`cargo bench -p paradox-storage`).
//!
//! Measures `append` under `FsyncPolicy::Never`: framing, checksum and one `write(2)` per
//! record, without waiting for the disk. Appends are timed in batches of at most 64 MiB; between
//! batches, untimed, the log is rotated (which fsyncs) and trimmed, so that the kernel's
//! dirty-page throttling, which would measure the disk instead, does not kick in and the
//! benchmark does not fill the disk.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use paradox_storage::{FsyncPolicy, Wal};

const BATCH_BYTES: usize = 64 << 20;

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    let mut group = c.benchmark_group("wal_append");
    group.sample_size(20);
    for size in [256usize, 4096, 65536, 1 << 20] {
        let payload = vec![0x5Au8; size];
        let per_batch = (BATCH_BYTES / size).max(1) as u64;
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &payload, |b, payload| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let batch = (iters - done).min(per_batch);
                    let start = Instant::now();
                    for _ in 0..batch {
                        wal.append(payload).unwrap();
                    }
                    timed += start.elapsed();
                    done += batch;
                    let next = wal.rotate().unwrap();
                    wal.remove_before(next).unwrap();
                }
                timed
            });
        });
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);

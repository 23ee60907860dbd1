"""The FLOP limit of batched exact search: a BLAS SGEMM of queries x base^T, no top-k.

Batched exact search is scores = Q · Bᵀ plus a top-k per row, so a tuned SGEMM over the
same shapes is the ceiling to compare a kernel's GFLOP/s with. numpy's OpenBLAS fixes its
thread count when it loads, so each thread count is measured in a child process started
with OPENBLAS_NUM_THREADS set:

    python -m harness.gemm --base B.npy --queries Q.npy --reps 3    (run from bench/)

The base is multiplied in blocks into one reused output buffer: allocating the full
nq x n score matrix would time page faults, not arithmetic.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BASE_BLOCK_ROWS = 16_384
THREAD_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def measure_sgemm(base_path: Path, queries_path: Path, threads: int, reps: int) -> dict:
    """Best-of-`reps` SGEMM GFLOP/s with `threads` BLAS threads, measured in a child process."""
    env = dict(os.environ, **{name: str(threads) for name in THREAD_ENV_VARS})
    argv = [sys.executable, "-m", "harness.gemm", "--base", str(base_path)]
    argv += ["--queries", str(queries_path), "--reps", str(reps)]
    bench_dir = Path(__file__).resolve().parent.parent
    done = subprocess.run(argv, cwd=bench_dir, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"SGEMM reference failed (threads={threads}):\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout), threads=threads)


def _run_in_this_process(base_path: Path, queries_path: Path, reps: int) -> dict:
    import numpy as np

    base, queries = np.load(base_path), np.load(queries_path)
    scores = np.empty((queries.shape[0], BASE_BLOCK_ROWS), dtype=np.float32)
    blocks = [
        base[start : start + BASE_BLOCK_ROWS] for start in range(0, len(base), BASE_BLOCK_ROWS)
    ]

    def one_pass() -> None:
        for block in blocks:
            np.matmul(queries, block.T, out=scores[:, : len(block)])

    one_pass()  # warm-up: BLAS thread pool, caches
    best_seconds, cpu_over_wall = float("inf"), 0.0
    for _ in range(reps):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        one_pass()
        wall = time.perf_counter() - wall_start
        if wall < best_seconds:
            best_seconds, cpu_over_wall = wall, (time.process_time() - cpu_start) / wall
    flops = 2.0 * base.shape[0] * queries.shape[0] * base.shape[1]
    return {
        "blas": "numpy " + np.__version__,
        "seconds": best_seconds,
        "gflops": flops / best_seconds / 1e9,
        "cpu_over_wall": cpu_over_wall,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="SGEMM reference for batched exact search")
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(_run_in_this_process(args.base, args.queries, args.reps)))

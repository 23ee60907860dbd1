#!/usr/bin/env python3
"""Python package benchmark (on demand, not CI): the cost of going through Python.

Three figures, each measured side by side in one run on the same data:

1. batch: one 1,000-query exact batch search (k=10, L2, flat index) from Python
   (`Collection.search(Q)`) vs the same `search_batch` in Rust (`paradox bench batch`).
   Target: Python within 1.1x of Rust.
2. single: 1,000 single-query searches (k=5, payloads returned) from Python vs the same
   loop in Rust (`paradox bench legacy`, query phase). Reported as overhead per query.
   Target: <= 20 us over Rust.
3. legacy: `paradox.LatentMemoryEngine` (add every vector one call at a time, then 1,000
   single queries, euclidean, k=5) vs paradoxlf 0.17 from PyPI doing the same, run in a
   separate interpreter (both are imported as `paradox`). Target: >= 100x; the result
   ids must agree (exact search on both sides, ties aside).

Usage (after `bash scripts/test-python.sh` or `maturin develop --release` into .venv-py,
and `cargo build --release -p paradox-cli`):

    .venv-py/bin/python bench/python_bench.py --paradoxlf-python /path/to/venv/bin/python

The paradoxlf venv needs `pip install paradoxlf==0.17.0 psutil numpy`. Without
--paradoxlf-python the legacy comparison is skipped. paradoxlf's add is O(n^2): at
100k x 384 its run takes tens of minutes; --legacy-n makes it smaller.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "target" / "release" / "paradox"


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((64, dim)).astype(np.float32) * 4
    labels = rng.integers(0, 64, n)
    return (centers[labels] + rng.standard_normal((n, dim)).astype(np.float32)).astype(np.float32)


def cli_bench(*args: str) -> dict:
    if not CLI.exists():
        sys.exit(f"{CLI} is missing: run `cargo build --release -p paradox-cli` first")
    out = subprocess.run([str(CLI), "bench", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def native_collection(tmp: Path, name: str, base: np.ndarray, payloads: bool):
    import paradox

    engine = paradox.Engine(str(tmp / name), fsync="never")
    docs = engine.create_collection(name, base.shape[1], "l2", index="flat")
    for start in range(0, len(base), 10_000):
        rows = base[start : start + 10_000]
        ids = np.arange(start, start + len(rows))
        docs.upsert(ids, rows, [{"i": int(i)} for i in ids] if payloads else None)
    return engine, docs


def bench_batch(tmp: Path, n: int, dim: int, nq: int, repeat: int) -> dict:
    base, queries = clustered(n, dim, 1), clustered(nq, dim, 2)
    np.save(tmp / "base.npy", base)
    np.save(tmp / "queries.npy", queries)
    threads = str(os.cpu_count() or 1)
    rust = [
        cli_bench(
            "batch",
            "--base",
            str(tmp / "base.npy"),
            "--queries",
            str(tmp / "queries.npy"),
            "--k",
            "10",
            "--threads",
            threads,
        )["seconds"]
        for _ in range(repeat)
    ]
    _engine, docs = native_collection(tmp, "batch", base, payloads=False)
    docs.search(queries[:10], k=10)  # warm-up
    python = []
    for _ in range(repeat):
        start = time.perf_counter()
        docs.search(queries, k=10)
        python.append(time.perf_counter() - start)
    r, p = statistics.median(rust), statistics.median(python)
    return {
        "n": n,
        "dim": dim,
        "nq": nq,
        "rust_seconds": r,
        "python_seconds": p,
        "ratio": p / r,
        "target": "<= 1.1",
        "passed": p / r <= 1.1,
    }


def bench_single(tmp: Path, n: int, dim: int, nq: int, repeat: int) -> dict:
    base, queries = clustered(n, dim, 3), clustered(nq, dim, 4)
    np.save(tmp / "sbase.npy", base)
    np.save(tmp / "squeries.npy", queries)
    rust = [
        cli_bench(
            "legacy",
            "--base",
            str(tmp / "sbase.npy"),
            "--queries",
            str(tmp / "squeries.npy"),
            "--k",
            "5",
            "--searches",
            str(nq),
        )["query_seconds"]
        for _ in range(repeat)
    ]
    _engine, docs = native_collection(tmp, "single", base, payloads=True)
    for q in queries[:50]:
        docs.search(q, k=5, with_payload=True)
    python = []
    for _ in range(repeat):
        start = time.perf_counter()
        for q in queries:
            docs.search(q, k=5, with_payload=True)
        python.append(time.perf_counter() - start)
    r, p = statistics.median(rust), statistics.median(python)
    overhead_us = (p - r) / nq * 1e6
    return {
        "n": n,
        "dim": dim,
        "nq": nq,
        "rust_us_per_query": r / nq * 1e6,
        "python_us_per_query": p / nq * 1e6,
        "overhead_us": overhead_us,
        "target": "<= 20 us",
        "passed": overhead_us <= 20,
    }


LEGACY_SCRIPT = textwrap.dedent(
    """
    import json, logging, sys, time
    import numpy as np
    base = np.load(sys.argv[1]); queries = np.load(sys.argv[2]); k = int(sys.argv[3])
    from paradox import LatentMemoryEngine
    logging.disable(logging.INFO)
    engine = LatentMemoryEngine(dimension=base.shape[1])
    start = time.perf_counter()
    for i, row in enumerate(base):
        engine.add(row, {"i": i})
    added = time.perf_counter()
    ids = np.array([[hit[0] for hit in engine.query(q, k=k)] for q in queries], dtype=np.int64)
    done = time.perf_counter()
    np.save(sys.argv[4], ids)
    import paradox
    print(json.dumps({"version": getattr(paradox, "__version__", "?"), "backend": engine.backend_type,
                      "add_seconds": added - start, "query_seconds": done - added}))
    """
)


def run_legacy(
    python: str, tmp: Path, base: np.ndarray, queries: np.ndarray, k: int, tag: str
) -> tuple[dict, np.ndarray]:
    script = tmp / "legacy_run.py"
    script.write_text(LEGACY_SCRIPT)
    np.save(tmp / "lbase.npy", base)
    np.save(tmp / "lqueries.npy", queries)
    out = tmp / f"ids-{tag}.npy"
    # A clean sys.path: the interpreter must import its own `paradox`, not this checkout's.
    proc = subprocess.run(
        [python, "-I", str(script), str(tmp / "lbase.npy"), str(tmp / "lqueries.npy"), str(k), str(out)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(out)


def bench_legacy(tmp: Path, n: int, dim: int, nq: int, peer_python: str | None) -> dict:
    base, queries = clustered(n, dim, 5), clustered(nq, dim, 6)
    ours, our_ids = run_legacy(sys.executable, tmp, base, queries, 5, "paradox")
    result = {"n": n, "dim": dim, "nq": nq, "paradox": ours}
    ours_total = ours["add_seconds"] + ours["query_seconds"]
    # Exact ground truth in float64 (chunks of queries), to judge ties.
    b64 = base.astype(np.float64)
    norms = (b64**2).sum(1)
    ok = []
    for start in range(0, nq, 100):
        q64 = queries[start : start + 100].astype(np.float64)
        d = norms[None, :] - 2 * q64 @ b64.T + (q64**2).sum(1)[:, None]
        kth = np.partition(d, 4, axis=1)[:, 4:5]
        got = np.take_along_axis(d, our_ids[start : start + 100], axis=1)
        ok.append(got <= kth + 1e-4 * np.abs(kth) + 1e-6)
    result["paradox_exact_recall_tie_tolerant"] = float(np.concatenate(ok).mean())
    if peer_python:
        peer, peer_ids = run_legacy(peer_python, tmp, base, queries, 5, "paradoxlf")
        peer_total = peer["add_seconds"] + peer["query_seconds"]
        result.update(
            paradoxlf=peer,
            ratio_total=peer_total / ours_total,
            ratio_add=peer["add_seconds"] / ours["add_seconds"],
            ratio_query=peer["query_seconds"] / ours["query_seconds"],
            ids_identical_fraction=float((peer_ids == our_ids).all(axis=1).mean()),
            target=">= 100x",
            passed=peer_total / ours_total >= 100,
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="base size of the batch benchmark")
    parser.add_argument("--single-n", type=int, default=10_000, help="base size of the single-query benchmark")
    parser.add_argument("--legacy-n", type=int, default=100_000, help="base size of the LatentMemoryEngine benchmark")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (median) for batch and single")
    parser.add_argument("--paradoxlf-python", help="interpreter with paradoxlf 0.17 installed")
    parser.add_argument("--only", choices=["batch", "single", "legacy"], action="append")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    only = set(args.only or ["batch", "single", "legacy"])
    report: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        }
    }
    with tempfile.TemporaryDirectory(prefix="pybench-") as name:
        tmp = Path(name)
        if "batch" in only:
            report["batch"] = bench_batch(tmp, args.n, args.dim, args.queries, args.repeat)
            print("batch ", json.dumps(report["batch"]), flush=True)
        if "single" in only:
            report["single"] = bench_single(tmp, args.single_n, args.dim, args.queries, args.repeat)
            print("single", json.dumps(report["single"]), flush=True)
        if "legacy" in only:
            report["legacy"] = bench_legacy(tmp, args.legacy_n, args.dim, args.queries, args.paradoxlf_python)
            print("legacy", json.dumps(report["legacy"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""The issue's four core benchmarks. Each returns its raw figures and its summary rows.

Ingest and scan are measured entirely by the binary (scan measures its own streaming-read
bandwidth in the same process, which is the peer). Batched exact search and the legacy
comparison run a Python peer on the same `.npy` files in the same run, interleaved
repetition by repetition so that machine drift hits both sides alike.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import clustered_gaussian
from .gemm import measure_sgemm
from .machine import usable_cores
from .paradox_cli import ParadoxCli
from .peers import FaissFlat, run_paradoxlf
from .quality import id_recall, tolerant_recall
from .report import SummaryRow

INGEST_TARGET_VECTORS_PER_S = 100_000
SCAN_TARGET_RATIO = 0.70
BATCH_TARGET_RATIO = 1.0
LEGACY_TARGET_RATIO = 50.0
# Exact search must return the exact neighbours; below this the speed does not count.
MIN_TOLERANT_RECALL = 0.99

INGEST_DIM, INGEST_BATCH = 128, 1000
SEARCH_DIM, BATCH_K, LEGACY_K = 384, 10, 5


@dataclass(frozen=True)
class Sizes:
    ingest_count: int
    scan_count: int
    scan_queries: int
    batch_n: int
    batch_queries: int
    legacy_n: int
    legacy_queries: int


FULL_SIZES = Sizes(
    ingest_count=1_000_000,
    scan_count=1_000_000,  # 1.5 GB at 384-d: far larger than any cache
    scan_queries=50,
    batch_n=100_000,
    batch_queries=1_000,
    legacy_n=100_000,
    legacy_queries=1_000,
)
QUICK_SIZES = Sizes(
    ingest_count=20_000,
    scan_count=100_000,
    scan_queries=10,
    batch_n=10_000,
    batch_queries=100,
    legacy_n=3_000,
    legacy_queries=100,
)


def bench_ingest(cli: ParadoxCli, sizes: Sizes, reps: int, work_dir: Path):
    """Durable ingest, 128-d, batches of 1000, into a fresh directory per run."""
    raw, rows = {}, []
    for fsync in ("interval", "always"):
        runs = []
        for _ in range(reps):
            with tempfile.TemporaryDirectory(prefix="ingest-", dir=work_dir) as store_dir:
                runs.append(
                    cli.bench(
                        "ingest",
                        dim=INGEST_DIM,
                        count=sizes.ingest_count,
                        batch=INGEST_BATCH,
                        fsync=fsync,
                        dir=store_dir,
                    )
                )
        vectors_per_s = statistics.median(run["vectors_per_s"] for run in runs)
        raw[fsync] = {"median_vectors_per_s": vectors_per_s, "runs": runs}
        has_target = fsync == "interval"
        rows.append(
            SummaryRow(
                benchmark=f"ingest {INGEST_DIM}-d fsync={fsync}",
                paradox=f"{vectors_per_s:,.0f} vec/s",
                peer="-",
                ratio=None,
                target=f">= {INGEST_TARGET_VECTORS_PER_S:,} vec/s" if has_target else "-",
                score=vectors_per_s / INGEST_TARGET_VECTORS_PER_S if has_target else None,
                passed=vectors_per_s >= INGEST_TARGET_VECTORS_PER_S if has_target else None,
                check=f"n={sizes.ingest_count:,}, batch {INGEST_BATCH}",
            )
        )
    return raw, rows


def bench_scan(cli: ParadoxCli, sizes: Sizes, reps: int):
    """Single-thread exact scan vs a streaming read of the same bytes, both inside the binary."""
    runs = [
        cli.bench("scan", dim=SEARCH_DIM, count=sizes.scan_count, queries=sizes.scan_queries)
        for _ in range(reps)
    ]
    ratios = [run.get("ratio", run["bytes_per_s"] / run["stream_read_bytes_per_s"]) for run in runs]
    ratio = statistics.median(ratios)
    scan_bps = statistics.median(run["bytes_per_s"] for run in runs)
    stream_bps = statistics.median(run["stream_read_bytes_per_s"] for run in runs)
    raw = {"median_ratio": ratio, "runs": runs}
    row = SummaryRow(
        benchmark=f"exact scan {SEARCH_DIM}-d, 1 thread",
        paradox=f"{scan_bps / 1e9:.2f} GB/s",
        peer=f"stream read {stream_bps / 1e9:.2f} GB/s",
        ratio=ratio,
        target=f">= {SCAN_TARGET_RATIO:.2f}",
        score=ratio / SCAN_TARGET_RATIO,
        passed=ratio >= SCAN_TARGET_RATIO,
        check=f"n={sizes.scan_count:,}, {sizes.scan_queries} queries",
    )
    return raw, [row]


def bench_batch(cli: ParadoxCli, sizes: Sizes, reps: int, data_dir: Path):
    """1,000 queries x 100k x 384, inner product, top 10: FAISS IndexFlatIP vs paradox."""
    dataset = clustered_gaussian(data_dir, sizes.batch_n, sizes.batch_queries, SEARCH_DIM)
    base, queries = dataset.load()
    n, nq, dim = base.shape[0], queries.shape[0], base.shape[1]
    flops_per_batch = 2.0 * n * nq * dim
    faiss_index = FaissFlat(base, "ip")

    raw = {"dataset": dataset.name, "n": n, "nq": nq, "dim": dim, "k": BATCH_K, "metric": "ip"}
    rows = []
    for threads in sorted({1, usable_cores()}):
        faiss_index.search(queries, BATCH_K, threads)  # warm-up: OpenMP pool, page cache
        faiss_runs, paradox_runs = [], []
        with tempfile.TemporaryDirectory(prefix="batch-", dir=data_dir) as tmp:
            ids_path = Path(tmp) / "ids.npy"
            for _ in range(reps):
                faiss_runs.append(faiss_index.search(queries, BATCH_K, threads))
                paradox_runs.append(
                    cli.bench(
                        "batch",
                        base=dataset.base_path,
                        queries=dataset.queries_path,
                        k=BATCH_K,
                        threads=threads,
                        metric="dot",
                        out_ids=ids_path,
                    )
                )
            paradox_ids = np.load(ids_path)

        sgemm = measure_sgemm(dataset.base_path, dataset.queries_path, threads, reps)
        faiss_truth = faiss_runs[-1].ids
        faiss_qps = statistics.median(nq / run.seconds for run in faiss_runs)
        paradox_qps = statistics.median(run["qps"] for run in paradox_runs)
        ratio = paradox_qps / faiss_qps
        strict = id_recall(paradox_ids, faiss_truth)
        tolerant = tolerant_recall(base, queries, paradox_ids, faiss_truth, "ip")
        paradox_gflops = flops_per_batch * paradox_qps / nq / 1e9
        raw[f"threads_{threads}"] = {
            "threads": threads,
            "paradox_median_qps": paradox_qps,
            "faiss_median_qps": faiss_qps,
            "ratio": ratio,
            "paradox_gflops": paradox_gflops,
            "faiss_gflops": flops_per_batch * faiss_qps / nq / 1e9,
            "sgemm_reference": sgemm,
            "recall_at_10_vs_faiss": strict,
            "tolerant_recall_at_10": tolerant,
            "paradox_runs": paradox_runs,
            "faiss_runs": [
                {
                    "seconds": run.seconds,
                    "qps": nq / run.seconds,
                    "cpu_over_wall": run.cpu_seconds / run.seconds,
                }
                for run in faiss_runs
            ],
        }
        rows.append(
            SummaryRow(
                benchmark=f"batch exact IP, {threads} thread{'s' if threads > 1 else ''}",
                paradox=f"{paradox_qps:,.0f} q/s",
                peer=f"faiss {faiss_qps:,.0f} q/s",
                ratio=ratio,
                target=f">= {BATCH_TARGET_RATIO:.1f}",
                score=ratio / BATCH_TARGET_RATIO,
                passed=ratio >= BATCH_TARGET_RATIO and tolerant >= MIN_TOLERANT_RECALL,
                check=_recall_text("recall@10", strict, tolerant),
            )
        )
        # Not a target: how close the whole search (GEMM + top-k) comes to the bare GEMM.
        rows.append(
            SummaryRow(
                benchmark=f"  vs SGEMM ceiling, {threads} thread{'s' if threads > 1 else ''}",
                paradox=f"{paradox_gflops:,.0f} GFLOP/s",
                peer=f"sgemm {sgemm['gflops']:,.0f} GFLOP/s",
                ratio=paradox_gflops / sgemm["gflops"],
                target="-",
                score=None,
                passed=None,
                check="numpy OpenBLAS Q x B^T, scores only",
            )
        )
    return raw, rows


def bench_legacy(cli: ParadoxCli, sizes: Sizes, data_dir: Path):
    """paradoxlf 0.17 (add all, then single queries, L2, k=5) vs `paradox bench legacy`."""
    dataset = clustered_gaussian(data_dir, sizes.legacy_n, sizes.legacy_queries, SEARCH_DIM)
    base, queries = dataset.load()

    # Paradox first: it is fast, and a failure there should not cost the peer's long run.
    with tempfile.TemporaryDirectory(prefix="legacy-", dir=data_dir) as tmp:
        ids_path = Path(tmp) / "ids.npy"
        paradox_run = cli.bench(
            "legacy",
            base=dataset.base_path,
            queries=dataset.queries_path,
            k=LEGACY_K,
            searches=len(queries),
            out_ids=ids_path,
        )
        paradox_ids = np.load(ids_path)
    peer_run = run_paradoxlf(base, queries, LEGACY_K)
    peer_ids = peer_run.pop("ids")
    truth = FaissFlat(base, "l2").search(queries, LEGACY_K, usable_cores()).ids

    ratio = peer_run["total_seconds"] / paradox_run["total_seconds"]
    agreement = id_recall(paradox_ids, peer_ids)
    paradox_tolerant = tolerant_recall(base, queries, paradox_ids, truth, "l2")
    peer_tolerant = tolerant_recall(base, queries, peer_ids, truth, "l2")
    raw = {
        "dataset": dataset.name,
        "k": LEGACY_K,
        "ratio_total": ratio,
        "ratio_add": _safe_ratio(peer_run["add_seconds"], paradox_run.get("add_seconds")),
        "ratio_query": _safe_ratio(peer_run["query_seconds"], paradox_run.get("query_seconds")),
        "ids_agreement_paradox_vs_paradoxlf": agreement,
        "paradox_tolerant_recall_at_5": paradox_tolerant,
        "paradoxlf_tolerant_recall_at_5": peer_tolerant,
        "paradox": paradox_run,
        "paradoxlf": peer_run,
    }
    row = SummaryRow(
        benchmark=f"vs paradoxlf 0.17, {sizes.legacy_n // 1000}k x {SEARCH_DIM} L2",
        paradox=f"{paradox_run['total_seconds']:,.2f} s",
        peer=f"paradoxlf {peer_run['total_seconds']:,.1f} s",
        ratio=ratio,
        target=f">= {LEGACY_TARGET_RATIO:.0f}x",
        score=ratio / LEGACY_TARGET_RATIO,
        passed=ratio >= LEGACY_TARGET_RATIO and paradox_tolerant >= MIN_TOLERANT_RECALL,
        check=_recall_text("ids agree", agreement, paradox_tolerant),
    )
    return raw, [row]


def _recall_text(label: str, strict: float, tolerant: float) -> str:
    verdict = "ok" if tolerant >= MIN_TOLERANT_RECALL else "WRONG RESULTS"
    return f"{label} {strict:.3f} (tie-tolerant {tolerant:.3f}) {verdict}"


def _safe_ratio(numerator: float, denominator: float | None) -> float | None:
    return numerator / denominator if denominator else None

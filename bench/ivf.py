#!/usr/bin/env python3
"""Paradox's IVF (PQ / SQ8 / flat lists, exact re-rank) against FAISS, side by side in one run.

    bench/.venv/bin/python bench/ivf.py --dataset gmm128|minilm [--n N] [--nlist 1024]
        [--m 16] [--rerank 4] [--compression 2,4,8,16,32] [--codecs pq,sq8,flat]

FAISS gets the same rows, nlist, m (8-bit codes), nprobe grid and re-rank factor:
`IndexIVFPQ` wrapped in `IndexRefineFlat(k_factor = rerank)` (FAISS's refine stage),
`OPQ{m},IVF{nlist},PQ{m}` + refine (FAISS rotates before the coarse quantiser, we rotate the
residuals), `IndexIVFScalarQuantizer(QT_8bit)` + refine, and `IndexIVFFlat`. Cosine data is unit-normalised
and searched with L2 by both (same ranking). Both build on all cores; single-thread QPS is
ours per call (Rust, no Python in the loop) and FAISS's as one batch with one OpenMP thread
(no Python per query either). Prints the curves and the issue's ratios (QPS at recall@10 = 0.95
vs FAISS IVFPQ + refine, build time vs FAISS) and the compression curve (recall@10 with
re-rank at 2..32 bytes per vector of codes). Writes `bench/results/ivf-<dataset>.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from harness import hnsw_datasets
from harness.hnsw_engines import recall_at
from harness.hnsw_report import qps_at_recall
from harness.machine import describe_machine, usable_cores
from harness.paradox_cli import ParadoxCli, build_release_binary, default_binary_path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
FULL_N = {"gmm128": 1_000_000, "minilm": 110_000}
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128)
K = 10
TRAIN_ITERATIONS = 25  # FAISS's k-means default (ClusteringParameters.niter)
# FAISS objects live until the process ends: a refine wrapper and the index it wraps freed
# in the wrong order by the garbage collector crash the interpreter (seen with 1.15).
_KEEP_ALIVE: list = []


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=sorted(FULL_N), required=True)
    p.add_argument("--n", type=int, help="base rows [default: 1M gmm128, 110k minilm]")
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument(
        "--m", type=int, default=16, help="PQ sub-quantisers (bytes per vector; pq4: half a byte)"
    )
    p.add_argument("--rerank", type=int, default=4, help="re-rank factor (k_factor)")
    p.add_argument("--nprobe", default=",".join(map(str, NPROBES)))
    p.add_argument("--codecs", default="pq,opq_pq,sq8", help="subset of pq,opq_pq,pq4,sq8,flat")
    p.add_argument(
        "--compression",
        default="",
        help="bytes per vector for the compression curve (8-bit PQ m = bytes, 4-bit m = 2 x bytes)"
        ", e.g. 2,4,8,16,32",
    )
    p.add_argument("--paradox", type=Path, help="paradox binary [default: build target/release]")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--out", type=Path)
    return p.parse_args(argv)


def faiss_run(base, queries, truth, codec, nlist, m, rerank, nprobes, threads):
    import faiss

    dim = base.shape[1]
    faiss.omp_set_num_threads(threads)
    quantizer = faiss.IndexFlatL2(dim)
    if codec == "opq_pq":
        index = faiss.index_factory(dim, f"OPQ{m},IVF{nlist},PQ{m}")
        ivf = faiss.extract_index_ivf(index)
    elif codec == "pq":
        ivf = faiss.IndexIVFPQ(quantizer, dim, nlist, m, 8)
    elif codec == "pq4":
        # FAISS's 4-bit fast scan (blocks of 32, in-register lookups). Its constructor leaves
        # by_residual off (FAISS 1.15.1): it codes the raw vectors, we code residuals.
        ivf = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, m, 4)
    elif codec == "sq8":
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2
        )
    else:
        ivf = faiss.IndexIVFFlat(quantizer, dim, nlist)
    ivf.cp.niter = TRAIN_ITERATIONS
    # OPQ: the rotation lives in the pre-transform wrapper, which owns the IVF; refining
    # the bare IVF skipped the rotation and freed the IVF with the wrapper (a segfault).
    base_index = index if codec == "opq_pq" else ivf
    index = base_index
    if codec != "flat" and rerank > 0:
        index = faiss.IndexRefineFlat(base_index)
        index.k_factor = float(rerank)
    _KEEP_ALIVE.extend([quantizer, ivf, base_index, index])
    began = time.perf_counter()
    index.train(base)
    index.add(base)
    build = time.perf_counter() - began
    curve = []
    for nprobe in nprobes:
        ivf.nprobe = nprobe
        faiss.omp_set_num_threads(1)
        index.search(queries[:100], K)
        began = time.perf_counter()
        _, ids = index.search(queries, K)
        one = time.perf_counter() - began
        faiss.omp_set_num_threads(threads)
        began = time.perf_counter()
        index.search(queries, K)
        many = time.perf_counter() - began
        curve.append(
            {
                "nprobe": nprobe,
                "recall_at_1": recall_at(ids, truth, 1),
                "recall_at_10": recall_at(ids, truth, 10),
                "qps_1thread": len(queries) / one,
                "qps_all_threads": len(queries) / many,
            }
        )
        print(f"faiss {codec}: {curve[-1]}", file=sys.stderr, flush=True)
    code_bytes = {"pq": m, "opq_pq": m, "pq4": m / 2, "sq8": dim, "flat": 0}[codec]
    return {"build_seconds": build, "code_bytes_per_vector": code_bytes, "curve": curve}


def paradox_run(cli, data, codec, nlist, m, rerank, nprobes):
    return cli.bench(
        "ivf",
        base=data.base_path,
        queries=data.queries_path,
        gt=data.gt_path,
        metric=data.metric,
        nlist=nlist,
        codec=codec.replace("_", "-"),
        m=m,
        rerank=rerank,
        nprobe=",".join(map(str, nprobes)),
        train_iterations=TRAIN_ITERATIONS,
    )


def main(argv) -> int:
    args = parse_args(argv)
    n = args.n or FULL_N[args.dataset]
    data = (
        hnsw_datasets.gmm128(DATA_DIR, n)
        if args.dataset == "gmm128"
        else hnsw_datasets.minilm(DATA_DIR, n)
    )
    binary = args.paradox or (
        default_binary_path(REPO_ROOT) if args.no_build else build_release_binary(REPO_ROOT)
    )
    cli = ParadoxCli(binary)
    base, queries, truth = data.load()
    base = np.ascontiguousarray(base, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if data.metric == "cosine":
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    nprobes = [int(x) for x in args.nprobe.split(",") if x]
    threads = usable_cores()
    results = {}
    codecs = [c for c in args.codecs.split(",") if c]
    ours = {c: paradox_run(cli, data, c, args.nlist, args.m, args.rerank, nprobes) for c in codecs}
    for codec in codecs:
        theirs = faiss_run(
            base, queries, truth, codec, args.nlist, args.m, args.rerank, nprobes, threads
        )
        results[codec] = {"paradox": ours[codec], "faiss": theirs}
    compression = []
    dim = base.shape[1]
    for budget in [int(x) for x in args.compression.split(",") if x]:
        probe = [max(nprobes)]
        # The same bytes of codes per vector two ways: 8-bit PQ with m = bytes, and 4-bit
        # fast-scan PQ with m = 2 × bytes (twice the sub-quantisers, 16 codewords each).
        for codec, m in [("pq", budget), ("pq4", 2 * budget)]:
            if dim % m:
                continue
            ours = paradox_run(cli, data, codec, args.nlist, m, args.rerank, probe)
            theirs = faiss_run(
                base, queries, truth, codec, args.nlist, m, args.rerank, probe, threads
            )
            compression.append(
                {
                    "bytes_per_vector": budget,
                    "codec": codec,
                    "m": m,
                    "nprobe": probe[0],
                    "paradox_recall_at_10": ours["curve"][0]["recall_at_10"],
                    "paradox_qps_1thread": ours["curve"][0]["qps_1thread"],
                    "faiss_recall_at_10": theirs["curve"][0]["recall_at_10"],
                    "faiss_qps_1thread": theirs["curve"][0]["qps_1thread"],
                }
            )
    report = {
        "dataset": data.name,
        "metric": data.metric,
        "n": n,
        "nlist": args.nlist,
        "m": args.m,
        "rerank": args.rerank,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(REPO_ROOT, DATA_DIR),
        "results": results,
        "compression": compression,
    }
    print_report(report)
    out = args.out or BENCH_DIR / "results" / f"ivf-{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


def print_report(report):
    print(f"\n{report['dataset']}  nlist={report['nlist']} m={report['m']} rerank={report['rerank']}")
    for codec, pair in report["results"].items():
        ours, theirs = pair["paradox"], pair["faiss"]
        print(f"\n== ivf_{codec}: build paradox {ours['build_seconds']:.2f} s, "
              f"faiss {theirs['build_seconds']:.2f} s "
              f"(ratio {ours['build_seconds'] / theirs['build_seconds']:.2f}, goal <= 1.0)")
        print(f"{'nprobe':>6} | {'paradox r@10':>12} {'qps 1t':>9} {'qps all':>9} | "
              f"{'faiss r@10':>10} {'qps 1t':>9} {'qps all':>9}")
        for a, b in zip(ours["curve"], theirs["curve"]):
            print(f"{a['nprobe']:>6} | {a['recall_at_10']:>12.4f} {a['qps_1thread']:>9.0f} "
                  f"{a['qps_all_threads']:>9.0f} | {b['recall_at_10']:>10.4f} "
                  f"{b['qps_1thread']:>9.0f} {b['qps_all_threads']:>9.0f}")
        if "qps_batch_1thread" in ours["curve"][0]:
            print("  paradox in one batch call (grouped by list), as FAISS is timed: "
                  + ", ".join(f"nprobe {a['nprobe']}: {a['qps_batch_1thread']:.0f} q/s 1t, "
                              f"{a['qps_batch_all_threads']:.0f} all"
                              for a in ours["curve"]))
        for target in (0.9, 0.95):
            q_theirs, how_theirs = qps_at_recall(theirs["curve"], target, "qps_1thread")
            for label, field in (("per query", "qps_1thread"), ("one batch", "qps_batch_1thread")):
                if field not in ours["curve"][0]:
                    continue
                q_ours, how_ours = qps_at_recall(ours["curve"], target, field)
                ratio = f"{q_ours / q_theirs:.2f}x" if q_ours and q_theirs else "n/a"
                print(f"   QPS@{target} 1 thread, paradox {label}: {q_ours and round(q_ours)} "
                      f"({how_ours}), faiss (one batch) {q_theirs and round(q_theirs)} "
                      f"({how_theirs}): {ratio} (goal >= 1.0)")
    if report["compression"]:
        print("\ncompression curve (PQ codes in RAM + exact re-rank):")
        for row in report["compression"]:
            print(f"  {row['bytes_per_vector']:>3} B/vector {row['codec']:>4} m={row['m']:<3} "
                  f"nprobe {row['nprobe']}: paradox r@10 {row['paradox_recall_at_10']:.4f} "
                  f"({row['paradox_qps_1thread']:.0f} q/s), faiss "
                  f"{row['faiss_recall_at_10']:.4f} ({row['faiss_qps_1thread']:.0f} q/s)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

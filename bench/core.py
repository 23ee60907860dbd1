#!/usr/bin/env python3
"""Paradox's core benchmarks against their peers, side by side in one run on this machine.

    bench/.venv/bin/python bench/core.py [--quick] [--out bench/results/core.json]

Runs, in order: durable ingest (fsync interval and always), exact scan vs streaming-read
bandwidth, batched exact search vs FAISS (1 thread and all threads), and the legacy
comparison vs paradoxlf 0.17. Prints a table, writes JSON with every raw figure and the
machine, and draws a PNG chart of measured / target beside the JSON. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path

from harness import core_benchmarks as benchmarks
from harness.machine import describe_machine, load_average, usable_cores
from harness.paradox_cli import (
    ParadoxCli,
    ParadoxCliError,
    build_release_binary,
    default_binary_path,
)
from harness.report import draw_chart, error_row, print_table, summary_as_dicts, write_json

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
BENCHMARK_NAMES = ("ingest", "scan", "batch", "legacy")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="small sizes: a smoke test, not figures to report")
    add(
        "--out",
        type=Path,
        default=BENCH_DIR / "results" / "core.json",
        help="JSON path; the PNG chart goes beside it",
    )
    add(
        "--only",
        default=",".join(BENCHMARK_NAMES),
        help=f"comma-separated subset of {','.join(BENCHMARK_NAMES)}",
    )
    add(
        "--reps",
        type=int,
        default=3,
        help="repetitions per figure, median reported (legacy runs once)",
    )
    add(
        "--legacy-n",
        type=int,
        help="base size of the paradoxlf comparison (default 100000; its add is O(n^2))",
    )
    add("--paradox", type=Path, help="benchmark this binary instead of building one")
    add(
        "--no-build",
        action="store_true",
        help="skip `cargo build --release -p paradox-cli`; use target/release/paradox as is",
    )
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(BENCHMARK_NAMES))
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {unknown}; choose from {list(BENCHMARK_NAMES)}")
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def locate_binary(args: argparse.Namespace) -> Path:
    if args.paradox:
        return args.paradox.resolve()
    if args.no_build:
        return default_binary_path(REPO_ROOT)
    return build_release_binary(REPO_ROOT)


def warn_if_busy() -> None:
    """Other processes competing for the cores skew the peers unequally (OpenMP suffers most)."""
    one_minute = load_average()[0]
    if one_minute > 0.5 * usable_cores():
        print(
            f"warning: load average {one_minute} on {usable_cores()} cores: other work is "
            "running, figures (even ratios) will be noisy; rerun on a quiet machine to report",
            file=sys.stderr,
            flush=True,
        )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sizes = benchmarks.QUICK_SIZES if args.quick else benchmarks.FULL_SIZES
    if args.legacy_n:
        sizes = dataclasses.replace(sizes, legacy_n=args.legacy_n)
    try:
        cli = ParadoxCli(locate_binary(args))
    except ParadoxCliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    warn_if_busy()
    runners = {
        "ingest": lambda: benchmarks.bench_ingest(cli, sizes, args.reps, DATA_DIR),
        "scan": lambda: benchmarks.bench_scan(cli, sizes, args.reps),
        "batch": lambda: benchmarks.bench_batch(cli, sizes, args.reps, DATA_DIR),
        "legacy": lambda: benchmarks.bench_legacy(cli, sizes, DATA_DIR),
    }
    payload = {
        "kind": "paradox core benchmarks",
        "quick": args.quick,
        "machine": describe_machine(REPO_ROOT, DATA_DIR),
        "config": {
            "sizes": dataclasses.asdict(sizes),
            "reps": args.reps,
            "all_threads": usable_cores(),
            "paradox_binary": str(cli.binary),
            "paradox_binary_modified": datetime.fromtimestamp(
                cli.binary.stat().st_mtime, timezone.utc
            ).isoformat(timespec="seconds"),
            "built_by_harness": not (args.paradox or args.no_build),
        },
        "results": {},
        "errors": {},
        "summary": [],
    }
    rows = []
    for name in args.only:
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            raw, new_rows = runners[name]()
            payload["results"][name] = raw
        except Exception as err:  # one broken benchmark must not lose the others' figures
            payload["errors"][name] = traceback.format_exc()
            print(f"error in {name}: {err}", file=sys.stderr, flush=True)
            new_rows = [error_row(name, str(err))]
        rows += new_rows
        payload["summary"] = summary_as_dicts(rows)
        write_json(args.out, payload)  # after each benchmark: a long run keeps what it measured

    payload["load_average_at_end"] = load_average()
    write_json(args.out, payload)
    print()
    print_table(rows)
    chart_path = args.out.with_suffix(".png")
    title = "Paradox core benchmarks" + (" (--quick: smoke test sizes)" if args.quick else "")
    drew = draw_chart(chart_path, rows, title)
    print(f"\nJSON: {args.out}" + (f"\nchart: {chart_path}" if drew else ""))
    return 1 if payload["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

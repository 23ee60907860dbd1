#!/usr/bin/env python3
"""CMA-ES in paradox-mind vs pycma, side by side, same settings and seeds.

Both sides start at x0 = 0.5 * ones with sigma0 = 0.5, default population, target
f < 1e-8, budget 200,000 evaluations, seeds 1..N. pycma's default is active CMA-ES, as
ours. Rastrigin (10-D, BIPOP, x0 ~ U[-4, 4]^n, sigma0 = 2, budget 1e6, 9 restarts) is
reported as success rates.

    python3 -m venv bench/.venv-mind && bench/.venv-mind/bin/pip install cma numpy
    bench/.venv-mind/bin/python bench/mind/cmaes_vs_pycma.py [--rust-json FILE] [--seeds 11]

Without --rust-json the script runs the Rust example itself (cargo, release).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import cma
import numpy as np

TARGET = 1e-8
X0 = 0.5
SIGMA0 = 0.5


def sphere(x):
    return float(np.dot(x, x))


def ellipsoid(x):
    n = len(x)
    w = 10.0 ** (6.0 * np.arange(n) / (n - 1))
    return float(np.dot(w, np.asarray(x) ** 2))


def rosenbrock(x):
    x = np.asarray(x)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rastrigin(x):
    x = np.asarray(x)
    return float(10.0 * len(x) + np.sum(x * x - 10.0 * np.cos(2.0 * np.pi * x)))


FUNCTIONS = {"sphere": sphere, "ellipsoid": ellipsoid, "rosenbrock": rosenbrock}


def pycma_run(f, n, seed):
    es = cma.CMAEvolutionStrategy(
        n * [X0], SIGMA0,
        {"seed": seed, "ftarget": TARGET, "maxfevals": 200_000, "verbose": -9},
    )
    es.optimize(f)
    return es.result.evaluations, es.result.fbest


def pycma_bipop(seed, n=10):
    np.random.seed(seed)
    res = cma.fmin(
        rastrigin, lambda: np.random.uniform(-4, 4, n), 2.0,
        {"seed": seed, "ftarget": TARGET, "maxfevals": 1_000_000, "verbose": -9},
        restarts=9, bipop=True,
    )
    return res[1] < TARGET, res[3]


def rust_results(path, seeds, rastrigin_runs):
    if path:
        with open(path) as fh:
            return json.load(fh)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = os.path.join(tempfile.mkdtemp(), "rust.json")
    subprocess.run(
        ["cargo", "run", "--release", "-q", "-p", "paradox-mind", "--example", "evolution_bench",
         "--", "--sections", "cmaes,rastrigin", "--seeds", str(seeds),
         "--rastrigin-runs", str(rastrigin_runs), "--json", out],
        cwd=root, check=True,
    )
    with open(out) as fh:
        return json.load(fh)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rust-json", help="results of the Rust example (else run it)")
    ap.add_argument("--seeds", type=int, default=11)
    ap.add_argument("--rastrigin-runs", type=int, default=20)
    ap.add_argument("--json", help="write the combined table here")
    args = ap.parse_args()

    rust = rust_results(args.rust_json, args.seeds, args.rastrigin_runs)
    rows = []
    print("CMA-ES evaluations to f < 1e-8: paradox-mind vs pycma %s (median over %d seeds)"
          % (cma.__version__, args.seeds))
    print("%-11s %4s %10s %8s %10s %8s %7s"
          % ("function", "d", "paradox", "solved", "pycma", "solved", "ratio"))
    for r in rust["cmaes"]["rows"]:
        f = FUNCTIONS[r["function"]]
        t0 = time.time()
        runs = [pycma_run(f, r["dim"], s) for s in range(1, args.seeds + 1)]
        evals = [e for e, _ in runs]
        solved = sum(1 for _, fb in runs if fb < TARGET)
        med = float(np.median(evals))
        ratio = r["median_evaluations"] / med
        print("%-11s %4d %10.0f %5d/%-2d %10.0f %5d/%-2d %7.3f" % (
            r["function"], r["dim"], r["median_evaluations"], r["solved"], r["runs"],
            med, solved, args.seeds, ratio))
        sys.stdout.flush()
        rows.append({"function": r["function"], "dim": r["dim"],
                     "paradox_median": r["median_evaluations"], "paradox_solved": r["solved"],
                     "pycma_median": med, "pycma_solved": solved, "ratio": ratio,
                     "pycma_seconds": time.time() - t0})
    combined = {"cmaes": rows}
    if "rastrigin" in rust:
        rr = rust["rastrigin"]
        py = [pycma_bipop(s) for s in range(1, rr["runs"] + 1)]
        py_solved = sum(1 for ok, _ in py if ok)
        print("\nBIPOP on 10-D Rastrigin: paradox %d/%d solved, pycma %d/%d solved" % (
            rr["solved"], rr["runs"], py_solved, rr["runs"]))
        combined["rastrigin"] = {"paradox_solved": rr["solved"], "pycma_solved": py_solved,
                                 "runs": rr["runs"]}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(combined, fh, indent=2)


if __name__ == "__main__":
    sys.exit(main())

"""The Python peers, timed in this process: FAISS exact search and paradoxlf 0.17.

Each peer is used the fastest way its public API allows, so a ratio against it is not
flattered by a handicapped peer.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass

import faiss
import numpy as np

ADD_PROGRESS_EVERY = 10_000


@dataclass
class TimedSearch:
    """ids (nq, k); cpu_seconds counts every thread, so cpu/wall shows the threads used."""

    ids: np.ndarray
    seconds: float
    cpu_seconds: float


class FaissFlat:
    """FAISS brute force (`IndexFlatIP` or `IndexFlatL2`): the reference for batched exact search.

    For batches of 20+ queries FAISS computes distances with a BLAS GEMM and selects the top k
    per query, so it is close to the FLOP limit of the machine.
    """

    def __init__(self, base: np.ndarray, metric: str):
        index_class = {"ip": faiss.IndexFlatIP, "l2": faiss.IndexFlatL2}[metric]
        self.index = index_class(base.shape[1])
        self.index.add(np.ascontiguousarray(base, dtype=np.float32))

    def search(self, queries: np.ndarray, k: int, threads: int) -> TimedSearch:
        faiss.omp_set_num_threads(threads)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        _, ids = self.index.search(queries, k)
        wall = time.perf_counter() - wall_start
        return TimedSearch(ids=ids, seconds=wall, cpu_seconds=time.process_time() - cpu_start)


def run_paradoxlf(base: np.ndarray, queries: np.ndarray, k: int) -> dict:
    """paradoxlf 0.17's `LatentMemoryEngine`: add every base row, then one query at a time.

    Its `add(data, attributes=None)` takes ONE vector (it checks `len(vector) == dimension`
    and `np.vstack`s the row onto the whole matrix, so n adds cost O(n^2) copying); there is
    no batch add in 0.17. We pass each row as a float32 numpy view (no list conversion) with
    the payload `paradox bench legacy` stores too, `{"i": row}`. `query` defaults to euclidean.
    """
    root_level = logging.getLogger().level
    from paradox import LatentMemoryEngine  # paradoxlf's import name

    # Importing paradoxlf calls logging.basicConfig(level=INFO); keep the harness's output clean.
    logging.getLogger().setLevel(root_level)
    logging.getLogger("ParadoxEngine").setLevel(logging.WARNING)
    engine = LatentMemoryEngine(dimension=base.shape[1])

    add_checkpoints = []
    add_start = time.perf_counter()
    for i, row in enumerate(base, start=1):
        engine.add(row, {"i": i - 1})
        if i % ADD_PROGRESS_EVERY == 0 or i == len(base):
            elapsed = time.perf_counter() - add_start
            add_checkpoints.append({"count": i, "seconds": elapsed})
            print(f"paradoxlf add: {i:,}/{len(base):,} in {elapsed:,.1f} s", file=sys.stderr)
    add_seconds = time.perf_counter() - add_start

    ids = np.empty((len(queries), k), dtype=np.int64)
    query_start = time.perf_counter()
    for qi, query in enumerate(queries):
        ids[qi] = [hit[0] for hit in engine.query(query, k=k)]
    query_seconds = time.perf_counter() - query_start

    return {
        "engine": "paradoxlf LatentMemoryEngine",
        "backend": engine.backend_type,
        "add_method": 'add(row, {"i": row_index}): one vector per call, 0.17 has no batch add',
        "metric": "euclidean",
        "n": len(base),
        "nq": len(queries),
        "k": k,
        "add_seconds": add_seconds,
        "query_seconds": query_seconds,
        "total_seconds": add_seconds + query_seconds,
        "add_checkpoints": add_checkpoints,
        "ids": ids,
    }

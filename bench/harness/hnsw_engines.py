"""One HNSW engine, measured alone in this (fresh) process: build, memory, disk, recall vs QPS.

    python -m harness.hnsw_engines --engine hnswlib --base B.npy --queries Q.npy --gt G.npy \
        --metric cosine --m 16 --ef-construction 200 --ef 10,16,32 --k 100 --threads 2 \
        --work-dir DIR

prints ONE JSON object on stdout, shaped like `paradox bench hnsw`'s report. `bench/hnsw.py`
runs it once per peer in a new process, so one engine's allocations never count in
another's memory figure.

What every engine is given and how it is timed (the same as the Rust side):

* the same float32 rows (unit-normalised beforehand when the metric is cosine), M, efConstruction,
  and `--threads` build threads;
* **build**: from the first vector handed to the engine to a searchable index. Memory is the
  process RSS after the build minus before it (the engine's own copy of the vectors included);
  where the library reports its size or saves a file, those are recorded too;
* **single thread**: one query per call, in order, with the library's threads set to 1; each call
  timed with `perf_counter_ns`; QPS = queries / (sum of call times). A Python call costs a few
  microseconds that the Rust side does not pay, so each engine also gets a **single-thread batch**
  (all queries in one call, library threads = 1) where its API has one; the report uses the
  better of the two;
* **all threads**: the library's own batch search over `--threads` threads;
* warm-up: 100 untimed queries before each single-thread pass; each timed pass runs `--reps`
  times and the fastest is kept; recall comes from the first repetition;
* recall@1 and @10 from the k=10 passes; recall@100 from a separate untimed k=100 pass.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

WARMUP_QUERIES = 100
TIMED_K = 10
QDRANT_UPSERT_BATCH = 1000


def rss_bytes() -> int:
    return _status_kib("VmRSS:") * 1024


def peak_rss_bytes() -> int:
    return _status_kib("VmHWM:") * 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def dir_bytes(path: Path, skip: tuple[str, ...] = ()) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in skip]
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


# ----------------------------------------------------------------------------- engines
# Each engine: build(base), set_ef(ef), prepare(queries, k), search_one(i) -> ids,
# search_batch(queries, k, threads) -> (nq, k) ids or None, save(dir) -> dict, info() -> dict.


class Hnswlib:
    name = "hnswlib"

    def __init__(self, dim, metric, m, ef_construction, threads):
        import hnswlib

        self.lib = hnswlib
        space = {"cosine": "cosine", "l2": "l2", "dot": "ip"}[metric]
        self.index = hnswlib.Index(space=space, dim=dim)
        self.m, self.efc, self.threads = m, ef_construction, threads

    def build(self, base):
        self.index.init_index(
            max_elements=len(base), M=self.m, ef_construction=self.efc, random_seed=100
        )
        self.index.set_num_threads(self.threads)
        self.index.add_items(base, np.arange(len(base)), num_threads=self.threads)

    def set_ef(self, ef):
        self.index.set_ef(ef)

    def prepare(self, queries, k):
        self.rows, self.k = [queries[i : i + 1] for i in range(len(queries))], k
        self.index.set_num_threads(1)

    def search_one(self, i):
        labels, _ = self.index.knn_query(self.rows[i], k=self.k, num_threads=1)
        return labels[0]

    def search_batch(self, queries, k, threads):
        labels, _ = self.index.knn_query(queries, k=k, num_threads=threads)
        return labels

    def save(self, directory):
        path = directory / "hnswlib.bin"
        self.index.save_index(str(path))
        began = time.perf_counter()
        reopened = self.lib.Index(space=self.index.space, dim=self.index.dim)
        reopened.load_index(str(path), max_elements=self.index.get_max_elements())
        return {
            "index_file_bytes": path.stat().st_size,
            "open_seconds": time.perf_counter() - began,
        }

    def info(self):
        return {"space": self.index.space, "random_seed": 100}


class Faiss:
    name = "faiss"

    def __init__(self, dim, metric, m, ef_construction, threads):
        import faiss

        self.faiss = faiss
        metric_type = {
            "cosine": faiss.METRIC_INNER_PRODUCT,  # rows are unit vectors already
            "dot": faiss.METRIC_INNER_PRODUCT,
            "l2": faiss.METRIC_L2,
        }[metric]
        self.index = faiss.IndexHNSWFlat(dim, m, metric_type)
        self.index.hnsw.efConstruction = ef_construction
        self.threads = threads

    def build(self, base):
        self.faiss.omp_set_num_threads(self.threads)
        self.index.add(base)

    def set_ef(self, ef):
        self.index.hnsw.efSearch = ef

    def prepare(self, queries, k):
        self.rows, self.k = [queries[i : i + 1] for i in range(len(queries))], k
        self.faiss.omp_set_num_threads(1)

    def search_one(self, i):
        _, ids = self.index.search(self.rows[i], self.k)
        return ids[0]

    def search_batch(self, queries, k, threads):
        self.faiss.omp_set_num_threads(threads)
        _, ids = self.index.search(queries, k)
        return ids

    def save(self, directory):
        path = directory / "faiss.index"
        self.faiss.write_index(self.index, str(path))
        began = time.perf_counter()
        self.faiss.read_index(str(path))
        return {
            "index_file_bytes": path.stat().st_size,
            "open_seconds": time.perf_counter() - began,
        }

    def info(self):
        return {"index": "IndexHNSWFlat", "compile_options": self.faiss.get_compile_options()}


class USearch:
    name = "usearch"

    def __init__(self, dim, metric, m, ef_construction, threads):
        from usearch.index import Index

        self.Index = Index
        self.metric = {"cosine": "cos", "l2": "l2sq", "dot": "ip"}[metric]
        self.index = Index(
            ndim=dim,
            metric=self.metric,
            dtype="f32",
            connectivity=m,
            expansion_add=ef_construction,
            expansion_search=64,
        )
        self.threads = threads

    def build(self, base):
        self.index.add(np.arange(len(base)), base, threads=self.threads)

    def set_ef(self, ef):
        self.index.expansion_search = ef

    def prepare(self, queries, k):
        self.rows, self.k = list(queries), k

    def search_one(self, i):
        return self.index.search(self.rows[i], self.k, threads=1).keys

    def search_batch(self, queries, k, threads):
        return self.index.search(queries, k, threads=threads).keys

    def save(self, directory):
        path = directory / "usearch.index"
        self.index.save(str(path))
        began = time.perf_counter()
        self.Index.restore(str(path))
        return {
            "index_file_bytes": path.stat().st_size,
            "open_seconds": time.perf_counter() - began,
        }

    def info(self):
        return {
            "metric": self.metric,
            "dtype": "f32",
            "library_memory_bytes": int(self.index.memory_usage),
            "connectivity": self.index.connectivity,
            "hardware_acceleration": self.index.hardware_acceleration,
        }


class QdrantEdge:
    """Qdrant's engine in-process. Points are upserted in batches of 1000, then `optimize()`
    builds the HNSW segment (indexing_threshold=1 KB, so every segment is indexed; one target
    segment so there is one graph over all rows, as for the other engines). Its searches run
    on the shard's own thread pool, sized when the shard is loaded: the single-thread passes
    reopen it with max_search_threads=1, the all-threads pass with --threads."""

    name = "qdrant-edge"

    def __init__(self, dim, metric, m, ef_construction, threads, work_dir):
        import qdrant_edge as qe

        self.qe = qe
        self.dim, self.threads = dim, threads
        self.distance = {
            "cosine": qe.Distance.Cosine,
            "l2": qe.Distance.Euclid,
            "dot": qe.Distance.Dot,
        }[metric]
        self.hnsw = qe.HnswIndexConfig(
            m=m, ef_construct=ef_construction, full_scan_threshold=1, max_indexing_threads=threads
        )
        self.optimizers = qe.EdgeOptimizersConfig(
            indexing_threshold=1, default_segment_number=1, max_segment_size=2**40
        )
        self.path = work_dir / "qdrant-edge-shard"
        shutil.rmtree(self.path, ignore_errors=True)
        self.shard = qe.EdgeShard.create(str(self.path), self._config(threads))
        self.timings: dict = {}

    def _config(self, search_threads):
        qe = self.qe
        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=self.dim, distance=self.distance),
            hnsw_config=self.hnsw,
            optimizers=self.optimizers,
            max_search_threads=search_threads,
        )

    def build(self, base):
        qe, upsert_seconds = self.qe, 0.0
        for start in range(0, len(base), QDRANT_UPSERT_BATCH):
            stop = min(start + QDRANT_UPSERT_BATCH, len(base))
            # Turning numpy rows into the Python lists its API takes is not timed.
            points = [qe.Point(id=i, vector=base[i].tolist()) for i in range(start, stop)]
            began = time.perf_counter()
            self.shard.update(qe.UpdateOperation.upsert_points(points))
            upsert_seconds += time.perf_counter() - began
        began = time.perf_counter()
        self.shard.optimize()
        optimize_seconds = time.perf_counter() - began
        info = self.shard.info()
        self.timings = {
            "upsert_seconds": upsert_seconds,
            "optimize_seconds": optimize_seconds,
            "insert_to_indexed_seconds": upsert_seconds + optimize_seconds,
            "segments": info.segments_count,
            "indexed_vectors": info.indexed_vectors_count,
            "points": info.points_count,
        }
        if info.indexed_vectors_count < info.points_count:
            raise RuntimeError(f"qdrant-edge did not index every point: {self.timings}")

    def reopen(self, search_threads):
        self.shard.flush()
        self.shard.close()
        began = time.perf_counter()
        self.shard = self.qe.EdgeShard.load(str(self.path), self._config(search_threads))
        return time.perf_counter() - began

    def set_ef(self, ef):
        self.params = self.qe.SearchParams(hnsw_ef=ef)

    def _request(self, vector, k):
        return self.qe.SearchRequest(
            query=self.qe.Query.Nearest(vector), limit=k, params=self.params
        )

    def prepare(self, queries, k):
        if getattr(self, "_search_threads", None) != 1:
            self.reopen(1)
            self._search_threads = 1
        self.k = k
        self.requests = [self._request(q.tolist(), k) for q in queries]

    def search_one(self, i):
        return [p.id for p in self.shard.search(self.requests[i])]

    def search_batch(self, queries, k, threads):
        if getattr(self, "_search_threads", None) != threads:
            self.reopen(threads)
            self._search_threads = threads
        qe = self.qe
        batch = qe.QueryBatchRequest(
            [
                qe.QueryRequest(query=qe.Query.Nearest(q.tolist()), limit=k, params=self.params)
                for q in queries
            ]
        )
        results = self.shard.query_batch(batch)
        return _ids_matrix([[p.id for p in hits] for hits in results], k)

    def search_threads(self, queries, k, threads):
        """`threads` Python threads, each calling search() (the binding releases the GIL)."""
        if getattr(self, "_search_threads", None) != threads:
            self.reopen(threads)
            self._search_threads = threads
        requests = [self._request(q.tolist(), k) for q in queries]
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(self.shard.search, requests))
        return _ids_matrix([[p.id for p in hits] for hits in results], k)

    def save(self, directory):
        self.shard.flush()
        open_seconds = self.reopen(self.threads)
        self._search_threads = self.threads
        return {
            "index_file_bytes": dir_bytes(self.path, skip=("wal",)),
            "disk_bytes_with_wal": dir_bytes(self.path),
            "open_seconds": open_seconds,
        }

    def info(self):
        return {
            "config": "HnswIndexConfig(m, ef_construct, full_scan_threshold=1, "
            "max_indexing_threads=threads), EdgeOptimizersConfig(indexing_threshold=1, "
            "default_segment_number=1), WAL on",
            **self.timings,
        }


ENGINES = {cls.name: cls for cls in (Hnswlib, Faiss, USearch, QdrantEdge)}


def _ids_matrix(rows, k) -> np.ndarray:
    out = np.full((len(rows), k), -1, dtype=np.int64)
    for i, ids in enumerate(rows):
        out[i, : len(ids)] = ids[:k]
    return out


# ----------------------------------------------------------------------------- measuring


def recall_at(found: np.ndarray, truth: np.ndarray, at: int) -> float:
    """Mean over queries of |found[:, :at] ∩ truth[:, :at]| / at."""
    hits = 0
    for f, t in zip(found[:, :at], truth[:, :at], strict=True):
        hits += len(np.intersect1d(f[f >= 0], t, assume_unique=False))
    return round(hits / (len(found) * at), 6)


def single_thread_pass(engine, nq, k, reps):
    """Per-call latencies (ns) of the fastest rep, and the ids of the first."""
    search = engine.search_one
    clock = time.perf_counter_ns
    for i in range(min(nq, WARMUP_QUERIES)):
        search(i)
    best, found = None, None
    for rep in range(reps):
        latencies = np.empty(nq, dtype=np.int64)
        ids = np.full((nq, k), -1, dtype=np.int64) if rep == 0 else None
        for i in range(nq):
            began = clock()
            hits = search(i)
            latencies[i] = clock() - began
            if ids is not None:
                ids[i, : len(hits)] = hits[:k]
        if ids is not None:
            found = ids
        if best is None or latencies.sum() < best.sum():
            best = latencies
    return best, found


def timed_batch(run, reps):
    best = None
    for _ in range(reps):
        began = time.perf_counter()
        run()
        elapsed = time.perf_counter() - began
        best = elapsed if best is None else min(best, elapsed)
    return best


def measure_curve(engine, queries, truth, efs, k, threads, reps):
    """Two sweeps over `efs`: single thread first, then all threads (so an engine whose
    thread count is fixed when it is opened, qdrant-edge, is reopened twice, not per ef)."""
    nq = len(queries)
    curve = []
    for ef in efs:
        engine.set_ef(ef)
        engine.prepare(queries, TIMED_K)
        latencies, found = single_thread_pass(engine, nq, TIMED_K, reps)
        batch1 = timed_batch(lambda: engine.search_batch(queries, TIMED_K, 1), reps)
        per_call_qps = nq / (latencies.sum() / 1e9)
        batch_qps = nq / batch1
        point = {
            "ef": ef,
            "recall_at_1": recall_at(found, truth, 1),
            "recall_at_10": recall_at(found, truth, 10),
            "qps_1thread": round(max(per_call_qps, batch_qps), 1),
            "qps_1thread_per_call": round(per_call_qps, 1),
            "qps_1thread_batch": round(batch_qps, 1),
            **{
                f"p{p}_us": round(
                    float(np.percentile(latencies, p, method="inverted_cdf")) / 1e3, 1
                )
                for p in (50, 95, 99)
            },
        }
        print(f"{engine.name} 1 thread: {json.dumps(point)}", file=sys.stderr, flush=True)
        curve.append(point)
    for point in curve:
        engine.set_ef(point["ef"])
        engine.search_batch(queries[:WARMUP_QUERIES], TIMED_K, threads)
        batch_all = timed_batch(lambda: engine.search_batch(queries, TIMED_K, threads), reps)
        if hasattr(engine, "search_threads"):
            py_threads = timed_batch(lambda: engine.search_threads(queries, TIMED_K, threads), reps)
            point["qps_all_threads_batch_call"] = round(nq / batch_all, 1)
            point["qps_all_threads_python_threads"] = round(nq / py_threads, 1)
            batch_all = min(batch_all, py_threads)
        point["qps_all_threads"] = round(nq / batch_all, 1)
        if k >= 100:
            # ef below k means different things per library (FAISS keeps efSearch, the
            # others widen it to k): give every engine ef = max(ef, 100), as paradox does.
            engine.set_ef(max(point["ef"], 100))
            ids = engine.search_batch(queries, 100, threads)
            point["recall_at_100"] = recall_at(np.asarray(ids, dtype=np.int64), truth, 100)
        print(
            f"{engine.name} {threads} threads: ef={point['ef']} qps={point['qps_all_threads']}"
            + (f" recall@100={point['recall_at_100']}" if k >= 100 else ""),
            file=sys.stderr,
            flush=True,
        )
    return curve


def run(args) -> dict:
    base = np.ascontiguousarray(np.load(args.base), dtype=np.float32)
    queries = np.ascontiguousarray(np.load(args.queries), dtype=np.float32)
    truth = np.load(args.gt)
    if args.metric == "cosine":
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    n, dim = base.shape
    args.work_dir.mkdir(parents=True, exist_ok=True)
    extra = {"work_dir": args.work_dir} if args.engine == "qdrant-edge" else {}
    engine = ENGINES[args.engine](
        dim, args.metric, args.m, args.ef_construction, args.threads, **extra
    )

    gc.collect()
    rss_before = rss_bytes()
    print(f"{args.engine}: building over {n} x {dim}, {args.threads} threads", file=sys.stderr)
    began = time.perf_counter()
    engine.build(base)
    build_seconds = time.perf_counter() - began
    gc.collect()
    rss_after = rss_bytes()
    print(f"{args.engine}: built in {build_seconds:.2f} s", file=sys.stderr, flush=True)
    info = engine.info()
    if args.engine == "qdrant-edge":
        # The HNSW build is optimize(); build_seconds above also counts the upserts.
        build_seconds = info["optimize_seconds"]

    saved = engine.save(args.work_dir)
    curve = measure_curve(engine, queries, truth, args.ef, args.k, args.threads, args.reps)
    delta = max(0, rss_after - rss_before)
    return {
        "op": "hnsw",
        "engine": args.engine,
        "n": n,
        "nq": len(queries),
        "dim": dim,
        "metric": args.metric,
        "m": args.m,
        "ef_construction": args.ef_construction,
        "k": TIMED_K,
        "build_threads": args.threads,
        "search_threads": args.threads,
        "reps": args.reps,
        "build_seconds": round(build_seconds, 6),
        "rss_bytes_before_build": rss_before,
        "rss_bytes_after_build": rss_after,
        "rss_delta_build_bytes": delta,
        "bytes_per_vector_rss": delta / n,
        "peak_rss_bytes": peak_rss_bytes(),
        **saved,
        "info": info,
        "curve": curve,
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--engine", required=True, choices=sorted(ENGINES))
    add("--base", type=Path, required=True)
    add("--queries", type=Path, required=True)
    add("--gt", type=Path, required=True)
    add("--metric", choices=("cosine", "l2", "dot"), required=True)
    add("--m", type=int, default=16)
    add("--ef-construction", type=int, default=200)
    add("--ef", type=lambda s: [int(x) for x in s.split(",")], required=True)
    add("--k", type=int, default=10)
    add("--threads", type=int, required=True)
    add("--reps", type=int, default=1)
    add("--work-dir", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv) -> int:
    args = parse_args(argv)
    result = run(args)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

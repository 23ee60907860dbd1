"""Seeded synthetic data sets, written once to `bench/data/` as `.npy` and reused.

Uniform random vectors are a poor proxy for embeddings (every point is nearly orthogonal to
every other, so nearest neighbours mean little). We draw from a Gaussian mixture instead:
many clusters of unequal size, each anisotropic (a low-rank spread with a decaying spectrum
plus a little isotropic noise), rows normalised to unit length like sentence embeddings.
Base and queries come from the same mixture but from separate random streams, so a query is
near, but never equal to, base rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Shape of the mixture; fixed so that a file name identifies its content.
CLUSTER_RANK = 32  # directions of large spread inside one cluster
WITHIN_CLUSTER_VARIANCE = 0.8  # per coordinate, relative to the centres' 1.0
NOISE_VARIANCE = 0.2  # isotropic, per coordinate
CLUSTER_SIZE_CONCENTRATION = 2.0  # Dirichlet alpha: cluster sizes vary by a few x


@dataclass(frozen=True)
class VectorDataset:
    """A base set and a query set on disk (float32, row-major, unit-norm rows)."""

    name: str
    base_path: Path
    queries_path: Path

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return np.load(self.base_path), np.load(self.queries_path)


def clustered_gaussian(
    data_dir: Path, n_base: int, n_queries: int, dim: int, seed: int = 42
) -> VectorDataset:
    """Returns the mixture data set of this size, generating it when not already on disk."""
    n_clusters = max(8, min(1000, n_base // 100))
    name = f"gmm-n{n_base}-q{n_queries}-d{dim}-c{n_clusters}-s{seed}"
    dataset = VectorDataset(
        name=name,
        base_path=data_dir / f"{name}.base.npy",
        queries_path=data_dir / f"{name}.queries.npy",
    )
    if _has_shape(dataset.base_path, (n_base, dim)) and _has_shape(
        dataset.queries_path, (n_queries, dim)
    ):
        return dataset

    data_dir.mkdir(parents=True, exist_ok=True)
    mixture = _Mixture(dim, n_clusters, np.random.default_rng([seed, 0]))
    _save_atomically(dataset.base_path, mixture.sample(n_base, np.random.default_rng([seed, 1])))
    _save_atomically(
        dataset.queries_path, mixture.sample(n_queries, np.random.default_rng([seed, 2]))
    )
    return dataset


class _Mixture:
    """Parameters of the mixture: cluster weights, centres and per-cluster spread."""

    def __init__(self, dim: int, n_clusters: int, rng: np.random.Generator):
        self.dim = dim
        self.weights = rng.dirichlet(np.full(n_clusters, CLUSTER_SIZE_CONCENTRATION))
        self.centres = rng.standard_normal((n_clusters, dim), dtype=np.float32)
        # Spectrum s_j ~ 1/sqrt(1+j), scaled so the cluster's variance per coordinate is
        # WITHIN_CLUSTER_VARIANCE; each cluster gets its own random directions.
        spectrum = 1.0 / np.sqrt(1.0 + np.arange(CLUSTER_RANK))
        spectrum *= np.sqrt(WITHIN_CLUSTER_VARIANCE / np.sum(spectrum**2))
        self.factors = rng.standard_normal(
            (n_clusters, CLUSTER_RANK, dim), dtype=np.float32
        ) * spectrum[None, :, None].astype(np.float32)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        assignment = rng.choice(len(self.weights), size=n, p=self.weights)
        out = np.empty((n, self.dim), dtype=np.float32)
        for cluster in np.unique(assignment):
            rows = np.flatnonzero(assignment == cluster)
            latent = rng.standard_normal((len(rows), CLUSTER_RANK), dtype=np.float32)
            noise = rng.standard_normal((len(rows), self.dim), dtype=np.float32)
            out[rows] = (
                self.centres[cluster]
                + latent @ self.factors[cluster]
                + np.float32(np.sqrt(NOISE_VARIANCE)) * noise
            )
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


def _has_shape(path: Path, shape: tuple[int, int]) -> bool:
    if not path.exists():
        return False
    try:
        existing = np.load(path, mmap_mode="r")
    except (ValueError, OSError):
        return False
    return existing.shape == shape and existing.dtype == np.float32


def _save_atomically(path: Path, array: np.ndarray) -> None:
    """A crash mid-write must not leave a truncated file that a later run would reuse."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        np.save(f, np.ascontiguousarray(array, dtype=np.float32))
    os.replace(partial, path)

"""Do two exact searches agree? Recall of one result set against another.

Two exact engines may order near-ties differently (float sums in another order), so besides
the strict id overlap we report a tie-tolerant recall: a returned id counts when its exact
score (float64) is at least as good as the k-th best true score, within a small tolerance.
A fast search that returns wrong neighbours fails the tolerant check; one that breaks ties
differently does not.
"""

from __future__ import annotations

import numpy as np

# Relative slack on the k-th score; float32 kernels differ from float64 by ~1e-6 here.
SCORE_TOLERANCE = 1e-5


def id_recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |found ∩ truth| / k (ids of shape (nq, k))."""
    found, truth = _as_ids(found), _as_ids(truth)
    if found.shape != truth.shape:
        raise ValueError(f"result shapes differ: {found.shape} vs {truth.shape}")
    k = truth.shape[1]
    overlap = [len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(overlap) / k)


def tolerant_recall(
    base: np.ndarray, queries: np.ndarray, found: np.ndarray, truth: np.ndarray, metric: str
) -> float:
    """Fraction of returned ids whose exact score ties or beats the true k-th neighbour's."""
    found, truth = _as_ids(found), _as_ids(truth)
    k = truth.shape[1]
    kth_true = _exact_scores(base, queries, truth, metric).min(axis=1, keepdims=True)
    valid = (found >= 0) & (found < len(base)) & ~_repeated(found)
    scores = _exact_scores(base, queries, np.where(valid, found, 0), metric)
    slack = SCORE_TOLERANCE * np.maximum(1.0, np.abs(kth_true))
    hits = valid & (scores >= kth_true - slack)
    return float(hits.sum() / (len(found) * k))


def _exact_scores(base, queries, ids, metric) -> np.ndarray:
    """Higher is better for both metrics: inner product, or minus squared L2 distance."""
    neighbours = base[ids].astype(np.float64)  # (nq, k, d)
    q = queries.astype(np.float64)[:, None, :]
    if metric == "ip":
        return np.einsum("qkd,qkd->qk", neighbours, np.broadcast_to(q, neighbours.shape))
    if metric == "l2":
        return -np.sum((neighbours - q) ** 2, axis=2)
    raise ValueError(f"unknown metric {metric!r}; expected 'ip' or 'l2'")


def _repeated(ids: np.ndarray) -> np.ndarray:
    """True where an id already appeared earlier in its row (counted once only)."""
    order = np.argsort(ids, axis=1, kind="stable")
    sorted_ids = np.take_along_axis(ids, order, axis=1)
    repeated_sorted = np.zeros_like(ids, dtype=bool)
    repeated_sorted[:, 1:] = sorted_ids[:, 1:] == sorted_ids[:, :-1]
    repeated = np.zeros_like(repeated_sorted)
    np.put_along_axis(repeated, order, repeated_sorted, axis=1)
    return repeated


def _as_ids(ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"expected ids of shape (nq, k), got {ids.shape}")
    return ids.astype(np.int64)

"""Reasoning in latent space over a :class:`paradox.Collection` (or a
:class:`paradox.RemoteCollection`: the same requests go to the server's ``/reason``).

Thin helpers that build the request dicts of :meth:`Collection.reason`; the work runs in
the Rust engine (``paradox-mind``), with the GIL released. A *concept* is a stored
point's id or a raw vector (a sequence or NumPy array of the collection's dimension);
``(concept, weight)`` pairs weight it.

>>> reasoning.analogy(col, "man", "king", "woman", k=1)["hits"][0]["id"]
'queen'
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

Concept = Union[int, str, Sequence[float], np.ndarray]

__all__ = ["analogy", "arithmetic", "attention_search", "blend", "trajectory"]


def _concept(concept: Concept, weight: Optional[float] = None) -> Dict[str, Any]:
    if isinstance(concept, (int, str)) and not isinstance(concept, bool):
        spec: Dict[str, Any] = {"id": concept}
    else:
        spec = {"vector": np.asarray(concept, dtype=np.float32).tolist()}
    if weight is not None:
        spec["weight"] = float(weight)
    return spec


def _weighted(terms: Iterable[Union[Concept, Tuple[Concept, float]]]):
    out = []
    for term in terms:
        if isinstance(term, tuple) and len(term) == 2 and isinstance(term[1], (int, float)):
            out.append(_concept(term[0], term[1]))
        else:
            out.append(_concept(term))
    return out


def arithmetic(collection, terms, k: int = 10, filter: Optional[Mapping[str, Any]] = None):
    """``Σ wᵢ·conceptᵢ`` (normalised) and its ``k`` nearest points. ``terms``: concepts or
    ``(concept, weight)`` pairs, e.g. ``[("king", 1), ("man", -1), ("woman", 1)]``."""
    request: Dict[str, Any] = {"op": "arithmetic", "terms": _weighted(terms), "k": k}
    if filter is not None:
        request["filter"] = filter
    return collection.reason(request)


def analogy(collection, a: Concept, b: Concept, c: Concept, k: int = 10,
            method: str = "add", pool: Optional[int] = None):
    """"``a`` is to ``b`` as ``c`` is to ?": the points nearest to ``b − a + c``
    (``method="add"``) or re-ranked by 3CosMul (``method="3cosmul"``)."""
    request: Dict[str, Any] = {"op": "analogy", "a": _concept(a), "b": _concept(b),
                               "c": _concept(c), "k": k, "method": method}
    if pool is not None:
        request["pool"] = pool
    return collection.reason(request)


def blend(collection, concepts, mode: str = "lerp", t: float = 0.5, k: int = 10):
    """Mix concepts: ``lerp`` / ``slerp`` between two at ``t``, or the weighted
    ``centroid`` of any number (``(concept, weight)`` pairs)."""
    return collection.reason({"op": "blend", "concepts": _weighted(concepts), "mode": mode,
                              "t": float(t), "k": k})


def attention_search(collection, vector, weights, k: int = 10,
                     filter: Optional[Mapping[str, Any]] = None, pool: Optional[int] = None):
    """Search with one non-negative weight per dimension."""
    request: Dict[str, Any] = {
        "op": "attention",
        "vector": np.asarray(vector, dtype=np.float32).tolist(),
        "weights": np.asarray(weights, dtype=np.float32).tolist(),
        "k": k,
    }
    if filter is not None:
        request["filter"] = filter
    if pool is not None:
        request["pool"] = pool
    return collection.reason(request)


def trajectory(collection, id: Union[int, str], predict: Optional[Mapping[str, Any]] = None):
    """A point's trajectory from its kept versions (collection created with
    ``history=True``): ``times``, ``vectors``, ``speeds``, ``curvature``; with
    ``predict={"method": "linear" | "average" | "kalman" | "autoregressive", "at": ms}``
    also the predicted ``vector``."""
    request: Dict[str, Any] = {"op": "trajectory", "id": id}
    if predict is not None:
        request["predict"] = dict(predict)
    return collection.reason(request)

"""``LatentMemoryEngine``: the paradoxlf 0.17 API, searched by the Rust engine.

How it maps onto the native engine:

* Vectors are kept in a growable float32 NumPy buffer (``engine.vectors`` is a view of
  its first ``count`` rows, as in 0.17) and mirrored into a private native
  :class:`paradox.Engine` in a temporary directory: an ``l2`` collection for euclidean
  queries, and, created on the first cosine query, a ``dot`` collection of normalised
  vectors for cosine queries (zero vectors stay zero, giving distance 1 as in 0.17).
  Both use the exact (flat) index: ``query`` is exact, like 0.17.
* Adds are batched: they reach the native engine in one upsert at the next query.
* ``query`` with ``weights`` is computed in NumPy (the engine has no weighted metric),
  with 0.17's formulas; so is ``k`` above the engine's limit of 10,000.
* ``storage_dir`` keeps 0.17's format (``vectors.dat`` + ``metadata.json``), so a 0.17
  directory opens as it is and a saved directory still opens in 0.17. See
  ``docs/migration-from-paradoxlf.md`` for every difference.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
import zlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ._native import Collection, Engine
from .persistence import PersistenceManager
from .utils import get_system_resources

logger = logging.getLogger("ParadoxEngine")

_MAX_K = 10_000
_MAX_BATCH = 100_000

QueryResult = List[Tuple[int, float, Dict[str, Any]]]


def _is_vector_like(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) or type(value).__module__.startswith("torch")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


class LatentMemoryEngine:
    """In-process latent memory with the paradoxlf 0.17 interface.

    ``dimension``: vector length. ``backend``: accepted for compatibility (``"numpy"``
    or ``"torch"``); vectors are always NumPy and search always runs in the Rust
    engine, so ``backend_type`` is ``"numpy"``. ``storage_dir``: a directory in the 0.17
    format, loaded if it holds data and written by :meth:`save`.

    Example::

        engine = LatentMemoryEngine(dimension=3)
        engine.add([1.0, 0.0, 0.0], {"name": "x"})
        engine.query([0.9, 0.1, 0.0], k=1)   # [(0, 0.141..., {"name": "x", "_id": 0})]
    """

    def __init__(self, dimension: int = 128, backend: Optional[str] = None, storage_dir: Optional[str] = None) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, (int, np.integer)) or dimension < 1:
            raise ValueError(f"dimension must be a positive integer, got {dimension!r}")
        if backend not in (None, "numpy", "torch"):
            raise ValueError(f"backend must be None, 'numpy' or 'torch', got {backend!r}")
        if backend == "torch":
            logger.info("backend='torch' accepted for compatibility: vectors are NumPy, search runs in Rust")
        self.dimension = int(dimension)
        self.backend_type = "numpy"
        self.storage_dir = storage_dir
        self.persistence = PersistenceManager(storage_dir, self.dimension) if storage_dir else None
        self.objects: Dict[int, Any] = {}
        self.count = 0
        self.encoder: Any = None
        self.decoder: Any = None

        self._buffer = np.empty((0, self.dimension), dtype=np.float32)
        self._workdir = tempfile.mkdtemp(prefix="paradox-lme-")
        self._native: Optional[Engine] = Engine(self._workdir, fsync="never")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._workdir, True)
        self._l2: Collection = self._native.create_collection("l2", self.dimension, "l2", index="flat")
        self._cos: Optional[Collection] = None
        self._synced = 0  # rows [0, _synced) are in the native collections
        # Writable views handed out by `vectors`: while one may still be written through,
        # every sync compares a checksum of the rows it covered.
        self._view_crc: Optional[Tuple[int, int]] = None  # (rows, crc) at hand-out
        self._views: List["weakref.ref[np.ndarray]"] = []

        if self.persistence:
            vectors, objects = self.persistence.load()
            if vectors is not None:
                logger.info("Restored %d objects from disk.", len(objects))
                self._append_rows(np.asarray(vectors, dtype=np.float32))
                self.objects = objects
                self.count = len(objects)

    # -- vectors -------------------------------------------------------------------------

    @property
    def vectors(self) -> np.ndarray:
        """The stored vectors, shape ``(count, dimension)``, float32.

        A writable view, as in 0.17: in-place changes (``engine.vectors += delta``,
        ``engine.vectors[i] = v``, writes through a kept reference) are noticed by checksum
        and reach the search index at the next query. While a reference to the view is
        kept, each query pays one checksum pass over the vectors.
        """
        view = self._buffer[: self.count]
        if self._view_crc is None and self.count:
            self._view_crc = (self.count, zlib.crc32(view.data))
        if len(self._views) >= 64:
            self._views = [ref for ref in self._views if ref() is not None]
        self._views.append(weakref.ref(view))
        return view

    @vectors.setter
    def vectors(self, value: Any) -> None:
        array = _to_numpy(value)
        if array.shape != (self.count, self.dimension):
            raise ValueError(f"vectors must have shape ({self.count}, {self.dimension}), got {array.shape}")
        view = self._buffer[: self.count]
        same = (
            array.__array_interface__["data"][0] == view.__array_interface__["data"][0]
            and array.strides == view.strides
        )
        if not same:  # `engine.vectors += d` hands back our own view: nothing to copy
            self._buffer[: self.count] = array.copy() if np.shares_memory(array, view) else array
        self._invalidate()

    def _invalidate(self) -> None:
        """Every stored vector may have changed: rebuild the native collections lazily."""
        self._synced = 0
        self._view_crc = None
        self._views = []

    def _append_rows(self, rows: np.ndarray) -> None:
        needed = self.count + len(rows)
        if needed > len(self._buffer):
            capacity = max(needed, 2 * len(self._buffer), 64)
            grown = np.empty((capacity, self.dimension), dtype=np.float32)
            grown[: self.count] = self._buffer[: self.count]
            self._buffer = grown
            self._view_crc = None  # views of the old buffer no longer alias ours
            self._views = []
        self._buffer[self.count : needed] = rows

    def _sync(self) -> None:
        """Brings the native collections up to date with the buffer."""
        if self._view_crc is not None:
            seen_rows, crc = self._view_crc
            self._views = [ref for ref in self._views if ref() is not None]
            if zlib.crc32(self._buffer[:seen_rows].data) != crc:
                self._synced = 0
            if self._views:  # still writable from outside: check again next time
                self._view_crc = (self.count, zlib.crc32(self._buffer[: self.count].data))
            else:
                self._view_crc = None
        if self._synced == self.count:
            return
        assert self._native is not None
        if self._synced == 0 and len(self._l2):
            # Rewrite from scratch: fresh collections instead of replacing every point.
            self._native.drop_collection("l2")
            self._l2 = self._native.create_collection("l2", self.dimension, "l2", index="flat")
            if self._cos is not None:
                self._native.drop_collection("cos")
                self._cos = self._native.create_collection("cos", self.dimension, "dot", index="flat")
        for start in range(self._synced, self.count, _MAX_BATCH):
            end = min(start + _MAX_BATCH, self.count)
            ids = np.arange(start, end, dtype=np.int64)
            rows = self._buffer[start:end]
            self._l2.upsert(ids, rows)
            if self._cos is not None:
                self._cos.upsert(ids, _normalised(rows))
        self._synced = self.count

    def _cosine_collection(self) -> Collection:
        if self._cos is None:
            assert self._native is not None
            self._cos = self._native.create_collection("cos", self.dimension, "dot", index="flat")
            for start in range(0, self._synced, _MAX_BATCH):
                end = min(start + _MAX_BATCH, self._synced)
                self._cos.upsert(np.arange(start, end, dtype=np.int64), _normalised(self._buffer[start:end]))
        return self._cos

    # -- 0.17 API ------------------------------------------------------------------------

    def set_encoder(self, encoder: Any) -> None:
        """Attach an encoder: :meth:`add` then accepts raw data."""
        self.encoder = encoder

    def set_decoder(self, decoder: Any) -> None:
        """Attach a decoder."""
        self.decoder = decoder

    def save(self) -> None:
        """Writes ``vectors.dat`` and ``metadata.json`` into ``storage_dir`` (atomically)."""
        if self.persistence:
            self.persistence.save(self._buffer[: self.count], self.objects)
        else:
            logger.warning("No storage_dir configured. Cannot save.")

    def add(self, data: Any, attributes: Optional[Dict[str, Any]] = None) -> int:
        """Stores one vector (or raw data, when an encoder is set) and returns its id.

        Ids are 0, 1, 2, ... in insertion order; ``attributes["_id"]`` is set to the id
        (the dict passed in is stored and updated, as in 0.17).
        """
        vector = self.encoder.encode(data) if self.encoder else data
        row = _to_numpy(vector)
        if row.ndim != 1 or row.shape[0] != self.dimension:
            got = row.shape[0] if row.ndim == 1 else row.shape
            raise ValueError(f"Vector dimension mismatch. Expected {self.dimension}, got {got}")
        if not np.isfinite(row).all():
            raise ValueError("Vector contains NaN or infinite values")
        obj_id = self.count
        if attributes is None:
            attributes = {}
        attributes["_id"] = obj_id
        self._append_rows(row[None, :])
        self.objects[obj_id] = attributes
        self.count += 1
        return obj_id

    def retrieve(self, obj_id: int) -> Optional[Dict[str, Any]]:
        """The attributes of ``obj_id``, or None."""
        return self.objects.get(obj_id)

    def query(self, target_vector: Any, k: int = 5, metric: str = "euclidean", weights: Any = None) -> QueryResult:
        """The ``k`` nearest stored vectors: a list of ``(id, distance, attributes)``.

        ``metric``: ``"euclidean"`` (L2 distance) or ``"cosine"`` (1 - cosine similarity).
        ``weights``: per-dimension weights (weighted L2; cosine over ``sqrt(w)``-scaled
        vectors, 1-D only). Exact, best first; fewer than ``k`` when fewer are stored.
        """
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"Unknown metric: {metric}")
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        if self.count == 0 or k == 0:
            return []
        target = _to_numpy(target_vector)
        if target.shape != (self.dimension,):
            raise ValueError(f"query vector must have shape ({self.dimension},), got {target.shape}")
        if not np.isfinite(target).all():
            raise ValueError("query vector contains NaN or infinite values")
        k = min(int(k), self.count)
        if weights is not None or k > _MAX_K:
            return self._query_numpy(target, k, metric, weights)
        self._sync()
        if metric == "euclidean":
            ids, scores = self._l2.search(target, k=k, params={"exact": True})
            distances = np.sqrt(np.maximum(scores, 0.0))
        else:
            ids, scores = self._cosine_collection().search(_normalised(target[None, :])[0], k=k, params={"exact": True})
            distances = 1.0 - scores
        return [(int(i), float(d), self.objects[int(i)]) for i, d in zip(ids, distances)]

    def _query_numpy(self, target: np.ndarray, k: int, metric: str, weights: Any) -> QueryResult:
        vectors = self._buffer[: self.count]
        if weights is None:
            if metric == "euclidean":
                dists = np.linalg.norm(vectors - target, axis=1)
            else:
                dists = 1 - _normalised(vectors) @ _normalised(target[None, :])[0]
        else:
            w = np.asarray(weights, dtype=np.float32)
            if metric == "euclidean":
                dists = np.sqrt(np.sum(((vectors - target) ** 2) * w, axis=1))
            else:
                if w.ndim != 1:
                    raise NotImplementedError("Only 1D weights supported for now.")
                scale = np.sqrt(w)
                dists = 1 - _normalised(vectors * scale) @ _normalised((target * scale)[None, :])[0]
        if k < len(dists):
            top = np.argpartition(dists, k - 1)[:k]
            top = top[np.argsort(dists[top], kind="stable")]
        else:
            top = np.argsort(dists, kind="stable")
        return [(int(i), float(dists[i]), self.objects[int(i)]) for i in top]

    def conceptual_search(self, concept: Any, k: int = 5) -> QueryResult:
        """Cosine search for ``concept``: a vector, or raw data encoded by the encoder."""
        if self.encoder is None and not _is_vector_like(concept):
            raise ValueError("Encoder required for conceptual search unless passing raw vector.")
        query = self.encoder.encode(concept) if (self.encoder and not _is_vector_like(concept)) else concept
        return self.query(query, k=k, metric="cosine")

    def imagine(self, concept_a: Any, concept_b: Any, ratio: float = 0.5) -> Any:
        """Blend of two concepts (vectors, or raw data when an encoder is set)."""
        from .mixer import ParadoxMixer

        def as_vector(concept: Any) -> Any:
            if self.encoder is not None and not _is_vector_like(concept):
                return self.encoder.encode(concept)
            return concept

        return ParadoxMixer.interpolate(as_vector(concept_a), as_vector(concept_b), ratio)

    def predict_future(self, history_vectors: Any, steps: int = 1) -> np.ndarray:
        """The next ``steps`` positions of a trajectory of vectors (linear momentum)."""
        from .temporal import LatentTrajectory

        return LatentTrajectory(history_vectors).predict_next(steps=steps)

    def get_info(self) -> Dict[str, Any]:
        """``backend``, ``object_count``, ``dimension``, ``resources`` (and ``engine``)."""
        return {
            "backend": self.backend_type,
            "object_count": self.count,
            "dimension": self.dimension,
            "resources": get_system_resources(),
            "engine": "paradox (Rust)",
        }

    def __getstate__(self) -> Dict[str, Any]:
        # 0.17 engines pickled as plain arrays and dicts (its ShardServer relied on it);
        # the native engine is rebuilt on unpickling.
        return {
            "dimension": self.dimension,
            "storage_dir": self.storage_dir,
            "vectors": self._buffer[: self.count].copy(),
            "objects": self.objects,
            "encoder": self.encoder,
            "decoder": self.decoder,
        }

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(dimension=state["dimension"])  # type: ignore[misc]
        self.storage_dir = state["storage_dir"]
        self.persistence = PersistenceManager(self.storage_dir, self.dimension) if self.storage_dir else None
        self._append_rows(state["vectors"])
        self.objects = state["objects"]
        self.count = len(state["vectors"])
        self.encoder = state["encoder"]
        self.decoder = state["decoder"]

    def close(self) -> None:
        """Releases the native engine and its temporary directory now (also done when
        the object is garbage-collected)."""
        self._l2 = None  # type: ignore[assignment]
        self._cos = None
        self._native = None
        self._finalizer()


def _normalised(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (rows / norms).astype(np.float32, copy=False)

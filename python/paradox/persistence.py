"""The paradoxlf 0.17 ``storage_dir`` format, read and written by :class:`LatentMemoryEngine`.

A directory with two files:

* ``metadata.json``: ``{"<id>": {attributes..., "_id": id}, ...}`` for ids ``0..n-1``;
* ``vectors.dat``: ``n × dimension`` float32 values, row ``i`` belonging to id ``i``,
  native byte order, no header (a raw ``numpy.memmap``).

Unlike 0.17, writes are atomic (temporary file, fsync, rename), an empty engine saves,
and a ``vectors.dat`` whose size does not match ``metadata.json`` is refused with an
error naming both instead of being read with the wrong shape.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any, Dict, Optional, Tuple

import numpy as np

logger = logging.getLogger("ParadoxPersistence")

VECTORS_FILE = "vectors.dat"
METADATA_FILE = "metadata.json"


class PersistenceManager:
    """Reads and writes one 0.17 ``storage_dir`` (created if missing)."""

    def __init__(self, storage_dir: str, dimension: int) -> None:
        self.storage_dir = storage_dir
        self.dimension = dimension
        self.vectors_file = os.path.join(storage_dir, VECTORS_FILE)
        self.metadata_file = os.path.join(storage_dir, METADATA_FILE)
        os.makedirs(storage_dir, exist_ok=True)

    def save(self, vectors: Any, objects: Dict[int, Any]) -> None:
        """Writes both files atomically. Attributes must be JSON-serialisable."""
        logger.info("Saving to %s...", self.storage_dir)
        metadata = json.dumps(objects)
        array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if array.size and array.shape[1:] != (self.dimension,):
            raise ValueError(f"vectors have shape {array.shape}, expected (n, {self.dimension})")
        # Vectors first: a crash between the two renames leaves a vectors.dat longer than
        # the old metadata lists, which load() reports instead of misreading.
        _write_atomic(self.vectors_file, array.tobytes())
        _write_atomic(self.metadata_file, metadata.encode("utf-8"))
        logger.info("Save complete.")

    def load(self, map_mode: str = "r") -> Tuple[Optional[np.ndarray], Dict[int, Any]]:
        """``(vectors, objects)``, or ``(None, {})`` when the directory holds no data."""
        if not (os.path.exists(self.metadata_file) and os.path.exists(self.vectors_file)):
            return None, {}
        logger.info("Loading from %s...", self.storage_dir)
        with open(self.metadata_file, "r", encoding="utf-8") as f:
            raw = json.load(f)
        if not isinstance(raw, dict):
            raise ValueError(f"{self.metadata_file}: expected a JSON object of id -> attributes")
        try:
            objects = {int(k): v for k, v in raw.items()}
        except ValueError as e:
            raise ValueError(f"{self.metadata_file}: ids must be integers ({e})") from None
        count = len(objects)
        if sorted(objects) != list(range(count)):
            raise ValueError(f"{self.metadata_file}: ids must be 0..{count - 1} (one per row of {VECTORS_FILE})")
        expected = count * self.dimension * 4
        size = os.path.getsize(self.vectors_file)
        if size != expected:
            raise ValueError(
                f"{self.vectors_file} holds {size} bytes but {METADATA_FILE} lists {count} "
                f"objects of dimension {self.dimension} ({expected} bytes): wrong dimension?"
            )
        if count == 0:
            return np.empty((0, self.dimension), dtype=np.float32), objects
        vectors = np.memmap(self.vectors_file, dtype="float32", mode=map_mode, shape=(count, self.dimension))  # type: ignore[call-overload]
        return vectors, objects


def _write_atomic(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

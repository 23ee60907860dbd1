"""``LatentShard``: one partition of the memory, a :class:`LatentMemoryEngine`."""

from __future__ import annotations

import uuid
from typing import Any, Dict, List, Optional, Tuple

from ..engine import LatentMemoryEngine


class LatentShard:
    """A named :class:`LatentMemoryEngine` with the shard interface (add, query, count)."""

    def __init__(self, shard_id: Optional[str] = None, dimension: int = 512) -> None:
        self.id = shard_id or str(uuid.uuid4())[:8]
        self.engine = LatentMemoryEngine(dimension=dimension)

    def add(self, vector: Any, attributes: Optional[Dict[str, Any]] = None) -> int:
        """Stores a vector in this shard; returns its id within the shard."""
        return self.engine.add(vector, attributes)

    def query(self, target_vector: Any, k: int = 5) -> List[Tuple[int, float, Dict[str, Any]]]:
        """Euclidean top-``k`` of this shard: ``[(id, distance, attributes)]``."""
        return self.engine.query(target_vector, k=k)

    def count(self) -> int:
        """Vectors stored in this shard."""
        return self.engine.count

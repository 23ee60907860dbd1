"""``LatentCluster``: round-robin placement over shards, scatter-gather queries."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

from .shard import LatentShard

Hit = Tuple[int, float, Dict[str, Any]]


class LatentCluster:
    """``num_shards`` in-process shards; adds go round-robin, queries to every shard
    in parallel (searches release the GIL) and the best ``k`` are merged.

    Ids in results are per shard, as in 0.17.
    """

    def __init__(self, dimension: int = 512, num_shards: int = 4) -> None:
        if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
            raise ValueError(f"num_shards must be a positive integer, got {num_shards!r}")
        self.dimension = dimension
        self.shards: List[Any] = [LatentShard(shard_id=f"node_{i}", dimension=dimension) for i in range(num_shards)]
        print(f"[Cluster] Online with {num_shards} shards.")
        self.rr_index = 0

    def add(self, vector: Any, attributes: Optional[Dict[str, Any]] = None) -> None:
        """Stores ``vector`` on the next shard in turn."""
        self.shards[self.rr_index].add(vector, attributes)
        self.rr_index = (self.rr_index + 1) % len(self.shards)

    def query(self, target_vector: Any, k: int = 5) -> List[Hit]:
        """The best ``k`` hits over all shards, by distance. A failing shard is reported
        and skipped, as in 0.17."""
        candidates: List[Hit] = []
        with ThreadPoolExecutor(max_workers=len(self.shards)) as executor:
            futures = [executor.submit(shard.query, target_vector, k) for shard in self.shards]
            for future in futures:
                try:
                    candidates.extend(future.result())
                except Exception as e:  # noqa: BLE001 - 0.17 keeps serving from the other shards
                    print(f"[Cluster] Shard query failed: {e}")
        return sorted(candidates, key=lambda hit: hit[1])[:k]

    def retrieve_vector(self, concept_name: str) -> None:
        """Always None (as in 0.17: there is no lookup by name)."""
        return None

    def solve_analogy_distributed(self, a_vec: Any, b_vec: Any, c_vec: Any, k: int = 1) -> List[Hit]:
        """Searches for ``a - b + c``."""
        import numpy as np

        result = np.asarray(a_vec) - np.asarray(b_vec) + np.asarray(c_vec)
        return self.query(result, k=k)

    @property
    def total_count(self) -> int:
        """Vectors over all shards."""
        return sum(shard.count() for shard in self.shards)

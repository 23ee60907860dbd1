"""``EdgeNode``: a small local memory that forwards only novel vectors to a larger one."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ..engine import LatentMemoryEngine
from .client import RemoteShard

Hit = Tuple[int, float, Dict[str, Any]]


class EdgeNode:
    """Local short-term memory plus a link to long-term memory (the "cloud").

    The cloud is a :class:`RemoteShard` at ``cloud_host:cloud_port`` (a shard node), as
    in 0.17: when it is unreachable, syncs report ``"Sync Failed: ..."``. ``cloud``
    (0.18): any object with ``add(vector, attributes)`` and ``query(vector, k)`` instead,
    e.g. an in-process :class:`LatentShard` or :class:`LatentCluster`.
    """

    def __init__(
        self,
        cloud_host: str = "localhost",
        cloud_port: int = 8000,
        local_dim: int = 64,
        capacity: int = 1000,
        cloud: Any = None,
    ) -> None:
        self.local_memory = LatentMemoryEngine(dimension=local_dim)
        self.capacity = capacity
        self.cloud_client: Any = cloud if cloud is not None else RemoteShard(host=cloud_host, port=cloud_port)
        self.novelty_threshold = 0.5
        print(f"[Edge] Online. Linked to Cloud at {cloud_host}:{cloud_port}")

    def perceive(self, vector: Any, attributes: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Stores ``vector`` (and syncs it to the cloud) if it is farther than
        ``novelty_threshold`` from everything local. Returns ``{"status", "novelty_score"}``."""
        if self.local_memory.count > 0:
            dist = self.local_memory.query(vector, k=1)[0][1]
        else:
            dist = float("inf")
        status = "Known"
        if dist > self.novelty_threshold:
            status = "Novel"
            self.local_memory.add(vector, attributes)
            try:
                self.cloud_client.add(vector, attributes)
                status += " (Synced)"
            except Exception as e:  # noqa: BLE001 - 0.17 reports sync failures in the status
                status += f" (Sync Failed: {e})"
        return {"status": status, "novelty_score": dist}

    def query_hybrid(self, vector: Any, k: int = 5) -> List[Hit]:
        """Local results, or the cloud's when the best local one is not close enough."""
        local = self.local_memory.query(vector, k=k)
        best = local[0][1] if local else float("inf")
        if best > self.novelty_threshold:
            print("[Edge] Local memory insufficient. Querying Cloud...")
            try:
                return list(self.cloud_client.query(vector, k=k))
            except Exception as e:  # noqa: BLE001
                print(f"[Edge] Cloud query failed: {e}")
        return local

    def sync_all(self) -> int:
        """Sends every local vector to the cloud; returns how many. (0.17 printed "not
        implemented".) A cloud failure propagates."""
        memory = self.local_memory
        for i in range(memory.count):
            self.cloud_client.add(memory.vectors[i].copy(), memory.objects[i])
        return memory.count

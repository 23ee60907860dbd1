"""Sharded latent memory (0.17 module).

:class:`LatentShard`, :class:`LatentCluster`, :class:`EdgeNode` and
:class:`LatentConsensus` run in this process on the Rust engine. :class:`ShardServer`
(the 0.17 HTTP shard node, also the ``paradox-node`` command) runs the Rust server with
its 0.17 routes; :class:`RemoteShard` is its client. A :class:`LatentCluster`'s shards
may be :class:`RemoteShard` objects, as in 0.17.
"""

from .client import RemoteShard
from .cluster import LatentCluster
from .consensus import LatentConsensus
from .edge import EdgeNode
from .server import ShardServer
from .shard import LatentShard

__all__ = ["EdgeNode", "LatentCluster", "LatentConsensus", "LatentShard", "RemoteShard", "ShardServer"]

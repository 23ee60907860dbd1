"""Sharded latent memory (0.17 module), in-process.

:class:`LatentShard`, :class:`LatentCluster`, :class:`EdgeNode` and
:class:`LatentConsensus` run in this process on the Rust engine. :class:`ShardServer`
and :class:`RemoteShard` (the 0.17 HTTP shard node and its client) need the Paradox
server and are not part of this release: creating one raises ``NotImplementedError``.
"""

from .client import RemoteShard
from .cluster import LatentCluster
from .consensus import LatentConsensus
from .edge import EdgeNode
from .server import ShardServer
from .shard import LatentShard

__all__ = ["EdgeNode", "LatentCluster", "LatentConsensus", "LatentShard", "RemoteShard", "ShardServer"]

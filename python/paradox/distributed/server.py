"""``ShardServer`` (0.17: a FastAPI node serving one shard over HTTP).

Not in this release: serving Paradox over the network is the job of the Paradox
server, built separately. Creating a ``ShardServer`` raises ``NotImplementedError``;
the ``paradox-node`` command is not installed.
"""

from __future__ import annotations

from typing import Any

_MESSAGE = (
    "paradox.distributed.{name} needs the Paradox network server, which this package "
    "does not include yet; use LatentShard / LatentCluster in-process"
)


class ShardServer:
    """Placeholder for the 0.17 HTTP shard node; raises ``NotImplementedError``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_MESSAGE.format(name="ShardServer"))

"""``RemoteShard`` (0.17: an HTTP client of a ``ShardServer``).

Not in this release (it needs the Paradox server): creating one raises
``NotImplementedError``.
"""

from __future__ import annotations

from typing import Any

from .server import _MESSAGE


class RemoteShard:
    """Placeholder for the 0.17 HTTP shard client; raises ``NotImplementedError``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_MESSAGE.format(name="RemoteShard"))

"""``RemoteShard``: the client of a shard node (:class:`ShardServer`, ``paradox-node``,
or ``paradox serve --legacy``), speaking paradoxlf 0.17's JSON exactly.

0.17 used ``requests``; this uses the standard library. Failures are ``OSError``
subclasses as ``requests``' were: :class:`HTTPError` for an error status (with the
server's message), ``ConnectionError`` for an unreachable node.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["HTTPError", "RemoteShard"]


class HTTPError(OSError):
    """The node answered with an error status (0.17 raised ``requests.HTTPError``)."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code

    def __str__(self) -> str:
        return str(self.args[0])


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # NumPy scalars inside lists or attributes
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class RemoteShard:
    """A remote shard with the shard interface (``add``, ``query``, ``count``)."""

    def __init__(self, host: str = "localhost", port: int = 8000) -> None:
        self.base_url = f"http://{host}:{port}"
        self.id = f"remote_{host}_{port}"
        # As in 0.17: report the node, never raise here.
        try:
            status = self._call("GET", "/")
            print(f"[RemoteShard] Connected to {self.base_url} | {status}")
        except HTTPError as e:
            print(f"[RemoteShard] Warning: Endpoint returned {e.status_code}")
        except Exception as e:  # noqa: BLE001 - 0.17 printed any connection failure
            print(f"[RemoteShard] Connection Failed: {e}")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        url = self.base_url + path
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body, default=_json_default).encode()
            headers["content-type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            try:
                detail = json.loads(e.read())["error"]["message"]
            except (ValueError, KeyError, TypeError, OSError):
                detail = e.reason
            kind = "Client" if 400 <= e.code < 500 else "Server"
            raise HTTPError(f"{e.code} {kind} Error: {detail} for url: {url}", e.code) from None
        except urllib.error.URLError as e:
            raise ConnectionError(f"cannot reach {url}: {e.reason}") from None

    def add(self, vector: Any, attributes: Optional[Dict[str, Any]] = None) -> None:
        """Stores ``vector`` (with ``attributes``) on the node."""
        payload = {
            "vector": vector.tolist() if isinstance(vector, np.ndarray) else vector,
            "attributes": attributes,
        }
        self._call("POST", "/add", payload)

    def query(self, target_vector: Any, k: int = 5) -> List[Tuple[Any, float, Dict[str, Any]]]:
        """The node's ``k`` nearest: ``[(id, distance, attributes)]``, distance Euclidean."""
        payload = {
            "vector": target_vector.tolist() if isinstance(target_vector, np.ndarray) else target_vector,
            "k": k,
        }
        return [(item["id"], item["distance"], item["attributes"]) for item in self._call("POST", "/query", payload)]

    def count(self) -> int:
        """Vectors stored on the node."""
        return self._call("GET", "/").get("count", 0)

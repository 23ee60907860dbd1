"""A Paradox server from Python: :func:`connect` returns a client whose API is the
native one (:class:`paradox.Engine`, :class:`paradox.Collection`), spoken over the
server's REST API (docs/server.md) with the standard library only.

>>> client = paradox.connect("http://127.0.0.1:8333", api_key="...")
>>> docs = client.create_collection("docs", 384, "cosine")
>>> docs.upsert([1, 2], vectors, [{"lang": "en"}, None])
>>> ids, scores = docs.search(queries, k=10, filter={"key": "lang", "eq": "en"})

Results have the native shapes: a 1-D query gives 1-D ``ids``/``scores`` arrays, a 2-D
batch gives ``(n, k)`` arrays padded with id -1 (None for string ids) and score NaN.

Errors carry the server's message: :class:`InvalidRequest` (also a ``ValueError``) for
4xx validation errors and taken names, :class:`NotFound` (a ``KeyError``) for unknown
collections, points and snapshots, :class:`AuthError` (a ``PermissionError``) for
401/403, :class:`RemoteError` (a :class:`paradox.ParadoxError`) for the rest; an
unreachable server is a ``ConnectionError``, no answer in time a ``TimeoutError``.

Differences from the embedded engine: large upserts, gets, deletes and search batches
are split into requests within the server's limits (each request is atomic, the whole
call is not); snapshots are files on the server (:meth:`RemoteCollection.snapshot`
downloads one when given ``dest``); there is no ``sync`` or ``wait_for_indexes``.
"""

from __future__ import annotations

import http.client
import json
import operator
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._native import ParadoxError

__all__ = [
    "AuthError",
    "InvalidRequest",
    "NotFound",
    "RemoteCollection",
    "RemoteEngine",
    "RemoteError",
    "connect",
]

Id = Union[int, str]


class RemoteError(ParadoxError):
    """A call the server answered with an error. ``status`` (HTTP), ``code`` (the
    server's error code, e.g. ``"overloaded"``), ``request_id`` (for the server log)."""

    def __init__(self, message: str, status: int = 0, code: str = "", request_id: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        return self.message


class InvalidRequest(RemoteError, ValueError):
    """400, 405, 409, 413, 415, 422: the request was wrong (the message says how)."""


class NotFound(RemoteError, KeyError):
    """404: unknown collection, point, snapshot or route."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class AuthError(RemoteError, PermissionError):
    """401 (no or unknown API key) or 403 (the key may not do this)."""


class ServerTimeout(RemoteError, TimeoutError):
    """504: the call took longer than the server's ``limits.request_timeout_ms``."""


def _error_class(status: int) -> type:
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFound
    if status == 504:
        return ServerTimeout
    if 400 <= status < 500 and status != 429:
        return InvalidRequest
    return RemoteError


class _Http:
    """JSON over HTTP with urllib: one request per call, errors as exceptions."""

    def __init__(self, url: str, api_key: Optional[str], timeout: float) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"invalid argument `url`: expected http://HOST:PORT or https://HOST:PORT, got {url!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"invalid argument `timeout`: expected seconds > 0, got {timeout!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers = {"accept": "application/json"}
        if api_key is not None:
            self.headers["authorization"] = f"Bearer {api_key}"

    def call(self, method: str, path: str, body: Any = None, *, raw_body: Optional[bytes] = None) -> Any:
        """Sends one request; returns the decoded JSON answer (None for an empty one)."""
        data = raw_body if raw_body is not None else (None if body is None else _dumps(body))
        payload = self._exchange(method, path, data, lambda response: response.read())
        return json.loads(payload) if payload else None

    def download(self, path: str, dest: str) -> int:
        """Streams a GET answer into the file ``dest``; returns the bytes written."""

        def copy(response: Any) -> int:
            written = 0
            with open(dest, "wb") as out:
                while True:
                    chunk = response.read(1 << 20)
                    if not chunk:
                        return written
                    out.write(chunk)
                    written += len(chunk)

        return self._exchange("GET", path, None, copy)

    def _exchange(self, method: str, path: str, data: Optional[bytes], read: Any) -> Any:
        """Sends a request and runs ``read`` on the answer; maps every failure."""
        headers = dict(self.headers)
        if data is not None:
            headers["content-type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        where = f"{method} {self.url}{path}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return read(response)
        except urllib.error.HTTPError as e:
            raise self._server_error(e) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise TimeoutError(f"{where}: no answer within {self.timeout} s") from None
            raise ConnectionError(f"cannot reach the Paradox server at {self.url}: {e.reason}") from None
        except (socket.timeout, TimeoutError):
            raise TimeoutError(f"{where}: no answer within {self.timeout} s") from None
        except (http.client.HTTPException, ConnectionError) as e:
            raise ConnectionError(f"{where}: the connection failed: {e!r}") from None

    def _server_error(self, e: urllib.error.HTTPError) -> RemoteError:
        status = e.code
        request_id = e.headers.get("x-request-id") if e.headers else None
        try:
            text = e.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        code, message = "", text.strip() or (e.reason or "")
        try:
            error = json.loads(text)["error"]
            code, message = error.get("code", ""), error.get("message", message)
        except (ValueError, KeyError, TypeError):
            pass
        return _error_class(status)(f"{message} (HTTP {status})", status, code, request_id)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # NumPy scalars and arrays
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable (use dict, list, str, int, float, bool, None)")


def _dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, default=_json_default, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as e:
        raise ValueError(f"invalid argument: {e}") from None


def _vectors(obj: Any, what: str) -> np.ndarray:
    """A 1-D or 2-D float32 array of finite numbers, or a ValueError naming ``what``."""
    try:
        array = np.asarray(obj)
    except (TypeError, ValueError) as e:
        raise ValueError(f"invalid argument `{what}`: expected a 1-D or 2-D array of numbers: {e}") from None
    if array.dtype.kind not in "fiub":
        raise ValueError(
            f"invalid argument `{what}`: expected real numbers (float32, float64 or integers), got dtype {array.dtype}"
        )
    if array.ndim not in (1, 2):
        raise ValueError(
            f"invalid argument `{what}`: expected a 1-D or 2-D array, got {array.ndim} dimensions {list(array.shape)}"
        )
    if array.shape[-1] == 0:
        raise ValueError(f"invalid argument `{what}`: vectors must have at least one component")
    array = np.ascontiguousarray(array, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(array.reshape(-1)))
    if bad.size:
        dim = array.shape[-1]
        position = int(bad[0])
        raise ValueError(
            f"invalid argument `{what}`: row {position // dim}, position {position % dim} is "
            f"{array.reshape(-1)[position]} (NaN and infinities are not allowed)"
        )
    return array


def _read_id(obj: Any) -> Id:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, (bool, np.bool_)):
        raise ValueError("invalid argument `ids`: booleans are not ids")
    try:
        value = operator.index(obj)
    except TypeError:
        raise ValueError(f"invalid argument `ids`: expected an int or str id, got {type(obj).__name__}") from None
    if not 0 <= value < 2**64:
        raise ValueError(f"invalid argument `ids`: ids must be between 0 and 2**64-1, got {value}")
    return value


def _read_ids(obj: Any) -> Tuple[List[Id], bool]:
    """The ids and whether one id (not a sequence) was given."""
    if isinstance(obj, (str, int, np.integer)):
        return [_read_id(obj)], True
    try:
        items = iter(obj)
    except TypeError:
        raise ValueError(f"invalid argument `ids`: expected a sequence of ids, got {type(obj).__name__}") from None
    return [_read_id(item) for item in items], False


def _filter(obj: Any) -> Any:
    if isinstance(obj, str):
        try:
            return json.loads(obj)
        except ValueError as e:
            raise ValueError(f"invalid argument `filter`: not JSON: {e}") from None
    return obj


def _point(raw: Mapping[str, Any], with_vector: bool) -> Dict[str, Any]:
    """A point as :meth:`paradox.Collection.get` returns it."""
    point: Dict[str, Any] = {"id": raw["id"]}
    if with_vector:
        point["vector"] = np.asarray(raw.get("vector", []), dtype=np.float32)
    point["payload"] = raw.get("payload") or {}
    point["encoder_version"] = raw.get("encoder_version")
    point["created_at"] = raw.get("created_at")
    point["updated_at"] = raw.get("updated_at")
    return point


_I64_MAX = 2**63 - 1


def _hits_to_numpy(rows: Sequence[Sequence[Mapping[str, Any]]], pad_to: Optional[int], with_payload: bool):
    """``(ids, scores[, payloads])`` in the native shapes: 1-D for one query
    (``pad_to=None``), ``(n, pad_to)`` padded for a batch."""
    width = pad_to if pad_to is not None else (len(rows[0]) if rows else 0)
    total = len(rows) * width
    numeric = all(
        isinstance(hit["id"], int) and not isinstance(hit["id"], bool) and hit["id"] <= _I64_MAX
        for row in rows
        for hit in row
    )
    scores = np.full(total, np.nan, dtype=np.float32)
    if numeric:
        ids: np.ndarray = np.full(total, -1, dtype=np.int64)
    else:
        ids = np.full(total, None, dtype=object)
    for r, row in enumerate(rows):
        for c, hit in enumerate(row[:width]):
            scores[r * width + c] = hit["score"]
            ids[r * width + c] = hit["id"]
    if pad_to is not None:
        ids = ids.reshape(len(rows), width)
        scores = scores.reshape(len(rows), width)
    if not with_payload:
        return ids, scores
    payloads = [
        [row[c].get("payload") if c < len(row) else None for c in range(width)]
        for row in rows
    ]
    return ids, scores, (payloads if pad_to is not None else payloads[0])


def _path_id(id: Id) -> str:
    # The server reads an all-digit path segment as a numeric id.
    if isinstance(id, str) and id.isdigit() and id.isascii():
        raise ValueError(f"invalid argument `id`: the string id {id!r} cannot be told from a number in a URL")
    return urllib.parse.quote(str(id), safe="")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RemoteEngine:
    """A Paradox server, with the API of :class:`paradox.Engine`. Made by :func:`connect`."""

    def __init__(self, url: str, api_key: Optional[str] = None, timeout: float = 30.0) -> None:
        self._http = _Http(url, api_key, timeout)
        info = self._http.call("GET", "/v1/info")
        self._limits = {key: int(info[key]) for key in ("max_batch", "max_k", "max_body_bytes")}
        self.version: str = info.get("version", "")

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._http.url

    def info(self) -> Dict[str, Any]:
        """The server's version, limits and whether auth is on (``GET /v1/info``)."""
        return self._http.call("GET", "/v1/info")

    def create_collection(
        self,
        name: str,
        dim: int,
        metric: str = "cosine",
        index: Union[str, Mapping[str, Any], None] = None,
        history: bool = False,
    ) -> "RemoteCollection":
        """Creates a collection and returns it (arguments as :meth:`paradox.Engine.create_collection`)."""
        body: Dict[str, Any] = {"name": name, "dimension": dim, "metric": metric}
        if index is not None:
            body["index"] = {"kind": index} if isinstance(index, str) else dict(index)
        if history:
            body["history"] = True
        description = self._http.call("POST", "/v1/collections", body)
        return RemoteCollection(self, description)

    def collection(self, name: str) -> "RemoteCollection":
        """The collection called ``name`` (``KeyError`` if there is none)."""
        return RemoteCollection(self, self._http.call("GET", f"/v1/collections/{_quote(name)}"))

    def __getitem__(self, name: str) -> "RemoteCollection":
        return self.collection(name)

    def __contains__(self, name: str) -> bool:
        try:
            self.collection(name)
        except NotFound:
            return False
        return True

    def list_collections(self) -> List[str]:
        """Names of every collection the key may see, sorted."""
        listing = self._http.call("GET", "/v1/collections")
        return sorted(c["name"] for c in listing["collections"])

    def drop_collection(self, name: str) -> None:
        """Deletes a collection and its files on the server."""
        self._http.call("DELETE", f"/v1/collections/{_quote(name)}")

    def snapshot(self, name: str, dest: Optional[str] = None) -> Dict[str, Any]:
        """Snapshots collection ``name`` on the server; see :meth:`RemoteCollection.snapshot`."""
        return RemoteCollection(self, {"name": name}).snapshot(dest)

    def __repr__(self) -> str:
        return f"RemoteEngine({self.url!r})"


class RemoteCollection:
    """A collection on a Paradox server, with the API of :class:`paradox.Collection`."""

    def __init__(self, engine: RemoteEngine, description: Mapping[str, Any]) -> None:
        self._engine = engine
        self._http = engine._http
        self._description = dict(description)
        self._name: str = description["name"]
        self._path = f"/v1/collections/{_quote(self._name)}"

    @property
    def name(self) -> str:
        """The collection's name."""
        return self._name

    @property
    def dim(self) -> int:
        """Vector length."""
        return int(self._described("dimension"))

    @property
    def metric(self) -> str:
        """``"cosine"``, ``"dot"`` or ``"l2"``."""
        return str(self._described("metric"))

    def _described(self, key: str) -> Any:
        if key not in self._description:
            self._description = self.info()
        return self._description[key]

    def info(self) -> Dict[str, Any]:
        """Sizes and settings, as the server describes them."""
        return self._http.call("GET", self._path)

    def upsert(self, ids: Any, vectors: Any, payloads: Optional[Sequence[Any]] = None) -> int:
        """Inserts or replaces points; returns the number written (as the native method).
        Sent in requests within the server's batch and body limits."""
        id_list, _ = _read_ids(ids)
        array = _vectors(vectors, "vectors")
        if array.ndim == 1:
            array = array[None, :]
        if array.shape[0] != len(id_list):
            raise ValueError(f"invalid argument `vectors`: {len(id_list)} ids but {array.shape[0]} vectors")
        payload_list: List[Any] = [None] * len(id_list)
        if payloads is not None:
            payload_list = list(payloads)
            if len(payload_list) != len(id_list):
                raise ValueError(f"invalid argument `payloads`: {len(id_list)} ids but {len(payload_list)} payloads")
        written = 0
        for chunk in self._point_batches(id_list, array, payload_list):
            body = b'{"points":[' + b",".join(chunk) + b"]}"
            written += self._http.call("PUT", f"{self._path}/points", raw_body=body)["count"]
        return written

    def _point_batches(self, ids: List[Id], array: np.ndarray, payloads: List[Any]) -> Iterator[List[bytes]]:
        limits = self._engine._limits
        budget = max(1, int(limits["max_body_bytes"] * 0.9) - 64)
        batch: List[bytes] = []
        size = 0
        for id, row, payload in zip(ids, array, payloads):
            point: Dict[str, Any] = {"id": id, "vector": row.tolist()}
            if payload is not None:
                if not isinstance(payload, Mapping):
                    raise ValueError(
                        "invalid argument `payloads`: each payload must be a dict or None, "
                        f"got {type(payload).__name__}"
                    )
                point["payload"] = payload
            encoded = _dumps(point)
            if batch and (len(batch) >= limits["max_batch"] or size + len(encoded) + 1 > budget):
                yield batch
                batch, size = [], 0
            batch.append(encoded)
            size += len(encoded) + 1
        if batch:
            yield batch

    def search(
        self,
        queries: Any,
        k: int = 10,
        filter: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        with_payload: bool = False,
        as_of: Optional[int] = None,
    ):
        """The ``k`` nearest points to each query, in the shapes of
        :meth:`paradox.Collection.search`."""
        array = _vectors(queries, "queries")
        common: Dict[str, Any] = {"k": k, "with_payload": with_payload, "with_vector": False}
        if filter is not None:
            common["filter"] = _filter(filter)
        if params is not None:
            common["params"] = dict(params)
        if as_of is not None:
            common["as_of"] = int(as_of)
        if array.ndim == 1:
            hits = self._http.call("POST", f"{self._path}/search", {"vector": array.tolist(), **common})["hits"]
            return _hits_to_numpy([hits], None, with_payload)
        if array.shape[0] == 0:
            raise ValueError("invalid argument `queries`: no queries (the array has 0 rows)")
        rows: List[Any] = []
        for chunk in _chunks(array, self._engine._limits["max_batch"]):
            searches = [{"vector": row.tolist(), **common} for row in chunk]
            answer = self._http.call("POST", f"{self._path}/search/batch", {"searches": searches})
            rows.extend(result["hits"] for result in answer["results"])
        return _hits_to_numpy(rows, k, with_payload)

    def get(self, ids: Any) -> Any:
        """A dict (or None) for one id; a list of them for a sequence of ids."""
        id_list, single = _read_ids(ids)
        found: Dict[Any, Mapping[str, Any]] = {}
        for chunk in _chunks(id_list, self._engine._limits["max_batch"]):
            answer = self._http.call("POST", f"{self._path}/points/get", {"ids": list(chunk), "with_vector": True})
            for raw in answer["points"]:
                found[_id_key(raw["id"])] = raw
        points = [_point(found[_id_key(i)], True) if _id_key(i) in found else None for i in id_list]
        return points[0] if single else points

    def history(self, id: Id) -> List[Dict[str, Any]]:
        """Every version of a point, oldest first, each with ``valid_to`` (None: current).
        Needs a collection created with ``history=True``."""
        answer = self._http.call("GET", f"{self._path}/points/{_path_id(_read_id(id))}/history")
        versions = []
        for raw in answer["versions"]:
            version = _point(raw, True)
            version["valid_to"] = raw.get("valid_to")
            versions.append(version)
        return versions

    def reason(self, request: Mapping[str, Any]) -> Dict[str, Any]:
        """One reasoning operation (see :mod:`paradox.reasoning`)."""
        return self._http.call("POST", f"{self._path}/reason", dict(request))

    def delete(self, ids: Any = None, filter: Any = None) -> int:
        """Deletes points by id or every point matching ``filter``; returns how many existed."""
        if (ids is None) == (filter is None):
            raise ValueError("invalid argument `delete`: pass exactly one of `ids` or `filter`")
        if filter is not None:
            return self._http.call("POST", f"{self._path}/points/delete", {"filter": _filter(filter)})["count"]
        id_list, _ = _read_ids(ids)
        deleted = 0
        for chunk in _chunks(id_list, self._engine._limits["max_batch"]):
            deleted += self._http.call("POST", f"{self._path}/points/delete", {"ids": list(chunk)})["count"]
        return deleted

    def count(self, filter: Any = None) -> int:
        """Number of points (matching ``filter`` when given)."""
        body = {} if filter is None else {"filter": _filter(filter)}
        return self._http.call("POST", f"{self._path}/points/count", body)["count"]

    def __len__(self) -> int:
        return self.count()

    def scroll(self, filter: Any = None, batch_size: int = 256, with_vector: bool = False) -> "RemoteScrollIterator":
        """Iterates over points in id order (dicts as from :meth:`get`), fetching
        ``batch_size`` (at most the server's ``max_k``) per request."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"invalid argument `batch_size`: must be at least 1, got {batch_size!r}")
        return RemoteScrollIterator(self, filter, min(batch_size, self._engine._limits["max_k"]), with_vector)

    def snapshot(self, dest: Optional[str] = None) -> Dict[str, Any]:
        """Writes a snapshot on the server and returns its description (``name``,
        ``collection``, ``bytes``, ``created_at``); with ``dest``, also downloads the
        file there (a file :meth:`paradox.Engine.restore` accepts)."""
        description = self._http.call("POST", f"{self._path}/snapshots")
        if dest is not None:
            self.download_snapshot(description["name"], dest)
        return description

    def snapshots(self) -> List[Dict[str, Any]]:
        """The snapshots stored on the server for this collection, newest last."""
        return self._http.call("GET", f"{self._path}/snapshots")["snapshots"]

    def download_snapshot(self, snapshot: str, dest: str) -> int:
        """Downloads a stored snapshot into the file ``dest``; returns its size."""
        return self._http.download(f"{self._path}/snapshots/{_quote(snapshot)}", dest)

    def restore_snapshot(self, snapshot: str, name: Optional[str] = None) -> "RemoteCollection":
        """Restores a stored snapshot as a new collection (``name``, default the
        snapshotted name) and returns it."""
        body = {} if name is None else {"as_name": name}
        description = self._http.call("POST", f"{self._path}/snapshots/{_quote(snapshot)}/restore", body)
        return RemoteCollection(self._engine, description)

    def __repr__(self) -> str:
        return f"RemoteCollection(name={self._name!r}, url={self._http.url!r})"


class RemoteScrollIterator:
    """Iterator returned by :meth:`RemoteCollection.scroll`."""

    def __init__(self, collection: RemoteCollection, filter: Any, limit: int, with_vector: bool) -> None:
        self._collection = collection
        self._request: Dict[str, Any] = {"limit": limit, "with_vector": with_vector}
        if filter is not None:
            self._request["filter"] = _filter(filter)
        self._with_vector = with_vector
        self._page: Iterator[Mapping[str, Any]] = iter(())
        self._done = False

    def __iter__(self) -> "RemoteScrollIterator":
        return self

    def __next__(self) -> Dict[str, Any]:
        while True:
            for raw in self._page:
                return _point(raw, self._with_vector)
            if self._done:
                raise StopIteration
            c = self._collection
            answer = c._http.call("POST", f"{c._path}/points/scroll", self._request)
            self._page = iter(answer["points"])
            next_id = answer.get("next")
            self._done = next_id is None
            self._request["after"] = next_id


def _quote(segment: str) -> str:
    return urllib.parse.quote(str(segment), safe="")


def _id_key(id: Id) -> Tuple[bool, Id]:
    return (isinstance(id, str), id)


def connect(url: str, api_key: Optional[str] = None, timeout: float = 30.0) -> RemoteEngine:
    """Connects to a Paradox server (``paradox serve``, :func:`paradox.serve`, or
    ``paradox-node``) at ``url`` (``http://HOST:PORT``; ``https://`` with TLS) and
    returns a :class:`RemoteEngine`. ``api_key`` is sent as ``authorization: Bearer``;
    ``timeout`` is seconds per request. Checks the server at once: an unreachable one
    is a ``ConnectionError``, a refused key an :class:`AuthError`."""
    return RemoteEngine(url, api_key=api_key, timeout=timeout)

"""Type stubs for the native module (crates/paradox-py)."""

from os import PathLike
from typing import Any, Dict, Iterator, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

Id = Union[int, str]
Ids = Union[Id, Sequence[Id], npt.NDArray[np.integer[Any]]]
ArrayLike = Union[npt.NDArray[Any], Sequence[float], Sequence[Sequence[float]]]
FilterLike = Union[str, Mapping[str, Any]]
Payload = Dict[str, Any]

class ParadoxError(Exception):
    """An engine failure that is not the caller's fault: I/O, corrupt data, a locked directory."""

class Engine:
    """An embedded Paradox store: a data directory holding named collections."""

    def __init__(
        self,
        path: Union[str, PathLike[str]],
        fsync: Literal["always", "interval", "never"] = "interval",
        seal_threshold: Optional[int] = None,
    ) -> None: ...
    @property
    def path(self) -> str: ...
    def create_collection(
        self,
        name: str,
        dim: int,
        metric: Literal["cosine", "dot", "l2", "euclidean"] = "cosine",
        index: Union[Literal["auto", "flat", "hnsw"], Mapping[str, Any], None] = None,
        history: bool = False,
    ) -> Collection: ...
    def collection(self, name: str) -> Collection: ...
    def __getitem__(self, name: str) -> Collection: ...
    def __contains__(self, name: str) -> bool: ...
    def list_collections(self) -> List[str]: ...
    def drop_collection(self, name: str) -> None: ...
    def snapshot(self, name: str, dest: Union[str, PathLike[str]]) -> Dict[str, Any]: ...
    def restore(self, file: Union[str, PathLike[str]], name: Optional[str] = None) -> Collection: ...
    def sync(self) -> None: ...

class Collection:
    """A named set of points of one dimension and metric."""

    @property
    def name(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def metric(self) -> str: ...
    def upsert(
        self,
        ids: Ids,
        vectors: ArrayLike,
        payloads: Optional[Sequence[Optional[Mapping[str, Any]]]] = None,
    ) -> int: ...
    def search(
        self,
        queries: ArrayLike,
        k: int = 10,
        filter: Optional[FilterLike] = None,
        params: Optional[Mapping[str, Any]] = None,
        with_payload: bool = False,
        as_of: Optional[int] = None,
    ) -> Tuple[Any, ...]:
        """``(ids, scores)``, plus ``payloads`` when ``with_payload``."""
    def get(self, ids: Ids) -> Any:
        """A dict (or None) for one id; a list of them for a sequence of ids."""
    def history(self, id: Union[int, str]) -> List[Dict[str, Any]]:
        """Every version of a point, oldest first, each with ``valid_to`` (None: current)."""
    def reason(self, request: Mapping[str, Any]) -> Dict[str, Any]:
        """One reasoning operation (see :mod:`paradox.reasoning`)."""
    def delete(self, ids: Optional[Ids] = None, filter: Optional[FilterLike] = None) -> int: ...
    def count(self, filter: Optional[FilterLike] = None) -> int: ...
    def __len__(self) -> int: ...
    def scroll(
        self, filter: Optional[FilterLike] = None, batch_size: int = 256, with_vector: bool = False
    ) -> ScrollIterator: ...
    def snapshot(self, dest: Union[str, PathLike[str]]) -> Dict[str, Any]: ...
    def info(self) -> Dict[str, Any]: ...
    def wait_for_indexes(self) -> None: ...
    def sync(self) -> None: ...

class ScrollIterator(Iterator[Dict[str, Any]]):
    def __iter__(self) -> ScrollIterator: ...
    def __next__(self) -> Dict[str, Any]: ...

class Server:
    """A running Paradox server, returned by :func:`serve`."""

    @property
    def url(self) -> str:
        """``http://host:port`` (a wildcard address is reported as 127.0.0.1)."""
    @property
    def rest_addr(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def grpc_addr(self) -> Optional[str]: ...
    @property
    def engine(self) -> Engine:
        """The served engine (only while running)."""
    @property
    def running(self) -> bool: ...
    def stop(self) -> None:
        """Graceful: drains in-flight calls and fsyncs every log. Idempotent."""
    def wait(self, timeout: Optional[float] = None) -> bool:
        """Blocks until stopped (or ``timeout`` seconds); Ctrl-C raises KeyboardInterrupt."""
    def __enter__(self) -> Server: ...
    def __exit__(self, *args: Any) -> bool: ...

def serve(
    data_dir: Union[str, PathLike[str], None] = None,
    *,
    rest_addr: Optional[str] = None,
    grpc_addr: Optional[str] = None,
    api_key: Optional[str] = None,
    fsync: Optional[Literal["always", "interval", "never"]] = None,
    config: Union[str, PathLike[str], None] = None,
    tls_cert: Union[str, PathLike[str], None] = None,
    tls_key: Union[str, PathLike[str], None] = None,
    audit_log: Union[str, PathLike[str], None] = None,
    legacy: bool = False,
    legacy_id: Optional[str] = None,
    legacy_dimension: Optional[int] = None,
    legacy_collection: Optional[str] = None,
    log: bool = False,
) -> Server:
    """Starts ``paradox serve`` in this process, in the background (docs/server.md)."""

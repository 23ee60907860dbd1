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

# Guided evolution (crates/paradox-py/src/evolution.rs). Every optimiser minimises.
F64 = npt.NDArray[np.float64]

class SafetyGuard:
    """Norm bounds, a box and forbidden balls; optimisers repair candidates with it."""

    def __init__(
        self,
        *,
        min_norm: Optional[float] = None,
        max_norm: Optional[float] = None,
        lower: Optional[ArrayLike] = None,
        upper: Optional[ArrayLike] = None,
        forbidden: Optional[Sequence[Tuple[ArrayLike, float]]] = None,
    ) -> None: ...
    def is_allowed(self, x: ArrayLike) -> bool: ...
    def repair(self, x: ArrayLike) -> F64:
        """A repaired copy of ``x`` (unchanged when already allowed)."""
    def repair_all(self, xs: ArrayLike) -> Tuple[F64, int]:
        """``(repaired rows, how many changed)``."""
    @property
    def min_norm(self) -> Optional[float]: ...
    @property
    def max_norm(self) -> Optional[float]: ...

class CMAES:
    """CMA-ES, ask/tell: ``while es.stop() is None: xs = es.ask(); es.tell(xs, [f(x) for x in xs])``."""

    def __init__(
        self,
        x0: ArrayLike,
        sigma0: float,
        *,
        popsize: Optional[int] = None,
        separable: bool = False,
        active: bool = True,
        seed: int = 0,
        target: Optional[float] = None,
        max_evals: Optional[int] = None,
    ) -> None: ...
    def ask(self) -> F64:
        """The next population, shape ``(popsize, dimension)``."""
    def tell(self, candidates: ArrayLike, fitness: Sequence[float]) -> None: ...
    def stop(self) -> Optional[str]:
        """Why the run should stop (``"target"``, ``"max_evaluations"``, ``"tol_fun"``, ...) or None."""
    @property
    def best(self) -> Tuple[F64, float]: ...
    @property
    def mean(self) -> F64: ...
    @property
    def sigma(self) -> float: ...
    @property
    def generation(self) -> int: ...
    @property
    def evaluations(self) -> int: ...
    @property
    def popsize(self) -> int: ...
    @property
    def dimension(self) -> int: ...

class GA:
    """A real-coded genetic algorithm with bandit-chosen operators, ask/tell."""

    def __init__(
        self,
        x0: ArrayLike,
        *,
        popsize: int = 50,
        elite: int = 2,
        tournament: int = 3,
        crossover_rate: float = 0.9,
        mutation_rate: float = 0.1,
        mutation_scale: float = 0.1,
        init_sigma: float = 1.0,
        adaptive: bool = True,
        seed: int = 0,
        guard: Optional[SafetyGuard] = None,
    ) -> None: ...
    def ask(self) -> F64: ...
    def tell(self, candidates: ArrayLike, fitness: Sequence[float]) -> None: ...
    @property
    def best(self) -> Tuple[F64, float]: ...
    @property
    def evaluations(self) -> int: ...
    @property
    def population(self) -> Tuple[F64, F64]: ...
    @property
    def operator_values(self) -> List[float]: ...

class MapElites:
    """The best solution per behaviour cell: ``bins`` per dimension, or ``cvt_cells`` CVT cells."""

    def __init__(
        self,
        lower: ArrayLike,
        upper: ArrayLike,
        *,
        bins: Optional[int] = None,
        cvt_cells: Optional[int] = None,
        samples: int = 10000,
        seed: int = 0,
    ) -> None: ...
    def insert(self, x: ArrayLike, fitness: float, behavior: ArrayLike) -> bool: ...
    def ask(self, n: int) -> Optional[F64]: ...
    def elites(self) -> List[Tuple[F64, float, F64]]: ...
    def cell_of(self, behavior: ArrayLike) -> int: ...
    @property
    def coverage(self) -> float: ...
    @property
    def cells(self) -> int: ...

class NoveltyArchive:
    def __init__(self, k: int = 15) -> None: ...
    def add(self, behavior: ArrayLike) -> None: ...
    def novelty(
        self, behavior: ArrayLike, population: Optional[ArrayLike] = None, skip: Optional[int] = None
    ) -> float: ...
    def __len__(self) -> int: ...

def minimize(
    objective: Any,
    x0: ArrayLike,
    sigma0: float,
    *,
    restarts: Optional[Literal["ipop", "bipop"]] = None,
    surrogate: Optional[Literal["quadratic", "knn"]] = None,
    max_evals: int = 100000,
    target: Optional[float] = None,
    popsize: Optional[int] = None,
    separable: bool = False,
    seed: int = 0,
    max_restarts: int = 9,
    batch: bool = False,
) -> Dict[str, Any]:
    """CMA-ES on ``objective`` (a vector -> a number; with ``batch`` a (n, d) array -> n numbers).
    Returns ``{"x", "f", "evaluations", "stop", "runs", "surrogate_tau"?}``."""

class Simulation:
    """A collection's vectors (or a filtered subset) under dynamics, stepped in place.

    ``dynamics``: dicts ``{"kind": "gravity_well" | "attraction" | "repulsion" | "decay" | "noise"
    | "flocking" | "expression", ...}``, expression strings (``"x * (1 - 0.1 * dt)"``), and
    callables ``f(block, step, dt)`` over float32 blocks ``(rows, dim)`` (change it in place or
    return the new block). Each step runs the native dynamics first, then the callables.
    """

    def __init__(
        self,
        collection: Collection,
        dynamics: Sequence[Any],
        *,
        dt: float = 0.1,
        filter: Optional[FilterLike] = None,
        block_rows: int = 65536,
    ) -> None: ...
    def run(self, steps: int = 1, callback: Optional[Any] = None) -> int:
        """Runs ``steps`` steps; ``callback(step, total)`` returning False stops early."""
    @property
    def vectors(self) -> npt.NDArray[np.float32]: ...
    @property
    def ids(self) -> List[Id]: ...
    def write_back(self) -> int:
        """Upserts the rows back (new versions); returns the points written."""
    @property
    def steps_taken(self) -> int: ...
    @property
    def dt(self) -> float: ...
    def __len__(self) -> int: ...

EncoderLike = Union[str, Any]

class LivingCollection:
    """A collection seen through several vector spaces (``docs/lifecycle.md``).

    Encoders are specs (``"hashing:DIM"``, ``"minilm"``, ``"minilm:LAYERS"``) or callables
    ``f(texts: list[str]) -> array (len(texts), dim)``; callables live in this process only
    (attach them again after :meth:`open`).
    """

    @staticmethod
    def init(
        engine: Engine,
        name: str,
        space: str,
        encoder: Optional[EncoderLike] = None,
        text_field: Optional[str] = None,
        model_dir: Optional[Union[str, PathLike[str]]] = None,
    ) -> "LivingCollection": ...
    @staticmethod
    def open(engine: Engine, name: str) -> "LivingCollection": ...
    @property
    def name(self) -> str: ...
    @property
    def default_space(self) -> str: ...
    def spaces(self) -> List[Dict[str, Any]]: ...
    def adapters(self) -> List[Dict[str, Any]]: ...
    def add_space(
        self,
        name: str,
        encoder: Optional[EncoderLike] = None,
        dim: Optional[int] = None,
        model_dir: Optional[Union[str, PathLike[str]]] = None,
    ) -> Dict[str, Any]: ...
    def set_default_space(self, space: str) -> None: ...
    def remove_space(self, name: str) -> Dict[str, Any]:
        """Removes a space with its collection, adapters and overlays; returns it as it was.

        ``ValueError`` (nothing removed) for the first space, the default space, a space a
        running migration uses, or an unknown name.
        """
    def attach_encoder(
        self, space: str, encoder: EncoderLike, model_dir: Optional[Union[str, PathLike[str]]] = None
    ) -> None: ...
    def upsert_texts(self, ids: Ids, texts: Sequence[str], payloads: Optional[Sequence[Payload]] = None) -> int: ...
    def upsert_vectors(
        self, space: str, ids: Ids, vectors: ArrayLike, payloads: Optional[Sequence[Payload]] = None
    ) -> int: ...
    def delete(self, ids: Ids) -> int: ...
    def count(self, space: str) -> int: ...
    def coverage(self, space: str) -> float: ...
    def encode(self, space: str, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...
    def search(
        self,
        text: Optional[str] = None,
        vector: Optional[ArrayLike] = None,
        space: Optional[str] = None,
        k: int = 10,
        filter: Optional[FilterLike] = None,
        with_payload: bool = False,
        context: Optional[str] = None,
        oversample: Optional[int] = None,
    ) -> List[Dict[str, Any]]:
        """Hits ``{"id", "score", "source", "payload"?}``; ``source``: native, rescored or adapter."""
    def fit_adapters(
        self, from_space: str, to_space: str, kind: str = "affine", pairs: int = 5000
    ) -> Tuple[Dict[str, Any], Dict[str, Any]]: ...
    def migrate(
        self,
        to: str,
        from_space: Optional[str] = None,
        rate: Optional[float] = None,
        batch_size: int = 256,
        switch_at: float = 0.95,
        importance_field: Optional[str] = None,
    ) -> Dict[str, Any]: ...
    def migration_status(self) -> Optional[Dict[str, Any]]: ...
    def wait_for_migration(self) -> Optional[Dict[str, Any]]: ...
    def pause_migration(self) -> None: ...
    def drift(self, space: Optional[str] = None, window: int = 500, recent: bool = False) -> Dict[str, Any]: ...

def _pause_living_migrations() -> None:
    """Pauses every migration started from Python (run at interpreter exit)."""

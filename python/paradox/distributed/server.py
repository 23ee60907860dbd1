"""``ShardServer`` and the ``paradox-node`` command (paradoxlf 0.17's HTTP shard node).

0.17 served one in-memory shard with FastAPI; 0.18 starts the Rust server
(:func:`paradox.serve`) with its legacy routes, which answer exactly as 0.17 did:

| route | body | answer |
|---|---|---|
| ``GET /`` | - | ``{"status": "online", "id": <node id>, "count": N}`` |
| ``POST /add`` | ``{"vector": [..], "attributes": {..} or null}`` | ``{"status": "ok"}`` |
| ``POST /query`` | ``{"vector": [..], "k": 5}`` | ``[{"id", "distance", "attributes"}]`` |

Points go to the l2 collection ``legacy``; ids count up from 0, attributes get ``_id``,
``distance`` is Euclidean. The ``/v1`` API is served on the same port, so
:func:`paradox.connect` reaches the same data.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import weakref
from typing import Any, Callable, Optional

from .. import _native

__all__ = ["ShardServer", "main"]


# Nodes started and not yet stopped; stopped at interpreter exit (see `ShardServer.run`).
_running_nodes: "weakref.WeakSet[ShardServer]" = weakref.WeakSet()


@atexit.register
def _stop_running_nodes() -> None:
    for node in list(_running_nodes):
        try:
            node.stop()
        except Exception:  # noqa: BLE001 - exiting anyway; a failed flush was logged by the server
            pass


def _data_dir(persistence_path: Optional[str]) -> Optional[str]:
    """0.17 pickled the shard to ``persistence_path`` (``shard.pkl``); the engine keeps
    a directory, so a ``.pkl`` path becomes the directory ``shard.paradox`` beside it."""
    if persistence_path is None:
        return None
    path = os.fspath(persistence_path)
    root, ext = os.path.splitext(path)
    if ext == ".pkl":
        if os.path.isfile(path) and not os.path.exists(root + ".paradox"):
            print(
                f"[ShardServer] {path} is a paradoxlf 0.17 pickle and is not loaded; "
                f"this node keeps its data in {root}.paradox"
            )
        return root + ".paradox"
    return path


def _listen_addr(host: str, port: int) -> str:
    """``HOST:PORT`` for the server; host names are resolved as uvicorn did."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"invalid argument `port`: expected 0 to 65535, got {port!r}")
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise ValueError(f"invalid argument `host`: cannot resolve {host!r}: {e}") from None
    ip = sockaddr[0]
    return f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"


def _interrupt_on_signals() -> Callable[[], None]:
    """Makes SIGINT and SIGTERM raise KeyboardInterrupt in the main thread (a graceful
    stop, as uvicorn did), even when the process started with SIGINT ignored (a
    background job of a non-interactive shell); returns the function that restores the
    previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)

    return restore


class ShardServer:
    """A shard node serving the 0.17 HTTP routes (and the ``/v1`` API) from the Rust
    server.

    ``persistence_path``: where the node keeps its data (a ``.pkl`` path becomes the
    directory beside it with the extension ``.paradox``); None keeps it in a temporary
    directory removed when the node stops, like 0.17's in-memory shard.

    :meth:`run` serves until Ctrl-C or SIGTERM, as in 0.17; :meth:`start` serves in the
    background and :meth:`stop` ends it (also as a context manager).
    """

    def __init__(self, dimension: int = 128, shard_id: str = "shard_0", persistence_path: Optional[str] = None) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise ValueError(f"invalid argument `dimension`: expected a positive integer, got {dimension!r}")
        self.dimension = dimension
        self.id = shard_id
        self.persistence_path = persistence_path
        self._data_dir = _data_dir(persistence_path)
        self._temporary: Optional[str] = None
        self._server: Optional[Any] = None
        # One stopper at a time: a second one waits here, in Python, not in native code.
        self._stop_lock = threading.Lock()

    def start(self, host: str = "127.0.0.1", port: int = 0, log: bool = False) -> "ShardServer":
        """Starts serving in the background (port 0: a free port, see :attr:`port`)."""
        if self._server is not None and self._server.running:
            raise RuntimeError(f"shard server {self.id!r} is already running at {self._server.url}")
        addr = _listen_addr(host, port)
        data_dir = self._data_dir
        if data_dir is None:
            self._temporary = tempfile.mkdtemp(prefix=f"paradox-shard-{self.id}-")
            data_dir = self._temporary
        try:
            self._server = _native.serve(
                data_dir,
                rest_addr=addr,
                grpc_addr="off",
                fsync="never" if self._temporary else "interval",
                legacy=True,
                legacy_id=self.id,
                legacy_dimension=self.dimension,
                log=log,
            )
        except BaseException:
            self._remove_temporary()
            raise
        _running_nodes.add(self)
        print(f"[ShardServer] Listening on {host}:{self._server.port}", flush=True)
        return self

    def run(self, host: str = "0.0.0.0", port: int = 8000) -> None:
        """Serves until Ctrl-C or SIGTERM (or :meth:`stop` from another thread), then
        stops gracefully: in-flight calls finish and every write is flushed."""
        # Handlers first, so a signal that arrives while the node starts also stops it.
        restore = _interrupt_on_signals()
        started = False
        try:
            self.start(host, port, log=True)
            started = True
            # Waits in Python, not in the native `Server.wait`: 0.17 programs run nodes in
            # daemon threads, and a daemon thread must not be inside native code when the
            # interpreter exits (CPython ends such threads by unwinding them, which native
            # frames cannot survive). Exiting stops the node first (`_stop_running_nodes`).
            # A plain sleep, not `Event.wait`: a KeyboardInterrupt raised inside the
            # event's condition can leave its lock held, and the `stop` below would then
            # wait on that lock forever (seen as a node that ignored Ctrl-C).
            while self.running:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            restore()
            # A node interrupted while starting is stopped at exit (`_stop_running_nodes`).
            if started:
                self.stop()

    def stop(self) -> None:
        """Stops serving (graceful; idempotent) and removes a temporary data directory."""
        with self._stop_lock:
            _running_nodes.discard(self)
            if self._server is not None:
                try:
                    self._server.stop()
                finally:
                    self._remove_temporary()

    def save_state(self) -> None:
        """Makes every acknowledged write durable now (0.17 pickled the shard here; the
        engine already logs every write)."""
        if self._server is None or not self._server.running:
            raise RuntimeError(f"shard server {self.id!r} is not running")
        self._server.engine.sync()

    @property
    def url(self) -> str:
        """``http://host:port`` of the running node."""
        if self._server is None:
            raise RuntimeError(f"shard server {self.id!r} has not been started")
        return self._server.url

    @property
    def port(self) -> int:
        """The port the running node listens on."""
        if self._server is None:
            raise RuntimeError(f"shard server {self.id!r} has not been started")
        return self._server.port

    @property
    def running(self) -> bool:
        """Whether the node is serving."""
        return self._server is not None and self._server.running

    def _remove_temporary(self) -> None:
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def __enter__(self) -> "ShardServer":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._server.url if self.running and self._server is not None else "stopped"
        return f"ShardServer(id={self.id!r}, dimension={self.dimension}, {where})"


def main(argv: Optional[list] = None) -> None:
    """``paradox-node``: 0.17's flags, served by the Rust server's legacy routes."""
    parser = argparse.ArgumentParser(description="Paradox Shard Node")
    parser.add_argument("--id", type=str, default="node_x", help="Unique Node ID")
    parser.add_argument("--port", type=int, default=8000, help="Listen Port")
    parser.add_argument("--dimension", type=int, default=128, help="Latent Vector Dimension")
    parser.add_argument("--persistence", type=str, default="/app/persistence/shard.pkl", help="Path to save state")
    args = parser.parse_args(argv)

    print(f"=== Paradox Node: {args.id} ===", flush=True)
    try:
        server = ShardServer(dimension=args.dimension, shard_id=args.id, persistence_path=args.persistence)
        server.run(port=args.port)
    except (ValueError, OSError, _native.ParadoxError) as e:
        parser.exit(1, f"paradox-node: error: {e}\n")


if __name__ == "__main__":
    main()

"""Latent dynamics: evolve every stored vector with a function of time (0.17 module).

For a native collection use :class:`Simulation` (``paradox.Simulation``): built-in dynamics
and compiled expressions run in parallel in Rust, Python callables over NumPy blocks, and
the results are written back as new versions. ``SimulationEnv`` below is 0.17's, for a
:class:`LatentMemoryEngine`.

A dynamics function is ``fn(vectors, dt, backend) -> delta`` (or None for no change);
``backend`` is ``"numpy"``. After each step the engine's search index is refreshed
lazily, at the next query.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
from typing import Any, Callable, Optional

import numpy as np

from ._native import Simulation

logger = logging.getLogger("ParadoxSimulation")

__all__ = ["Dynamics", "Simulation", "SimulationEnv"]

Dynamics = Callable[[np.ndarray, float, str], Optional[np.ndarray]]

PARALLEL_THRESHOLD = 10_000


class SimulationEnv:
    """Runs dynamics over a :class:`LatentMemoryEngine`'s vectors.

    ``running`` is True during :meth:`run`; set it to False (e.g. from the callback) to stop.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.running = False
        self.num_workers = os.cpu_count() or 1

    def step(self, dynamics_fn: Dynamics, dt: float = 0.1, parallel: Any = "auto", executor: Any = None) -> None:
        """Applies ``dynamics_fn`` once: ``vectors += dynamics_fn(vectors, dt, backend)``.

        ``parallel``: True splits the rows into chunks run on threads (NumPy releases the
        GIL); ``"auto"`` does so above 10,000 vectors.
        """
        if self.engine.count == 0:
            return
        if parallel == "auto":
            parallel = self.engine.count > PARALLEL_THRESHOLD
        vectors = self.engine.vectors
        backend = self.engine.backend_type
        if not parallel:
            delta = dynamics_fn(vectors, dt, backend)
        else:
            chunk = max(1, len(vectors) // self.num_workers)
            chunks = [vectors[i : i + chunk] for i in range(0, len(vectors), chunk)]
            if executor is not None:
                parts = list(executor.map(lambda c: dynamics_fn(c, dt, backend), chunks))
            else:
                with concurrent.futures.ThreadPoolExecutor(max_workers=self.num_workers) as pool:
                    parts = list(pool.map(lambda c: dynamics_fn(c, dt, backend), chunks))
            delta = None if not parts or parts[0] is None else np.vstack(parts)
        if delta is not None:
            self.engine.vectors = vectors + np.asarray(delta, dtype=np.float32)

    def run(
        self,
        steps: int,
        dynamics_fn: Dynamics,
        dt: float = 0.1,
        callback: Optional[Callable[[int, Any], Any]] = None,
        parallel: Any = "auto",
    ) -> None:
        """Runs ``steps`` steps, calling ``callback(i, engine)`` after each."""
        self.running = True
        if parallel == "auto":
            parallel = self.engine.count > 100_000
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=self.num_workers) if parallel else None
        try:
            for i in range(steps):
                if not self.running:
                    break
                self.step(dynamics_fn, dt, parallel=parallel, executor=executor)
                if callback:
                    callback(i, self.engine)
        except KeyboardInterrupt:
            logger.info("Simulation stopped by user.")
        finally:
            if executor is not None:
                executor.shutdown()
        self.running = False


def simple_gravity_well(vectors: np.ndarray, dt: float, backend: str) -> np.ndarray:
    """Pulls every vector towards the origin: ``delta = -0.1 * vectors * dt``."""
    return -0.1 * vectors * dt

"""Paradox: latent memory for AI agents.

Two layers in one package:

* the native API, a Rust engine with NumPy in and out: :class:`Engine`,
  :class:`Collection`, :class:`ParadoxError`, :class:`LivingCollection` (several vector
  spaces, adapters, migration, drift); the same API over the network with
  :func:`connect`, and the server itself with :func:`serve`;
* the paradoxlf 0.17 API (:class:`LatentMemoryEngine`, :mod:`paradox.mixer`,
  :mod:`paradox.temporal`, :mod:`paradox.simulation`, :mod:`paradox.distributed`, ...),
  same names and return shapes, searches served by the Rust engine.
"""

import atexit

from . import _native, decoder, encoder, reasoning, remote, visualization
from ._native import Collection, Engine, LivingCollection, ParadoxError, Server, serve
from .autonomous import AutoAgent
from .engine import LatentMemoryEngine
from .evolution import GeneticOptimizer
from .mixer import ParadoxMixer
from .remote import RemoteCollection, RemoteEngine, connect
from .safety import GuardRail
from .simulation import Simulation, SimulationEnv
from .visualization import LatentVisualizer

__version__ = "0.18.0"

# Migrations through Python encoders need the GIL: stop them before the interpreter goes.
atexit.register(_native._pause_living_migrations)

__all__ = [
    "AutoAgent",
    "Collection",
    "Engine",
    "GeneticOptimizer",
    "GuardRail",
    "LatentMemoryEngine",
    "LatentVisualizer",
    "LivingCollection",
    "ParadoxError",
    "ParadoxMixer",
    "RemoteCollection",
    "RemoteEngine",
    "Server",
    "Simulation",
    "SimulationEnv",
    "__version__",
    "connect",
    "decoder",
    "encoder",
    "reasoning",
    "remote",
    "serve",
    "visualization",
]

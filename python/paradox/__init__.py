"""Paradox: latent memory for AI agents.

Two layers in one package:

* the native API, a Rust engine with NumPy in and out: :class:`Engine`,
  :class:`Collection`, :class:`ParadoxError`;
* the paradoxlf 0.17 API (:class:`LatentMemoryEngine`, :mod:`paradox.mixer`,
  :mod:`paradox.temporal`, :mod:`paradox.simulation`, :mod:`paradox.distributed`, ...),
  same names and return shapes, searches served by the Rust engine.
"""

from . import decoder, encoder, reasoning, visualization
from ._native import Collection, Engine, ParadoxError
from .autonomous import AutoAgent
from .engine import LatentMemoryEngine
from .evolution import GeneticOptimizer
from .mixer import ParadoxMixer
from .safety import GuardRail
from .simulation import SimulationEnv
from .visualization import LatentVisualizer

__version__ = "0.18.0"

__all__ = [
    "AutoAgent",
    "Collection",
    "Engine",
    "GeneticOptimizer",
    "GuardRail",
    "LatentMemoryEngine",
    "LatentVisualizer",
    "ParadoxError",
    "ParadoxMixer",
    "SimulationEnv",
    "__version__",
    "decoder",
    "encoder",
    "reasoning",
    "visualization",
]

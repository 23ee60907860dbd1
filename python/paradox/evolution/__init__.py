"""Guided evolution in latent space.

The native optimisers (all minimise; ask/tell over float64 NumPy arrays):
``CMAES`` (full or separable), ``GA`` (operators chosen by a bandit), ``MapElites`` (grid or
CVT cells), ``NoveltyArchive``, ``SafetyGuard`` (norm bounds, a box, forbidden balls) and
``minimize`` (CMA-ES with IPOP/BIPOP restarts or a surrogate model). paradoxlf 0.17's
``GeneticOptimizer`` and ``ObjectiveFunction`` keep their API on top.
"""

from .._native import CMAES, GA, MapElites, NoveltyArchive, SafetyGuard, minimize
from .optimizer import GeneticOptimizer, ObjectiveFunction

__all__ = [
    "CMAES",
    "GA",
    "GeneticOptimizer",
    "MapElites",
    "NoveltyArchive",
    "ObjectiveFunction",
    "SafetyGuard",
    "minimize",
]

"""Mutation, crossover and the novelty / coherence objectives (paradoxlf 0.17), now a thin
layer over the native ask/tell optimisers of ``paradox.evolution``."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np

from .._native import GA, SafetyGuard


class GeneticOptimizer:
    """Random mutation (probability ``mutation_rate``, Gaussian of ``mutation_scale``) and
    interpolating crossover."""

    def __init__(self, mutation_rate: float = 0.1, mutation_scale: float = 0.05) -> None:
        self.mutation_rate = mutation_rate
        self.mutation_scale = mutation_scale

    def mutate(self, vector: np.ndarray) -> np.ndarray:
        """``vector`` plus Gaussian noise with probability ``mutation_rate``, else unchanged."""
        vector = np.asarray(vector)
        if np.random.random() < self.mutation_rate:
            return vector + np.random.normal(0, self.mutation_scale, vector.shape)
        return vector

    def crossover(self, parent_a: Any, parent_b: Any) -> Tuple[np.ndarray, np.ndarray]:
        """Two children blending the parents with a random ``alpha``."""
        a, b = np.asarray(parent_a), np.asarray(parent_b)
        alpha = np.random.random()
        return a * alpha + b * (1 - alpha), b * alpha + a * (1 - alpha)

    def ga(
        self,
        x0: Any,
        *,
        popsize: int = 50,
        elite: int = 2,
        init_sigma: float = 1.0,
        guard: Optional[SafetyGuard] = None,
        seed: int = 0,
    ) -> GA:
        """A native genetic algorithm (ask/tell, minimising) with this optimiser's
        mutation rate and scale: blend, uniform and arithmetic crossover with Gaussian or
        Cauchy mutation, chosen by a bandit, candidates repaired by ``guard``; the first
        population is ``x0`` and ``popsize - 1`` points around it (spread ``init_sigma``
        per coordinate)."""
        return GA(
            np.asarray(x0, dtype=np.float64),
            popsize=popsize,
            elite=elite,
            mutation_rate=min(max(self.mutation_rate, 0.0), 1.0),
            mutation_scale=max(self.mutation_scale, 1e-12),
            init_sigma=init_sigma,
            guard=guard,
            seed=seed,
        )

    def optimize(
        self,
        objective: Callable[[np.ndarray], float],
        x0: Any,
        *,
        generations: int = 100,
        popsize: int = 50,
        maximize: bool = False,
        guard: Optional[SafetyGuard] = None,
        seed: int = 0,
    ) -> Tuple[np.ndarray, float]:
        """Runs the native GA for ``generations`` on ``objective`` (one vector in, one
        number out) and returns ``(best vector, its objective value)``."""
        if generations < 1:
            raise ValueError(f"invalid argument `generations`: must be at least 1, got {generations}")
        ga = self.ga(x0, popsize=popsize, guard=guard, seed=seed)
        sign = -1.0 if maximize else 1.0
        for _ in range(generations):
            candidates = ga.ask()
            ga.tell(candidates, [sign * float(objective(c)) for c in candidates])
        x, f = ga.best
        return x, sign * f


class ObjectiveFunction:
    """Scores for guided evolution."""

    @staticmethod
    def novelty_score(vector: Any, memory_bank: Sequence[Any]) -> float:
        """Mean distance to the last 10 memories; 1.0 for an empty bank."""
        if len(memory_bank) == 0:
            return 1.0
        dists = [np.linalg.norm(np.asarray(vector) - np.asarray(m)) for m in memory_bank[-10:]]
        return float(np.mean(dists)) if dists else 0.0

    @staticmethod
    def coherence_score(vector: Any) -> float:
        """``exp(-(|v| - 1)^2)``: 1 for unit vectors, falling off as the norm drifts."""
        norm = np.linalg.norm(vector)
        return float(np.exp(-((norm - 1.0) ** 2)))

"""Mutation, crossover and the novelty / coherence objectives."""

from __future__ import annotations

from typing import Any, Sequence, Tuple

import numpy as np


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

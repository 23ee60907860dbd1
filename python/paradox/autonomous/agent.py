"""``AutoAgent``: dream -> evolve -> filter -> remember."""

from __future__ import annotations

import time
from typing import Any, List, Tuple

import numpy as np

from ..engine import LatentMemoryEngine
from ..evolution import GeneticOptimizer, ObjectiveFunction
from ..safety import GuardRail


class AutoAgent:
    """Evolves thoughts from its memory, keeps the safe, novel and coherent ones."""

    def __init__(self, name: str = "AutoMind_v1", dim: int = 64) -> None:
        self.name = name
        self.memory = LatentMemoryEngine(dimension=dim)
        self.optimizer = GeneticOptimizer(mutation_rate=0.3)
        self.safety = GuardRail(max_norm=3.0)
        self.population: List[np.ndarray] = []

    def seed_thought(self) -> np.ndarray:
        """A random initial thought."""
        return np.random.normal(0, 1, self.memory.dimension).astype(np.float32)

    def evolution_step(self) -> None:
        """One cycle: pick two parents, cross over, mutate, check safety, score, store
        the thoughts scoring above 1.2 (novelty + coherence)."""
        if self.memory.count == 0:
            parents = [self.seed_thought(), self.seed_thought()]
        else:
            vectors = self.memory.vectors
            parents = [vectors[np.random.randint(self.memory.count)].copy() for _ in range(2)]
        child1, child2 = self.optimizer.crossover(parents[0], parents[1])
        candidates = [self.optimizer.mutate(child1), self.optimizer.mutate(child2)]
        sample: Any = self.memory.vectors[:10].copy() if self.memory.count > 0 else []
        approved: List[Tuple[np.ndarray, float]] = []
        for candidate in candidates:
            safe, message = self.safety.check(candidate)
            if not safe:
                print(f"[Safety] Blocked dangerous thought: {message}")
                candidate = self.safety.sanitize(candidate)
            score = ObjectiveFunction.novelty_score(candidate, sample) + ObjectiveFunction.coherence_score(candidate)
            if score > 1.2:
                approved.append((candidate, score))
        for thought, score in approved:
            self.memory.add(thought, {"origin": "evolution", "score": float(score)})
            print(f"[{self.name}] Evolved new idea! Score: {score:.2f}")

    def run_autonomous(self, cycles: int = 5) -> None:
        """Runs ``cycles`` evolution steps."""
        print(f"[{self.name}] Starting Autonomous Loop...")
        for i in range(cycles):
            print(f"--- Cycle {i + 1} ---")
            self.evolution_step()
            time.sleep(0.1)

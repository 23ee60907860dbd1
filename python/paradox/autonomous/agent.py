"""``AutoAgent``: dream -> evolve -> filter -> remember (paradoxlf 0.17), its evolution run by
the native genetic algorithm of ``paradox.evolution``."""

from __future__ import annotations

import time
from typing import Any, List, Optional, Tuple

import numpy as np

from ..engine import LatentMemoryEngine
from ..evolution import GA, GeneticOptimizer, ObjectiveFunction
from ..safety import GuardRail


class AutoAgent:
    """Evolves thoughts from its memory, keeps the safe, novel and coherent ones."""

    def __init__(self, name: str = "AutoMind_v1", dim: int = 64) -> None:
        self.name = name
        self.memory = LatentMemoryEngine(dimension=dim)
        self.optimizer = GeneticOptimizer(mutation_rate=0.3)
        self.safety = GuardRail(max_norm=3.0)
        self.population: List[np.ndarray] = []
        self._ga: Optional[GA] = None

    def seed_thought(self) -> np.ndarray:
        """A random initial thought."""
        return np.random.normal(0, 1, self.memory.dimension).astype(np.float32)

    def evolution_step(self) -> None:
        """One cycle: the native GA (this agent's ``optimizer`` settings, candidates kept
        inside the ``safety`` guard's norm and regions) proposes thoughts, each is scored by
        novelty against up to 10 memories plus coherence, the scores are told back, and the
        thoughts scoring above 1.2 are stored. The first cycle scores a population of four:
        the first memory (or a random thought scaled to unit length) and three points
        around it at a spread of about 1 in all; each later cycle two offspring, as many
        as 0.17's crossover made."""
        if self._ga is None:
            if self.memory.count > 0:
                start = self.memory.vectors[0].astype(np.float64)
            else:
                thought = self.seed_thought().astype(np.float64)
                start = thought / max(float(np.linalg.norm(thought)), 1e-12)
            self._ga = self.optimizer.ga(
                start,
                popsize=4,
                elite=2,
                init_sigma=1.0 / np.sqrt(self.memory.dimension),
                guard=self.safety.guard,
                seed=int(np.random.randint(2**31)),
            )
        candidates = self._ga.ask()
        sample: Any = self.memory.vectors[:10].copy() if self.memory.count > 0 else []
        scores = [
            ObjectiveFunction.novelty_score(c, sample) + ObjectiveFunction.coherence_score(c) for c in candidates
        ]
        self._ga.tell(candidates, [-s for s in scores])
        approved: List[Tuple[np.ndarray, float]] = [
            (c.astype(np.float32), s) for c, s in zip(candidates, scores) if s > 1.2
        ]
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

"""``GuardRail``: norm limit and forbidden regions (paradoxlf 0.17), over the native
``SafetyGuard``."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

from .._native import SafetyGuard

#: Distance within which a vector is too close to a forbidden region (0.17's value).
FORBIDDEN_RADIUS = 0.5


class GuardRail:
    """Rejects vectors longer than ``max_norm`` or within 0.5 of a forbidden region."""

    def __init__(self, max_norm: float = 5.0, forbidden_regions: Optional[Sequence[Any]] = None) -> None:
        self.max_norm = max_norm
        self.forbidden_regions = list(forbidden_regions) if forbidden_regions else []
        #: The same constraints as a native guard: pass it to ``GA(guard=...)``.
        self.guard = SafetyGuard(
            max_norm=float(max_norm),
            forbidden=[(np.asarray(r, dtype=np.float64), FORBIDDEN_RADIUS) for r in self.forbidden_regions],
        )

    def check(self, vector: Any) -> Tuple[bool, str]:
        """``(True, "Safe")`` or ``(False, reason)``."""
        vector = np.asarray(vector)
        norm = np.linalg.norm(vector)
        if norm > self.max_norm:
            return False, f"Magnitude Violation ({norm:.2f} > {self.max_norm})"
        for region in self.forbidden_regions:
            if np.linalg.norm(vector - np.asarray(region)) < FORBIDDEN_RADIUS:
                return False, "Forbidden Concept Proximity"
        return True, "Safe"

    def sanitize(self, vector: Any) -> Any:
        """Scales ``vector`` down to ``max_norm`` when longer."""
        norm = np.linalg.norm(vector)
        if norm > self.max_norm:
            return np.asarray(vector) * (self.max_norm / norm)
        return vector

    def repair(self, vector: Any) -> np.ndarray:
        """The nearest allowed vector: scaled to ``max_norm`` and pushed out of every
        forbidden region (``sanitize`` only fixes the norm, as in 0.17)."""
        return self.guard.repair(np.asarray(vector, dtype=np.float64))

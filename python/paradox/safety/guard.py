"""``GuardRail``: norm limit and forbidden regions."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np


class GuardRail:
    """Rejects vectors longer than ``max_norm`` or within 0.5 of a forbidden region."""

    def __init__(self, max_norm: float = 5.0, forbidden_regions: Optional[Sequence[Any]] = None) -> None:
        self.max_norm = max_norm
        self.forbidden_regions = list(forbidden_regions) if forbidden_regions else []

    def check(self, vector: Any) -> Tuple[bool, str]:
        """``(True, "Safe")`` or ``(False, reason)``."""
        vector = np.asarray(vector)
        norm = np.linalg.norm(vector)
        if norm > self.max_norm:
            return False, f"Magnitude Violation ({norm:.2f} > {self.max_norm})"
        for region in self.forbidden_regions:
            if np.linalg.norm(vector - np.asarray(region)) < 0.5:
                return False, "Forbidden Concept Proximity"
        return True, "Safe"

    def sanitize(self, vector: Any) -> Any:
        """Scales ``vector`` down to ``max_norm`` when longer."""
        norm = np.linalg.norm(vector)
        if norm > self.max_norm:
            return np.asarray(vector) * (self.max_norm / norm)
        return vector

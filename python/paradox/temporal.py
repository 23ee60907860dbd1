"""Trajectories of latent vectors over time: velocity, speed, prediction, curvature.

Also importable as ``paradox.media.temporal`` (the 0.17 path); both are the same class.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class LatentTrajectory:
    """A sequence of latent vectors of shape ``(T, D)``, ``T >= 2``."""

    def __init__(self, vectors: Any) -> None:
        self.vectors = np.array(vectors, dtype=np.float32)
        if self.vectors.ndim != 2:
            raise ValueError(f"Trajectory expects a (T, D) array of vectors, got shape {self.vectors.shape}.")
        if len(self.vectors) < 2:
            raise ValueError("Trajectory requires at least 2 points.")

    def velocity(self) -> np.ndarray:
        """Change between consecutive steps, shape ``(T-1, D)``."""
        return np.diff(self.vectors, axis=0)

    def speed(self) -> np.ndarray:
        """Length of each velocity, shape ``(T-1,)``."""
        return np.linalg.norm(self.velocity(), axis=1)

    def predict_next(self, steps: int = 1, method: str = "linear") -> np.ndarray:
        """The next ``steps`` positions, shape ``(steps, D)``.

        ``"linear"`` continues the last velocity; ``"average"`` the mean velocity.
        """
        current = self.vectors[-1]
        if method == "linear":
            velocity = self.vectors[-1] - self.vectors[-2]
        elif method == "average":
            velocity = np.mean(self.velocity(), axis=0)
        else:
            raise ValueError(f"Unknown method: {method}")
        return np.array([current + velocity * i for i in range(1, steps + 1)])

    def curvature(self) -> float:
        """Mean angle (radians) between consecutive velocities; 0.0 below 3 points."""
        if len(self.vectors) < 3:
            return 0.0
        velocity = self.velocity()
        angles = []
        for v1, v2 in zip(velocity[:-1], velocity[1:]):
            n1, n2 = np.linalg.norm(v1), np.linalg.norm(v2)
            if n1 == 0 or n2 == 0:
                angles.append(0.0)
                continue
            cosine = np.clip(np.dot(v1, v2) / (n1 * n2), -1.0, 1.0)
            angles.append(float(np.arccos(cosine)))
        return float(np.mean(angles))

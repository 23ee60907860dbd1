"""The 0.17 path of :class:`paradox.temporal.LatentTrajectory` (the same class)."""

from ..temporal import LatentTrajectory

__all__ = ["LatentTrajectory"]

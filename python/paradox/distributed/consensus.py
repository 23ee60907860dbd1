"""``LatentConsensus``: merging the opinions of several shards."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np


class LatentConsensus:
    """Averages, weighted averages and outlier detection over vectors."""

    @staticmethod
    def average_consensus(vectors: Sequence[Any]) -> Optional[np.ndarray]:
        """The mean vector; None for no vectors."""
        if len(vectors) == 0:
            return None
        return np.mean(np.asarray(vectors), axis=0)

    @staticmethod
    def weighted_consensus(vectors: Sequence[Any], weights: Sequence[float]) -> np.ndarray:
        """The ``weights``-weighted mean."""
        if len(vectors) != len(weights):
            raise ValueError("Vectors and weights must match")
        return np.average(np.asarray(vectors), axis=0, weights=weights)

    @staticmethod
    def detect_outliers(vectors: Sequence[Any], threshold: float = 0.2) -> Tuple[np.ndarray, List[int]]:
        """``(refined_center, outlier_indices)``: vectors farther than ``threshold`` from the
        mean are outliers; the center is the mean of the others (of all if none remain)."""
        array = np.asarray(vectors)
        center = np.mean(array, axis=0)
        dists = np.linalg.norm(array - center, axis=1)
        inliers = dists < threshold
        outliers = [int(i) for i in np.nonzero(~inliers)[0]]
        refined = np.mean(array[inliers], axis=0) if inliers.any() else center
        return refined, outliers

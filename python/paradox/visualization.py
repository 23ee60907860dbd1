"""2-D views of the memory (0.17 module). Needs scikit-learn and matplotlib, imported
only when used."""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import numpy as np

logger = logging.getLogger("ParadoxViz")


class LatentVisualizer:
    """Projects a :class:`LatentMemoryEngine`'s vectors to 2-D or 3-D."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def reduce_dimensions(self, method: str = "pca", n_components: int = 2) -> Optional[np.ndarray]:
        """PCA or t-SNE projection, shape ``(count, n_components)``; the vectors themselves
        when there are fewer than ``n_components``; None without scikit-learn."""
        vectors = np.asarray(self.engine.vectors)
        if len(vectors) < n_components:
            logger.warning("Not enough data to perform reduction.")
            return vectors
        if method not in ("pca", "tsne"):
            raise ValueError("Unknown method. Use 'pca' or 'tsne'.")
        try:
            from sklearn.decomposition import PCA  # type: ignore[import-not-found]
            from sklearn.manifold import TSNE  # type: ignore[import-not-found]
        except ImportError:
            logger.error("scikit-learn is required for visualization. pip install scikit-learn")
            return None
        reducer = PCA(n_components=n_components) if method == "pca" else TSNE(n_components=n_components)
        return reducer.fit_transform(vectors)

    def plot_2d(
        self, method: str = "pca", labels: Optional[Sequence[str]] = None, output_file: Optional[str] = None
    ) -> None:
        """Scatter plot of the memory; saved to ``output_file`` or shown."""
        try:
            import matplotlib.pyplot as plt  # type: ignore[import-not-found]
        except ImportError:
            logger.error("matplotlib is required for plotting. pip install matplotlib")
            return
        points = self.reduce_dimensions(method=method, n_components=2)
        if points is None:
            return
        plt.figure(figsize=(10, 8))
        plt.scatter(points[:, 0], points[:, 1], alpha=0.7, c="cyan", edgecolors="k")
        if labels:
            for i, text in enumerate(labels):
                if i < len(points):
                    plt.annotate(text, (points[i, 0], points[i, 1]), fontsize=8)
        plt.title(f"Paradox Latent Space ({method.upper()})")
        plt.xlabel("Dim 1")
        plt.ylabel("Dim 2")
        plt.grid(True, linestyle="--", alpha=0.3)
        if output_file:
            plt.savefig(output_file)
            logger.info("Plot saved to %s", output_file)
        else:
            plt.show()

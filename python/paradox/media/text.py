"""Text encoders."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..encoder import BaseEncoder


class SimpleTextEncoder(BaseEncoder):
    """Character-frequency hashing into ``dimension`` buckets, L2-normalised. For tests:
    it captures no meaning (use :class:`TransformerTextEncoder` for that)."""

    def __init__(self, dimension: int = 64) -> None:
        super().__init__(dimension)

    def encode(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dimension, dtype=np.float32)
        for char in text:
            vec[ord(char) % self.dimension] += 1.0
        norm = np.linalg.norm(vec)
        return vec / norm if norm > 0 else vec


class TransformerTextEncoder(BaseEncoder):
    """Sentence-transformers embeddings (``pip install sentence-transformers``)."""

    def __init__(self, model_name: str = "all-MiniLM-L6-v2", dimension: Optional[int] = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
        except ImportError:
            raise ImportError("Please install 'sentence-transformers' to use this encoder.") from None
        self.model = SentenceTransformer(model_name)
        model_dimension = self.model.get_sentence_embedding_dimension()
        if dimension and model_dimension != dimension:
            print(f"Warning: Model dimension {model_dimension} does not match requested {dimension}.")
        super().__init__(model_dimension)

    def encode(self, text: Any) -> Any:
        return self.model.encode(text)

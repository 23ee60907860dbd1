"""Videos as sequences of image vectors."""

from __future__ import annotations

from typing import Any, List, Sequence

import numpy as np

from ..decoder import BaseDecoder
from ..encoder import BaseEncoder
from .image import SimpleImageDecoder, SimpleImageEncoder


class SimpleVideoEncoder(BaseEncoder):
    """Encodes each frame with :class:`SimpleImageEncoder`: shape ``(frames, dimension)``."""

    def __init__(self, width: int = 64, height: int = 64) -> None:
        self.image_encoder = SimpleImageEncoder(width, height)
        super().__init__(dimension=self.image_encoder.dimension)

    def encode(self, frames_list: Sequence[Any]) -> np.ndarray:
        return np.array([self.image_encoder.encode(frame) for frame in frames_list])


class SimpleVideoDecoder(BaseDecoder):
    """Decodes each row into a PIL image."""

    def __init__(self, width: int = 64, height: int = 64) -> None:
        self.image_decoder = SimpleImageDecoder(width, height)
        super().__init__(dimension=self.image_decoder.dimension)

    def decode(self, latent_sequence: Any) -> List[Any]:
        return [self.image_decoder.decode(vec) for vec in latent_sequence]


def latent_interpolate(vec_a: Any, vec_b: Any, steps: int = 10) -> np.ndarray:
    """``steps`` evenly spaced blends from ``vec_a`` to ``vec_b`` (both included)."""
    a, b = np.asarray(vec_a), np.asarray(vec_b)
    if steps == 1:
        return np.array([a])
    return np.array([a * (1 - i / (steps - 1)) + b * (i / (steps - 1)) for i in range(steps)])

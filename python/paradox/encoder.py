"""Encoders: turn raw data into latent vectors (paradoxlf 0.17 module)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class BaseEncoder(ABC):
    """Base class: ``encode(data)`` returns a vector of shape ``(dimension,)``."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension

    @abstractmethod
    def encode(self, data: Any) -> Any:
        """Convert input data into a latent vector."""


class IdentityEncoder(BaseEncoder):
    """The data already is a vector: returns it as float32."""

    def encode(self, data: Any) -> np.ndarray:
        return np.array(data, dtype=np.float32)


class RandomEncoder(BaseEncoder):
    """Ignores the data and returns a random vector (for tests)."""

    def encode(self, data: Any) -> np.ndarray:
        return np.random.randn(self.dimension).astype(np.float32)

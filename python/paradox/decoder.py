"""Decoders: reconstruct data from latent vectors (paradoxlf 0.17 module)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class BaseDecoder(ABC):
    """Base class: ``decode(vector)`` reconstructs data."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension

    @abstractmethod
    def decode(self, vector: Any) -> Any:
        """Reconstruct data from a latent vector."""


class IdentityDecoder(BaseDecoder):
    """Returns the vector unchanged."""

    def decode(self, vector: Any) -> Any:
        return vector

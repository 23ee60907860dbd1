"""Latent arithmetic: blend, add, subtract, analogy, noise (paradoxlf 0.17 ``ParadoxMixer``).

Works on NumPy arrays and torch tensors alike (operator overloading); lists and tuples
are turned into NumPy arrays first (0.17 failed on them).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch")


def _as_array(value: Any) -> Any:
    if isinstance(value, np.ndarray) or _is_torch(value):
        return value
    return np.asarray(value)


class ParadoxMixer:
    """Advanced latent-space operations (blending, arithmetic, superposition)."""

    @classmethod
    def interpolate(cls, vec_a: Any, vec_b: Any, ratio: float = 0.5) -> Any:
        """``vec_a * (1 - ratio) + vec_b * ratio``."""
        a, b = _as_array(vec_a), _as_array(vec_b)
        return a * (1 - ratio) + b * ratio

    @classmethod
    def add(cls, vec_a: Any, vec_b: Any) -> Any:
        """``vec_a + vec_b``."""
        return _as_array(vec_a) + _as_array(vec_b)

    @classmethod
    def subtract(cls, vec_a: Any, vec_b: Any) -> Any:
        """``vec_a - vec_b``."""
        return _as_array(vec_a) - _as_array(vec_b)

    @classmethod
    def analogy(cls, a: Any, b: Any, c: Any) -> Any:
        """``b - a + c``: "a is to b as c is to ?"."""
        return _as_array(b) - _as_array(a) + _as_array(c)

    @classmethod
    def noise(cls, vec: Any, magnitude: float = 0.1) -> Any:
        """``vec`` plus Gaussian noise of standard deviation ``magnitude``."""
        vec = _as_array(vec)
        if _is_torch(vec):
            import torch  # type: ignore[import-not-found]

            return vec + torch.randn_like(vec) * magnitude
        return vec + np.random.normal(0, magnitude, vec.shape)

"""A self-evolving agent loop (0.17 module)."""

from .agent import AutoAgent

__all__ = ["AutoAgent"]

"""Safety constraints on latent vectors (0.17 module)."""

from .guard import GuardRail

__all__ = ["GuardRail"]

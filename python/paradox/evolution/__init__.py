"""Genetic operators and objectives in latent space (0.17 module)."""

from .optimizer import GeneticOptimizer, ObjectiveFunction

__all__ = ["GeneticOptimizer", "ObjectiveFunction"]

"""The Poisson-Gaussian noise model nl-means stabilises with (it lives in :mod:`microrestore.engine.noise_model`)."""

from __future__ import annotations

from microrestore.engine.noise_model import (
    NoiseEstimationError,
    NoiseModel,
    estimate_poisson_gaussian,
    flat_block_stats,
    gat_forward,
    gat_inverse,
)

__all__ = [
    "NoiseEstimationError",
    "NoiseModel",
    "estimate_poisson_gaussian",
    "flat_block_stats",
    "gat_forward",
    "gat_inverse",
]

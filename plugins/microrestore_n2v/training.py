"""Training Noise2Void on the shared engine.

Each step draws noisy patches, masks about 0.2 % of their pixels (stratified), replaces each masked pixel by a
random neighbour within ``neighborhood_radius`` (never itself) and trains the U-Net to predict the original
noisy values at the masked pixels only. Because the network never sees a pixel's own value when it is scored
on it, and the noise is independent between pixels, it learns the expected clean value (Krull et al. 2019).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import torch

from microrestore.plugin_api import (
    InputError,
    SingleNetworkTask,
    TrainingData,
    TrainRequest,
    fit_patch_shape,
    load_images,
    options_sampler,
    samples_from_image,
)
from microrestore_n2v.config import N2VConfig
from microrestore_n2v.masking import blind_spot_batch


def masked_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Mean squared (or absolute) error over the masked pixels only."""
    error = (pred - target).abs() if kind == "mae" else (pred - target) ** 2
    return (error * mask).sum() / mask.sum().clamp_min(1.0)


class N2VTask(SingleNetworkTask):
    """One Noise2Void step: forward on the masked input, loss on the masked pixels."""

    def losses(self, batch: Any, autocast: contextlib.AbstractContextManager[Any]) -> dict[str, torch.Tensor]:
        """The masked loss of a batch of (masked input, original, mask)."""
        masked, target, mask = batch
        with autocast:
            pred = self.networks["net"](masked)
        return {"loss": masked_loss(pred.float(), target, mask, self.config.loss)}


def prepare(request: TrainRequest, config: N2VConfig) -> TrainingData:
    """Noisy images normalised with their own background and scale, as blind-spot batches."""
    images = load_images(request.source, axes=request.axes)
    normalizer = config.background_normalizer()
    samples: list[np.ndarray] = []
    fitted = []
    for image in images:
        params = normalizer.fit(image.data)
        samples += [normalizer.apply(s, params) for s in samples_from_image(image, config.ndim)]
        fitted.append({"file": str(image.path), **params.to_dict()})
    wanted = config.patch_shape(config.ndim)
    multiple = 2**config.depth
    patch = tuple(p - p % multiple for p in fit_patch_shape(wanted, samples))
    if min(patch) < multiple:
        raise InputError(f"the images are too small for a U-Net of depth {config.depth} (patches of {wanted})")
    sampler, plain_validation = options_sampler(config, samples, None, patch)

    def sample(rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        patches, _ = sampler.sample(rng, batch_size)
        return blind_spot_batch(patches, rng, config.masked_percent, config.neighborhood_radius)

    validation = None
    if plain_validation is not None:
        rng = np.random.default_rng([config.seed, 8])
        validation = blind_spot_batch(plain_validation[0], rng, config.masked_percent, config.neighborhood_radius)
    provenance = {
        "background": fitted,
        "masked_pixels_per_patch": round(math.prod(patch) * config.masked_percent / 100.0),
    }
    axes = "ZYX" if config.ndim == 3 else "YX"
    return TrainingData(
        sample, normalizer.to_dict(), axes, validation, images, {"patch_shape": list(patch)}, provenance
    )

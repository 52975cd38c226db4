"""Training Noise2Void with the shared engine.

Each step draws noisy patches, masks about 0.2 % of their pixels (stratified), replaces each masked pixel by a
random neighbour within ``neighborhood_radius`` (never itself) and trains the U-Net to predict the original
noisy values at the masked pixels only. Because the network never sees a pixel's own value when it is scored
on it, and the noise is independent between pixels, it learns the expected clean value (Krull et al. 2019).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microrestore import __version__
from microrestore.configs import validate
from microrestore.engine.datasets import load_images, samples_from_image
from microrestore.engine.domain import describe
from microrestore.engine.modeldir import save_model
from microrestore.engine.patches import fit_patch_shape, training_sampler
from microrestore.engine.trainer import Trainer, constant_then_linear_decay, trainer_config
from microrestore.errors import InputError
from microrestore.nn import UNet, fnsm_report
from microrestore.plugins.registry import TrainRequest
from microrestore_n2v.config import N2VConfig
from microrestore_n2v.masking import blind_spot_batch


def masked_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Mean squared (or absolute) error over the masked pixels only."""
    error = (pred - target).abs() if kind == "mae" else (pred - target) ** 2
    return (error * mask).sum() / mask.sum().clamp_min(1.0)


class N2VTask:
    """One Noise2Void step: forward on the masked input, loss on the masked pixels."""

    def __init__(self, network: torch.nn.Module, config: N2VConfig) -> None:
        self.networks = {"net": network}
        self.config = config

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam on the U-Net."""
        return {"net": torch.optim.Adam(self.networks["net"].parameters(), lr=self.config.learning_rate)}

    def lr_factor(self, step: int, total: int) -> float:
        """Constant, then linear decay to 10 % over the last part of training."""
        return 0.1 + 0.9 * constant_then_linear_decay(step, total, self.config.decay_start)

    def training_step(self, batch: Any, step: int, ctx: Any) -> dict[str, torch.Tensor]:
        """One optimiser step on a masked batch."""
        masked, target, mask = batch
        with ctx.autocast():
            pred = self.networks["net"](masked)
        loss = masked_loss(pred.float(), target, mask, self.config.loss)
        ctx.minimize(loss, "net")
        return {"loss": loss.detach()}

    def validation_step(self, batch: Any) -> dict[str, float]:
        """The masked loss on held-out masked patches."""
        masked, target, mask = batch
        return {"val_loss": float(masked_loss(self.networks["net"](masked).float(), target, mask, self.config.loss))}


def train(request: TrainRequest) -> Path:
    """Train Noise2Void on noisy images alone and write a model folder."""
    values = dict(request.config)
    if request.steps is not None:
        values["steps"] = request.steps
    config = validate(N2VConfig, values, "n2v configuration")
    if request.target:
        raise InputError("n2v is self-supervised: give only --source (noisy images), no --target")
    images = load_images(request.source, axes=request.axes)
    normalizer = config.background_normalizer()
    samples: list[np.ndarray] = []
    fitted = []
    for image in images:
        params = normalizer.fit(image.data)
        samples += [normalizer.apply(s, params) for s in samples_from_image(image, config.ndim)]
        fitted.append({"file": str(image.path), **params.to_dict()})
    wanted = (
        (config.patch_depth, config.patch_size, config.patch_size) if config.ndim == 3 else (config.patch_size,) * 2
    )
    patch = fit_patch_shape(wanted, samples)
    multiple = 2**config.depth
    patch = tuple(p - p % multiple for p in patch)
    if min(patch) < multiple:
        raise InputError(f"the images are too small for a U-Net of depth {config.depth} (patches of {wanted})")

    sampler, plain_validation = training_sampler(
        samples,
        None,
        patch,
        augment=config.augment,
        foreground_bias=config.foreground_bias,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
        validation_size=max(8, config.batch_size),
    )

    def sample(rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        patches, _ = sampler.sample(rng, batch_size)
        return blind_spot_batch(patches, rng, config.masked_percent, config.neighborhood_radius)

    validation = None
    if plain_validation is not None:
        rng = np.random.default_rng([config.seed, 8])
        validation = blind_spot_batch(plain_validation[0], rng, config.masked_percent, config.neighborhood_radius)

    torch.manual_seed(config.seed)
    network = UNet(
        in_channels=1,
        out_channels=1,
        ndim=config.ndim,
        depth=config.depth,
        base_filters=config.base_filters,
        kernel_size=config.kernel_size,
        residual=config.residual,
        fnsm=config.fnsm_spec(config.ndim, images[0].pixel_size.get("X")),
    )
    trainer = Trainer(
        N2VTask(network, config),
        sample,
        request.output,
        trainer_config(config, request.device, max_seconds=request.max_seconds),
        progress=request.progress,
        validation_batch=validation,
    )
    final = trainer.fit(resume=request.resume)
    saved = config.model_dump()
    saved["patch_shape"] = list(patch)
    save_model(
        request.output,
        method="n2v",
        networks={"net": network},
        network_specs={"net": network.spec},
        normalization=normalizer.to_dict(),
        config=saved,
        axes="ZYX" if config.ndim == 3 else "YX",
        provenance={
            "microrestore": __version__,
            "seed": config.seed,
            "steps": config.steps,
            "steps_run": trainer.step,
            "source": [str(p) for p in request.source],
            "domain": describe(images),
            "background": fitted,
            "masked_pixels_per_patch": round(math.prod(patch) * config.masked_percent / 100.0),
        },
        metrics={**final, **fnsm_report(network)},
    )
    return request.output

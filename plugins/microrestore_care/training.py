"""Training CARE with the shared engine."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from microrestore import __version__
from microrestore.configs import validate
from microrestore.engine.datasets import (
    check_pair_shapes,
    check_patch_fits,
    load_images,
    load_samples,
    pair_by_name,
    samples_from_image,
)
from microrestore.engine.domain import describe
from microrestore.engine.modeldir import save_model
from microrestore.engine.normalization import NoiseStabilizingNormalizer, PercentileNormalizer
from microrestore.engine.patches import training_sampler
from microrestore.engine.trainer import Trainer, constant_then_linear_decay, trainer_config
from microrestore.errors import InputError
from microrestore.nn import UNet, fnsm_report
from microrestore.plugins.registry import TrainRequest
from microrestore_care.config import CareConfig


class CareTask:
    """The CARE training step: one U-Net, Adam, MAE or MSE on normalised patches."""

    def __init__(self, network: torch.nn.Module, config: CareConfig) -> None:
        self.networks = {"net": network}
        self.config = config
        self.loss_fn = F.l1_loss if config.loss == "mae" else F.mse_loss

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam on the U-Net."""
        return {"net": torch.optim.Adam(self.networks["net"].parameters(), lr=self.config.learning_rate)}

    def lr_factor(self, step: int, total: int) -> float:
        """Constant, then linear decay to 10 % over the last part of training."""
        return 0.1 + 0.9 * constant_then_linear_decay(step, total, self.config.decay_start)

    def training_step(self, batch: Any, step: int, ctx: Any) -> dict[str, torch.Tensor]:
        """One optimiser step on a batch of (input, target) patches."""
        source, target = batch
        with ctx.autocast():
            prediction = self.networks["net"](source)
        loss = self.loss_fn(prediction.float(), target)
        ctx.minimize(loss, "net")
        return {"loss": loss.detach()}

    def validation_step(self, batch: Any) -> dict[str, float]:
        """Validation loss and PSNR on normalised patches (data range of the target)."""
        source, target = batch
        prediction = self.networks["net"](source).float()
        loss = float(self.loss_fn(prediction, target))
        mse = float(F.mse_loss(prediction, target))
        span = float(target.max() - target.min()) or 1.0
        return {"val_loss": loss, "val_psnr": 10 * math.log10(span**2 / max(mse, 1e-12))}


def train(request: TrainRequest) -> Path:
    """Train CARE on paired files and write a model folder."""
    values = dict(request.config)
    if request.steps is not None:
        values["steps"] = request.steps
    config = validate(CareConfig, values, "CARE configuration")
    if not request.target:
        raise InputError("CARE is supervised: give --target images paired with --source by file name")
    pairs = pair_by_name(request.source, request.target)
    source_images = load_images([p[0] for p in pairs], axes=request.axes)
    sources = [samples_from_image(image, config.ndim) for image in source_images]
    targets = load_samples([p[1] for p in pairs], ndim=config.ndim, axes=request.axes)
    check_pair_shapes(pairs, sources, targets)

    normalizer: NoiseStabilizingNormalizer | PercentileNormalizer
    if config.normalization == "noise":
        normalizer = NoiseStabilizingNormalizer()
    else:
        normalizer = PercentileNormalizer(low=config.percentile_low, high=config.percentile_high)
    src_norm, tgt_norm = [], []
    for s_list, t_list in zip(sources, targets):
        s_params = normalizer.fit(np.stack(s_list) if len(s_list) > 1 else s_list[0])
        if config.target_normalization == "source" or config.normalization == "noise":
            t_params = s_params
        else:
            t_params = normalizer.fit(np.stack(t_list) if len(t_list) > 1 else t_list[0])
        src_norm += [normalizer.apply(s, s_params) for s in s_list]
        tgt_norm += [normalizer.apply(t, t_params) for t in t_list]

    patch = (
        (config.patch_depth, config.patch_size, config.patch_size)
        if config.ndim == 3
        else (config.patch_size, config.patch_size)
    )
    check_patch_fits([p[0] for p in pairs], sources, patch, "source")
    check_patch_fits([p[1] for p in pairs], targets, patch, "target")
    sampler, validation = training_sampler(
        src_norm,
        tgt_norm,
        patch,
        augment=config.augment,
        foreground_bias=config.foreground_bias,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
        validation_size=max(8, config.batch_size),
    )

    torch.manual_seed(config.seed)
    network = UNet(
        in_channels=1,
        out_channels=1,
        ndim=config.ndim,
        depth=config.depth,
        base_filters=config.base_filters,
        kernel_size=config.kernel_size,
        residual=config.residual,
        fnsm=config.fnsm_spec(config.ndim, source_images[0].pixel_size.get("X")),
    )
    task = CareTask(network, config)
    trainer = Trainer(
        task,
        sampler.sample,
        request.output,
        trainer_config(config, request.device, max_seconds=request.max_seconds),
        progress=request.progress,
        validation_batch=validation,
    )
    final = trainer.fit(resume=request.resume)
    save_model(
        request.output,
        method="care",
        networks={"net": network},
        network_specs={"net": network.spec},
        normalization=normalizer.to_dict(),
        config=config.model_dump(),
        axes="ZYX" if config.ndim == 3 else "YX",
        provenance={
            "microrestore": __version__,
            "seed": config.seed,
            "steps": config.steps,
            "steps_run": trainer.step,
            "source": [str(p[0]) for p in pairs],
            "target": [str(p[1]) for p in pairs],
            "domain": describe(source_images),
        },
        metrics={**final, **fnsm_report(network)},
    )
    return request.output

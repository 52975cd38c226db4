"""Training COMI (out-of-focus correction with the multi-component weighted loss) on the shared engine.

Domain A holds the out-of-focus images (``--source``), domain B the in-focus ones. G maps A to B, F maps B to A;
D_A and D_B are COMI's BatchNorm PatchGANs; phi is the frozen feature network. For a batch ``(a, b)`` the
generator objective is the sum of both directions (all terms mean squared errors, as in the official code):

    A -> B:  w_adv [(D_B(G(a)) - 1)^2 + (D_A(F(G(a))) - 1)^2] + w_content (phi(G(a)) - phi(b))^2
             + w_cycle (phi(F(G(a))) - phi(a))^2 + w_identity (F(a) - a)^2
    B -> A:  w_adv [(D_A(F(b)) - 1)^2 + (D_B(G(F(b))) - 1)^2] + w_content (phi(F(b)) - phi(a))^2
             + w_cycle (phi(G(F(b))) - phi(b))^2 + w_identity (G(b) - b)^2

with weights adversarial : content : cycle : identity = 1e-3 : 1 : 1 : 1. In paired mode ``b`` is the in-focus
image of ``a``'s field (COMI as published); unpaired, ``a`` and ``b`` are drawn independently and the content
term compares with the generator's input (``content_target=input``) or is off (``none``, the default).

The official Keras code gives the fifth output (the identity term F(a)) no target: its ``train_on_batch`` hands
4 targets to a 5-output model and does not run. Here every term has its target: F(a) against a, G(b) against b.
The discriminators are trained with MSE against 1 (real) and 0 (generated): ``0.5 [(D(real) - 1)^2 + D(fake)^2]``
on the current G(a) and F(b) (no image pool, as COMI).
"""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from microrestore.configs import validate
from microrestore.engine.datasets import load_images
from microrestore.engine.domain import describe
from microrestore.engine.patches import PatchSampler
from microrestore.engine.trainer import constant_then_linear_decay, fit_and_save
from microrestore.losses.basic import lsgan_loss, mse
from microrestore.nn.features import feature_network
from microrestore.plugins.registry import TrainRequest
from microrestore_comi.config import ComiConfig
from microrestore_comi.data import prepare, split_fields
from microrestore_comi.networks import build_discriminator, build_generator

__all__ = ["ComiTask", "discriminator_loss", "train"]


def discriminator_loss(pred_real: torch.Tensor, pred_fake: torch.Tensor) -> torch.Tensor:
    """COMI's discriminator loss ``0.5 [mean (D(real) - 1)^2 + mean D(fake)^2]``."""
    return 0.5 * (lsgan_loss(pred_real, 1.0) + lsgan_loss(pred_fake, 0.0))


class ComiTask:
    """One COMI step: update G and F together (optimiser ``G``), then D_A and D_B (optimiser ``D``).

    Parameters
    ----------
    networks
        ``G`` (A -> B) and ``F`` (B -> A), :class:`~microrestore_comi.networks.ComiGenerator`; ``D_A``, ``D_B``.
    config
        The configuration.
    features
        The frozen feature network phi (moved to the training device on first use).
    paired_validation
        Whether the validation batch pairs each ``a`` with its in-focus ``b`` (then PSNR of G(a) against b).
    """

    def __init__(
        self,
        networks: dict[str, nn.Module],
        config: ComiConfig,
        features: nn.Module,
        paired_validation: bool = False,
    ) -> None:
        missing = {"G", "F", "D_A", "D_B"} - set(networks)
        if missing:
            raise ValueError(f"comi needs networks G, F, D_A and D_B; missing {sorted(missing)}")
        self.networks = networks
        self.config = config
        self.features = features
        self.content_target = config.resolved_content_target()
        self.paired_validation = paired_validation

    # -- the objective --------------------------------------------------------------------------------------

    def _phi(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def perceptual(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``mean (phi(pred) - phi(target))^2``; the target's features carry no gradient."""
        with torch.no_grad():
            wanted = self._phi(target.float())
        return mse(self._phi(pred.float()), wanted)

    def generator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor, autocast: Any = None) -> dict[str, Any]:
        """Both directions' terms, the weighted ``total``, and the fakes ``fake_b`` = G(a), ``fake_a`` = F(b)."""
        c = self.config
        net_g, net_f = self.networks["G"], self.networks["F"]
        d_a, d_b = self.networks["D_A"], self.networks["D_B"]
        context = autocast() if autocast is not None else contextlib.nullcontext()
        with context:
            fake_b = net_g.core(real_a)
            rec_a = net_f.core(fake_b)
            fake_a = net_f.core(real_b)
            rec_b = net_g.core(fake_a)
            adv_ab = lsgan_loss(d_b(fake_b), 1.0) + lsgan_loss(d_a(rec_a), 1.0)
            adv_ba = lsgan_loss(d_a(fake_a), 1.0) + lsgan_loss(d_b(rec_b), 1.0)
            idt_a = net_f.core(real_a) if c.weight_identity > 0 else None
            idt_b = net_g.core(real_b) if c.weight_identity > 0 else None
        zero = torch.zeros((), device=real_a.device)
        if self.content_target == "paired":
            content = self.perceptual(fake_b, real_b) + self.perceptual(fake_a, real_a)
        elif self.content_target == "input":
            content = self.perceptual(fake_b, real_a) + self.perceptual(fake_a, real_b)
        else:
            content = zero
        cycle = self.perceptual(rec_a, real_a) + self.perceptual(rec_b, real_b) if c.weight_cycle > 0 else zero
        identity = mse(idt_a, real_a) + mse(idt_b, real_b) if idt_a is not None and idt_b is not None else zero
        adversarial = adv_ab + adv_ba
        total = (
            c.weight_adversarial * adversarial
            + c.weight_content * content
            + c.weight_cycle * cycle
            + c.weight_identity * identity
        )
        return {
            "total": total,
            "adversarial": adversarial,
            "content": content,
            "cycle": cycle,
            "identity": identity,
            "fake_a": fake_a,
            "fake_b": fake_b,
        }

    # -- TrainingTask ---------------------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam (1e-4, betas 0.5, 0.99 by default) on G and F together, and on D_A and D_B together."""
        c = self.config
        self.features.to(next(self.networks["G"].parameters()).device)
        betas = (c.beta1, c.beta2)
        gen = [*self.networks["G"].parameters(), *self.networks["F"].parameters()]
        disc = [*self.networks["D_A"].parameters(), *self.networks["D_B"].parameters()]
        return {
            "G": torch.optim.Adam(gen, lr=c.learning_rate, betas=betas),
            "D": torch.optim.Adam(disc, lr=c.learning_rate, betas=betas),
        }

    def lr_factor(self, step: int, total: int) -> float:
        """Constant, then linear decay to 0 over the last ``1 - decay_start`` of the steps (COMI: the second half)."""
        return constant_then_linear_decay(step, total, self.config.decay_start)

    def _discriminators_trainable(self, flag: bool) -> None:
        for name in ("D_A", "D_B"):
            self.networks[name].requires_grad_(flag)

    def training_step(self, batch: Any, step: int, ctx: Any) -> dict[str, torch.Tensor]:
        """One generator update, then one discriminator update on the same step's G(a) and F(b)."""
        real_a, real_b = batch
        self._discriminators_trainable(False)
        try:
            gen = self.generator_losses(real_a, real_b, ctx.autocast)
            ctx.minimize(gen["total"], "G")
        finally:
            self._discriminators_trainable(True)
        d_a, d_b = self.networks["D_A"], self.networks["D_B"]
        fake_a, fake_b = gen["fake_a"].detach().float(), gen["fake_b"].detach().float()
        with ctx.autocast():
            loss_d_b = discriminator_loss(d_b(real_b), d_b(fake_b))
            loss_d_a = discriminator_loss(d_a(real_a), d_a(fake_a))
        ctx.minimize(loss_d_a + loss_d_b, "D")
        out = {k: v.detach() for k, v in gen.items() if k not in ("fake_a", "fake_b")}
        out["G"] = out.pop("total")
        out["D_A"] = loss_d_a.detach()
        out["D_B"] = loss_d_b.detach()
        return out

    def validation_step(self, batch: Any) -> dict[str, float]:
        """Perceptual cycle loss; with paired validation data also PSNR and content loss of G(a) against b."""
        real_a, real_b = batch
        fake_b = self.networks["G"].core(real_a).float()
        rec_a = self.networks["F"].core(fake_b).float()
        metrics = {"val_cycle": float(self.perceptual(rec_a, real_a))}
        if self.paired_validation:
            err = float(torch.mean((fake_b - real_b.float()) ** 2))
            metrics["val_psnr"] = 10 * math.log10(4.0 / max(err, 1e-12))  # data range 2 on [-1, 1]
            metrics["val_content"] = float(self.perceptual(fake_b, real_b))
        return metrics


def _note(message: str, show: bool) -> None:
    if show:
        print(f"comi: {message}", file=sys.stderr, flush=True)


def train(request: TrainRequest) -> Path:
    """Train COMI (``source``: out of focus; ``target``: in focus) and write a model folder."""
    values = dict(request.config)
    if request.steps is not None:
        values["steps"] = request.steps
    config = validate(ComiConfig, values, "comi configuration")
    features = feature_network(config.feature_network, layer=config.feature_layer, input_range=(-1.0, 1.0))
    data = prepare(config, request.source, request.target, request.axes)
    _note(
        f"{len(data.sources)} out-of-focus and {len(data.targets)} in-focus samples, "
        f"{'paired' if config.paired else 'unpaired'}, content target {config.resolved_content_target()}, "
        f"features {config.feature_network}, scaling {config.normalization} {data.resolved}",
        request.progress,
    )
    resolved = config.model_copy(update=data.resolved)
    patch = (config.patch_size, config.patch_size)
    paired_validation = False
    validation = None
    if config.paired:
        train_src, train_tgt, val_src, val_tgt = split_fields(
            data, config.validation_fraction, config.seed, config.patch_size
        )
        sampler = PatchSampler(
            train_src, train_tgt, patch, paired=True, augment=config.augment, foreground_bias=config.foreground_bias
        )
        if val_src:
            val_sampler = PatchSampler(val_src, val_tgt, patch, paired=True, augment=False)
            validation = val_sampler.sample(np.random.default_rng([config.seed, 7]), max(4, config.batch_size))
            paired_validation = True
    else:
        sampler = PatchSampler(
            data.sources,
            data.targets,
            patch,
            paired=False,
            augment=config.augment,
            foreground_bias=config.foreground_bias,
        )
    if validation is None:
        validation = sampler.sample(np.random.default_rng([config.seed, 7]), max(4, config.batch_size))

    torch.manual_seed(config.seed)
    networks: dict[str, nn.Module] = {
        "G": build_generator(config.ngf, config.n_blocks, config.channels, data.in_scale, data.in_offset),
        "F": build_generator(config.ngf, config.n_blocks, config.channels, data.in_scale, data.in_offset),
        "D_A": build_discriminator(config.ndf, config.channels),
        "D_B": build_discriminator(config.ndf, config.channels),
    }
    task = ComiTask(networks, resolved, features, paired_validation=paired_validation)
    return fit_and_save(
        task,
        sampler.sample,
        request,
        config,
        method="comi",
        networks={"G": networks["G"], "F": networks["F"]},
        normalization=data.normalization,
        axes="CYX" if config.channels > 1 else "YX",
        config=resolved.model_dump(),
        provenance={
            "source": data.source_files,
            "target": data.target_files,
            "domain": describe(load_images([Path(p) for p in dict.fromkeys(data.source_files)], axes=request.axes)),
        },
        validation_batch=validation,
    )

"""One c²GAN training step for the shared trainer: generators G and F, then discriminators D_A and D_B."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from torch import nn

from microrestore.engine.pools import ImagePool
from microrestore.engine.trainer import constant_then_linear_decay
from microrestore.errors import InputError
from microrestore.losses.basic import l1, lsgan_loss
from microrestore_c2gan.config import C2GANConfig
from microrestore_c2gan.losses import discriminator_loss, saliency_loss, saliency_mask, saliency_weight


class C2GANTask:
    """One c²GAN step: update G and F together (optimiser ``G``), then D_A and D_B (optimiser ``D``).

    Parameters
    ----------
    networks
        ``G`` (A -> B), ``F`` (B -> A), ``D_A`` and ``D_B``.
    config
        The configuration; ``threshold_a`` and ``threshold_b`` must be resolved (not ``None``) when the
        saliency weight is positive.
    paired_validation
        Whether the validation batch pairs each A image with its B image (then PSNR of G(a) against b).
    """

    def __init__(self, networks: dict[str, nn.Module], config: C2GANConfig, paired_validation: bool = False) -> None:
        missing = {"G", "F", "D_A", "D_B"} - set(networks)
        if missing:
            raise ValueError(f"c2gan needs networks G, F, D_A and D_B; missing {sorted(missing)}")
        self.networks = networks
        self.config = config
        self.paired_validation = paired_validation
        self.pool_a = ImagePool(config.pool_size)  # generated domain-A images F(b), for D_A
        self.pool_b = ImagePool(config.pool_size)  # generated domain-B images G(a), for D_B
        self.threshold_a = 127.5 if config.threshold_a is None else float(config.threshold_a)
        self.threshold_b = 127.5 if config.threshold_b is None else float(config.threshold_b)

    # -- masks and losses -----------------------------------------------------------------------------------

    def mask_a(self, z: torch.Tensor) -> torch.Tensor:
        """Domain A's mask function M_A."""
        c = self.config
        return saliency_mask(z, self.threshold_a, c.saliency_slope, c.polarity_a, c.mask_channel_mean)

    def mask_b(self, z: torch.Tensor) -> torch.Tensor:
        """Domain B's mask function M_B."""
        c = self.config
        return saliency_mask(z, self.threshold_b, c.saliency_slope, c.polarity_b, c.mask_channel_mean)

    def generator_losses(
        self, real_a: torch.Tensor, real_b: torch.Tensor, rho: float, autocast: Any = None
    ) -> dict[str, torch.Tensor]:
        """Forward both cycles and return the generator losses (``total`` included) and the fakes.

        Returns
        -------
        dict of str to torch.Tensor
            ``total``, ``gan_G``, ``gan_F``, ``cycle_A``, ``cycle_B``, ``identity``, ``saliency`` and the
            tensors ``fake_a`` (F(b)) and ``fake_b`` (G(a)).
        """
        c = self.config
        net_g, net_f = self.networks["G"], self.networks["F"]
        d_a, d_b = self.networks["D_A"], self.networks["D_B"]
        context = autocast() if autocast is not None else contextlib.nullcontext()
        with context:
            fake_b = net_g(real_a)
            rec_a = net_f(fake_b)
            fake_a = net_f(real_b)
            rec_b = net_g(fake_a)
            pred_fake_b = d_b(fake_b)
            pred_fake_a = d_a(fake_a)
            idt_b = net_g(real_b) if c.lambda_identity > 0 else None
            idt_a = net_f(real_a) if c.lambda_identity > 0 else None
        gan_g = lsgan_loss(pred_fake_b, c.real_label)
        gan_f = lsgan_loss(pred_fake_a, c.real_label)
        cycle_a = l1(rec_a, real_a)
        cycle_b = l1(rec_b, real_b)
        identity = torch.zeros((), device=real_a.device)
        if idt_a is not None and idt_b is not None:
            identity = c.lambda_cycle * c.lambda_identity * (l1(idt_b, real_b) + l1(idt_a, real_a))
        # G(a) belongs to domain B, F(b) to domain A: each is thresholded with its own domain's mask.
        sal = saliency_loss(real_a, fake_b, real_b, fake_a, self.mask_a, self.mask_b)
        total = gan_g + gan_f + c.lambda_cycle * (cycle_a + cycle_b) + identity + rho * sal
        return {
            "total": total,
            "gan_G": gan_g,
            "gan_F": gan_f,
            "cycle_A": cycle_a,
            "cycle_B": cycle_b,
            "identity": identity,
            "saliency": sal,
            "fake_a": fake_a,
            "fake_b": fake_b,
        }

    # -- TrainingTask ---------------------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam on G and F together (``G``), and on D_A and D_B together (``D``), as CycleGAN."""
        c = self.config
        betas = (c.beta1, c.beta2)
        gen = [*self.networks["G"].parameters(), *self.networks["F"].parameters()]
        disc = [*self.networks["D_A"].parameters(), *self.networks["D_B"].parameters()]
        return {
            "G": torch.optim.Adam(gen, lr=c.learning_rate, betas=betas),
            "D": torch.optim.Adam(disc, lr=c.learning_rate, betas=betas),
        }

    def lr_factor(self, step: int, total: int) -> float:
        """Constant, then linear decay to 0 from ``decay_start`` (both optimisers)."""
        return constant_then_linear_decay(step, total, self.config.decay_start)

    def _discriminators_trainable(self, flag: bool) -> None:
        for name in ("D_A", "D_B"):
            for p in self.networks[name].parameters():
                p.requires_grad_(flag)

    def training_step(self, batch: Any, step: int, ctx: Any) -> dict[str, torch.Tensor]:
        """One generator update, then one discriminator update on pooled fakes."""
        c = self.config
        real_a, real_b = batch
        rho = saliency_weight(step, ctx.total, c.saliency_weight, c.saliency_decay)

        self._discriminators_trainable(False)
        try:
            gen = self.generator_losses(real_a, real_b, rho, ctx.autocast)
            ctx.minimize(gen["total"], "G")
        finally:
            self._discriminators_trainable(True)

        # Pools hold float32 fakes; the randomness comes from the step's generator (exact resume).
        pooled_b = self.pool_b.query(gen["fake_b"].detach().float(), ctx.rng)
        pooled_a = self.pool_a.query(gen["fake_a"].detach().float(), ctx.rng)
        d_a, d_b = self.networks["D_A"], self.networks["D_B"]
        with ctx.autocast():
            pred_real_b, pred_fake_b = d_b(real_b), d_b(pooled_b)
            pred_real_a, pred_fake_a = d_a(real_a), d_a(pooled_a)
        loss_d_b = discriminator_loss(pred_real_b, pred_fake_b, c.real_label)
        loss_d_a = discriminator_loss(pred_real_a, pred_fake_a, c.real_label)
        ctx.minimize(loss_d_a + loss_d_b, "D")

        out = {k: v.detach() for k, v in gen.items() if k not in ("fake_a", "fake_b")}
        out["G"] = out.pop("total")
        out["D_A"] = loss_d_a.detach()
        out["D_B"] = loss_d_b.detach()
        out["rho"] = torch.tensor(rho, device=real_a.device)
        return out

    def validation_step(self, batch: Any) -> dict[str, float]:
        """Cycle loss on the fixed batch; with paired validation data also the PSNR of G(a) against b."""
        real_a, real_b = batch
        fake_b = self.networks["G"](real_a).float()
        fake_a = self.networks["F"](real_b).float()
        cycle = float(l1(self.networks["F"](fake_b), real_a) + l1(self.networks["G"](fake_a), real_b))
        metrics = {"val_cycle": cycle}
        if self.paired_validation:
            mse = float(torch.mean((fake_b - real_b.float()) ** 2))
            metrics["val_psnr"] = 10 * math.log10(4.0 / max(mse, 1e-12))  # data range 2 on [-1, 1]
        return metrics

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The two image pools, for checkpoints."""
        out = {f"pool_a/{k}": v for k, v in self.pool_a.state_tensors().items()}
        out.update({f"pool_b/{k}": v for k, v in self.pool_b.state_tensors().items()})
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore the image pools saved by :meth:`state_tensors`."""
        unknown = [k for k in tensors if not k.startswith(("pool_a/", "pool_b/"))]
        if unknown:
            raise InputError(f"c2gan checkpoint holds unknown task state {unknown[:3]}")
        for prefix, pool in (("pool_a/", self.pool_a), ("pool_b/", self.pool_b)):
            pool.load_state_tensors({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})

"""The pieces of c²GAN's objective: the saliency masks and loss, its decaying weight, the discriminator loss.

Pure functions, unit-tested one by one; :mod:`microrestore_c2gan.task` puts them together.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from microrestore.losses.basic import lsgan_loss


def saliency_mask(
    z: torch.Tensor, threshold: float, slope: float, polarity: str = "bright", channel_mean: bool = True
) -> torch.Tensor:
    """Soft foreground mask ``M_t(z) = sigmoid(k (z - (t / 127.5 - 1)))`` of images scaled to [-1, 1].

    Parameters
    ----------
    z
        Images ``(B, C, Y, X)`` in [-1, 1].
    threshold
        t in grey levels of the 0..255 scale.
    slope
        k, per unit of the [-1, 1] scale of ``z`` (c²GAN: 10; 127.5 times that is a slope of ``k`` per grey
        level, the earlier hard mask).
    polarity
        ``bright``: objects brighter than t are foreground; ``dark``: the mask is inverted,
        ``sigmoid(k ((t / 127.5 - 1) - z))`` (bright background, e.g. histology).
    channel_mean
        Average the channels first (one mask per image).

    Returns
    -------
    torch.Tensor
        Masks in (0, 1), ``(B, 1, Y, X)`` with ``channel_mean`` else ``(B, C, Y, X)``, float32.
    """
    if polarity not in ("bright", "dark"):
        raise ValueError(f"polarity must be 'bright' or 'dark', got {polarity!r}")
    z = z.float()
    if channel_mean:
        z = z.mean(dim=1, keepdim=True)
    sign = 1.0 if polarity == "bright" else -1.0
    return torch.sigmoid(sign * float(slope) * (z - (float(threshold) / 127.5 - 1.0)))


def saliency_loss(
    real_a: torch.Tensor,
    fake_b: torch.Tensor,
    real_b: torch.Tensor,
    fake_a: torch.Tensor,
    mask_a: Callable[[torch.Tensor], torch.Tensor],
    mask_b: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """c²GAN's saliency constraint ``mean|M_A(a) - M_B(G(a))| + mean|M_B(b) - M_A(F(b))|``.

    Parameters
    ----------
    real_a, fake_b
        A domain-A batch and its translation ``G(a)`` (a domain-B image: thresholded with ``mask_b``).
    real_b, fake_a
        A domain-B batch and its translation ``F(b)`` (a domain-A image: thresholded with ``mask_a``).
    mask_a, mask_b
        The mask functions of the two domains (:func:`saliency_mask` with each domain's threshold).

    Returns
    -------
    torch.Tensor
        Scalar, float32.
    """
    forward = torch.mean(torch.abs(mask_a(real_a) - mask_b(fake_b)))
    backward = torch.mean(torch.abs(mask_b(real_b) - mask_a(fake_a)))
    return forward + backward


def saliency_weight(step: int, total: int, rho0: float, decay: float = 6.0) -> float:
    """``rho(t) = rho0 exp(-decay t / T)`` for the 0-based step ``t`` of ``T``."""
    return float(rho0) * math.exp(-float(decay) * step / max(1, total))


def discriminator_loss(pred_real: torch.Tensor, pred_fake: torch.Tensor, real_label: float = 0.9) -> torch.Tensor:
    """LSGAN discriminator loss ``0.5 [mean (D(real) - label)^2 + mean D(fake)^2]``."""
    return 0.5 * (lsgan_loss(pred_real, real_label) + lsgan_loss(pred_fake, 0.0))

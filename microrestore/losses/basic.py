"""Losses shared across methods: pixel losses, SSIM, the rDL MSE-SSIM loss and GAN losses.

All losses return a scalar tensor (mean over every element) and compute in float32 even under autocast, so
that bf16/fp16 training does not lose precision in the reductions.
"""

from __future__ import annotations

import contextlib
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


def _fp32(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(t.float() for t in tensors)


def _no_autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except RuntimeError:  # a device type without autocast support
        return contextlib.nullcontext()


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error.

    Parameters
    ----------
    pred, target
        Tensors of the same shape.

    Returns
    -------
    torch.Tensor
        Scalar, float32.
    """
    pred, target = _fp32(pred, target)
    return F.l1_loss(pred, target)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error.

    Parameters
    ----------
    pred, target
        Tensors of the same shape.

    Returns
    -------
    torch.Tensor
        Scalar, float32.
    """
    pred, target = _fp32(pred, target)
    return F.mse_loss(pred, target)


def lsgan_loss(pred: torch.Tensor, target_value: float) -> torch.Tensor:
    """Least-squares GAN loss ``mean((pred - target_value)^2)`` (Mao et al. 2017).

    Parameters
    ----------
    pred
        Discriminator output (any shape, e.g. a PatchGAN map).
    target_value
        Label: 1 (or 0.9 with label smoothing) for real, 0 for fake.

    Returns
    -------
    torch.Tensor
        Scalar, float32.
    """
    (pred,) = _fp32(pred)
    return torch.mean((pred - float(target_value)) ** 2)


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    window = torch.exp(-(coords**2) / (2 * sigma**2))
    return window / window.sum()


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean structural similarity with a 2D Gaussian window (Wang et al. 2004), differentiable.

    The window is applied without padding ("valid"), as in ``tf.image.ssim`` and scikit-image with
    ``gaussian_weights=True``; it shrinks (keeping it odd) for images smaller than ``window_size``. Inputs of
    more than four dimensions (e.g. ``B, C, Z, Y, X``) are treated as stacks of 2D ``Y, X`` images.

    Parameters
    ----------
    pred, target
        Tensors ``(B, C, H, W)`` or ``(B, C, ..., H, W)`` of the same shape.
    data_range
        Dynamic range of the images (1 for images in [0, 1], 2 for [-1, 1]).
    window_size
        Gaussian window edge (odd).
    sigma
        Gaussian standard deviation in pixels.
    k1, k2
        Stabilising constants.

    Returns
    -------
    torch.Tensor
        Scalar in [-1, 1], float32.
    """
    if pred.shape != target.shape:
        raise ValueError(f"ssim: shapes differ, {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.ndim < 4:
        raise ValueError(f"ssim: expected (B, C, ..., H, W), got shape {tuple(pred.shape)}")
    with _no_autocast(pred.device):
        x, y = _fp32(pred, target)
        height, width = x.shape[-2:]
        x = x.reshape(-1, 1, height, width)
        y = y.reshape(-1, 1, height, width)
        size = min(window_size, height, width)
        size -= 1 - size % 2  # odd
        window = _gaussian_window(size, sigma, x.device)
        kernel_y = window.view(1, 1, size, 1)
        kernel_x = window.view(1, 1, 1, size)

        def blur(t: torch.Tensor) -> torch.Tensor:
            return F.conv2d(F.conv2d(t, kernel_y), kernel_x)

        # Filter the five maps in one batch: x, y, x*x, y*y, x*y.
        stacked = blur(torch.cat([x, y, x * x, y * y, x * y], dim=0))
        mu_x, mu_y, xx, yy, xy = stacked.chunk(5, dim=0)
        var_x = xx - mu_x**2
        var_y = yy - mu_y**2
        cov = xy - mu_x * mu_y
        c1 = (k1 * data_range) ** 2
        c2 = (k2 * data_range) ** 2
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
        return ssim_map.mean()


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """``1 - ssim(pred, target)``; see :func:`ssim`.

    Parameters
    ----------
    pred, target
        Tensors ``(B, C, ..., H, W)``.
    data_range
        Dynamic range of the images.

    Returns
    -------
    torch.Tensor
        Scalar in [0, 2], float32.
    """
    return 1.0 - ssim(pred, target, data_range=data_range)


def _minmax(t: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    low, high = t.min(), t.max()
    return (t - low) / torch.clamp(high - low, min=eps)


def mse_ssim_loss(
    pred: torch.Tensor, target: torch.Tensor, ssim_weight: float = 0.1, normalize: bool = True
) -> torch.Tensor:
    """Compute the rDL loss: ``MSE + ssim_weight * (1 - SSIM)`` after min-max normalisation.

    As in the official rDL/DFCAN code, prediction and target are each scaled to [0, 1] by their own
    minimum and maximum over the whole batch before both terms (SSIM with data range 1).

    Parameters
    ----------
    pred, target
        Tensors ``(B, C, ..., H, W)``.
    ssim_weight
        Weight of the SSIM term (0.1 in rDL).
    normalize
        Apply the min-max normalisation (``False``: use the values as they are, SSIM range 1).

    Returns
    -------
    torch.Tensor
        Scalar, float32.
    """
    pred, target = _fp32(pred, target)
    if normalize:
        pred, target = _minmax(pred), _minmax(target)
    return mse(pred, target) + ssim_weight * ssim_loss(pred, target, data_range=1.0)


class GANLoss(nn.Module):
    """Adversarial loss against a constant label.

    Parameters
    ----------
    mode
        ``lsgan``: mean squared error to the label (CycleGAN, c²GAN, COMI); ``vanilla``: binary cross-entropy
        on logits.
    real_label
        Label of real images (0.9 for c²GAN's one-sided label smoothing).
    fake_label
        Label of generated images.
    """

    def __init__(
        self, mode: Literal["lsgan", "vanilla"] = "lsgan", real_label: float = 1.0, fake_label: float = 0.0
    ) -> None:
        super().__init__()
        if mode not in ("lsgan", "vanilla"):
            raise ValueError(f"GAN loss mode must be 'lsgan' or 'vanilla', got {mode!r}")
        if not (math.isfinite(real_label) and math.isfinite(fake_label)):
            raise ValueError("GAN labels must be finite")
        self.mode = mode
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)

    def forward(self, pred: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        """Loss of discriminator output ``pred`` against the real or the fake label.

        Parameters
        ----------
        pred
            Discriminator output (raw scores; logits in ``vanilla`` mode).
        target_is_real
            Compare with the real label (``True``) or the fake one.

        Returns
        -------
        torch.Tensor
            Scalar, float32.
        """
        label = self.real_label if target_is_real else self.fake_label
        if self.mode == "lsgan":
            return lsgan_loss(pred, label)
        (pred,) = _fp32(pred)
        return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, label))

    def extra_repr(self) -> str:
        """Describe the settings in the module's repr."""
        return f"mode={self.mode!r}, real_label={self.real_label}, fake_label={self.fake_label}"

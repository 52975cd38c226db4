"""DFCAN, the deep Fourier channel-attention network (Qiao et al., Nat. Methods 2021), as rDL-SIM's SR module.

Layer for layer as the authors' rDL-SIM code (``src/models/DFCAN.py``):

- head: conv3 to ``channels`` (64), GELU;
- ``n_groups`` (4) residual groups, each ``n_fcab`` (4) FCABs and a skip over the group;
- FCAB: conv3, GELU, conv3, GELU, Fourier channel attention, plus the block input;
- Fourier channel attention (FCA): apodise the feature maps' borders, ``(|FFT| + 1e-8) ** 0.1``, fftshift, conv3
  to ``channels`` + ReLU, global average pool, 1x1 conv to ``channels // reduction`` + ReLU, 1x1 conv to
  ``channels`` + sigmoid, multiply the FCA's input by these weights;
- tail: conv3 to ``channels * scale**2`` (256) + GELU, pixel shuffle by ``scale`` (2), conv3 to
  ``out_channels`` (1), sigmoid.

The input is the 9 raw SIM frames as channels (min-max normalised), the output the SR image on the ``scale``x
grid. One deviation from the official code: it resizes the shifted spectrum to 128 x 128 before the conv (a
size fixed for its training patches), which distorts the spectrum of any other input size; here the spectrum is
used at its own size, so any input size works. The apodisation width (10 pixels) shrinks for inputs smaller than
twice that width.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from microrestore.nn.layers import make_activation

__all__ = ["DFCAN", "FCAB", "FCAResidualGroup", "FourierChannelAttention", "apodize2d"]


def apodize2d(x: torch.Tensor, width: int = 10) -> torch.Tensor:
    """Taper the borders of ``x`` so that opposite edges meet smoothly (fewer FFT edge artefacts).

    Over ``width`` pixels at each border, half of the difference between the mirrored opposite border and this
    one is added with a weight falling from about 1 to 0 (``1 - sin((l + 0.5) / width * pi / 2)``), as in the
    authors' ``apodize2d``: rows first, then columns.

    Parameters
    ----------
    x
        ``(..., H, W)`` tensor.
    width
        Border width in pixels; reduced to ``min(H, W) // 2`` for small inputs; 0 returns ``x``.

    Returns
    -------
    torch.Tensor
        The apodised tensor, same shape.
    """
    width = min(int(width), x.shape[-2] // 2, x.shape[-1] // 2)
    if width <= 0:
        return x
    steps = torch.arange(width, device=x.device, dtype=x.dtype)
    fact = 1.0 - torch.sin((steps + 0.5) / width * (math.pi / 2))
    for dim in (-2, -1):
        # row r within ``width`` of an edge moves by fact * (row mirrored across the centre - row r) / 2
        size = x.shape[dim]
        weight = torch.zeros(size, device=x.device, dtype=x.dtype)
        weight[:width] = fact
        weight[size - width :] = fact.flip(0)
        weight = weight.view(-1, 1) if dim == -2 else weight
        x = x + 0.5 * (x.flip(dim) - x) * weight
    return x


class FourierChannelAttention(nn.Module):
    """Channel attention whose weights are computed from the amplitude spectrum of the features.

    Parameters
    ----------
    channels
        Feature channels.
    reduction
        Reduction of the bottleneck 1x1 conv (at least one channel is kept).
    apodize
        Border width of the apodisation before the FFT.
    gamma
        Exponent applied to the amplitude spectrum (0.1: compresses its dynamic range).
    """

    def __init__(self, channels: int, reduction: int = 16, apodize: int = 10, gamma: float = 0.1) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.apodize = int(apodize)
        self.gamma = float(gamma)
        self.spectrum_conv = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.weights = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1), nn.Sigmoid()
        )

    def spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """``fftshift((|FFT(apodise(x))| + 1e-8) ** gamma)``, computed in float32."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            amplitude = torch.fft.fft2(apodize2d(x.float(), self.apodize)).abs()
            return torch.fft.fftshift((amplitude + 1e-8) ** self.gamma, dim=(-2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale each channel of ``x`` by its attention weight."""
        features = self.spectrum_conv(self.spectrum(x).to(x.dtype))
        return x * self.weights(self.pool(features))


class FCAB(nn.Module):
    """Fourier channel-attention block: ``x + FCA(GELU(conv(GELU(conv(x)))))``.

    Parameters
    ----------
    channels
        Feature channels.
    reduction, apodize, gamma
        Options of :class:`FourierChannelAttention`.
    """

    def __init__(self, channels: int, reduction: int = 16, apodize: int = 10, gamma: float = 0.1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            make_activation("gelu"),
            nn.Conv2d(channels, channels, 3, padding=1),
            make_activation("gelu"),
            FourierChannelAttention(channels, reduction, apodize, gamma),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + body(x)``."""
        return x + self.body(x)


class FCAResidualGroup(nn.Module):
    """``n_fcab`` FCABs with a skip over the group."""

    def __init__(
        self, channels: int, n_fcab: int = 4, reduction: int = 16, apodize: int = 10, gamma: float = 0.1
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(*[FCAB(channels, reduction, apodize, gamma) for _ in range(n_fcab)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + body(x)``."""
        return x + self.body(x)


class DFCAN(nn.Module):
    """Deep Fourier channel-attention network: raw SIM frames in, the SR image on the ``scale``x grid out.

    Parameters
    ----------
    in_channels
        Input channels: the raw frames (9 = 3 orientations x 3 phases).
    out_channels
        Output channels (1).
    channels
        Feature channels (64).
    n_groups
        Residual groups (4).
    n_fcab
        FCABs per group (4).
    reduction
        Channel reduction in the attention bottleneck (16).
    scale
        Upsampling factor of the pixel shuffle (2).
    apodize
        Border width of the apodisation in each FCA (10).
    gamma
        Exponent on the amplitude spectrum in each FCA (0.1).
    output_activation
        ``sigmoid`` (the authors') or any name of :func:`~microrestore.nn.layers.make_activation`.

    Attributes
    ----------
    size_multiple : int
        1.
    receptive_radius : int
        Receptive radius of the convolutions, in input pixels.
    is_local : bool
        False: the attention pools over the whole input.
    scale : int
        The upsampling factor.
    spec : dict
        Constructor arguments with ``name: "dfcan"``.
    """

    spec_name = "dfcan"

    def __init__(
        self,
        in_channels: int = 9,
        out_channels: int = 1,
        channels: int = 64,
        n_groups: int = 4,
        n_fcab: int = 4,
        reduction: int = 16,
        scale: int = 2,
        apodize: int = 10,
        gamma: float = 0.1,
        output_activation: str = "sigmoid",
    ) -> None:
        super().__init__()
        self.spec: dict[str, Any] = {
            "name": self.spec_name,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "channels": channels,
            "n_groups": n_groups,
            "n_fcab": n_fcab,
            "reduction": reduction,
            "scale": scale,
            "apodize": apodize,
            "gamma": gamma,
            "output_activation": output_activation,
        }
        if min(in_channels, out_channels, channels, scale) < 1 or min(n_groups, n_fcab) < 0:
            raise ValueError("channel counts and scale must be positive and group/block counts non-negative")
        if apodize < 0 or not gamma > 0:
            raise ValueError(f"apodize must be >= 0 and gamma > 0, got {apodize} and {gamma}")
        make_activation(output_activation)  # validate
        self.head = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), make_activation("gelu"))
        self.groups = nn.Sequential(
            *[FCAResidualGroup(channels, n_fcab, reduction, apodize, gamma) for _ in range(n_groups)]
        )
        self.tail = nn.Sequential(
            nn.Conv2d(channels, channels * scale**2, 3, padding=1),
            make_activation("gelu"),
            nn.PixelShuffle(scale),
            nn.Conv2d(channels, out_channels, 3, padding=1),
            make_activation(output_activation),
        )
        self.scale = int(scale)
        self.size_multiple = 1
        self.receptive_radius = 1 + 2 * n_groups * n_fcab + 1 + 1
        self.is_local = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_channels, H, W)`` to ``(B, out_channels, scale H, scale W)``."""
        if x.dim() != 4:
            raise ValueError(f"DFCAN expects a 4D tensor (B, C, H, W), got {tuple(x.shape)}")
        return self.tail(self.groups(self.head(x)))

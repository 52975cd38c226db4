"""PatchGAN discriminator (Isola et al.; the 70x70 discriminator of CycleGAN, c²GAN and COMI).

The default is the 70x70 PatchGAN: 4x4 stride-2 convs of 64 (no norm), 128 and 256 filters, a 4x4 stride-1
conv of 512 and a 4x4 stride-1 conv to one channel, with LeakyReLU(0.2) after every conv but the last. No
sigmoid: the LSGAN losses used by these methods compare the raw scores with the labels.

COMI's discriminator has one more stride-2 level: ``PatchGAN(widths=(64, 64, 128, 256, 512), norm="batch")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from microrestore.nn.layers import check_ndim, layer_class, make_norm
from microrestore.nn.resnet import init_weights

__all__ = ["PatchGAN"]


class PatchGAN(nn.Module):
    """Fully convolutional patch discriminator.

    Parameters
    ----------
    in_channels
        Channels of the judged image.
    ndf
        Filters of the first conv.
    n_layers
        Stride-2 convs (3 gives the 70x70 PatchGAN); widths ``ndf * min(2**i, 8)``.
    ndim
        2 or 3.
    norm
        ``instance``, ``batch`` or ``none``; never applied after the first conv.
    widths
        Explicit widths of all convs before the last one (overrides ``ndf`` and ``n_layers``): all but the last
        are stride 2, the last is stride 1.

    Attributes
    ----------
    receptive_field : int
        Side of the input patch that each output score sees (70 for the default).
    spec : dict
        Constructor arguments with ``name: "patchgan"``.
    """

    spec_name = "patchgan"

    def __init__(
        self,
        in_channels: int = 1,
        ndf: int = 64,
        n_layers: int = 3,
        ndim: int = 2,
        norm: str = "instance",
        widths: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.spec: dict[str, Any] = {
            "name": self.spec_name,
            "in_channels": in_channels,
            "ndf": ndf,
            "n_layers": n_layers,
            "ndim": ndim,
            "norm": norm,
            "widths": list(widths) if widths is not None else None,
        }
        self.ndim = check_ndim(ndim)
        make_norm(norm, 1, ndim)  # validate
        if widths is None:
            if n_layers < 1:
                raise ValueError(f"n_layers must be at least 1, got {n_layers}")
            widths = [ndf * min(2**i, 8) for i in range(n_layers + 1)]
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"widths needs at least two positive entries, got {widths}")
        conv = layer_class("conv", ndim)
        bias = norm != "batch"
        layers: list[nn.Module] = []
        channels = in_channels
        strides = [2] * (len(widths) - 1) + [1]
        for i, (width, stride) in enumerate(zip(widths, strides, strict=True)):
            first = i == 0
            layers.append(conv(channels, width, 4, stride=stride, padding=1, bias=bias or first))
            if not first:
                layers.append(make_norm(norm, width, ndim))
            layers.append(nn.LeakyReLU(0.2))
            channels = width
        layers.append(conv(channels, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

        field = 1
        for stride in reversed([*strides, 1]):
            field = (field - 1) * stride + 4
        self.receptive_field = field
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score map ``(B, 1, *patches)`` for images ``(B, in_channels, *spatial)``."""
        if x.dim() != self.ndim + 2:
            raise ValueError(f"PatchGAN(ndim={self.ndim}) expects a {self.ndim + 2}D tensor, got {tuple(x.shape)}")
        return self.model(x)

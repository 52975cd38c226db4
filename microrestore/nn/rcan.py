"""Residual channel-attention networks (RCAN) in the form used by rDL-SIM and TiS/SiS-rDL.

Following the authors' code (Qiao et al.):

- ``ChannelAttention``: global average pool, 1x1 conv to ``channels // reduction``, ReLU, 1x1 conv back,
  sigmoid, multiply. The pool is adaptive, so any input size works (the official 2D code fixes the size).
- ``RCAB``: conv3, act, conv3, act, channel attention, plus the block input. (The original RCAN of Zhang et
  al. has no activation after the second conv; rDL has one.)
- ``ResidualGroup``: ``n_rcab`` RCABs; the rDL-SIM 2D denoiser adds the group input (``skip=True``), the
  TiS-rDL RCAN-3D does not; ``tail_conv`` adds RCAN's conv before that skip.
- ``RCAN``: conv3 to ``channels`` (or an FNSM input fusion), ``n_groups`` groups, conv3 to
  ``tail_channels`` (256) + act, conv3 to ``out_channels`` + act (the official RCAN-3D ends with LeakyReLU).

The channel attention's global pool makes these networks non-local: tiled inference matches whole-image
inference only approximately (the blending hides the seams).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from microrestore.nn.layers import check_ndim, layer_class, make_activation

__all__ = ["RCAB", "RCAN", "ChannelAttention", "ResidualGroup"]


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention with adaptive average pooling.

    Parameters
    ----------
    channels
        Feature channels.
    reduction
        Channel reduction of the bottleneck (at least one channel is kept).
    ndim
        2 or 3.
    """

    def __init__(self, channels: int, reduction: int = 16, ndim: int = 2) -> None:
        super().__init__()
        check_ndim(ndim)
        conv = layer_class("conv", ndim)
        hidden = max(1, channels // reduction)
        self.pool = layer_class("adaptive_avg_pool", ndim)(1)
        self.weights = nn.Sequential(conv(channels, hidden, 1), nn.ReLU(), conv(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale each channel of ``x`` by its attention weight."""
        return x * self.weights(self.pool(x))


class RCAB(nn.Module):
    """Residual channel-attention block: ``x + CA(act(conv(act(conv(x)))))``.

    Parameters
    ----------
    channels
        Feature channels.
    reduction
        Channel-attention reduction.
    ndim
        2 or 3.
    act
        Activation name (``leaky_relu`` is LeakyReLU(0.2), as in rDL).
    kernel_size
        Conv kernel size (odd).
    """

    def __init__(
        self, channels: int, reduction: int = 16, ndim: int = 2, act: str = "leaky_relu", kernel_size: int = 3
    ) -> None:
        super().__init__()
        conv = layer_class("conv", ndim)
        pad = kernel_size // 2
        self.body = nn.Sequential(
            conv(channels, channels, kernel_size, padding=pad),
            make_activation(act),
            conv(channels, channels, kernel_size, padding=pad),
            make_activation(act),
            ChannelAttention(channels, reduction, ndim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + body(x)``."""
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """A chain of RCABs, optionally followed by a conv and a skip over the group.

    Parameters
    ----------
    channels
        Feature channels.
    n_rcab
        RCABs in the group.
    reduction
        Channel-attention reduction.
    ndim
        2 or 3.
    act
        Activation name.
    skip
        Add the group input to the group output (rDL-SIM 2D denoiser, RCAN).
    tail_conv
        A conv after the RCABs (RCAN; not in rDL).
    kernel_size
        Conv kernel size.
    """

    def __init__(
        self,
        channels: int,
        n_rcab: int = 5,
        reduction: int = 16,
        ndim: int = 2,
        act: str = "leaky_relu",
        skip: bool = False,
        tail_conv: bool = False,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [RCAB(channels, reduction, ndim, act, kernel_size) for _ in range(n_rcab)]
        if tail_conv:
            layers.append(layer_class("conv", ndim)(channels, channels, kernel_size, padding=kernel_size // 2))
        self.body = nn.Sequential(*layers)
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the RCABs (and the skip when enabled)."""
        y = self.body(x)
        return x + y if self.skip else y


class RCAN(nn.Module):
    """RCAN as in TiS/SiS-rDL (RCAN-3D for ``ndim=3``) with an optional FNSM input.

    Parameters
    ----------
    in_channels, out_channels
        Channels of the input and output.
    n_groups
        Residual groups (TiS/SiS-rDL: 3 groups x 5 RCABs).
    n_rcab
        RCABs per group.
    channels
        Feature channels (64).
    ndim
        2 or 3.
    act
        ``leaky_relu`` (rDL), ``relu`` (RCAN) or ``gelu``.
    reduction
        Channel-attention reduction (16).
    tail_channels
        Width of the conv before the output conv (256 in rDL).
    output_activation
        Apply ``act`` to the output as the authors' code does (LeakyReLU lets small negatives through).
    group_skip
        Skip over each residual group.
    long_skip
        Add the head features to the output of the last group.
    kernel_size
        Conv kernel size.
    fnsm
        ``None``, or keyword arguments of :class:`~microrestore.nn.fnsm.FNSM`: the head conv is then replaced
        by :class:`~microrestore.nn.fnsm.FNSMInput` (``conv(x) + conv(FNSM(x))`` in 3D, as RCAN-NSM-3D).

    Attributes
    ----------
    size_multiple : int
        1 (no pooling).
    receptive_radius : int
        Receptive radius of the convolutions.
    is_local : bool
        Always False: channel attention pools over the whole input.
    spec : dict
        Constructor arguments with ``name: "rcan"``.
    """

    spec_name = "rcan"

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        n_groups: int = 3,
        n_rcab: int = 5,
        channels: int = 64,
        ndim: int = 2,
        act: str = "leaky_relu",
        reduction: int = 16,
        tail_channels: int = 256,
        output_activation: bool = True,
        group_skip: bool = False,
        long_skip: bool = False,
        kernel_size: int = 3,
        fnsm: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.spec: dict[str, Any] = {
            "name": self.spec_name,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "n_groups": n_groups,
            "n_rcab": n_rcab,
            "channels": channels,
            "ndim": ndim,
            "act": act,
            "reduction": reduction,
            "tail_channels": tail_channels,
            "output_activation": output_activation,
            "group_skip": group_skip,
            "long_skip": long_skip,
            "kernel_size": kernel_size,
            "fnsm": dict(fnsm) if fnsm is not None else None,
        }
        self.ndim = check_ndim(ndim)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if min(n_groups, n_rcab) < 0 or min(in_channels, out_channels, channels, tail_channels) < 1:
            raise ValueError("channel counts must be positive and group/block counts non-negative")
        make_activation(act)  # validate
        conv = layer_class("conv", ndim)
        pad = kernel_size // 2
        if fnsm is not None:
            from microrestore.nn.fnsm import FNSMInput

            self.head: nn.Module = FNSMInput(in_channels, channels, ndim, fnsm, kernel_size)
        else:
            self.head = conv(in_channels, channels, kernel_size, padding=pad)
        self.groups = nn.Sequential(
            *[ResidualGroup(channels, n_rcab, reduction, ndim, act, skip=group_skip) for _ in range(n_groups)]
        )
        self.long_skip = long_skip
        self.tail = nn.Sequential(
            conv(channels, tail_channels, kernel_size, padding=pad),
            make_activation(act),
            conv(tail_channels, out_channels, kernel_size, padding=pad),
            make_activation(act) if output_activation else nn.Identity(),
        )
        self.size_multiple = 1
        self.receptive_radius = pad * (1 + 2 * n_groups * n_rcab + 2)
        self.is_local = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_channels, *spatial)`` to ``(B, out_channels, *spatial)``."""
        if x.dim() != self.ndim + 2:
            raise ValueError(f"RCAN(ndim={self.ndim}) expects a {self.ndim + 2}D tensor, got {tuple(x.shape)}")
        h = self.head(x)
        y = self.groups(h)
        if self.long_skip:
            y = y + h
        return self.tail(y)

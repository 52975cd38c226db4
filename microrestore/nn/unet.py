"""CARE's U-Net (Weigert et al., Nat. Methods 2018); its layer helpers are in :mod:`microrestore.nn.layers`.

The U-Net follows CSBDeep's ``unet_block`` and ``common_unet`` layer for layer, so that a CARE model here has
the same widths (and parameter count) as one trained with CSBDeep:

- down level ``n`` (``n = 0 .. depth-1``): ``convs_per_level`` convs of ``base_filters * 2**n`` filters, then
  a 2x max-pool (the output before pooling is the skip connection);
- middle: ``convs_per_level - 1`` convs of ``base_filters * 2**depth``, then one of
  ``base_filters * 2**max(0, depth-1)``;
- up level ``n`` (``n = depth-1 .. 0``): 2x upsampling, concatenation ``[upsampled, skip]``,
  ``convs_per_level - 1`` convs of ``base_filters * 2**n``, then one of ``base_filters * 2**max(0, n-1)``;
- a 1x1 conv to ``out_channels``; with ``residual`` the input is added; then ``final_activation``.

Every conv is "same" padded (zeros), ReLU-activated (after batch norm when ``batch_norm``), and initialised as
Keras does (Glorot-uniform weights, zero biases). With depth 2, 32 base filters, 3x3 kernels and one channel in
and out the 2D network has 332,641 parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from microrestore.nn.layers import (
    check_ndim,
    check_spatial_multiple,
    layer_class,
    make_activation,
)

__all__ = ["UNet"]


def _unet_receptive_radius(depth: int, kernel_size: int, convs_per_level: int) -> int:
    """Exact receptive radius of the CSBDeep U-Net (worst case over output positions)."""
    reach = convs_per_level * (kernel_size // 2)

    def skip_needs(level: int, lo: int, hi: int) -> tuple[int, int]:
        # Input interval that the (pre-pool) features of ``level`` at [lo, hi] depend on; level == depth is
        # the middle block, which has the same structure (convs after a pool).
        lo, hi = lo - reach, hi + reach
        if level == 0:
            return lo, hi
        return skip_needs(level - 1, 2 * lo, 2 * hi + 1)

    def up_needs(level: int, lo: int, hi: int) -> tuple[int, int]:
        lo, hi = lo - reach, hi + reach
        a = skip_needs(level, lo, hi)
        below = (lo // 2, hi // 2)
        b = up_needs(level + 1, *below) if level + 1 < depth else skip_needs(depth, *below)
        return min(a[0], b[0]), max(a[1], b[1])

    worst = 0
    for p in range(2**depth):
        lo, hi = up_needs(0, p, p)
        worst = max(worst, p - lo, hi - p)
    return worst


def _check_arguments(
    in_channels: int, out_channels: int, ndim: int, depth: int, base_filters: int, kernel_size: int, convs: int
) -> None:
    """Refuse impossible U-Net sizes with a ``ValueError`` naming the argument."""
    check_ndim(ndim)
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    if convs < 1:
        raise ValueError(f"convs_per_level must be at least 1, got {convs}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    if min(in_channels, out_channels, base_filters) < 1:
        raise ValueError("in_channels, out_channels and base_filters must be positive")


def _check_options(
    in_channels: int, out_channels: int, residual: bool, upsampling: str, final_activation: str | None
) -> None:
    """Refuse a residual network that changes the channel count, and unknown upsampling or activation names."""
    if residual and in_channels != out_channels:
        raise ValueError(
            f"a residual U-Net needs in_channels == out_channels, got {in_channels} and {out_channels}; "
            "set residual=False"
        )
    if upsampling not in ("nearest", "transpose"):
        raise ValueError(f"upsampling must be 'nearest' or 'transpose', got {upsampling!r}")
    make_activation(final_activation)  # validate early


class _BlockFactory:
    """Builds the U-Net's conv blocks: per width, a "same"-padded conv, batch norm when asked, then ReLU."""

    def __init__(self, ndim: int, kernel_size: int, batch_norm: bool) -> None:
        self.ndim, self.kernel_size, self.batch_norm = ndim, kernel_size, batch_norm

    def __call__(self, c_in: int, widths: list[int]) -> nn.Sequential:
        conv = layer_class("conv", self.ndim)
        layers: list[nn.Module] = []
        for width in widths:
            layers.append(conv(c_in, width, self.kernel_size, padding=self.kernel_size // 2))
            if self.batch_norm:
                layers.append(layer_class("batch_norm", self.ndim)(width))
            layers.append(nn.ReLU())
            c_in = width
        return nn.Sequential(*layers)


def _glorot_init(network: nn.Module) -> None:
    """Keras's initialisation: Glorot-uniform weights and zero biases for every (transposed) conv."""
    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class UNet(nn.Module):
    """CARE's U-Net, layer-compatible with CSBDeep's ``common_unet``.

    Parameters
    ----------
    in_channels, out_channels
        Channels of the input and the output.
    ndim
        2 (``(B, C, Y, X)``) or 3 (``(B, C, Z, Y, X)``; isotropic 2x2x2 pooling as in CSBDeep).
    depth
        Number of pooling levels (CSBDeep ``n_depth``), at least 1.
    base_filters
        Filters of the first level (CSBDeep ``n_filter_base``); level ``n`` has ``base_filters * 2**n``.
    kernel_size
        Odd conv kernel size.
    convs_per_level
        Convs per level (CSBDeep ``n_conv_per_depth``), at least 1.
    batch_norm
        Batch normalisation between each conv and its ReLU.
    residual
        Add the input to the output (CARE's default); needs ``in_channels == out_channels``.
    final_activation
        Activation after the residual sum (``None``: linear, CARE's default; see :func:`make_activation`).
    upsampling
        ``nearest`` (CSBDeep's ``UpSampling``) or ``transpose`` (a learned 2x transposed conv per level).
    fnsm
        ``None``, or keyword arguments of :class:`microrestore.nn.fnsm.FNSM`: the input then goes through
        :class:`~microrestore.nn.fnsm.FNSMInput` (``base_filters`` features, convs of ``kernel_size``) before the
        first conv. The FNSM's FFT spans the whole input, so the network is no longer local (``is_local`` is
        False).

    Attributes
    ----------
    size_multiple : int
        ``2**depth``: spatial sizes of the input must be multiples of it.
    receptive_radius : int
        Pixels of context on each side that can influence an output pixel (exact, worst case over positions;
        the conv part only when ``fnsm`` is set).
    is_local : bool
        True when an output pixel depends only on inputs within ``receptive_radius`` (eval mode).
    spec : dict
        The constructor arguments with ``name: "unet"``; ``build_network(spec)`` rebuilds the network.
    """

    spec_name = "unet"

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        ndim: int = 2,
        depth: int = 2,
        base_filters: int = 32,
        kernel_size: int = 3,
        convs_per_level: int = 2,
        batch_norm: bool = False,
        residual: bool = True,
        final_activation: str | None = None,
        upsampling: str = "nearest",
        fnsm: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.spec: dict[str, Any] = {
            "name": self.spec_name,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "ndim": ndim,
            "depth": depth,
            "base_filters": base_filters,
            "kernel_size": kernel_size,
            "convs_per_level": convs_per_level,
            "batch_norm": batch_norm,
            "residual": residual,
            "final_activation": final_activation,
            "upsampling": upsampling,
            "fnsm": dict(fnsm) if fnsm is not None else None,
        }
        _check_arguments(in_channels, out_channels, ndim, depth, base_filters, kernel_size, convs_per_level)
        _check_options(in_channels, out_channels, residual, upsampling, final_activation)
        self.ndim = ndim
        self.depth = depth
        self.residual = residual
        self.size_multiple = 2**depth
        self.receptive_radius = _unet_receptive_radius(depth, kernel_size, convs_per_level)
        self.is_local = fnsm is None
        block = _BlockFactory(ndim, kernel_size, batch_norm)
        channels = self._build_input(in_channels, base_filters, ndim, fnsm, kernel_size)
        channels = self._build_encoder(block, channels, base_filters, depth, convs_per_level)
        channels = self._build_decoder(block, channels, base_filters, depth, convs_per_level, upsampling)
        self.final = layer_class("conv", ndim)(channels, out_channels, 1)
        self.final_activation = make_activation(final_activation)
        _glorot_init(self)

    def _build_input(
        self, in_channels: int, base_filters: int, ndim: int, fnsm: Mapping[str, Any] | None, kernel_size: int
    ) -> int:
        """The FNSM fusion in front of the first conv, or the identity; returns the channels it gives."""
        if fnsm is None:
            self.input_block: nn.Module = nn.Identity()
            return in_channels
        from microrestore.nn.fnsm import FNSMInput

        self.input_block = FNSMInput(in_channels, base_filters, ndim, fnsm, kernel_size)
        self.receptive_radius += kernel_size // 2  # the fusion's convs
        return base_filters

    def _build_encoder(
        self, block: _BlockFactory, channels: int, base_filters: int, depth: int, convs_per_level: int
    ) -> int:
        """The down levels, the pooling and the middle block; returns the channels of the middle's output."""
        self.down = nn.ModuleList()
        for n in range(depth):
            self.down.append(block(channels, [base_filters * 2**n] * convs_per_level))
            channels = base_filters * 2**n
        self.pool = layer_class("max_pool", block.ndim)(2)
        out = base_filters * 2 ** max(0, depth - 1)
        self.middle = block(channels, [base_filters * 2**depth] * (convs_per_level - 1) + [out])
        return out

    def _build_decoder(
        self,
        block: _BlockFactory,
        channels: int,
        base_filters: int,
        depth: int,
        convs_per_level: int,
        upsampling: str,
    ) -> int:
        """The up levels (upsampling, concatenation with the skip, convs); returns the last level's channels."""
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for n in reversed(range(depth)):
            if upsampling == "nearest":
                self.upsample.append(nn.Upsample(scale_factor=2, mode="nearest"))
            else:
                self.upsample.append(layer_class("conv_transpose", block.ndim)(channels, channels, 2, stride=2))
            out = base_filters * 2 ** max(0, n - 1)
            self.up.append(block(channels + base_filters * 2**n, [base_filters * 2**n] * (convs_per_level - 1) + [out]))
            channels = out
        return channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_channels, *spatial)`` to ``(B, out_channels, *spatial)``.

        Spatial sizes must be multiples of :attr:`size_multiple`.
        """
        check_spatial_multiple(x, self.ndim, self.size_multiple, "UNet")
        h = self.input_block(x)
        skips = []
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = self.pool(h)
        h = self.middle(h)
        for upsample, block, skip in zip(self.upsample, self.up, reversed(skips), strict=True):
            h = block(torch.cat([upsample(h), skip], dim=1))
        h = self.final(h)
        if self.residual:
            h = h + x
        return self.final_activation(h)

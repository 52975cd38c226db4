"""The GAN generators of c²GAN/UTOM and COMI, and the CycleGAN weight initialisation.

``ResnetGenerator`` is Johnson et al.'s ResNet generator as used by CycleGAN, c²GAN and COMI:
``c7s1-ngf``, two stride-2 3x3 convs (``2 ngf``, ``4 ngf``), ``n_blocks`` residual blocks at ``4 ngf``
(conv3-norm-ReLU-conv3-norm plus the block input), two 2x upsamplings back to ``ngf`` and ``c7s1-C`` with tanh.
c²GAN upsamples with stride-2 3x3 transposed convs (``output_padding=1``); COMI with nearest-neighbour
upsampling and a 3x3 conv, and adds the input to the tanh output (``global_skip``).

``UNetGenerator`` is the pix2pix/UTOM "unet_256" generator (``num_downs=8``): 4x4 stride-2 convs down,
4x4 stride-2 transposed convs up, skip connections by concatenation at every level, tanh output.

Both are initialised with ``init_weights`` (weights N(0, 0.02), biases 0, norm scales N(1, 0.02)).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from microrestore.nn.layers import (
    chain_receptive_radius,
    check_ndim,
    check_spatial_multiple,
    layer_class,
    make_norm,
)

__all__ = ["ResnetBlock", "ResnetGenerator", "UNetGenerator", "init_weights"]

_PADDING_MODES = {"reflect": "reflect", "zero": "zeros", "zeros": "zeros", "replicate": "replicate"}


def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """CycleGAN's "normal" initialisation, applied in place to every sub-module.

    Parameters
    ----------
    module
        Network to initialise.
    gain
        Standard deviation of the conv/linear weights (and of the norm scales around 1).

    Returns
    -------
    torch.nn.Module
        ``module`` itself.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm2d, nn.InstanceNorm3d)):
            if m.weight is not None:
                nn.init.normal_(m.weight, 1.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def _padding_mode(padding: str) -> str:
    if padding not in _PADDING_MODES:
        raise ValueError(f"padding must be one of reflect, zero, replicate, got {padding!r}")
    return _PADDING_MODES[padding]


class ResnetBlock(nn.Module):
    """Residual block ``x + norm(conv3(relu(norm(conv3(x)))))`` with reflect (or other) padding.

    Parameters
    ----------
    channels
        Feature channels.
    ndim
        2 or 3.
    norm
        ``instance``, ``batch`` or ``none``.
    padding
        ``reflect`` (CycleGAN, COMI), ``zero`` or ``replicate``.
    dropout
        Dropout probability between the two convs (0: none, as in CycleGAN's default).
    """

    def __init__(
        self, channels: int, ndim: int = 2, norm: str = "instance", padding: str = "reflect", dropout: float = 0.0
    ) -> None:
        super().__init__()
        conv = layer_class("conv", ndim)
        mode = _padding_mode(padding)
        bias = norm != "batch"
        layers: list[nn.Module] = [
            conv(channels, channels, 3, padding=1, padding_mode=mode, bias=bias),
            make_norm(norm, channels, ndim),
            nn.ReLU(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [
            conv(channels, channels, 3, padding=1, padding_mode=mode, bias=bias),
            make_norm(norm, channels, ndim),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + body(x)``."""
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """ResNet generator of CycleGAN, c²GAN and COMI.

    Parameters
    ----------
    in_channels, out_channels
        Channels of the input and output images.
    n_blocks
        Residual blocks at ``4 ngf`` channels (c²GAN: 6 for patches of at most 128 px, else 9; COMI: 9).
    ngf
        Filters of the first conv.
    ndim
        2 or 3 (3D convs throughout).
    norm
        ``instance`` (default, no affine parameters), ``batch`` or ``none``.
    upsampling
        ``transpose`` (c²GAN/CycleGAN: 3x3 stride-2 transposed convs with ``output_padding=1``) or ``nearest``
        (COMI: 2x nearest-neighbour upsampling then a 3x3 conv).
    global_skip
        COMI's global skip: output = ``tanh(.) + input`` (needs ``in_channels == out_channels``).
    padding
        Padding of the 7x7 convs and the residual blocks: ``reflect`` (default), ``zero`` or ``replicate``;
        the stride-2 convs are zero padded as in the reference code.
    dropout
        Dropout in the residual blocks (0 by default).

    Attributes
    ----------
    size_multiple : int
        4: spatial sizes must be multiples of it.
    receptive_radius : int
        Pixels of context each side that can influence an output pixel through the convolutions.
    is_local : bool
        False with instance norm (its statistics span the whole input), True otherwise (in eval mode).
    spec : dict
        Constructor arguments with ``name: "resnet_generator"``.
    """

    spec_name = "resnet_generator"

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        n_blocks: int = 9,
        ngf: int = 64,
        ndim: int = 2,
        norm: str = "instance",
        upsampling: str = "transpose",
        global_skip: bool = False,
        padding: str = "reflect",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.spec: dict[str, Any] = {
            "name": self.spec_name,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "n_blocks": n_blocks,
            "ngf": ngf,
            "ndim": ndim,
            "norm": norm,
            "upsampling": upsampling,
            "global_skip": global_skip,
            "padding": padding,
            "dropout": dropout,
        }
        self.ndim = check_ndim(ndim)
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be non-negative, got {n_blocks}")
        if upsampling not in ("transpose", "nearest"):
            raise ValueError(f"upsampling must be 'transpose' or 'nearest', got {upsampling!r}")
        if global_skip and in_channels != out_channels:
            raise ValueError(f"global_skip needs in_channels == out_channels, got {in_channels} and {out_channels}")
        make_norm(norm, 1, ndim)  # validate
        mode = _padding_mode(padding)
        conv = layer_class("conv", ndim)
        bias = norm != "batch"
        self.global_skip = global_skip
        self.size_multiple = 4
        self.is_local = norm != "instance"

        layers: list[nn.Module] = [
            conv(in_channels, ngf, 7, padding=3, padding_mode=mode, bias=bias),
            make_norm(norm, ngf, ndim),
            nn.ReLU(),
        ]
        channels = ngf
        for _ in range(2):
            layers += [
                conv(channels, channels * 2, 3, stride=2, padding=1, bias=bias),
                make_norm(norm, channels * 2, ndim),
                nn.ReLU(),
            ]
            channels *= 2
        layers += [ResnetBlock(channels, ndim, norm, padding, dropout) for _ in range(n_blocks)]
        for _ in range(2):
            if upsampling == "transpose":
                layers.append(
                    layer_class("conv_transpose", ndim)(
                        channels, channels // 2, 3, stride=2, padding=1, output_padding=1, bias=bias
                    )
                )
            else:
                layers += [
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    conv(channels, channels // 2, 3, padding=1, bias=bias),
                ]
            layers += [make_norm(norm, channels // 2, ndim), nn.ReLU()]
            channels //= 2
        layers += [conv(channels, out_channels, 7, padding=3, padding_mode=mode), nn.Tanh()]
        self.model = nn.Sequential(*layers)

        ops: list[tuple[Any, ...]] = [("conv", 7, 1, 3), ("conv", 3, 2, 1), ("conv", 3, 2, 1)]
        ops += [("conv", 3, 1, 1)] * (2 * n_blocks)
        up = [("tconv", 3, 2, 1)] if upsampling == "transpose" else [("up", 2), ("conv", 3, 1, 1)]
        ops += up + up + [("conv", 7, 1, 3)]
        self.receptive_radius = chain_receptive_radius(ops, 4)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_channels, *spatial)`` to ``(B, out_channels, *spatial)`` (spatial sizes multiples of 4)."""
        check_spatial_multiple(x, self.ndim, self.size_multiple, "ResnetGenerator")
        y = self.model(x)
        return y + x if self.global_skip else y


class _UNetSkipBlock(nn.Module):
    """One level of the pix2pix U-Net: ``cat([x, up(sub(down(x)))])`` (no concatenation at the outermost)."""

    def __init__(
        self,
        outer: int,
        inner: int,
        ndim: int,
        norm: str,
        in_channels: int | None = None,
        sub: nn.Module | None = None,
        outermost: bool = False,
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        conv = layer_class("conv", ndim)
        tconv = layer_class("conv_transpose", ndim)
        bias = norm != "batch"
        c_in = outer if in_channels is None else in_channels
        down = conv(c_in, inner, 4, stride=2, padding=1, bias=bias)
        if outermost:
            assert sub is not None
            layers: list[nn.Module] = [down, sub, nn.ReLU(), tconv(inner * 2, outer, 4, stride=2, padding=1), nn.Tanh()]
        elif sub is None:  # innermost
            layers = [nn.LeakyReLU(0.2), down, nn.ReLU(), tconv(inner, outer, 4, stride=2, padding=1, bias=bias)]
            layers.append(make_norm(norm, outer, ndim))
        else:
            layers = [nn.LeakyReLU(0.2), down, make_norm(norm, inner, ndim), sub, nn.ReLU()]
            layers += [tconv(inner * 2, outer, 4, stride=2, padding=1, bias=bias), make_norm(norm, outer, ndim)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        return y if self.outermost else torch.cat([x, y], dim=1)


class UNetGenerator(nn.Module):
    """pix2pix/UTOM U-Net generator (``unet_256`` for ``num_downs=8``), c²GAN's alternative generator.

    Parameters
    ----------
    in_channels, out_channels
        Channels of the input and output images.
    num_downs
        Number of 2x downsamplings (8 for 256 px patches: the bottleneck is 1x1); at least 5.
    ngf
        Filters of the outermost level; levels have ``ngf``, ``2 ngf``, ``4 ngf``, then ``8 ngf``.
    ndim
        2 or 3.
    norm
        ``instance`` (UTOM/CycleGAN default), ``batch`` (pix2pix) or ``none``.
    dropout
        Dropout 0.5 in the ``num_downs - 5`` inner ``8 ngf`` levels (pix2pix; off in CycleGAN/UTOM).

    Attributes
    ----------
    size_multiple : int
        ``2**num_downs``.
    receptive_radius : int
        Conv receptive radius (the innermost path), in input pixels.
    is_local : bool
        False with instance norm.
    spec : dict
        Constructor arguments with ``name: "unet_generator"``.
    """

    spec_name = "unet_generator"

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        num_downs: int = 8,
        ngf: int = 64,
        ndim: int = 2,
        norm: str = "instance",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.spec: dict[str, Any] = {
            "name": self.spec_name,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "num_downs": num_downs,
            "ngf": ngf,
            "ndim": ndim,
            "norm": norm,
            "dropout": dropout,
        }
        self.ndim = check_ndim(ndim)
        if num_downs < 5:
            raise ValueError(f"num_downs must be at least 5, got {num_downs}")
        make_norm(norm, 1, ndim)  # validate
        block = _UNetSkipBlock(ngf * 8, ngf * 8, ndim, norm)
        for _ in range(num_downs - 5):
            block = _UNetSkipBlock(ngf * 8, ngf * 8, ndim, norm, sub=block, dropout=dropout)
        block = _UNetSkipBlock(ngf * 4, ngf * 8, ndim, norm, sub=block)
        block = _UNetSkipBlock(ngf * 2, ngf * 4, ndim, norm, sub=block)
        block = _UNetSkipBlock(ngf, ngf * 2, ndim, norm, sub=block)
        self.model = _UNetSkipBlock(out_channels, ngf, ndim, norm, in_channels=in_channels, sub=block, outermost=True)
        self.size_multiple = 2**num_downs
        self.is_local = norm != "instance"
        ops = [("conv", 4, 2, 1)] * num_downs + [("tconv", 4, 2, 1)] * num_downs
        self.receptive_radius = chain_receptive_radius(ops, self.size_multiple)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_channels, *spatial)`` to ``(B, out_channels, *spatial)`` in [-1, 1]."""
        check_spatial_multiple(x, self.ndim, self.size_multiple, "UNetGenerator")
        return self.model(x)

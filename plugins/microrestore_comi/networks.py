"""COMI's networks: the ResNet-9 generator with the global skip, and the BatchNorm PatchGAN discriminator.

Importing this module registers ``comi_generator`` with :func:`microrestore.nn.build_network`, so that model
folders can rebuild it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from microrestore.nn import PatchGAN, ResnetGenerator, register_network

__all__ = ["ComiGenerator", "build_discriminator", "build_generator"]


class ComiGenerator(ResnetGenerator):
    """COMI's generator, working on images scaled to [-1, 1] inside a fixed affine map.

    ResNet generator (Johnson et al.; COMI): c7-``ngf`` IN ReLU, two stride-2 3x3 convs (``2 ngf``, ``4 ngf``),
    ``n_blocks`` residual blocks, two rounds of 2x nearest-neighbour upsampling + 3x3 conv (``2 ngf``, ``ngf``),
    c7 to the image channels, tanh, and the global skip ``output = tanh(.) + input``.

    The model's normaliser maps an image to ``u`` (e.g. its percentiles onto [0, 1]); the network computes
    ``z = u * in_scale + in_offset`` (the [-1, 1] scale COMI works on), ``y = core(z)`` and returns
    ``(y - in_offset) / in_scale``, so the global skip holds in the normaliser's units as well.
    :meth:`core` is the network on the [-1, 1] scale, used in training.

    Parameters
    ----------
    in_scale, in_offset
        The affine map from the normaliser's units onto the generator's [-1, 1] scale (``in_scale > 0``).
    **kwargs
        :class:`~microrestore.nn.ResnetGenerator` options; ``upsampling`` defaults to ``nearest`` and
        ``global_skip`` to ``True`` (COMI).
    """

    spec_name = "comi_generator"

    def __init__(self, in_scale: float = 1.0, in_offset: float = 0.0, **kwargs: Any) -> None:
        kwargs.setdefault("upsampling", "nearest")
        kwargs.setdefault("global_skip", True)
        super().__init__(**kwargs)
        if not in_scale > 0:
            raise ValueError(f"in_scale must be positive, got {in_scale}")
        self.in_scale, self.in_offset = float(in_scale), float(in_offset)
        self.spec = {**self.spec, "name": self.spec_name, "in_scale": self.in_scale, "in_offset": self.in_offset}

    def core(self, z: torch.Tensor) -> torch.Tensor:
        """The generator on COMI's [-1, 1] scale: ``tanh(.) + z``."""
        return super().forward(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` (normaliser units) through the affine, the generator, and back."""
        if self.in_scale == 1.0 and self.in_offset == 0.0:
            return self.core(x)
        return (self.core(x * self.in_scale + self.in_offset) - self.in_offset) / self.in_scale


register_network(ComiGenerator.spec_name, ComiGenerator)


def build_generator(
    ngf: int, n_blocks: int, channels: int = 1, in_scale: float = 1.0, in_offset: float = 0.0
) -> ComiGenerator:
    """COMI's generator: ResNet with ``n_blocks`` blocks, instance norm, nearest upsampling, global skip."""
    return ComiGenerator(
        in_scale=in_scale,
        in_offset=in_offset,
        in_channels=channels,
        out_channels=channels,
        n_blocks=n_blocks,
        ngf=ngf,
        norm="instance",
        upsampling="nearest",
        global_skip=True,
    )


def build_discriminator(ndf: int, channels: int = 1) -> nn.Module:
    """COMI's discriminator: a PatchGAN with BatchNorm and one more stride-2 level than the 70x70 one.

    4x4 convs; stride 2: ``ndf`` (LeakyReLU 0.2, no norm), ``ndf``, ``2 ndf``, ``4 ndf`` (BatchNorm, LeakyReLU);
    stride 1: ``8 ndf`` (BatchNorm, LeakyReLU), then 1 channel (raw scores for the MSE against 1/0).
    """
    return PatchGAN(in_channels=channels, widths=(ndf, ndf, 2 * ndf, 4 * ndf, 8 * ndf), norm="batch")

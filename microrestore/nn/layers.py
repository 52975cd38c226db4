"""Dimension-generic layer helpers shared by the networks of :mod:`microrestore.nn` (2D and 3D alike).

Layer classes by kind and number of spatial dimensions, activations and normalisations by name, the exact
receptive radius of a chain of strided layers, and the input-shape check of networks that downsample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "NORMS",
    "chain_receptive_radius",
    "check_ndim",
    "check_spatial_multiple",
    "layer_class",
    "make_activation",
    "make_norm",
]

_LAYERS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "conv": (nn.Conv2d, nn.Conv3d),
    "conv_transpose": (nn.ConvTranspose2d, nn.ConvTranspose3d),
    "max_pool": (nn.MaxPool2d, nn.MaxPool3d),
    "adaptive_avg_pool": (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d),
    "batch_norm": (nn.BatchNorm2d, nn.BatchNorm3d),
    "instance_norm": (nn.InstanceNorm2d, nn.InstanceNorm3d),
}

ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "gelu", "tanh", "sigmoid", "linear")
NORMS: tuple[str, ...] = ("instance", "batch", "none")


def check_ndim(ndim: int) -> int:
    """Return ``ndim`` when it is 2 or 3.

    Raises
    ------
    ValueError
        For any other number of spatial dimensions.
    """
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
    return int(ndim)


def layer_class(kind: str, ndim: int) -> Any:
    """Return the torch layer class of ``kind`` for ``ndim`` spatial dimensions.

    Parameters
    ----------
    kind
        One of ``conv``, ``conv_transpose``, ``max_pool``, ``adaptive_avg_pool``, ``batch_norm``,
        ``instance_norm``.
    ndim
        2 or 3.

    Returns
    -------
    type
        E.g. ``nn.Conv3d`` for ``layer_class("conv", 3)``.
    """
    if kind not in _LAYERS:
        raise ValueError(f"unknown layer kind {kind!r}; valid kinds: {', '.join(_LAYERS)}")
    return _LAYERS[kind][check_ndim(ndim) - 2]


def make_activation(name: str | None) -> nn.Module:
    """Create an activation module by name.

    Parameters
    ----------
    name
        ``relu``, ``leaky_relu`` (slope 0.2, as in every method here), ``gelu`` (exact, erf-based), ``tanh``,
        ``sigmoid``, or ``linear`` / ``none`` / ``None`` for the identity.

    Returns
    -------
    torch.nn.Module
        A fresh module (never in-place, so it is safe next to skip connections).
    """
    key = "linear" if name is None else str(name).lower()
    factories: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.2),
        "gelu": nn.GELU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "linear": nn.Identity,
        "none": nn.Identity,
    }
    if key not in factories:
        raise ValueError(f"unknown activation {name!r}; valid activations: {', '.join(ACTIVATIONS)}")
    return factories[key]()


def make_norm(norm: str, channels: int, ndim: int) -> nn.Module:
    """Create a normalisation layer by name.

    Parameters
    ----------
    norm
        ``instance`` (no affine parameters, no running statistics, as in the CycleGAN code), ``batch`` or
        ``none``.
    channels
        Feature channels.
    ndim
        2 or 3.

    Returns
    -------
    torch.nn.Module
        The layer (``nn.Identity`` for ``none``).
    """
    if norm == "instance":
        return layer_class("instance_norm", ndim)(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return layer_class("batch_norm", ndim)(channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; valid norms: {', '.join(NORMS)}")


def chain_receptive_radius(ops: list[tuple[Any, ...]], period: int) -> int:
    """Receptive radius of a chain of strided layers, by exact interval propagation.

    Parameters
    ----------
    ops
        Layers from input to output: ``("conv", kernel, stride, padding)``,
        ``("tconv", kernel, stride, padding)`` (transposed conv) or ``("up", factor)`` (nearest upsampling).
    period
        The product of the strides: output positions repeat their dependency pattern with this period.

    Returns
    -------
    int
        The largest distance, over all output positions, between an output pixel and an input pixel it
        depends on (the output grid and the input grid coincide, as for image-to-image networks).
    """
    worst = 0
    for p in range(max(1, period)):
        lo, hi = p, p
        for op in reversed(ops):
            if op[0] == "conv":
                _, k, s, pad = op
                lo, hi = lo * s - pad, hi * s - pad + k - 1
            elif op[0] == "tconv":
                _, k, s, pad = op
                lo, hi = -((-(lo + pad - k + 1)) // s), (hi + pad) // s
            elif op[0] == "up":
                lo, hi = lo // op[1], hi // op[1]
            else:
                raise ValueError(f"unknown op {op[0]!r}")
        worst = max(worst, p - lo, hi - p)
    return worst


def check_spatial_multiple(x: torch.Tensor, ndim: int, multiple: int, name: str) -> None:
    """Raise ``ValueError`` unless ``x`` is ``(B, C, *spatial)`` with spatial sizes divisible by ``multiple``."""
    if x.dim() != ndim + 2:
        raise ValueError(f"{name} expects a (B, C, {'Z, ' if ndim == 3 else ''}Y, X) tensor, got {tuple(x.shape)}")
    bad = [n for n in x.shape[2:] if n % multiple]
    if bad:
        raise ValueError(
            f"{name} needs spatial sizes divisible by {multiple}, got {tuple(x.shape[2:])}; pad the input "
            "(tiled inference does this)"
        )

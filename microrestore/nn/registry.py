"""Networks by name, so that a model folder's ``config.yaml`` can rebuild its network.

Every network here stores its constructor arguments in ``module.spec`` (a dict with a ``name`` key);
``build_network(module.spec)`` returns an identical, freshly initialised network. Plugins with their own
networks add them with :func:`register_network`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from microrestore.errors import InputError
from microrestore.nn.dfcan import DFCAN
from microrestore.nn.patchgan import PatchGAN
from microrestore.nn.rcan import RCAN
from microrestore.nn.rdl_denoiser import RDLDenoiser
from microrestore.nn.resnet import ResnetGenerator, UNetGenerator
from microrestore.nn.unet import UNet

__all__ = ["NETWORKS", "build_network", "count_parameters", "register_network"]

NETWORKS: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "resnet_generator": ResnetGenerator,
    "unet_generator": UNetGenerator,
    "patchgan": PatchGAN,
    "rcan": RCAN,
    "dfcan": DFCAN,
    "rdl_denoiser": RDLDenoiser,
}


def register_network(name: str, cls: type[nn.Module]) -> None:
    """Make ``cls`` buildable as ``{"name": name, ...}``.

    Parameters
    ----------
    name
        Spec name; registering a different class under a taken name is an error.
    cls
        An ``nn.Module`` subclass whose instances store their constructor arguments in ``spec``.

    Raises
    ------
    ValueError
        The name is taken by another class.
    """
    if name in NETWORKS and NETWORKS[name] is not cls:
        raise ValueError(f"network name {name!r} is already registered by {NETWORKS[name].__qualname__}")
    NETWORKS[name] = cls


def build_network(spec: Mapping[str, Any]) -> nn.Module:
    """Build a network from its spec.

    Parameters
    ----------
    spec
        ``{"name": <registered name>, **constructor keyword arguments}`` (not modified).

    Returns
    -------
    torch.nn.Module
        A freshly initialised network.

    Raises
    ------
    InputError
        Unknown name, unknown option or invalid value; the one-line message lists the valid names or options.
    """
    if not isinstance(spec, Mapping):
        raise InputError(f"a network spec must be a mapping with a 'name' key, got {type(spec).__name__}")
    kwargs = dict(spec)
    name = kwargs.pop("name", None)
    valid = ", ".join(sorted(NETWORKS))
    if name is None:
        raise InputError(f"the network spec has no 'name'; valid names: {valid}")
    if name not in NETWORKS:
        raise InputError(f"unknown network {name!r}; valid names: {valid}")
    cls = NETWORKS[name]
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(k for k in kwargs if k not in params)
        if unknown:
            raise InputError(
                f"network {name!r} has no option {', '.join(map(repr, unknown))}; valid options: {', '.join(params)}"
            )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"network {name!r}: {exc}") from exc


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Count the parameters of ``module`` (only those with ``requires_grad`` when ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

"""Networks by name, so that a model folder's ``config.yaml`` can rebuild its network.

Every network here stores its constructor arguments in ``module.spec`` (a dict with a ``name`` key);
``build_network(module.spec)`` returns an identical, freshly initialised network. Plugins with their own
networks add them with :func:`register_network`.

A spec comes from a model folder's ``config.yaml``, which no checksum covers, so its sizes are checked against
:data:`NETWORK_LIMITS` (the bounds the training configurations use, from :mod:`microrestore.configs`) before
the constructor runs: a constructor given ``depth: 40`` loops over ``2**40`` positions, and ``base_filters:
200000`` asks for terabytes.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from torch import nn

from microrestore.configs import (
    GanFilters,
    ImageChannels,
    KernelSize,
    RcanBlocks,
    RcanGroups,
    ResBlocks,
    TailChannels,
    UNetDepth,
    UNetFilters,
    pydantic_message,
)
from microrestore.errors import InputError
from microrestore.nn.dfcan import DFCAN
from microrestore.nn.patchgan import PatchGAN
from microrestore.nn.rcan import RCAN
from microrestore.nn.rdl_denoiser import RDLDenoiser
from microrestore.nn.resnet import ResnetGenerator, UNetGenerator
from microrestore.nn.unet import UNet

__all__ = ["NETWORKS", "NETWORK_LIMITS", "build_network", "check_spec", "count_parameters", "register_network"]

NETWORKS: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "resnet_generator": ResnetGenerator,
    "unet_generator": UNetGenerator,
    "patchgan": PatchGAN,
    "rcan": RCAN,
    "dfcan": DFCAN,
    "rdl_denoiser": RDLDenoiser,
}


# Bounds at loading that no training configuration names directly (the loosest any configuration can produce).
_Channels = Annotated[int, Field(ge=1, le=64)]  # network input/output channels (SIM: up to 15 raw frames)
_Width = Annotated[int, Field(ge=1, le=512)]  # feature channels of RCAN, DFCAN, the rDL denoiser
_Count = Annotated[int, Field(ge=1, le=32)]  # blocks, groups and layers
_Reduction = Annotated[int, Field(ge=1, le=512)]
_Item = TypeVar("_Item")


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


#: A short list (from YAML) or tuple (from a network's own ``spec``), strictly typed.
_Sequence = Annotated[list[_Item], BeforeValidator(_listed), Field(min_length=1, max_length=8)]


class _Limits(BaseModel):
    """The bounded options of a network (other options are checked against its constructor's signature)."""

    model_config = ConfigDict(extra="allow", strict=True)

    in_channels: _Channels | None = None
    out_channels: _Channels | None = None


class _UNetLimits(_Limits):
    depth: UNetDepth = 2
    base_filters: UNetFilters = 32
    kernel_size: KernelSize = 3
    convs_per_level: Annotated[int, Field(ge=1, le=4)] = 2


class _GeneratorLimits(_Limits):
    in_channels: ImageChannels = 1
    out_channels: ImageChannels = 1
    ngf: GanFilters = 64


class _ResnetLimits(_GeneratorLimits):
    n_blocks: ResBlocks = 9


class _UNetGeneratorLimits(_GeneratorLimits):
    num_downs: Annotated[int, Field(ge=1, le=10)] = 8


class _PatchGANLimits(_Limits):
    in_channels: ImageChannels = 1
    ndf: GanFilters = 64
    n_layers: Annotated[int, Field(ge=1, le=8)] = 3
    widths: _Sequence[Annotated[int, Field(ge=1, le=8 * 512)]] | None = None


class _AttentionLimits(_Limits):
    channels: _Width = 64
    reduction: _Reduction = 16


class _RCANLimits(_AttentionLimits):
    n_groups: RcanGroups = 3
    n_rcab: RcanBlocks = 5
    tail_channels: TailChannels = 256
    kernel_size: KernelSize = 3


class _DFCANLimits(_AttentionLimits):
    n_groups: _Count = 4
    n_fcab: _Count = 4
    scale: Annotated[int, Field(ge=1, le=4)] = 2
    apodize: Annotated[int, Field(ge=0, le=256)] = 10


class _RDLDenoiserLimits(_AttentionLimits):
    n_groups: _Sequence[RcanGroups] = (2, 5, 5)
    n_rcab: RcanBlocks = 5
    tail_channels: TailChannels = 256


#: Per network class, the bounds its spec must keep (subclasses inherit their base's); classes registered by
#: plugins without limits are built as they are.
NETWORK_LIMITS: dict[type[nn.Module], type[BaseModel]] = {
    UNet: _UNetLimits,
    ResnetGenerator: _ResnetLimits,
    UNetGenerator: _UNetGeneratorLimits,
    PatchGAN: _PatchGANLimits,
    RCAN: _RCANLimits,
    DFCAN: _DFCANLimits,
    RDLDenoiser: _RDLDenoiserLimits,
}


def check_spec(spec: Any) -> type[nn.Module]:
    """Check a network spec without building it; return the network class.

    Raises
    ------
    InputError
        Not a mapping, no or an unknown ``name``, an option the constructor does not take, or a value outside
        :data:`NETWORK_LIMITS` (one line, naming the network and the option).
    """
    if not isinstance(spec, Mapping):
        raise InputError(f"a network spec must be a mapping with a 'name' key, got {type(spec).__name__}")
    kwargs = dict(spec)
    name = kwargs.pop("name", None)
    valid = ", ".join(sorted(NETWORKS))
    if name is None:
        raise InputError(f"the network spec has no 'name'; valid names: {valid}")
    if not isinstance(name, str) or name not in NETWORKS:
        raise InputError(f"unknown network {name!r}; valid names: {valid}")
    cls = NETWORKS[name]
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(str(k) for k in kwargs if k not in params)
        if unknown:
            raise InputError(
                f"network {name!r} has no option {', '.join(map(repr, unknown))}; valid options: {', '.join(params)}"
            )
    limits = next((NETWORK_LIMITS[c] for c in cls.__mro__ if c in NETWORK_LIMITS), None)
    if limits is not None:
        try:
            limits.model_validate(kwargs)
        except ValidationError as exc:
            raise InputError(f"network {name!r}: {pydantic_message(exc)}") from None
    return cls


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
        Unknown name, unknown option, a value outside :data:`NETWORK_LIMITS` or otherwise invalid; the one-line
        message lists the valid names or options.
    """
    cls = check_spec(spec)
    kwargs = dict(spec)
    name = kwargs.pop("name")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"network {name!r}: {exc}") from exc


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Count the parameters of ``module`` (only those with ``requires_grad`` when ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

"""TiS/SiS-rDL training configuration (pydantic): every field has a default and a docstring."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from microrestore.plugin_api import (
    BackgroundOptions,
    FNSMOptions,
    PatchOptions,
    RcanBlocks,
    RcanGroups,
    TailChannels,
    TrainingOptions,
)


class RDLConfig(PatchOptions, TrainingOptions, FNSMOptions, BackgroundOptions):
    """Configuration of a TiS-rDL / SiS-rDL self-supervised denoiser (Qiao et al.) and its training."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["tis", "sis"] = "tis"
    """``tis``: time-lapse, even time points are inputs and odd ones targets; ``sis``: z-stack, even slices are
    inputs and odd ones targets, with the amending constraint."""
    ndim: Literal[2, 3] | None = None
    """Spatial dimensions of the network. 2: planes are samples (frame/slice pairs); 3: RCAN-3D on z x y x x
    patches (sub-stacks of the even and odd slices in ``sis``, pairs of volumes for a T x Z x Y x X
    time-lapse in ``tis``, or the even and odd frames of a 2D time-lapse as z in ``tis``). Default: 3 for
    z-stacks (``sis``) and time-lapses of volumes, 2 for 2D time-lapses."""
    amending: bool | None = None
    """The amending constraint, ``MSE(target - pred - gap)`` with ``gap`` the current network's prediction of
    the target minus its prediction of the input; default: on in ``sis``, off in ``tis``."""
    amending_weight: float = Field(1.0, ge=0)
    """Weight of the amending term (1 in the paper)."""
    loss: Literal["mse", "l1l2"] = "mse"
    """``mse`` (the paper) or ``l1l2``: 0.5 L1 + 0.5 L2 (DeepCAD)."""
    swap: bool = True
    """Swap input and target of a pair at random (each with probability 1/2)."""
    n_groups: RcanGroups = 3
    """Residual groups of the RCAN (3 in TiS/SiS-rDL)."""
    n_rcab: RcanBlocks = 5
    """Residual channel-attention blocks per group (5)."""
    channels: int = Field(64, ge=4, le=256)
    """Feature channels (64)."""
    tail_channels: TailChannels = 256
    """Width of the conv before the output conv (256)."""
    reduction: int = Field(16, ge=1)
    """Channel-attention reduction (16)."""
    batch_size: int = Field(4, ge=1)
    """Patches per step."""
    learning_rate: float = Field(1e-4, gt=0)
    """Adam learning rate (1e-4, as in the authors' rDL code)."""
    foreground_bias: float = Field(0.5, ge=0, le=1)
    """Share of patches drawn where the input is bright."""

    @property
    def amending_on(self) -> bool:
        """Whether the amending constraint is used (the default depends on the mode)."""
        return self.mode == "sis" if self.amending is None else self.amending

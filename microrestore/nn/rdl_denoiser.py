"""The rDL-SIM denoiser (Qiao et al., Nat. Biotechnol. 2022): a two-branch RCAN for raw SIM frames.

It denoises the 3 phases of one pattern orientation, given as a second input the 3 pattern-modulated images
generated from the SR estimate (:mod:`microrestore.structured_illumination.patterns`). Layer for layer as the authors'
``src/models/rDL_Denoiser.py``, with the blocks of :mod:`microrestore.nn.rcan`:

- each branch: conv3 to ``channels`` (64), LeakyReLU(0.2), ``n`` residual groups (2 on the generated images,
  5 on the noisy raw frames), plus the branch's first conv output, conv3, LeakyReLU;
- the two branches' features are added, then conv3 + LeakyReLU, 5 residual groups, plus their input;
- tail: conv3 to 256 + LeakyReLU, channel attention over the 256 channels, conv3 to ``out_channels`` (3),
  LeakyReLU (the authors' output activation: slightly negative values stay possible).

A residual group is 5 RCABs (conv3, LeakyReLU, conv3, LeakyReLU, channel attention with reduction 16) with a
skip over the group. The channel attention pools adaptively (the official code fixes the pooling window to its
training size, so a model there only runs on inputs of that size).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from microrestore.nn.layers import make_activation
from microrestore.nn.rcan import ChannelAttention, ResidualGroup

__all__ = ["RDLBranch", "RDLDenoiser"]


class RDLBranch(nn.Module):
    """Feature extractor of one input: conv + act, residual groups, skip from the first conv, conv + act."""

    def __init__(self, in_channels: int, channels: int, n_groups: int, n_rcab: int, reduction: int, act: str) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.head_act = make_activation(act)
        self.groups = nn.Sequential(
            *[ResidualGroup(channels, n_rcab, reduction, 2, act, skip=True) for _ in range(n_groups)]
        )
        self.tail = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), make_activation(act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, channels, H, W)`` of ``x``."""
        h = self.head(x)
        return self.tail(self.groups(self.head_act(h)) + h)


class RDLDenoiser(nn.Module):
    """Two-branch rDL denoiser: ``forward(generated, noisy)`` returns the denoised phases.

    Parameters
    ----------
    in_channels
        Phases per orientation (3): channels of each input.
    out_channels
        Denoised phases (3).
    channels
        Feature channels (64).
    n_groups
        Residual groups of the generated-image branch, the raw-frame branch and the fused trunk: (2, 5, 5).
    n_rcab
        RCABs per residual group (5).
    reduction
        Channel-attention reduction (16).
    tail_channels
        Width of the conv before the output, with its own channel attention (256).
    act
        Activation (``leaky_relu``: LeakyReLU 0.2).
    output_activation
        Apply ``act`` to the output, as the authors' code does.

    Attributes
    ----------
    size_multiple : int
        1.
    receptive_radius : int
        Receptive radius of the convolutions.
    is_local : bool
        False: channel attention pools over the whole input.
    spec : dict
        Constructor arguments with ``name: "rdl_denoiser"``.
    """

    spec_name = "rdl_denoiser"

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 64,
        n_groups: Sequence[int] = (2, 5, 5),
        n_rcab: int = 5,
        reduction: int = 16,
        tail_channels: int = 256,
        act: str = "leaky_relu",
        output_activation: bool = True,
    ) -> None:
        super().__init__()
        groups = [int(n) for n in n_groups]
        self.spec: dict[str, Any] = {
            "name": self.spec_name,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "channels": channels,
            "n_groups": groups,
            "n_rcab": n_rcab,
            "reduction": reduction,
            "tail_channels": tail_channels,
            "act": act,
            "output_activation": output_activation,
        }
        if len(groups) != 3 or min(groups) < 0 or n_rcab < 0:
            raise ValueError(f"n_groups must be three non-negative counts (generated, raw, fused), got {n_groups!r}")
        if min(in_channels, out_channels, channels, tail_channels) < 1:
            raise ValueError("channel counts must be positive")
        make_activation(act)  # validate
        self.generated_branch = RDLBranch(in_channels, channels, groups[0], n_rcab, reduction, act)
        self.raw_branch = RDLBranch(in_channels, channels, groups[1], n_rcab, reduction, act)
        self.fuse = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), make_activation(act))
        self.trunk = nn.Sequential(
            *[ResidualGroup(channels, n_rcab, reduction, 2, act, skip=True) for _ in range(groups[2])]
        )
        self.tail = nn.Sequential(
            nn.Conv2d(channels, tail_channels, 3, padding=1),
            make_activation(act),
            ChannelAttention(tail_channels, reduction, 2),
            nn.Conv2d(tail_channels, out_channels, 3, padding=1),
            make_activation(act) if output_activation else nn.Identity(),
        )
        self.size_multiple = 1
        convs = 2 * n_rcab * (groups[1] + groups[2]) + 6
        self.receptive_radius = convs
        self.is_local = False

    def forward(self, generated: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        """Denoise ``noisy`` ``(B, 3, H, W)`` guided by the pattern-modulated images ``generated`` (same shape)."""
        if generated.shape != noisy.shape or noisy.dim() != 4:
            raise ValueError(
                f"the generated and noisy inputs must be 4D tensors of one shape, got {tuple(generated.shape)} "
                f"and {tuple(noisy.shape)}"
            )
        fused = self.fuse(self.generated_branch(generated) + self.raw_branch(noisy))
        return self.tail(self.trunk(fused) + fused)

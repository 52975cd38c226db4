"""rDL-SIM's two networks, built from the configuration: the DFCAN SR module and the rDL denoiser."""

from __future__ import annotations

from microrestore.nn import DFCAN, RDLDenoiser
from microrestore_rdl_sim.config import RDLSIMConfig


def build_dfcan(config: RDLSIMConfig) -> DFCAN:
    """The DFCAN of the configuration (input: all frames of a stack)."""
    return DFCAN(
        in_channels=config.n_frames,
        channels=config.dfcan_channels,
        n_groups=config.dfcan_groups,
        n_fcab=config.dfcan_fcab,
        reduction=config.reduction,
    )


def build_denoiser(config: RDLSIMConfig) -> RDLDenoiser:
    """The rDL denoiser of the configuration (one orientation's phases in and out)."""
    return RDLDenoiser(
        in_channels=config.n_phases,
        out_channels=config.n_phases,
        channels=config.denoiser_channels,
        n_groups=config.denoiser_groups,
        n_rcab=config.denoiser_rcab,
        reduction=config.reduction,
        tail_channels=config.denoiser_tail_channels,
    )

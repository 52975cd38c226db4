"""Noise2Void training configuration (pydantic): every field has a default and a docstring."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from microrestore.plugin_api import BackgroundOptions, FNSMOptions, PatchOptions, TrainingOptions, UNetOptions


class N2VConfig(UNetOptions, PatchOptions, TrainingOptions, FNSMOptions, BackgroundOptions):
    """Configuration of a Noise2Void blind-spot denoiser (Krull et al. 2019) and its training (n2v's defaults)."""

    model_config = ConfigDict(extra="forbid")

    residual: bool = False
    """Add the input to the U-Net's output (n2v's default is off)."""
    masked_percent: float = Field(0.198, gt=0, le=20)
    """Percentage of the pixels of each patch that are masked (n2v: 0.198 %), drawn stratified: one per box of
    ``(100 / masked_percent) ** (1 / ndim)`` pixels a side."""
    neighborhood_radius: int = Field(5, ge=1, le=32)
    """A masked pixel takes the value of a random other pixel within this radius (never itself)."""
    loss: Literal["mse", "mae"] = "mse"
    """Loss on the masked pixels."""

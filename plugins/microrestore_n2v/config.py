"""Noise2Void training configuration (pydantic): every field has a default and a docstring."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from microrestore.configs import BackgroundOptions, FNSMOptions, KernelSize, UNetDepth, UNetFilters


class N2VConfig(FNSMOptions, BackgroundOptions):
    """Configuration of a Noise2Void blind-spot denoiser (Krull et al. 2019) and its training."""

    model_config = ConfigDict(extra="forbid")

    ndim: Literal[2, 3] = 2
    """Spatial dimensions of the network: 2 (planes; frames and slices are samples) or 3 (volumes)."""
    depth: UNetDepth = 2
    """U-Net depth (n2v: 2)."""
    base_filters: UNetFilters = 32
    """Filters of the first level (n2v: 32)."""
    kernel_size: KernelSize = 3
    """Convolution kernel size."""
    residual: bool = False
    """Add the input to the U-Net's output (n2v's default is off)."""
    masked_percent: float = Field(0.198, gt=0, le=20)
    """Percentage of the pixels of each patch that are masked (n2v: 0.198 %), drawn stratified: one per box of
    ``(100 / masked_percent) ** (1 / ndim)`` pixels a side."""
    neighborhood_radius: int = Field(5, ge=1, le=32)
    """A masked pixel takes the value of a random other pixel within this radius (never itself)."""
    patch_size: int = Field(64, ge=8)
    """Edge of the training patches (YX) in pixels."""
    patch_depth: int = Field(16, ge=2)
    """Depth of 3D training patches (Z)."""
    batch_size: int = Field(16, ge=1)
    """Patches per step (n2v uses 128 on a GPU)."""
    steps: int = Field(2000, ge=1)
    """Training steps."""
    learning_rate: float = Field(4e-4, gt=0)
    """Adam learning rate (n2v: 4e-4)."""
    decay_start: float = Field(0.5, ge=0, le=1)
    """Fraction of training after which the learning rate decays linearly to 10 % of its start."""
    loss: Literal["mse", "mae"] = "mse"
    """Loss on the masked pixels."""
    augment: bool = True
    """Random rotations by 90 degrees and flips of the patches."""
    foreground_bias: float = Field(0.0, ge=0, le=1)
    """Share of patches drawn where the image is bright (n2v draws uniformly)."""
    validation_fraction: float = Field(0.1, ge=0, lt=1)
    """Share of images (or, with one image, of its area) held out for the validation loss; 0: none."""
    validation_every: int = Field(200, ge=1)
    """Steps between validations."""
    checkpoint_every: int = Field(200, ge=1)
    """Steps between checkpoints."""
    seed: int = Field(0, ge=0)
    """Random seed (weights, patches, masks, augmentation)."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Mixed precision on CUDA (auto: bf16 where supported); CPU always trains in fp32."""

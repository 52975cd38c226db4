"""CARE training configuration (pydantic): every field has a default and a docstring."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from microrestore.configs import FNSMOptions, KernelSize, UNetDepth, UNetFilters


class CareConfig(FNSMOptions):
    """Configuration of a supervised CARE model (Weigert et al. 2018) and its training.

    ``fnsm: true`` (with ``na``, ``wavelength_nm`` and the pixel size) adds the Fourier noise-suppression module
    of TiS/SiS-rDL at the U-Net's input (see :class:`microrestore.configs.FNSMOptions`).
    """

    model_config = ConfigDict(extra="forbid")

    ndim: Literal[2, 3] = 2
    """Spatial dimensions of the network: 2 (planes; stacks are treated as samples) or 3 (volumes)."""
    depth: UNetDepth = 2
    """U-Net depth (pooling levels)."""
    base_filters: UNetFilters = 32
    """Filters of the first level; doubled at each level."""
    kernel_size: KernelSize = 3
    """Convolution kernel size."""
    residual: bool = True
    """Predict a correction added to the input (CARE's default for denoising)."""
    patch_size: int = Field(64, ge=16)
    """Edge of the training patches (YX) in pixels."""
    patch_depth: int = Field(16, ge=4)
    """Depth of 3D training patches (Z)."""
    batch_size: int = Field(16, ge=1)
    """Patches per step."""
    steps: int = Field(2000, ge=1)
    """Training steps."""
    learning_rate: float = Field(4e-4, gt=0)
    """Adam learning rate (CSBDeep's default)."""
    decay_start: float = Field(0.5, ge=0, le=1)
    """Fraction of training after which the learning rate decays linearly to 10 % of its start."""
    loss: Literal["mae", "mse"] = "mae"
    """Training loss (CSBDeep uses MAE, the Laplace likelihood without uncertainty)."""
    normalization: Literal["percentile", "noise"] = "percentile"
    """Intensity normalisation: ``percentile`` (CSBDeep: each image's ``percentile_low``/``percentile_high`` mapped
    to 0/1) or ``noise`` (camera-independent: each image's own Poisson-Gaussian noise model, fitted on the image,
    stabilised to unit variance; see :class:`microrestore.engine.normalization.NoiseStabilizingNormalizer`). With
    ``noise`` the targets always take their input's parameters."""
    percentile_low: float = Field(1.0, ge=0, lt=50)
    """Lower percentile of the normalisation."""
    percentile_high: float = Field(99.8, gt=50, le=100)
    """Upper percentile of the normalisation."""
    target_normalization: Literal["source", "own"] = "source"
    """How targets are normalised: ``source`` applies each pair's input parameters to its target, so the
    network learns in the input's units and predictions map back to them exactly (microrestore's default:
    intensities are data); ``own`` normalises targets by their own percentiles (CSBDeep), which leaves
    predictions in the target's relative scale."""
    augment: bool = True
    """Random rotations by 90 degrees and flips of the patches."""
    foreground_bias: float = Field(0.5, ge=0, le=1)
    """Share of patches drawn where the target is bright (CSBDeep's patch filter)."""
    validation_fraction: float = Field(0.1, ge=0, lt=1)
    """Share of images (or, with one image, of its area) kept out of training for validation."""
    validation_every: int = Field(200, ge=1)
    """Steps between validations."""
    checkpoint_every: int = Field(200, ge=1)
    """Steps between checkpoints."""
    seed: int = 0
    """Random seed (weights, patches, augmentation)."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Mixed precision on CUDA (auto: bf16 where supported); CPU always trains in fp32."""

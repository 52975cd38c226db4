"""Configuration parts that trainable methods share (pydantic mixins; no torch).

A method's configuration inherits the parts it uses and declares only what is its own; a part's default that
does not suit a method is changed by declaring the field again in the method's class::

    class MyConfig(UNetOptions, PatchOptions, TrainingOptions):
        model_config = ConfigDict(extra="forbid")

        steps: int = Field(5000, ge=1)
        \"\"\"Training steps.\"\"\"
        my_option: float = 1.0
        \"\"\"What the method itself needs.\"\"\"

Field names are part of the model format (a model folder's ``config.yaml`` is read back through the method's
configuration): never rename one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from microrestore.configs import KernelSize, UNetDepth, UNetFilters

__all__ = ["NormalizationOptions", "PatchOptions", "Precision", "TrainingOptions", "UNetOptions"]

#: Mixed precision of training on CUDA (CPU always trains in fp32).
Precision = Literal["auto", "fp32", "bf16", "fp16"]


class TrainingOptions(BaseModel):
    """The training-loop fields every trainable method has (:func:`~microrestore.plugin_api.trainer_config`)."""

    batch_size: int = Field(16, ge=1)
    """Patches per step."""
    steps: int = Field(2000, ge=1)
    """Training steps."""
    learning_rate: float = Field(4e-4, gt=0)
    """Adam learning rate."""
    decay_start: float = Field(0.5, ge=0, le=1)
    """Fraction of training after which the learning rate decays linearly."""
    validation_fraction: float = Field(0.1, ge=0, lt=1)
    """Share of images (or, with one image, of its area) kept out of training for validation; 0: none."""
    validation_every: int = Field(200, ge=1)
    """Steps between validations."""
    checkpoint_every: int = Field(200, ge=1)
    """Steps between checkpoints."""
    seed: int = Field(0, ge=0)
    """Random seed (weights, patches, augmentation)."""
    precision: Precision = "auto"
    """Mixed precision on CUDA (auto: bf16 where supported); CPU always trains in fp32."""


class PatchOptions(BaseModel):
    """Random training patches: their size and augmentation, and how often they are drawn on bright structures."""

    patch_size: int = Field(64, ge=8)
    """Edge of the training patches (YX) in pixels."""
    patch_depth: int = Field(16, ge=2)
    """Depth of 3D training patches (Z)."""
    augment: bool = True
    """Random rotations by 90 degrees and flips of the patches."""
    foreground_bias: float = Field(0.0, ge=0, le=1)
    """Share of patches drawn where the target is bright (CSBDeep's patch filter); 0: uniform."""

    def patch_shape(self, ndim: int) -> tuple[int, ...]:
        """The patch shape of a ``ndim``-dimensional network: ``(patch_depth, size, size)`` or ``(size, size)``."""
        if ndim == 3:
            return (self.patch_depth, self.patch_size, self.patch_size)
        return (self.patch_size, self.patch_size)


class NormalizationOptions(BaseModel):
    """Percentile normalisation: each image's ``percentile_low`` and ``percentile_high`` mapped to 0 and 1."""

    percentile_low: float = Field(1.0, ge=0, lt=50)
    """Lower percentile of the normalisation."""
    percentile_high: float = Field(99.8, gt=50, le=100)
    """Upper percentile of the normalisation."""


class UNetOptions(BaseModel):
    """A U-Net (CARE, Noise2Void): built by :func:`~microrestore.plugin_api.build_unet`."""

    ndim: Literal[2, 3] = 2
    """Spatial dimensions of the network: 2 (planes; stacks are treated as samples) or 3 (volumes)."""
    depth: UNetDepth = 2
    """U-Net depth (pooling levels)."""
    base_filters: UNetFilters = 32
    """Filters of the first level; doubled at each level."""
    kernel_size: KernelSize = 3
    """Convolution kernel size."""
    residual: bool = True
    """Predict a correction added to the input."""

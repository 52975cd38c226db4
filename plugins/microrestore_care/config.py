"""CARE training configuration (pydantic): every field has a default and a docstring."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from microrestore.plugin_api import FNSMOptions, NormalizationOptions, PatchOptions, TrainingOptions, UNetOptions


class CareConfig(UNetOptions, PatchOptions, NormalizationOptions, TrainingOptions, FNSMOptions):
    """Configuration of a supervised CARE model (Weigert et al. 2018) and its training (CSBDeep's defaults).

    ``fnsm: true`` (with ``na``, ``wavelength_nm`` and the pixel size) adds the Fourier noise-suppression module
    of TiS/SiS-rDL at the U-Net's input (see :class:`microrestore.plugin_api.FNSMOptions`).
    """

    model_config = ConfigDict(extra="forbid")

    patch_size: int = Field(64, ge=16)
    """Edge of the training patches (YX) in pixels."""
    patch_depth: int = Field(16, ge=4)
    """Depth of 3D training patches (Z)."""
    foreground_bias: float = Field(0.5, ge=0, le=1)
    """Share of patches drawn where the target is bright (CSBDeep's patch filter)."""
    loss: Literal["mae", "mse"] = "mae"
    """Training loss (CSBDeep uses MAE, the Laplace likelihood without uncertainty)."""
    normalization: Literal["percentile", "noise"] = "percentile"
    """Intensity normalisation: ``percentile`` (CSBDeep: each image's ``percentile_low``/``percentile_high`` mapped
    to 0/1) or ``noise`` (camera-independent: each image's own Poisson-Gaussian noise model, fitted on the image,
    stabilised to unit variance). With ``noise`` the targets always take their input's parameters."""
    target_normalization: Literal["source", "own"] = "source"
    """How targets are normalised: ``source`` applies each pair's input parameters to its target, so the
    network learns in the input's units and predictions map back to them exactly (microrestore's default:
    intensities are data); ``own`` normalises targets by their own percentiles (CSBDeep), which leaves
    predictions in the target's relative scale."""

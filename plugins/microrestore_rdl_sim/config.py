"""rDL-SIM configuration (pydantic): training (both stages) and inference options.

Both extend :class:`~microrestore.structured_illumination.options.SIMOptions`, so the optics, OTF, frame order and
estimation tolerances are the same options as for ``wiener-sim``. The training configuration's optics are saved in the
model and serve as defaults at inference (``na``, wavelengths, pixel size, OTF attenuation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from microrestore.structured_illumination.options import SIMOptions

#: Optics fields a model carries from training to inference when the user does not give them.
OPTICS_FIELDS = ("na", "wavelength_nm", "pixel_size_nm", "na_exc", "wavelength_exc_nm", "immersion_index")


class RDLSIMPredictOptions(SIMOptions):
    """Inference options of ``rdl-sim`` (``microrestore sim reconstruct --method rdl``, ``--set key=value``).

    Optics left unset (``na``, ``wavelength_nm``, ``na_exc``, ``wavelength_exc_nm``, and ``pixel_size_nm``
    when the image has none) come from the model's training configuration.
    """

    denoised: Path | None = None
    """Also write the rDL-denoised raw frames (in the input's units, float32, the input's frame order) to this
    TIFF file."""
    reestimate: bool = False
    """Estimate the illumination parameters again on the denoised frames for the Wiener step (default: the
    parameters from the noisy frames, which also generated the pattern-modulated images)."""


class RDLSIMConfig(SIMOptions):
    """Training of rDL-SIM: the DFCAN SR module (stage 1) and the rDL denoiser (stage 2).

    Data: noisy raw 9-frame stacks (``--source``), their high-SNR raw stacks (``--target``, paired by file name,
    or found by layout) and SR targets (``sr_target``, or by layout). Layouts found without ``--target``:
    BioSR (``RawSIMData_level_NN.mrc`` beside ``RawSIMData_gt.mrc`` and ``SIM_gt.mrc``) and
    ``microrestore simulate sim`` (``raw/NAME`` beside ``raw_clean/NAME`` and ``gt/NAME``).
    """

    stage: Literal["both", "dfcan", "denoiser"] = "both"
    """What to train: ``dfcan`` (SR module), ``denoiser`` (needs a trained DFCAN: ``sr_model``, or this model
    folder after a ``dfcan`` run), or ``both`` in turn."""
    sr_model: str | None = None
    """Model folder (or zoo id) of an rdl-sim model whose DFCAN the denoiser stage uses."""
    sr_target: list[str] | None = None
    """SR target images (files, folders or globs), paired with the sources by file name; default: by layout."""

    dfcan_channels: int = Field(64, ge=4, le=512)
    """DFCAN feature channels (64 in the paper)."""
    dfcan_groups: int = Field(4, ge=1, le=16)
    """DFCAN residual groups (4)."""
    dfcan_fcab: int = Field(4, ge=1, le=16)
    """FCABs per DFCAN group (4)."""
    denoiser_channels: int = Field(64, ge=4, le=512)
    """Denoiser feature channels (64)."""
    denoiser_groups: tuple[int, int, int] = (2, 5, 5)
    """Residual groups of the denoiser's generated-image branch, raw-frame branch and fused trunk (2, 5, 5)."""
    denoiser_rcab: int = Field(5, ge=1, le=16)
    """RCABs per denoiser group (5)."""
    denoiser_tail_channels: int = Field(256, ge=4, le=1024)
    """Width of the denoiser's last conv and its channel attention (256)."""
    reduction: int = Field(16, ge=1, le=64)
    """Channel-attention reduction of both networks (16)."""

    patch_size: int = Field(128, ge=16)
    """Edge of the raw-grid training patches (the SR targets are cropped at twice this); 128 in the paper."""
    dfcan_batch_size: int = Field(4, ge=1)
    """Raw stacks per DFCAN step (4)."""
    denoiser_batch_size: int = Field(1, ge=1)
    """Raw stacks per denoiser step, each giving its 3 orientations (1: a batch of 3, as the paper)."""
    dfcan_steps: int = Field(100_000, ge=1)
    """DFCAN training steps (``--steps`` sets both stages)."""
    denoiser_steps: int = Field(200_000, ge=1)
    """Denoiser training steps."""
    learning_rate: float = Field(1e-4, gt=0)
    """Adam learning rate at the start (1e-4)."""
    lr_decay_factor: float = Field(0.5, gt=0, lt=1)
    """Reduce-on-plateau factor (0.5)."""
    min_learning_rate: float = Field(1e-5, gt=0)
    """Floor of the learning rate (1e-5)."""
    plateau_patience: int = Field(10, ge=1)
    """Validations without a validation-NRMSE improvement (by more than 1e-4) before the rate is reduced."""
    ssim_weight: float = Field(0.1, ge=0)
    """Weight of ``1 - SSIM`` in the loss ``MSE + w (1 - SSIM)`` (0.1)."""
    augment: bool = False
    """Random 90-degree rotations and flips of the training patches (all inputs and targets together); the
    authors' code has none."""
    validation_fraction: float = Field(0.1, ge=0, lt=1)
    """Share of the stacks kept for validation (at least one when there are two or more)."""
    validation_size: int = Field(256, ge=16)
    """Validation stacks are centre-cropped to at most this edge (raw grid) to keep validation fast."""
    validation_every: int = Field(1000, ge=1)
    """Steps between validations (each can lower the rate and updates the best checkpoint)."""
    checkpoint_every: int = Field(1000, ge=1)
    """Steps between checkpoints."""
    seed: int = Field(0, ge=0)
    """Random seed (weights, patches, validation split)."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Mixed precision on CUDA (auto: bf16 where supported); CPU always trains in fp32."""

    @field_validator("denoiser_groups")
    @classmethod
    def _groups(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(value) < 0:
            raise ValueError("group counts must be non-negative")
        return value

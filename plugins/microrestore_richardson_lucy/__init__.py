"""Richardson-Lucy deconvolution (method ``richardson-lucy``), optionally TV-regularised.

The PSF comes from a TIFF file (``psf=PATH``, 2D or 3D) or is computed from the optics (``na``,
``wavelength_nm``, pixel size, ``immersion_index``, ``defocus_um``) with :func:`microrestore.optics.pupil_psf`.
The background is subtracted first and added back at the end; the result keeps the input's total flux.
Needs no model and no training. See ``docs/methods/richardson-lucy.md``.

This module stays import-light: numpy and scipy are imported only when a predictor runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from microrestore import hookimpl
from microrestore.errors import InputError
from microrestore.plugins.registry import Method, PredictOptions

if TYPE_CHECKING:
    from microrestore_richardson_lucy.predictor import RichardsonLucyPredictor

__all__ = ["RichardsonLucyParams", "load", "register_methods"]

CITATION = (
    "Richardson (1972) Bayesian-based iterative method of image restoration, JOSA 62(1); "
    "Lucy (1974) An iterative technique for the rectification of observed distributions, AJ 79(6); "
    "Dey et al. (2006) Richardson-Lucy algorithm with total variation regularization for 3D confocal "
    "microscope deconvolution, Microsc. Res. Tech. 69(4)"
)


class RichardsonLucyParams(BaseModel):
    """Options of ``richardson-lucy`` (``--set key=value``).

    Attributes
    ----------
    iterations
        Number of Richardson-Lucy iterations.
    tv_weight
        Total-variation regularisation weight (Dey et al. 2006); 0 for plain RL, ~0.002 is typical.
    background
        Background level in image units, subtracted before and added back after deconvolution; estimated
        as ``background_percentile`` of the lightly smoothed image (per plane, or per volume in 3D) when
        not given.
    background_percentile
        Percentile used to estimate the background.
    psf
        TIFF file with a 2D or 3D PSF (centred; normalised on reading). Excludes the optics options.
    na, wavelength_nm, immersion_index
        Detection NA, emission wavelength (nm) and immersion index for a computed pupil-function PSF.
    pixel_size_nm
        Pixel size in the sample plane (nm); default from the image's metadata.
    defocus_um
        Defocus of the computed PSF in micrometres.
    dims
        2 to deconvolve each YX plane, 3 to deconvolve ZYX volumes; by default 3 when a 3D PSF file is
        given and the image has a Z axis, else 2. A computed 3D PSF needs ``z_step_nm`` (or the image's Z
        pixel size).
    z_step_nm
        Z spacing of the stack for a computed 3D PSF; default from the image's metadata.
    """

    model_config = ConfigDict(extra="forbid")

    iterations: int = Field(default=30, ge=1, le=10_000)
    tv_weight: float = Field(default=0.0, ge=0.0, le=0.2)
    background: float | None = None
    background_percentile: float = Field(default=1.0, ge=0.0, le=100.0)
    psf: Path | None = None
    na: float | None = Field(default=None, gt=0)
    wavelength_nm: float | None = Field(default=None, gt=0)
    pixel_size_nm: float | None = Field(default=None, gt=0)
    immersion_index: float = Field(default=1.518, gt=0)
    defocus_um: float = 0.0
    dims: Literal[2, 3] | None = None
    z_step_nm: float | None = Field(default=None, gt=0)


def load(model: str | Path | None, options: PredictOptions) -> RichardsonLucyPredictor:
    """Return the ``richardson-lucy`` predictor; ``model`` must be ``None`` or ``"none"``."""
    if model is not None and str(model).strip().lower() not in ("", "none"):
        raise InputError(f"richardson-lucy needs no model (got --model {model})")
    params = _validate(options.params)
    optics_given = [k for k in ("na", "wavelength_nm", "pixel_size_nm") if getattr(params, k) is not None]
    if params.psf is not None and optics_given:
        raise InputError(f"richardson-lucy: give either psf= or the optics ({', '.join(optics_given)}=...), not both")
    if params.psf is None and (params.na is None or params.wavelength_nm is None):
        raise InputError(
            "richardson-lucy needs a PSF: --set psf=FILE.tif, or the optics with --set na=... "
            "--set wavelength_nm=... (and --set pixel_size_nm=... when the image has no pixel size)"
        )
    from microrestore_richardson_lucy.predictor import RichardsonLucyPredictor

    return RichardsonLucyPredictor(params)


def _validate(params: dict[str, Any] | None) -> RichardsonLucyParams:
    from microrestore.configs import validate

    return validate(RichardsonLucyParams, params, "--set for method 'richardson-lucy'")


@hookimpl
def register_methods(register: Any) -> None:
    """Register ``richardson-lucy``."""
    register(
        Method(
            name="richardson-lucy",
            task="deblur",
            summary="Richardson-Lucy deconvolution with a computed or measured PSF; no model needed",
            load=load,
            needs_model=False,
            predict_schema=RichardsonLucyParams,
            citation=CITATION,
        )
    )

"""Non-local means denoising after a variance-stabilising transform (method ``nl-means``).

The Poisson-Gaussian noise model is estimated from the image itself (or given), the generalised Anscombe
transform makes the noise close to unit-variance Gaussian, fast non-local means (Darbon et al. 2008)
denoises each YX plane, and the closed-form exact unbiased inverse (Makitalo & Foi 2013) brings the result
back to the input's units. Needs no model and no training. See ``docs/methods/nl-means.md``.

This module stays import-light: numpy and scipy are imported only when a predictor runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from microrestore import hookimpl
from microrestore.errors import InputError
from microrestore.plugins.registry import Method, PredictOptions

if TYPE_CHECKING:
    from microrestore_nlmeans.noise import NoiseModel
    from microrestore_nlmeans.predictor import NLMeansPredictor

__all__ = ["NLMeansParams", "estimate_poisson_gaussian", "load", "register_methods"]

CITATION = (
    "Buades, Coll & Morel (2005) A non-local algorithm for image denoising, CVPR; "
    "Darbon et al. (2008) Fast nonlocal filtering applied to electron cryomicroscopy, ISBI; "
    "Makitalo & Foi (2013) Optimal inversion of the generalized Anscombe transformation for "
    "Poisson-Gaussian noise, IEEE TIP 22(1)"
)


class NLMeansParams(BaseModel):
    """Options of ``nl-means`` (``--set key=value``).

    Attributes
    ----------
    gain
        Camera gain in image units per detected photon; estimated from the image when not given.
    read_noise
        Standard deviation of the signal-independent (read) noise in image units; estimated when not given.
    offset
        Image value of zero photons (camera offset or baseline); estimated when not given.
    patch_size
        Edge of the compared patches in pixels (odd).
    search_size
        Edge of the search window in pixels (odd).
    h
        Filtering strength in units of the stabilised noise's standard deviation (which is 1).
    """

    model_config = ConfigDict(extra="forbid")

    gain: float | None = Field(default=None, gt=0)
    read_noise: float | None = Field(default=None, ge=0)
    offset: float | None = None
    patch_size: int = Field(default=5, ge=1, le=15)
    search_size: int = Field(default=13, ge=3, le=41)
    h: float = Field(default=0.9, gt=0, le=10)

    @field_validator("patch_size", "search_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd")
        return value


def load(model: str | Path | None, options: PredictOptions) -> NLMeansPredictor:
    """Return the ``nl-means`` predictor; ``model`` must be ``None`` or ``"none"``."""
    if model is not None and str(model).strip().lower() not in ("", "none"):
        raise InputError(f"nl-means needs no model (got --model {model})")
    params = _validate(options.params)
    from microrestore_nlmeans.predictor import NLMeansPredictor

    return NLMeansPredictor(params)


def estimate_poisson_gaussian(image: Any, **known: float | None) -> NoiseModel:
    """Estimate ``(gain, sigma2, offset)`` of Poisson-Gaussian noise from ``image`` (see :mod:`.noise`)."""
    from microrestore_nlmeans.noise import estimate_poisson_gaussian as estimate

    return estimate(image, **known)  # type: ignore[arg-type]


def _validate(params: dict[str, Any] | None) -> NLMeansParams:
    from microrestore.configs import validate

    return validate(NLMeansParams, params, "--set for method 'nl-means'")


@hookimpl
def register_methods(register: Any) -> None:
    """Register ``nl-means``."""
    register(
        Method(
            name="nl-means",
            task="denoise",
            summary="Non-local means after a variance-stabilising transform; no model needed",
            load=load,
            needs_model=False,
            predict_schema=NLMeansParams,
            citation=CITATION,
        )
    )

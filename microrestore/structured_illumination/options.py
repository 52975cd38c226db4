"""Options shared by every SIM method (pydantic): optics, OTF, frame order, Wiener filter, estimation.

A SIM method's ``predict_schema`` subclasses :class:`SIMOptions` (adding its own fields), so
``microrestore sim reconstruct`` can hand the same flags to any method. Units follow the project: nanometres
where a name says ``_nm``, cycles per micrometre where it says ``_per_um``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from microrestore.errors import InputError

__all__ = ["EstimationOptions", "SIMOptions"]


class EstimationOptions(BaseModel):
    """Tolerances of the illumination parameter estimation.

    See :func:`~microrestore.structured_illumination.estimate.estimate_params`.

    Attributes
    ----------
    k_search
        Half-width of the annulus searched for the pattern peak, as a fraction of the nominal ``|k|``
        (``2 na_exc / wavelength_exc``).
    k_tolerance
        A fitted ``|k|`` further than this fraction from the nominal value is replaced (fallback).
    k_agreement
        When no orientation fits the nominal ``|k|`` but two or more significant peaks (at angles ``180 /
        n_orientations`` apart) agree with each other within this fraction, the fitted values are used (the
        excitation optics are then wrong or defaulted; a warning says so).
    min_significance
        Smallest peak significance (peak height above the median of the search annulus, in robust standard
        deviations) accepted as a real pattern peak.
    angles_deg
        Nominal pattern angles (``atan2(ky, kx)``, degrees, one per orientation), used when an angle cannot be
        fitted and checked against the fit; ``None``: unknown (failed orientations are then placed at equal
        spacing from the fitted ones).
    angle_tolerance_deg
        A fitted angle further than this from ``angles_deg`` (modulo 180) is replaced.
    modulation_range
        Accepted range of the fitted modulation depth; outside it ``default_modulation`` is used.
    default_modulation
        Modulation depth used when the fit is out of range.
    dc_exclusion
        Radius around each band's centre left out of the overlap (fraction of the detection cut-off): the
        zero-frequency region carries the camera offset and unmodulated background, which bias the fit.
    otf_threshold
        Frequencies where either overlapping OTF is below this value are left out.
    """

    model_config = ConfigDict(extra="forbid")

    k_search: float = Field(default=0.15, gt=0.0, lt=0.9)
    k_tolerance: float = Field(default=0.1, gt=0.0, lt=1.0)
    k_agreement: float = Field(default=0.02, ge=0.0, lt=0.5)
    min_significance: float = Field(default=10.0, ge=0.0)
    angles_deg: list[float] | None = None
    angle_tolerance_deg: float = Field(default=5.0, gt=0.0, le=90.0)
    modulation_range: tuple[float, float] = (0.05, 1.5)
    default_modulation: float = Field(default=0.8, gt=0.0, le=1.0)
    dc_exclusion: float = Field(default=0.15, ge=0.0, lt=0.9)
    otf_threshold: float = Field(default=0.005, ge=0.0, lt=1.0)


class SIMOptions(BaseModel):
    """Options of SIM reconstruction (``microrestore sim reconstruct`` flags, or ``--set key=value``).

    Attributes
    ----------
    na
        Detection numerical aperture.
    wavelength_nm
        Emission (detection) wavelength, nanometres.
    pixel_size_nm
        Raw pixel size in the sample plane, nanometres; default from the image's metadata.
    na_exc, wavelength_exc_nm
        Excitation NA and wavelength that set the nominal pattern frequency ``|k| = 2 na_exc / wavelength_exc``;
        default ``na`` and ``wavelength_nm``.
    immersion_index
        Refractive index of the immersion medium (only checks that ``na`` is below it).
    otf
        OTF file: an rDL-SIM style MRC radial OTF (complex, spacing in the header), a TIFF radial profile
        (``otf_dk_per_um`` needed), or a TIFF PSF (2D, or 3D: brightest plane) at the raw pixel size. Default:
        the ideal OTF from ``na`` and ``wavelength_nm``.
    otf_dk_per_um
        Sample spacing of a radial OTF profile, cycles per micrometre (overrides an MRC header).
    otf_attenuation
        Exponent applied to the computed ideal OTF (> 1 models a real objective's mid-frequency loss).
    pixel_transfer
        Multiply the computed OTF by the camera pixel's transfer function (``sinc``); measured OTFs have it.
    n_orientations, n_phases
        Pattern orientations and phases per raw stack.
    order
        Frame order of a raw stack: ``angle-major`` (all phases of one orientation together) or ``phase-major``.
    params
        JSON parameter file (from ``microrestore sim estimate``) used instead of estimating.
    per_stack
        Estimate parameters for each raw stack of a time series (default: once, on the mean of all stacks).
    wiener
        Wiener constant ``w``: the filter's denominator is ``w**2 + sum |OTF_band|**2``; ``"auto"`` (default)
        chooses it from the noise of the raw frames (:mod:`microrestore.structured_illumination.wiener_auto`).
    apodization
        Final apodisation over the extended support (cut-off + ``|k|``): ``otf`` (the ideal OTF's shape),
        ``triangle``, ``cosine`` (bell) or ``none``.
    apodization_cutoff
        Apodisation support as a fraction of the extended support.
    apodization_bend
        Exponent of the apodisation (``triangle**bend``, ...); < 1 keeps more high frequencies.
    notch_strength
        Depth of the notch at every band centre (OTF attenuation, 0: off, 0.99: strong), which suppresses
        out-of-focus light and honeycomb artefacts.
    notch_width_per_um
        Full width at half maximum of the notch, cycles per micrometre.
    modulation_weighting
        Weight each side band by its modulation (Gustafsson's band OTFs ``(m / 2) OTF``; weak bands are not
        amplified); ``False`` divides side bands by ``m / 2`` first (fairSIM, napari-sim-processor).
    equalize
        Match each orientation's mean intensity to the stack's (laser power or bleaching differences).
    border_px
        Width of the cosine taper that blends each frame's border into the stack mean (no FFT wrap edges).
    estimation
        Tolerances of the parameter estimation.
    """

    model_config = ConfigDict(extra="forbid")

    na: float | None = Field(default=None, gt=0.0)
    wavelength_nm: float | None = Field(default=None, gt=0.0)
    pixel_size_nm: float | None = Field(default=None, gt=0.0)
    na_exc: float | None = Field(default=None, gt=0.0)
    wavelength_exc_nm: float | None = Field(default=None, gt=0.0)
    immersion_index: float = Field(default=1.518, gt=1.0)
    otf: Path | None = None
    otf_dk_per_um: float | None = Field(default=None, gt=0.0)
    otf_attenuation: float = Field(default=1.0, gt=0.0, le=10.0)
    pixel_transfer: bool = True
    n_orientations: int = Field(default=3, ge=1, le=16)
    n_phases: int = Field(default=3, ge=3, le=16)
    order: Literal["angle-major", "phase-major"] = "angle-major"
    params: Path | None = None
    per_stack: bool = False
    wiener: Annotated[float, Field(gt=0.0, le=10.0)] | Literal["auto"] = "auto"
    apodization: Literal["otf", "triangle", "cosine", "none"] = "otf"
    apodization_cutoff: float = Field(default=1.0, gt=0.0, le=2.0)
    apodization_bend: float = Field(default=1.0, gt=0.0, le=10.0)
    notch_strength: float = Field(default=0.0, ge=0.0, lt=1.0)
    notch_width_per_um: float = Field(default=1.2, gt=0.0)
    modulation_weighting: bool = True
    equalize: bool = True
    border_px: int = Field(default=8, ge=0, le=256)
    estimation: EstimationOptions = Field(default_factory=EstimationOptions)

    @property
    def n_frames(self) -> int:
        """Frames per raw stack."""
        return self.n_orientations * self.n_phases

    def resolved_pixel_size_nm(
        self, image_pixel_size: dict[str, float] | None = None, path: Path | None = None
    ) -> float:
        """The raw pixel size: ``pixel_size_nm`` when given, else the image's X (or Y) pixel size."""
        if self.pixel_size_nm is not None:
            return float(self.pixel_size_nm)
        sizes = image_pixel_size or {}
        um = sizes.get("X") or sizes.get("Y")
        if not um or not math.isfinite(float(um)) or float(um) <= 0:
            raise InputError(
                "SIM needs the raw pixel size: the image has none in its metadata; give --pixel-size", path
            )
        return float(um) * 1000.0

    def nominal_k_per_um(self) -> float | None:
        """``2 na_exc / wavelength_exc`` in cycles per micrometre, or ``None`` without the optics."""
        na = self.na_exc if self.na_exc is not None else self.na
        lam = self.wavelength_exc_nm if self.wavelength_exc_nm is not None else self.wavelength_nm
        if na is None or lam is None:
            return None
        return 2.0 * na / (lam / 1000.0)

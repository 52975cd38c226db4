"""Microscope optics and point-spread functions.

:class:`Optics` holds the numbers that set a widefield fluorescence microscope's resolution. The PSFs are
scalar (no polarisation or vectorial effects, no aplanatic apodisation, no refractive-index mismatch beyond
the optional spherical aberration term); at high NA a vectorial model gives a somewhat wider focus.

- :func:`pupil_psf`: the intensity PSF of a circular pupil of radius NA/λ, with defocus
  ``exp(i 2π z sqrt((n/λ)² - k²))`` (exact, not the paraxial quadratic) and optional primary spherical
  aberration, evaluated at several points per camera pixel and integrated over the pixel.
- :func:`psf_3d`: planes of :func:`pupil_psf` at regular defocus steps.
- :func:`gaussian_psf`: the best-fit Gaussian (σ = 0.21 λ/NA, Zhang et al., Appl. Opt. 2007), for comparison.

All PSFs are centred at ``shape // 2`` and sum to 1.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

from microrestore.errors import InputError

__all__ = ["Optics", "gaussian_psf", "psf_3d", "pupil_psf"]


def _positive(name: str, value: float) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Optics:
    """Imaging parameters of a widefield fluorescence microscope.

    Parameters
    ----------
    na : float
        Detection numerical aperture; must be below ``immersion_index``.
    wavelength_nm : float
        Emission wavelength in vacuum, nanometres.
    pixel_size_nm : float
        Pixel size in the sample plane (camera pixel / magnification), nanometres.
    immersion_index : float
        Refractive index of the immersion medium (1.518 for oil).
    z_step_nm : float, optional
        Spacing of the planes of a z-stack, nanometres.

    Raises
    ------
    InputError
        When a value is not positive or ``na >= immersion_index``.
    """

    na: float
    wavelength_nm: float
    pixel_size_nm: float
    immersion_index: float = 1.518
    z_step_nm: float | None = None

    def __post_init__(self) -> None:
        _positive("na", self.na)
        _positive("wavelength_nm", self.wavelength_nm)
        _positive("pixel_size_nm", self.pixel_size_nm)
        _positive("immersion_index", self.immersion_index)
        if self.z_step_nm is not None:
            _positive("z_step_nm", self.z_step_nm)
        for name in ("na", "wavelength_nm", "pixel_size_nm", "immersion_index", "z_step_nm"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))  # plain floats (numpy scalars, ints accepted)
        if self.na >= self.immersion_index:
            raise InputError(f"na {self.na} must be smaller than the immersion index {self.immersion_index}")

    @property
    def wavelength_um(self) -> float:
        """Emission wavelength in micrometres."""
        return self.wavelength_nm / 1000.0

    @property
    def pixel_size_um(self) -> float:
        """Pixel size in micrometres."""
        return self.pixel_size_nm / 1000.0

    @property
    def cutoff_per_um(self) -> float:
        """Lateral cut-off frequency of the incoherent OTF, 2 NA / λ, in cycles per micrometre."""
        return 2.0 * self.na / self.wavelength_um

    @property
    def axial_cutoff_per_um(self) -> float:
        """Axial extent of the widefield OTF, (n - sqrt(n² - NA²)) / λ, in cycles per micrometre."""
        n = self.immersion_index
        return (n - math.sqrt(n * n - self.na * self.na)) / self.wavelength_um

    @property
    def nyquist_pixel_nm(self) -> float:
        """Largest pixel size that samples the OTF's support without aliasing, λ / (4 NA)."""
        return self.wavelength_nm / (4.0 * self.na)

    @property
    def nyquist_z_step_nm(self) -> float:
        """Largest z step that samples the widefield OTF's axial extent, 1 / (2 axial cut-off)."""
        return 1000.0 / (2.0 * self.axial_cutoff_per_um)

    @property
    def nyquist_ok(self) -> bool:
        """Whether the pixel size (and the z step, when given) meet the Nyquist criterion."""
        ok = self.pixel_size_nm <= self.nyquist_pixel_nm
        if self.z_step_nm is not None:
            ok = ok and self.z_step_nm <= self.nyquist_z_step_nm
        return ok

    @property
    def sin_max(self) -> float:
        """Sine of the largest collection half-angle in the immersion medium, NA / n."""
        return self.na / self.immersion_index


def _shape(shape: Sequence[int], ndim: int, name: str) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a sequence of {ndim} integers, got {shape!r}") from None
    if len(out) != ndim or any(s < 1 for s in out):
        raise InputError(f"{name} must be {ndim} positive integers, got {shape!r}")
    return out


def _auto_oversample(optics: Optics) -> int:
    # Samples per pixel for the pixel integral (midpoint rule): spaced at most λ / (8 NA), half the Nyquist
    # interval, and at least 3 x 3 per pixel.
    return max(3, math.ceil(optics.pixel_size_nm / (0.5 * optics.nyquist_pixel_nm)))


def _psf_planes(
    optics: Optics,
    shape_yx: tuple[int, int],
    z_um: Sequence[float],
    oversample: int | None,
    spherical_waves: float,
) -> NDArray[np.float64]:
    """Pixel-integrated intensity PSF planes at defocus ``z_um`` (not normalised), centred at shape // 2.

    The amplitude is the Fourier integral of the pupil, evaluated directly at ``oversample`` x
    ``oversample`` points inside each output pixel (a matrix Fourier transform), so no FFT grid has to hold
    the field; the pupil's frequency spacing makes the transform's period (3 times the output plus the
    defocus blur) large enough that the periodic replicas of the slowly decaying diffraction tails stay
    far from the window. The pupil and its aberrations depend on ``|k|`` only, so the pupil is even along
    each axis and the transform is a product of real cosine matrices over ``k >= 0``.
    """
    os_ = _auto_oversample(optics) if oversample is None else oversample
    if isinstance(os_, bool) or not isinstance(os_, int | np.integer) or os_ < 1:
        raise InputError(f"oversample must be a positive integer, got {oversample!r}")
    if not math.isfinite(spherical_waves):
        raise InputError(f"spherical_waves must be finite, got {spherical_waves!r}")
    p_um = optics.pixel_size_um
    lam = optics.wavelength_um
    k_pupil = optics.na / lam
    z_max = max((abs(z) for z in z_um), default=0.0)
    tan_theta = optics.sin_max / math.sqrt(1.0 - optics.sin_max**2)
    period_um = 3.0 * max(shape_yx) * p_um + 2.0 * z_max * tan_theta + 4.0
    dk = 1.0 / period_um
    k1 = np.arange(math.ceil(k_pupil / dk) + 2) * dk
    k2 = k1[:, None] ** 2 + k1[None, :] ** 2
    # Anti-aliased pupil edge: each sample is weighted by (about) the fraction of its cell inside the disc,
    # so the discrete pupil keeps the disc's area and shape whatever the sampling.
    weight = np.clip(0.5 + (k_pupil - np.sqrt(k2)) / dk, 0.0, 1.0)
    kz = np.sqrt(np.maximum((optics.immersion_index / lam) ** 2 - k2, 0.0))
    aberration = np.zeros_like(k2)
    if spherical_waves:
        rho2 = np.minimum(k2 / (k_pupil * k_pupil), 1.0)
        aberration = 2.0 * np.pi * spherical_waves * math.sqrt(5.0) * (6 * rho2 * rho2 - 6 * rho2 + 1)
    fold = np.where(k1 > 0, 2.0, 1.0)  # k and -k together

    def cosines(n: int) -> NDArray[np.float64]:
        # sub-sample centres of each pixel, micrometres from the centre of pixel n // 2
        sub = (np.arange(os_) - (os_ - 1) / 2.0) / os_
        pos = ((np.arange(n) - n // 2)[:, None] + sub[None, :]).ravel() * p_um
        return np.cos(2.0 * np.pi * pos[:, None] * k1[None, :]) * fold[None, :]

    cy = cosines(shape_yx[0])
    cx_t = cosines(shape_yx[1]).T.copy()
    out = np.empty((len(z_um), *shape_yx), dtype=np.float64)
    for i, z in enumerate(z_um):
        phase = aberration + 2.0 * np.pi * z * kz
        re = cy @ (weight * np.cos(phase)) @ cx_t
        im = cy @ (weight * np.sin(phase)) @ cx_t
        inten = re * re + im * im
        out[i] = inten.reshape(shape_yx[0], os_, shape_yx[1], os_).sum(axis=(1, 3))
    return out


def pupil_psf(
    optics: Optics,
    shape_yx: Sequence[int],
    defocus_um: float = 0.0,
    oversample: int | None = None,
    *,
    spherical_waves: float = 0.0,
) -> NDArray[np.float64]:
    """Scalar widefield intensity PSF of a circular pupil, optionally defocused.

    The amplitude PSF is the inverse Fourier transform of the pupil ``P(k) = 1`` for ``|k| <= NA/λ``, times
    the defocus phase ``exp(i 2π z sqrt((n/λ)² - |k|²))``; the intensity ``|.|²`` is computed on a grid
    ``oversample`` times finer than the camera's, summed over each camera pixel, cropped to ``shape_yx``
    (the computation grid is padded so that the defocused disc does not wrap around) and normalised.

    Parameters
    ----------
    optics : Optics
        Detection optics.
    shape_yx : sequence of int
        Output shape ``(Y, X)``.
    defocus_um : float
        Distance of the emitter from the focal plane, micrometres (sign matters only with aberrations).
    oversample : int, optional
        Samples per camera pixel along each axis for the pixel integral; 1 gives point samples at pixel
        centres. By default samples are at most λ / (8 NA) apart, and at least 3 per pixel.
    spherical_waves : float
        Primary spherical aberration (Zernike Z(4,0), RMS-normalised) in waves; 0 for a perfect objective.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``shape_yx``, centred at ``shape // 2``, summing to 1.

    Raises
    ------
    InputError
        On a bad shape or oversampling factor.
    """
    shp = _shape(shape_yx, 2, "shape_yx")
    if not math.isfinite(defocus_um):
        raise InputError(f"defocus_um must be finite, got {defocus_um!r}")
    psf = _psf_planes(optics, (shp[0], shp[1]), [float(defocus_um)], oversample, spherical_waves)[0]
    return psf / psf.sum()


def psf_3d(
    optics: Optics,
    shape_zyx: Sequence[int],
    z_step_nm: float | None = None,
    oversample: int | None = None,
    *,
    spherical_waves: float = 0.0,
) -> NDArray[np.float64]:
    """Widefield 3D PSF: :func:`pupil_psf` planes at defocus ``(iz - Z // 2) * z_step``.

    Parameters
    ----------
    optics : Optics
        Detection optics.
    shape_zyx : sequence of int
        Output shape ``(Z, Y, X)``.
    z_step_nm : float, optional
        Plane spacing in nanometres; defaults to ``optics.z_step_nm``.
    oversample : int, optional
        See :func:`pupil_psf`.
    spherical_waves : float
        See :func:`pupil_psf`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``shape_zyx``, centred at ``shape // 2``, summing to 1 over the whole volume
        (each plane carries about the same energy, as in a widefield microscope).

    Raises
    ------
    InputError
        When no z step is known, or on a bad shape.
    """
    shp = _shape(shape_zyx, 3, "shape_zyx")
    step = z_step_nm if z_step_nm is not None else optics.z_step_nm
    if step is None:
        raise InputError("psf_3d needs z_step_nm, given or set on the Optics")
    _positive("z_step_nm", step)
    z_um = [(iz - shp[0] // 2) * step / 1000.0 for iz in range(shp[0])]
    psf = _psf_planes(optics, (shp[1], shp[2]), z_um, oversample, spherical_waves)
    return psf / psf.sum()


def gaussian_psf(optics: Optics, shape_yx: Sequence[int], sigma_nm: float | None = None) -> NDArray[np.float64]:
    """Gaussian approximation of the widefield PSF, integrated exactly over each pixel.

    Parameters
    ----------
    optics : Optics
        Detection optics (pixel size, and NA and wavelength for the default width).
    shape_yx : sequence of int
        Output shape ``(Y, X)``.
    sigma_nm : float, optional
        Standard deviation in nanometres; default ``0.21 λ / NA``, the least-squares fit to the paraxial
        in-focus widefield PSF (Zhang, Zerubia and Olivo-Marin, Appl. Opt. 46, 2007).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``shape_yx``, centred at ``shape // 2``, summing to 1.

    Raises
    ------
    InputError
        On a bad shape or width.
    """
    shp = _shape(shape_yx, 2, "shape_yx")
    sigma = 0.21 * optics.wavelength_nm / optics.na if sigma_nm is None else sigma_nm
    _positive("sigma_nm", sigma)
    s_px = sigma / optics.pixel_size_nm

    def profile(n: int) -> NDArray[np.float64]:
        edges = (np.arange(n + 1) - n // 2 - 0.5) / (math.sqrt(2.0) * s_px)
        return np.diff(special.erf(edges)) / 2.0

    psf = np.outer(profile(shp[0]), profile(shp[1]))
    return psf / psf.sum()

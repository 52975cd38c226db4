"""Optical transfer functions: from a PSF, the analytic incoherent OTF, radial profiles, and PSF files.

OTF arrays follow numpy's FFT layout: the zero frequency at index 0 (use ``np.fft.fftshift`` to display),
frequencies ``np.fft.fftfreq(n, d=pixel_size_um)`` in cycles per micrometre along each axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import fft as sfft

from microrestore.errors import InputError
from microrestore.optics.psf import Optics

__all__ = ["frequency_radius", "ideal_otf", "otf_from_psf", "radial_otf_to_2d", "read_psf"]


def frequency_radius(shape_yx: Sequence[int], pixel_size_nm: float) -> NDArray[np.float64]:
    """Return ``|k|`` in cycles per micrometre on the FFT grid of an image.

    Parameters
    ----------
    shape_yx : sequence of int
        Image shape ``(Y, X)``.
    pixel_size_nm : float
        Pixel size in nanometres.

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape_yx``, zero frequency at index ``(0, 0)``.
    """
    if len(shape_yx) != 2 or any(int(s) < 1 for s in shape_yx):
        raise InputError(f"shape_yx must be two positive integers, got {tuple(shape_yx)!r}")
    if not (math.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise InputError(f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}")
    d = pixel_size_nm / 1000.0
    ky = sfft.fftfreq(int(shape_yx[0]), d=d)[:, None]
    kx = sfft.fftfreq(int(shape_yx[1]), d=d)[None, :]
    return np.sqrt(ky * ky + kx * kx)


def otf_from_psf(psf: ArrayLike) -> NDArray[np.complex128]:
    """OTF of a PSF centred at ``shape // 2`` (any dimension), normalised to 1 at zero frequency.

    Parameters
    ----------
    psf : array_like
        The PSF, 2D or 3D, with its centre at ``shape // 2`` (the convention of this package's PSFs).

    Returns
    -------
    numpy.ndarray
        complex128 array of the PSF's shape: ``fftn(ifftshift(psf)) / sum(psf)``, zero frequency at index 0.

    Raises
    ------
    InputError
        When the PSF is empty, holds NaN or infinity, or sums to zero or less.
    """
    p = np.asarray(psf, dtype=np.float64)
    if p.size == 0:
        raise InputError("PSF is empty")
    if not np.isfinite(p).all():
        raise InputError("PSF contains NaN or infinite values")
    total = p.sum()
    if not total > 0:
        raise InputError(f"PSF must have a positive sum, got {total:.4g}")
    otf = sfft.fftn(sfft.ifftshift(p), workers=-1)
    return otf / total


def ideal_otf(optics: Optics, shape_yx: Sequence[int], attenuation: float = 1.0) -> NDArray[np.float64]:
    """Analytic incoherent 2D OTF of an aberration-free circular pupil.

    ``OTF(ρ) = 2/π (acos ρ - ρ sqrt(1 - ρ²))`` for ``ρ = |k| / (2 NA / λ) < 1``, and 0 beyond, raised to
    the power ``attenuation``: an exponent above 1 is a simple model of the mid-frequency loss of a real
    objective (aberrations, thick samples), as used when fitting OTFs for SIM reconstruction.

    Parameters
    ----------
    optics : Optics
        Detection optics.
    shape_yx : sequence of int
        Shape of the image the OTF applies to.
    attenuation : float
        Exponent applied to the ideal OTF; 1 leaves it unchanged.

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape_yx`` in [0, 1], zero frequency at index ``(0, 0)``.

    Raises
    ------
    InputError
        On a bad shape or a non-positive exponent.
    """
    if not (math.isfinite(attenuation) and attenuation > 0):
        raise InputError(f"attenuation must be a positive exponent, got {attenuation!r}")
    rho = frequency_radius(shape_yx, optics.pixel_size_nm) / optics.cutoff_per_um
    r = np.minimum(rho, 1.0)
    otf = (2.0 / np.pi) * (np.arccos(r) - r * np.sqrt(1.0 - r * r))
    otf[rho >= 1.0] = 0.0
    if attenuation != 1.0:
        otf = otf**attenuation
    return otf


def radial_otf_to_2d(
    profile_1d: ArrayLike, dk_per_um: float, shape_yx: Sequence[int], pixel_size_nm: float
) -> NDArray[np.float64]:
    """Expand a radially averaged 1D OTF to a 2D OTF on an image's FFT grid.

    rDL-SIM and other SIM codes store the OTF as a complex radial profile (e.g. the MRC files of rDL-SIM:
    257 samples at ``dk = 0.0312`` cycles/µm). The magnitude is interpolated linearly at each grid
    frequency ``|k|``, set to 0 beyond the last sample, and normalised to 1 at zero frequency.

    Parameters
    ----------
    profile_1d : array_like
        Radial OTF samples at ``k = i * dk_per_um``, real or complex; squeezed to 1D.
    dk_per_um : float
        Sample spacing in cycles per micrometre.
    shape_yx : sequence of int
        Shape of the target image.
    pixel_size_nm : float
        Pixel size of the target image in nanometres.

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape_yx``, zero frequency at index ``(0, 0)``.

    Raises
    ------
    InputError
        On an empty, non-1D or non-finite profile, a zero DC value, or a non-positive ``dk_per_um``.
    """
    prof = np.squeeze(np.asarray(profile_1d))
    if prof.ndim != 1 or prof.size < 2:
        raise InputError(f"radial OTF profile must be 1D with at least 2 samples, got shape {prof.shape}")
    if not np.isfinite(prof).all():
        raise InputError("radial OTF profile contains NaN or infinite values")
    if not (math.isfinite(dk_per_um) and dk_per_um > 0):
        raise InputError(f"dk_per_um must be a positive number, got {dk_per_um!r}")
    mag = np.abs(prof).astype(np.float64)
    if mag[0] == 0:
        raise InputError("radial OTF profile is 0 at zero frequency, cannot normalise")
    mag /= mag[0]
    k = frequency_radius(shape_yx, pixel_size_nm)
    grid = np.arange(mag.size) * float(dk_per_um)
    return np.interp(k, grid, mag, right=0.0)


def read_psf(path: str | Path) -> NDArray[np.float64]:
    """Read a measured or computed PSF from a TIFF file, normalised to sum 1.

    Parameters
    ----------
    path : str or Path
        TIFF file holding a 2D or 3D PSF (singleton dimensions are dropped).

    Returns
    -------
    numpy.ndarray
        float64 PSF summing to 1.

    Raises
    ------
    InputError
        When the file is missing or not a TIFF, or the PSF is empty, not 2D/3D, holds NaN, or does not sum
        to a positive value.
    """
    import tifffile

    path = Path(path)
    if not path.is_file():
        raise InputError("PSF file not found", path=path)
    try:
        data = tifffile.imread(path)
    except Exception as exc:  # tifffile raises several types for unreadable files
        raise InputError(f"cannot read the PSF as a TIFF ({type(exc).__name__}: {exc})", path=path) from exc
    psf = np.squeeze(np.asarray(data, dtype=np.float64))
    if psf.size == 0:
        raise InputError("PSF is empty", path=path)
    if psf.ndim not in (2, 3):
        raise InputError(f"PSF must be 2D or 3D, got shape {psf.shape}", path=path)
    if not np.isfinite(psf).all():
        raise InputError("PSF contains NaN or infinite values", path=path)
    total = psf.sum()
    if not total > 0:
        raise InputError(f"PSF must have a positive sum, got {total:.4g}", path=path)
    return psf / total

"""Camera model: Poisson shot noise, Gaussian read noise, gain, offset and 16-bit clipping (sCMOS-like).

A noise-free image ``d`` (fluorophore density scaled so that the brightest object pixel is 1) becomes

``counts = clip(round(gain * Poisson(qe * (photons * d + background)) + Normal(0, gain * read_noise)
+ offset), 0, 65535)``

as a ``uint16`` array, the way a camera digitises it; :func:`expected_counts` gives the mean of that
(before rounding and clipping), the ground truth in the same ADU units.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from microrestore.errors import InputError

__all__ = ["CameraModel", "apply_camera", "expected_counts", "variance_counts"]

_UINT16_MAX = 65535


@dataclass(frozen=True)
class CameraModel:
    """Photon budget and camera parameters.

    Parameters
    ----------
    photons : float
        Expected photons reaching the brightest object pixel (where the density is 1), per exposure.
    offset : float
        Camera baseline in ADU (sCMOS cameras add about 100).
    read_noise : float
        Read noise standard deviation in electrons (about 1.5 e- for a modern sCMOS).
    gain : float
        Conversion gain in ADU per electron.
    qe : float
        Quantum efficiency in (0, 1], the fraction of photons detected; with the default 1, ``photons`` is
        the number of photoelectrons.
    background : float
        Expected background photons per pixel (autofluorescence, out-of-focus light, stray light).

    Raises
    ------
    InputError
        When a value is out of range.
    """

    photons: float
    offset: float = 100.0
    read_noise: float = 1.5
    gain: float = 1.0
    qe: float = 1.0
    background: float = 2.0

    def __post_init__(self) -> None:
        ranges = {
            "photons": lambda v: v > 0,
            "offset": lambda v: 0 <= v < _UINT16_MAX,
            "read_noise": lambda v: v >= 0,
            "gain": lambda v: v > 0,
            "qe": lambda v: 0 < v <= 1,
            "background": lambda v: v >= 0,
        }
        for name, ok in ranges.items():
            value = getattr(self, name)
            valid = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            if not (valid and ok(value)):
                raise InputError(f"camera {name} is out of range: {value!r}")
            object.__setattr__(self, name, float(value))


def _density(clean: ArrayLike) -> NDArray[np.float64]:
    d = np.asarray(clean, dtype=np.float64)
    if d.size == 0:
        raise InputError("clean image is empty")
    if not np.isfinite(d).all():
        raise InputError("clean image contains NaN or infinite values")
    peak = float(d.max())
    if float(d.min()) < -1e-6 * max(1.0, peak):
        raise InputError(f"clean image must be non-negative (a fluorophore density), minimum {d.min():.4g}")
    return np.maximum(d, 0.0)


def _photons(d: NDArray[np.float64], camera: CameraModel) -> NDArray[np.float64]:
    """Expected photons per pixel: the object's ``photons * d`` plus the background."""
    return camera.photons * d + camera.background


def expected_counts(clean: ArrayLike, camera: CameraModel) -> NDArray[np.float32]:
    """Mean camera reading for a noise-free density image, in ADU.

    Parameters
    ----------
    clean : array_like
        Non-negative density, 1 at the brightest object pixel.
    camera : CameraModel
        The camera.

    Returns
    -------
    numpy.ndarray
        float32 ``gain * qe * (photons * clean + background) + offset``, the ground truth in the units of
        :func:`apply_camera`'s output.

    Raises
    ------
    InputError
        When ``clean`` is empty, negative or holds NaN.
    """
    d = _density(clean)
    mean = camera.gain * camera.qe * _photons(d, camera) + camera.offset
    return mean.astype(np.float32)


def variance_counts(clean: ArrayLike, camera: CameraModel) -> NDArray[np.float32]:
    """Variance of the camera reading, in ADU², for a noise-free density image.

    Parameters
    ----------
    clean : array_like
        Non-negative density, 1 at the brightest object pixel.
    camera : CameraModel
        The camera.

    Returns
    -------
    numpy.ndarray
        float32 ``gain² qe (photons * clean + background) + (gain * read_noise)²`` (ignoring the
        quantisation's 1/12 ADU²), e.g. for a variance-stabilising transform.
    """
    d = _density(clean)
    var = camera.gain**2 * camera.qe * _photons(d, camera) + (camera.gain * camera.read_noise) ** 2
    return var.astype(np.float32)


def apply_camera(clean: ArrayLike, camera: CameraModel, rng: np.random.Generator | int | None) -> NDArray[np.uint16]:
    """Simulate one exposure: shot noise, read noise, gain, offset, rounding and 16-bit clipping.

    Parameters
    ----------
    clean : array_like
        Non-negative density, 1 at the brightest object pixel (any shape).
    camera : CameraModel
        The camera.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    numpy.ndarray
        ``uint16`` counts of ``clean``'s shape. Values past 65535 clip, as on a real 16-bit camera.

    Raises
    ------
    InputError
        When ``clean`` is empty, negative or holds NaN.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    d = _density(clean)
    electrons = gen.poisson(camera.qe * _photons(d, camera)).astype(np.float64)
    adu = electrons * camera.gain + camera.offset
    if camera.read_noise > 0:
        adu += gen.normal(0.0, camera.read_noise * camera.gain, size=d.shape)
    return np.clip(np.rint(adu), 0, _UINT16_MAX).astype(np.uint16)

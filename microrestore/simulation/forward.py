"""The simulator's forward model: PSF convolution and raw 2D-SIM frames.

A phantom (fluorophore density) is convolved with the scalar pupil-function PSF (linear convolution, no
wrap-around) and scaled to a photon budget; :func:`sim_raw_frames` modulates it with the structured-illumination
patterns first. The case registry that writes data sets from these is :mod:`microrestore.simulation.cases`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import fft as sfft

from microrestore.errors import InputError
from microrestore.optics.psf import Optics, pupil_psf
from microrestore.simulation.noise import CameraModel, apply_camera, expected_counts

__all__ = ["SimRawFrames", "convolve_same", "psf_kernel", "sim_raw_frames"]


def convolve_same(image: ArrayLike, kernel: ArrayLike) -> NDArray[np.float64]:
    """Linear (zero-padded) convolution of the trailing axes of ``image`` with a kernel centred at shape // 2.

    Parameters
    ----------
    image : array_like
        Array whose last ``kernel.ndim`` axes are convolved; leading axes are batched (frames, phases).
    kernel : array_like
        Kernel, e.g. a PSF, centred at ``kernel.shape // 2``.

    Returns
    -------
    numpy.ndarray
        float64 array of ``image``'s shape; no wrap-around at the borders (light from outside the field is
        absent, as for a specimen that ends at the field's edge).
    """
    img = np.asarray(image, dtype=np.float64)
    ker = np.asarray(kernel, dtype=np.float64)
    if ker.ndim > img.ndim:
        raise InputError(f"kernel with {ker.ndim} dimensions cannot convolve an image with {img.ndim}")
    axes = tuple(range(img.ndim - ker.ndim, img.ndim))
    full = [img.shape[a] + ker.shape[i] - 1 for i, a in enumerate(axes)]
    fshape = [sfft.next_fast_len(s, real=True) for s in full]
    spec = sfft.rfftn(img, fshape, axes=axes, workers=-1) * sfft.rfftn(ker, fshape, workers=-1)
    out = sfft.irfftn(spec, fshape, axes=axes, workers=-1)
    crop = tuple(slice(None) for _ in range(img.ndim - ker.ndim)) + tuple(
        slice(k // 2, k // 2 + img.shape[a]) for k, a in zip(ker.shape, axes, strict=True)
    )
    return out[crop]


def psf_kernel(optics: Optics, defocus_um: float = 0.0, *, spherical_waves: float = 0.0) -> NDArray[np.float64]:
    """Compute a compact odd-sized :func:`~microrestore.optics.pupil_psf` large enough for a defocus.

    Parameters
    ----------
    optics : Optics
        Detection optics.
    defocus_um : float
        Defocus in micrometres; the kernel grows with the geometric blur disc ``|z| tan(asin(NA/n))``.
    spherical_waves : float
        Primary spherical aberration in waves.

    Returns
    -------
    numpy.ndarray
        Square PSF of side ``2 r + 1`` with ``r`` covering about five Airy rings plus the blur disc.
    """
    tan_theta = optics.sin_max / math.sqrt(1.0 - optics.sin_max**2)
    reach_um = 3.0 * optics.wavelength_um / optics.na + 1.1 * abs(defocus_um) * tan_theta
    r = math.ceil(reach_um / optics.pixel_size_um)
    return pupil_psf(optics, (2 * r + 1, 2 * r + 1), defocus_um, spherical_waves=spherical_waves)


def _normalise_peak(img: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    img = np.maximum(img, 0.0)
    peak = float(img.max())
    scale = 1.0 / peak if peak > 0 else 1.0
    return img * scale, scale


@dataclass(frozen=True)
class SimRawFrames:
    """Raw 2D-SIM frames from :func:`sim_raw_frames`.

    Attributes
    ----------
    density : numpy.ndarray
        float32 (n_orientations * n_phases, Y, X) noise-free frames scaled so the brightest pixel is 1.
    scale : float
        Factor from the object's density units to ``density`` (``density = scale * raw``).
    clean : numpy.ndarray or None
        float32 expected camera counts (when a camera was given).
    noisy : numpy.ndarray or None
        uint16 camera counts (when a camera was given).
    """

    density: NDArray[np.float32]
    scale: float
    clean: NDArray[np.float32] | None = None
    noisy: NDArray[np.uint16] | None = None


def sim_raw_frames(
    obj_fine: ArrayLike,
    optics: Optics,
    k_vectors: ArrayLike,
    phases: ArrayLike,
    modulation: float | ArrayLike,
    camera: CameraModel | None = None,
    rng: np.random.Generator | int | None = None,
    *,
    psf_fine: ArrayLike | None = None,
) -> SimRawFrames:
    """Raw 2D-SIM frames of an object sampled on the 2x finer grid.

    Each frame is the object times the illumination ``1 + m cos(2π (ky y + kx x) + φ)``, convolved with the
    detection PSF on the fine grid, then binned 2 x 2 onto the camera grid (pixel integration). ``y`` and
    ``x`` are raw pixel indices: the phase refers to the centre of raw pixel (0, 0), and fine pixel ``j``
    has its centre at raw coordinate ``j / 2 - 0.25``.

    Parameters
    ----------
    obj_fine : array_like
        Non-negative object density, shape ``(2 Y, 2 X)``.
    optics : Optics
        Detection optics of the raw (camera) grid.
    k_vectors : array_like
        Pattern wave vectors ``(n_orientations, 2)`` as ``(ky, kx)`` in cycles per raw pixel.
    phases : array_like
        Pattern phases ``(n_orientations, n_phases)`` in radians.
    modulation : float or array_like
        Modulation depth ``m`` in [0, 1], one value or one per orientation.
    camera : CameraModel, optional
        When given, ``clean`` and ``noisy`` are filled.
    rng : numpy.random.Generator or int, optional
        Random generator or seed for the camera noise.
    psf_fine : array_like, optional
        Detection PSF on the fine grid (centred at shape // 2); computed from ``optics`` when omitted.

    Returns
    -------
    SimRawFrames
        Frames in orientation-major order (all phases of orientation 0 first).

    Raises
    ------
    InputError
        On inconsistent shapes, a pattern frequency that aliases on the raw grid, or a bad modulation.
    """
    obj = np.asarray(obj_fine, dtype=np.float64)
    if obj.ndim != 2 or obj.shape[0] % 2 or obj.shape[1] % 2:
        raise InputError(f"the fine-grid object must be 2D with even sides, got shape {obj.shape}")
    kv = np.asarray(k_vectors, dtype=np.float64).reshape(-1, 2)
    ph = np.asarray(phases, dtype=np.float64)
    if ph.ndim != 2 or ph.shape[0] != kv.shape[0]:
        raise InputError(f"phases must be (n_orientations, n_phases) = ({kv.shape[0]}, n), got {ph.shape}")
    mods = np.broadcast_to(np.asarray(modulation, dtype=np.float64), (kv.shape[0],))
    if np.any(mods < 0) or np.any(mods > 1):
        raise InputError(f"modulation must be in [0, 1], got {modulation!r}")
    if np.any(np.hypot(kv[:, 0], kv[:, 1]) >= 0.5):
        raise InputError("a SIM pattern frequency reaches the raw grid's Nyquist limit (0.5 cycles per pixel)")
    if psf_fine is None:
        psf = psf_kernel(replace(optics, pixel_size_nm=optics.pixel_size_nm / 2.0))
    else:
        psf = np.asarray(psf_fine, dtype=np.float64)
    fy, fx = obj.shape
    yy = (np.arange(fy) / 2.0 - 0.25)[:, None]
    xx = (np.arange(fx) / 2.0 - 0.25)[None, :]
    emitted = np.empty((kv.shape[0] * ph.shape[1], fy, fx))
    for o, (ky, kx) in enumerate(kv):
        arg = 2.0 * np.pi * (ky * yy + kx * xx)
        for p in range(ph.shape[1]):
            emitted[o * ph.shape[1] + p] = obj * (1.0 + mods[o] * np.cos(arg + ph[o, p]))
    detected = convolve_same(emitted, psf)
    raw = detected.reshape(-1, fy // 2, 2, fx // 2, 2).mean(axis=(2, 4))
    density, scale = _normalise_peak(raw)
    if camera is None:
        return SimRawFrames(density.astype(np.float32), scale)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return SimRawFrames(
        density.astype(np.float32), scale, expected_counts(density, camera), apply_camera(density, camera, gen)
    )

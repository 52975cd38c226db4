"""Richardson-Lucy deconvolution (Richardson 1972, Lucy 1974), optionally TV-regularised (Dey et al. 2006).

2D or 3D arrays, FFT convolution on a reflect-padded domain.
"""

from __future__ import annotations

import numpy as np

#: The TV denominator ``1 - weight * div(...)`` is kept above this value (Dey et al. clamp it too).
TV_DENOMINATOR_FLOOR = 0.1
#: Images whose peak exceeds this are scaled down (by a power of two) while they are iterated.
HUGE = 2.0**64


def richardson_lucy(
    image: np.ndarray,
    psf: np.ndarray,
    *,
    iterations: int = 30,
    tv_weight: float = 0.0,
    pad: bool = True,
) -> np.ndarray:
    """Deconvolve a non-negative ``image`` by ``psf`` (same number of dimensions, centred at shape // 2).

    Parameters
    ----------
    image
        2D or 3D array, background already subtracted; negative values are clipped to 0.
    psf
        Point-spread function with the image's number of dimensions; normalised here to sum 1. Axes longer
        than twice the image's are cropped around the centre.
    iterations
        Number of RL iterations.
    tv_weight
        Weight ``lambda`` of the total-variation term of Dey et al. (2006); 0 for plain RL. Values around
        0.001-0.01 suppress the noise amplification of late iterations.
    pad
        Reflect-pad every axis by half the PSF (then to a fast FFT length) so that edges do not wrap around.

    Returns
    -------
    numpy.ndarray
        float32 estimate of the image's shape. Its total flux equals the observed one within the padded
        domain; near the borders light can move across the crop.
    """
    from scipy import fft as sfft

    y = np.maximum(np.asarray(image, dtype=np.float32), 0.0)
    h = np.asarray(psf, dtype=np.float64)
    if h.ndim != y.ndim:
        raise ValueError(f"PSF has {h.ndim} dimensions, the image {y.ndim}")
    h = _crop_psf(h, y.shape)
    total = h.sum()
    if not total > 0:
        raise ValueError("PSF must have a positive sum")
    h = h / total
    if iterations <= 0 or not np.any(y > 0):
        return y.copy()
    # RL is scale-equivariant (RL(c y) = c RL(y), ``tiny`` and ``tv_eps`` scale along): an image with huge
    # values (up to float32's 3.4e38) is iterated scaled by a power of two to a peak near 1, which is exact,
    # so that its FFT sums cannot overflow to inf.
    if float(y.max()) > HUGE:
        scale = float(2.0 ** -np.floor(np.log2(float(y.max()))))
        restored = richardson_lucy(y * np.float32(scale), psf, iterations=iterations, tv_weight=tv_weight, pad=pad)
        return restored / np.float32(scale)

    half = [s // 2 for s in h.shape]
    if pad:
        fast = [sfft.next_fast_len(n + 2 * p, real=True) for n, p in zip(y.shape, half, strict=True)]
        widths = [(p, f - n - p) for n, p, f in zip(y.shape, half, fast, strict=True)]
        obs = _reflect_pad(y, widths)
    else:
        widths = [(0, 0)] * y.ndim
        obs = y
    shape = obs.shape
    axes = tuple(range(obs.ndim))

    kernel = np.zeros(shape, dtype=np.float64)
    kernel[tuple(slice(0, s) for s in h.shape)] = h
    kernel = np.roll(kernel, [-c for c in half], axis=axes)
    otf = sfft.rfftn(kernel, axes=axes, workers=-1).astype(np.complex64)
    otf_conj = np.conj(otf)

    def convolve(x: np.ndarray, transfer: np.ndarray) -> np.ndarray:
        return sfft.irfftn(sfft.rfftn(x, axes=axes, workers=-1) * transfer, s=shape, axes=axes, workers=-1)

    tiny = np.float32(max(float(obs.mean()), 1e-30) * 1e-6)
    estimate = obs.copy()
    np.maximum(estimate, tiny, out=estimate)
    tv_eps = np.float32(max(float(obs.max()) - float(obs.min()), 1e-30) * 1e-3)
    for _ in range(iterations):
        blurred = convolve(estimate, otf)
        np.maximum(blurred, tiny, out=blurred)
        ratio = np.divide(obs, blurred, dtype=np.float32)
        correction = convolve(ratio, otf_conj)
        if tv_weight > 0:
            denominator = 1.0 - np.float32(tv_weight) * _tv_curvature(estimate, tv_eps)
            np.maximum(denominator, np.float32(TV_DENOMINATOR_FLOOR), out=denominator)
            correction /= denominator
        estimate *= correction
        np.maximum(estimate, 0.0, out=estimate)
    crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, y.shape, strict=True))
    return np.ascontiguousarray(estimate[crop], dtype=np.float32)


def _tv_curvature(u: np.ndarray, eps: np.float32) -> np.ndarray:
    """``div(grad u / |grad u|)`` with forward differences for the gradient and backward for the divergence."""
    grads = [np.roll(u, -1, axis=a) - u for a in range(u.ndim)]
    norm = np.sqrt(sum(g * g for g in grads) + eps * eps)
    div = np.zeros_like(u)
    for a, g in enumerate(grads):
        n = g / norm
        div += n - np.roll(n, 1, axis=a)
    return div


def _crop_psf(psf: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Crop PSF axes longer than ``2 * n - 1`` of the image around the PSF's centre (``shape // 2``)."""
    index = []
    for size, n in zip(psf.shape, shape, strict=True):
        keep = min(size, 2 * n - 1)
        centre = size // 2
        start = centre - keep // 2
        index.append(slice(start, start + keep))
    return psf[tuple(index)]


def _reflect_pad(x: np.ndarray, widths: list[tuple[int, int]]) -> np.ndarray:
    """Reflect-pad, falling back to edge padding along axes of length 1."""
    out = x
    for axis, (lo, hi) in enumerate(widths):
        if lo == 0 and hi == 0:
            continue
        axis_widths = [(0, 0)] * x.ndim
        axis_widths[axis] = (lo, hi)
        mode = "edge" if x.shape[axis] == 1 else "reflect"
        out = np.pad(out, axis_widths, mode=mode)
    return out

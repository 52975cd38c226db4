"""Resolution measures: Fourier ring correlation (two images) and decorrelation analysis (one image).

- :func:`frc` / :func:`frc_resolution`: the correlation of two images' spectra in rings of equal spatial
  frequency (Saxton & Baumeister 1982; Nieuwenhuizen et al. 2013); against a ground truth, the frequency where
  it falls below 0.5 says up to where the image follows the truth.
- :func:`decorrelation_resolution`: Descloux, Grußmayer & Radenovic (Nat. Methods 16, 2019), parameter-free
  resolution of a single image from the cross-correlation of its spectrum with its phase-only (normalised)
  spectrum, under a series of high-pass filters.

Both apodise the image borders first (a cosine edge taper) so that the FFT's wrap-around edges do not add a
spurious cross of high frequencies. Frequencies are in cycles per pixel (Nyquist 0.5) unless a pixel size is
given. numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from microrestore.errors import InputError

__all__ = ["DecorrelationResult", "decorrelation_resolution", "edge_taper", "frc", "frc_resolution"]


def _image(a: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or min(arr.shape) < 16:
        raise InputError(f"{name} must be a 2D image of at least 16 x 16 pixels, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return arr


def edge_taper(image: ArrayLike, width: int | None = None) -> NDArray[np.float64]:
    """Subtract the mean and multiply by a cosine window falling to 0 over ``width`` pixels at each border.

    Parameters
    ----------
    image
        2D image.
    width
        Taper width in pixels; default 1/8 of the shorter side.
    """
    a = _image(image, "image")
    ny, nx = a.shape
    w = max(1, width if width is not None else min(ny, nx) // 8)

    def ramp(n: int) -> NDArray[np.float64]:
        r = np.ones(n)
        edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(min(w, n // 2)) + 0.5) / min(w, n // 2))
        r[: edge.size] = edge
        r[n - edge.size :] = edge[::-1]
        return r

    return (a - a.mean()) * np.outer(ramp(ny), ramp(nx))


def _rings(shape: tuple[int, int]) -> tuple[NDArray[np.int64], int]:
    ny, nx = shape
    n = min(ny, nx)
    fy = np.fft.fftfreq(ny)[:, None]
    fx = np.fft.fftfreq(nx)[None, :]
    ring = np.rint(np.sqrt(fy**2 + fx**2) * n).astype(np.int64)
    return ring, n // 2


def frc(a: ArrayLike, b: ArrayLike, taper: bool = True) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fourier ring correlation of two images of the same shape.

    Parameters
    ----------
    a, b
        2D images.
    taper
        Apply :func:`edge_taper` to both first.

    Returns
    -------
    tuple of numpy.ndarray
        Ring frequencies (cycles per pixel, ``0 .. 0.5``) and the correlation in each ring.
    """
    x, y = _image(a, "first image"), _image(b, "second image")
    if x.shape != y.shape:
        raise InputError(f"FRC needs images of the same shape, got {x.shape} and {y.shape}")
    if taper:
        x, y = edge_taper(x), edge_taper(y)
    fa, fb = np.fft.fft2(x), np.fft.fft2(y)
    ring, n_rings = _rings(x.shape)
    keep = ring <= n_rings
    r = ring[keep]
    num = np.bincount(r, (fa * np.conj(fb)).real[keep], n_rings + 1)
    pa = np.bincount(r, (np.abs(fa) ** 2)[keep], n_rings + 1)
    pb = np.bincount(r, (np.abs(fb) ** 2)[keep], n_rings + 1)
    curve = num / np.sqrt(np.maximum(pa * pb, 1e-300))
    freq = np.arange(n_rings + 1) / (2.0 * n_rings)
    return freq, curve


def frc_resolution(
    a: ArrayLike, b: ArrayLike, threshold: float = 1.0 / 7.0, pixel_size: float | None = None, smooth: int = 3
) -> float:
    """Resolution from the FRC: ``1 / f`` at the first frequency where the (smoothed) curve falls below ``threshold``.

    Parameters
    ----------
    a, b
        2D images (two independent acquisitions, or an image and its ground truth).
    threshold
        ``1/7`` for two independent noisy images, 0.5 against a ground truth.
    pixel_size
        Pixel size; the result is in its units, else in pixels.
    smooth
        Width of the moving average applied to the curve (rings).

    Returns
    -------
    float
        The resolution (period) at the crossing; the Nyquist period (2 pixels) when the curve never falls
        below the threshold.
    """
    freq, curve = frc(a, b)
    if smooth > 1:
        kernel = np.ones(smooth) / smooth
        curve = np.convolve(np.pad(curve, smooth // 2, mode="edge"), kernel, mode="valid")[: freq.size]
    below = np.nonzero(curve[1:] < threshold)[0]
    if below.size == 0:
        f = freq[-1]
    else:
        i = int(below[0]) + 1  # first ring below; interpolate with the ring before
        c0, c1 = curve[i - 1], curve[i]
        t = (c0 - threshold) / (c0 - c1) if c0 != c1 else 0.0
        f = freq[i - 1] + t * (freq[i] - freq[i - 1])
    period = 1.0 / max(f, 1e-12)
    return period * (pixel_size if pixel_size is not None else 1.0)


@dataclass
class DecorrelationResult:
    """Outcome of :func:`decorrelation_resolution`.

    Attributes
    ----------
    resolution
        ``2 / kc`` in pixels (or the pixel size's units); ``inf`` when no peak was found.
    kc
        Cut-off frequency, as a fraction of Nyquist (0 .. 1).
    amplitude
        Peak height of the unfiltered decorrelation curve (an SNR indicator).
    """

    resolution: float
    kc: float
    amplitude: float


def _decorrelation_peak(
    spec: NDArray[np.complex128], norm: NDArray[np.complex128], r: NDArray[np.float64], radii: NDArray[np.float64]
) -> tuple[float, float]:
    """Position and height of the maximum of ``d(radius)``; ``(0, 0)`` when it sits at the last radius."""
    power = float(np.sum(np.abs(spec) ** 2))
    cross = (spec * np.conj(norm)).real
    d = np.empty(radii.size)
    for i, radius in enumerate(radii):
        inside = r <= radius
        d[i] = cross[inside].sum() / math.sqrt(max(power * float(np.sum(np.abs(norm[inside]) ** 2)), 1e-300))
    best = int(np.argmax(d))
    if best == radii.size - 1 or d[best] <= 0:
        return 0.0, 0.0
    return float(radii[best]), float(d[best])


def decorrelation_resolution(
    image: ArrayLike,
    pixel_size: float | None = None,
    *,
    n_radii: int = 50,
    n_filters: int = 10,
    min_amplitude: float = 0.05,
) -> DecorrelationResult:
    """Image resolution by decorrelation analysis (Descloux et al. 2019), from a single image.

    The edge-tapered image's spectrum ``I`` is correlated with its phase-only version ``I / |I|`` inside discs
    of growing radius; the peak of that curve sits near the highest frequency that still carries signal. The
    analysis is repeated after Gaussian high-pass filters of decreasing width, and the largest peak position
    ``kc`` (among peaks above ``min_amplitude``) gives the resolution ``2 pixels / kc``.

    Parameters
    ----------
    image
        2D image.
    pixel_size
        Pixel size; the result is in its units, else in pixels.
    n_radii, n_filters
        Sampling of the disc radii (0 .. Nyquist] and number of high-pass filters.
    min_amplitude
        Smallest peak height accepted.

    Returns
    -------
    DecorrelationResult
        Resolution, cut-off and peak amplitude.
    """
    a = edge_taper(image)
    ny, nx = a.shape
    spec = np.fft.fft2(a)
    fy = np.fft.fftfreq(ny)[:, None] * 2.0  # fraction of Nyquist
    fx = np.fft.fftfreq(nx)[None, :] * 2.0
    r = np.sqrt(fy**2 + fx**2)
    spec[r > 1.0] = 0.0
    norm = spec / np.maximum(np.abs(spec), 1e-300)
    radii = np.linspace(1.0 / n_radii, 1.0, n_radii)
    r0, a0 = _decorrelation_peak(spec, norm, r, radii)
    peaks = [r0] if a0 >= min_amplitude else []
    # High-pass filters 1 - exp(-r^2 / (2 sigma^2)), sigma from wide to narrow (log-spaced, as the authors).
    top = r0 if r0 > 0 else 1.0
    for sigma in np.exp(np.linspace(math.log(top), math.log(0.15), n_filters)):
        filtered = spec * (1.0 - np.exp(-(r**2) / (2.0 * sigma**2)))
        peak, amp = _decorrelation_peak(filtered, norm, r, radii)
        if amp >= min_amplitude:
            peaks.append(peak)
    kc = max(peaks) if peaks else 0.0
    resolution = 2.0 / kc if kc > 0 else math.inf
    return DecorrelationResult(resolution * (pixel_size if pixel_size is not None else 1.0), kc, a0)

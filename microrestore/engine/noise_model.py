"""Poisson-Gaussian noise model: estimation from one image and the generalised Anscombe transform.

The model is ``z = gain * p + offset + n`` with ``p ~ Poisson(lambda)`` and ``n ~ N(0, sigma2)``, so that
``var(z) = gain * (E[z] - offset) + sigma2 = gain * E[z] + c`` with ``c = sigma2 - gain * offset``.

Estimation follows the idea of Foi et al. (2008): measure the local noise variance and the local mean on
small blocks where the signal is (close to) planar, and fit the straight line ``var = gain * mean + c``
robustly. The local variance is measured with Immerkaer's (1996) 3x3 high-pass filter, which cancels any
signal that is linear, or a function of one coordinate only, so that smooth gradients and straight edges
along the pixel grid do not inflate it; blocks whose raw scatter about a fitted plane is much larger than
that noise variance hold structure and are left out.

From one image only ``gain`` and ``c`` are identifiable; how ``c`` is split between ``sigma2`` and
``offset`` does not change the transform or its inverse (both depend on ``c`` alone).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Blocks whose 2nd- and 4th-order high-pass variances differ by more than this factor hold signal.
AGREEMENT = 1.3
#: Blocks holding a residual beyond this many standard deviations of the first fit are left out.
OUTLIER_K = 5.0
#: Tukey biweight tuning constant (95% efficiency under Gaussian residuals).
TUKEY_C = 4.685


class NoiseModel(NamedTuple):
    """Poisson-Gaussian parameters in the image's units (``var = gain * (mean - offset) + sigma2``).

    Attributes
    ----------
    gain
        Units per detected photon (0 for purely Gaussian noise).
    sigma2
        Variance of the signal-independent (read) noise.
    offset
        Level of zero photons (camera offset); with an estimated model it only absorbs a negative ``c``.
    """

    gain: float
    sigma2: float
    offset: float

    @property
    def c(self) -> float:
        """Intercept of the variance line: ``var = gain * mean + c``."""
        return self.sigma2 - self.gain * self.offset

    def variance(self, mean: np.ndarray | float) -> np.ndarray | float:
        """Noise variance at expected level ``mean``."""
        return self.gain * np.asarray(mean) + self.c


class NoiseEstimationError(ValueError):
    """The image holds too little flat area (or no noise) to estimate the noise model."""


def estimate_poisson_gaussian(
    image: np.ndarray,
    *,
    gain: float | None = None,
    read_noise: float | None = None,
    offset: float | None = None,
    block: int = 8,
    max_planes: int = 16,
) -> NoiseModel:
    """Estimate ``(gain, sigma2, offset)`` of Poisson-Gaussian noise from the image itself.

    Parameters
    ----------
    image
        A 2D plane, or a stack whose last two axes are Y and X (the planes pool their blocks).
    gain, read_noise, offset
        Known values (``read_noise`` is a standard deviation); those given are kept and only the others
        are fitted. With all three given nothing is estimated.
    block
        Edge of the square blocks on which the local mean and variance are measured.
    max_planes
        At most this many planes of a stack (evenly spaced) are used.

    Returns
    -------
    NoiseModel
        A named tuple ``(gain, sigma2, offset)`` in the image's units.

    Raises
    ------
    NoiseEstimationError
        Fewer than 8 usable blocks (a small, saturated or noise-free image).
    """
    if gain is not None and read_noise is not None and offset is not None:
        return NoiseModel(float(gain), float(read_noise) ** 2, float(offset))
    if gain is not None and gain < 0:
        raise ValueError("gain must be >= 0")
    sigma2 = None if read_noise is None else float(read_noise) ** 2
    fit: tuple[float, float] | None = None
    for _ in range(3):
        # first pass on every block, then again without the blocks holding outliers under that fit
        means, variances = flat_block_stats(image, block=block, max_planes=max_planes, model=fit)
        if means.size < 8:
            raise NoiseEstimationError(
                f"only {means.size} usable {block}x{block} blocks (image too small, saturated or "
                "noise-free); too few to estimate the noise"
            )
        g_fit, c_fit = _robust_line(means, variances, slope=gain)
        fit = (max(g_fit, 0.0), c_fit if g_fit > 0 else float(np.median(variances)))
    if sigma2 is not None and offset is not None:
        # var = g * (mean - offset) + sigma2: only the slope is free
        g, _ = _robust_line(means - offset, variances - sigma2, slope=gain, intercept=0.0)
        g = max(g, 0.0)
        return NoiseModel(g, sigma2, float(offset))
    g, c = _robust_line(means, variances, slope=gain)
    if g <= 0.0:
        # no measurable signal dependence: Gaussian noise of the average variance
        g = 0.0
        _, c = _robust_line(means, variances, slope=0.0)
    if sigma2 is not None:
        off = (sigma2 - c) / g if g > 0 else 0.0
        return NoiseModel(g, sigma2, float(off))
    if offset is not None:
        return NoiseModel(g, max(c + g * offset, 0.0), float(offset))
    if c >= 0.0 or g == 0.0:
        return NoiseModel(g, max(c, 0.0), 0.0)
    return NoiseModel(g, 0.0, -c / g)


def flat_block_stats(
    image: np.ndarray,
    *,
    block: int = 8,
    max_planes: int = 16,
    model: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Local means and noise variances of the blocks whose high-pass residual is noise only.

    Parameters
    ----------
    image
        A 2D plane or a stack whose last two axes are Y and X.
    block
        Block edge in pixels.
    max_planes
        At most this many planes of a stack (evenly spaced) are used.
    model
        ``(gain, c)`` of a previous fit: blocks holding a residual beyond ``OUTLIER_K`` standard deviations
        of that model (hot pixels, sharp point-like structure) are left out.

    Returns
    -------
    tuple of numpy.ndarray
        ``(means, variances)`` of the selected blocks, pooled over the planes.
    """
    data = np.asarray(image)
    if data.ndim < 2:
        raise ValueError("need at least a 2D image")
    planes = data.reshape((-1, *data.shape[-2:]))
    if planes.shape[0] > max_planes:
        planes = planes[np.linspace(0, planes.shape[0] - 1, max_planes).round().astype(int)]
    clip_hi = float(np.iinfo(data.dtype).max) if np.issubdtype(data.dtype, np.integer) else None
    means, variances = [], []
    for plane in planes:
        m, v = _plane_block_stats(np.asarray(plane), block, clip_hi, model)
        means.append(m)
        variances.append(v)
    return np.concatenate(means), np.concatenate(variances)


def _separable(x: np.ndarray, taps: tuple[float, ...]) -> np.ndarray:
    """Correlate ``x`` with ``taps`` (x) ``taps`` over the valid region."""
    n = len(taps)
    rows, cols = x.shape
    row = sum(t * x[:, i : cols - n + 1 + i] for i, t in enumerate(taps))
    return np.asarray(sum(t * row[i : rows - n + 1 + i] for i, t in enumerate(taps)))


def _highpass(x: np.ndarray, taps: tuple[float, ...]) -> np.ndarray:
    """Separable high-pass residual scaled to unit gain on white noise (divided by the taps' energy)."""
    return _separable(x, taps) / float(np.sum(np.square(taps)))


def _plane_block_stats(
    plane: np.ndarray, block: int, clip_hi: float | None, model: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    x = plane.astype(np.float64)
    if min(x.shape) < block + 4:
        return np.zeros(0), np.zeros(0)
    # Immerkaer's residual (2nd difference x 2nd difference) and a 4th-order one, both with unit gain
    # on white noise; band-limited signal leaks into the first more than into the second.
    r2 = _highpass(x, (1.0, -2.0, 1.0))[1:-1, 1:-1]
    r4 = _highpass(x, (1.0, -4.0, 6.0, -4.0, 1.0))
    core = x[2:-2, 2:-2]
    ny, nx = core.shape[0] // block, core.shape[1] // block

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[: ny * block, : nx * block].reshape(ny, block, nx, block)

    v2 = np.mean(blocks(r2) ** 2, axis=(1, 3))
    v4 = np.mean(blocks(r4) ** 2, axis=(1, 3))
    core_b = blocks(core)
    mean = core_b.mean(axis=(1, 3))
    keep = (v2 > 0) & (v2 <= AGREEMENT * v4) & (v4 <= AGREEMENT * v2)
    if clip_hi is not None:
        # saturated pixels have no noise
        keep &= ~np.any(core_b >= clip_hi, axis=(1, 3))
    if model is not None:
        # each residual's variance is the model's at the same weighted local mean (weights a_k^2 / 36)
        wm = _separable(x, (1.0, 4.0, 1.0)) / 36.0
        local_var = np.maximum(model[0] * wm[1:-1, 1:-1] + model[1], 1e-300)
        outlier = blocks(r2**2 > OUTLIER_K**2 * local_var)
        keep &= ~np.any(outlier, axis=(1, 3))
    return mean[keep], v2[keep]


def _robust_line(
    x: np.ndarray,
    y: np.ndarray,
    *,
    slope: float | None = None,
    intercept: float | None = None,
    iterations: int = 20,
) -> tuple[float, float]:
    """Fit ``y = slope * x + intercept`` robustly; ``y`` are variances whose spread grows with their size.

    Weighted least squares with weights ``1 / model^2`` (variance estimates have a spread proportional to
    their expectation) times Tukey biweights of the standardised residuals, iterated; the start is a fit
    to medians of bins of ``x``. Either parameter may be fixed.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(x)
    n_bins = int(np.clip(x.size // 20, 1, 32))
    bins = np.array_split(order, n_bins)
    bx = np.array([np.median(x[b]) for b in bins])
    by = np.array([np.median(y[b]) for b in bins])
    bw = np.array([len(b) for b in bins], dtype=np.float64) / np.maximum(by, 1e-300) ** 2
    g, c = _wls(bx, by, bw, slope, intercept)
    floor = max(float(np.median(y)) * 1e-3, 1e-300)
    for _ in range(iterations):
        model = np.maximum(g * x + c, floor)
        rel = y / model - 1.0
        scale = 1.4826 * float(np.median(np.abs(rel - np.median(rel))))
        if not scale > 0:
            break
        e = rel / (TUKEY_C * scale)
        w = np.where(np.abs(e) < 1.0, (1.0 - e**2) ** 2, 0.0) / model**2
        if np.count_nonzero(w) < 3:
            break
        g_new, c_new = _wls(x, y, w, slope, intercept)
        done = abs(g_new - g) <= 1e-6 * (abs(g) + 1e-300) and abs(c_new - c) <= 1e-6 * (abs(c) + floor)
        g, c = g_new, c_new
        if done:
            break
    return float(g), float(c)


def _wls(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, slope: float | None, intercept: float | None
) -> tuple[float, float]:
    sw = float(np.sum(w))
    if slope is not None and intercept is not None:
        return float(slope), float(intercept)
    if slope is not None:
        return float(slope), float(np.sum(w * (y - slope * x)) / sw)
    if intercept is not None:
        denom = float(np.sum(w * x * x))
        return (float(np.sum(w * x * (y - intercept)) / denom) if denom > 0 else 0.0), float(intercept)
    mx, my = np.sum(w * x) / sw, np.sum(w * y) / sw
    sxx = float(np.sum(w * (x - mx) ** 2))
    if sxx <= 1e-12 * max(float(np.sum(w * x * x)), 1e-300):
        # a single intensity level: the slope is not identifiable
        return 0.0, float(my)
    g = float(np.sum(w * (x - mx) * (y - my)) / sxx)
    return g, float(my - g * mx)


# -- the generalised Anscombe transform ----------------------------------------------------------------


def gat_forward(z: np.ndarray, model: NoiseModel) -> np.ndarray:
    """Generalised Anscombe transform: Poisson-Gaussian data to approximately unit-variance Gaussian.

    ``f(z) = 2 / gain * sqrt(max(gain * z + 3/8 gain^2 + sigma2 - gain * offset, 0))``; for ``gain == 0``
    it is ``(z - offset) / sqrt(sigma2)``.
    """
    z = np.asarray(z, dtype=np.float64)
    if _is_gaussian(model):
        return (z / np.sqrt(_gaussian_variance(model))).astype(np.float32)
    g = model.gain
    arg = g * z + 0.375 * g * g + model.c
    return (2.0 / g * np.sqrt(np.maximum(arg, 0.0))).astype(np.float32)


def gat_inverse(d: np.ndarray, model: NoiseModel, floor: float | None = None) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse of the GAT (Makitalo & Foi 2011, 2013).

    In normalised units (``z' = (z - offset) / gain``, ``s = sqrt(sigma2) / gain``)::

        I(D) = D^2/4 + sqrt(3/2)/4 D^-1 - 11/8 D^-2 + 5/8 sqrt(3/2) D^-3 - 1/8 - s^2

    and ``z = max(gain * I(D) + offset, floor)``; ``floor`` defaults to ``offset`` (``I`` clipped at 0, no
    fewer than zero photons). Below ``D = 1`` the series no longer applies and ``D = 1`` is used (``I`` is
    already negative there). Only ``c = sigma2 - gain * offset`` is identifiable from one image, so an
    estimated ``offset`` is not the zero-photon level of data with negative values (background-subtracted):
    their caller gives a lower ``floor`` so that the output keeps them instead of clipping them to ``offset``.
    """
    d = np.asarray(d, dtype=np.float64)
    if _is_gaussian(model):
        return (d * np.sqrt(_gaussian_variance(model))).astype(np.float32)
    g = model.gain
    s2n = model.sigma2 / (g * g)
    dd = np.maximum(d, 1.0)
    r = np.sqrt(1.5)
    inv = 0.25 * dd**2 + 0.25 * r / dd - 1.375 / dd**2 + 0.625 * r / dd**3 - 0.125 - s2n
    low = model.offset if floor is None else float(floor)
    return np.maximum(g * inv + model.offset, low).astype(np.float32)


def _is_gaussian(model: NoiseModel) -> bool:
    # Poisson part negligible: the GAT would lose precision to 2/gain
    return model.gain <= 0.0 or model.c > 1e8 * model.gain**2


def _gaussian_variance(model: NoiseModel) -> float:
    var = model.sigma2 if model.gain <= 0.0 else model.c
    if not var > 0:
        raise NoiseEstimationError("noise variance is zero; nothing to stabilise")
    return float(var)

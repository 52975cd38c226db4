"""Image quality metrics: PSNR, SSIM, Pearson correlation, NRMSE and their affine-fit variants.

Every metric compares a prediction with a ground truth of the same shape, in float64, and reads the arrays
in blocks along the first axis, so a ``np.memmap`` of any size is never converted as a whole. Conventions
follow scikit-image (``peak_signal_noise_ratio``, ``structural_similarity`` with ``gaussian_weights=True,
sigma=1.5, use_sample_covariance=False``, ``normalized_root_mse`` with ``normalization='min-max'``), so
numbers can be compared with published ones. The affine variants first fit ``scale * pred + offset`` to the
ground truth by least squares (CARE's convention for images without a shared intensity scale).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray
from scipy import ndimage

from microrestore.errors import InputError

__all__ = [
    "affine_fit",
    "evaluate",
    "nrmse",
    "pcc",
    "psnr",
    "saturation_count",
    "ssim",
]

#: Elements per block when a metric streams through its inputs (about 32 MiB of float64).
_BLOCK_ELEMENTS = 1 << 22

# SSIM constants of Wang et al. (2004) and scikit-image.
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5
_SSIM_RADIUS = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)  # 5, as scipy.ndimage computes it: an 11-tap window


def _as_array(a: ArrayLike, name: str) -> np.ndarray:
    from microrestore.io.lazy import LazyArray

    arr = a if isinstance(a, (np.ndarray, LazyArray)) else np.asarray(a)  # lazy arrays are read block by block
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr


def _check_pair(pred: ArrayLike, gt: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = _as_array(pred, "prediction")
    g = _as_array(gt, "ground truth")
    if p.shape != g.shape:
        raise InputError(f"prediction shape {p.shape} does not match ground truth shape {g.shape}")
    if p.size == 0:
        raise InputError("cannot compute a metric on empty images")
    return p, g


def _rows_per_block(shape: tuple[int, ...]) -> int:
    """How many indices along the first axis make a block of about ``_BLOCK_ELEMENTS`` elements."""
    per_row = max(1, math.prod(shape[1:]))
    return max(1, _BLOCK_ELEMENTS // per_row)


def _blocks(shape: tuple[int, ...]) -> Iterator[slice]:
    """Slices along the first axis holding about ``_BLOCK_ELEMENTS`` elements each."""
    if len(shape) == 0:
        yield slice(None)
        return
    step = _rows_per_block(shape)
    for start in range(0, shape[0], step):
        yield slice(start, min(start + step, shape[0]))


def _block(a: np.ndarray, sl: slice) -> NDArray[np.float64]:
    return np.asarray(a[sl] if a.ndim else a, dtype=np.float64)


@dataclass
class _Moments:
    """First and second moments of a pair, merged block by block (Chan et al.) for numerical stability."""

    n: int = 0
    mean_p: float = 0.0
    mean_g: float = 0.0
    m2_p: float = 0.0
    m2_g: float = 0.0
    c_pg: float = 0.0
    sq_err: float = 0.0
    g_min: float = math.inf
    g_max: float = -math.inf

    def add(self, p: NDArray[np.float64], g: NDArray[np.float64]) -> None:
        nb = p.size
        if nb == 0:
            return
        mp, mg = float(p.mean()), float(g.mean())
        dp, dg = p - mp, g - mg
        m2p, m2g, cpg = float(np.vdot(dp, dp)), float(np.vdot(dg, dg)), float(np.vdot(dp, dg))
        diff = p - g
        self.sq_err += float(np.vdot(diff, diff))
        self.g_min = min(self.g_min, float(g.min()))
        self.g_max = max(self.g_max, float(g.max()))
        n = self.n + nb
        delta_p, delta_g = mp - self.mean_p, mg - self.mean_g
        w = self.n * nb / n
        self.m2_p += m2p + delta_p * delta_p * w
        self.m2_g += m2g + delta_g * delta_g * w
        self.c_pg += cpg + delta_p * delta_g * w
        self.mean_p += delta_p * nb / n
        self.mean_g += delta_g * nb / n
        self.n = n


def _moments(p: np.ndarray, g: np.ndarray, scale: float = 1.0, offset: float = 0.0) -> _Moments:
    """Moments of ``scale * p + offset`` against ``g``, raising on NaN or infinity."""
    acc = _Moments()
    for sl in _blocks(p.shape):
        pb, gb = _block(p, sl), _block(g, sl)
        if not (np.isfinite(pb).all() and np.isfinite(gb).all()):
            which = "prediction" if not np.isfinite(pb).all() else "ground truth"
            raise InputError(f"{which} contains NaN or infinite values")
        if scale != 1.0 or offset != 0.0:
            pb = pb * scale + offset
        acc.add(pb.ravel(), gb.ravel())
    return acc


def _given_range(data_range: float) -> float:
    """A caller's ``data_range`` as a float, raising unless it is positive and finite."""
    data_range = float(data_range)
    if not (math.isfinite(data_range) and data_range > 0):
        raise InputError(f"data_range must be a positive finite number, got {data_range}")
    return data_range


def _resolve_range(data_range: float | None, m: _Moments) -> float:
    if data_range is None:
        data_range = m.g_max - m.g_min
        if data_range <= 0:
            raise InputError("ground truth is constant, so its range is 0: pass data_range explicitly")
        return data_range
    return _given_range(data_range)


def _psnr_from(m: _Moments, data_range: float) -> float:
    mse = m.sq_err / m.n
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(data_range * data_range / mse)


def _nrmse_from(m: _Moments) -> float:
    rng = m.g_max - m.g_min
    if rng <= 0:
        raise InputError("ground truth is constant, so NRMSE (RMSE / range of the ground truth) is undefined")
    return math.sqrt(m.sq_err / m.n) / rng


def _pcc_from(m: _Moments) -> float:
    denom = math.sqrt(m.m2_p * m.m2_g)
    if denom == 0:
        return math.nan
    return max(-1.0, min(1.0, m.c_pg / denom))


def _affine_from(m: _Moments) -> tuple[float, float]:
    if m.m2_p == 0:
        return 0.0, m.mean_g
    scale = m.c_pg / m.m2_p
    return scale, m.mean_g - scale * m.mean_p


def psnr(pred: ArrayLike, gt: ArrayLike, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB.

    Parameters
    ----------
    pred, gt : array_like
        Prediction and ground truth of the same shape (any real dtype; computed in float64).
    data_range : float, optional
        Peak-to-peak range of the signal; defaults to ``gt.max() - gt.min()``.

    Returns
    -------
    float
        ``10 log10(data_range**2 / MSE)``; ``inf`` when the images are identical.

    Raises
    ------
    InputError
        On a shape mismatch, NaN or infinity, or a constant ground truth without ``data_range``.
    """
    p, g = _check_pair(pred, gt)
    m = _moments(p, g)
    return _psnr_from(m, _resolve_range(data_range, m))


def nrmse(pred: ArrayLike, gt: ArrayLike) -> float:
    """Root-mean-square error divided by the ground truth's range (max - min).

    Parameters
    ----------
    pred, gt : array_like
        Prediction and ground truth of the same shape.

    Returns
    -------
    float
        ``sqrt(mean((pred - gt)**2)) / (gt.max() - gt.min())``, as scikit-image's
        ``normalized_root_mse(gt, pred, normalization='min-max')``.

    Raises
    ------
    InputError
        On a shape mismatch, NaN or infinity, or a constant ground truth.
    """
    p, g = _check_pair(pred, gt)
    return _nrmse_from(_moments(p, g))


def pcc(pred: ArrayLike, gt: ArrayLike) -> float:
    """Pearson correlation coefficient between the pixel values of two images.

    Parameters
    ----------
    pred, gt : array_like
        Prediction and ground truth of the same shape.

    Returns
    -------
    float
        Correlation in [-1, 1]; NaN when either image is constant (the coefficient is undefined).

    Raises
    ------
    InputError
        On a shape mismatch, NaN or infinity.
    """
    p, g = _check_pair(pred, gt)
    return _pcc_from(_moments(p, g))


def affine_fit(pred: ArrayLike, gt: ArrayLike) -> tuple[float, float]:
    """Least-squares ``scale`` and ``offset`` such that ``scale * pred + offset`` best matches ``gt``.

    Parameters
    ----------
    pred, gt : array_like
        Prediction and ground truth of the same shape.

    Returns
    -------
    tuple of float
        ``(scale, offset)``; for a constant prediction ``(0, mean(gt))``.

    Raises
    ------
    InputError
        On a shape mismatch, NaN or infinity.
    """
    p, g = _check_pair(pred, gt)
    return _affine_from(_moments(p, g))


def _ssim(p: np.ndarray, g: np.ndarray, data_range: float, scale: float = 1.0, offset: float = 0.0) -> float:
    """Mean SSIM of ``scale * p + offset`` against ``g``, streamed in slabs along the first axis.

    Each slab is filtered with a halo of ``_SSIM_RADIUS`` rows, which is exactly the Gaussian's support, so
    the kept rows equal those of a whole-image computation; the border strip of that radius is left out of
    the mean as in scikit-image. Variances are computed on data shifted by a global constant, which leaves
    SSIM unchanged but avoids the cancellation of ``E[x^2] - E[x]^2`` on images with a large offset.
    """
    r = _SSIM_RADIUS
    if p.ndim == 0 or min(p.shape) < 2 * r + 1:
        raise InputError(
            f"SSIM needs every image dimension to be at least {2 * r + 1} pixels (Gaussian window), got shape {p.shape}"
        )
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    n0 = p.shape[0]
    step = _rows_per_block(p.shape)
    total, count = 0.0, 0
    shift: float | None = None

    def filt(a: NDArray[np.float64]) -> NDArray[np.float64]:
        return ndimage.gaussian_filter(a, sigma=_SSIM_SIGMA, truncate=_SSIM_TRUNCATE, mode="reflect")

    for start in range(r, n0 - r, step):
        stop = min(start + step, n0 - r)
        lo, hi = start - r, stop + r
        x = np.asarray(p[lo:hi], dtype=np.float64)
        if scale != 1.0 or offset != 0.0:
            x = x * scale + offset
        y = np.asarray(g[lo:hi], dtype=np.float64)
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise InputError("prediction or ground truth contains NaN or infinite values")
        if shift is None:
            shift = 0.5 * (float(x.mean()) + float(y.mean()))
        ux, uy = filt(x), filt(y)
        xs, ys = x - shift, y - shift
        uxs, uys = ux - shift, uy - shift
        vx = filt(xs * xs) - uxs * uxs
        vy = filt(ys * ys) - uys * uys
        vxy = filt(xs * ys) - uxs * uys
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        inner = (slice(r, r + (stop - start)), *(slice(r, n - r) for n in p.shape[1:]))
        kept = s[inner]
        total += float(kept.sum(dtype=np.float64))
        count += kept.size
    return total / count


def ssim(pred: ArrayLike, gt: ArrayLike, data_range: float | None = None) -> float:
    """Mean structural similarity with a Gaussian window (sigma 1.5, 11 taps), 2D or 3D.

    Parameters
    ----------
    pred, gt : array_like
        Prediction and ground truth of the same shape, every dimension at least 11 pixels.
    data_range : float, optional
        Peak-to-peak range used by the stabilising constants; defaults to ``gt.max() - gt.min()``.

    Returns
    -------
    float
        Mean SSIM over the image without the 5-pixel border, equal to scikit-image's
        ``structural_similarity(gt, pred, data_range=..., gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False)``.

    Raises
    ------
    InputError
        On a shape mismatch, a dimension under 11 pixels, NaN or infinity, or a constant ground truth
        without ``data_range``.
    """
    p, g = _check_pair(pred, gt)
    # An explicit range is only checked: the moments pass (a full read of both images) is not needed for it.
    data_range = _resolve_range(None, _moments(p, g)) if data_range is None else _given_range(data_range)
    return _ssim(p, g, data_range)


def evaluate(pred: ArrayLike, gt: ArrayLike, data_range: float | None = None) -> dict[str, float]:
    """All metrics, raw and after a least-squares affine fit of the prediction onto the ground truth.

    Parameters
    ----------
    pred, gt : array_like
        Prediction and ground truth of the same shape.
    data_range : float, optional
        Range for PSNR and SSIM; defaults to ``gt.max() - gt.min()``.

    Returns
    -------
    dict of str to float
        Keys ``psnr``, ``ssim``, ``pcc``, ``nrmse`` and ``psnr_affine``, ``ssim_affine``, ``pcc_affine``,
        ``nrmse_affine``, plus ``affine_scale`` and ``affine_offset``. SSIM is NaN when a dimension is under
        11 pixels; NRMSE is NaN for a constant ground truth (possible only with an explicit ``data_range``).

    Raises
    ------
    InputError
        On a shape mismatch, NaN or infinity, or a constant ground truth.
    """
    p, g = _check_pair(pred, gt)
    m = _moments(p, g)
    rng = _resolve_range(data_range, m)
    scale, offset = _affine_from(m)
    ma = _moments(p, g, scale, offset)
    can_ssim = p.ndim > 0 and min(p.shape) >= 2 * _SSIM_RADIUS + 1
    constant_ok = m.g_max > m.g_min
    return {
        "psnr": _psnr_from(m, rng),
        "ssim": _ssim(p, g, rng) if can_ssim else math.nan,
        "pcc": _pcc_from(m),
        "nrmse": _nrmse_from(m) if constant_ok else math.nan,
        "psnr_affine": _psnr_from(ma, rng),
        "ssim_affine": _ssim(p, g, rng, scale, offset) if can_ssim else math.nan,
        "pcc_affine": _pcc_from(ma),
        "nrmse_affine": _nrmse_from(ma) if constant_ok else math.nan,
        "affine_scale": scale,
        "affine_offset": offset,
    }


def saturation_count(array: ArrayLike, dtype: DTypeLike | None = None) -> int:
    """Count the pixels at or beyond the limits of an integer dtype.

    Parameters
    ----------
    array : array_like
        Image of any dtype; a float image counts the pixels that would clip when written as ``dtype``
        (values are rounded first, as a writer would).
    dtype : dtype-like, optional
        The output dtype; defaults to ``array``'s own dtype. For unsigned types only the top value counts
        (0 is an ordinary background value, not saturation), e.g. pixels at 65535 for ``uint16``; for signed
        types both ends count. For a float ``dtype`` the count is that of infinite values.

    Returns
    -------
    int
        The number of saturated pixels.

    Raises
    ------
    InputError
        When ``array`` holds NaN while ``dtype`` is an integer type.
    """
    arr = _as_array(array, "image")
    dt = np.dtype(arr.dtype if dtype is None else dtype)
    count = 0
    for sl in _blocks(arr.shape):
        block = arr[sl] if arr.ndim else arr
        if dt.kind == "f":
            count += int(np.count_nonzero(np.isinf(block))) if block.dtype.kind == "f" else 0
            continue
        if dt.kind not in "iu":
            raise InputError(f"saturation is defined for integer or float dtypes, got {dt}")
        info = np.iinfo(dt)
        hi, lo = info.max, info.min
        if block.dtype.kind == "f":
            if np.isnan(block).any():
                raise InputError("image contains NaN values")
            block = np.rint(block)
        count += int(np.count_nonzero(block >= hi))
        if dt.kind == "i":
            count += int(np.count_nonzero(block <= lo))
    return count

"""Ground-truth-free error of a restoration: split the noisy image into two independent noisy images.

For a noisy image ``y = x + n`` whose noise variance ``v(x) = gain * x + c`` is known from the fit
(:mod:`microrestore.assess.camera`), draw ``z ~ N(0, v)`` and form (recorruption, Pang et al. 2021)::

    y1 = y + a z        (noise variance (1 + a^2) v)
    y2 = y - z / a      (noise variance (1 + 1/a^2) v)

``Cov(y1 - x, y2 - x) = v - v = 0``: for Gaussian noise the two are independent noisy images of the same
object ``x``. Restore ``y1`` with the method, ``f(y1)``, and compare it with ``y2``::

    E[(f(y1) - y2)^2] = E[(f(y1) - x)^2] + E[(y2 - x)^2]

so ``mean((f(y1) - y2)^2) - mean(v) - mean(z^2) / a^2`` estimates the mean squared error of ``f(y1)`` against
the unknown truth without bias (``z`` is known exactly; ``mean(v)`` comes from the noise fit).

``f(y1)`` sees ``s = 1 + a^2`` times the noise of ``y``; the user's output is ``f(y)`` (``s = 1``). The MSE is
measured at several strengths ``a`` (each averaged over several random splits), a power law
``MSE(s) = MSE_0 s^beta`` is fitted in log-log, and ``MSE_0`` is the estimate for ``f(y)`` (a denoiser's error
grows as a power of the noise variance, with ``beta`` between 0 (noise-free output) and 1 (the identity)).

The interval is a bootstrap: the splits are resampled within each strength and the noise model's mean
variance is perturbed by its own standard error (from a bootstrap over the fit's blocks), then refitted.

The per-pixel uncertainty (:attr:`ErrorEstimate.sigma`) is self-calibrating: its local shape comes from the
same splits (the smoothed local squared error ``(f(y1) - y2)^2 - v - z^2/a^2`` scaled to ``s = 1``, and at
least the spread of the restorations of independent splits, ``var_k f(y1) / a^2``, the output's own noise at
full dose), and its global scale makes the mean of ``sigma^2`` equal ``MSE_0``: no truth is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microrestore.assess.camera import CameraReport, camera_report, variance_map

__all__ = ["ErrorEstimate", "Restorer", "data_range_of", "estimate_error", "split_pair"]

#: A restoration: noisy array in the input's units to restored array of the same shape and units.
Restorer = Callable[[np.ndarray], np.ndarray]

#: Default split strengths ``a`` (input noise variance factors 1.25, 1.49 and 2).
STRENGTHS = (0.5, 0.7, 1.0)
#: Bootstrap replicates for the interval.
BOOTSTRAP = 400
#: Gaussian smoothing (pixels) of the local squared error in the uncertainty map's shape.
LOCAL_SIGMA = 4.0


@dataclass
class ErrorEstimate:
    """The estimated error of ``f(y)`` against the unknown noise-free image.

    Attributes
    ----------
    estimated_rmse
        Root mean squared error, input units.
    rmse_interval
        90 % bootstrap interval of the RMSE.
    psnr
        ``20 log10(data_range / estimated_rmse)``.
    psnr_interval
        The PSNR at the interval's ends.
    data_range
        Range of the output (0.01th to 99.99th percentile), standing in for the truth's range.
    exponent
        Fitted ``beta`` of ``MSE(s) = MSE_0 s^beta``.
    per_strength
        MSE estimated at each split strength ``a`` (``{a: mse}``, averaged over its splits).
    splits
        Restorations of split images used.
    noise_rmse
        Square root of the mean noise variance of the input (the identity's RMSE), input units.
    camera
        The fitted camera model.
    replicates
        Bootstrap replicates of ``MSE_0`` (paired across methods sharing a seed, for rankings).
    output
        ``f(y)``, the restoration of the full image.
    sigma
        Per-pixel uncertainty (standard deviation, input units) of ``output``, or ``None``.
    """

    estimated_rmse: float
    rmse_interval: tuple[float, float]
    psnr: float
    psnr_interval: tuple[float, float]
    data_range: float
    exponent: float
    per_strength: dict[float, float]
    splits: int
    noise_rmse: float
    camera: CameraReport
    replicates: np.ndarray = field(repr=False)
    output: np.ndarray = field(repr=False)
    sigma: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no arrays)."""
        return {
            "estimated_rmse": self.estimated_rmse,
            "rmse_interval": list(self.rmse_interval),
            "psnr": self.psnr,
            "psnr_interval": list(self.psnr_interval),
            "data_range": self.data_range,
            "exponent": self.exponent,
            "per_strength": {f"{a:g}": m for a, m in self.per_strength.items()},
            "splits": self.splits,
            "noise_rmse": self.noise_rmse,
        }


def split_pair(
    image: np.ndarray, variance: np.ndarray, strength: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recorrupt ``image`` into two noisy images whose noises are uncorrelated.

    Parameters
    ----------
    image
        The noisy image ``y``.
    variance
        Its per-pixel noise variance (:func:`~microrestore.assess.camera.variance_map`).
    strength
        ``a`` > 0: ``y1 = y + a z`` and ``y2 = y - z / a`` with ``z ~ N(0, variance)``.
    rng
        Random generator.

    Returns
    -------
    tuple of numpy.ndarray
        ``(y1, y2, z)``, float64.
    """
    if not strength > 0:
        raise ValueError("the split strength must be positive")
    z = rng.standard_normal(image.shape) * np.sqrt(variance)
    y = np.asarray(image, np.float64)
    return y + strength * z, y - z / strength, z


def data_range_of(output: np.ndarray) -> float:
    """The output's range from its 0.01th to 99.99th percentile (the PSNR's data range without a truth)."""
    low, high = np.percentile(np.asarray(output, np.float64), [0.01, 99.99])
    return float(high - low) if high > low else 1.0


def _psnr(data_range: float, mse: float) -> float:
    return 20.0 * math.log10(data_range / math.sqrt(mse)) if mse > 0 else math.inf


#: Exponents ``beta`` tried by the power-law fit.
BETAS = np.linspace(0.0, 2.0, 81)


def _power_fit(s: np.ndarray, m: np.ndarray, w: np.ndarray, floor: float) -> tuple[float, float]:
    """``(MSE_0, beta)`` of ``m = MSE_0 s^beta`` by weighted least squares (``beta`` in [0, 2] on a grid).

    Least squares on the values themselves, not their logarithms: a noisy estimate may be negative.
    """
    best = (np.inf, 0.0, 0.0)
    for beta in BETAS:
        basis = s**beta
        m0 = max(float(np.sum(w * m * basis) / np.sum(w * basis * basis)), floor)
        sse = float(np.sum(w * (m - m0 * basis) ** 2))
        if sse < best[0]:
            best = (sse, m0, float(beta))
    return best[1], best[2]


def estimate_error(
    image: np.ndarray,
    restore: Restorer,
    *,
    camera: CameraReport | None = None,
    strengths: Sequence[float] = STRENGTHS,
    repeats: int = 2,
    seed: int = 0,
    uncertainty: bool = True,
    output: np.ndarray | None = None,
) -> ErrorEstimate:
    """Estimate the error of ``restore(image)`` against the unknown noise-free image (see the module docstring).

    Parameters
    ----------
    image
        The noisy image, in the camera's units (any shape whose last two axes are Y and X).
    restore
        The restoration, called on float32 arrays of ``image``'s shape.
    camera
        The fitted noise model (default: fitted here).
    strengths
        Split strengths ``a``.
    repeats
        Random splits per strength.
    seed
        Seed of the splits (methods assessed with the same seed share the splits: paired comparisons).
    uncertainty
        Also build the per-pixel uncertainty map.
    output
        ``restore(image)`` when already computed.

    Returns
    -------
    ErrorEstimate
        The estimate, its interval and (with ``uncertainty``) the uncertainty map.
    """
    y = np.asarray(image, np.float64)
    camera = camera or camera_report(y)
    var = variance_map(y, camera)
    mean_var = max(camera.gain * float(y.mean()) + camera.c, 1e-12)
    rng = np.random.default_rng(seed)
    if output is None:
        output = np.asarray(restore(y.astype(np.float32)), np.float64)
    raw: dict[float, list[float]] = {}
    ses: dict[float, list[float]] = {}
    locals_: list[tuple[float, np.ndarray]] = []
    spread: list[np.ndarray] = []
    shifts: list[np.ndarray] = []
    for a in strengths:
        raw[a] = []
        outs = []
        for _ in range(max(1, repeats)):
            y1, y2, z = split_pair(y, var, a, rng)
            f1 = np.asarray(restore(y1.astype(np.float32)), np.float64)
            # 2 r z / a: zero mean given y (z is independent of y), it cancels most of the split-to-split
            # scatter of the cross term -2 n z / a (r = y - f(y) stands in for the unknown noise n)
            sq = (f1 - y2) ** 2 - z**2 / a**2 + 2.0 * (y - output) * z / a
            raw[a].append(float(sq.mean()) - mean_var)
            ses.setdefault(a, []).append(float(sq.std()) ** 2 / sq.size)
            if uncertainty:
                locals_.append((1.0 + a * a, sq - var))
                outs.append(f1)
        if uncertainty and len(outs) > 1:
            spread.append(np.var(np.stack(outs), axis=0, ddof=1) / (a * a))
        if uncertainty:
            shifts.append(np.mean(outs, axis=0) - output)
    s = np.array([1.0 + a * a for a in strengths])
    per = np.array([np.mean(raw[a]) for a in strengths])
    # variance of each strength's mean: the pixels' scatter over the splits (spatial correlation ignored)
    weights = np.array([len(ses[a]) ** 2 / np.sum(ses[a]) for a in strengths])
    floor = 1e-4 * mean_var
    mse0, beta = _power_fit(s, per, weights, floor)
    replicates = _bootstrap(raw, strengths, s, weights, camera.mean_variance_se, floor, seed)
    lo, hi = np.percentile(replicates, [5.0, 95.0])
    data_range = data_range_of(output)
    sigma = None
    if uncertainty:
        sigma = _sigma_map(locals_, spread, shifts, output, beta, mse0, mean_var)
    rmse = math.sqrt(mse0)
    return ErrorEstimate(
        estimated_rmse=rmse,
        rmse_interval=(math.sqrt(lo), math.sqrt(hi)),
        psnr=_psnr(data_range, mse0),
        psnr_interval=(_psnr(data_range, hi), _psnr(data_range, lo)),
        data_range=data_range,
        exponent=beta,
        per_strength={float(a): float(m) for a, m in zip(strengths, per)},
        splits=sum(len(v) for v in raw.values()),
        noise_rmse=math.sqrt(mean_var),
        camera=camera,
        replicates=replicates,
        output=output.astype(np.float32),
        sigma=sigma,
    )


def _bootstrap(
    raw: dict[float, list[float]],
    strengths: Sequence[float],
    s: np.ndarray,
    weights: np.ndarray,
    var_se: float,
    floor: float,
    seed: int,
    n: int = BOOTSTRAP,
) -> np.ndarray:
    """``MSE_0`` refitted on splits resampled per strength, the mean noise variance shifted by its error."""
    rng = np.random.default_rng(seed + 7919)
    se = var_se if math.isfinite(var_se) else 0.0
    out = np.empty(n)
    for i in range(n):
        shift = rng.normal(0.0, se)
        per = []
        for a in strengths:
            vals = np.asarray(raw[a])
            per.append(float(vals[rng.integers(0, vals.size, vals.size)].mean()) - shift)
        out[i] = _power_fit(s, np.asarray(per), weights, floor)[0]
    return out


def _smooth(a: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.asarray(gaussian_filter(a, sigma=[0.0] * (a.ndim - 2) + [sigma, sigma], mode="reflect"))


def _sigma_map(
    locals_: list[tuple[float, np.ndarray]],
    spread: list[np.ndarray],
    shifts: list[np.ndarray],
    output: np.ndarray,
    beta: float,
    mse0: float,
    mean_var: float,
) -> np.ndarray:
    """Per-pixel standard deviation whose mean square is ``mse0`` (see the module docstring).

    The pixelwise squared error of the splits, scaled to full dose, is unbiased but far too noisy to use
    directly; it is the target of a non-negative least-squares fit over all pixels on smooth, low-noise
    features: the output's own noise at full dose (spread of the restorations of independent splits), the
    squared shift of the restorations as noise is added (bias grows with noise), the output's squared
    curvature (blurred structure) and a constant.
    """
    from scipy.ndimage import laplace
    from scipy.optimize import nnls

    target = np.mean([m * s_**-beta for s_, m in locals_], axis=0)
    features = [np.ones_like(output)]
    if spread:
        features.append(_smooth(np.mean(spread, axis=0), 1.0))
    if shifts:
        features.append(_smooth(np.mean([d**2 for d in shifts], axis=0), 1.0))
    curv = np.stack([laplace(p) for p in output.reshape((-1, *output.shape[-2:]))]).reshape(output.shape)
    features.append(_smooth(curv**2, 1.0))
    basis = np.stack([f.ravel() / max(float(f.mean()), 1e-300) for f in features], axis=1)
    weights, _ = nnls(basis, _smooth(target, 1.0).ravel())
    shape = (basis @ weights).reshape(output.shape)
    shape = np.maximum(shape, 1e-3 * max(mse0, 1e-6 * mean_var))
    scale = mse0 / float(shape.mean()) if shape.mean() > 0 else 0.0
    return np.sqrt(scale * shape).astype(np.float32)

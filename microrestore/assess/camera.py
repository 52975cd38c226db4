"""The camera and noise model of one image, fitted from the image itself, and how well it fits.

The fit is :func:`microrestore.engine.noise_model.estimate_poisson_gaussian` (the one nl-means and the
noise-stabilising normaliser use): ``var = gain * level + c`` on flat blocks. From one image only ``gain`` and
``c`` are identifiable; the report splits ``c`` into an offset and a read noise by assuming that the darkest
structures (the 0.1th percentile of a lightly smoothed image) hold no photons. Where the background holds
photons, the read noise is then an upper bound and the photon counts a lower bound.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from microrestore.engine.noise_model import NoiseModel, _robust_line, estimate_poisson_gaussian, flat_block_stats

__all__ = ["CameraReport", "camera_report", "variance_map"]

#: Percentile of the smoothed image taken as the brightest structures' level.
BRIGHT_PERCENTILE = 99.9
#: Percentile of the smoothed image taken as the zero-photon (dark) level.
DARK_PERCENTILE = 0.1


@dataclass(frozen=True)
class CameraReport:
    """A fitted Poisson-Gaussian camera model in the image's units.

    Attributes
    ----------
    gain
        Units per detected photon (0: no signal-dependent noise was measured).
    c
        Intercept of the variance line ``var = gain * level + c``.
    offset
        Zero-photon level (the darkest structures' level, see the module docstring).
    read_noise
        Standard deviation of the signal-independent noise at the offset.
    photons_bright
        Detected photons at the brightest structures (99.9th percentile) above the offset.
    photons_background
        Detected photons at the median level above the offset.
    blocks
        Flat blocks the line was fitted to.
    fit_deviation
        Largest relative deviation of the binned block variances (medians of 8 bins of level) from the line:
        under 0.1 the model describes the noise well, over 0.25 it does not (e.g. correlated or clipped noise).
    mean_variance
        Noise variance averaged over the image's pixels under the model.
    mean_variance_se
        Standard error of ``mean_variance`` from a bootstrap over the blocks (half the 16-84 % spread).
    """

    gain: float
    c: float
    offset: float
    read_noise: float
    photons_bright: float
    photons_background: float
    blocks: int
    fit_deviation: float
    mean_variance: float
    mean_variance_se: float

    @property
    def model(self) -> NoiseModel:
        """The model as :class:`~microrestore.engine.noise_model.NoiseModel` (``sigma2`` at the offset)."""
        return NoiseModel(self.gain, self.read_noise**2, self.offset) if self.gain > 0 else NoiseModel(0.0, self.c, 0.0)

    @property
    def fits(self) -> str:
        """``good``, ``fair`` or ``poor`` from :attr:`fit_deviation`."""
        return "good" if self.fit_deviation < 0.1 else "fair" if self.fit_deviation < 0.25 else "poor"

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (with ``fit``)."""
        return {**asdict(self), "fit": self.fits}


def _box3(image: np.ndarray) -> np.ndarray:
    """3x3 box mean over the last two axes (edges replicated)."""
    from scipy.ndimage import uniform_filter

    size = [1] * (image.ndim - 2) + [3, 3]
    return np.asarray(uniform_filter(np.asarray(image, np.float64), size=size, mode="nearest"))


def variance_map(image: np.ndarray, model: NoiseModel | CameraReport, floor: float | None = None) -> np.ndarray:
    """Per-pixel noise variance ``gain * level + c`` at a 3x3-smoothed level (linear, so unbiased in the mean).

    Parameters
    ----------
    image
        The noisy image (any shape whose last two axes are Y and X).
    model
        The fitted noise model.
    floor
        Smallest variance kept (default: 1 % of the median variance, or 1e-12).

    Returns
    -------
    numpy.ndarray
        float64 variances of ``image``'s shape.
    """
    gain, c = (model.gain, model.c)
    var = gain * _box3(image) + c
    if floor is None:
        floor = max(0.01 * float(np.median(var)), 1e-12)
    return np.maximum(var, floor)


def camera_report(image: np.ndarray, *, seed: int = 0, bootstrap: int = 30) -> CameraReport:
    """Fit the Poisson-Gaussian noise model of ``image`` and describe the camera and the light.

    Parameters
    ----------
    image
        A 2D plane or a stack whose last two axes are Y and X, in the camera's units.
    seed
        Seed of the bootstrap over blocks.
    bootstrap
        Bootstrap resamples of the blocks for ``mean_variance_se``.

    Returns
    -------
    CameraReport
        The fitted model, its goodness of fit and the photon counts.

    Raises
    ------
    microrestore.engine.noise_model.NoiseEstimationError
        Too few flat blocks to fit the model.
    """
    data = np.asarray(image, np.float64)
    fitted = estimate_poisson_gaussian(data)
    gain, c = fitted.gain, fitted.c
    means, variances = flat_block_stats(data, model=(gain, c))
    smooth = _box3(data)
    dark, median, bright = np.percentile(smooth, [DARK_PERCENTILE, 50.0, BRIGHT_PERCENTILE])
    read_var = max(gain * dark + c, 0.0)
    level = float(np.mean(data))
    mean_var = max(gain * level + c, 0.0)
    rng = np.random.default_rng(seed)
    boot = []
    if means.size >= 8:
        for _ in range(bootstrap):
            pick = rng.integers(0, means.size, means.size)
            g, cc = _robust_line(means[pick], variances[pick], slope=0.0 if gain == 0 else None)
            boot.append(max(g, 0.0) * level + cc)
    # half the 16-84 % spread: a robust standard error (a few resamples can leave the fit degenerate)
    se = float(np.subtract(*np.percentile(boot, [84.0, 16.0])) / 2.0) if boot else float("nan")
    photons = (lambda v: float(max(v - dark, 0.0) / gain)) if gain > 0 else (lambda v: float("nan"))
    return CameraReport(
        gain=float(gain),
        c=float(c),
        offset=float(dark) if gain > 0 else 0.0,
        read_noise=float(np.sqrt(read_var)) if gain > 0 else float(np.sqrt(max(c, 0.0))),
        photons_bright=photons(bright),
        photons_background=photons(median),
        blocks=int(means.size),
        fit_deviation=_fit_deviation(means, variances, gain, c),
        mean_variance=float(mean_var),
        mean_variance_se=se,
    )


def _fit_deviation(means: np.ndarray, variances: np.ndarray, gain: float, c: float, bins: int = 8) -> float:
    """Largest relative deviation of binned median block variances from the line (bins of >= 8 blocks)."""
    if means.size < 8:
        return float("nan")
    order = np.argsort(means)
    n = int(np.clip(means.size // 8, 1, bins))
    worst = 0.0
    for part in np.array_split(order, n):
        model = gain * float(np.median(means[part])) + c
        if model <= 0:
            continue
        # the median of a variance estimate sits below its mean: compare medians with the median of the
        # ratio's distribution over all blocks (the same bias everywhere cancels)
        worst = max(worst, abs(float(np.median(variances[part])) / model - _median_ratio(means, variances, gain, c)))
    return float(worst)


def _median_ratio(means: np.ndarray, variances: np.ndarray, gain: float, c: float) -> float:
    model = np.maximum(gain * means + c, 1e-300)
    return float(np.median(variances / model))

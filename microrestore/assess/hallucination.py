"""Where a restoration holds structure that the input's data do not support.

If the output ``f(y)`` were the noise-free image, the residual ``y - f(y)`` would be noise only: zero mean,
with the variance ``v`` the noise model gives. Averaged over a small window of ``k`` pixels its standard
deviation is ``sqrt(mean(v) / k)``; the z-score of the local mean residual::

    z = local_mean(f(y) - y) / sqrt(local_mean(v) / k)

is far beyond a few units only where the output departs from the data by more than noise can explain. Pixels
with ``z > threshold`` hold signal the data do not show (*added*: hallucinated structure, the concern with
generative methods such as c2gan and COMI); ``z < -threshold`` signal the output dropped (*removed*, e.g. a
blurred peak). The default threshold, 4.5, leaves about one false alarm per 300,000 pixels under the null.
The restorer's own error slightly correlates the residual with the noise; the test is meant for gross
departures, not a few per cent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microrestore.assess.camera import CameraReport, variance_map
from microrestore.engine.noise_model import NoiseModel

__all__ = ["HallucinationMap", "hallucination_map"]

#: Edge of the square averaging window in pixels.
WINDOW = 7
#: z-score beyond which a window's mean residual is not noise.
THRESHOLD = 4.5


@dataclass
class HallucinationMap:
    """The output's departures from the data.

    Attributes
    ----------
    z
        z-score of the local mean of ``output - input`` given the noise (float32, the input's shape).
    added
        Share of pixels where the output is brighter than the data support (``z > threshold``).
    removed
        Share of pixels where the output is darker than the data support (``z < -threshold``).
    threshold
        The z threshold used.
    window
        Edge of the averaging window (pixels).
    """

    z: np.ndarray
    added: float
    removed: float
    threshold: float
    window: int

    @property
    def mask(self) -> np.ndarray:
        """Pixels where the output holds structure the data do not support (``z > threshold``)."""
        return self.z > self.threshold

    def as_dict(self) -> dict[str, float]:
        """JSON-ready summary (no arrays)."""
        return {
            "unsupported_added": self.added,
            "unsupported_removed": self.removed,
            "threshold": self.threshold,
            "window": self.window,
        }


def hallucination_map(
    image: np.ndarray,
    output: np.ndarray,
    model: NoiseModel | CameraReport,
    *,
    window: int = WINDOW,
    threshold: float = THRESHOLD,
) -> HallucinationMap:
    """Test, window by window, whether ``output - image`` is larger than the noise allows.

    Parameters
    ----------
    image
        The noisy input (last two axes Y and X).
    output
        Its restoration, same shape and units.
    model
        The input's noise model.
    window
        Edge of the square averaging window (odd, pixels).
    threshold
        z-score beyond which a window is flagged.

    Returns
    -------
    HallucinationMap
        The z-score map and the shares of flagged pixels.
    """
    from scipy.ndimage import uniform_filter

    y = np.asarray(image, np.float64)
    f = np.asarray(output, np.float64)
    if y.shape != f.shape:
        raise ValueError(f"output shape {f.shape} differs from the input's {y.shape}")
    size = [1] * (y.ndim - 2) + [window, window]
    var = variance_map(y, model)
    mean_res = uniform_filter(f - y, size=size, mode="reflect")
    mean_var = uniform_filter(var, size=size, mode="reflect")
    z = mean_res / np.sqrt(mean_var / (window * window))
    return HallucinationMap(
        z=z.astype(np.float32),
        added=float(np.mean(z > threshold)),
        removed=float(np.mean(z < -threshold)),
        threshold=float(threshold),
        window=int(window),
    )

"""Data scaling: each domain's fixed intensity range, and its images on the 0..255 scale of the thresholds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from microrestore.engine.normalization import FixedNormalizer, subsample
from microrestore.errors import InputError

#: Values looked at per domain when computing Otsu's threshold and the ``auto`` range of float images.
FIT_SAMPLES = 1 << 20
#: At most this many planes per domain are looked at for the automatic threshold and range.
FIT_PLANES = 64


def _fit_planes(samples: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Up to FIT_PLANES evenly spaced samples, each subsampled so that the total stays near FIT_SAMPLES."""
    items = list(samples)
    if len(items) > FIT_PLANES:
        items = [items[i] for i in np.linspace(0, len(items) - 1, FIT_PLANES).round().astype(int)]
    budget = max(4096, FIT_SAMPLES // len(items))
    return [np.asarray(subsample(s, budget), dtype=np.float64) for s in items]


#: Share of the data's span added above its 99.99th percentile by ``intensity_range: data``.
DATA_HEADROOM = 0.25


def resolve_range(samples: Sequence[np.ndarray], spec: Any, domain: str) -> tuple[float, float]:
    """The fixed intensity range of one domain: the given ``[low, high]`` or ``auto`` (from the dtype).

    ``auto``: integer images use their dtype's range (0..255 for uint8, 0..65535 for uint16; the widest type
    of the domain); float images 0 (or the minimum, if negative) to the maximum of the domain's images.
    ``data``: from the images' values, for low-count data that uses a sliver of its dtype's range: the 0.1st
    percentile minus 5 % of the span to the 99.99th percentile plus :data:`DATA_HEADROOM` of it (room for
    structures brighter than any seen in training), never below 0 for unsigned images.
    """
    if spec == "data":
        values = np.concatenate([v.ravel() for v in _fit_planes(samples)])
        lo, hi = (float(v) for v in np.percentile(values, [0.1, 99.99]))
        if not hi > lo:
            raise InputError(f"domain {domain} images are constant; give intensity_range explicitly")
        span = hi - lo
        low = lo - 0.05 * span
        if all(np.dtype(s.dtype).kind in "ub" for s in samples):
            low = max(0.0, low)
        return low, hi + DATA_HEADROOM * span
    if spec != "auto":
        low, high = (float(v) for v in spec)
        return low, high
    dtypes = {np.dtype(s.dtype) for s in samples}
    if all(d.kind in "ui" for d in dtypes):
        return float(min(np.iinfo(d).min for d in dtypes)), float(max(np.iinfo(d).max for d in dtypes))
    if all(d.kind == "b" for d in dtypes):
        return 0.0, 1.0
    values = _fit_planes(samples)
    low = min(0.0, min(float(v.min()) for v in values))
    high = max(float(v.max()) for v in values)
    if not high > low:
        raise InputError(f"domain {domain} images are constant; give intensity_range explicitly")
    return low, high


def scaled_255(samples: Sequence[np.ndarray], normalizer: FixedNormalizer) -> np.ndarray:
    """A subsample of the domain's images on the 0..255 scale of the thresholds (``(scaled + 1) * 127.5``)."""
    parts = [((normalizer.apply(v) + 1.0) * 127.5).ravel() for v in _fit_planes(samples)]
    return np.concatenate(parts)

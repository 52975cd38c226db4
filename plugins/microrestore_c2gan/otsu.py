"""Otsu's threshold, the automatic saliency threshold of each domain."""

from __future__ import annotations

import numpy as np

from microrestore.errors import InputError


def otsu_threshold(values: np.ndarray, bins: int = 1024) -> float:
    """Otsu's threshold: the level that maximises the between-class variance of a histogram.

    The histogram spans the values' own range (not a fixed 0..255), so images that use a small part of the
    scale (16-bit data scaled by a fixed factor) still get a resolved threshold.

    Parameters
    ----------
    values
        Any numbers (flattened; non-finite values are ignored).
    bins
        Histogram bins.

    Returns
    -------
    float
        The threshold: values above it are the upper class (as ``skimage.filters.threshold_otsu``).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise InputError("cannot compute a threshold of no values")
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return lo
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centers = (edges[:-1] + edges[1:]) / 2
    weight1 = np.cumsum(counts)
    weight2 = np.cumsum(counts[::-1])[::-1]
    mean1 = np.cumsum(counts * centers) / np.maximum(weight1, 1)
    mean2 = (np.cumsum((counts * centers)[::-1]) / np.maximum(weight2[::-1], 1))[::-1]
    variance = weight1[:-1] * weight2[1:] * (mean1[:-1] - mean2[1:]) ** 2
    return float(centers[int(np.argmax(variance))])

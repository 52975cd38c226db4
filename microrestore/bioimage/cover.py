"""The sample image a package's test tensors are made from, and the cover (input beside output)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import InputError


def read_sample(sample: Any, ndim: int) -> np.ndarray:
    """The sample as a float32 array with the model's spatial axes only (first plane of any others)."""
    from microrestore.io.images import ImageData

    if sample is None:
        sample = Path(__file__).resolve().parents[1] / "data" / "demo" / "noisy.tif"
    image: ImageData = sample_image(sample)
    spatial = "ZYX" if ndim == 3 else "YX"
    if any(a not in image.axes for a in spatial):
        raise InputError(f"the sample needs axes {spatial}, it has {image.axes!r}", image.path)
    data = np.asarray(image.data)
    index = tuple(slice(None) if a in spatial else 0 for a in image.axes)
    kept = [a for a in image.axes if a in spatial]
    plane = np.transpose(data[index], [kept.index(a) for a in spatial])
    if not np.isfinite(plane).all():
        raise InputError("the sample contains NaN or infinite values", image.path)
    return np.ascontiguousarray(plane, dtype=np.float32)


def sample_image(sample: Any) -> Any:
    """The sample as :class:`~microrestore.io.images.ImageData` (``None`` stays ``None``).

    A path is read with its metadata; a 2D array is ``YX``, a 3D array ``ZYX``.
    """
    from microrestore.io.images import ImageData, read_image

    if sample is None or isinstance(sample, ImageData):
        return sample
    if isinstance(sample, np.ndarray):
        if sample.ndim not in (2, 3):
            raise InputError(f"a sample array must have 2 or 3 dimensions, got {sample.ndim}")
        return ImageData(sample, "ZYX"[-sample.ndim :])
    return read_image(Path(sample))


def write_cover(path: Path, left: np.ndarray, right: np.ndarray) -> Path:
    """Write a 2:1 PNG: input left, output right, each scaled to its own 1-99.8 percentile range.

    The larger image is reduced by block averaging to the other's height (an SR output is twice its input).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    def scaled(a: np.ndarray) -> np.ndarray:
        a = a if a.ndim == 2 else a[a.shape[0] // 2]
        lo, hi = np.percentile(a, [1, 99.8])
        return np.clip((a - lo) / (hi - lo or 1.0), 0, 1)

    def reduced(a: np.ndarray, f: int) -> np.ndarray:
        a = a if a.ndim == 2 else a[a.shape[0] // 2]
        if f <= 1:
            return a
        h, w = a.shape[0] // f * f, a.shape[1] // f * f
        return a[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))

    factor = max(left.shape[-2], right.shape[-2]) // max(1, min(left.shape[-2], right.shape[-2]))
    if left.shape[-2] > right.shape[-2]:
        left = reduced(left, factor)
    elif right.shape[-2] > left.shape[-2]:
        right = reduced(right, factor)
    left, right = scaled(left), scaled(right)
    height = min(left.shape[0], right.shape[0])
    left, right = left[:height], right[:height]
    gap = np.ones((height, max(2, left.shape[1] // 64)), dtype=np.float32)
    plt.imsave(path, np.concatenate([left, gap, right], axis=1), cmap="magma", vmin=0, vmax=1)
    return path

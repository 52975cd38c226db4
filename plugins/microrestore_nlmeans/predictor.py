"""The ``nl-means`` predictor: noise model, GAT, non-local means and inverse GAT on every YX plane."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from microrestore.errors import InputError
from microrestore_nlmeans.nlm import nl_means
from microrestore_nlmeans.noise import (
    NoiseEstimationError,
    NoiseModel,
    estimate_poisson_gaussian,
    gat_forward,
    gat_inverse,
)

if TYPE_CHECKING:
    from microrestore_nlmeans import NLMeansParams

#: Axes that hold separate channels (each gets its own noise model).
CHANNEL_AXES = "CS"


class NLMeansPredictor:
    """Denoise images plane by plane; see :mod:`microrestore_nlmeans`.

    Attributes
    ----------
    params
        The validated options.
    noise_models
        The noise model used for each channel of the last image (keyed by the channel index tuple).
    """

    def __init__(self, params: NLMeansParams) -> None:
        self.params = params
        self.noise_models: dict[tuple[int, ...], NoiseModel] = {}

    def predict(self, image: Any, out: Any = None) -> Any:
        """Denoise ``image`` (an ``ImageData``); return float32 in its units, or fill and return ``out``."""
        data = image.data
        axes = str(image.axes).upper()
        ys, xs = _yx_positions(axes, data.shape, image)
        if out is None:
            out = np.empty(data.shape, dtype=np.float32)
        elif tuple(out.shape) != tuple(data.shape):
            raise ValueError(f"out has shape {tuple(out.shape)}, the image {tuple(data.shape)}")
        self.noise_models = {}
        for channel, planes in _channels(axes, data.shape, ys, xs).items():
            model = self._noise_model(data, planes, image)
            self.noise_models[channel] = model
            floor = self._floor(data, planes, model)
            # square patches and windows: a plane is denoised in whatever order its Y and X come
            for index, result in _map_planes(lambda ix, m=model, f=floor: self._denoise(data[ix], m, f), planes):
                out[index] = result
        return out

    def noise_model(self, image: Any) -> NoiseModel:
        """Return the noise model of ``image``'s first channel (estimated unless fully given)."""
        axes = str(image.axes).upper()
        ys, xs = _yx_positions(axes, image.data.shape, image)
        planes = next(iter(_channels(axes, image.data.shape, ys, xs).values()))
        return self._noise_model(image.data, planes, image)

    # -- internals -------------------------------------------------------------------------------------
    def _noise_model(self, data: Any, planes: list[tuple[Any, ...]], image: Any) -> NoiseModel:
        p = self.params
        if p.gain is not None and p.read_noise is not None and p.offset is not None:
            return NoiseModel(p.gain, p.read_noise**2, p.offset)
        step = max(1, len(planes) // 16)
        sample = np.stack([np.asarray(data[ix]) for ix in planes[::step][:16]])
        try:
            return estimate_poisson_gaussian(sample, gain=p.gain, read_noise=p.read_noise, offset=p.offset)
        except NoiseEstimationError as exc:
            raise InputError(
                f"nl-means could not estimate the noise model: {exc}; give it with --set gain=... "
                "--set read_noise=... --set offset=...",
                image.path,
            ) from None

    def _floor(self, data: Any, planes: list[tuple[Any, ...]], model: NoiseModel) -> float:
        """The lowest value the inverse transform may return: the model's offset, or the data's minimum below it.

        One image only tells ``c = sigma2 - gain * offset``; the estimate puts ``offset`` at 0 (or above), which
        is not the zero-photon level of background-subtracted data with negative values. Clipping the result
        at that offset turned such images into zeros; the floor is lowered to the channel's minimum instead
        (a given ``--set offset`` is the true level and is kept).
        """
        if self.params.offset is not None:
            return model.offset
        lowest = min(float(np.min(data[ix])) for ix in planes)
        return min(model.offset, lowest)

    def _denoise(self, plane: np.ndarray, model: NoiseModel, floor: float | None = None) -> np.ndarray:
        p = self.params
        z = np.asarray(plane, dtype=np.float64)
        if model.gain <= 0 and model.sigma2 <= 0:
            return z.astype(np.float32)  # noise-free by the given model
        stabilised = gat_forward(z, model)
        smoothed = nl_means(stabilised, patch_size=p.patch_size, search_size=p.search_size, h=p.h, sigma=1.0)
        return gat_inverse(smoothed, model, floor)


def _yx_positions(axes: str, shape: tuple[int, ...], image: Any) -> tuple[int, int]:
    if len(axes) != len(shape):
        raise InputError(f"axes {axes!r} do not match the image's {len(shape)} dimensions", image.path)
    if "Y" not in axes or "X" not in axes:
        raise InputError(f"nl-means needs Y and X axes (image axes {axes!r})", image.path)
    return axes.index("Y"), axes.index("X")


def _channels(axes: str, shape: tuple[int, ...], ys: int, xs: int) -> dict[tuple[int, ...], list[tuple[Any, ...]]]:
    """Plane indices (into the original array) grouped by channel."""
    lead = [i for i in range(len(shape)) if i not in (ys, xs)]
    groups: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
    for values in np.ndindex(*(shape[i] for i in lead)):
        index: list[Any] = [slice(None)] * len(shape)
        for dim, v in zip(lead, values, strict=True):
            index[dim] = v
        channel = tuple(v for dim, v in zip(lead, values, strict=True) if axes[dim] in CHANNEL_AXES)
        groups.setdefault(channel, []).append(tuple(index))
    return groups


def _map_planes(fn: Any, planes: list[tuple[Any, ...]]) -> Iterator[tuple[tuple[Any, ...], np.ndarray]]:
    """Yield ``(index, fn(index))`` in order, computing up to a few planes at once in threads."""
    workers = min(len(planes), os.cpu_count() or 1, 4)
    if workers <= 1:
        for index in planes:
            yield index, fn(index)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # numpy and scipy release the GIL in the heavy loops; keep a bounded window of planes in flight
        pending: list[Any] = []
        for index in planes:
            pending.append((index, pool.submit(fn, index)))
            if len(pending) >= 2 * workers:
                first, future = pending.pop(0)
                yield first, future.result()
        for index, future in pending:
            yield index, future.result()

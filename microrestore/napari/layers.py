"""From napari layers to microrestore images and back, without Qt.

A layer holds an array, its ``scale``, ``translate``, ``units``, ``axis_labels`` and contrast limits. microrestore
needs axes (``TCZYX`` letters) and pixel sizes in micrometres; its results go back as layers that sit exactly on
the input (same scale, translate and units, and the input's contrast limits: restored intensities stay in the
input's units).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from microrestore.errors import InputError

__all__ = [
    "axes_choices",
    "default_axes",
    "layer_image",
    "layer_pixel_size",
    "one_line",
    "result_kwargs",
    "sigma_kwargs",
    "sim_result_kwargs",
]

#: Axes offered for a layer of each dimensionality (the first is the default).
AXES_CHOICES: dict[int, tuple[str, ...]] = {
    2: ("YX",),
    3: ("ZYX", "TYX", "CYX"),
    4: ("TZYX", "CZYX", "TCYX", "ZCYX"),
    5: ("TCZYX", "TZCYX"),
}

#: Micrometres per unit of the length units napari layers carry (pint names and symbols).
_MICROMETRES = {
    "micrometer": 1.0,
    "micron": 1.0,
    "um": 1.0,
    "µm": 1.0,
    "nanometer": 1e-3,
    "nm": 1e-3,
    "millimeter": 1e3,
    "mm": 1e3,
    "meter": 1e6,
    "m": 1e6,
    "angstrom": 1e-4,
}


def one_line(exc: BaseException) -> str:
    """An exception as one line for a notification: microrestore's own errors as they are, others typed."""
    from microrestore.errors import MicrorestoreError

    text = " ".join(str(exc).split())
    if isinstance(exc, MicrorestoreError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def axes_choices(ndim: int) -> tuple[str, ...]:
    """The axes offered for a layer of ``ndim`` dimensions (empty when microrestore cannot restore it)."""
    return AXES_CHOICES.get(int(ndim), ())


def default_axes(layer: Any) -> str:
    """The layer's axes: from its ``axis_labels`` when those are ``TCZYX`` letters, else the first choice."""
    labels = [str(label).strip().upper() for label in getattr(layer, "axis_labels", ()) or ()]
    if len(labels) == layer.ndim and all(len(label) == 1 and label in "TCZYX" for label in labels):
        if len(set(labels)) == len(labels) and labels[-2:] == ["Y", "X"]:
            return "".join(labels)
    choices = axes_choices(layer.ndim)
    return choices[0] if choices else ""


def _unit_micrometres(unit: Any) -> float | None:
    """Micrometres per ``unit`` (a pint unit or a string), ``None`` for pixels or unknown units."""
    name = str(unit).strip().lower() if unit is not None else ""
    return _MICROMETRES.get(name)


def layer_pixel_size(layer: Any, axes: str) -> dict[str, float]:
    """Pixel sizes in micrometres of the layer's ``Z``, ``Y`` and ``X`` axes.

    A length unit (``units``) converts the scale; axes in pixels (napari's default) with a scale other than 1
    are taken as micrometres, as most napari readers set them; a scale of 1 in pixels means none is known.
    """
    scale = [float(s) for s in layer.scale]
    units = list(getattr(layer, "units", None) or ["pixel"] * len(scale))
    sizes: dict[str, float] = {}
    for axis, value, unit in zip(axes, scale, units):
        if axis not in "ZYX" or not (math.isfinite(value) and value > 0):
            continue
        factor = _unit_micrometres(unit)
        if factor is not None:
            sizes[axis] = value * factor
        elif value != 1.0:
            sizes[axis] = value
    return sizes


def layer_image(layer: Any, axes: str) -> Any:
    """The layer's data as an :class:`~microrestore.io.ImageData` (``axes`` checked against its shape).

    Raises
    ------
    InputError
        For an RGB layer, a multiscale layer, an empty layer or axes that do not fit; the message names the layer.
    """
    from microrestore.io import ImageData

    name = f"layer {layer.name!r}"
    if getattr(layer, "rgb", False):
        raise InputError(f"{name} is RGB; split its channels (right click > Split RGB) and restore one")
    if getattr(layer, "multiscale", False):
        raise InputError(f"{name} is multiscale; open its full-resolution level as its own layer")
    data = np.asarray(layer.data)
    if data.size == 0:
        raise InputError(f"{name} is empty (shape {tuple(data.shape)})")
    axes = axes.strip().upper()
    if len(axes) != data.ndim:
        choices = ", ".join(axes_choices(data.ndim)) or "none: give a 2D to 5D layer"
        raise InputError(f"{name} has {data.ndim} dimensions but axes {axes!r} name {len(axes)} (choices: {choices})")
    try:
        return ImageData(data, axes, path=None, pixel_size=layer_pixel_size(layer, axes))
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None


def _contrast(data: np.ndarray, layer: Any) -> list[float] | None:
    limits = getattr(layer, "contrast_limits", None)
    if limits is None or len(limits) != 2 or not all(math.isfinite(float(v)) for v in limits):
        return None
    low, high = float(limits[0]), float(limits[1])
    return [low, high] if high > low else None


def result_kwargs(layer: Any, data: np.ndarray, name: str) -> dict[str, Any]:
    """``add_image`` keyword arguments for a result of the same shape as ``layer``: its geometry and contrast."""
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": tuple(layer.scale),
        "translate": tuple(layer.translate),
        "colormap": getattr(getattr(layer, "colormap", None), "name", "gray"),
        "metadata": {"microrestore": {"source": layer.name}},
    }
    units = getattr(layer, "units", None)
    if units is not None:
        kwargs["units"] = tuple(units)
    limits = _contrast(data, layer)
    if limits is not None:
        kwargs["contrast_limits"] = limits
    return kwargs


def sigma_kwargs(layer: Any, sigma: np.ndarray, name: str) -> dict[str, Any]:
    """``add_image`` keyword arguments for an uncertainty map of ``layer``'s restoration.

    On the input's grid like :func:`result_kwargs`, but with its own contrast (``0`` to the map's 99.9th
    percentile: a standard deviation is not on the intensities' scale) and the ``magma`` colormap.
    """
    kwargs = result_kwargs(layer, sigma, name)
    kwargs["colormap"] = "magma"
    kwargs["metadata"] = {"microrestore": {"source": layer.name, "kind": "uncertainty (standard deviation)"}}
    finite = np.asarray(sigma, np.float64)[np.isfinite(sigma)]
    high = float(np.percentile(finite, 99.9)) if finite.size else 0.0
    if high > 0:
        kwargs["contrast_limits"] = [0.0, high]
    else:
        kwargs.pop("contrast_limits", None)
    return kwargs


def sim_result_kwargs(layer: Any, axes: str, sr: np.ndarray, name: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The SR images of a raw SIM layer and their ``add_image`` keyword arguments on the 2x grid.

    ``sr`` is ``(n, 2 Y, 2 X)``; one stack gives a 2D layer. SR pixel ``j`` has its centre at raw coordinate
    ``j / 2 - 0.25``: the layer's ``Y`` and ``X`` scale halve and its translate moves by a quarter raw pixel.
    Leading axes (the stacks) keep scale 1 and translate 0.
    """
    sr = np.asarray(sr)
    if sr.shape[0] == 1:
        sr = sr[0]
    scale = [float(s) for s in layer.scale]
    translate = [float(t) for t in layer.translate]
    yx = [axes.index("Y"), axes.index("X")]
    sy, sx = scale[yx[0]], scale[yx[1]]
    ty, tx = translate[yx[0]], translate[yx[1]]
    lead = sr.ndim - 2
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": (*([1.0] * lead), sy / 2.0, sx / 2.0),
        "translate": (*([0.0] * lead), ty - 0.25 * sy, tx - 0.25 * sx),
        "metadata": {"microrestore": {"source": layer.name, "grid": "2x SIM"}},
    }
    units = getattr(layer, "units", None)
    if units is not None:
        kwargs["units"] = (*(["pixel"] * lead), str(units[yx[0]]), str(units[yx[1]]))
    return sr, kwargs


def ground_truth_pair(prediction: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    """The data of two layers to score against each other, as float arrays of the same shape."""
    a = np.asarray(prediction.data, dtype=np.float64)
    b = np.asarray(truth.data, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise InputError(f"layer {(prediction if a.size == 0 else truth).name!r} is empty")
    if a.shape != b.shape:
        raise InputError(
            f"layer {prediction.name!r} has shape {a.shape} but ground truth {truth.name!r} has {b.shape}; "
            "compare layers of the same shape"
        )
    return a, b


def histogram(arrays: Sequence[np.ndarray], bins: int = 128) -> tuple[np.ndarray, list[np.ndarray]]:
    """Common bin edges over ``arrays`` (finite values) and each array's counts."""
    finite = [np.asarray(a, dtype=np.float64)[np.isfinite(a)] for a in arrays]
    low = min(float(f.min()) for f in finite if f.size)
    high = max(float(f.max()) for f in finite if f.size)
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, bins + 1)
    return edges, [np.histogram(f, bins=edges)[0] for f in finite]

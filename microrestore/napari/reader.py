"""The reader contribution: MRC files (pixel size to scale) and OME-Zarr folders, through microrestore's readers.

napari's built-in reader opens TIFFs; MRC files (raw SIM stacks, OTFs, electron and light-sheet stacks) and
OME-Zarr folders (with microrestore's ``ome-zarr`` plugin and the ``zarr`` package) open here with their axes
as ``axis_labels`` and their pixel size in micrometres as ``scale`` (``units`` µm).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["get_reader", "image_layer_data", "read_layers"]

#: Suffixes read here (napari's own reader handles TIFF).
SUFFIXES = (".mrc", ".st", ".ali", ".zarr")


def get_reader(path: str | list[str]) -> Callable[[Any], list[tuple[Any, dict[str, Any], str]]] | None:
    """The reader for ``path`` (a path, or a list of them that all fit), else ``None`` (napari tries others)."""
    paths = [path] if isinstance(path, str) else list(path)
    if not paths or not all(str(p).rstrip("/").lower().endswith(SUFFIXES) for p in paths):
        return None
    return read_layers


def image_layer_data(image: Any, name: str) -> tuple[Any, dict[str, Any], str]:
    """A napari layer-data tuple of an :class:`~microrestore.io.ImageData`: axes, scale in µm, metadata."""
    import numpy as np

    data = image.data if isinstance(image.data, np.ndarray) else np.asarray(image.data)
    sizes = image.pixel_size
    known = any(axis in sizes for axis in image.axes)
    kwargs: dict[str, Any] = {
        "name": name,
        "axis_labels": tuple(image.axes),
        "scale": tuple(float(sizes.get(axis, 1.0)) for axis in image.axes),
        "metadata": {"microrestore": {"axes": image.axes, "pixel_size_um": dict(sizes), "path": str(image.path)}},
    }
    if known:
        kwargs["units"] = tuple("micrometer" if axis in sizes else "pixel" for axis in image.axes)
    if np.iscomplexobj(data):  # MRC mode 4 (OTFs): show the magnitude
        data = np.abs(data)
        kwargs["name"] = f"{name} (magnitude)"
    return data, kwargs, "image"


def read_layers(path: str | list[str]) -> list[tuple[Any, dict[str, Any], str]]:
    """Read each file with :func:`microrestore.io.read_image` (one line naming the file on failure)."""
    from microrestore.io import read_image

    paths = [path] if isinstance(path, str) else list(path)
    layers = []
    for item in paths:
        p = Path(item)
        layers.append(image_layer_data(read_image(p), p.name.removesuffix(".zarr").removesuffix(".ome")))
    return layers

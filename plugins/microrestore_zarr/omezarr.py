"""OME-Zarr (OME-NGFF) reading and writing on zarr.

Written images are NGFF 0.4 (zarr format 2, the version most viewers read): one group whose ``multiscales``
metadata names the axes (``t``, ``c``, ``z``, ``y``, ``x``; space in micrometres) and a single full-resolution
array ``0`` with a ``scale`` transformation holding the pixel sizes. Reading takes NGFF 0.4 and 0.5 (zarr 3,
metadata under ``ome``) groups and bare zarr arrays, and returns the full-resolution level as a
:class:`~microrestore.io.lazy.LazyArray`: pixels are read chunk by chunk as tiles need them.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import InputError
from microrestore.io import ImageData
from microrestore.io.lazy import LazyArray

NGFF_VERSION = "0.4"
ORDER = "TCZYX"
#: Largest chunk edge along Y and X; other axes are chunked one position at a time.
CHUNK = 1024
_UNITS_UM = {"micrometer": 1.0, "nanometer": 1e-3, "millimeter": 1e3, "meter": 1e6, "angstrom": 1e-4}
_AXIS_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}


def _zarr(path: Path) -> Any:
    try:
        import zarr
    except ImportError:
        raise InputError("OME-Zarr needs the zarr package: pip install 'microrestore[zarr]'", path) from None
    return zarr


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


# ------------------------------------------------------------------------------------------------------------
# reading


def read_ome_zarr(path: str | Path, axes: str | None = None) -> ImageData:
    """Read an OME-Zarr image (its full-resolution level) or a bare zarr array, lazily.

    Parameters
    ----------
    path
        The ``.zarr`` / ``.ome.zarr`` folder.
    axes
        Axes of a bare array (no NGFF metadata); for NGFF images they must agree with the metadata.

    Returns
    -------
    ImageData
        ``data`` is a :class:`~microrestore.io.lazy.LazyArray`; pixel sizes in micrometres from the scale.

    Raises
    ------
    InputError
        zarr missing, not a zarr store, no or malformed NGFF metadata, axes that contradict the metadata.
    """
    path = Path(path)
    zarr = _zarr(path)
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise InputError(f"not a readable zarr store: {_reason(exc)}", path) from None
    if isinstance(node, zarr.Array):
        if axes is None:
            raise InputError("a zarr array without OME-NGFF metadata: give its axes with --axes", path)
        from microrestore.io.axes import normalize_axes

        return ImageData(LazyArray(node), normalize_axes(axes, tuple(node.shape), path=path), path, {}, _meta())
    attrs = dict(node.attrs)
    multiscales = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
    if not isinstance(multiscales, list) or not multiscales or not isinstance(multiscales[0], Mapping):
        raise InputError("not an OME-Zarr image: the group has no 'multiscales' metadata", path)
    try:
        letters, units, scale, dataset = _parse_multiscale(multiscales[0])
        array = node[dataset]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed OME-Zarr metadata: {_reason(exc)}", path) from None
    if not isinstance(array, zarr.Array) or array.ndim != len(letters):
        raise InputError(f"OME-Zarr dataset {dataset!r} does not match its {len(letters)} axes", path)
    file_axes = "".join(letters)
    if axes is not None and axes.upper() != file_axes:
        raise InputError(f"axes {axes!r} given but the OME-Zarr metadata says {file_axes!r}", path)
    pixel_size = {}
    for letter, unit, value in zip(letters, units, scale):
        factor = _UNITS_UM.get(str(unit).lower(), 1.0 if unit is None else None)
        if letter in "ZYX" and factor is not None and value > 0:
            pixel_size[letter] = float(value) * factor
    return ImageData(LazyArray(array), file_axes, path, pixel_size, _meta(version=multiscales[0].get("version")))


def _meta(version: Any = None) -> dict[str, Any]:
    return {"format": "ome-zarr", **({"ngff": str(version)} if version else {})}


def _parse_multiscale(entry: Mapping[str, Any]) -> tuple[list[str], list[Any], list[float], str]:
    letters, units = [], []
    for axis in entry["axes"]:
        name = axis["name"] if isinstance(axis, Mapping) else str(axis)
        letter = str(name).upper()
        if letter not in ORDER or letter in letters:
            raise ValueError(f"axis {name!r} is not one of t, c, z, y, x (once each)")
        letters.append(letter)
        units.append(axis.get("unit") if isinstance(axis, Mapping) else None)
    dataset = entry["datasets"][0]
    scale = [1.0] * len(letters)
    for transforms in (dataset.get("coordinateTransformations", []), entry.get("coordinateTransformations", [])):
        for transform in transforms or []:
            if transform.get("type") == "scale":
                scale = [a * float(b) for a, b in zip(scale, transform["scale"], strict=True)]
    return letters, units, scale, str(dataset["path"])


# ------------------------------------------------------------------------------------------------------------
# writing


def _check_order(axes: str, path: Path) -> None:
    if any(c not in ORDER for c in axes) or sorted(axes, key=ORDER.index) != list(axes):
        raise InputError(f"OME-Zarr needs axes in TCZYX order (a subset of it), not {axes!r}", path)


def _chunks(shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
    return tuple(min(n, CHUNK) if c in "YX" else 1 for n, c in zip(shape, axes))


def _multiscales(path: Path, axes: str, pixel_size: Mapping[str, float] | None) -> list[dict[str, Any]]:
    sizes = {k.upper(): float(v) for k, v in (pixel_size or {}).items()}
    entries = []
    for c in axes:
        entry: dict[str, Any] = {"name": c.lower(), "type": _AXIS_TYPES[c]}
        if c in "ZYX":
            entry["unit"] = "micrometer"
        entries.append(entry)
    scale = [sizes.get(c, 1.0) if c in "ZYX" else 1.0 for c in axes]
    return [
        {
            "version": NGFF_VERSION,
            "name": re.sub(r"(\.ome)?\.zarr$", "", path.name, flags=re.I),
            "axes": entries,
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
        }
    ]


def _create(path: Path, shape: tuple[int, ...], dtype: Any, axes: str, pixel_size: Mapping[str, float] | None) -> Any:
    zarr = _zarr(path)
    shape = tuple(int(n) for n in shape)
    if len(axes) != len(shape):
        raise InputError(f"axes {axes!r} do not fit a {len(shape)}-dimensional image", path)
    _check_order(axes, path)
    root = zarr.open_group(str(path), mode="w-", zarr_format=2)
    array = root.create_array("0", shape=shape, dtype=np.dtype(dtype), chunks=_chunks(shape, axes), fill_value=0)
    root.attrs["multiscales"] = _multiscales(path, axes, pixel_size)
    return array


def write_ome_zarr(
    path: str | Path,
    data: np.ndarray,
    axes: str,
    *,
    pixel_size: Mapping[str, float] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``data`` as an NGFF 0.4 OME-Zarr image (a new folder at ``path``), chunk row by chunk row.

    Axes outside TCZYX order are refused (microrestore's readers give TCZYX order already); ``metadata`` is
    not stored (OME-Zarr has no place for free-form keys).
    """
    path = Path(path)
    array = _create(path, tuple(data.shape), data.dtype, axes, pixel_size)
    for index in _blocks(tuple(data.shape), axes):
        array[index] = np.asarray(data[index])
    return path


def _blocks(shape: tuple[int, ...], axes: str) -> Iterator[tuple[Any, ...]]:
    """Indices of bands of chunks (one position of the non-plane axes, CHUNK rows of Y)."""
    outer = [n if c not in "YX" else 1 for n, c in zip(shape, axes)]
    y = axes.index("Y") if "Y" in axes else None
    rows = shape[y] if y is not None else 1
    for position in np.ndindex(*outer):
        for start in range(0, rows, CHUNK):
            index: list[Any] = [p if c not in "YX" else slice(None) for p, c in zip(position, axes)]
            if y is not None:
                index[y] = slice(start, min(rows, start + CHUNK))
            yield tuple(index)


@contextlib.contextmanager
def create_ome_zarr(
    path: str | Path, shape: tuple[int, ...], dtype: Any, axes: str, pixel_size: Mapping[str, float] | None = None
) -> Iterator[Any]:
    """Create an empty OME-Zarr image at ``path`` and yield its writable full-resolution array.

    The caller publishes the folder (microrestore writes it under a temporary name and renames it when the
    block ends without error).
    """
    yield _create(Path(path), tuple(shape), dtype, axes, pixel_size)


def chunk_bytes(shape: tuple[int, ...], axes: str, dtype: Any) -> int:
    """Bytes of one chunk of an image written by this module."""
    return math.prod(_chunks(shape, axes)) * np.dtype(dtype).itemsize

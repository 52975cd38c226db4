"""The image in memory (:class:`ImageData`) and the checks every format's reader and writer shares.

Refusing empty images, dimension bombs and unusable data types, combining the axes of a file's metadata with the
user's ``--axes``, and keeping only meaningful pixel sizes: the same for TIFF (:mod:`microrestore.io.tiff`), MRC
and the dispatch in :mod:`microrestore.io.images`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import InputError
from microrestore.io.axes import SPATIAL_AXES, default_axes, normalize_axes
from microrestore.io.lazy import LazyArray

__all__ = [
    "MAX_ELEMENTS",
    "MEMMAP_THRESHOLD",
    "ImageData",
    "check_array",
    "clean_pixel_size",
    "error_reason",
    "resolve_axes",
]

MEMMAP_THRESHOLD = 256 * 2**20
"""Files larger than this (bytes) are read lazily when ``memmap=None`` and the layout allows it."""
MAX_ELEMENTS = 2**40
"""Images with more elements are refused as corrupt (a "dimension bomb")."""


@dataclass
class ImageData:
    """An image and what is known about it.

    Attributes
    ----------
    data
        The pixels in the file's data type; may be a read-only :class:`~microrestore.io.lazy.LazyArray` read
        on indexing (large uncompressed files with ``pread``, see :mod:`microrestore.io.rawfile`; compressed
        or tiled files and OME-Zarr through zarr).
    axes
        One letter per dimension from ``TCZYXS`` (validated and upper-cased on creation).
    path
        The file it came from, if any.
    pixel_size
        Micrometres per pixel along ``X``, ``Y`` and ``Z`` where known, e.g. ``{"X": 0.1, "Y": 0.1}``.
    metadata
        Other facts from the file (``format``, ImageJ keys such as ``finterval``, MRC header fields).
    """

    data: np.ndarray
    axes: str
    path: Path | None = None
    pixel_size: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.path is not None:
            self.path = Path(self.path)
        if not isinstance(self.data, (np.ndarray, LazyArray)):
            self.data = np.asarray(self.data)
        self.axes = normalize_axes(self.axes, self.data.shape, path=self.path)
        self.pixel_size = clean_pixel_size(self.pixel_size, self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        """The array's data type."""
        return self.data.dtype

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    def spatial_axes(self, ndim_spatial: int) -> str:
        """Return the spatial axes a method of ``ndim_spatial`` dimensions works on, in the image's order.

        Parameters
        ----------
        ndim_spatial
            2 for a method on ``YX`` planes, 3 for one on ``ZYX`` volumes.

        Returns
        -------
        str
            ``"YX"`` or ``"ZYX"`` (letters in the order they have in :attr:`axes`).

        Raises
        ------
        InputError
            When a 3D method is given an image without a ``Z`` axis.
        """
        if ndim_spatial not in (2, 3):
            raise ValueError(f"ndim_spatial must be 2 or 3, not {ndim_spatial}")
        wanted = SPATIAL_AXES[-ndim_spatial:]
        missing = [c for c in wanted if c not in self.axes]
        if missing:
            raise InputError(
                f"a {ndim_spatial}D method needs axes {wanted} but the image has axes {self.axes!r}; "
                "set --axes if the metadata is wrong",
                self.path,
            )
        return "".join(c for c in self.axes if c in wanted)


def check_array(shape: tuple[int, ...], dtype: np.dtype, path: Path, *, allow_complex: bool) -> None:
    """Refuse empty images, dimension bombs and data types the methods cannot use."""
    shape = tuple(int(n) for n in shape)
    if len(shape) < 2:
        raise InputError(f"not an image: shape {shape}", path)
    if 0 in shape:
        raise InputError(f"empty image (shape {shape})", path)
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise InputError(f"image too large: shape {shape} has {count} elements (at most 2**40)", path)
    kind = np.dtype(dtype).kind
    if kind == "c" and not allow_complex:
        raise InputError("complex data is only supported in MRC files (OTFs)", path)
    if kind not in "biufc":
        raise InputError(f"unsupported data type {np.dtype(dtype)}", path)


def resolve_axes(
    file_axes: str | None, user_axes: str | None, shape: tuple[int, ...], path: Path, fallback: str | None
) -> str:
    """Combine the axes from the metadata, the user's ``--axes`` and the format's default."""
    user = normalize_axes(user_axes, shape, path=path) if user_axes is not None else None
    if file_axes is not None:
        if user is not None and user != file_axes:
            raise InputError(f"axes {user!r} given but the file's metadata says {file_axes!r}", path)
        return file_axes
    if user is not None:
        return user
    guess = fallback or default_axes(len(shape))
    if guess is not None:
        return guess
    example = {3: "ZYX or TYX", 4: "TZYX or CZYX", 5: "TCZYX"}.get(len(shape), "TCZYX")
    raise InputError(
        f"the image has {len(shape)} dimensions {shape} and no axes metadata; "
        f"say what they are with --axes (e.g. --axes {example})",
        path,
    )


def clean_pixel_size(pixel_size: dict[str, float] | None, axes: str) -> dict[str, float]:
    """Keep positive finite sizes of the spatial axes present in ``axes`` (letters upper-cased)."""
    clean: dict[str, float] = {}
    for key, value in (pixel_size or {}).items():
        letter = str(key).upper()
        try:
            size = float(value)
        except (TypeError, ValueError):
            continue
        if letter in SPATIAL_AXES and letter in axes and math.isfinite(size) and size > 0:
            clean[letter] = size
    return clean


def error_reason(exc: BaseException) -> str:
    """The first line of an exception's message without tifffile's ``<tag>`` prefixes (else the type's name)."""
    text = re.sub(r"^(<[^>]*>\s*)+", "", str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__

"""Axes strings: one upper-case letter per array dimension, from ``TCZYXS``.

``T`` time, ``C`` channel, ``Z`` depth, ``Y`` rows, ``X`` columns, ``S`` samples of a pixel (RGB).
The helpers here validate such strings and move arrays between an image's own axes and the order a
method wants, as views (no copies).
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

import numpy as np

from microrestore.errors import InputError

__all__ = [
    "AXES_LETTERS",
    "CANONICAL_AXES",
    "IMAGEJ_AXES",
    "SPATIAL_AXES",
    "default_axes",
    "fits_imagej_order",
    "normalize_axes",
    "squeeze_axes",
    "transpose_from",
    "transpose_to",
]

AXES_LETTERS = "TCZYXS"
"""Every letter an axes string may hold."""
CANONICAL_AXES = "TCZYXS"
"""The order :func:`transpose_to` callers usually ask for (time, channel, depth, rows, columns, samples)."""
IMAGEJ_AXES = "TZCYXS"
"""The order of an ImageJ hyperstack."""
SPATIAL_AXES = "ZYX"
"""Axes that carry a physical pixel size."""

_MEANING = "T time, C channel, Z depth, Y rows, X columns, S samples"


def normalize_axes(
    axes: str,
    shape: Sequence[int] | int | None = None,
    *,
    path: str | PathLike[str] | None = None,
    require_yx: bool = True,
) -> str:
    """Return ``axes`` upper-cased and checked.

    Parameters
    ----------
    axes
        Letters from ``TCZYXS`` in any case, one per dimension, each at most once.
    shape
        The array's shape (or just its number of dimensions); when given, the number of letters must match.
    path
        File named in the error message.
    require_yx
        Refuse axes without both ``Y`` and ``X``.

    Returns
    -------
    str
        The upper-case axes.

    Raises
    ------
    InputError
        Unknown or repeated letters, missing Y/X, or a length that does not match ``shape``.
    """
    if not isinstance(axes, str):
        raise InputError(f"axes must be a string of letters from {AXES_LETTERS}, not {axes!r}", path)
    text = axes.strip().upper()
    if not text:
        raise InputError(f"axes are empty; use letters from {AXES_LETTERS} ({_MEANING})", path)
    unknown = sorted({c for c in text if c not in AXES_LETTERS}, key=text.index)
    if unknown:
        letters = ", ".join(repr(c) for c in unknown)
        raise InputError(f"axes {axes!r}: unknown letter {letters}; use letters from {AXES_LETTERS} ({_MEANING})", path)
    repeated = sorted({c for c in text if text.count(c) > 1}, key=text.index)
    if repeated:
        raise InputError(f"axes {axes!r} repeat {', '.join(repr(c) for c in repeated)}", path)
    if require_yx and not ("Y" in text and "X" in text):
        raise InputError(f"axes {axes!r} must include Y and X", path)
    if shape is None:
        return text
    ndim = shape if isinstance(shape, int) else len(shape)
    if len(text) != ndim:
        dims = "dimension" if ndim == 1 else "dimensions"
        sizes = "" if isinstance(shape, int) else f" {tuple(int(n) for n in shape)}"
        raise InputError(f"axes {text!r} given but the image has {ndim} {dims}{sizes}", path)
    return text


def default_axes(ndim: int) -> str | None:
    """Return the axes assumed for an image without axes metadata: ``YX`` for 2D, else ``None``."""
    return "YX" if ndim == 2 else None


def fits_imagej_order(axes: str) -> bool:
    """Return whether ``axes`` is a subsequence of ImageJ's ``TZCYXS`` ending in ``YX`` (no samples).

    Parameters
    ----------
    axes
        Normalised axes.

    Returns
    -------
    bool
        ``True`` when an ImageJ hyperstack can hold the axes without reordering.
    """
    if "S" in axes or not axes.endswith("YX"):
        return False
    positions = [IMAGEJ_AXES.index(c) for c in axes]
    return positions == sorted(positions)


def transpose_to(data: np.ndarray, axes: str, target_axes: str) -> np.ndarray:
    """Return a view of ``data`` with its dimensions in the order of ``target_axes``.

    Letters of ``target_axes`` that ``axes`` lacks become dimensions of size 1. Letters of ``axes`` that
    ``target_axes`` lacks must have size 1 and are dropped.

    Parameters
    ----------
    data
        Array whose dimensions are described by ``axes``.
    axes
        The array's axes.
    target_axes
        The wanted axes and order.

    Returns
    -------
    numpy.ndarray
        A view (never a copy) of ``data``.

    Raises
    ------
    InputError
        When a dimension larger than 1 has no place in ``target_axes``.
    """
    axes = normalize_axes(axes, data.shape, require_yx=False)
    target_axes = normalize_axes(target_axes, require_yx=False)
    dropped = [c for c in axes if c not in target_axes]
    for c in dropped:
        size = data.shape[axes.index(c)]
        if size != 1:
            raise InputError(
                f"the image's {c} axis has {size} elements but the target axes {target_axes!r} have no {c}"
            )
    view = data[tuple(0 if c in dropped else slice(None) for c in axes)]
    kept = "".join(c for c in axes if c not in dropped)
    view = np.transpose(view, [kept.index(c) for c in target_axes if c in kept])
    present = "".join(c for c in target_axes if c in kept)
    shape = tuple(view.shape[present.index(c)] if c in present else 1 for c in target_axes)
    return view.reshape(shape) if shape != view.shape else view


def transpose_from(data: np.ndarray, target_axes: str, axes: str) -> np.ndarray:
    """Undo :func:`transpose_to`: bring ``data`` (in ``target_axes`` order) back to ``axes``.

    Parameters
    ----------
    data
        Array in the order ``target_axes``, e.g. a method's output.
    target_axes
        The axes ``data`` is in.
    axes
        The original image's axes.

    Returns
    -------
    numpy.ndarray
        A view of ``data`` with the original axes; dimensions that were inserted are removed again.
    """
    return transpose_to(data, target_axes, axes)


def squeeze_axes(data: np.ndarray, axes: str, keep: str = "ZYX") -> tuple[np.ndarray, str]:
    """Drop the dimensions of size 1 whose letters are not in ``keep``.

    Parameters
    ----------
    data
        The array.
    axes
        Its axes.
    keep
        Letters never dropped, by default the spatial axes.

    Returns
    -------
    tuple of numpy.ndarray and str
        The squeezed view and its axes.
    """
    axes = normalize_axes(axes, data.shape, require_yx=False)
    target = "".join(c for c, n in zip(axes, data.shape, strict=True) if n != 1 or c in keep.upper())
    return transpose_to(data, axes, target), target

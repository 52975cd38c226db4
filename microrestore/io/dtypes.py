"""Converting results back to an image data type, counting (never hiding) values that do not fit.

Conversions run block by block, so a memory-mapped input and output never need a full-size temporary.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import prod

import numpy as np

from microrestore.errors import InputError

__all__ = [
    "DTYPE_NAMES",
    "INTEGER_TOLERANCE",
    "dtype_range",
    "integer_valued",
    "iter_blocks",
    "out_of_range_message",
    "parse_dtype",
    "to_dtype",
    "working_dtype",
]

DTYPE_NAMES: tuple[str, ...] = (
    "uint8",
    "uint16",
    "uint32",
    "int8",
    "int16",
    "int32",
    "float16",
    "float32",
    "float64",
)
"""Names :func:`parse_dtype` accepts, besides ``same`` (and ``auto``, which :func:`working_dtype` handles)."""

INTEGER_TOLERANCE = 1e-3
"""Largest distance to the nearest integer (plus float32 rounding of the value, 4 eps |v|) at which a restored
value still counts as that integer under ``--dtype auto``: anything larger would be lost by rounding."""

BLOCK_ELEMENTS = 1 << 22
"""Elements converted at a time (4 Mi: 16 MiB of float32)."""


def parse_dtype(name: str | None) -> np.dtype | None:
    """Parse a ``--dtype`` option.

    Parameters
    ----------
    name
        ``same`` (or ``None``) to keep the input's type, or one of :data:`DTYPE_NAMES` (any case).

    Returns
    -------
    numpy.dtype or None
        ``None`` for ``same``.

    Raises
    ------
    InputError
        For any other name.
    """
    if name is None:
        return None
    text = str(name).strip().lower()
    if text == "same":
        return None
    if text not in DTYPE_NAMES:
        raise InputError(f"unknown --dtype {name!r}; use one of: auto, same, {', '.join(DTYPE_NAMES)}")
    return np.dtype(text)


def working_dtype(input_dtype: np.dtype | type | str, requested: str | None) -> tuple[np.dtype, bool]:
    """The dtype restored values are written in, and whether ``auto`` may still narrow it afterwards.

    ``auto`` (the command line's default) never posterises: float32 and float64 inputs keep their type; any
    other input (integers, bool, float16) is restored into float32 in the input's units, and an integer input
    gets its own dtype back only when every restored value turns out to be an integer that fits it (nothing
    is lost; see :func:`integer_valued`). ``same`` (or ``None``) is the input's dtype, rounded (bool and
    float16 inputs give float32); any other name is that dtype.

    Parameters
    ----------
    input_dtype
        The input image's dtype.
    requested
        ``auto``, ``same``, ``None`` (same) or a name of :data:`DTYPE_NAMES`.

    Returns
    -------
    tuple of numpy.dtype and bool
        The dtype to write the predictions in, and ``True`` when the caller should convert to
        ``input_dtype`` after all if the values allow it without loss.
    """
    source = np.dtype(input_dtype)
    if requested is not None and str(requested).strip().lower() == "auto":
        if source in (np.dtype(np.float32), np.dtype(np.float64)):
            return source, False
        return np.dtype(np.float32), source.kind in "iu"
    dtype = parse_dtype(requested)
    if dtype is None:
        return (np.dtype(np.float32) if source.kind == "b" or source == np.dtype(np.float16) else source), False
    return dtype, False


def integer_valued(block: np.ndarray, dtype: np.dtype | type | str) -> bool:
    """Whether every value of ``block`` is an integer inside ``dtype``'s range, to within rounding error.

    A value counts as the integer ``n`` when ``|v - n| <= INTEGER_TOLERANCE + 4 eps32 |v|``; then writing the
    block as ``dtype`` loses nothing.

    Parameters
    ----------
    block
        Restored values (float).
    dtype
        An integer dtype.

    Returns
    -------
    bool
        ``False`` as soon as one value is not finite, outside the range or off an integer.
    """
    values = np.asarray(block)
    if values.dtype.kind in "iub":
        low, high = dtype_range(dtype)
        return bool(values.size == 0 or (values.min() >= low and values.max() <= high))
    values = values.astype(np.float64, copy=False)
    if not np.isfinite(values).all():
        return False
    low, high = dtype_range(dtype)
    rounded = np.rint(values)
    if rounded.size and (rounded.min() < low or rounded.max() > high):
        return False
    tolerance = INTEGER_TOLERANCE + 4 * float(np.finfo(np.float32).eps) * np.abs(values)
    return bool(np.all(np.abs(values - rounded) <= tolerance))


def dtype_range(dtype: np.dtype | type | str) -> tuple[float, float]:
    """Return the smallest and largest value of ``dtype`` (finite limits for floats).

    Parameters
    ----------
    dtype
        An integer or floating-point type.

    Returns
    -------
    tuple of float
        ``(low, high)``.
    """
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return int(info.min), int(info.max)
    if dt.kind == "f":
        finfo = np.finfo(dt)
        return float(finfo.min), float(finfo.max)
    if dt.kind == "b":
        return 0, 1
    raise TypeError(f"no value range for data type {dt}")


def out_of_range_message(count: int, dtype: np.dtype | type | str) -> str:
    """Return the warning for ``count`` clipped values, e.g. ``"3 pixels outside the uint16 range ..."``.

    Parameters
    ----------
    count
        Number of values that were clipped.
    dtype
        The output type.

    Returns
    -------
    str
        One line suggesting ``--dtype float32``.
    """
    dt = np.dtype(dtype)
    low, high = dtype_range(dt)
    noun = "pixel" if count == 1 else "pixels"
    return (
        f"{count} {noun} outside the {dt.name} range [{low:g}, {high:g}] were clipped; use --dtype float32 to keep them"
    )


def iter_blocks(shape: tuple[int, ...], max_elements: int = BLOCK_ELEMENTS) -> Iterator[tuple[slice | int, ...]]:
    """Yield index tuples that together cover an array of ``shape``, each at most ``max_elements`` large.

    Blocks are runs along the leading axes, so each is a contiguous part of a C-ordered array.

    Parameters
    ----------
    shape
        The array's shape.
    max_elements
        Upper bound on a block's size (a single row larger than that is still one block).

    Yields
    ------
    tuple
        Index usable as ``array[index]``.
    """
    inner = prod(shape[1:])
    if len(shape) <= 1 or prod(shape) <= max_elements:
        yield ()
        return
    if inner <= max_elements or len(shape) == 2:
        step = max(1, max_elements // max(inner, 1))
        for start in range(0, shape[0], step):
            yield (slice(start, min(start + step, shape[0])),)
        return
    for i in range(shape[0]):
        for sub in iter_blocks(shape[1:], max_elements):
            yield (i, *sub)


def _convert_block(src: np.ndarray, dst: np.ndarray, target: np.dtype) -> int:
    """Convert ``src`` into ``dst`` (same shape); return how many values were out of range."""
    kind = src.dtype.kind
    if kind == "c" and target.kind != "c":
        raise InputError(f"cannot convert complex data to {target.name}")
    if target.kind == "c" or target == src.dtype or kind == "b":
        np.copyto(dst, src, casting="unsafe")
        return 0
    low, high = dtype_range(target)
    if kind in "iu":
        src_low, src_high = dtype_range(src.dtype)
        if src_low >= low and src_high <= high:
            np.copyto(dst, src, casting="unsafe")
            return 0
        if target.kind == "f":  # a wide integer into a narrow float: compare as float64
            values = src.astype(np.float64)
        else:  # compare with bounds inside the source's own range (no overflow in the comparison)
            low, high = max(low, src_low), min(high, src_high)
            values = src
        bad = (values < low) | (values > high)
    elif target.kind == "f":  # float to float: only finite values beyond the target's range count
        if src.dtype.itemsize <= target.itemsize:
            np.copyto(dst, src, casting="unsafe")
            return 0
        values = src
        bad = np.isfinite(values) & ((values < low) | (values > high))
    else:  # float to integer: round to nearest, NaN and +-inf count as out of range
        values = np.rint(src.astype(np.float64))
        nan = np.isnan(values)
        bad = nan | (values < low) | (values > high)
        if nan.any():
            values[nan] = 0
    count = int(np.count_nonzero(bad))
    if count:
        values = np.where(bad, np.clip(values, low, high), values)
    np.copyto(dst, values, casting="unsafe")
    return count


def to_dtype(
    array: np.ndarray,
    dtype: np.dtype | type | str,
    *,
    out: np.ndarray | None = None,
    max_elements: int = BLOCK_ELEMENTS,
) -> tuple[np.ndarray, int]:
    """Convert ``array`` to ``dtype``, rounding to nearest for integer types, counting values that do not fit.

    Values outside the type's range (and NaN, for integer types) are counted first, then clipped to the
    range (NaN becomes 0). The caller reports the count, e.g. with :func:`out_of_range_message`.

    Parameters
    ----------
    array
        Input values (any numeric array; a memmap is read block by block).
    dtype
        The wanted type.
    out
        Array of ``array``'s shape and type ``dtype`` to fill (e.g. an output memmap); allocated when
        ``None``.
    max_elements
        Elements converted at a time.

    Returns
    -------
    tuple of numpy.ndarray and int
        The converted array (``out`` when given; ``array`` itself when it already has the type and no
        ``out`` is given) and the number of values that were outside the range.

    Raises
    ------
    ValueError
        When ``out`` has the wrong shape or type.
    InputError
        When complex data would be converted to a real type.
    """
    target = np.dtype(dtype)
    src = np.asarray(array) if not isinstance(array, np.ndarray) else array
    if out is None:
        if src.dtype == target:
            return src, 0
        out = np.empty(src.shape, dtype=target)
    elif out.shape != src.shape or out.dtype != target:
        raise ValueError(f"out has shape {out.shape} and type {out.dtype}, expected {src.shape} and {target}")
    count = 0
    for index in iter_blocks(src.shape, max_elements):
        block_out = out[index]
        if isinstance(block_out, np.ndarray):
            count += _convert_block(np.asarray(src[index]), block_out, target)
        else:  # a single element (0-d index result)
            tmp = np.empty((), dtype=target)
            count += _convert_block(np.asarray(src[index]), tmp, target)
            out[index] = tmp
    return out, count

"""Arrays read chunk by chunk on indexing: compressed or tiled TIFFs (through zarr) and OME-Zarr images.

:class:`LazyArray` wraps any array-like with ``shape``, ``dtype`` and basic indexing (a zarr array, tifffile's
zarr store opened by zarr). Indexing with integers and slices reads only the chunks it touches and returns a
numpy array; everything else (``np.asarray``, ufuncs, operators, ``astype``, reductions) reads the whole
array first. Tiled inference, normalisation fits and the NaN check only index, so an image larger than the
memory streams through them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

__all__ = ["ArrayShape", "LazyArray", "is_lazy"]


class ArrayShape:
    """``ndim``, ``size``, ``nbytes`` and ``len`` of an array-like object with ``shape`` and ``dtype``."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the whole array in memory."""
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]


class LazyArray(ArrayShape, NDArrayOperatorsMixin):
    """A read-only array whose pixels are read on indexing.

    Parameters
    ----------
    base
        The stored array (``shape``, ``dtype``, ``__getitem__`` with integers and slices).
    shape
        A shape that only adds or removes dimensions of size 1 (the unsqueezed axes of an ImageJ file).
    """

    def __init__(self, base: Any, shape: tuple[int, ...] | None = None) -> None:
        self.base = base
        self.dtype = np.dtype(base.dtype)
        base_shape = tuple(int(n) for n in base.shape)
        self.shape = tuple(int(n) for n in (base_shape if shape is None else shape))
        if [n for n in self.shape if n != 1] != [n for n in base_shape if n != 1]:
            raise ValueError(f"cannot view an array of shape {base_shape} as {self.shape}")
        self._base_shape = base_shape

    def __repr__(self) -> str:
        return f"LazyArray(shape={self.shape}, dtype={self.dtype}, base={type(self.base).__name__})"

    def reshape(self, *shape: Any) -> LazyArray:
        """A view with dimensions of size 1 added or removed (no other reshapes)."""
        wanted = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
        return LazyArray(self.base, tuple(int(n) for n in wanted))

    # -- reading ------------------------------------------------------------------------------------------

    def _normalise(self, index: Any) -> list[int | slice]:
        items = list(index) if isinstance(index, tuple) else [index]
        if any(item is Ellipsis for item in items):
            at = next(i for i, item in enumerate(items) if item is Ellipsis)
            items[at : at + 1] = [slice(None)] * (self.ndim - len(items) + 1)
        items += [slice(None)] * (self.ndim - len(items))
        if len(items) != self.ndim:
            raise IndexError(f"too many indices for an array of {self.ndim} dimensions")
        out: list[int | slice] = []
        for item, n in zip(items, self.shape):
            if isinstance(item, slice):
                out.append(item)
            elif isinstance(item, (int, np.integer)):
                i = int(item) + n if item < 0 else int(item)
                if not 0 <= i < n:
                    raise IndexError(f"index {int(item)} is out of bounds for an axis of size {n}")
                out.append(i)
            else:
                raise TypeError(f"lazy arrays take integers and slices, not {type(item).__name__}")
        return out

    def __getitem__(self, index: Any) -> np.ndarray:
        items = self._normalise(index)
        wide = [(i, item) for i, (item, n) in enumerate(zip(items, self.shape)) if n != 1]
        base_index: list[int | slice] = []
        position = 0
        for n in self._base_shape:
            if n == 1:
                base_index.append(0)
            else:
                base_index.append(wide[position][1])
                position += 1
        final = [len(range(*item.indices(n))) for item, n in zip(items, self.shape) if isinstance(item, slice)]
        if 0 in final:  # an empty slice of an added unit axis selects nothing
            return np.empty(final, dtype=self.dtype)
        return np.asarray(self.base[tuple(base_index)]).reshape(final)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self[...]
        return data if dtype is None else data.astype(dtype, copy=False)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        args = [np.asarray(x) if isinstance(x, LazyArray) else x for x in inputs]
        return getattr(ufunc, method)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # astype, mean, max, copy, ...: the whole array in memory (methods that do not stream)
        if name.startswith("_") or name == "base":
            raise AttributeError(name)
        return getattr(np.asarray(self), name)


def is_lazy(data: Any) -> bool:
    """Whether ``data`` is a :class:`LazyArray`."""
    return isinstance(data, LazyArray)

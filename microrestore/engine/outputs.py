"""Where predictions go: an array-like that converts float32 blocks to the output dtype as they arrive."""

from __future__ import annotations

from typing import Any

import numpy as np


class OutputSink:
    """Write float32 blocks into ``array`` (any dtype), counting values outside its range.

    Predictors write ``sink[index] = block``; integer outputs are rounded, and values outside the dtype's
    range are counted (then clipped) so the caller can say so instead of hiding it.

    Parameters
    ----------
    array
        The destination (in memory or a ``np.memmap``).
    integers_of
        An integer dtype: track whether every value written is an integer that fits it (``integral``), so
        that ``--dtype auto`` can keep an integer input's dtype when that loses nothing.
    """

    def __init__(self, array: np.ndarray, integers_of: np.dtype[Any] | None = None) -> None:
        self.array = array
        self.out_of_range = 0
        self.non_finite = 0
        self.integers_of = integers_of
        self.integral = integers_of is not None

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the destination."""
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        """Dtype of the destination."""
        return self.array.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions of the destination."""
        return self.array.ndim

    def __setitem__(self, index: Any, block: Any) -> None:
        block = np.asarray(block)
        if self.integral and self.integers_of is not None:
            from microrestore.io.dtypes import integer_valued

            self.integral = integer_valued(block, self.integers_of)
        finite = np.isfinite(block)
        if not finite.all():
            self.non_finite += int(block.size - np.count_nonzero(finite))
        if np.issubdtype(self.array.dtype, np.integer):
            info = np.iinfo(self.array.dtype)
            rounded = np.rint(block)
            outside = (rounded < info.min) | (rounded > info.max) | ~finite
            n = int(np.count_nonzero(outside))
            if n:
                self.out_of_range += n
                rounded = np.clip(np.nan_to_num(rounded, nan=0.0), info.min, info.max)
            self.array[index] = rounded.astype(self.array.dtype)
        else:
            if np.issubdtype(self.array.dtype, np.floating):
                info_f = np.finfo(self.array.dtype)
                n = int(np.count_nonzero(np.abs(block[finite]) > info_f.max))
                self.out_of_range += n
            self.array[index] = block

    def __getitem__(self, index: Any) -> Any:
        return self.array[index]

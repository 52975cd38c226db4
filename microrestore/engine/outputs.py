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
    """

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.out_of_range = 0
        self.non_finite = 0

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

"""Where predictions go: an array-like that converts float32 blocks to the output dtype as they arrive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import MicrorestoreError


class OutputSink:
    """Write float32 blocks into ``array`` (any dtype), counting values outside its range.

    Predictors write ``sink[index] = block``; integer outputs are rounded, and values outside the dtype's
    range are counted (then clipped) so the caller can say so instead of hiding it. NaN and infinite values
    are counted too (:meth:`check_finite` refuses them), and so are the values written (:attr:`written`), so
    that a predictor that leaves part of the output unwritten is caught instead of publishing whatever the
    destination held.

    Parameters
    ----------
    array
        The destination (in memory or a ``np.memmap``).

    Attributes
    ----------
    out_of_range
        Values outside the destination dtype's range (clipped), NaN included for integer outputs.
    non_finite
        NaN and infinite values received.
    written
        Values assigned, counted per assignment (a region written twice counts twice).
    integers_of
        An integer dtype: track whether every value written is an integer that fits it (``integral``), so
        that ``--dtype auto`` can keep an integer input's dtype when that loses nothing.
    """

    def __init__(self, array: np.ndarray, integers_of: np.dtype[Any] | None = None) -> None:
        self.array = array
        self.out_of_range = 0
        self.non_finite = 0
        self.written = 0
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

    @property
    def size(self) -> int:
        """Number of values of the destination."""
        return int(np.prod(self.array.shape, dtype=np.int64))

    def __setitem__(self, index: Any, block: Any) -> None:
        block = np.asarray(block)
        # The size of the region assigned, from a zero-stride stand-in: no data of the destination is read.
        self.written += int(np.broadcast_to(np.empty((), dtype=bool), self.array.shape)[index].size)
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

    def counts(self) -> tuple[int, int, int]:
        """``(out_of_range, non_finite, written)``, to put back with :meth:`set_counts` when a block is redone."""
        return self.out_of_range, self.non_finite, self.written

    def set_counts(self, counts: tuple[int, int, int]) -> None:
        """Restore counts saved with :meth:`counts`."""
        self.out_of_range, self.non_finite, self.written = counts

    def check_filled(self, plugin: str, what: str, path: Path | None = None) -> None:
        """Raise when fewer values were written than the destination holds (the rest would be stale memory).

        Parameters
        ----------
        plugin
            Name and version of the plugin whose predictor filled the sink (named in the message).
        what
            What was called (``"care predict"``).
        path
            The input image, named in the message when known.
        """
        if self.written >= self.size:
            return
        source = f" for {path}" if path is not None else ""
        raise MicrorestoreError(
            f"plugin {plugin.strip() or '(unknown plugin)'} did not fill its output in {what}{source}: "
            f"{self.written} of {self.size} values written (a predictor must write every value into out, "
            "as out[index] = block); nothing was saved"
        )

    def check_finite(self, output: Path, source: Path | None = None, method: str | None = None) -> None:
        """Refuse a result holding NaN or infinite values: one line naming the output not written.

        Parameters
        ----------
        output
            The file that was to be written.
        source
            The input it was computed from.
        method
            The method that produced it.
        """
        if not self.non_finite:
            return
        share = 100.0 * self.non_finite / max(1, self.size)
        by = f" by {method}" if method else ""
        origin = f" from {source}" if source is not None else ""
        raise MicrorestoreError(
            f"{output}: not written: the result computed{by}{origin} holds {self.non_finite} NaN or infinite "
            f"values ({share:.3g}% of the pixels); pass --allow-nonfinite to write it anyway"
        )

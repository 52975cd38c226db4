"""Raw arrays in files, read and written with ``pread``/``pwrite`` instead of a memory map.

Why not ``np.memmap``: a memory map turns I/O errors into signals. When the file behind a mapping shrinks
(another program truncates an input while it is read) or the disk fills up while mapped pages of an output
are written back (a sparse file on a full disk), the kernel sends ``SIGBUS``: the process dies with exit
status 135, no message, and its temporary output is left behind. Python cannot recover from that signal (it
arrives inside numpy's copy loop, and returning from the handler only repeats the faulting access).

:class:`RawFileArray` offers the part of the array interface the pipeline uses (``shape``, ``dtype``,
indexing with integers and slices to read, assignment with integers and slices to write) on top of
``os.preadv``/``os.pwrite``. Every access is a system call that *returns* an error instead: a short read says
the file was truncated while in use, a failed write raises ``OSError`` (``ENOSPC``, ``EIO``), and the caller
turns either into one line naming the file. The data go through the page cache as with a map, so tiled
reads and writes cost a few system calls per tile row, not copies of the file.

Outputs also reserve their blocks first (:func:`reserve_space`, ``posix_fallocate``): a full disk is
reported before any computation, with the number of bytes needed.
"""

from __future__ import annotations

import errno
import itertools
import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import InputError, MicrorestoreError
from microrestore.io.atomic import write_error
from microrestore.io.lazy import ArrayShape

__all__ = ["RawFileArray", "reserve_space"]

_OPENING = threading.Lock()
_MAX_IO = 1 << 30  # bytes per system call (Linux moves at most ~2 GiB per call)


def _index_ranges(index: Any, shape: tuple[int, ...]) -> tuple[list[range], list[bool]]:
    """Return one ``range`` per axis and whether each axis is kept (a slice) or dropped (an integer)."""
    items = list(index) if isinstance(index, tuple) else [index]
    if sum(item is Ellipsis for item in items) > 1:
        raise IndexError("an index can only have a single ellipsis")
    if any(item is Ellipsis for item in items):
        at = next(i for i, item in enumerate(items) if item is Ellipsis)
        items[at : at + 1] = [slice(None)] * (len(shape) - len(items) + 1)
    items += [slice(None)] * (len(shape) - len(items))
    if len(items) != len(shape):
        raise IndexError(f"too many indices for an array of {len(shape)} dimensions")
    ranges: list[range] = []
    kept: list[bool] = []
    for item, n in zip(items, shape, strict=True):
        if isinstance(item, slice):
            ranges.append(range(*item.indices(n)))
            kept.append(True)
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            i = int(item) + n if item < 0 else int(item)
            if not 0 <= i < n:
                raise IndexError(f"index {int(item)} is out of bounds for an axis of size {n}")
            ranges.append(range(i, i + 1))
            kept.append(False)
        else:
            raise TypeError(f"file arrays take integers and slices, not {type(item).__name__}")
    return ranges, kept


def _runs(ranges: list[range], shape: tuple[int, ...], itemsize: int) -> tuple[list[int], int]:
    """Byte offsets (from the array's start) of the contiguous runs a selection covers, and each run's length.

    Trailing axes taken whole merge with the axis before them into one run, so reading whole planes or the
    whole array costs one system call per plane or one in all.
    """
    n = len(shape)
    strides = [itemsize * math.prod(shape[i + 1 :]) for i in range(n)]
    k = n  # axes k.. form one contiguous run (k == n: single elements)
    for j in range(n - 1, -1, -1):
        if len(ranges[j]) > 1 and ranges[j].step != 1:
            break
        k = j
        if ranges[j] != range(shape[j]):  # a partial axis ends the run
            break
    run = itemsize if k == n else len(ranges[k]) * strides[k]
    base = ranges[k].start * strides[k] if k < n else 0
    offsets = [
        base + sum(i * s for i, s in zip(combo, strides, strict=False)) for combo in itertools.product(*ranges[:k])
    ]
    return offsets, run


class RawFileArray(ArrayShape):
    """A C-ordered array stored raw at ``offset`` in ``path``, accessed with ``pread``/``pwrite`` (no map).

    Indexing with integers and slices (steps allowed) reads a numpy array; assigning to such an index writes.
    A read that finds the file shorter than the array raises :class:`~microrestore.errors.InputError`
    naming the file ("truncated while in use"), and any other ``OSError`` of a read does too; a failed write
    raises the one-line error of :func:`microrestore.io.atomic.write_error` naming ``name`` (exit status 1
    for a full disk), which plugins' predictors pass on unchanged.

    Parameters
    ----------
    path
        The file.
    dtype
        Element type (with the file's byte order; values are returned in it, as ``np.memmap`` does).
    shape
        The array's shape.
    offset
        Byte offset of the first element.
    writable
        Open the file for writing too.
    name
        The file named in messages (default ``path``): the user's file when ``path`` is a temporary one.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        dtype: Any,
        shape: tuple[int, ...],
        offset: int = 0,
        *,
        writable: bool = False,
        name: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = Path(name) if name is not None else self.path
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(n) for n in shape)
        self.offset = int(offset)
        self.writable = writable
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"RawFileArray({str(self.path)!r}, shape={self.shape}, dtype={self.dtype}, offset={self.offset})"

    # -- file handle --------------------------------------------------------------------------------------

    def fileno(self) -> int:
        """The open file descriptor (the file is opened on first use)."""
        return self._handle()

    def _handle(self) -> int:
        if self._fd is not None:
            return self._fd
        with _OPENING:  # threads reading tiles open the file once
            return self._open()

    def _open(self) -> int:
        if self._fd is None:
            flags = (os.O_RDWR if self.writable else os.O_RDONLY) | getattr(os, "O_BINARY", 0)
            try:
                self._fd = os.open(self.path, flags)
            except OSError as exc:
                if self.writable:
                    raise
                raise InputError(f"cannot read the file: {exc.strerror or exc}", self.name) from None
        return self._fd

    def close(self) -> None:
        """Close the file (reopened on the next access)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:
            pass

    def __getstate__(self) -> dict[str, Any]:  # worker processes open their own handle
        state = dict(self.__dict__)
        state["_fd"] = None
        return state

    # -- reading and writing ------------------------------------------------------------------------------

    def __getitem__(self, index: Any) -> np.ndarray:
        ranges, kept = _index_ranges(index, self.shape)
        full = [len(r) for r in ranges]
        last = ranges[-1] if ranges else range(0)
        if len(last) > 1 and last.step != 1 and math.prod(full):
            # A strided last axis: read the rows' span in one piece each and pick in memory, rather than one
            # system call per element.
            low = min(last[0], last[-1])
            out = self._read([*ranges[:-1], range(low, max(last[0], last[-1]) + 1)])
            out = np.take(out, [i - low for i in last], axis=-1)
        else:
            out = self._read(ranges)
        return out.reshape([n for n, keep in zip(full, kept, strict=True) if keep])

    def _read(self, ranges: list[range]) -> np.ndarray:
        out = np.empty([len(r) for r in ranges], dtype=self.dtype)
        if out.size:
            offsets, run = _runs(ranges, self.shape, self.dtype.itemsize)
            buffer = memoryview(out.reshape(-1).view(np.uint8))
            fd = self._handle()
            for i, at in enumerate(offsets):
                self._read_into(fd, buffer[i * run : (i + 1) * run], self.offset + at)
        return out

    def _read_into(self, fd: int, view: memoryview, position: int) -> None:
        done = 0
        while done < len(view):
            try:
                got = os.preadv(fd, [view[done : done + _MAX_IO]], position + done)
            except OSError as exc:
                raise InputError(f"cannot read the file: {exc.strerror or exc}", self.name) from None
            if got == 0:
                size = os.fstat(fd).st_size
                raise InputError(
                    f"the file was truncated while in use: {position + len(view)} bytes needed, {size} found",
                    self.name,
                )
            done += got

    def __setitem__(self, index: Any, value: Any) -> None:
        if not self.writable:
            raise ValueError("assignment destination is read-only")
        ranges, kept = _index_ranges(index, self.shape)
        full = [len(r) for r in ranges]
        if math.prod(full) == 0:
            return
        shape = [n for n, keep in zip(full, kept, strict=True) if keep]
        block = np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=self.dtype), shape)).reshape(full)
        offsets, run = _runs(ranges, self.shape, self.dtype.itemsize)
        buffer = memoryview(block.reshape(-1).view(np.uint8))
        try:
            fd = self._handle()
            for i, at in enumerate(offsets):
                view, done = buffer[i * run : (i + 1) * run], 0
                while done < len(view):
                    written = os.pwrite(fd, view[done : done + _MAX_IO], self.offset + at + done)
                    if written == 0:  # a regular file only writes nothing when its device is full
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    done += written
        except OSError as exc:  # raised inside plugins' predictors: an error they pass on unchanged
            raise write_error(exc, self.name) from None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self[...]
        return data if dtype is None else data.astype(dtype, copy=False)


def reserve_space(fd: int, size: int, name: str | os.PathLike[str]) -> None:
    """Allocate the blocks of the first ``size`` bytes of an open file now.

    Writing them then cannot fail later for lack of space.

    Parameters
    ----------
    fd
        The open file (writable).
    size
        Bytes to reserve from the start.
    name
        The file named in the message (the user's destination, not a temporary name).

    Raises
    ------
    MicrorestoreError
        ``"<name>: not enough space on the device: N bytes needed, M free"`` when the device is full.
        File systems that cannot reserve space (``EOPNOTSUPP``, ``EINVAL``) are left alone: the writes
        themselves then report a full disk.
    """
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is None or size <= 0:
        return
    try:
        fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            free = _free_bytes(fd)
            where = f", {free} free" if free is not None else ""
            raise MicrorestoreError(
                f"{name}: not enough space on the device to write it: {size} bytes needed{where}"
            ) from None
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return
        raise


def _free_bytes(fd: int) -> int | None:
    try:
        stats = os.fstatvfs(fd)
    except (OSError, AttributeError):
        return None
    return int(stats.f_bavail * stats.f_frsize)

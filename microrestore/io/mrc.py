"""MRC files (``.mrc``, ``.st``, ``.ali``): raw stacks from SIM and electron microscopes, and OTFs.

The header is validated by the ``mrcfile`` package when it is installed (imported lazily, strict mode);
without it a small reader of the 1024-byte header handles modes 0, 1, 2, 4, 6 and 12. Files written by
older software without the ``MAP`` identifier (common for SIM raw data and OTFs) are read by the small
reader when their header is otherwise consistent.

Units: a standard (MRC2014) header holds the cell size in ångström; older headers without the ``MAP``
identifier, as written by SIM software, hold the pixel size in micrometres. Both become micrometres.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import InputError
from microrestore.io.lazy import LazyArray
from microrestore.io.rawfile import RawFileArray

__all__ = ["MRC_SUFFIXES", "MrcHeader", "check_mrc_writable", "read_mrc", "read_mrc_header", "write_mrc"]

MRC_SUFFIXES: tuple[str, ...] = (".mrc", ".st", ".ali")
HEADER_BYTES = 1024
MAX_ELEMENTS = 2**40
ANGSTROM_PER_MICROMETRE = 1e4

_MODES: dict[int, str] = {0: "i1", 1: "i2", 2: "f4", 4: "c8", 6: "u2", 12: "f2"}
_MODE_OF: dict[str, int] = {np.dtype(v).str[1:]: k for k, v in _MODES.items()}


@dataclass
class MrcHeader:
    """What :func:`read_mrc` needs from an MRC header.

    Attributes
    ----------
    shape
        Array shape (``(ny, nx)``, ``(nz, ny, nx)``, or ``(n, mz, ny, nx)`` for volume stacks).
    dtype
        Data type with the file's byte order.
    offset
        Byte offset of the data (1024 plus the extended header).
    voxel_size_um
        ``(x, y, z)`` in micrometres; ``None`` where the header says nothing.
    mode
        MRC mode number.
    standard
        ``True`` for headers with the ``MAP`` identifier (MRC2014), ``False`` for older ones.
    extra
        Header fields kept in :attr:`ImageData.metadata`.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int
    voxel_size_um: tuple[float | None, float | None, float | None]
    mode: int
    standard: bool
    extra: dict[str, Any] = field(default_factory=dict)


def _byte_order(raw: bytes) -> str:
    stamp = raw[212:214]
    if stamp in (b"\x44\x44", b"\x44\x41"):
        return "<"
    if stamp == b"\x11\x11":
        return ">"
    little = np.frombuffer(raw[:16], "<i4")
    return "<" if 0 <= int(little[3]) < 256 and all(0 < int(n) < 2**31 for n in little[:3]) else ">"


def _parse_header(raw: bytes, path: Path) -> MrcHeader:
    """Interpret a 1024-byte MRC header without the mrcfile package."""
    if len(raw) < HEADER_BYTES:
        raise InputError(f"not a readable MRC file: header truncated ({len(raw)} of {HEADER_BYTES} bytes)", path)
    order = _byte_order(raw)
    ints = np.frombuffer(raw[:HEADER_BYTES], f"{order}i4")
    floats = np.frombuffer(raw[:HEADER_BYTES], f"{order}f4")
    nx, ny, nz, mode = (int(v) for v in ints[:4])
    mx, my, mz = (int(v) for v in ints[7:10])
    cell = [float(v) for v in floats[10:13]]
    ispg, nsymbt = int(ints[22]), int(ints[23])
    if mode not in _MODES:
        raise InputError(f"not a readable MRC file: unsupported mode {mode}", path)
    if min(nx, ny, nz) < 0 or nsymbt < 0:
        raise InputError(f"not a readable MRC file: invalid header (nx, ny, nz = {nx}, {ny}, {nz})", path)
    standard = raw[208:212] == b"MAP "
    dtype = np.dtype(_MODES[mode]).newbyteorder(order)
    return MrcHeader(
        shape=_shape(nx, ny, nz, mz, ispg),
        dtype=dtype,
        offset=HEADER_BYTES + nsymbt,
        voxel_size_um=_voxel_size((mx, my, mz), cell, standard),
        mode=mode,
        standard=standard,
        extra={"mrc_mode": mode, "mrc_space_group": ispg},
    )


def _shape(nx: int, ny: int, nz: int, mz: int, ispg: int) -> tuple[int, ...]:
    if nz == 1:
        return (ny, nx)
    if 401 <= ispg <= 630 and 0 < mz < nz and nz % mz == 0:
        return (nz // mz, mz, ny, nx)
    return (nz, ny, nx)


def _voxel_size(
    sampling: tuple[int, int, int], cell: list[float], standard: bool
) -> tuple[float | None, float | None, float | None]:
    scale = 1 / ANGSTROM_PER_MICROMETRE if standard else 1.0
    sizes: list[float | None] = []
    for m, length in zip(sampling, cell, strict=True):
        ok = m > 0 and np.isfinite(length) and length > 0
        sizes.append(float(f"{length / m * scale:.7g}") if ok else None)  # float32 header
    return sizes[0], sizes[1], sizes[2]


def _mrcfile_header(path: Path, raw: bytes) -> MrcHeader | None:
    """Validate the header with mrcfile (strict); ``None`` when mrcfile is not installed."""
    try:
        import mrcfile
        import mrcfile.utils
    except ImportError:
        return None
    try:
        with mrcfile.open(path, mode="r", permissive=False, header_only=True) as mrc:
            header = mrc.header
            dtype = mrcfile.utils.data_dtype_from_header(header)
            shape = tuple(int(n) for n in mrcfile.utils.data_shape_from_header(header))
            offset = int(header.nbytes) + int(header.nsymbt)
            mode, ispg = int(header.mode), int(header.ispg)
            sampling = (int(header.mx), int(header.my), int(header.mz))
            cell = [float(header.cella.x), float(header.cella.y), float(header.cella.z)]
    except ValueError as exc:
        # Older headers (no MAP id, no machine stamp) are common for SIM data: accept them when the rest of
        # the header is consistent; anything else mrcfile refuses is refused.
        message = str(exc).lower()
        if "map id" in message or "machine stamp" in message:
            fallback = _parse_header(raw, path)
            fallback.extra["mrc_header"] = "MRC2014" if fallback.standard else "pre-2014 (no MAP id)"
            return fallback
        raise InputError(f"not a readable MRC file: {_first_line(exc)}", path) from None
    if (dtype.kind == "c" and mode != 4) or mode not in _MODES:
        raise InputError(f"not a readable MRC file: unsupported mode {mode}", path)
    return MrcHeader(
        shape=shape,
        dtype=np.dtype(dtype),
        offset=offset,
        voxel_size_um=_voxel_size(sampling, cell, True),
        mode=mode,
        standard=True,
        extra={"mrc_mode": mode, "mrc_space_group": ispg},
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_mrc_header(path: str | os.PathLike[str]) -> MrcHeader:
    """Read and check the header of an MRC file.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    MrcHeader
        Shape, type, data offset and voxel size.

    Raises
    ------
    InputError
        When the file is not a readable MRC file, is truncated, or describes an empty or absurdly large image.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES:
        raise InputError(f"not a readable MRC file: header truncated ({len(raw)} of {HEADER_BYTES} bytes)", path)
    header = _mrcfile_header(path, raw) or _parse_header(raw, path)
    if 0 in header.shape:
        raise InputError(f"empty image (shape {header.shape})", path)
    count = prod(header.shape)
    if count > MAX_ELEMENTS:
        raise InputError(f"image too large: shape {header.shape} has {count} elements (at most 2**40)", path)
    expected = header.offset + count * header.dtype.itemsize
    if size < expected:
        raise InputError(f"truncated: expected {expected} bytes, found {size}", path)
    return header


def read_mrc(path: str | os.PathLike[str], memmap: bool = False) -> tuple[np.ndarray | LazyArray, MrcHeader]:
    """Read the data of an MRC file.

    Parameters
    ----------
    path
        The file.
    memmap
        Return a read-only :class:`~microrestore.io.lazy.LazyArray` read on indexing (with ``pread``, see
        :mod:`microrestore.io.rawfile`: a file truncated while in use gives an error, not ``SIGBUS``)
        instead of reading into memory.

    Returns
    -------
    tuple of array and MrcHeader
        The data (in the file's type; native byte order unless read lazily) and its header.
    """
    path = Path(path)
    header = read_mrc_header(path)
    if memmap:
        return LazyArray(RawFileArray(path, header.dtype, header.shape, header.offset)), header
    with open(path, "rb") as fh:
        fh.seek(header.offset)
        data = np.fromfile(fh, dtype=header.dtype, count=prod(header.shape)).reshape(header.shape)
    if not header.dtype.isnative:
        data = data.astype(header.dtype.newbyteorder("="))
    return data, header


def check_mrc_writable(shape: tuple[int, ...], dtype: Any, axes: str, path: str | os.PathLike[str]) -> int:
    """Check that an MRC file can hold an image, before anything is computed or written.

    Parameters
    ----------
    shape
        The image's shape.
    dtype
        Its data type.
    axes
        Its axes.
    path
        The destination the user named (in the message).

    Returns
    -------
    int
        The MRC mode of ``dtype``.

    Raises
    ------
    InputError
        For data types MRC cannot hold and for images that are not 2D or 3D with axes ending in ``YX``.
    """
    dtype = np.dtype(dtype)
    mode = _MODE_OF.get(dtype.str[1:]) if dtype.kind != "V" else None
    if mode is None:
        raise InputError(f"MRC files cannot hold {dtype.name} data; write a .tif or choose --dtype float32", path)
    if len(shape) not in (2, 3) or not axes.endswith("YX"):
        raise InputError(f"MRC files hold 2D or 3D images ending in YX, not axes {axes!r}", path)
    return mode


def write_mrc(
    path: str | os.PathLike[str],
    data: np.ndarray,
    axes: str,
    pixel_size: dict[str, float] | None = None,
) -> None:
    """Write a 2D or 3D array as a standard (MRC2014) file; the caller makes the write atomic.

    Parameters
    ----------
    path
        Destination (written directly).
    data
        Array of int8, int16, uint16, float16, float32 or complex64 with axes ending in ``YX``.
    axes
        Its axes; the third axis from the end (``Z``, ``T`` or ``C``) becomes the section axis.
    pixel_size
        Micrometres per axis letter, stored in ångström in the cell size.

    Raises
    ------
    InputError
        For other types or dimensions, which MRC cannot hold.
    """
    path = Path(path)
    dtype = np.dtype(data.dtype)
    mode = check_mrc_writable(data.shape, dtype, axes, path)
    nz, ny, nx = (1, *data.shape) if data.ndim == 2 else data.shape
    sizes = pixel_size or {}
    section = axes[0] if data.ndim == 3 else "Z"
    header = np.zeros(HEADER_BYTES // 4, dtype="<i4")
    floats = header.view("<f4")
    header[0:4] = (nx, ny, nz, mode)
    header[7:10] = (nx, ny, nz)
    for i, letter in enumerate(("X", "Y", section)):
        n = (nx, ny, nz)[i]
        floats[10 + i] = sizes[letter] * ANGSTROM_PER_MICROMETRE * n if letter in sizes else 0.0
    floats[13:16] = 90.0
    header[16:19] = (1, 2, 3)
    floats[19:22] = (0.0, -1.0, -2.0)  # dmin > dmax: statistics not computed
    header[22] = 1 if section == "Z" and data.ndim == 3 else 0
    header[27] = 20140
    floats[54] = -1.0  # rms < 0: not computed
    raw = bytearray(header.tobytes())
    raw[208:212] = b"MAP "
    raw[212:216] = b"\x44\x44\x00\x00"
    with open(path, "wb") as fh:
        fh.write(bytes(raw))
        if data.flags.c_contiguous and dtype.byteorder in ("=", "<", "|"):
            data.astype(dtype.newbyteorder("<"), copy=False).tofile(fh)
        else:
            for plane in data[np.newaxis] if data.ndim == 2 else data:
                np.ascontiguousarray(plane, dtype=dtype.newbyteorder("<")).tofile(fh)

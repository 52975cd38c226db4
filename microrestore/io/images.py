"""Reading and writing images: the dispatch by format to TIFF, MRC, PNG/JPEG and plugin formats.

The formats' specifics live in their own modules: :mod:`microrestore.io.tiff` (ImageJ, OME, BigTIFF through
tifffile), :mod:`microrestore.io.mrc`, :mod:`microrestore.io.pillow`; :class:`ImageData` and the checks they
share in :mod:`microrestore.io.imagedata`. Only numpy and tifffile are imported here; mrcfile is imported when
a file needs it, so that the command line starts fast. Formats of plugins come from
:mod:`microrestore.formats`, where the plugin host connects them: this module never imports the plugins
(reading a TIFF loads none).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from microrestore import formats
from microrestore.errors import InputError
from microrestore.io import imagedata
from microrestore.io.atomic import atomic_path
from microrestore.io.axes import normalize_axes
from microrestore.io.dtypes import iter_blocks
from microrestore.io.imagedata import MAX_ELEMENTS, MEMMAP_THRESHOLD, ImageData, check_array, error_reason
from microrestore.io.mrc import MRC_SUFFIXES, check_mrc_writable, read_mrc, write_mrc
from microrestore.io.pillow import PILLOW_SUFFIXES, read_pillow
from microrestore.io.tiff import (
    TIFF_SUFFIXES,
    TIME_KEYS,
    _check_compression,
    _has_tiff_magic,
    _read_tiff_image,
    _tiff_options,
    output_memmap,
)

__all__ = [
    "MAX_ELEMENTS",
    "MEMMAP_THRESHOLD",
    "TIFF_SUFFIXES",
    "ImageData",
    "check_finite",
    "check_image",
    "check_writable",
    "output_memmap",
    "read_image",
    "write_image",
]


# --------------------------------------------------------------------------------------------------
# reading


def read_image(path: str | os.PathLike[str], axes: str | None = None, memmap: bool | None = None) -> ImageData:
    """Read an image file.

    Parameters
    ----------
    path
        A TIFF (``.tif``, ``.tiff``, ``.ome.tif``, BigTIFF, ImageJ hyperstack), an MRC file (``.mrc``,
        ``.st``, ``.ali``) or a format of an installed plugin.
    axes
        The axes (``--axes``) for files whose metadata does not say; when the metadata does say, they
        must agree with it. 2D images without metadata are ``YX``, 3D MRC files ``ZYX``.
    memmap
        ``True`` to read uncompressed contiguous data lazily, on indexing, with ``pread`` (the historical name:
        no memory map is made, so a file truncated while in use gives an error naming it instead of
        ``SIGBUS``; see :mod:`microrestore.io.rawfile`), and, when the zarr package is installed, to read
        compressed or tiled TIFFs lazily, chunk by chunk; both as a :class:`~microrestore.io.lazy.LazyArray`.
        ``False`` always reads into memory, ``None`` reads files larger than :data:`MEMMAP_THRESHOLD` lazily.

    Returns
    -------
    ImageData
        The image, in the file's data type. NaN and Inf are not checked here (see :func:`check_finite`).

    Raises
    ------
    InputError
        When the file is missing, unreadable, truncated, empty or corrupt, or when the axes are unknown or
        contradict the metadata.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path)
    if path.is_dir() and formats.reader_for(path) is None:  # folder formats (OME-Zarr) come from plugin readers
        raise InputError("is a folder, not an image file", path)
    try:
        return _read_any(path, axes, memmap)
    except OSError as exc:  # permissions, I/O errors, files vanishing while read
        raise InputError(f"cannot read the file: {exc.strerror or error_reason(exc)}", path) from None


def _read_any(path: Path, axes: str | None, memmap: bool | None) -> ImageData:
    kind = _format_of(path)
    if kind is None:
        reader = formats.reader_for(path)
        if reader is not None:
            return _from_plugin(formats.call(reader, "reader", reader.read, path, axes=axes), path)
        if not _has_tiff_magic(path):
            raise InputError(
                f"unsupported file type {''.join(path.suffixes[-1:]) or '(no suffix)'!r}; "
                f"microrestore reads {', '.join(TIFF_SUFFIXES + MRC_SUFFIXES + PILLOW_SUFFIXES)} and the formats of "
                "installed plugins",
                path,
            )
        kind = "tiff"
    if kind == "mrc":
        return _read_mrc_image(path, axes, memmap)
    if kind == "pillow":
        data, metadata = read_pillow(path)
        return ImageData(data, imagedata.resolve_axes(None, axes, data.shape, path, "YX"), path, {}, metadata)
    return _read_tiff_image(path, axes, memmap)


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(TIFF_SUFFIXES):
        return "tiff"
    if name.endswith(MRC_SUFFIXES):
        return "mrc"
    if name.endswith(PILLOW_SUFFIXES):
        return "pillow"
    return None


def _from_plugin(image: Any, path: Path) -> ImageData:
    if not isinstance(image, ImageData):
        raise InputError(f"the plugin reader returned {type(image).__name__}, not ImageData", path)
    check_array(tuple(image.data.shape), image.data.dtype, path, allow_complex=False)
    if image.path is None:
        image.path = path
    return image


def _read_mrc_image(path: Path, axes: str | None, memmap: bool | None) -> ImageData:
    want_map = memmap is True or (memmap is None and path.stat().st_size > MEMMAP_THRESHOLD)
    data, header = read_mrc(path, memmap=want_map)
    check_array(header.shape, header.dtype, path, allow_complex=True)
    fallback = {2: "YX", 3: "ZYX", 4: "TZYX"}[data.ndim]
    final = imagedata.resolve_axes(None, axes, tuple(data.shape), path, fallback)
    vx, vy, vz = header.voxel_size_um
    sizes = {k: v for k, v in (("X", vx), ("Y", vy), ("Z", vz)) if v is not None}
    metadata = {"format": "mrc", **header.extra}
    return ImageData(data, final, path, imagedata.clean_pixel_size(sizes, final), metadata)


def kept_metadata(image: ImageData) -> dict[str, Any]:
    """What a restored image keeps of its input's metadata besides axes and pixel sizes: the time calibration.

    The frame interval (``finterval``), its unit (``tunit``) and the playback rate of an ImageJ time-lapse
    describe the output as much as the input; other keys (display ranges, LUTs, acquisition notes) may not.
    """
    return {key: image.metadata[key] for key in TIME_KEYS if key in image.metadata}


def check_finite(image: ImageData | np.ndarray, path: str | os.PathLike[str] | None = None) -> None:
    """Raise when the image holds NaN or Inf values; reads memory-mapped data block by block.

    Parameters
    ----------
    image
        The image or a bare array.
    path
        File named in the message (default: the image's own path).

    Raises
    ------
    InputError
        ``"contains N NaN/Inf values"``.
    """
    data = image.data if isinstance(image, ImageData) else np.asarray(image)
    where = path if path is not None else (image.path if isinstance(image, ImageData) else None)
    if data.dtype.kind not in "fc":
        return
    bad = 0
    for index in iter_blocks(tuple(data.shape)):
        block = np.asarray(data[index])
        bad += block.size - int(np.count_nonzero(np.isfinite(block)))
    if bad:
        raise InputError(f"contains {bad} NaN/Inf values", where)


def check_image(image: ImageData) -> None:
    """Refuse empty images, non-numeric or complex data and images holding NaN or Inf, naming the file.

    Raises
    ------
    InputError
        One line naming the image's file and the problem.
    """
    if image.data.size == 0 or 0 in image.data.shape:
        raise InputError(f"empty image (shape {tuple(image.data.shape)})", image.path)
    if not (np.issubdtype(image.data.dtype, np.number) or image.data.dtype == bool):
        raise InputError(f"unsupported pixel type {image.data.dtype}", image.path)
    if image.data.dtype.kind == "c":  # MRC mode 4 (OTFs): no method restores complex values
        raise InputError(f"complex data ({image.data.dtype}) cannot be restored; give a real-valued image", image.path)
    check_finite(image)


# --------------------------------------------------------------------------------------------------
# writing


def write_image(
    path: str | os.PathLike[str],
    data: np.ndarray,
    axes: str,
    *,
    pixel_size: dict[str, float] | None = None,
    metadata: dict[str, Any] | None = None,
    compression: str | None = None,
) -> Path:
    """Write an image atomically (a temporary name in the same folder, then a rename).

    Parameters
    ----------
    path
        ``.tif``/``.tiff`` (ImageJ hyperstack when the axes follow ImageJ's TZCYX order and the type is
        uint8, uint16 or float32; otherwise a TIFF with the axes in its description), ``.ome.tif`` (OME-TIFF),
        ``.mrc`` (2D/3D), or a suffix handled by a plugin writer.
    data
        The pixels; written in their own data type.
    axes
        One letter per dimension of ``data``.
    pixel_size
        Micrometres per pixel along ``X``, ``Y``, ``Z``.
    metadata
        Extra key/value pairs (scalars are kept by every TIFF flavour; lists and dicts only in plain TIFF).
    compression
        TIFF compression passed to tifffile (``"zlib"``, ``"lzma"``, ...); ``None`` writes uncompressed.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        For a suffix nobody can write, or data the format cannot hold.
    """
    path = Path(path)
    data = data if isinstance(data, np.ndarray) else np.asarray(data)
    axes = normalize_axes(axes, data.shape, path=path)
    sizes = imagedata.clean_pixel_size(pixel_size, axes)
    kind = _format_of(path)
    check_writable(path, tuple(data.shape), data.dtype, axes)
    if kind == "mrc":
        with atomic_path(path, size_hint=data.nbytes + 1024) as tmp:
            write_mrc(tmp, data, axes, sizes)
        return path
    if kind is None or kind == "pillow":  # PNG/JPEG are read, never written (8-bit, or lossy)
        writer = formats.writer_for(path)
        if writer is None:
            raise InputError(
                f"cannot write {''.join(path.suffixes[-1:]) or 'files without a suffix'!r} files; "
                "use .tif, .tiff, .ome.tif or .mrc",
                path,
            )
        with atomic_path(path, keep_name=True, replace_folder=True) as tmp:
            formats.call(
                writer,
                "writer",
                writer.write,
                tmp,
                data,
                axes,
                pixel_size=sizes,
                metadata=dict(metadata or {}),
            )
        return path
    _check_compression(compression, data.dtype, path)
    options = _tiff_options(path, tuple(data.shape), data.dtype, axes, sizes, metadata)
    with atomic_path(path, size_hint=data.nbytes if compression is None else None) as tmp:
        tifffile.imwrite(tmp, data, compression=compression, **options)
    return path


def check_writable(path: str | os.PathLike[str], shape: tuple[int, ...], dtype: Any, axes: str) -> None:
    """Refuse, before any computation, an image that the format of ``path`` cannot hold.

    Parameters
    ----------
    path
        The destination (named in the message).
    shape
        The image's shape.
    dtype
        The data type to write.
    axes
        Its axes.

    Raises
    ------
    InputError
        MRC: a data type without an MRC mode, or not 2D/3D ending in ``YX``; TIFF: complex data or an
        unsupported type. Plugin formats are checked by their writers.
    """
    path = Path(path)
    kind = _format_of(path)
    if kind == "mrc":
        check_mrc_writable(shape, dtype, axes, path)
    elif kind == "tiff":
        check_array(shape, np.dtype(dtype), path, allow_complex=False)

"""TIFF files through tifffile: ImageJ hyperstacks, OME-TIFF and BigTIFF, read and written.

Reading: the first series, its axes (microrestore's own record, ImageJ's and OME's metadata, or the shape),
pixel sizes in micrometres from any of their unit conventions, truncation and decompression-bomb checks, and
lazy reading (``pread`` for contiguous data, zarr for compressed or tiled files) above a size. Writing: the
flavour that can hold the axes (ImageJ where its axis order allows, OME-TIFF by name, else a plain TIFF with
JSON metadata), BigTIFF above 4 GiB, and :func:`output_memmap` for outputs streamed block by block. The format
dispatch (:func:`microrestore.io.read_image`, :func:`microrestore.io.write_image`) is :mod:`microrestore.io.images`.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import logging
import math
import os
import re
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from microrestore.errors import InputError
from microrestore.io.atomic import atomic_path
from microrestore.io.axes import fits_imagej_order, normalize_axes
from microrestore.io.imagedata import (
    MEMMAP_THRESHOLD,
    ImageData,
    check_array,
    clean_pixel_size,
    error_reason,
    resolve_axes,
)
from microrestore.io.lazy import LazyArray
from microrestore.io.rawfile import RawFileArray, reserve_space

__all__ = ["OME_NAMESPACE", "TIFF_SUFFIXES", "TIME_KEYS", "output_memmap"]

TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")
BIGTIFF_THRESHOLD = 2**32 - 2**25
"""Data larger than this (bytes) is written as BigTIFF (4 GiB less room for the file structure)."""
_IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
_IMAGEJ_KEYS = frozenset(
    "ImageJ images channels slices frames hyperstack unit spacing microrestore_axes axes shape "
    "Info Labels Ranges LUTs Plot ROI Overlays Properties xunit yunit zunit cf c0 c1 vunit min max".split()
)
_SHAPED_KEYS = frozenset({"shape", "axes", "pixel_size"})
#: Calibration of an ImageJ time-lapse (frame interval, its unit, playback rate): a restored image keeps them.
TIME_KEYS = ("finterval", "tunit", "fps", "loop")
OME_NAMESPACE = "microrestore"
"""Namespace of the OME map annotation holding the axes (with their size-1 dimensions)."""
_METADATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_UNITS_UM: dict[str, float] = {
    "um": 1.0,
    "µm": 1.0,
    "μm": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "micrometers": 1.0,
    "micrometres": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "nanometre": 1e-3,
    "nanometers": 1e-3,
    "nanometres": 1e-3,
    "mm": 1e3,
    "millimeter": 1e3,
    "millimetre": 1e3,
    "cm": 1e4,
    "m": 1e6,
    "å": 1e-4,
    "angstrom": 1e-4,
    "pm": 1e-6,
}
_RESUNIT_UM = {3: 1e4, 4: 1e3, 5: 1.0}  # TIFF ResolutionUnit: centimetre, millimetre, micrometre


def _has_tiff_magic(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class _TiffLog(logging.Filter):
    """Takes tifffile's log records of the current thread: errors signal a corrupt file.

    The records are kept from the log (the caller turns errors into one :class:`InputError` line); those of
    other threads pass through untouched.
    """

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread:
            return True
        if record.levelno >= logging.ERROR:
            text = re.sub(r"^(<[^>]*>\s*)+", "", record.getMessage()).strip()
            self.messages.append(text.splitlines()[0] if text else "corrupt file")
        return False


@contextlib.contextmanager
def _tifffile_errors() -> Iterator[_TiffLog]:
    logger = logging.getLogger("tifffile")
    log = _TiffLog()
    logger.addFilter(log)
    try:
        yield log
    finally:
        logger.removeFilter(log)


def _read_tiff_image(path: Path, axes: str | None, memmap: bool | None) -> ImageData:
    size = path.stat().st_size
    if size == 0:
        raise InputError("not a readable TIFF: empty file (0 bytes)", path)
    if not _has_tiff_magic(path):
        raise InputError("not a readable TIFF: the file does not start with a TIFF header", path)
    with _tifffile_errors() as log:
        try:
            with tifffile.TiffFile(path) as tif:
                return _read_open_tiff(tif, path, size, axes, memmap, log)
        except (InputError, MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:
            reason = log.messages[0] if log.messages else error_reason(exc)
            raise InputError(f"not a readable TIFF: {reason}", path) from None


def _read_open_tiff(
    tif: tifffile.TiffFile, path: Path, size: int, axes: str | None, memmap: bool | None, log: _TiffLog
) -> ImageData:
    if not tif.series or not tif.pages:
        raise InputError("not a readable TIFF: no image data", path)
    series = tif.series[0]
    shape = tuple(int(n) for n in series.shape)
    dtype = np.dtype(series.dtype)
    check_array(shape, dtype, path, allow_complex=False)
    page = tif.pages.first
    _check_truncation(tif, series, path, size, shape, dtype)
    if log.messages:
        raise InputError(f"not a readable TIFF: {log.messages[0]}", path)
    file_axes, shape_axes = _tiff_axes(tif, series, shape)
    contiguous = series.dataoffset is not None and dtype.kind != "b"
    native = dtype.itemsize == 1 or tif.byteorder == ("<" if sys.byteorder == "little" else ">")
    want_map = memmap is True or (memmap is None and size > MEMMAP_THRESHOLD)
    decoded = math.prod(shape) * dtype.itemsize
    _check_expansion(path, size, decoded, whole=False)
    mapped = want_map and contiguous and native
    lazy = _lazy_tiff(path) if memmap is True and not (contiguous and native) else None
    if not mapped and lazy is None and memmap is not False and decoded > _available_memory():
        lazy = _lazy_tiff(path)  # too large to decode at once: chunk by chunk when zarr is installed
    if not mapped and lazy is None:
        _check_expansion(path, size, decoded, whole=True)
    if mapped:  # read on indexing with pread: no SIGBUS if the file shrinks
        data: np.ndarray | LazyArray = LazyArray(RawFileArray(path, dtype, shape, int(series.dataoffset)))
    elif lazy is not None:
        data = lazy
    else:
        data = series.asarray()
        if log.messages:
            raise InputError(f"not a readable TIFF: {log.messages[0]}", path)
    if tuple(data.shape) != shape:
        raise InputError(f"not a readable TIFF: data shape {data.shape} differs from {shape}", path)
    if shape_axes is not None:
        file_axes, new_shape = shape_axes
        data = data.reshape(new_shape)
    final = resolve_axes(file_axes, axes, tuple(data.shape), path, None)
    sizes = _tiff_pixel_size(tif, page)
    return ImageData(data, final, path, clean_pixel_size(sizes, final), _tiff_metadata(tif))


def _lazy_tiff(path: Path) -> LazyArray | None:
    """The first series of a compressed or tiled TIFF read chunk by chunk through zarr (``None`` without zarr)."""
    try:
        import zarr
    except ImportError:
        return None
    store = tifffile.imread(path, aszarr=True, series=0, level=0)
    return LazyArray(zarr.open_array(store, mode="r"))


def _check_expansion(path: Path, size: int, decoded: int, *, whole: bool) -> None:
    """Refuse a decompression bomb before decoding: pixels far larger than the file, or than the memory.

    Parameters
    ----------
    path
        The file (named in the message).
    size
        Its size in bytes.
    decoded
        Bytes its pixels declare.
    whole
        The pixels are about to be decoded into memory at once: also compare them with the available memory.
    """
    from microrestore.limits import MAX_IMAGE_RATIO, expands_too_far

    if expands_too_far(decoded, size, MAX_IMAGE_RATIO):
        raise InputError(
            f"the image declares {decoded} bytes of pixels in a {size}-byte file (more than "
            f"{MAX_IMAGE_RATIO:.0f}-fold); refusing a possible decompression bomb",
            path,
        )
    available = _available_memory() if whole else None
    if available is not None and decoded > available:
        raise InputError(
            f"decoding the image needs {decoded / 2**30:.1f} GiB of memory, {available / 2**30:.1f} GiB are "
            "available; install the zarr package to read it chunk by chunk, or store it uncompressed",
            path,
        )


def _available_memory() -> int:
    """Available host memory in bytes (no limit known: a very large number)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # psutil missing or unable to say
        return 2**62


def _check_truncation(
    tif: tifffile.TiffFile, series: Any, path: Path, size: int, shape: tuple[int, ...], dtype: np.dtype
) -> None:
    """Compare the bytes the file's structure promises with the file's size (uncompressed data only)."""
    nbytes = math.prod(shape) * dtype.itemsize
    if series.dataoffset is not None and dtype.kind != "b":
        expected = int(series.dataoffset) + nbytes
        if expected > size:
            raise InputError(f"truncated: expected {expected} bytes, found {size}", path)
    ij = tif.imagej_metadata if tif.is_imagej else None
    first = tif.pages.first
    if ij and isinstance(ij.get("images"), int) and first.is_contiguous and first.dataoffsets:
        expected = int(first.dataoffsets[0]) + int(ij["images"]) * int(first.nbytes)
        if expected > size:
            raise InputError(f"truncated: expected {expected} bytes, found {size}", path)


def _usable_axes(axes: str) -> str | None:
    """Return tifffile's axes when they are all TCZYXS letters (``Q``, ``I`` etc. mean "unknown")."""
    try:
        return normalize_axes(axes) if axes and set(axes) <= set("TCZYXS") else None
    except InputError:
        return None


def _tiff_axes(
    tif: tifffile.TiffFile, series: Any, shape: tuple[int, ...]
) -> tuple[str | None, tuple[str, tuple[int, ...]] | None]:
    """Return the axes the metadata gives, and the unsqueezed axes and shape we stored in the file.

    tifffile drops dimensions of size 1 from ImageJ and OME series; the axes :func:`write_image` stored
    (an ImageJ key, an OME map annotation) bring them back.
    """
    file_axes = _usable_axes(series.axes)
    stored = _stored_axes(tif)
    if stored is None:
        return file_axes, None
    full_axes, full_shape = series.get_axes(False), tuple(series.get_shape(False))
    if len(full_axes) != len(full_shape) or not set(stored) <= set(full_axes):
        return file_axes, None
    sizes = dict(zip(full_axes, full_shape, strict=True))
    if any(n != 1 for c, n in sizes.items() if c not in stored):
        return file_axes, None
    new_shape = tuple(int(sizes[c]) for c in stored)
    kept_stored = [c for c in stored if sizes[c] != 1]
    kept_file = [c for c, n in zip(series.axes, shape, strict=True) if n != 1]
    if kept_stored != kept_file or math.prod(new_shape) != math.prod(shape):
        return file_axes, None
    return stored, (stored, new_shape)


def _stored_axes(tif: tifffile.TiffFile) -> str | None:
    """Return the axes :func:`write_image` stored in an ImageJ or OME file, if any."""
    stored: Any = None
    if tif.is_imagej and tif.imagej_metadata:
        stored = tif.imagej_metadata.get("microrestore_axes")
    elif tif.is_ome and tif.ome_metadata:
        with contextlib.suppress(ET.ParseError):
            root = ET.fromstring(tif.ome_metadata)
            for annotation in root.iterfind(".//{*}MapAnnotation"):
                if annotation.get("Namespace") == OME_NAMESPACE:
                    for item in annotation.iterfind(".//{*}M"):
                        if item.get("K") == "axes":
                            stored = item.text
    return _usable_axes(stored) if isinstance(stored, str) else None


def _unit_factor(unit: Any) -> float | None:
    """Return micrometres per ``unit`` (``micron``, ``µm``, ``nm``, escaped ``µm``, ...) or ``None``."""
    if not isinstance(unit, str):
        return None
    text = unit.strip()
    if "\\u" in text and text.isascii():
        with contextlib.suppress(UnicodeDecodeError):
            text = codecs.decode(text, "unicode_escape")
    return _UNITS_UM.get(text.lower())


def _rational(tag: Any) -> float | None:
    value = getattr(tag, "value", None)
    if not isinstance(value, tuple) or len(value) != 2 or not value[0] or not value[1]:
        return None
    return float(value[0]) / float(value[1])


def _round(value: float) -> float:
    """Round to 7 significant digits: ImageJ stores resolutions as fractions over 1000000."""
    return float(f"{value:.7g}")


def _tiff_pixel_size(tif: tifffile.TiffFile, page: Any) -> dict[str, float]:
    """Micrometres per pixel from our own metadata, OME, ImageJ or the resolution tags (in that order)."""
    shaped = tif.shaped_metadata[0] if tif.is_shaped and tif.shaped_metadata else None
    if shaped and isinstance(shaped.get("pixel_size"), dict):
        return dict(shaped["pixel_size"])
    if tif.is_ome and tif.ome_metadata:
        sizes = _ome_pixel_size(tif.ome_metadata)
        if sizes:
            return sizes
    x_res, y_res = _rational(page.tags.get("XResolution")), _rational(page.tags.get("YResolution"))
    ij = tif.imagej_metadata if tif.is_imagej else None
    factor = _unit_factor(ij.get("unit")) if ij else None
    if factor is None:
        unit_tag = page.tags.get("ResolutionUnit")
        factor = _RESUNIT_UM.get(int(unit_tag.value)) if unit_tag is not None else None
    if factor is None:
        return {}
    sizes = {}
    for letter, res in (("X", x_res), ("Y", y_res)):
        if res:
            sizes[letter] = _round(factor / res)
    spacing = ij.get("spacing") if ij else None
    if isinstance(spacing, (int, float)) and spacing > 0:
        sizes["Z"] = _round(float(spacing) * factor)
    return sizes


def _ome_pixel_size(xml: str) -> dict[str, float]:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {}
    pixels = root.find("./{*}Image/{*}Pixels")
    if pixels is None:
        return {}
    sizes = {}
    for letter in "XYZ":
        value = pixels.get(f"PhysicalSize{letter}")
        factor = _unit_factor(pixels.get(f"PhysicalSize{letter}Unit", "µm"))
        with contextlib.suppress(ValueError):
            if value is not None and factor is not None:
                sizes[letter] = _round(float(value) * factor)
    return sizes


def _tiff_metadata(tif: tifffile.TiffFile) -> dict[str, Any]:
    """Return the file's format and its free-form key/value metadata (ImageJ keys, our JSON description)."""
    fmt = "ome" if tif.is_ome else "imagej" if tif.is_imagej else "tiff"
    metadata: dict[str, Any] = {"format": fmt}
    if tif.is_bigtiff:
        metadata["bigtiff"] = True
    source: dict[str, Any] = {}
    if tif.is_imagej and tif.imagej_metadata:
        source = {k: v for k, v in tif.imagej_metadata.items() if k not in _IMAGEJ_KEYS}
    elif tif.is_shaped and tif.shaped_metadata:
        source = {k: v for k, v in tif.shaped_metadata[0].items() if k not in _SHAPED_KEYS}
    for key, value in source.items():
        if key != "format" and isinstance(value, (str, int, float, bool, list, dict)):
            metadata[key] = value
    return metadata


def _check_compression(compression: str | None, dtype: np.dtype, path: Path) -> None:
    """Refuse a compression tifffile cannot apply here (unknown, or its codec is not installed)."""
    if compression is None:
        return
    try:
        tifffile.imwrite(io.BytesIO(), np.zeros((2, 2), dtype), compression=compression, photometric="minisblack")
    except Exception as exc:
        raise InputError(f"cannot write with compression {compression!r}: {error_reason(exc)}", path) from None


def _metadata_items(metadata: dict[str, Any] | None, *, scalars_only: bool, reserved: frozenset[str]) -> dict:
    """Return the user metadata a TIFF flavour can store: simple keys, no reserved names, JSON-able values."""
    items: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not _METADATA_KEY.match(key) or key in reserved or key == "format":
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool | int | float | str):
            if isinstance(value, str) and ("\n" in value or "\r" in value) and scalars_only:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                continue
            items[key] = value
        elif not scalars_only:
            with contextlib.suppress(TypeError, ValueError):
                json.dumps(value, allow_nan=False)
                items[key] = value
    return items


def _tiff_options(
    path: Path,
    shape: tuple[int, ...],
    dtype: np.dtype,
    axes: str,
    sizes: dict[str, float],
    metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    """Return tifffile keyword arguments for an ImageJ, OME or plain TIFF holding ``axes`` and ``sizes``."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    bigtiff = nbytes > BIGTIFF_THRESHOLD
    rgb = axes.endswith("YXS") and shape[-1] in (3, 4)
    name = path.name.lower()
    ome = name.endswith((".ome.tif", ".ome.tiff")) and (rgb or ("S" not in axes and axes.endswith("YX")))
    native = dtype.newbyteorder("=")
    # tifffile's ImageJ writer mangles planes one pixel high or wide: those go to a plain TIFF
    thin = min(shape[axes.index("Y")], shape[axes.index("X")]) == 1
    imagej = not ome and not bigtiff and not thin and native in _IMAGEJ_DTYPES and fits_imagej_order(axes)
    options: dict[str, Any] = {
        "bigtiff": bigtiff,
        "photometric": "rgb" if rgb else "minisblack",
        "imagej": imagej,
        "ome": ome,
    }
    has_xy = "X" in sizes and "Y" in sizes
    if imagej:
        meta = _metadata_items(metadata, scalars_only=True, reserved=_IMAGEJ_KEYS)
        meta.update(axes=axes, microrestore_axes=axes)
        if has_xy:
            options["resolution"] = (1 / sizes["X"], 1 / sizes["Y"])
            meta["unit"] = "micron"
            if "Z" in sizes:
                meta["spacing"] = sizes["Z"]
        options["metadata"] = meta
        return options
    if has_xy:
        options["resolution"] = (1e4 / sizes["X"], 1e4 / sizes["Y"])
        options["resolutionunit"] = "CENTIMETER"
    if ome:
        meta: dict[str, Any] = {"axes": axes, "MapAnnotation": {"Namespace": OME_NAMESPACE, "axes": axes}}
        for letter, value in sizes.items():
            meta[f"PhysicalSize{letter}"] = value
            meta[f"PhysicalSize{letter}Unit"] = "µm"
        options["metadata"] = meta
    else:
        meta = _metadata_items(metadata, scalars_only=False, reserved=_SHAPED_KEYS)
        meta.update(axes=axes, pixel_size=sizes)
        options["metadata"] = meta
    return options


@contextlib.contextmanager
def output_memmap(
    path: str | os.PathLike[str],
    shape: tuple[int, ...],
    dtype: np.dtype | type | str,
    axes: str,
    pixel_size: dict[str, float] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Iterator[RawFileArray]:
    """Create an uncompressed TIFF and yield its pixels as a writable file array; publish it only on success.

    The file is created under a temporary name in the destination folder and renamed to ``path`` when the
    block exits without an exception; otherwise it is deleted. No partial output is ever left at ``path``.

    Design (the name is historical: nothing is memory-mapped). Writing through a memory map of a sparse
    file kills the process with ``SIGBUS`` when the disk fills up, leaving the temporary file behind.
    Here tifffile writes the file's structure with the pixels as a hole, the pixels' blocks are reserved
    at once with ``posix_fallocate`` (a full disk is reported before any computation, naming ``path`` and
    the bytes needed), and the yielded :class:`~microrestore.io.rawfile.RawFileArray` writes each block with
    ``pwrite``, whose errors (a file system that cannot reserve space, an I/O error) are exceptions that
    :func:`~microrestore.io.atomic.atomic_path` turns into one line naming ``path``.

    Parameters
    ----------
    path
        Destination ``.tif``/``.tiff`` (``.ome.tif`` for OME-TIFF).
    shape
        The image's shape.
    dtype
        Its data type.
    axes
        One letter per dimension.
    pixel_size
        Micrometres per pixel along ``X``, ``Y``, ``Z``.
    metadata
        Extra key/value pairs, as for :func:`write_image`.

    Yields
    ------
    RawFileArray
        Writable (``out[index] = block``) and readable, of ``shape`` and ``dtype``, initially zero.

    Raises
    ------
    InputError
        For a destination that is not a TIFF, for impossible shapes and types, or for a destination that
        cannot be written (read-only, no permission, a file where a folder should be).
    MicrorestoreError
        When the device has no room for the file, or a write fails.
    """
    path = Path(path)
    shape = tuple(int(n) for n in shape)
    dtype = np.dtype(dtype)
    axes = normalize_axes(axes, shape, path=path)
    if not path.name.lower().endswith(TIFF_SUFFIXES):
        raise InputError("streamed output must be a .tif or .tiff file", path)
    check_array(shape, dtype, path, allow_complex=False)
    sizes = clean_pixel_size(pixel_size, axes)
    options = _tiff_options(path, shape, dtype, axes, sizes, metadata)
    with atomic_path(path) as tmp:
        result = tifffile.imwrite(
            tmp, shape=shape, dtype=dtype, returnoffset=True, align=tifffile.TIFF.ALLOCATIONGRANULARITY, **options
        )
        if result is None:
            raise InputError("cannot stream this image into a TIFF file (its layout is not contiguous)", path)
        out = RawFileArray(tmp, dtype, shape, int(result[0]), writable=True, name=path)
        try:
            reserve_space(out.fileno(), tmp.stat().st_size, path)
            yield out
        finally:
            out.close()

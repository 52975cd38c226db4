"""OME-Zarr images in and out (NGFF 0.4 written; 0.4 and 0.5 read), through the optional zarr package.

A built-in plugin registered through the ``microrestore.plugins`` entry point. It registers its reader and
writer whether zarr is installed or not; using them without zarr is a one-line error that says how to
install it (``pip install 'microrestore[zarr]'``). Import-light: zarr is imported on first use.
"""

from __future__ import annotations

from typing import Any

from microrestore import hookimpl
from microrestore.plugins.registry import Reader, Writer

SUFFIXES = (".ome.zarr", ".zarr")


def read(path: Any, axes: str | None = None) -> Any:
    """Read the full-resolution level of an OME-Zarr image lazily (see :mod:`microrestore_zarr.omezarr`)."""
    from microrestore_zarr.omezarr import read_ome_zarr

    return read_ome_zarr(path, axes=axes)


def write(path: Any, data: Any, axes: str, pixel_size: Any = None, metadata: Any = None) -> Any:
    """Write an OME-Zarr image (one resolution level, chunks of at most 1024^2 pixels per plane)."""
    from microrestore_zarr.omezarr import write_ome_zarr

    return write_ome_zarr(path, data, axes, pixel_size=pixel_size, metadata=metadata)


def open_streamed(path: Any, shape: Any, dtype: Any, axes: str, pixel_size: Any = None) -> Any:
    """Create an OME-Zarr image and return a context manager yielding its writable array (streamed output)."""
    from microrestore_zarr.omezarr import create_ome_zarr

    return create_ome_zarr(path, shape, dtype, axes, pixel_size=pixel_size)


@hookimpl
def register_readers(register: Any) -> None:
    """Register the OME-Zarr reader."""
    register(Reader(name="ome-zarr", suffixes=SUFFIXES, read=read))


@hookimpl
def register_writers(register: Any) -> None:
    """Register the OME-Zarr writer (with streamed output)."""
    register(Writer(name="ome-zarr", suffixes=SUFFIXES, write=write, open_streamed=open_streamed))

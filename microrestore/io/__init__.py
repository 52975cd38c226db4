"""Image input and output: TIFF (ImageJ, OME, BigTIFF), MRC and plugin formats, axes, atomic writes.

Nothing here imports torch or the plugins (their formats are connected in :mod:`microrestore.formats`);
mrcfile is imported only when a file needs it.
"""

from __future__ import annotations

from microrestore.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from microrestore.io.axes import (
    AXES_LETTERS,
    CANONICAL_AXES,
    default_axes,
    fits_imagej_order,
    normalize_axes,
    squeeze_axes,
    transpose_from,
    transpose_to,
)
from microrestore.io.dtypes import (
    dtype_range,
    integer_valued,
    out_of_range_message,
    parse_dtype,
    to_dtype,
    working_dtype,
)
from microrestore.io.images import ImageData, check_finite, kept_metadata, output_memmap, read_image, write_image
from microrestore.io.inputs import IMAGE_SUFFIXES, expand_inputs, inputs_are_many, plan_outputs

__all__ = [
    "AXES_LETTERS",
    "CANONICAL_AXES",
    "IMAGE_SUFFIXES",
    "ImageData",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_finite",
    "default_axes",
    "dtype_range",
    "expand_inputs",
    "fits_imagej_order",
    "inputs_are_many",
    "integer_valued",
    "kept_metadata",
    "normalize_axes",
    "out_of_range_message",
    "output_memmap",
    "parse_dtype",
    "plan_outputs",
    "read_image",
    "squeeze_axes",
    "to_dtype",
    "transpose_from",
    "transpose_to",
    "working_dtype",
    "write_image",
]

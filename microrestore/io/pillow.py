"""Grayscale PNG and JPEG inputs, read with Pillow (installed with matplotlib).

Microscopy belongs in TIFF, but screenshots of a dataset, exports from a viewer and figures of a paper are
often PNG or JPEG. A grayscale one (8 or 16 bits per pixel, or RGB whose three channels are equal) is read as
a ``YX`` image; JPEG also warns that its lossy compression changed the intensities. Colour images, images
with transparency and animations are refused with a hint. They are inputs only: outputs are written as TIFF.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import InputError, MicrorestoreWarning

PILLOW_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")
"""Suffixes read through Pillow (read only: nothing is written in these formats)."""

_COLOUR_HINT = (
    "microrestore restores single-channel intensities: save each channel as a grayscale TIFF "
    "(e.g. Fiji: Image > Color > Split Channels)"
)


def read_pillow(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a grayscale PNG or JPEG: the ``YX`` pixels and the metadata (``format``).

    Parameters
    ----------
    path
        A ``.png``, ``.jpg`` or ``.jpeg`` file.

    Returns
    -------
    tuple
        The pixels (uint8, uint16, int32 or float32, as stored) and ``{"format": "png" | "jpeg"}``.

    Raises
    ------
    InputError
        For a file Pillow cannot read, a colour image, transparency or several frames.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - matplotlib depends on Pillow
        raise InputError("reading PNG/JPEG needs Pillow: pip install pillow", path) from None
    try:
        with Image.open(path) as image:
            image.load()
            if getattr(image, "n_frames", 1) > 1:
                raise InputError(f"{image.format} with {image.n_frames} frames; save the stack as TIFF", path)
            fmt = (image.format or path.suffix.lstrip(".")).lower()
            data = _grayscale(image, path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"not a readable PNG/JPEG image ({exc})", path) from None
    if fmt == "jpeg":
        warnings.warn(
            f"{path}: JPEG is lossy; its compression changed the intensities (block artefacts, smoothed noise), "
            "so restoration and scores are less faithful than from the microscope's TIFF",
            MicrorestoreWarning,
            stacklevel=3,
        )
    return data, {"format": fmt}


def _grayscale(image: Any, path: Path) -> np.ndarray:
    mode = image.mode
    if mode in ("L", "I", "F") or mode.startswith("I;16"):
        data = np.asarray(image)
        return data.astype(data.dtype.newbyteorder("="), copy=False)
    if mode == "1":
        return np.asarray(image.convert("L"))
    if mode == "P":
        has_alpha = "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        mode = image.mode
    if mode in ("LA", "RGBA", "PA"):
        alpha = np.asarray(image.getchannel("A"))
        if alpha.min() < 255:
            raise InputError(f"{mode} image with transparency; save it as a grayscale image without alpha", path)
        image = image.convert("L" if mode == "LA" else "RGB")
        mode = image.mode
    if mode == "L":
        return np.asarray(image)
    if mode == "RGB":
        rgb = np.asarray(image)
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return np.ascontiguousarray(rgb[..., 0])  # grayscale saved as RGB
        raise InputError(f"colour (RGB) image; {_COLOUR_HINT}", path)
    raise InputError(f"{mode} image; {_COLOUR_HINT}", path)

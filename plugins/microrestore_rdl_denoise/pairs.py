"""Even/odd pairs of a time-lapse (TiS) or a z-stack (SiS): numpy only, views wherever possible.

A stack of ``n`` frames (or slices) along the pairing axis gives ``n // 2`` pairs ``(2i, 2i + 1)``: the even
frame is the input, the odd one the target (a last unpaired frame is left out). How pairs become the
network's ``(C, *spatial)`` samples depends on the network:

- 2D network: every pair of planes is a sample pair (other axes, e.g. Z of a T x Z x Y x X time-lapse, give
  more planes);
- 3D network on a time-lapse of volumes (T x Z x Y x X, ``tis``): every pair of volumes is a sample pair;
- 3D network whose depth is the pairing axis (``sis`` on Z x Y x X, or ``tis`` on a 2D time-lapse T x Y x X,
  whose frames then play the role of z): the even sub-stack is the input volume and the odd sub-stack the
  target volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microrestore.plugin_api import ImageData, InputError

PAIR_AXIS = {"tis": "T", "sis": "Z"}
_WHAT = {"tis": "time-lapse (a T axis with at least 2 frames)", "sis": "z-stack (a Z axis with at least 2 slices)"}


@dataclass
class Pairs:
    """Input and target samples of one image, and how they were cut.

    Attributes
    ----------
    inputs, targets
        Channel-first samples ``(1, *spatial)``; ``inputs[i]`` pairs with ``targets[i]``.
    depth_axis
        The image axis that a 3D network takes as depth (``Z``, or ``T`` when a 2D time-lapse's frames play
        the role of z), ``None`` for 2D networks.
    n_pairs
        Frame (or slice) pairs along the pairing axis.
    """

    inputs: list[np.ndarray]
    targets: list[np.ndarray]
    depth_axis: str | None
    n_pairs: int


def default_ndim(mode: str, axes: str) -> int:
    """The network dimensions for data with ``axes``: 3 for z-stacks and time-lapses of volumes, else 2."""
    if mode == "sis":
        return 3
    return 3 if "Z" in axes else 2


def depth_axis_for(mode: str, axes: str, ndim: int) -> str | None:
    """Which image axis a 3D network takes as depth (``None`` for 2D networks)."""
    if ndim == 2:
        return None
    if "Z" in axes:
        return "Z"
    return PAIR_AXIS[mode]


def even_odd(data: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Views of the even (0, 2, ...) and odd (1, 3, ...) positions of ``axis``, of equal length.

    Parameters
    ----------
    data
        Any array (a memory map stays unread).
    axis
        The pairing axis.

    Returns
    -------
    tuple of numpy.ndarray
        ``(even, odd)``: position ``i`` of ``even`` is ``2 i`` of ``data``, of ``odd`` ``2 i + 1``.
    """
    n = data.shape[axis] // 2
    lead = (slice(None),) * (axis % data.ndim)
    return data[(*lead, slice(0, 2 * n, 2))], data[(*lead, slice(1, 2 * n, 2))]


def make_pairs(image: ImageData, mode: str, ndim: int) -> Pairs:
    """Cut an image into even/odd sample pairs for a ``ndim``-D network (see the module docstring).

    Raises
    ------
    InputError
        The image has no pairing axis (a single 2D image, a z-stack in ``tis`` mode, ...), fewer than two
        frames along it, or channels.
    """
    axis_letter = PAIR_AXIS[mode]
    axes = image.axes
    if "C" in axes and image.data.shape[axes.index("C")] > 1:
        raise InputError("rdl-denoise takes single-channel images; split the channels first", image.path)
    if axis_letter not in axes:
        other = "sis" if mode == "tis" else "tis"
        hint = f" (this image has a {PAIR_AXIS[other]} axis: use mode {other})" if PAIR_AXIS[other] in axes else ""
        raise InputError(f"mode {mode} needs a {_WHAT[mode]}; the image has axes {axes}{hint}", image.path)
    axis = axes.index(axis_letter)
    n = image.data.shape[axis]
    if n < 2:
        raise InputError(f"mode {mode} needs a {_WHAT[mode]}; the image has {n} along {axis_letter}", image.path)
    from microrestore.plugin_api import samples_from_image

    even, odd = even_odd(image.data, axis)
    depth = depth_axis_for(mode, axes, ndim)
    sample_axes = axes
    if depth is not None and depth != "Z":  # a 2D time-lapse whose frames a 3D network takes as depth
        sample_axes = axes.replace(depth, "Z")
    inputs = samples_from_image(ImageData(even, sample_axes, path=image.path), ndim)
    targets = samples_from_image(ImageData(odd, sample_axes, path=image.path), ndim)
    return Pairs(inputs=inputs, targets=targets, depth_axis=depth, n_pairs=n // 2)

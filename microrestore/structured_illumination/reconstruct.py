"""From a raw SIM file to SR images: checks, stacks, parameters (given or estimated), OTF, Wiener.

These are the building blocks every SIM method shares (see :mod:`microrestore.structured_illumination` for the
interface):
:func:`raw_stacks`, :func:`resolve_params`, :func:`prepare_stacks` and :func:`wiener_sim`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from microrestore.errors import InputError
from microrestore.structured_illumination.bands import apodize_borders, equalize_orientations, to_stacks
from microrestore.structured_illumination.params import SIMParams

if TYPE_CHECKING:
    from microrestore.io import ImageData
    from microrestore.structured_illumination.options import SIMOptions
    from microrestore.structured_illumination.otf import OTF
    from microrestore.structured_illumination.wiener_auto import WienerChoice

__all__ = ["output_axes", "prepare_stacks", "raw_stacks", "resolve_params", "wiener_sim"]


def raw_stacks(image: ImageData, options: SIMOptions) -> torch.Tensor:
    """The raw frames of ``image`` as float32 stacks ``(n, n_orientations, n_phases, Y, X)`` (CPU).

    Every axis other than ``Y`` and ``X`` (``T``, ``Z``, ``C``, in the file's order) is flattened into the frame
    sequence, which must hold a whole number of stacks of ``n_orientations * n_phases`` frames in
    ``options.order``.

    Raises
    ------
    InputError
        One line naming the file: no ``Y``/``X`` axes, a single frame, complex data, or a frame count that is
        not a multiple of the stack size.
    """
    data = image.data
    axes = str(image.axes).upper()
    if len(axes) != data.ndim or "Y" not in axes or "X" not in axes:
        raise InputError(
            f"SIM needs an image with Y and X axes, got axes {image.axes!r} for shape {data.shape}", image.path
        )
    if np.iscomplexobj(data) or data.dtype == bool:
        raise InputError(f"SIM raw frames must be real numbers, got {data.dtype}", image.path)
    others = [i for i, a in enumerate(axes) if a not in "YX"]
    order = [*others, axes.index("Y"), axes.index("X")]
    frames = np.transpose(np.asarray(data), order).reshape(-1, data.shape[axes.index("Y")], data.shape[axes.index("X")])
    n = options.n_frames
    if not others or frames.shape[0] % n:
        raise InputError(
            f"raw SIM needs a multiple of {options.n_orientations} orientations x {options.n_phases} phases = {n} "
            f"frames, got {frames.shape[0]} (axes {axes}, shape {tuple(data.shape)}); check --axes and --order",
            image.path,
        )
    if min(frames.shape[-2:]) < 32:
        raise InputError(f"SIM frames must be at least 32 x 32 pixels, got {frames.shape[-2:]}", image.path)
    tensor = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    return to_stacks(tensor, options.n_orientations, options.n_phases, options.order)


def output_axes(n_stacks: int) -> str:
    """Axes of the SR output: ``YX`` for one stack, ``TYX`` for a time series."""
    return "YX" if n_stacks == 1 else "TYX"


def prepare_stacks(stacks: torch.Tensor, options: SIMOptions) -> torch.Tensor:
    """Orientation equalisation and border apodisation, as the options ask."""
    if options.equalize:
        stacks = equalize_orientations(stacks)
    if options.border_px:
        stacks = apodize_borders(stacks, options.border_px)
    return stacks


def resolve_params(
    stacks: torch.Tensor,
    options: SIMOptions,
    otf: OTF,
    pixel_size_nm: float,
    path: Any = None,
) -> list[SIMParams]:
    """The illumination parameters: from ``options.params`` (a JSON file), else estimated from the stacks.

    Returns one :class:`SIMParams` per stack with ``options.per_stack``, else one for all.

    Raises
    ------
    InputError
        A parameter file that does not match the stacks, or estimation without the excitation optics.
    """
    n_or, n_ph = int(stacks.shape[1]), int(stacks.shape[2])
    if options.params is not None:
        params = SIMParams.load(options.params)
        if (params.n_orientations, params.n_phases) != (n_or, n_ph):
            raise InputError(
                f"the parameters are for {params.n_orientations} orientations x {params.n_phases} phases, the raw "
                f"stacks have {n_or} x {n_ph}",
                options.params,
            )
        return [params]
    nominal = options.nominal_k_per_um()
    if nominal is None:
        raise InputError(
            "SIM parameter estimation needs the excitation optics: give --na and --wavelength (or --na-exc and "
            "--wavelength-exc), or a parameter file with --params",
            path,
        )
    from microrestore.structured_illumination.estimate import estimate_params

    kwargs = {"order": options.order, "equalize": options.equalize, "border_px": options.border_px}
    if options.per_stack:
        return [estimate_params(s, otf, pixel_size_nm, nominal, options.estimation, **kwargs) for s in stacks.unbind(0)]
    return [estimate_params(stacks, otf, pixel_size_nm, nominal, options.estimation, **kwargs)]


def wiener_sim(
    image: ImageData,
    options: SIMOptions,
    *,
    device: torch.device | str = "cpu",
    out: Any = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_wiener: Callable[[WienerChoice], None] | None = None,
) -> tuple[Any, list[SIMParams]]:
    """Wiener-SIM reconstruction of every raw stack of ``image``.

    Parameters
    ----------
    image
        Raw frames (see :func:`raw_stacks`).
    options
        SIM options.
    device
        Torch device for the computation.
    out
        Optional destination of shape ``(n, 2 Y, 2 X)`` (array or output sink), written stack by stack.
    on_progress
        Called as ``on_progress(done, total)`` after each batch of stacks.
    on_wiener
        Called with the :class:`~microrestore.structured_illumination.wiener_auto.WienerChoice` (the constant used,
        given or chosen from the noise for ``options.wiener == "auto"``).

    Returns
    -------
    tuple
        The SR images (``out``, or a new float32 array ``(n, 2 Y, 2 X)``) and the parameters used.
    """
    from microrestore.structured_illumination.otf import load_otf
    from microrestore.structured_illumination.wiener import WienerFilter
    from microrestore.structured_illumination.wiener_auto import choose_wiener

    stacks = raw_stacks(image, options)
    pixel_size_nm = options.resolved_pixel_size_nm(image.pixel_size, image.path)
    otf = load_otf(options, pixel_size_nm)
    # the estimation runs on the device too, on the mean of the stacks unless each is fitted on its own
    fit_on = stacks if options.per_stack else stacks.mean(dim=0, keepdim=True)
    params = resolve_params(fit_on.to(device), options, otf, pixel_size_nm, image.path)
    n, ny, nx = int(stacks.shape[0]), int(stacks.shape[-2]), int(stacks.shape[-1])
    if out is None:
        out = np.empty((n, 2 * ny, 2 * nx), dtype=np.float32)
    elif tuple(out.shape) != (n, 2 * ny, 2 * nx):
        raise ValueError(f"out has shape {tuple(out.shape)}, the SR images {(n, 2 * ny, 2 * nx)}")
    choice = choose_wiener(options, stacks, otf, pixel_size_nm)
    if on_wiener is not None:
        on_wiener(choice)
    kwargs = {
        "wiener": choice.value,
        "apodization": options.apodization,
        "apodization_cutoff": options.apodization_cutoff,
        "apodization_bend": options.apodization_bend,
        "notch_strength": options.notch_strength,
        "notch_width_per_um": options.notch_width_per_um,
        "modulation_weighting": options.modulation_weighting,
        "device": device,
    }
    filters = [WienerFilter(p, otf, (ny, nx), pixel_size_nm, **kwargs) for p in params]
    batch = max(1, min(16, math.floor(2**28 / (18 * options.n_frames * ny * nx * 4)) or 1))
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        chunk = prepare_stacks(stacks[start:stop], options)
        if len(filters) == 1:
            sr = filters[0](chunk, batch=batch)
        else:
            sr = torch.cat([filters[i](chunk[i - start]) for i in range(start, stop)])
        out[start:stop] = sr.cpu().numpy()
        if on_progress is not None:
            on_progress(stop, n)
    return out, params

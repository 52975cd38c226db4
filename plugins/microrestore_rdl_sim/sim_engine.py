"""The classical SIM engine as rDL-SIM uses it: raw stacks, parameters, OTF, Wiener.

The engine is :mod:`microrestore.structured_illumination`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from microrestore.errors import InputError
from microrestore.structured_illumination.options import SIMOptions
from microrestore.structured_illumination.otf import OTF, load_otf
from microrestore.structured_illumination.params import SIMParams

if TYPE_CHECKING:
    from microrestore.structured_illumination.wiener_auto import WienerChoice


def stacks_from_image(image: Any, options: SIMOptions) -> torch.Tensor:
    """Raw stacks ``(n, n_orientations, n_phases, Y, X)`` (float32, CPU) of an image, checked as ``wiener-sim`` does."""
    from microrestore.api import check_image
    from microrestore.structured_illumination.reconstruct import raw_stacks

    check_image(image)
    return raw_stacks(image, options)


def read_raw_stacks(path: Path, options: SIMOptions, axes: str | None = None) -> tuple[np.ndarray, float]:
    """Read a raw SIM file as float32 stacks ``(n, n_orientations, n_phases, Y, X)`` and its pixel size (nm)."""
    from microrestore.io import read_image

    image = read_image(path, axes=axes)
    return stacks_from_image(image, options).numpy(), options.resolved_pixel_size_nm(image.pixel_size, path)


def write_frames(path: Path, stacks: torch.Tensor, order: str, image: Any) -> Path:
    """Write stacks ``(n, n_or, n_ph, Y, X)`` as float32 frames in ``order``, with the image's axes if 3D."""
    from microrestore.io import write_image
    from microrestore.structured_illumination.bands import stacks_to_frames

    frames = stacks_to_frames(stacks, order).numpy().astype(np.float32)
    axes = image.axes if len(image.axes) == 3 and image.axes.endswith("YX") else "TYX"
    return write_image(path, frames, axes, pixel_size=image.pixel_size or None)


def nominal_k(options: SIMOptions) -> float:
    """``2 NA_exc / lambda_exc`` per micrometre, or a one-line error when the optics are missing."""
    k = options.nominal_k_per_um()
    if k is None:
        raise InputError("rdl-sim needs the optics to estimate the illumination: give na and wavelength_nm")
    return k


def load_otf_for(options: SIMOptions, pixel_size_nm: float) -> OTF:
    """The detection OTF of the options (file or optics)."""
    return load_otf(options, pixel_size_nm)


def estimate(
    stack: np.ndarray | torch.Tensor, options: SIMOptions, pixel_size_nm: float, quiet: bool = True
) -> SIMParams:
    """Illumination parameters of one raw stack ``(n_or, n_ph, Y, X)`` (fallback warnings silenced if ``quiet``)."""
    from microrestore.structured_illumination.estimate import estimate_params

    tensor = torch.as_tensor(np.asarray(stack) if not isinstance(stack, torch.Tensor) else stack)
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        return estimate_params(
            tensor,
            load_otf_for(options, pixel_size_nm),
            pixel_size_nm,
            nominal_k(options),
            options.estimation,
            order=options.order,
            equalize=options.equalize,
            border_px=options.border_px,
        )


def describe(params: SIMParams) -> Any:
    """A short line per orientation (angle, |k|, modulation) for messages."""
    return "; ".join(
        f"{o.angle_deg:.2f} deg, |k| {o.k_cycles_per_pixel:.4f}/px, m {o.modulation:.2f}" for o in params.orientations
    )


def wiener(
    stacks: torch.Tensor,
    params: list[SIMParams],
    options: SIMOptions,
    pixel_size_nm: float,
    device: torch.device | str = "cpu",
    on_wiener: Callable[[WienerChoice], None] | None = None,
) -> torch.Tensor:
    """Wiener-SIM of stacks ``(n, n_or, n_ph, Y, X)`` as ``wiener-sim`` does it (one parameter set, or one per stack).

    The stacks are prepared (orientation equalisation, border taper) and reconstructed with
    :class:`~microrestore.structured_illumination.wiener.WienerFilter`, whose keyword options are taken from
    ``options``; the Wiener constant ``"auto"`` is chosen from the noise of these stacks (the denoised frames in
    rDL-SIM) and handed to ``on_wiener``.
    """
    import inspect

    from microrestore.structured_illumination.reconstruct import prepare_stacks
    from microrestore.structured_illumination.wiener import WienerFilter
    from microrestore.structured_illumination.wiener_auto import choose_wiener

    otf = load_otf_for(options, pixel_size_nm)
    fixed = {"params", "otf", "shape_yx", "pixel_size_nm", "device"}
    names = [n for n in inspect.signature(WienerFilter).parameters if n not in fixed]
    kwargs = {n: getattr(options, n) for n in names if hasattr(options, n)}
    choice = choose_wiener(options, stacks, otf, pixel_size_nm)
    kwargs["wiener"] = choice.value
    if on_wiener is not None:
        on_wiener(choice)
    shape = (int(stacks.shape[-2]), int(stacks.shape[-1]))
    x = prepare_stacks(stacks.float(), options)
    filters = [WienerFilter(p, otf, shape, pixel_size_nm, device=device, **kwargs) for p in params]
    if len(filters) == 1:
        return filters[0](x).cpu()
    return torch.cat([f(x[i : i + 1]).cpu() for i, f in enumerate(filters)])

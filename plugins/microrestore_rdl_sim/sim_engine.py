"""The classical SIM engine (:mod:`microrestore.sim`) as rDL-SIM uses it: raw stacks, parameters, OTF, Wiener."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microrestore.errors import InputError
from microrestore.sim.options import SIMOptions
from microrestore.sim.otf import OTF, load_otf
from microrestore.sim.params import SIMParams


def stacks_from_image(image: Any, options: SIMOptions) -> tuple[np.ndarray, float | None]:
    """Raw stacks ``(n, n_orientations, n_phases, Y, X)`` (float32) of an image, and its pixel size (nm) if known.

    Every axis but the last two holds frames, ``n_orientations * n_phases`` per stack, in ``options.order``.
    """
    from microrestore.api import check_image
    from microrestore.sim.bands import to_stacks

    check_image(image)
    data = np.asarray(image.data, dtype=np.float32)
    if data.ndim < 3:
        raise InputError(f"a raw SIM image needs {options.n_frames} frames, got one {data.ndim}D image", image.path)
    frames = data.reshape(-1, *data.shape[-2:])
    if frames.shape[0] % options.n_frames:
        raise InputError(
            f"{frames.shape[0]} frames are not a whole number of raw stacks of {options.n_frames} "
            f"({options.n_orientations} orientations x {options.n_phases} phases)",
            image.path,
        )
    stacks = to_stacks(torch.from_numpy(frames), options.n_orientations, options.n_phases, options.order)
    um = (image.pixel_size or {}).get("X") or (image.pixel_size or {}).get("Y")
    return stacks.numpy(), (float(um) * 1000.0 if um else None)


def read_raw_stacks(path: Path, options: SIMOptions, axes: str | None = None) -> tuple[np.ndarray, float]:
    """Read a raw SIM file as float32 stacks ``(n, n_orientations, n_phases, Y, X)`` and its pixel size (nm)."""
    from microrestore.io import read_image

    image = read_image(path, axes=axes)
    stacks, _ = stacks_from_image(image, options)
    return stacks, options.resolved_pixel_size_nm(image.pixel_size, path)


def write_frames(path: Path, stacks: torch.Tensor, order: str, image: Any) -> Path:
    """Write stacks ``(n, n_or, n_ph, Y, X)`` as float32 frames in ``order``, with the image's axes if 3D."""
    from microrestore.io import write_image
    from microrestore.sim.bands import stacks_to_frames

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
    from microrestore.sim.estimate import estimate_params

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


def wiener(stacks: torch.Tensor, params: list[SIMParams], options: SIMOptions, pixel_size_nm: float) -> torch.Tensor:
    """Wiener-SIM of stacks ``(n, n_or, n_ph, Y, X)``: one filter per parameter set (one set, or one per stack)."""
    from microrestore.sim.bands import apodize_borders, equalize_orientations
    from microrestore.sim.wiener import WienerFilter

    otf = load_otf_for(options, pixel_size_nm)
    x = stacks.float()
    if options.equalize:
        x = equalize_orientations(x)
    x = apodize_borders(x, options.border_px)

    def make(p: SIMParams) -> WienerFilter:
        return WienerFilter(
            p,
            otf,
            (int(x.shape[-2]), int(x.shape[-1])),
            pixel_size_nm,
            wiener=options.wiener,
            apodization=options.apodization,
            apodization_cutoff=options.apodization_cutoff,
            apodization_bend=options.apodization_bend,
            notch_strength=options.notch_strength,
            notch_width_per_um=options.notch_width_per_um,
        )

    if len(params) == 1:
        return make(params[0])(x).cpu()
    return torch.cat([make(p)(x[i : i + 1]).cpu() for i, p in enumerate(params)])

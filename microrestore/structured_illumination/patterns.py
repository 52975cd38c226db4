"""Pattern-modulated images: the physics prior of rDL-SIM (Qiao et al., Nat. Biotechnol. 2022), step (c).

From an SR estimate and the illumination parameters, rDL-SIM predicts what each raw frame should look like
without noise, and hands these images to its denoiser beside the noisy frames. On the 2x (SR) grid:

- pattern of orientation ``d`` and phase ``p``: ``|exp(i(k_d.r + phi_dp)) + exp(-i k_d.r)|**2`` normalised to
  [0, 1], i.e. ``(1 + cos(2 pi K_d.r + phi_dp)) / 2`` where ``K_d = 2 k_d`` is the pattern's spatial frequency
  (two interfering beams of wave vectors +-k_d);
- generated image = ``|IFFT(FFT(pattern x SR) x OTF)|``, with the detection OTF of the 2x grid;
- resized to the raw grid (2 x 2 pixel means: the bilinear 2x reduction of the authors' ``cv2.resize`` with
  pixel-centre alignment, and the camera's pixel integration), then min-max normalised over all frames.

Conventions are those of the simulator and of :mod:`microrestore.structured_illumination`'s parameters: wave vectors
``(ky, kx)`` in cycles per raw pixel, phases in radians, the pattern ``1 + m cos(2 pi (ky y + kx x) + phase)``
with ``x``, ``y`` raw pixel indices (origin at the centre of raw pixel (0, 0)); frame ``j`` of the stack is
orientation ``j // n_phases``, phase ``j % n_phases``. A pixel ``j`` of the 2x grid has its centre at raw
coordinate ``j / 2 - 0.25``.

The modulation depth is not used: the generated images carry fully modulated patterns, as in the authors' code
(the denoiser learns the contrast from the raw frames).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from microrestore.errors import InputError

if TYPE_CHECKING:
    from microrestore.structured_illumination.otf import OTF
    from microrestore.structured_illumination.params import SIMParams

__all__ = [
    "equalize_orientations",
    "fine_grid_otf",
    "generate_from_params",
    "illumination_patterns",
    "minmax",
    "pattern_modulated_images",
]


def _tensor(x: Any, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device if device is not None else x.device, dtype=dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)


def minmax(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Scale ``x`` to [0, 1] by its own minimum and maximum (the authors' ``prctile_norm(x, 0, 100)``)."""
    low, high = x.min(), x.max()
    return (x - low) / (high - low + eps)


def illumination_patterns(
    shape_fine: tuple[int, int],
    k_vectors: ArrayLike,
    phases: ArrayLike,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Normalised two-beam interference patterns on the 2x grid, one per raw frame.

    Parameters
    ----------
    shape_fine
        ``(2 Y, 2 X)``: the shape of the SR grid.
    k_vectors
        Pattern wave vectors ``(n_orientations, 2)`` as ``(ky, kx)`` in cycles per raw pixel.
    phases
        Phases ``(n_orientations, n_phases)`` in radians, or ``(n_orientations,)``: then 3 phases
        ``phase + 2 pi p / 3``.
    device
        Torch device of the result.

    Returns
    -------
    torch.Tensor
        float32 ``(n_orientations * n_phases, 2 Y, 2 X)`` in [0, 1], orientation-major.
    """
    kv = np.asarray(k_vectors, dtype=np.float64).reshape(-1, 2)
    ph = np.asarray(phases, dtype=np.float64)
    if ph.ndim == 1:
        ph = ph[:, None] + 2.0 * np.pi * np.arange(3)[None, :] / 3.0
    if ph.ndim != 2 or ph.shape[0] != kv.shape[0]:
        raise InputError(f"phases must be (n_orientations, n_phases) = ({kv.shape[0]}, n), got shape {ph.shape}")
    if not (np.isfinite(kv).all() and np.isfinite(ph).all()):
        raise InputError("the illumination parameters contain NaN or infinite values")
    fy, fx = (int(s) for s in shape_fine)
    dev = torch.device(device) if device is not None else None
    yy = (torch.arange(fy, dtype=torch.float64, device=dev) / 2.0 - 0.25)[:, None]
    xx = (torch.arange(fx, dtype=torch.float64, device=dev) / 2.0 - 0.25)[None, :]
    out = torch.empty((ph.size, fy, fx), dtype=torch.float32, device=dev)
    for o, (ky, kx) in enumerate(kv):
        arg = 2.0 * math.pi * (ky * yy + kx * xx)
        for p in range(ph.shape[1]):
            # |e^{i(a + phi)} + e^{-ia}|^2 = 2 + 2 cos(2a + phi), normalised to [0, 1]
            out[o * ph.shape[1] + p] = (0.5 + 0.5 * torch.cos(arg + float(ph[o, p]))).float()
    return out


def pattern_modulated_images(
    sr: ArrayLike | torch.Tensor,
    k_vectors: ArrayLike,
    phases: ArrayLike,
    otf_fine: ArrayLike | torch.Tensor,
    normalize: bool = True,
) -> torch.Tensor:
    """Generate the pattern-modulated images of rDL-SIM from an SR image and the illumination parameters.

    Parameters
    ----------
    sr
        SR image ``(2 Y, 2 X)`` (min-max normalised by the caller, as the authors do).
    k_vectors, phases
        Illumination parameters (see :func:`illumination_patterns`).
    otf_fine
        Detection OTF on the 2x grid, shape ``(2 Y, 2 X)``, zero frequency at index ``(0, 0)`` (numpy FFT
        layout), e.g. :func:`microrestore.optics.otf.ideal_otf` at half the raw pixel size.
    normalize
        Min-max normalise the result over all frames (the authors'); ``False`` keeps the raw intensities.

    Returns
    -------
    torch.Tensor
        float32 ``(n_orientations * n_phases, Y, X)`` on the device of ``sr``, orientation-major.

    Raises
    ------
    InputError
        An SR image or OTF of the wrong shape (the 2x grid must have even sides).
    """
    image = _tensor(sr)
    if image.dim() != 2 or image.shape[0] % 2 or image.shape[1] % 2:
        raise InputError(f"the SR image must be 2D with even sides (the 2x grid), got shape {tuple(image.shape)}")
    otf = _tensor(otf_fine, image.device, torch.complex64 if torch.is_complex(_tensor(otf_fine)) else torch.float32)
    if tuple(otf.shape) != tuple(image.shape):
        raise InputError(f"the OTF must have the SR grid's shape {tuple(image.shape)}, got {tuple(otf.shape)}")
    patterns = illumination_patterns(tuple(image.shape), k_vectors, phases, image.device)
    spectrum = torch.fft.fft2(patterns * image) * otf
    generated = torch.fft.ifft2(spectrum).abs()
    fy, fx = image.shape
    raw = generated.reshape(-1, fy // 2, 2, fx // 2, 2).mean(dim=(2, 4))
    return minmax(raw) if normalize else raw


def equalize_orientations(frames: torch.Tensor | np.ndarray, n_phases: int = 3) -> torch.Tensor | np.ndarray:
    """Scale each orientation's frames so that their mean equals the mean of orientation 0's frames.

    The authors equalise the raw frames (network inputs and targets) this way before denoising, so that
    differences in pattern power between orientations do not reach the network.

    Parameters
    ----------
    frames
        ``(n_orientations * n_phases, Y, X)`` (numpy or torch).
    n_phases
        Phases per orientation.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        The equalised frames (a new array of the same type).
    """
    n = frames.shape[0]
    if n % n_phases:
        raise InputError(f"{n} frames are not a whole number of orientations of {n_phases} phases")
    grouped = frames.reshape(n // n_phases, -1)
    means = grouped.mean(axis=1) if isinstance(grouped, np.ndarray) else grouped.mean(dim=1)
    if not bool((means > 0).all()):
        raise InputError("orientations with a non-positive mean intensity cannot be equalised")
    scale = (means[0] / means).reshape(-1, 1)
    return (grouped * scale).reshape(frames.shape)


def fine_grid_otf(
    otf: OTF, shape_yx: tuple[int, int], pixel_size_nm: float, device: torch.device | str | None = None
) -> torch.Tensor:
    """The detection OTF on the 2x grid of raw frames ``shape_yx`` with raw pixel ``pixel_size_nm``.

    The camera pixel's transfer function of a computed OTF is left out: the 2 x 2 binning of the generated
    images is the pixel integration. (A measured OTF carries it already, as in the authors' code.)
    """
    from dataclasses import replace

    fine = (2 * int(shape_yx[0]), 2 * int(shape_yx[1]))
    return replace(otf, pixel_um=None).grid(fine, pixel_size_nm / 2.0, device=device)


def generate_from_params(sr: torch.Tensor, params: SIMParams, otf_fine: torch.Tensor) -> torch.Tensor:
    """Pattern-modulated images for a :class:`~microrestore.structured_illumination.params.SIMParams`.

    Min-max normalised over all frames.

    Parameters
    ----------
    sr
        SR image ``(2 Y, 2 X)``, min-max normalised.
    params
        Illumination parameters (their per-frame phases are used).
    otf_fine
        Detection OTF on the 2x grid (:func:`fine_grid_otf`).

    Returns
    -------
    torch.Tensor
        float32 ``(n_orientations, n_phases, Y, X)``.
    """
    out = pattern_modulated_images(sr, params.k_vectors(), params.phases(), otf_fine)
    return out.reshape(params.n_orientations, params.n_phases, *out.shape[-2:])

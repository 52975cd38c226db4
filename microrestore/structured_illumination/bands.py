"""Raw SIM stacks and their bands: frame orders, border apodisation, band separation, the 2x grid.

A raw frame of orientation ``d`` and phase ``p`` is, in Fourier space (``q`` in cycles per raw pixel),

``D_dp(q) = OTF(q) [S(q) + (m_d / 2) e^{i phi_dp} S(q - k_d) + (m_d / 2) e^{-i phi_dp} S(q + k_d)]``.

With the phase matrix ``M_d[p] = (1, e^{i phi_dp}, e^{-i phi_dp})``, the frames are ``D_d = M_d B_d`` for the
bands ``B_d = (OTF S, (m/2) OTF S(. - k), (m/2) OTF S(. + k))``; :func:`separate_bands` applies the
(pseudo-)inverse of ``M_d``, :func:`mix_bands` the forward model. Band order everywhere: ``0, +1, -1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from microrestore.errors import InputError

__all__ = [
    "apodize_borders",
    "equalize_orientations",
    "fine_coordinates",
    "mix_bands",
    "nyquist_mask",
    "pad_full_spectrum",
    "pad_spectrum",
    "phase_matrix",
    "separate_bands",
    "separation_matrix",
    "stacks_to_frames",
    "to_stacks",
    "upsample2",
    "widefield",
]


def to_stacks(frames: torch.Tensor, n_orientations: int, n_phases: int, order: str = "angle-major") -> torch.Tensor:
    """Reshape ``(N, Y, X)`` frames into stacks ``(N / n, n_orientations, n_phases, Y, X)``.

    Parameters
    ----------
    frames
        Raw frames, ``N`` a multiple of ``n = n_orientations * n_phases``.
    n_orientations, n_phases
        Pattern orientations and phases per stack.
    order
        ``angle-major`` (orientation-major) or ``phase-major``.
    """
    n = n_orientations * n_phases
    if frames.dim() != 3 or frames.shape[0] % n:
        raise InputError(
            f"a raw SIM series needs a multiple of {n_orientations} x {n_phases} = {n} frames, "
            f"got {frames.shape[0] if frames.dim() == 3 else tuple(frames.shape)}"
        )
    shape = frames.shape[-2:]
    if order == "angle-major":
        return frames.reshape(-1, n_orientations, n_phases, *shape)
    if order == "phase-major":
        return frames.reshape(-1, n_phases, n_orientations, *shape).transpose(1, 2)
    raise InputError(f"frame order must be angle-major or phase-major, got {order!r}")


def stacks_to_frames(stacks: torch.Tensor, order: str = "angle-major") -> torch.Tensor:
    """Inverse of :func:`to_stacks`: ``(n, n_or, n_ph, Y, X)`` to ``(n * n_or * n_ph, Y, X)`` frames."""
    if order == "phase-major":
        stacks = stacks.transpose(1, 2)
    elif order != "angle-major":
        raise InputError(f"frame order must be angle-major or phase-major, got {order!r}")
    return stacks.reshape(-1, *stacks.shape[-2:])


def apodize_borders(frames: torch.Tensor, width: int) -> torch.Tensor:
    """Blend opposite borders into each other so the frames are continuous across the FFT's wrap-around.

    Over ``width`` pixels on each side, a frame is pulled towards the mean of its two opposite edges with a
    ``1 - sin`` ramp (Gustafsson's raw-image apodisation, as in the rDL-SIM code): it is linear, the same for
    every frame, and leaves the interior untouched, so it creates no modulation and no intensity offset.

    Parameters
    ----------
    frames
        ``(..., Y, X)`` real tensor.
    width
        Border width in pixels (0: unchanged); at most a quarter of each side is used.
    """
    out = frames.clone()
    for axis in (-2, -1):
        n = out.shape[axis]
        w = min(int(width), n // 4)
        if w <= 0:
            continue
        ramp = 1.0 - torch.sin((torch.arange(w, device=out.device, dtype=torch.float32) + 0.5) / w * math.pi / 2)
        shape = [1] * out.dim()
        shape[axis] = w
        ramp = ramp.reshape(shape)
        low = out.narrow(axis, 0, w)
        high = out.narrow(axis, n - w, w).flip(axis)
        diff = (high - low) / 2 * ramp
        new_low = low + diff
        new_high = (high - diff).flip(axis)
        out = torch.cat([new_low, out.narrow(axis, w, n - 2 * w), new_high], dim=axis)
    return out


def equalize_orientations(stacks: torch.Tensor) -> torch.Tensor:
    """Scale each orientation of each stack so its mean intensity equals the stack's mean.

    Differences in illumination power (or bleaching) between orientations otherwise leak into the
    reconstruction as stripes. Stacks whose orientation means are not all positive are left unchanged.

    Parameters
    ----------
    stacks
        ``(n, n_orientations, n_phases, Y, X)``.
    """
    means = stacks.mean(dim=(2, 3, 4), keepdim=True, dtype=torch.float64)
    total = means.mean(dim=1, keepdim=True)
    ok = (means > 0).all(dim=1, keepdim=True)
    scale = torch.where(ok, total / means.clamp_min(1e-30), torch.ones_like(means))
    return stacks * scale.to(stacks.dtype)


def phase_matrix(phases: torch.Tensor) -> torch.Tensor:
    """The forward phase matrix: ``M[..., p, :] = (1, e^{i phi_p}, e^{-i phi_p})`` for phases ``(..., n_ph)``."""
    phases = phases.to(torch.float64)
    e = torch.exp(1j * phases)
    return torch.stack([torch.ones_like(e), e, e.conj()], dim=-1)


def separation_matrix(phases: torch.Tensor | Sequence[Sequence[float]]) -> torch.Tensor:
    """The band-separation matrix, the (pseudo-)inverse of :func:`phase_matrix`: ``(..., 3, n_ph)`` complex128.

    Raises
    ------
    InputError
        When the phases do not separate the bands (two phases equal modulo 2 pi, or fewer than 3).
    """
    ph = phases.to(torch.float64) if isinstance(phases, torch.Tensor) else torch.as_tensor(np.asarray(phases, float))
    if ph.shape[-1] < 3:
        raise InputError(f"band separation needs at least 3 phases per orientation, got {ph.shape[-1]}")
    m = phase_matrix(ph)
    s = torch.linalg.svdvals(m)
    if bool((s[..., -1] < 1e-3 * s[..., 0]).any()):
        raise InputError("the SIM phases do not separate the bands (two phases are equal modulo 2 pi)")
    return torch.linalg.pinv(m)


def separate_bands(spectra: torch.Tensor, phases: torch.Tensor | Sequence[Sequence[float]]) -> torch.Tensor:
    """Separate the bands of each orientation.

    Parameters
    ----------
    spectra
        Fourier transforms of the frames, ``(..., n_orientations, n_phases, Y, X)`` complex.
    phases
        ``(n_orientations, n_phases)`` radians.

    Returns
    -------
    torch.Tensor
        ``(..., n_orientations, 3, Y, X)``: bands ``0, +1, -1`` in the dtype of ``spectra``.
    """
    sep = separation_matrix(phases).to(device=spectra.device, dtype=spectra.dtype)
    return torch.einsum("obp,...opyx->...obyx", sep, spectra)


def mix_bands(bands: torch.Tensor, phases: torch.Tensor | Sequence[Sequence[float]]) -> torch.Tensor:
    """The forward model of :func:`separate_bands`: frames' spectra ``(..., n_or, n_ph, Y, X)`` from bands."""
    ph = phases if isinstance(phases, torch.Tensor) else torch.as_tensor(np.asarray(phases, float))
    m = phase_matrix(ph).to(device=bands.device, dtype=bands.dtype)
    return torch.einsum("opb,...obyx->...opyx", m, bands)


def nyquist_mask(shape_yx: tuple[int, int], device: torch.device | str | None = None) -> torch.Tensor:
    """1 on an ``rfft2`` grid except the Nyquist row / column of even sides (ambiguous on the 2x grid)."""
    ny, nx = shape_yx
    mask = torch.ones((ny, nx // 2 + 1), dtype=torch.float32, device=device)
    if ny % 2 == 0:
        mask[ny // 2] = 0
    if nx % 2 == 0:
        mask[:, nx // 2] = 0
    return mask


def offset_ramp(shape_yx: tuple[int, int], device: torch.device | str | None = None) -> torch.Tensor:
    """``rfft2``-grid factor moving an image by -1/4 raw pixel: the 2x grid's pixel ``j`` sits at ``j / 2 - 1/4``."""
    ny, nx = shape_yx
    qy = torch.fft.fftfreq(ny, device=device, dtype=torch.float64)[:, None]
    qx = torch.fft.rfftfreq(nx, device=device, dtype=torch.float64)[None, :]
    return torch.exp(-2j * math.pi * 0.25 * (qy + qx)).to(torch.complex64)


def pad_spectrum(half: torch.Tensor, shape_yx: tuple[int, int], out: torch.Tensor | None = None) -> torch.Tensor:
    """Place an ``rfft2`` spectrum of a ``(Y, X)`` image into the ``rfft2`` grid of ``(2 Y, 2 X)`` (zero-padding).

    ``out``: a zeroed destination to reuse (only the low-frequency rows and columns are written).
    """
    ny, nx = shape_yx
    if out is None:
        out = half.new_zeros((*half.shape[:-2], 2 * ny, nx + 1))
    pos = (ny + 1) // 2
    out[..., :pos, : nx // 2 + 1] = half[..., :pos, :]
    out[..., 2 * ny - (ny - pos) :, : nx // 2 + 1] = half[..., pos:, :]
    return out


def pad_full_spectrum(
    spectrum: torch.Tensor, shape_yx: tuple[int, int], out: torch.Tensor | None = None
) -> torch.Tensor:
    """Place a full ``fft2`` spectrum of a ``(Y, X)`` image into the ``fft2`` grid of ``(2 Y, 2 X)`` (zero-padding).

    ``out``: a zeroed destination to reuse (only the four low-frequency corners are written).
    """
    ny, nx = shape_yx
    if out is None:
        out = spectrum.new_zeros((*spectrum.shape[:-2], 2 * ny, 2 * nx))
    py, px = (ny + 1) // 2, (nx + 1) // 2
    out[..., :py, :px] = spectrum[..., :py, :px]
    out[..., :py, 2 * nx - (nx - px) :] = spectrum[..., :py, px:]
    out[..., 2 * ny - (ny - py) :, :px] = spectrum[..., py:, :px]
    out[..., 2 * ny - (ny - py) :, 2 * nx - (nx - px) :] = spectrum[..., py:, px:]
    return out


def upsample2(images: torch.Tensor) -> torch.Tensor:
    """Fourier interpolation of ``(..., Y, X)`` images onto the 2x grid (pixel ``j`` at raw ``j / 2 - 1/4``).

    Intensities are preserved (same mean); the Nyquist row / column of even sides is dropped.
    """
    shape = (int(images.shape[-2]), int(images.shape[-1]))
    half = (
        torch.fft.rfft2(images.float()) * (nyquist_mask(shape, images.device) * 4.0) * offset_ramp(shape, images.device)
    )
    return torch.fft.irfft2(pad_spectrum(half, shape), s=(2 * shape[0], 2 * shape[1]))


def fine_coordinates(
    shape_yx: tuple[int, int], device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw-pixel coordinates ``(y, x)`` (column, row vectors, float64) of the 2x grid's pixel centres."""
    ny, nx = shape_yx
    y = (torch.arange(2 * ny, device=device, dtype=torch.float64) / 2.0 - 0.25)[:, None]
    x = (torch.arange(2 * nx, device=device, dtype=torch.float64) / 2.0 - 0.25)[None, :]
    return y, x


def widefield(stacks: torch.Tensor, upsample: bool = True) -> torch.Tensor:
    """The widefield image of each stack (mean of its frames), on the 2x grid by default.

    Parameters
    ----------
    stacks
        ``(n, n_orientations, n_phases, Y, X)``.
    upsample
        Fourier-interpolate onto the SR grid (same pixel positions as the SR image).
    """
    mean = stacks.float().mean(dim=(1, 2))
    return upsample2(mean) if upsample else mean

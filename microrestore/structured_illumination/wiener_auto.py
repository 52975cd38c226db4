"""Automatic choice of the Wiener constant from the noise of the raw frames (``wiener = "auto"``, the default).

The Wiener filter's denominator is ``w^2 + sum |H|^2`` with the OTFs normalised to 1 at zero frequency, so
``w^2`` plays the part of the noise-to-signal power ratio of the object. It is measured on band 0 (the mean
of each orientation's phases, orientation-equalised, borders blended as for the reconstruction):

- noise power ``N``: the mean ``|b0|^2`` beyond 1.1 x the detection cut-off, where there is no signal;
- object power ``S``: ``(mean |b0|^2 - N) / mean |OTF|^2`` over the ring ``RING`` (fractions of the
  detection cut-off), the frequencies that the side bands move beyond the cut-off;
- ``w = SCALE * (N / S) ** (EXPONENT / 2)``, clamped to ``[W_MIN, W_MAX]``.

``SCALE`` and ``EXPONENT`` are a calibration on simulated 2D-SIM (``microrestore simulate sim``, filaments, NA
1.3, 525 nm, 62.6 nm pixels, 5 to 1000 photons peak): the ``w`` that maximised the PSNR against the ideal SIM
image there follows ``(N / S) ** 0.35`` within a factor 1.5 (0.05 at 1000 photons, 0.1 at 100, 0.3 at 20, 0.8
or more at 5); ``SCALE`` takes 0.8 of that fit, erring on the sharp side (PSNR favours smoothing). On the real
rDL-SIM sample ``MT.mrc`` it gives about 0.35 with the ideal OTF and 0.25 with the measured one, where the old
default 0.05 gave honeycomb noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from microrestore.structured_illumination.bands import apodize_borders, equalize_orientations

if TYPE_CHECKING:
    from microrestore.structured_illumination.options import SIMOptions
    from microrestore.structured_illumination.otf import OTF

__all__ = ["EXPONENT", "RING", "SCALE", "W_MAX", "W_MIN", "WienerChoice", "choose_wiener", "noise_to_signal"]

#: Ring of the object-power measurement, fractions of the detection cut-off.
RING = (0.5, 0.8)
#: ``w = SCALE * (N / S) ** (EXPONENT / 2)``.
SCALE = 0.8
EXPONENT = 0.7
#: Bounds of the automatic choice.
W_MIN, W_MAX = 0.01, 2.0
#: Fewest frequencies beyond the cut-off for a noise estimate.
_MIN_SAMPLES = 64


@dataclass(frozen=True)
class WienerChoice:
    """The Wiener constant used and where it came from.

    Attributes
    ----------
    value
        The constant ``w``.
    auto
        ``True`` when chosen from the noise, ``False`` when given.
    noise_to_signal
        The measured ``N / S`` (``None`` when given, or when it could not be measured).
    """

    value: float
    auto: bool
    noise_to_signal: float | None = None

    def describe(self) -> str:
        """One line for the user: the value and how it was chosen."""
        if not self.auto:
            return f"Wiener constant w = {self.value:.3g} (given)"
        if self.noise_to_signal is None:
            return (
                f"Wiener constant w = {self.value:.3g} (auto: the noise could not be measured, too few frequencies "
                "beyond the cut-off; try --wiener 0.05 to 0.5)"
            )
        return (
            f"Wiener constant w = {self.value:.3g} (auto, from the noise-to-signal ratio {self.noise_to_signal:.3g}; "
            "--wiener N to set it: smaller is sharper and noisier)"
        )


def noise_to_signal(stacks: torch.Tensor, otf: OTF, pixel_size_nm: float, border_px: int = 8) -> float | None:
    """The noise-to-object power ratio ``N / S`` of raw stacks, measured on band 0 (see the module text).

    Parameters
    ----------
    stacks
        ``(n, n_orientations, n_phases, Y, X)`` or one stack ``(n_orientations, n_phases, Y, X)``; a time
        series is measured on its first stack (each stack's noise is what the filter sees).
    otf
        Detection OTF.
    pixel_size_nm
        Raw pixel size.
    border_px
        Border blend applied first (as for the reconstruction).

    Returns
    -------
    float or None
        ``N / S``, or ``None`` when too few frequencies lie beyond the cut-off to measure the noise.
    """
    if stacks.dim() == 4:
        stacks = stacks[None]
    raw = equalize_orientations(stacks[:1].float())
    raw = apodize_borders(raw[0], border_px) if border_px else raw[0]
    ny, nx = int(raw.shape[-2]), int(raw.shape[-1])
    b0 = torch.fft.fft2(raw.mean(dim=1).to(torch.complex64))  # band 0 of each orientation
    power = (b0.abs() ** 2).to(torch.float64)
    px_um = pixel_size_nm / 1000.0
    qy = torch.fft.fftfreq(ny, dtype=torch.float64, device=raw.device)[:, None]
    qx = torch.fft.fftfreq(nx, dtype=torch.float64, device=raw.device)[None, :]
    q = torch.sqrt(qy**2 + qx**2)
    cut = otf.cutoff_per_um * px_um
    outside = q > 1.1 * cut
    ring = (q > RING[0] * cut) & (q < RING[1] * cut)
    if int(outside.sum()) < _MIN_SAMPLES or int(ring.sum()) < _MIN_SAMPLES:
        return None
    noise = float(power[:, outside].mean())
    otf2 = float((otf.evaluate(qy / px_um, qx / px_um).expand(ny, nx)[ring] ** 2).mean())
    signal = (float(power[:, ring].mean()) - noise) / max(otf2, 1e-12)
    if signal <= 0:
        return math.inf
    return noise / signal


def choose_wiener(options: SIMOptions, stacks: torch.Tensor, otf: OTF, pixel_size_nm: float) -> WienerChoice:
    """The Wiener constant of ``options.wiener``: the number given, or the automatic choice for ``"auto"``."""
    if options.wiener != "auto":
        return WienerChoice(float(options.wiener), auto=False)
    ratio = noise_to_signal(stacks, otf, pixel_size_nm, options.border_px)
    if ratio is None:
        return WienerChoice(0.1, auto=True)
    value = W_MAX if not math.isfinite(ratio) else SCALE * ratio ** (EXPONENT / 2.0)
    return WienerChoice(min(max(value, W_MIN), W_MAX), auto=True, noise_to_signal=ratio)

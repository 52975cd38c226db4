"""Illumination parameter estimation from the raw frames, per orientation (Gustafsson 2000; Shao et al. 2011).

For each orientation, on the border-apodised, orientation-equalised frames (the mean of all stacks of a
time series by default):

1. separate band 0 and band +1 with the nominal relative phases ``2 pi p / n_phases``;
2. coarse wave vector: the peak of the cross-correlation ``sum_q conj(b0(q)) b1(q + k)`` of the OTF-weighted
   bands (one FFT), searched in an annulus around the nominal ``|k| = 2 NA_exc / lambda_exc``;
3. sub-pixel refinement: the overlaps ``o0 = b0 OTF(q + k) / R`` and ``o1 = b1(q + k) OTF(q) / R``
   (``R = sqrt(OTF(q)^2 + OTF(q + k)^2)``, both OTFs above a threshold, band centres left out) are formed
   once at the coarse peak; ``|sum_r conj(O0) O1 exp(-2 pi i delta r)|`` is maximised over the residual
   shift ``delta`` on successively finer grids (matrix DFTs), i.e. the overlap's correlation at sub-pixel
   shifts (Gustafsson's / Shao's ``getmodamp`` objective);
4. modulation and phase from the overlap at the refined ``k``: ``modamp = sum conj(o0) o1 / sum |o0|^2``
   equals ``(m / 2) e^{i phi_0}`` without noise; the noise power in ``sum |o0|^2`` (measured beyond the OTF
   support) is subtracted so that low SNR does not bias ``m`` down;
5. wrong optics: when no orientation fits the nominal ``|k|`` but two or more significant peaks, at angles
   ``180 / n_or`` degrees apart, agree with each other within ``k_agreement``, their fitted values are used
   and a :class:`SIMEstimationWarning` says to check the excitation optics (``--na-exc`` / ``--wavelength-exc``);
6. fallbacks: a peak that is not significant, a ``|k|`` further than ``k_tolerance`` from nominal, or an angle
   away from the given nominal angles is replaced (``|k|`` from the good orientations or nominal; the angle
   from the nominal angles, from the good orientations at equal spacing, or its own peak), and a modulation
   outside ``modulation_range``, or measured for an orientation whose ``k`` fell back (no peak of its own: the
   measurement is mostly noise, biased low, and ``1 / m`` would amplify that orientation's bands into
   stripes), by ``default_modulation``, each with a :class:`SIMEstimationWarning`.

Wave vectors are reported with angles in [0, 180) degrees (``k`` and ``-k`` with negated phases describe the
same pattern).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from microrestore.errors import InputError
from microrestore.structured_illumination.bands import apodize_borders, equalize_orientations, separate_bands
from microrestore.structured_illumination.params import OrientationParams, SIMParams

if TYPE_CHECKING:
    from microrestore.structured_illumination.options import EstimationOptions
    from microrestore.structured_illumination.otf import OTF

__all__ = ["SIMEstimationWarning", "estimate_params"]

#: Refinement levels: (half-width, points per axis), the half-width in FFT pixels.
_LEVELS = ((0.75, 31), (0.06, 25), (0.006, 25))
#: Smallest number of frequencies beyond the OTF support for a noise estimate.
_MIN_NOISE_SAMPLES = 64


class SIMEstimationWarning(UserWarning):
    """A fitted illumination parameter was replaced by a nominal or inferred value."""


def _frequencies(shape: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    qy = torch.fft.fftfreq(shape[0], device=device, dtype=torch.float64)[:, None]
    qx = torch.fft.fftfreq(shape[1], device=device, dtype=torch.float64)[None, :]
    return qy, qx


def _otf_at(otf: OTF, qy: torch.Tensor, qx: torch.Tensor, px_um: float) -> torch.Tensor:
    return otf.evaluate(qy / px_um, qx / px_um)


def _shift_band(band: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor) -> torch.Tensor:
    """``band(q + k)`` for sub-pixel ``k`` (cycles per pixel, one per leading index): a real-space phase ramp."""
    ny, nx = band.shape[-2:]
    y = torch.arange(ny, device=band.device, dtype=torch.float64)[:, None]
    x = torch.arange(nx, device=band.device, dtype=torch.float64)[None, :]
    ramp = torch.exp(-2j * math.pi * (ky[:, None, None] * y + kx[:, None, None] * x)).to(band.dtype)
    return torch.fft.fft2(torch.fft.ifft2(band) * ramp)


def _overlaps(
    b0: torch.Tensor,
    b1_shifted: torch.Tensor,
    otf: OTF,
    ky: torch.Tensor,
    kx: torch.Tensor,
    px_um: float,
    opts: EstimationOptions,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Overlap spectra ``o0``, ``o1`` and the weight of ``b0`` in ``o0`` (for the noise correction)."""
    qy, qx = _frequencies(tuple(b0.shape[-2:]), b0.device)
    cut = otf.cutoff_per_um * px_um
    qmin = opts.dc_exclusion * cut
    otf0 = _otf_at(otf, qy, qx, px_um).expand_as(b0.real)
    sy, sx = qy + ky[:, None, None], qx + kx[:, None, None]
    otf1 = _otf_at(otf, sy, sx, px_um)
    t = opts.otf_threshold
    mask = (otf0 > t) & (otf1 > t) & (qy**2 + qx**2 > qmin**2) & (sy**2 + sx**2 > qmin**2)
    root = torch.sqrt(otf0**2 + otf1**2).clamp_min(1e-12)
    w0 = torch.where(mask, otf1 / root, torch.zeros((), device=b0.device))
    w1 = torch.where(mask, otf0 / root, torch.zeros((), device=b0.device))
    return b0 * w0, b1_shifted * w1, w0


def _noise_power(band: torch.Tensor, otf: OTF, px_um: float) -> torch.Tensor:
    """Mean ``|band|^2`` beyond 1.1 x the OTF support (pure noise there), per leading index; 0 if too few."""
    qy, qx = _frequencies(tuple(band.shape[-2:]), band.device)
    outside = (qy**2 + qx**2) > (1.1 * otf.cutoff_per_um * px_um) ** 2
    count = int(outside.sum())
    if count < _MIN_NOISE_SAMPLES:
        return torch.zeros(band.shape[0], device=band.device, dtype=torch.float64)
    power = (band.abs() ** 2).to(torch.float64)
    return (power * outside).sum(dim=(-2, -1)) / count


def _refine(p_real: torch.Tensor, start_y: torch.Tensor, start_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximise ``|sum_r P(r) exp(-2 pi i (dy y + dx x))|`` over ``(dy, dx)`` (FFT pixels), per orientation."""
    n_or, ny, nx = p_real.shape
    y = torch.arange(ny, device=p_real.device, dtype=torch.float64)
    x = torch.arange(nx, device=p_real.device, dtype=torch.float64)
    dy, dx = start_y.clone(), start_x.clone()
    p = p_real.to(torch.complex128)
    for half, points in _LEVELS:
        offsets = torch.linspace(-half, half, points, device=p.device, dtype=torch.float64)
        cy = dy[:, None] + offsets[None, :]  # (n_or, m) candidate shifts in FFT pixels
        cx = dx[:, None] + offsets[None, :]
        ey = torch.exp(-2j * math.pi * cy[:, :, None] * y[None, None, :] / ny)  # (n_or, m, Y)
        ex = torch.exp(-2j * math.pi * x[None, :, None] * cx[:, None, :] / nx)  # (n_or, X, m)
        g = (ey @ p @ ex).abs()  # (n_or, m, m)
        best = g.reshape(n_or, -1).argmax(dim=1)
        iy, ix = best // points, best % points
        dy = cy[torch.arange(n_or), iy]
        dx = cx[torch.arange(n_or), ix]
    return dy, dx


def _ring_scores(cc: torch.Tensor, q2: torch.Tensor, annulus: torch.Tensor, n: int) -> torch.Tensor:
    """Robust z-scores of ``cc`` within each ring of one FFT pixel: ``(cc - median) / (1.4826 MAD)``.

    The cross-correlation's background falls with the frequency (the object's spectrum); scoring each ring
    against itself keeps a spurious low-frequency maximum from beating the pattern's peak.
    """
    rings = torch.round(torch.sqrt(q2) * n).long().expand_as(cc[0])
    z = torch.zeros_like(cc)
    for r in torch.unique(rings[annulus]).tolist():
        sel = rings == r
        values = cc[:, sel]
        med = values.median(dim=1, keepdim=True).values
        mad = (values - med).abs().median(dim=1, keepdim=True).values.clamp_min(1e-30)
        z[:, sel] = (values - med) / (1.4826 * mad)
    return z


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _angle_distance(a: float, b: float) -> float:
    """Distance between two orientations (degrees, modulo 180)."""
    d = (a - b) % 180.0
    return min(d, 180.0 - d)


def estimate_params(
    stacks: torch.Tensor,
    otf: OTF,
    pixel_size_nm: float,
    nominal_k_per_um: float,
    options: EstimationOptions | None = None,
    *,
    order: str = "angle-major",
    equalize: bool = True,
    border_px: int = 8,
) -> SIMParams:
    """Estimate wave vector, phases and modulation of every orientation from raw stacks.

    Parameters
    ----------
    stacks
        ``(n, n_orientations, n_phases, Y, X)`` or one stack ``(n_orientations, n_phases, Y, X)``; several
        stacks are averaged first (the pattern is assumed fixed over a time series).
    otf
        Detection OTF.
    pixel_size_nm
        Raw pixel size.
    nominal_k_per_um
        Expected pattern frequency ``2 NA_exc / lambda_exc`` in cycles per micrometre.
    options
        Tolerances (:class:`~microrestore.structured_illumination.options.EstimationOptions`).
    order
        Frame order recorded in the result.
    equalize, border_px
        Orientation equalisation and border apodisation applied before the estimation.

    Returns
    -------
    SIMParams
        The parameters; replaced values are listed in each orientation's ``fallback``.

    Raises
    ------
    InputError
        When the nominal frequency is beyond the raw grid's Nyquist limit or the frames are too small.
    """
    from microrestore.structured_illumination.options import EstimationOptions

    opts = options or EstimationOptions()
    if stacks.dim() == 4:
        stacks = stacks[None]
    n_or, n_ph, ny, nx = (int(s) for s in stacks.shape[1:])
    px_um = pixel_size_nm / 1000.0
    k_nom = nominal_k_per_um * px_um  # cycles per raw pixel
    _check_estimation_inputs(n_or, ny, nx, k_nom, nominal_k_per_um, pixel_size_nm, opts)
    raw = stacks.float().mean(dim=0, keepdim=True)
    if equalize:
        raw = equalize_orientations(raw)
    raw = apodize_borders(raw[0], border_px)
    nominal_phases = [[2 * math.pi * p / n_ph for p in range(n_ph)]] * n_or
    bands = separate_bands(torch.fft.fft2(raw.to(torch.complex64)), nominal_phases)
    b0, b1 = bands[:, 0], bands[:, 1]

    # 1. coarse peak of the OTF-weighted cross-correlation, in the annulus around the nominal |k|
    z, significance, peak_y, peak_x = _coarse_peaks(b0, b1, otf, px_um, k_nom, opts)
    # 2. sub-pixel refinement of the overlap correlation around the coarse peak
    ky_fit, kx_fit = _refine_wave_vectors(b0, b1, peak_y, peak_x, otf, px_um, opts)
    # 3. fallbacks for the wave vector
    k_fit = torch.hypot(ky_fit, kx_fit).tolist()
    ang_fit = [math.degrees(math.atan2(a, b)) for a, b in zip(ky_fit.tolist(), kx_fit.tolist(), strict=True)]
    good, reasons = _judge_fits(k_fit, ang_fit, significance, k_nom, px_um, opts)
    messages = _adopt_agreeing_fits(k_fit, ang_fit, significance, good, k_nom, px_um, nominal_k_per_um, opts)
    good_k = [k_fit[d] for d in range(n_or) if good[d]]
    k_fallback = sum(good_k) / len(good_k) if good_k else k_nom
    failed = [d for d in range(n_or) if not good[d]]
    fallback: list[list[str]] = [["k"] if d in failed else [] for d in range(n_or)]
    if failed:
        ky_use, kx_use = _borrowed_wave_vectors(
            _Correlation(b0, b1, z, otf, px_um, opts), ky_fit, kx_fit, ang_fit, good, reasons, k_fallback, messages
        )
    else:
        ky_use, kx_use = ky_fit, kx_fit

    # 4. modulation and phase at the final wave vectors
    modamp, correlation = _modulation(b0, b1, otf, ky_use, kx_use, px_um, opts)
    orientations = []
    for d in range(n_or):
        m = _checked_modulation(d, 2.0 * float(modamp[d].abs()), fallback[d], opts, messages)
        quality = {
            "peak_significance": round(significance[d], 3),
            "correlation": round(correlation[d], 4),
            "k_fit_per_um": k_fit[d] / px_um,
            "angle_fit_deg": ang_fit[d],
        }
        phase0 = float(torch.angle(modamp[d]))
        orientations.append(_orientation(float(ky_use[d]), float(kx_use[d]), phase0, n_ph, m, fallback[d], quality))
    for message in messages:
        warnings.warn(SIMEstimationWarning(message), stacklevel=2)
    notes = [f"nominal |k| {nominal_k_per_um:.4g}/um; OTF: {otf.source}", *messages]
    return SIMParams(
        orientations, order=order, pixel_size_nm=pixel_size_nm, shape_yx=(ny, nx), source="estimated", notes=notes
    )


def _check_estimation_inputs(
    n_or: int, ny: int, nx: int, k_nom: float, nominal_k_per_um: float, pixel_size_nm: float, opts: EstimationOptions
) -> None:
    """Refuse frames too small to estimate from, a nominal frequency beyond Nyquist and a wrong number of angles."""
    if min(ny, nx) < 32:
        raise InputError(f"SIM frames must be at least 32 x 32 pixels to estimate parameters, got {ny} x {nx}")
    if not 0 < k_nom < 0.5:
        raise InputError(
            f"the nominal pattern frequency {nominal_k_per_um:.3g}/um is {k_nom:.3g} cycles per pixel at "
            f"{pixel_size_nm:g} nm pixels, outside (0, 0.5): check the optics and the pixel size"
        )
    if opts.angles_deg is not None and len(opts.angles_deg) != n_or:
        raise InputError(f"angles_deg must list {n_or} angles, got {len(opts.angles_deg)}")


def _coarse_peaks(
    b0: torch.Tensor, b1: torch.Tensor, otf: OTF, px_um: float, k_nom: float, opts: EstimationOptions
) -> tuple[torch.Tensor, list[float], torch.Tensor, torch.Tensor]:
    """The OTF-weighted cross-correlation's scores in the annulus around ``k_nom`` and each orientation's peak.

    Returns ``(scores, significance, peak_y, peak_x)``: scores ``(n_or, Y, X)`` (``-inf`` outside the annulus),
    the best score of each orientation and its (signed) pixel position.
    """
    n_or, ny, nx = int(b0.shape[0]), int(b0.shape[-2]), int(b0.shape[-1])
    device = b0.device
    qy, qx = _frequencies((ny, nx), device)
    q2 = qy**2 + qx**2
    cut = otf.cutoff_per_um * px_um
    qmin = opts.dc_exclusion * cut
    weight = _otf_at(otf, qy, qx, px_um) * ((q2 < cut**2) & (q2 > qmin**2))
    cc = torch.fft.fft2(torch.fft.ifft2(b0 * weight).conj() * torch.fft.ifft2(b1 * weight)).abs()
    lo, hi = k_nom * (1 - opts.k_search), min(k_nom * (1 + opts.k_search), 0.5)
    annulus = (q2 >= lo**2) & (q2 <= hi**2)
    if int(annulus.sum()) < 8:
        raise InputError("the frames are too small to search for the SIM pattern around the nominal frequency")
    z = _ring_scores(cc, q2, annulus, min(ny, nx))
    z = torch.where(annulus, z, torch.full((), -math.inf, device=device))
    best = z.reshape(n_or, -1).argmax(dim=1)
    significance = z.reshape(n_or, -1).gather(1, best[:, None])[:, 0].tolist()
    return z, significance, _signed(best // nx, ny), _signed(best % nx, nx)


def _judge_fits(
    k_fit: list[float],
    ang_fit: list[float],
    significance: list[float],
    k_nom: float,
    px_um: float,
    opts: EstimationOptions,
) -> tuple[list[bool], list[str]]:
    """Which orientations' fitted wave vectors to trust, and why not the others (a weak peak, |k| or angle off)."""
    good = []
    reasons: list[str] = []
    for d in range(len(k_fit)):
        why = []
        if significance[d] < opts.min_significance:
            why.append(f"weak peak (significance {significance[d]:.1f} < {opts.min_significance:g})")
        if abs(k_fit[d] / k_nom - 1) > opts.k_tolerance:
            why.append(f"|k| {k_fit[d] / px_um:.4g}/um is {100 * (k_fit[d] / k_nom - 1):+.1f}% from nominal")
        if opts.angles_deg is not None and _angle_distance(ang_fit[d], opts.angles_deg[d]) > opts.angle_tolerance_deg:
            why.append(f"angle {ang_fit[d]:.2f} deg is far from nominal {opts.angles_deg[d]:g} deg")
        good.append(not why)
        reasons.append("; ".join(why))
    return good, reasons


def _adopt_agreeing_fits(
    k_fit: list[float],
    ang_fit: list[float],
    significance: list[float],
    good: list[bool],
    k_nom: float,
    px_um: float,
    nominal_k_per_um: float,
    opts: EstimationOptions,
) -> list[str]:
    """Trust orientations that agree with each other off the nominal |k| (wrong optics); marks them in ``good``."""
    adopted = _agreeing_off_nominal(k_fit, ang_fit, significance, good, k_nom, opts)
    if not adopted:
        return []
    for d in adopted:
        good[d] = True
    k_mean = sum(k_fit[d] for d in adopted) / len(adopted)
    return [
        f"the fitted |k| of orientations {', '.join(map(str, adopted))} agree with each other "
        f"({k_mean / px_um:.4g}/um, period {1000.0 * px_um / k_mean:.1f} nm) but are "
        f"{100 * (k_mean / k_nom - 1):+.1f}% from the nominal {nominal_k_per_um:.4g}/um = 2 NA_exc / lambda_exc: "
        "using the fitted values; check --na-exc / --wavelength-exc (they default to --na / --wavelength)"
    ]


@dataclass(frozen=True)
class _Correlation:
    """The bands and correlation scores an orientation without a trusted fit borrows its wave vector from."""

    b0: torch.Tensor
    b1: torch.Tensor
    scores: torch.Tensor
    otf: OTF
    px_um: float
    opts: EstimationOptions


def _borrowed_wave_vectors(
    corr: _Correlation,
    ky_fit: torch.Tensor,
    kx_fit: torch.Tensor,
    ang_fit: list[float],
    good: list[bool],
    reasons: list[str],
    k_fallback: float,
    messages: list[str],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Wave vectors for the orientations not ``good``: ``k_fallback`` at an inferred angle, refined locally.

    The angle is the nominal one when given, else equally spaced from the fitted orientations, else the
    orientation's own peak. Refined around the inferred wave vector (whichever of +-k the correlation prefers);
    the inferred one is kept when the refinement wanders off by more than a pixel. Appends one message each.
    """
    opts, z = corr.opts, corr.scores
    ny, nx = int(corr.b0.shape[-2]), int(corr.b0.shape[-1])
    failed = [d for d in range(len(good)) if not good[d]]
    any_good = any(good)
    if opts.angles_deg is not None:
        angles = {d: opts.angles_deg[d] for d in failed}
        origin = "nominal angle"
    elif any_good:
        angles = _assign_spare_angles(z, ang_fit, good, k_fallback)
        origin = "equal spacing from the fitted orientations"
    else:
        angles = {d: ang_fit[d] for d in failed}
        origin = "its own correlation peak"
    guess = torch.tensor([_best_sign(z[d], angles[d], k_fallback) for d in failed], dtype=torch.float64)
    gy, gx = guess[:, 0].to(corr.b0.device), guess[:, 1].to(corr.b0.device)
    ry, rx = _refine_wave_vectors(
        corr.b0[failed], corr.b1[failed], torch.round(gy * ny), torch.round(gx * nx), corr.otf, corr.px_um, opts
    )
    ky_use, kx_use = ky_fit.clone(), kx_fit.clone()
    for i, d in enumerate(failed):
        moved = math.hypot((float(ry[i]) - float(gy[i])) * ny, (float(rx[i]) - float(gx[i])) * nx)
        refined = moved <= 1.0
        ky_use[d], kx_use[d] = (ry[i], rx[i]) if refined else (gy[i], gx[i])
        how = "refined locally" if refined else "not refined"
        messages.append(
            f"orientation {d}: {reasons[d]}; using |k| = {k_fallback / corr.px_um:.4g}/um "
            f"({'mean of the fitted orientations' if any_good else 'nominal 2 NA_exc / lambda_exc'}) and "
            f"angle {angles[d]:.2f} deg ({origin}), {how}"
        )
    return ky_use, kx_use


def _modulation(
    b0: torch.Tensor,
    b1: torch.Tensor,
    otf: OTF,
    ky: torch.Tensor,
    kx: torch.Tensor,
    px_um: float,
    opts: EstimationOptions,
) -> tuple[torch.Tensor, list[float]]:
    """Complex modulation (half the modulation depth times the phase) and overlap correlation per orientation."""
    b1_s = _shift_band(b1, ky, kx)
    o0, o1, w0 = _overlaps(b0, b1_s, otf, ky, kx, px_um, opts)
    cross = (o0.conj() * o1).sum(dim=(-2, -1)).to(torch.complex128)
    power0 = (o0.abs() ** 2).sum(dim=(-2, -1)).to(torch.float64)
    power1 = (o1.abs() ** 2).sum(dim=(-2, -1)).to(torch.float64)
    noise0 = _noise_power(b0, otf, px_um) * (w0.to(torch.float64) ** 2).sum(dim=(-2, -1))
    signal0 = torch.where(power0 - noise0 > 0.1 * power0, power0 - noise0, power0)
    modamp = cross / signal0.clamp_min(1e-30)
    correlation = (cross.abs() / torch.sqrt(power0 * power1).clamp_min(1e-30)).tolist()
    return modamp, correlation


def _checked_modulation(d: int, m: float, fallback: list[str], opts: EstimationOptions, messages: list[str]) -> float:
    """The measured modulation, or the default one (noted in ``fallback`` and ``messages``) when it is unusable."""
    lo_m, hi_m = opts.modulation_range
    if "k" in fallback:
        # No significant peak of its own: the overlap at a borrowed wave vector measures mostly noise and
        # biases m low, and the Wiener step would then amplify this orientation's bands by 1 / m (stripes).
        messages.append(
            f"orientation {d}: modulation {m:.3g} measured without a fitted peak; using {opts.default_modulation:g}"
        )
    elif not lo_m <= m <= hi_m:
        messages.append(
            f"orientation {d}: modulation {m:.3g} outside [{lo_m:g}, {hi_m:g}]; using {opts.default_modulation:g}"
        )
    else:
        return m
    fallback.append("modulation")
    return opts.default_modulation


def _orientation(
    ky: float, kx: float, phase0: float, n_ph: int, m: float, fallback: list[str], quality: dict[str, float]
) -> OrientationParams:
    """One orientation's parameters, its wave vector on the half plane of angles in [0, 180) degrees."""
    phases = [phase0 + 2 * math.pi * p / n_ph for p in range(n_ph)]
    angle = math.degrees(math.atan2(ky, kx))
    if not 0.0 <= angle < 180.0:  # k and -k with negated phases are the same pattern
        ky, kx, phases = -ky, -kx, [-p for p in phases]
    return OrientationParams(
        ky=ky,
        kx=kx,
        phases=[_wrap(p) for p in phases],
        modulation=min(m, 2.0),
        fallback=fallback,
        quality=quality,
    )


def _agreeing_off_nominal(
    k_fit: list[float],
    ang_fit: list[float],
    significance: list[float],
    good: list[bool],
    k_nom: float,
    opts: EstimationOptions,
) -> list[int]:
    """Orientations whose fitted ``|k|`` agree with each other but not with the nominal value (wrong optics).

    Applies only when no orientation fitted the nominal ``|k|``: at least two orientations with significant
    peaks (and angles within ``angle_tolerance_deg`` of any given nominal angles) whose ``|k|`` differ from
    each other by at most ``k_agreement`` (relative) and whose angles sit on the grid of ``180 / n_or``
    degrees (within ``angle_tolerance_deg``). Such peaks are the real pattern: the nominal value came from
    wrong or defaulted excitation optics. Returns their indices (empty when the rule does not apply).
    """
    n_or = len(k_fit)
    if any(good) or n_or < 2:
        return []
    candidates = [
        d
        for d in range(n_or)
        if significance[d] >= opts.min_significance
        and (opts.angles_deg is None or _angle_distance(ang_fit[d], opts.angles_deg[d]) <= opts.angle_tolerance_deg)
    ]
    if len(candidates) < 2:
        return []
    ks = [k_fit[d] for d in candidates]
    if max(ks) / min(ks) - 1 > opts.k_agreement or abs(sum(ks) / len(ks) / k_nom - 1) <= opts.k_tolerance:
        return []
    step = 180.0 / n_or
    for a in candidates:
        for b in candidates:
            off = _angle_distance(ang_fit[a], ang_fit[b]) % step
            if min(off, step - off) > opts.angle_tolerance_deg:
                return []
    return candidates


def _signed(index: torch.Tensor, n: int) -> torch.Tensor:
    """FFT index to signed frequency index (float64)."""
    return torch.where(index > n // 2, index - n, index).to(torch.float64)


def _refine_wave_vectors(
    b0: torch.Tensor,
    b1: torch.Tensor,
    peak_y: torch.Tensor,
    peak_x: torch.Tensor,
    otf: OTF,
    px_um: float,
    opts: EstimationOptions,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel wave vectors (cycles per pixel) around integer peaks ``(peak_y, peak_x)`` (signed indices)."""
    ny, nx = b0.shape[-2:]
    n = b0.shape[0]
    shifted = torch.stack([torch.roll(b1[d], (-int(peak_y[d]), -int(peak_x[d])), dims=(0, 1)) for d in range(n)])
    o0, o1, _ = _overlaps(b0, shifted, otf, peak_y / ny, peak_x / nx, px_um, opts)
    product = torch.fft.ifft2(o0).conj() * torch.fft.ifft2(o1)
    zero = torch.zeros(n, dtype=torch.float64, device=b0.device)
    dy, dx = _refine(product, zero, zero.clone())
    return (peak_y + dy) / ny, (peak_x + dx) / nx


def _index_of(k: tuple[float, float], shape: tuple[int, int]) -> tuple[int, int]:
    return round(k[0] * shape[0]) % shape[0], round(k[1] * shape[1]) % shape[1]


def _best_sign(z: torch.Tensor, angle_deg: float, k: float) -> tuple[float, float]:
    """``(ky, kx)`` at ``angle_deg`` and ``|k|``, or its negative, whichever has the higher correlation score."""
    a = math.radians(angle_deg)
    plus = (k * math.sin(a), k * math.cos(a))
    minus = (-plus[0], -plus[1])
    shape = (int(z.shape[-2]), int(z.shape[-1]))
    return plus if float(z[_index_of(plus, shape)]) >= float(z[_index_of(minus, shape)]) else minus


def _assign_spare_angles(z: torch.Tensor, angles: list[float], good: list[bool], k: float) -> dict[int, float]:
    """Angles for the failed orientations on the grid of ``180 / n_or`` degrees through the fitted ones.

    The free grid angles are assigned to the failed orientations so as to maximise their summed correlation
    scores (the acquisition order may turn either way).
    """
    import itertools

    n_or = len(angles)
    fitted = [a for a, g in zip(angles, good, strict=True) if g]
    failed = [d for d in range(n_or) if not good[d]]
    step = 180.0 / n_or
    grid = [(fitted[0] + j * step) % 180.0 for j in range(n_or)]
    taken = {min(range(n_or), key=lambda j: _angle_distance(grid[j], a)) for a in fitted}
    free = [grid[j] for j in range(n_or) if j not in taken] or [grid[0]]
    shape = (int(z.shape[-2]), int(z.shape[-1]))

    def score(d: int, angle: float) -> float:
        return float(z[d][_index_of(_best_sign(z[d], angle, k), shape)])

    best, best_score = None, -math.inf
    pool = free if len(free) >= len(failed) else free * len(failed)
    for perm in itertools.permutations(pool, len(failed)):
        total = sum(score(d, a) for d, a in zip(failed, perm, strict=True))
        if total > best_score:
            best, best_score = perm, total
    assert best is not None
    return dict(zip(failed, best, strict=True))

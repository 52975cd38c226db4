"""Wiener-SIM reconstruction on the 2x grid (Gustafsson 2000, 2008; Heintzmann & Gustafsson 2009; fairSIM).

For separated bands ``b_{d,s}`` (orientation ``d``, order ``s in {0, +1, -1}``; after separation with the
absolute phases a side band is ``c_d OTF(q) S(q - s k_d)`` with ``c_d = m_d / 2``), each band's transfer
function at its true position is ``H_{d,s}(q) = c_{d,s} OTF(q + s k_d)`` (``c_{d,0} = 1``) and the estimate
of the object on the 2x grid is

``S(q) = A(q) sum_{d,s} conj(H_{d,s}(q)) b_{d,s}(q + s k_d) / (w^2 + sum_{d,s} |H_{d,s}(q)|^2)``

with ``A`` the apodisation over the extended support (cut-off + ``|k|``) and, optionally, an OTF notch
(attenuation) at every band centre. This is Gustafsson's generalised Wiener filter with the band OTFs
(``modulation_weighting=True``, the default): a weakly modulated band is weighted by what it carries instead of
being amplified. With ``modulation_weighting=False`` the side bands are first divided by ``c_d`` and ``H`` is
the bare OTF (fairSIM's and napari-sim-processor's form; the same for ``m = 2``). Shifting a band by ``k`` is
a multiplication of its real-space image on the 2x grid by ``exp(-2 pi i k . r)``, exact for sub-pixel
``k``.

The whole map from raw frames to ``S`` is linear, and the ``conj(OTF)`` weight and the notch can be applied
before the shift (they travel with the band), so :class:`WienerFilter` precomputes, once for fixed parameters
(the precomputed-filter idea of napari-sim-processor):

1. the separation weights: band 0 of all orientations together is one real combination of the frames,
   ``sum_{d,p} M_inv[d, 0, p] D_dp``; the +1 band of orientation ``d`` is ``sum_p M_inv[d, 1, p] D_dp`` (the
   -1 band is its complex conjugate, so it is never computed);
2. the prefilter on the raw grid: ``conj(OTF_att(q))``, the quarter-pixel offset of the 2x grid and the
   Nyquist mask;
3. one complex carrier per orientation on the 2x grid, ``2 g_d exp(-2 pi i k_d . r)`` (``g_d = c_d`` or
   ``1 / c_d``), which shifts the +1 band, corrects its modulation and adds its -1 twin (``2 Re``);
4. the postfilter on the 2x ``rfft2`` grid: ``A / (w^2 + sum |H_att|^2)``.

A stack then costs, on the 2x grid, one zero-padded ``irfft2`` (band 0), one zero-padded ``ifft2`` per
orientation (its +1 band) and one ``rfft2`` / ``irfft2`` pair, whatever the number of phases (fewer
transforms than one upsampling per raw frame); stacks are processed in batches on any torch device.
:func:`wiener_reconstruct_bands` computes the same estimate band by band (the textbook order), as a
reference for tests.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from microrestore.errors import InputError
from microrestore.structured_illumination.bands import (
    fine_coordinates,
    pad_full_spectrum,
    pad_spectrum,
    separation_matrix,
)

if TYPE_CHECKING:
    from microrestore.structured_illumination.otf import OTF
    from microrestore.structured_illumination.params import SIMParams

__all__ = ["APODIZATIONS", "WienerFilter", "apodization", "wiener_reconstruct_bands"]

APODIZATIONS = ("otf", "triangle", "cosine", "none")
_SIGMA_PER_FWHM = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def apodization(rho: torch.Tensor, kind: str = "otf", bend: float = 1.0) -> torch.Tensor:
    """Apodisation at ``rho = |q| / support`` (1 at 0, 0 from 1 on).

    ``otf``: the ideal incoherent OTF's shape ``2/pi (acos rho - rho sqrt(1 - rho^2))``; ``triangle``:
    ``1 - rho``; ``cosine``: ``cos^2(pi rho / 2)``; ``none``: 1 inside the support. Raised to ``bend``.
    """
    r = rho.clamp(0.0, 1.0)
    if kind == "otf":
        a = (2.0 / math.pi) * (torch.acos(r) - r * torch.sqrt(1.0 - r * r))
    elif kind == "triangle":
        a = 1.0 - r
    elif kind == "cosine":
        a = torch.cos(0.5 * math.pi * r) ** 2
    elif kind == "none":
        a = (rho < 1.0).to(rho.dtype)
    else:
        raise InputError(f"apodization must be one of {', '.join(APODIZATIONS)}, got {kind!r}")
    return a.clamp_min(0.0) ** bend if bend != 1.0 else a.clamp_min(0.0)


_apodize = apodization  # the name of the function, free where a parameter shadows it


class WienerFilter:
    """Precomputed Wiener-SIM reconstruction for fixed parameters and frame size.

    Parameters
    ----------
    params
        Illumination parameters (wave vectors, per-frame phases, modulation).
    otf
        Detection OTF.
    shape_yx
        Raw frame shape.
    pixel_size_nm
        Raw pixel size.
    wiener
        Wiener constant ``w`` (denominator ``w**2 + sum |OTF|**2``).
    apodization
        ``otf``, ``triangle``, ``cosine`` or ``none`` (see :func:`apodization`).
    apodization_cutoff
        Apodisation support as a fraction of the extended support (cut-off + largest ``|k|``).
    apodization_bend
        Exponent of the apodisation.
    notch_strength
        OTF attenuation ``1 - strength * exp(-|q|^2 / (2 sigma^2))`` at each band centre (0: off).
    notch_width_per_um
        Its full width at half maximum, cycles per micrometre.
    modulation_weighting
        ``True``: each side band's transfer function is ``(m / 2) OTF`` in the numerator and the denominator
        (Gustafsson et al. 2008's band OTFs; a weakly modulated band is weighted by its signal, not
        amplified). ``False``: side bands are divided by ``m / 2`` and weighted by ``OTF`` alone (fairSIM,
        napari-sim-processor).
    device
        Torch device of the filters and the computation.

    Examples
    --------
    >>> f = WienerFilter(params, otf, (256, 256), 62.6)  # doctest: +SKIP
    >>> sr = f(stacks)  # (n, 3, 3, 256, 256) -> (n, 512, 512)  # doctest: +SKIP
    """

    def __init__(
        self,
        params: SIMParams,
        otf: OTF,
        shape_yx: tuple[int, int],
        pixel_size_nm: float,
        *,
        wiener: float = 0.05,
        apodization: str = "otf",
        apodization_cutoff: float = 1.0,
        apodization_bend: float = 1.0,
        notch_strength: float = 0.0,
        notch_width_per_um: float = 1.2,
        modulation_weighting: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        if not (math.isfinite(wiener) and wiener > 0):
            raise InputError(f"the Wiener constant must be positive, got {wiener!r}")
        if not 0.0 <= notch_strength < 1.0:
            raise InputError(f"notch_strength must be in [0, 1), got {notch_strength!r}")
        self.params = params
        self.otf = otf
        self.shape_yx = (int(shape_yx[0]), int(shape_yx[1]))
        self.pixel_size_nm = float(pixel_size_nm)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.wiener = float(wiener)
        self.notch_strength = float(notch_strength)
        self.notch_sigma_per_um = float(notch_width_per_um) * _SIGMA_PER_FWHM
        self.modulation_weighting = bool(modulation_weighting)
        ny, nx = self.shape_yx
        px_um = self.pixel_size_nm / 1000.0
        dev = self.device

        # prefilters on the raw grid (cycles per raw pixel -> per um): rfft2 layout for band 0, full for +1
        qy = torch.fft.fftfreq(ny, device=dev, dtype=torch.float64)[:, None]
        qx = torch.fft.fftfreq(nx, device=dev, dtype=torch.float64)[None, :]
        weight = self._otf_att(qy / px_um, qx / px_um) * 4.0  # 4: the 2x grid's inverse FFT normalisation
        mask = torch.ones((ny, nx), device=dev)
        if ny % 2 == 0:
            mask[ny // 2] = 0
        if nx % 2 == 0:
            mask[:, nx // 2] = 0
        ramp = torch.exp(-2j * math.pi * 0.25 * (qy + qx)).to(torch.complex64)
        self.prefilter_full = (weight * mask).to(torch.complex64) * ramp
        half = nx // 2 + 1
        self.prefilter = self.prefilter_full[:, :half].contiguous()

        # separation weights as one real matrix over the frames: band 0 of all orientations together (row 0),
        # then the real and imaginary parts of each orientation's +1 band
        sep = separation_matrix(params.phases()).to(dev)  # (n_or, 3, n_ph) complex128
        n_or, n_ph = params.n_orientations, params.n_phases
        weights = torch.zeros((1 + 2 * n_or, n_or, n_ph), dtype=torch.float64, device=dev)
        weights[0] = sep[:, 0, :].real
        for d in range(n_or):
            weights[1 + d, d] = sep[d, 1, :].real
            weights[1 + n_or + d, d] = sep[d, 1, :].imag
        self.band_weights = weights.reshape(1 + 2 * n_or, n_or * n_ph).float()
        self._buffers: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        y, x = fine_coordinates(self.shape_yx, dev)
        carriers = []
        for o in params.orientations:
            gain = 2.0 * self.side_band_gain(o.modulation)
            carriers.append((gain * torch.exp(-2j * math.pi * (o.ky * y + o.kx * x))).to(torch.complex64))
        self.carriers = torch.stack(carriers)  # (n_or, 2Y, 2X)

        # 3. postfilter on the 2x rfft2 grid
        fy = torch.fft.fftfreq(2 * ny, d=0.5, device=dev, dtype=torch.float64)[:, None]  # cycles per raw pixel
        fx = torch.fft.rfftfreq(2 * nx, d=0.5, device=dev, dtype=torch.float64)[None, :]
        denominator = torch.full((2 * ny, nx + 1), self.wiener**2, dtype=torch.float32, device=dev)
        denominator += params.n_orientations * self._otf_att(fy / px_um, fx / px_um) ** 2
        for o in params.orientations:
            weight2 = self.side_band_weight2(o.modulation)
            for s in (1.0, -1.0):
                denominator += weight2 * self._otf_att((fy + s * o.ky) / px_um, (fx + s * o.kx) / px_um) ** 2
        k_max = max(o.k_cycles_per_pixel for o in params.orientations) / px_um
        self.support_per_um = (otf.cutoff_per_um + k_max) * apodization_cutoff
        rho = torch.sqrt(fy**2 + fx**2) / px_um / self.support_per_um
        self.apodization_kind, self.apodization_bend = apodization, float(apodization_bend)
        self.postfilter = (_apodize(rho.float(), apodization, apodization_bend) / denominator).to(torch.complex64)

    def side_band_gain(self, modulation: float) -> float:
        """Factor applied to a separated side band (``c = m / 2`` or ``1 / c``)."""
        c = modulation / 2.0
        return c if self.modulation_weighting else 1.0 / c

    def side_band_weight2(self, modulation: float) -> float:
        """Weight of a side band's ``|OTF|^2`` in the denominator (``c^2`` or 1)."""
        c = modulation / 2.0
        return c * c if self.modulation_weighting else 1.0

    def _otf_att(self, ky: torch.Tensor, kx: torch.Tensor) -> torch.Tensor:
        """OTF times the notch at its centre, at frequencies in cycles per micrometre."""
        values = self.otf.evaluate(ky, kx)
        if self.notch_strength > 0:
            r2 = (ky * ky + kx * kx).float()
            values = values * (1.0 - self.notch_strength * torch.exp(-r2 / (2.0 * self.notch_sigma_per_um**2)))
        return values

    @property
    def output_shape(self) -> tuple[int, int]:
        """Shape of one SR image, ``(2 Y, 2 X)``."""
        return 2 * self.shape_yx[0], 2 * self.shape_yx[1]

    def __call__(self, stacks: torch.Tensor, batch: int | None = None) -> torch.Tensor:
        """Reconstruct raw stacks ``(n, n_orientations, n_phases, Y, X)`` (or one stack) into ``(n, 2 Y, 2 X)``.

        Parameters
        ----------
        stacks
            Raw stacks, any real dtype (moved to the filter's device, computed in float32).
        batch
            Stacks per pass (memory: about ``18 * n_frames * Y * X * 4`` bytes per stack); default 4.

        Returns
        -------
        torch.Tensor
            float32 SR images on the filter's device.
        """
        if stacks.dim() == 4:
            stacks = stacks[None]
        n_or, n_ph = self.params.n_orientations, self.params.n_phases
        if tuple(stacks.shape[1:]) != (n_or, n_ph, *self.shape_yx):
            raise InputError(
                f"the Wiener filter was built for stacks of {n_or} x {n_ph} frames of {self.shape_yx}, "
                f"got {tuple(stacks.shape[1:])}"
            )
        batch = batch or 4
        out = torch.empty((stacks.shape[0], *self.output_shape), dtype=torch.float32, device=self.device)
        for start in range(0, stacks.shape[0], batch):
            chunk = stacks[start : start + batch].to(self.device, torch.float32)
            out[start : start + batch] = self._reconstruct(chunk)
        return out

    def _padded(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zeroed 2x-grid spectra, reused between calls: only their low-frequency corners are ever written."""
        if n not in self._buffers:
            ny, nx = self.shape_yx
            dc = torch.zeros((n, 2 * ny, nx + 1), dtype=torch.complex64, device=self.device)
            side = torch.zeros(
                (n, self.params.n_orientations, 2 * ny, 2 * nx), dtype=torch.complex64, device=self.device
            )
            self._buffers = {n: (dc, side)}
        return self._buffers[n]

    def _reconstruct(self, chunk: torch.Tensor) -> torch.Tensor:
        n, n_or = chunk.shape[0], self.params.n_orientations
        fine = self.output_shape
        dc_buf, side_buf = self._padded(n)
        bands = torch.matmul(self.band_weights, chunk.reshape(n, n_or * self.params.n_phases, -1))
        bands = bands.reshape(n, 1 + 2 * n_or, *self.shape_yx)
        # band 0 of every orientation: one real image, upsampled once
        pad_spectrum(torch.fft.rfft2(bands[:, 0]) * self.prefilter, self.shape_yx, out=dc_buf)
        combined = torch.fft.irfft2(dc_buf, s=fine)
        # +1 band of each orientation, upsampled, shifted to its place with its -1 twin: 2 Re(carrier x band)
        side = torch.complex(bands[:, 1 : 1 + n_or], bands[:, 1 + n_or :])
        pad_full_spectrum(torch.fft.fft2(side) * self.prefilter_full, self.shape_yx, out=side_buf)
        combined += (torch.fft.ifft2(side_buf) * self.carriers).real.sum(dim=1)
        return torch.fft.irfft2(torch.fft.rfft2(combined) * self.postfilter, s=fine)


def wiener_reconstruct_bands(stacks: torch.Tensor, wiener_filter: WienerFilter) -> torch.Tensor:
    """The same estimate as ``wiener_filter(stacks)``, computed band by band in the textbook order.

    Separate the bands of each orientation (full complex spectra), weight each by ``conj(OTF_att)``, move it
    onto the 2x grid, shift it to its true position by a real-space phase ramp, correct its modulation, sum,
    and apply the Wiener denominator and apodisation. Slower; a reference for tests.
    """
    f = wiener_filter
    if stacks.dim() == 4:
        stacks = stacks[None]
    ny, nx = f.shape_yx
    px_um = f.pixel_size_nm / 1000.0
    dev = f.device
    spectra = torch.fft.fft2(stacks.to(dev, torch.float32).to(torch.complex64))
    bands = torch.einsum(
        "obp,nopyx->nobyx", separation_matrix(f.params.phases()).to(dev, torch.complex64), spectra
    )  # (n, n_or, 3, Y, X)
    bands = bands * f.prefilter_full  # conj(OTF_att), Nyquist mask, quarter-pixel offset of the 2x grid
    padded = pad_full_spectrum(bands, f.shape_yx)  # zero-padding onto the 2x grid
    real_space = torch.fft.ifft2(padded)
    y, x = fine_coordinates(f.shape_yx, dev)
    total = torch.zeros((stacks.shape[0], 2 * ny, 2 * nx), dtype=torch.complex64, device=dev)
    for d, o in enumerate(f.params.orientations):
        gain = f.side_band_gain(o.modulation)
        for s, index in ((0, 0), (1, 1), (-1, 2)):
            shift = torch.exp(-2j * math.pi * s * (o.ky * y + o.kx * x)).to(torch.complex64)
            total += real_space[:, d, index] * shift * (1.0 if s == 0 else gain)
    spectrum = torch.fft.fft2(total)
    fy = torch.fft.fftfreq(2 * ny, d=0.5, device=dev, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(2 * nx, d=0.5, device=dev, dtype=torch.float64)[None, :]
    denominator = f.wiener**2 + f.params.n_orientations * f._otf_att(fy / px_um, fx / px_um) ** 2
    for o in f.params.orientations:
        for s in (1.0, -1.0):
            otf2 = f._otf_att((fy + s * o.ky) / px_um, (fx + s * o.kx) / px_um) ** 2
            denominator = denominator + f.side_band_weight2(o.modulation) * otf2
    rho = torch.sqrt(fy**2 + fx**2) / px_um / f.support_per_um
    filt = _apodize(rho.float(), f.apodization_kind, f.apodization_bend) / denominator
    return torch.fft.ifft2(spectrum * filt).real

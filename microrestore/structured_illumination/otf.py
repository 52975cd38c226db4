"""Detection OTFs for SIM, evaluated anywhere in frequency space (band shifts are sub-pixel).

An :class:`OTF` is a radial magnitude profile (normalised to 1 at zero frequency, 0 beyond its last sample)
times, optionally, the camera pixel's transfer function ``sinc(p ky) sinc(p kx)``. It comes from:

- the optics: the ideal incoherent OTF of :func:`microrestore.optics.ideal_otf`, raised to
  ``otf_attenuation``, with the pixel transfer (:func:`otf_from_optics`);
- an MRC file of a radially averaged complex OTF, as shipped with rDL-SIM (``TIRF488_*_OTF2d.mrc``: 257
  samples, spacing 0.0312 cycles/µm stored as the header's pixel size);
- a TIFF file: a 1D radial profile (spacing from ``otf_dk_per_um``) or a PSF (2D, or the brightest plane of a
  3D stack) at the raw pixel size, whose OTF is radially averaged.

Measured OTFs already include the pixel transfer; magnitudes are used (the phase of a radial profile of a
centred PSF is zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from microrestore.errors import InputError

if TYPE_CHECKING:
    from microrestore.structured_illumination.options import SIMOptions

__all__ = ["OTF", "load_otf", "otf_from_optics", "radial_profile", "read_otf_file"]

#: Samples of a computed ideal OTF's radial profile (linear interpolation error < 1e-6).
IDEAL_SAMPLES = 4096
#: A measured OTF's support ends where its profile stays below this fraction of its zero-frequency value;
#: the noise beyond is set to 0.
SUPPORT_THRESHOLD = 1e-2


@dataclass
class OTF:
    """A rotationally symmetric detection OTF, optionally times the camera pixel's transfer.

    Attributes
    ----------
    profile
        Magnitudes at ``k = i * dk_per_um`` (float64, ``profile[0] == 1``); 0 beyond the last sample.
    dk_per_um
        Sample spacing in cycles per micrometre.
    pixel_um
        Camera pixel size (micrometres) of the pixel transfer ``sinc(p ky) sinc(p kx)``, or ``None`` for none.
    source
        Where it came from, for reports.
    cutoff
        Support in cycles per micrometre; ``None``: where the profile stays below ``SUPPORT_THRESHOLD``, and
        the profile is set to 0 beyond (a measured OTF's tail is noise).
    """

    profile: np.ndarray
    dk_per_um: float
    pixel_um: float | None = None
    source: str = ""
    cutoff: float | None = None

    def __post_init__(self) -> None:
        prof = np.abs(np.squeeze(np.asarray(self.profile))).astype(np.float64)
        if prof.ndim != 1 or prof.size < 2:
            raise InputError(f"a radial OTF profile must be 1D with at least 2 samples, got shape {prof.shape}")
        if not np.isfinite(prof).all():
            raise InputError("the OTF profile contains NaN or infinite values")
        if prof[0] <= 0:
            raise InputError("the OTF profile is 0 at zero frequency, cannot normalise")
        if not (math.isfinite(self.dk_per_um) and self.dk_per_um > 0):
            raise InputError(f"the OTF sample spacing must be positive, got {self.dk_per_um!r}")
        prof = prof / prof[0]
        self.dk_per_um = float(self.dk_per_um)
        if self.cutoff is None:
            above = np.nonzero(prof >= SUPPORT_THRESHOLD)[0]
            last = min(int(above[-1]) + 1, prof.size - 1)
            prof[last + 1 :] = 0.0
            self.cutoff = last * self.dk_per_um
        self.profile = prof

    @property
    def cutoff_per_um(self) -> float:
        """Support of the OTF (cycles per micrometre)."""
        assert self.cutoff is not None
        return float(self.cutoff)

    def evaluate(self, ky: torch.Tensor, kx: torch.Tensor) -> torch.Tensor:
        """OTF at frequencies ``(ky, kx)`` in cycles per micrometre (broadcast tensors), float32.

        Linear interpolation of the radial profile, 0 beyond its last sample, times the pixel transfer.
        """
        device = ky.device
        prof = torch.as_tensor(self.profile, dtype=torch.float32, device=device)
        prof = torch.cat([prof, prof.new_zeros(2)])  # indices past the end read 0
        ky, kx = ky.float(), kx.float()
        r = torch.hypot(ky, kx).mul_(1.0 / self.dk_per_um).clamp_(max=prof.numel() - 2)
        i0 = r.long()
        values = torch.lerp(prof[i0], prof[i0 + 1], r.sub_(i0))
        if self.pixel_um is not None:
            values *= torch.sinc(ky * self.pixel_um) * torch.sinc(kx * self.pixel_um)
        return values

    def grid(
        self,
        shape_yx: tuple[int, int],
        pixel_size_nm: float,
        shift_cycles_per_pixel: tuple[float, float] = (0.0, 0.0),
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """OTF on the FFT grid of an image (zero frequency at index 0), optionally centred at a shift.

        Parameters
        ----------
        shape_yx
            Grid shape.
        pixel_size_nm
            Pixel size of the grid.
        shift_cycles_per_pixel
            ``(ky, kx)`` in cycles per pixel of *this* grid: the result is ``OTF(q - shift)``.
        device
            Torch device.

        Returns
        -------
        torch.Tensor
            float32 ``shape_yx``.
        """
        p_um = pixel_size_nm / 1000.0
        fy = torch.fft.fftfreq(shape_yx[0], device=device, dtype=torch.float64)[:, None]
        fx = torch.fft.fftfreq(shape_yx[1], device=device, dtype=torch.float64)[None, :]
        ky = (fy - shift_cycles_per_pixel[0]) / p_um
        kx = (fx - shift_cycles_per_pixel[1]) / p_um
        return self.evaluate(ky, kx)


def otf_from_optics(
    na: float,
    wavelength_nm: float,
    *,
    attenuation: float = 1.0,
    pixel_size_nm: float | None = None,
    immersion_index: float = 1.518,
) -> OTF:
    """Ideal incoherent OTF of a circular pupil (cut-off ``2 NA / λ``) raised to ``attenuation``.

    Parameters
    ----------
    na, wavelength_nm
        Detection NA and emission wavelength.
    attenuation
        Exponent (> 1: a simple model of a real objective's mid-frequency loss).
    pixel_size_nm
        When given, the camera pixel's transfer ``sinc`` is included.
    immersion_index
        Immersion refractive index (checked against ``na``).

    Returns
    -------
    OTF
        The OTF.
    """
    from microrestore.optics import Optics, ideal_otf

    optics = Optics(na=na, wavelength_nm=wavelength_nm, pixel_size_nm=1.0, immersion_index=immersion_index)
    # A 1 x N "image" whose FFT frequencies cover [0, cut-off] on a fine radial grid: reuse ideal_otf's formula.
    n = 2 * IDEAL_SAMPLES
    pixel_nm = 1000.0 * IDEAL_SAMPLES / (optics.cutoff_per_um * n)  # grid spacing dk = cut-off / IDEAL_SAMPLES
    fine = Optics(na, wavelength_nm, pixel_nm, immersion_index)
    samples = ideal_otf(fine, (1, n), attenuation)[0, : IDEAL_SAMPLES + 2]
    dk = optics.cutoff_per_um / IDEAL_SAMPLES
    pixel_um = None if pixel_size_nm is None else pixel_size_nm / 1000.0
    extra = f", attenuation {attenuation:g}" if attenuation != 1 else ""
    source = f"ideal OTF (NA {na:g}, {wavelength_nm:g} nm{extra})"
    return OTF(samples, dk, pixel_um, source, cutoff=optics.cutoff_per_um)


def radial_profile(otf_2d: np.ndarray, pixel_size_nm: float) -> tuple[np.ndarray, float]:
    """Radially averaged magnitude of a 2D OTF on its FFT grid; returns ``(profile, dk_per_um)``.

    The spacing is that of the shorter axis; the profile ends at that axis' Nyquist frequency.
    """
    ny, nx = otf_2d.shape
    n = min(ny, nx)
    dk = 1000.0 / (n * pixel_size_nm)
    fy = np.fft.fftfreq(ny, d=pixel_size_nm / 1000.0)[:, None]
    fx = np.fft.fftfreq(nx, d=pixel_size_nm / 1000.0)[None, :]
    index = np.rint(np.sqrt(fy**2 + fx**2) / dk).astype(np.int64).ravel()
    keep = index <= n // 2
    sums = np.bincount(index[keep], weights=np.abs(otf_2d).ravel()[keep], minlength=n // 2 + 1)
    counts = np.bincount(index[keep], minlength=n // 2 + 1)
    return sums / np.maximum(counts, 1), dk


def read_otf_file(path: str | Path, *, dk_per_um: float | None = None, pixel_size_nm: float | None = None) -> OTF:
    """Read an OTF (or a PSF) from an MRC or TIFF file.

    Parameters
    ----------
    path
        ``.mrc``: a radially averaged OTF (shape ``(1, n)`` or ``(n,)``, complex or real), its spacing the
        header's pixel size (cycles/µm) unless ``dk_per_um`` is given. ``.tif``: a 1D profile (needs
        ``dk_per_um``) or a 2D / 3D PSF at the raw pixel size (the TIFF's own pixel size when it has one, else
        ``pixel_size_nm``), radially averaged after the FFT.
    dk_per_um
        Sample spacing of a radial profile, cycles per micrometre.
    pixel_size_nm
        Pixel size of a PSF file without pixel size metadata.

    Returns
    -------
    OTF
        The OTF, normalised to 1 at zero frequency.

    Raises
    ------
    InputError
        One line naming the file: missing, unreadable, wrong shape, NaN, or missing spacing.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("OTF file not found", path)
    suffix = path.suffix.lower()
    if suffix in (".mrc", ".otf"):
        from microrestore.io.mrc import read_mrc

        data, header = read_mrc(path)
        prof = np.squeeze(data)
        if prof.ndim != 1:
            raise InputError(f"expected a radial OTF profile of shape (1, n), got {tuple(data.shape)}", path)
        dk = dk_per_um if dk_per_um is not None else header.voxel_size_um[0]
        if not dk:
            raise InputError("the MRC header has no sample spacing; give --otf-dk", path)
        return _profile_otf(prof, float(dk), path)
    if suffix not in (".tif", ".tiff"):
        raise InputError("OTF files must be .mrc (radial OTF) or .tif (radial profile or PSF)", path)
    import tifffile

    try:
        data = np.squeeze(np.asarray(tifffile.imread(path)))
    except Exception as exc:  # tifffile raises several types for unreadable files
        raise InputError(f"cannot read the OTF file as a TIFF ({type(exc).__name__}: {exc})", path) from None
    if data.ndim == 1:
        if dk_per_um is None:
            raise InputError("a 1D radial OTF profile needs its sample spacing: give --otf-dk (cycles/um)", path)
        return _profile_otf(data, float(dk_per_um), path)
    if data.ndim not in (2, 3) or np.iscomplexobj(data):
        raise InputError(f"a TIFF OTF file must hold a 1D profile or a real 2D/3D PSF, got shape {data.shape}", path)
    psf = np.asarray(data, dtype=np.float64)
    if not np.isfinite(psf).all():
        raise InputError("the PSF contains NaN or infinite values", path)
    if psf.ndim == 3:
        psf = psf[int(np.argmax(psf.reshape(psf.shape[0], -1).max(axis=1)))]
    size_nm = _tiff_pixel_nm(path) or pixel_size_nm
    if size_nm is None:
        raise InputError("the PSF file has no pixel size; give the raw pixel size (--pixel-size)", path)
    from microrestore.optics import otf_from_psf

    psf = psf - np.median(psf[[0, -1], :])  # remove the camera offset measured on the border rows
    try:
        otf2d = otf_from_psf(np.maximum(psf, 0.0))
    except InputError as exc:
        raise InputError(str(exc), path) from None
    prof, dk = radial_profile(otf2d, size_nm)
    return OTF(prof, dk, None, f"PSF {path.name}")


def _tiff_pixel_nm(path: Path) -> float | None:
    """The TIFF's own X pixel size in nanometres, if its metadata has one."""
    from microrestore.io import read_image

    try:
        own = read_image(path).pixel_size.get("X")
    except InputError:
        return None
    return float(own) * 1000.0 if own else None


def _profile_otf(prof: np.ndarray, dk: float, path: Path) -> OTF:
    try:
        return OTF(np.abs(prof), dk, None, f"file {path.name}")
    except InputError as exc:
        raise InputError(str(exc), path) from None


def load_otf(options: SIMOptions, pixel_size_nm: float) -> OTF:
    """The OTF the options ask for: ``options.otf`` when given, else the ideal OTF of ``na`` and ``wavelength_nm``.

    Raises
    ------
    InputError
        When neither an OTF file nor the detection optics are given.
    """
    if options.otf is not None:
        return read_otf_file(options.otf, dk_per_um=options.otf_dk_per_um, pixel_size_nm=pixel_size_nm)
    if options.na is None or options.wavelength_nm is None:
        raise InputError("SIM needs an OTF: give --na and --wavelength (the detection optics) or --otf FILE")
    return otf_from_optics(
        options.na,
        options.wavelength_nm,
        attenuation=options.otf_attenuation,
        pixel_size_nm=pixel_size_nm if options.pixel_transfer else None,
        immersion_index=options.immersion_index,
    )

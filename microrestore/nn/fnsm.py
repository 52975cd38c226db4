r"""The Fourier noise-suppression module (FNSM) of TiS/SiS-rDL (Qiao et al.), switchable on any denoiser.

``FNSM`` low-passes its input in Fourier space with a soft circular mask whose cutoff and slope are learned:

.. math:: y = \mathrm{Re}\, \mathcal{F}^{-1}\{ M \cdot \mathcal{F}\{x\} \}, \qquad
          M(k) = \mathrm{sigmoid}(\mathrm{slope} \cdot (\mathrm{cutoff} - |k|)).

As in the authors' code the transform is lateral (over Y and X; a 3D input is filtered slice by slice) unless
``lateral_only=False`` asks for a full 3D transform. The cutoff starts at the detection OTF support
``2 NA / lambda`` when the optics are known (4.95 1/um for NA 1.3 at 525 nm), and the slope at 100.

``FNSMInput`` feeds the filtered image beside the raw one, as in the papers: in 2D
``concat(conv(FNSM(x)), conv(x))`` (half of the features each), in 3D ``conv(x) + conv(FNSM(x))``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from microrestore.nn.layers import check_ndim, layer_class

__all__ = ["FNSM", "FNSMInput", "fnsm_report", "otf_cutoff"]


def otf_cutoff(na: float, wavelength_nm: float) -> float:
    """Return the incoherent OTF support ``2 NA / lambda`` in 1/um.

    Parameters
    ----------
    na
        Numerical aperture of the detection objective.
    wavelength_nm
        Emission wavelength in nanometres.

    Returns
    -------
    float
        Cutoff spatial frequency in cycles per micrometre (e.g. 4.952 for NA 1.3 at 525 nm).
    """
    if na <= 0 or wavelength_nm <= 0:
        raise ValueError(f"na and wavelength_nm must be positive, got {na} and {wavelength_nm}")
    return 2.0 * float(na) / (float(wavelength_nm) / 1000.0)


class FNSM(nn.Module):
    """Fourier noise-suppression module: a learnable soft low-pass filter.

    Parameters
    ----------
    ndim
        Spatial dimensions of the input: 2 (``(B, C, Y, X)``) or 3 (``(B, C, Z, Y, X)``).
    cutoff
        Initial cutoff frequency, in the units of ``|k|``: cycles/um when ``pixel_size_um`` is given, else
        cycles/pixel. Default: ``2 NA / lambda`` when ``na`` and ``wavelength_nm`` are given (needs
        ``pixel_size_um``), else the Nyquist frequency (0.5 cycles/pixel, or ``0.5 / max(pixel_size_um)``),
        i.e. a mask that passes the inscribed Nyquist disc and attenuates only the corners.
    slope
        Initial slope of the sigmoid edge (in the inverse units of ``|k|``; 100 as in the paper).
    pixel_size_um
        Pixel size in micrometres: one number, or one per transformed axis (``(y, x)``, or ``(z, y, x)``
        when ``lateral_only`` is False in 3D). ``None`` measures ``|k|`` in cycles/pixel.
    na, wavelength_nm
        Detection NA and emission wavelength, used for the default cutoff.
    trainable
        Make ``cutoff`` and ``slope`` learnable parameters (else fixed buffers).
    lateral_only
        For ``ndim=3``: transform Y and X only (each Z slice separately), as the authors' code does.

    Notes
    -----
    With ``cutoff = 0`` the mask is 1/2 at ``k = 0`` (the sigmoid of 0), so the output tends to half the mean;
    a cutoff just above 0 (below the first non-zero frequency) and a steep slope keep only the mean.
    The transform is computed in float32 whatever the input dtype (cuFFT has no bf16 transform).
    """

    spec_name = "fnsm"

    def __init__(
        self,
        ndim: int = 2,
        cutoff: float | None = None,
        slope: float = 100.0,
        pixel_size_um: float | Sequence[float] | None = None,
        na: float | None = None,
        wavelength_nm: float | None = None,
        trainable: bool = True,
        lateral_only: bool = True,
    ) -> None:
        super().__init__()
        self.spec: dict[str, Any] = {
            "name": self.spec_name,
            "ndim": ndim,
            "cutoff": cutoff,
            "slope": slope,
            "pixel_size_um": list(pixel_size_um) if isinstance(pixel_size_um, Sequence) else pixel_size_um,
            "na": na,
            "wavelength_nm": wavelength_nm,
            "trainable": trainable,
            "lateral_only": lateral_only,
        }
        self.ndim = check_ndim(ndim)
        self.fft_ndim = 2 if (ndim == 2 or lateral_only) else 3
        if pixel_size_um is None:
            self.pixel_size: tuple[float, ...] | None = None
        else:
            sizes = (
                tuple(float(s) for s in pixel_size_um)
                if isinstance(pixel_size_um, Sequence)
                else (float(pixel_size_um),) * self.fft_ndim
            )
            if len(sizes) != self.fft_ndim or min(sizes) <= 0:
                raise ValueError(
                    f"pixel_size_um must be positive, one value or {self.fft_ndim} (one per transformed axis), "
                    f"got {pixel_size_um!r}"
                )
            self.pixel_size = sizes
        if cutoff is None:
            if (na is None) != (wavelength_nm is None):
                raise ValueError("give both na and wavelength_nm, or neither")
            if na is not None and wavelength_nm is not None:
                if self.pixel_size is None:
                    raise ValueError(
                        "a cutoff from na and wavelength_nm is in 1/um and needs pixel_size_um to relate it to "
                        "the pixel grid"
                    )
                cutoff = otf_cutoff(na, wavelength_nm)
            else:
                cutoff = 0.5 if self.pixel_size is None else 0.5 / max(self.pixel_size)
        cutoff_t = torch.tensor(float(cutoff), dtype=torch.float32)
        slope_t = torch.tensor(float(slope), dtype=torch.float32)
        if trainable:
            self.cutoff = nn.Parameter(cutoff_t)
            self.slope = nn.Parameter(slope_t)
        else:
            self.register_buffer("cutoff", cutoff_t)
            self.register_buffer("slope", slope_t)

    def frequency_magnitude(self, shape: Sequence[int], device: torch.device | str | None = None) -> torch.Tensor:
        """``|k|`` on the half-spectrum grid of ``torch.fft.rfftn`` for transformed axes of size ``shape``.

        Parameters
        ----------
        shape
            Sizes of the transformed axes (``fft_ndim`` of them).
        device
            Where to build the grid.

        Returns
        -------
        torch.Tensor
            float32 tensor of shape ``(*shape[:-1], shape[-1] // 2 + 1)`` in cycles/um (or cycles/pixel).
        """
        spacing = self.pixel_size or (1.0,) * len(shape)
        axes = []
        for i, (n, d) in enumerate(zip(shape, spacing, strict=True)):
            last = i == len(shape) - 1
            freq = torch.fft.rfftfreq(n, d=d, device=device) if last else torch.fft.fftfreq(n, d=d, device=device)
            view = [1] * len(shape)
            view[i] = freq.numel()
            axes.append(freq.to(torch.float32).reshape(view) ** 2)
        total = axes[0]
        for a in axes[1:]:
            total = total + a
        return torch.sqrt(total)

    def mask(self, shape: Sequence[int], device: torch.device | str | None = None) -> torch.Tensor:
        """Return the soft mask ``sigmoid(slope (cutoff - |k|))`` on the half-spectrum grid (differentiable)."""
        k = self.frequency_magnitude(shape, device)
        return torch.sigmoid(self.slope.float() * (self.cutoff.float() - k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Filter ``x`` of shape ``(B, C, *spatial)`` over its last ``fft_ndim`` axes."""
        if x.dim() != self.ndim + 2:
            raise ValueError(f"FNSM(ndim={self.ndim}) expects a {self.ndim + 2}D tensor, got {tuple(x.shape)}")
        dims = tuple(range(-self.fft_ndim, 0))
        shape = tuple(x.shape[-self.fft_ndim :])
        spectrum = torch.fft.rfftn(x.float(), dim=dims)
        filtered = torch.fft.irfftn(spectrum * self.mask(shape, x.device), s=shape, dim=dims)
        return filtered.to(x.dtype)

    def extra_repr(self) -> str:
        """Show the current cutoff and slope."""
        unit = "1/um" if self.pixel_size is not None else "cycles/pixel"
        cutoff, slope = float(self.cutoff.detach()), float(self.slope.detach())
        return f"ndim={self.ndim}, cutoff={cutoff:.4g} {unit}, slope={slope:.4g}"


class FNSMInput(nn.Module):
    """Input fusion of the raw image and its FNSM-filtered version.

    Parameters
    ----------
    in_channels
        Channels of the input image.
    features
        Output channels. In 2D each branch has half of them and they are concatenated
        (``concat(conv(FNSM(x)), conv(x))``, filtered branch first, as in the authors' code); in 3D both
        branches have ``features`` channels and are added (``conv(x) + conv(FNSM(x))``).
    ndim
        2 or 3.
    fnsm
        The :class:`FNSM` module, or its keyword arguments (``None``: defaults; a ``name`` key is ignored).
    kernel_size
        Kernel of the two (linear) convs.

    Attributes
    ----------
    out_channels : int
        Equal to ``features``.
    """

    def __init__(
        self,
        in_channels: int,
        features: int,
        ndim: int = 2,
        fnsm: FNSM | Mapping[str, Any] | None = None,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.ndim = check_ndim(ndim)
        if isinstance(fnsm, FNSM):
            self.fnsm = fnsm
        else:
            options = dict(fnsm or {})
            options.pop("name", None)  # an FNSM.spec works too
            options.setdefault("ndim", ndim)
            self.fnsm = FNSM(**options)
        if self.fnsm.ndim != ndim:
            raise ValueError(f"FNSM has ndim={self.fnsm.ndim} but FNSMInput has ndim={ndim}")
        conv = layer_class("conv", ndim)
        pad = kernel_size // 2
        if ndim == 2:
            if features < 2:
                raise ValueError(f"2D FNSMInput concatenates two branches and needs features >= 2, got {features}")
            self.conv_filtered = conv(in_channels, features // 2, kernel_size, padding=pad)
            self.conv_raw = conv(in_channels, features - features // 2, kernel_size, padding=pad)
        else:
            self.conv_filtered = conv(in_channels, features, kernel_size, padding=pad)
            self.conv_raw = conv(in_channels, features, kernel_size, padding=pad)
        self.out_channels = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_channels, *spatial)`` to ``(B, features, *spatial)``."""
        filtered = self.conv_filtered(self.fnsm(x))
        raw = self.conv_raw(x)
        if self.ndim == 2:
            return torch.cat([filtered, raw], dim=1)
        return raw + filtered


def fnsm_report(network: nn.Module) -> dict[str, float | str]:
    """The learned cutoff and slope of the (first) FNSM inside ``network``, for a model's metrics.

    Parameters
    ----------
    network
        Any module; its submodules are searched for an :class:`FNSM`.

    Returns
    -------
    dict
        Empty without an FNSM; else ``fnsm_cutoff`` and ``fnsm_slope`` (in the module's units, named by
        ``fnsm_unit``: ``1/um`` or ``cycles/pixel``), ``fnsm_cutoff_cycles_per_pixel`` and, with a pixel size,
        ``fnsm_cutoff_per_um`` (laterally isotropic pixels: the first transformed axis's size is used).
    """
    for module in network.modules():
        if isinstance(module, FNSM):
            cutoff, slope = float(module.cutoff.detach()), float(module.slope.detach())
            report: dict[str, float | str] = {"fnsm_cutoff": cutoff, "fnsm_slope": slope}
            if module.pixel_size is None:
                report["fnsm_unit"] = "cycles/pixel"
                report["fnsm_cutoff_cycles_per_pixel"] = cutoff
            else:
                report["fnsm_unit"] = "1/um"
                report["fnsm_cutoff_per_um"] = cutoff
                report["fnsm_cutoff_cycles_per_pixel"] = cutoff * module.pixel_size[-1]
            return report
    return {}

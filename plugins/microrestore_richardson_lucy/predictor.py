"""The ``richardson-lucy`` predictor: PSF, background, RL per YX plane or per ZYX volume."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from microrestore.errors import InputError
from microrestore_richardson_lucy.deconv import richardson_lucy

if TYPE_CHECKING:
    from microrestore_richardson_lucy import RichardsonLucyParams

#: Half-width of a computed PSF: this many λ/NA plus the radius of the defocused disc.
PSF_RADIUS_LAMBDA_OVER_NA = 4.0
#: Largest ratio of a plane's peak to its 99.9th percentile that float32 FFT convolution can carry.
MAX_DYNAMIC_RANGE = 1e6


class RichardsonLucyPredictor:
    """Deconvolve images plane by plane (or volume by volume); see :mod:`microrestore_richardson_lucy`.

    Attributes
    ----------
    params
        The validated options.
    psf_file
        The PSF read from ``params.psf`` (normalised), if a file was given.
    last_psf
        The PSF used for the last image.
    backgrounds
        The background subtracted from each plane or volume of the last image.
    """

    def __init__(self, params: RichardsonLucyParams) -> None:
        self.params = params
        self.psf_file: np.ndarray | None = None
        if params.psf is not None:
            from microrestore.optics import read_psf

            self.psf_file = read_psf(params.psf)
            if params.dims == 2 and self.psf_file.ndim == 3:
                raise InputError("dims=2 needs a 2D PSF; this one is 3D", params.psf)
        self.last_psf: np.ndarray | None = None
        self.backgrounds: list[float] = []

    def predict(self, image: Any, out: Any = None) -> Any:
        """Deconvolve ``image`` (an ``ImageData``); return float32 in its units, or fill and return ``out``."""
        data = image.data
        axes = str(image.axes).upper()
        if len(axes) != data.ndim:
            raise InputError(f"axes {axes!r} do not match the image's {data.ndim} dimensions", image.path)
        if "Y" not in axes or "X" not in axes:
            raise InputError(f"richardson-lucy needs Y and X axes (image axes {axes!r})", image.path)
        spatial = "ZYX" if self._dims(image, axes) == 3 else "YX"
        psf = self._psf(image, axes, spatial)
        self.last_psf = psf
        if out is None:
            out = np.empty(data.shape, dtype=np.float32)
        elif tuple(out.shape) != tuple(data.shape):
            raise ValueError(f"out has shape {tuple(out.shape)}, the image {tuple(data.shape)}")
        self.backgrounds = []
        p = self.params
        for index, to_target, from_target in _blocks(axes, data.shape, spatial):
            block = np.transpose(np.asarray(data[index], dtype=np.float64), to_target)
            background = p.background if p.background is not None else _background(block, p.background_percentile)
            self.backgrounds.append(float(background))
            signal = block - background
            check_dynamic_range(signal, image.path)
            restored = richardson_lucy(signal, psf, iterations=p.iterations, tv_weight=p.tv_weight)
            _match_flux(restored, signal)
            restored += np.float32(background)
            out[index] = np.transpose(restored, from_target)
        return out

    # -- internals -------------------------------------------------------------------------------------
    def _dims(self, image: Any, axes: str) -> int:
        p = self.params
        has_z = "Z" in axes and image.data.shape[axes.index("Z")] > 1
        psf_3d = self.psf_file is not None and self.psf_file.ndim == 3
        if psf_3d and not has_z:
            raise InputError(
                f"the PSF is 3D (shape {self.psf_file.shape}) but the image has no Z axis (axes {axes!r}); "
                "give a 2D PSF",
                image.path,
            )
        if p.dims == 3 and not has_z:
            raise InputError(f"dims=3 needs a Z axis with more than one plane (image axes {axes!r})", image.path)
        if p.dims is not None:
            return p.dims
        return 3 if psf_3d else 2

    def _psf(self, image: Any, axes: str, spatial: str) -> np.ndarray:
        if self.psf_file is not None:
            if self.psf_file.ndim == 2 and spatial == "ZYX":
                # a 2D PSF in a 3D deconvolution: light only within the plane
                return self.psf_file[None]
            return self.psf_file
        from microrestore.optics import Optics, psf_3d, pupil_psf

        p = self.params
        assert p.na is not None and p.wavelength_nm is not None
        pixel_nm = p.pixel_size_nm
        if pixel_nm is None:
            sizes = getattr(image, "pixel_size", None) or {}
            pixel_um = sizes.get("X") or sizes.get("Y")
            if not pixel_um:
                raise InputError(
                    "richardson-lucy needs the pixel size to compute the PSF: the image has none in its "
                    "metadata; give --set pixel_size_nm=...",
                    image.path,
                )
            pixel_nm = float(pixel_um) * 1000.0
        optics = Optics(
            na=p.na, wavelength_nm=p.wavelength_nm, pixel_size_nm=pixel_nm, immersion_index=p.immersion_index
        )
        ys, xs = image.data.shape[axes.index("Y")], image.data.shape[axes.index("X")]
        if spatial == "YX":
            size = _psf_size(optics, abs(p.defocus_um))
            shape_yx = (min(size, _odd_at_most(2 * ys - 1)), min(size, _odd_at_most(2 * xs - 1)))
            return pupil_psf(optics, shape_yx, defocus_um=p.defocus_um)
        z_step = p.z_step_nm
        if z_step is None:
            z_um = (getattr(image, "pixel_size", None) or {}).get("Z")
            if not z_um:
                raise InputError(
                    "richardson-lucy dims=3 with a computed PSF needs the z step: the image has no Z pixel "
                    "size; give --set z_step_nm=... or a 3D psf=FILE",
                    image.path,
                )
            z_step = float(z_um) * 1000.0
        nz = image.data.shape[axes.index("Z")]
        depth_um = (nz - 1) * z_step / 1000.0
        size = _psf_size(optics, depth_um)
        shape_zyx = (
            2 * (nz - 1) + 1,
            min(size, _odd_at_most(2 * ys - 1)),
            min(size, _odd_at_most(2 * xs - 1)),
        )
        return psf_3d(optics, shape_zyx, z_step_nm=z_step)


def check_dynamic_range(signal: np.ndarray, path: Any = None) -> None:
    """Refuse a plane (or volume) whose peak dwarfs the rest of it by more than :data:`MAX_DYNAMIC_RANGE`.

    RL convolves in float32 by FFT, where every output value carries a rounding error of about 1e-7 of the
    largest value. One hot or corrupt pixel a million times brighter than the image's 99.9th percentile
    buries all the others in that rounding error (a 3e38 pixel gave an all-NaN result): the output would
    be wrong everywhere, so it is refused with the value and its position instead. Computing in float64
    would only move the limit (to about 1e15) at twice the memory and time; no real fluorescence image has
    such a range (a 16-bit camera spans 65535), so the check costs nothing on real data.

    Parameters
    ----------
    signal
        The background-subtracted plane or volume.
    path
        The image file, named in the message.

    Raises
    ------
    InputError
        The ratio exceeds :data:`MAX_DYNAMIC_RANGE`.
    """
    magnitude = np.abs(signal)
    peak = float(magnitude.max())
    typical = float(np.percentile(magnitude, 99.9))
    if typical <= 0:  # sparse: most values are exactly the background
        nonzero = magnitude[magnitude > 0]
        typical = float(np.median(nonzero)) if nonzero.size else 0.0
    if typical > 0 and peak <= MAX_DYNAMIC_RANGE * typical:
        return
    if peak == 0:
        return
    where = tuple(int(i) for i in np.unravel_index(int(np.argmax(magnitude)), magnitude.shape))
    raise InputError(
        f"pixel value {peak:.3g} above the background at {where} is more than {MAX_DYNAMIC_RANGE:.0e} times the "
        f"image's 99.9th percentile ({typical:.3g}): richardson-lucy's FFT convolution would bury every other "
        "pixel in its rounding error; replace the hot or corrupt pixel (e.g. by its neighbours' median) first",
        path,
    )


def _psf_size(optics: Any, defocus_um: float) -> int:
    """Odd edge in pixels of a computed PSF: a few λ/NA plus the defocused disc's diameter."""
    lam_na_um = optics.wavelength_um / optics.na
    tan_theta = optics.sin_max / math.sqrt(1.0 - optics.sin_max**2)
    radius_um = PSF_RADIUS_LAMBDA_OVER_NA * lam_na_um + defocus_um * tan_theta
    return 2 * math.ceil(radius_um / optics.pixel_size_um) + 1


def _odd_at_most(n: int) -> int:
    return n if n % 2 == 1 else n - 1


def _background(block: np.ndarray, percentile: float) -> float:
    """Low percentile of the image after a 3x3 mean in YX (less biased by noise than the raw pixels)."""
    from scipy.ndimage import uniform_filter

    size = (1,) * (block.ndim - 2) + (3, 3)
    return float(np.percentile(uniform_filter(block, size=size, mode="reflect"), percentile))


def _match_flux(restored: np.ndarray, signal: np.ndarray) -> None:
    """Scale ``restored`` (in place) to the total of the background-subtracted input, when both are positive.

    RL keeps the flux of the padded domain; this removes what crossed the crop and what clipping the
    negative noise at 0 added.
    """
    target = float(np.sum(signal, dtype=np.float64))
    if target <= 0:
        target = float(np.sum(np.maximum(signal, 0.0), dtype=np.float64))
    current = float(np.sum(restored, dtype=np.float64))
    if target > 0 and current > 0:
        restored *= np.float32(target / current)


def _blocks(axes: str, shape: tuple[int, ...], spatial: str) -> Iterator[tuple[tuple[Any, ...], list[int], list[int]]]:
    """Yield ``(index, to_spatial, from_spatial)`` for each plane or volume over the other axes.

    ``data[index]`` keeps the spatial axes in the file's order; ``np.transpose(block, to_spatial)`` puts them
    in ``spatial`` order and ``from_spatial`` undoes it.
    """
    dims = [axes.index(a) for a in spatial]
    lead = [i for i in range(len(shape)) if i not in dims]
    order = [a for a in axes if a in spatial]
    to_target = [order.index(a) for a in spatial]
    from_target = list(np.argsort(to_target))
    for values in np.ndindex(*(shape[i] for i in lead)):
        index: list[Any] = [slice(None)] * len(shape)
        for dim, v in zip(lead, values, strict=True):
            index[dim] = v
        yield tuple(index), to_target, [int(i) for i in from_target]

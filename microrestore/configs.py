"""Shared option groups of method configurations: network sizes, FNSM and background normalisation options.

Validation itself (:func:`validate`, :func:`pydantic_message`) is :mod:`microrestore.validation`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from microrestore.errors import InputError

# Re-exported: validation lived here first, and plugins import ``validate`` from here.
from microrestore.validation import pydantic_message as pydantic_message
from microrestore.validation import validate as validate

# --------------------------------------------------------------------------------------------------------------
# Network sizes. Training configurations declare their network options with these bounded types, and the network
# specs that a model folder's config.yaml rebuilds are checked against the same types before any network is built
# (``microrestore.nn.registry.NETWORK_LIMITS``): a hand-edited ``depth: 40`` or ``base_filters: 200000`` is refused
# in one line instead of hanging or allocating terabytes.

#: U-Net pooling levels (CARE, Noise2Void).
UNetDepth = Annotated[int, Field(ge=1, le=5)]
#: Filters of a U-Net's first level; doubled at each level.
UNetFilters = Annotated[int, Field(ge=2, le=256)]
#: Convolution kernel size of a U-Net or RCAN.
KernelSize = Annotated[int, Field(ge=3, le=7)]
#: Filters of a GAN generator's or discriminator's first layer (ngf, ndf).
GanFilters = Annotated[int, Field(ge=1, le=512)]
#: Residual blocks of a ResNet generator.
ResBlocks = Annotated[int, Field(ge=0, le=32)]
#: Image channels a GAN maps (c2GAN, COMI).
ImageChannels = Annotated[int, Field(ge=1, le=16)]
#: Residual groups of an RCAN.
RcanGroups = Annotated[int, Field(ge=1, le=16)]
#: Residual channel-attention blocks per RCAN group.
RcanBlocks = Annotated[int, Field(ge=1, le=32)]
#: Channels of an RCAN's or rDL denoiser's tail before the output.
TailChannels = Annotated[int, Field(ge=1, le=1024)]


# --------------------------------------------------------------------------------------------------------------
# Option groups that several methods' configurations share (pydantic mixins; no torch).


class FNSMOptions(BaseModel):
    """The Fourier noise-suppression module (FNSM, Qiao et al.) at a denoiser's input, and its optics.

    Mixed into a method's configuration, it adds ``fnsm: true`` and the optics that set the module's initial
    cutoff ``2 NA / lambda`` (see :class:`microrestore.nn.FNSM`). The cutoff and slope are trained with the
    network; the learned values are written to the model's ``metrics``.
    """

    fnsm: bool = False
    """Feed the FNSM-filtered image beside the raw one at the network's input."""
    na: float | None = Field(None, gt=0, le=1.7)
    """Detection numerical aperture, for the FNSM's initial cutoff 2 NA / lambda."""
    wavelength_nm: float | None = Field(None, gt=0)
    """Emission wavelength in nm, for the FNSM's initial cutoff."""
    pixel_size_um: float | None = Field(None, gt=0)
    """Lateral pixel size in um (default: from the images' metadata when na and wavelength_nm are given). With a
    pixel size the FNSM works in 1/um, else in cycles/pixel."""
    fnsm_cutoff: float | None = Field(None, gt=0)
    """Initial cutoff (1/um with a pixel size, else cycles/pixel); default 2 NA / lambda, else Nyquist."""
    fnsm_slope: float = Field(100.0, gt=0)
    """Initial slope of the mask's sigmoid edge (100 in the paper)."""

    @model_validator(mode="after")
    def _optics_pairs(self) -> FNSMOptions:
        if (self.na is None) != (self.wavelength_nm is None):
            raise ValueError("give both na and wavelength_nm (the FNSM's initial cutoff is 2 NA / lambda), or neither")
        return self

    def fnsm_spec(self, ndim: int, data_pixel_size_um: float | None = None) -> dict[str, Any] | None:
        """Keyword arguments of :class:`microrestore.nn.FNSM` (``None`` when the module is off).

        Parameters
        ----------
        ndim
            Spatial dimensions of the network.
        data_pixel_size_um
            Lateral pixel size read from the training images, used when ``pixel_size_um`` is not set and the
            optics are given.

        Raises
        ------
        InputError
            The optics are given but no pixel size is known.
        """
        if not self.fnsm:
            return None
        spec: dict[str, Any] = {"ndim": ndim, "slope": self.fnsm_slope}
        size = self.pixel_size_um
        if size is None and self.na is not None:
            size = data_pixel_size_um
            if size is None:
                raise InputError(
                    "fnsm: na and wavelength_nm set the initial cutoff in 1/um, which needs the pixel size; set "
                    "pixel_size_um (the training images' metadata has none)"
                )
        if size is not None:
            spec["pixel_size_um"] = float(size)
        if self.fnsm_cutoff is not None:
            spec["cutoff"] = self.fnsm_cutoff
        elif self.na is not None:
            spec["na"], spec["wavelength_nm"] = self.na, self.wavelength_nm
        return spec


class BackgroundOptions(BaseModel):
    """Background (camera offset) handling of a denoiser: subtracted before normalisation, added back after."""

    offset: float | None = Field(None, allow_inf_nan=False)
    """Camera offset / background level in the input's units; default: estimated on every image."""
    offset_estimator: Literal["percentile", "mode"] = "percentile"
    """How the offset is estimated: a low percentile (``offset_percentile``), or the mode of the darker 90 % of
    the pixels (the background level most pixels show)."""
    offset_percentile: float = Field(1.0, ge=0, lt=50)
    """Percentile of the ``percentile`` estimator."""
    percentile_high: float = Field(99.8, gt=50, le=100)
    """Percentile (above the offset) mapped to 1."""
    normalization: Literal["background", "noise"] = "background"
    """``background``: the offset above, then the high percentile mapped to 1; ``noise``: camera-independent, the
    image's own Poisson-Gaussian noise stabilised to unit variance
    (:class:`~microrestore.engine.normalization.NoiseStabilizingNormalizer`; the offset options are unused)."""

    def background_normalizer(self) -> Any:
        """Return the normaliser these options describe.

        A :class:`~microrestore.engine.normalization.NoiseStabilizingNormalizer` with ``normalization: noise``;
        else a :class:`~microrestore.engine.normalization.PercentileNormalizer` when the offset is an estimated
        percentile (the same map, in the form every exporter knows), else a
        :class:`~microrestore.engine.normalization.BackgroundNormalizer`.
        """
        from microrestore.engine.normalization import (
            BackgroundNormalizer,
            NoiseStabilizingNormalizer,
            PercentileNormalizer,
        )

        if self.normalization == "noise":
            return NoiseStabilizingNormalizer()
        if self.offset is None and self.offset_estimator == "percentile":
            return PercentileNormalizer(low=self.offset_percentile, high=self.percentile_high)
        return BackgroundNormalizer(
            offset=self.offset,
            estimator=self.offset_estimator,
            offset_percentile=self.offset_percentile,
            high=self.percentile_high,
        )

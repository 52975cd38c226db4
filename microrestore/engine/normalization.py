"""Intensity normalisers: percentile, fixed factor, mean/std, background offset, and noise-stabilising.

Percentile is CSBDeep's, the fixed factor c²GAN's, background offset TiS/SiS-rDL's; the camera-independent
:class:`NoiseStabilizingNormalizer` is fitted on the image's own Poisson-Gaussian noise (non-affine, with its
own :class:`NoiseParams`). The others are affine. ``fit(array)`` estimates its parameters, a
:class:`NormParams` holding ``shift`` and ``divisor`` (one value, or one per channel), and
``apply(array, params)`` returns ``(array - shift) / divisor`` as float32; ``invert`` maps network outputs
back to the input's units.

A normaliser is a frozen pydantic model; ``to_dict()`` and :func:`normalizer_from_dict` round-trip it through
the model folder's ``config.yaml``. ``per_image=True`` means the parameters are fitted on every image (at
training and at inference); ``per_image=False`` means they are fitted once on the training data and the method
stores the resulting :class:`NormParams` (``params.to_dict()``) beside the normaliser.

Arrays with a channel axis are channel-first (``C, *spatial``); ``per_channel=True`` fits one set of
parameters per channel along axis 0. Large arrays (memory maps included) are fitted on a strided subsample
that skips whole planes and rows first, so the file is never read whole.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from microrestore.errors import InputError
from microrestore.validation import pydantic_message

#: Default number of values a fit looks at; larger arrays are subsampled.
MAX_FIT_SAMPLES = 1 << 22


class NormParams(BaseModel):
    """Fitted parameters of an affine normalisation: ``y = (x - shift) / divisor``.

    Attributes
    ----------
    shift
        One value, or one per channel.
    divisor
        One positive value, or one per channel.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    shift: tuple[float, ...]
    divisor: tuple[float, ...]

    @model_validator(mode="after")
    def _check(self) -> NormParams:
        if len(self.shift) != len(self.divisor) or not self.shift:
            raise ValueError("shift and divisor need the same, non-zero length")
        if not all(math.isfinite(v) for v in (*self.shift, *self.divisor)):
            raise ValueError("shift and divisor must be finite")
        if not all(v > 0 for v in self.divisor):
            raise ValueError("divisor must be positive")
        return self

    @property
    def per_channel(self) -> bool:
        """Whether the parameters differ per channel (more than one value)."""
        return len(self.shift) > 1

    def to_dict(self) -> dict[str, list[float]]:
        """Return a JSON/YAML-serialisable dict."""
        return {"shift": list(self.shift), "divisor": list(self.divisor)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormParams:
        """Build from :meth:`to_dict`'s output; invalid content raises :class:`InputError`."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InputError(f"invalid normalisation parameters: {pydantic_message(exc)}") from None

    def _arrays(self, ndim: int) -> tuple[np.ndarray | np.float32, np.ndarray | np.float32]:
        if not self.per_channel:
            return np.float32(self.shift[0]), np.float32(self.divisor[0])
        shape = (len(self.shift),) + (1,) * (ndim - 1)
        return (
            np.asarray(self.shift, dtype=np.float32).reshape(shape),
            np.asarray(self.divisor, dtype=np.float32).reshape(shape),
        )


def subsample(array: np.ndarray, max_samples: int = MAX_FIT_SAMPLES, keep_axes: Sequence[int] = ()) -> np.ndarray:
    """Return a strided subsample of ``array`` with at most about ``max_samples`` values, read into memory.

    Leading (slowest-varying) axes are strided first, because skipping whole planes and rows of a memory map
    skips whole pages of the file; every strided axis keeps at least 16 positions where it has them.

    Parameters
    ----------
    array
        Any array, a :class:`numpy.memmap` included.
    max_samples
        Target number of values.
    keep_axes
        Axes that are never strided (e.g. the channel axis).

    Returns
    -------
    numpy.ndarray
        The subsample (the whole array when it is small enough).
    """
    if array.size <= max_samples:
        return np.asarray(array)
    factor = array.size / max_samples
    keep = {ax % array.ndim for ax in keep_axes}
    slices: list[slice] = [slice(None)] * array.ndim
    for axis in range(array.ndim):
        if factor <= 1.0:
            break
        if axis in keep:
            continue
        length = array.shape[axis]
        step = min(math.ceil(factor), max(1, length // 16))
        if step > 1:
            slices[axis] = slice(step // 2, None, step)
            factor /= step
    if factor > 1.0:
        # Every axis is short: stride the flattened last axis harder as a last resort.
        last = array.ndim - 1
        current = slices[last].step or 1
        step = min(array.shape[last], current * math.ceil(factor))
        slices[last] = slice(step // 2, None, step)
    return np.asarray(array[tuple(slices)])


def _fit_values(arrays: np.ndarray | Sequence[np.ndarray], per_channel: bool, max_samples: int) -> list[np.ndarray]:
    """Return the values to fit on: one float64 vector, or one per channel."""
    items = [arrays] if isinstance(arrays, np.ndarray) else list(arrays)
    if not items:
        raise InputError("cannot fit a normaliser on an empty list of images")
    budget = max(1024, max_samples // len(items))
    if per_channel:
        channels = {int(a.shape[0]) for a in items}
        if len(channels) != 1 or any(a.ndim < 2 for a in items):
            raise InputError(
                "per-channel normalisation needs channel-first arrays (C, *spatial) with the same number of "
                f"channels; got shapes {[tuple(a.shape) for a in items]}"
            )
        n_channels = channels.pop()
        parts: list[list[np.ndarray]] = [[] for _ in range(n_channels)]
        for a in items:
            sample = subsample(a, budget, keep_axes=(0,))
            for c in range(n_channels):
                parts[c].append(np.asarray(sample[c], dtype=np.float64).ravel())
        values = [np.concatenate(p) for p in parts]
    else:
        values = [np.concatenate([np.asarray(subsample(a, budget), dtype=np.float64).ravel() for a in items])]
    for v in values:
        if v.size == 0:
            raise InputError("cannot fit a normaliser on an empty image")
        if not np.isfinite(v).all():
            raise InputError("image contains NaN or infinite values; cannot normalise it")
    return values


def _safe_divisor(width: float) -> float:
    # A constant image maps to zero rather than to inf/NaN.
    return width if math.isfinite(width) and width > 0 else 1.0


class _AffineNormalizer(BaseModel):
    """Shared apply/invert of the affine normalisers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def fit(self, array: np.ndarray | Sequence[np.ndarray], max_samples: int = MAX_FIT_SAMPLES) -> NormParams:
        """Estimate the parameters on an image (or pooled over a list of images).

        Parameters
        ----------
        array
            One array or a sequence of arrays (memory maps are subsampled, not read whole).
        max_samples
            Number of values looked at, in total.

        Returns
        -------
        NormParams
            The fitted parameters.
        """
        raise NotImplementedError

    def apply(self, array: np.ndarray, params: NormParams | None = None) -> np.ndarray:
        """Normalise ``array``: ``(array - shift) / divisor`` as float32.

        Parameters
        ----------
        array
            Image in input units (channel-first when the parameters are per channel).
        params
            Fitted parameters; ``None`` fits them on ``array`` first.

        Returns
        -------
        numpy.ndarray
            float32 array of the same shape.
        """
        if params is None:
            params = self.fit(array)
        shift, divisor = params._arrays(np.ndim(array))
        out = np.asarray(array, dtype=np.float32) - shift
        out /= divisor
        return out

    def invert(self, array: np.ndarray, params: NormParams) -> np.ndarray:
        """Map a normalised array back to input units: ``array * divisor + shift`` as float32.

        Parameters
        ----------
        array
            Normalised values (e.g. a network's output).
        params
            The parameters used to normalise.

        Returns
        -------
        numpy.ndarray
            float32 array in the input's units.
        """
        shift, divisor = params._arrays(np.ndim(array))
        out = np.asarray(array, dtype=np.float32) * divisor
        out += shift
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return a YAML/JSON-serialisable dict that :func:`normalizer_from_dict` turns back into ``self``."""
        return self.model_dump(mode="json")


class PercentileNormalizer(_AffineNormalizer):
    """CSBDeep-style percentile normalisation: ``(x - p_low) / (p_high - p_low)``.

    Attributes
    ----------
    low, high
        Percentiles (0 to 100) mapped to 0 and 1.
    per_image
        Fit on every image (``True``) or once on the training data (``False``).
    per_channel
        One pair of percentiles per channel of a channel-first array.
    """

    kind: Literal["percentile"] = "percentile"
    low: float = Field(1.0, ge=0.0, le=100.0)
    high: float = Field(99.8, ge=0.0, le=100.0)
    per_image: bool = True
    per_channel: bool = False

    @model_validator(mode="after")
    def _check_order(self) -> PercentileNormalizer:
        if not self.low < self.high:
            raise ValueError(f"low percentile ({self.low}) must be below high ({self.high})")
        return self

    def fit(self, array: np.ndarray | Sequence[np.ndarray], max_samples: int = MAX_FIT_SAMPLES) -> NormParams:
        """Estimate the two percentiles (see :meth:`_AffineNormalizer.fit`)."""
        shifts, divisors = [], []
        for values in _fit_values(array, self.per_channel, max_samples):
            lo, hi = np.percentile(values, [self.low, self.high])
            shifts.append(float(lo))
            divisors.append(_safe_divisor(float(hi) - float(lo)))
        return NormParams(shift=tuple(shifts), divisor=tuple(divisors))


def estimate_offset(values: np.ndarray, estimator: str = "percentile", percentile: float = 1.0) -> float:
    """Estimate the background level (camera offset plus diffuse background) of an image's values.

    Parameters
    ----------
    values
        Pixel values (any shape; a subsample is enough).
    estimator
        ``percentile``: the ``percentile``-th percentile (it sits a couple of noise standard deviations below
        the background level); ``mode``: the most frequent value among the darker 90 % of the pixels, i.e. the
        level of the background that most pixels of a fluorescence image show (unit-wide bins for integer data,
        a smoothed 512-bin histogram otherwise).
    percentile
        Percentile of the ``percentile`` estimator.

    Returns
    -------
    float
        The background level in the values' units.
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size == 0:
        raise InputError("cannot estimate the background of an empty image")
    if estimator == "percentile":
        return float(np.percentile(flat, percentile))
    if estimator != "mode":
        raise InputError(f"unknown offset estimator {estimator!r}; valid: percentile, mode")
    dark = flat[flat <= np.percentile(flat, 90.0)]
    lo, hi = float(dark.min()), float(dark.max())
    if hi <= lo:
        return lo
    integer = bool(np.all(dark == np.round(dark)))
    bins = int(min(hi - lo + 1, 4096)) if integer else 512
    edges = np.linspace(lo - 0.5, hi + 0.5, bins + 1) if integer and bins == hi - lo + 1 else bins
    counts, edge_values = np.histogram(dark, bins=edges)
    # A light smoothing keeps single-bin spikes (quantisation, hot values) from winning.
    from scipy.ndimage import gaussian_filter1d

    smooth = gaussian_filter1d(counts.astype(np.float64), sigma=max(1.0, bins / 256.0), mode="nearest")
    peak = int(np.argmax(smooth))
    return float(0.5 * (edge_values[peak] + edge_values[peak + 1]))


class BackgroundNormalizer(_AffineNormalizer):
    """Background (camera offset) subtracted, then scaled: ``(x - offset) / (p_high(x) - offset)``.

    The offset is given (``offset``) or estimated on every image (see :func:`estimate_offset`); the scale is
    the ``high`` percentile above it. :meth:`invert` adds the offset back, so outputs stay in the input's units.
    With ``offset=None`` and the ``percentile`` estimator this is exactly :class:`PercentileNormalizer`.

    Attributes
    ----------
    offset
        Background level in input units; ``None`` estimates it per image (or per channel).
    estimator
        ``percentile`` or ``mode`` (see :func:`estimate_offset`).
    offset_percentile
        Percentile of the ``percentile`` estimator.
    high
        Percentile mapped to 1.
    per_image
        Fit on every image (``True``) or once on the training data (``False``).
    per_channel
        One offset and scale per channel of a channel-first array.
    """

    kind: Literal["background"] = "background"
    offset: float | None = Field(None, allow_inf_nan=False)
    estimator: Literal["percentile", "mode"] = "percentile"
    offset_percentile: float = Field(1.0, ge=0.0, lt=50.0)
    high: float = Field(99.8, gt=50.0, le=100.0)
    per_image: bool = True
    per_channel: bool = False

    def fit(self, array: np.ndarray | Sequence[np.ndarray], max_samples: int = MAX_FIT_SAMPLES) -> NormParams:
        """Estimate (or take) the offset and the scale above it (see :meth:`_AffineNormalizer.fit`)."""
        shifts, divisors = [], []
        for values in _fit_values(array, self.per_channel, max_samples):
            offset = (
                float(self.offset)
                if self.offset is not None
                else estimate_offset(values, self.estimator, self.offset_percentile)
            )
            shifts.append(offset)
            divisors.append(_safe_divisor(float(np.percentile(values, self.high)) - offset))
        return NormParams(shift=tuple(shifts), divisor=tuple(divisors))


class MeanStdNormalizer(_AffineNormalizer):
    """Standardisation: ``(x - mean) / std``.

    Attributes
    ----------
    per_image
        Fit on every image (``True``) or once on the training data (``False``).
    per_channel
        One mean and standard deviation per channel of a channel-first array.
    """

    kind: Literal["meanstd"] = "meanstd"
    per_image: bool = True
    per_channel: bool = False

    def fit(self, array: np.ndarray | Sequence[np.ndarray], max_samples: int = MAX_FIT_SAMPLES) -> NormParams:
        """Estimate mean and standard deviation (see :meth:`_AffineNormalizer.fit`)."""
        values = _fit_values(array, self.per_channel, max_samples)
        return NormParams(
            shift=tuple(float(v.mean()) for v in values),
            divisor=tuple(_safe_divisor(float(v.std())) for v in values),
        )


class FixedNormalizer(_AffineNormalizer):
    """A fixed affine map ``y = x * scale + offset``, the same for every image (c²GAN, UTOM).

    No per-image min-max: intensities keep their meaning across images. ``FixedNormalizer.from_range(0,
    65535)`` maps the 16-bit range onto [-1, 1].

    Attributes
    ----------
    scale
        Multiplicative factor (non-zero).
    offset
        Added after scaling.
    """

    kind: Literal["fixed"] = "fixed"
    scale: float
    offset: float = 0.0

    @model_validator(mode="after")
    def _check_scale(self) -> FixedNormalizer:
        if not (math.isfinite(self.scale) and math.isfinite(self.offset)) or self.scale <= 0:
            raise ValueError("scale must be positive and finite, offset finite")
        return self

    @property
    def per_image(self) -> bool:
        """Always ``False``: the parameters do not depend on the data."""
        return False

    @classmethod
    def from_range(
        cls, in_low: float = 0.0, in_high: float = 65535.0, out_low: float = -1.0, out_high: float = 1.0
    ) -> FixedNormalizer:
        """Return the map of ``[in_low, in_high]`` onto ``[out_low, out_high]``."""
        if not in_high > in_low or not out_high > out_low:
            raise InputError(f"empty range [{in_low}, {in_high}] -> [{out_low}, {out_high}]")
        scale = (out_high - out_low) / (in_high - in_low)
        return cls(scale=scale, offset=out_low - in_low * scale)

    @property
    def params(self) -> NormParams:
        """The parameters as :class:`NormParams` (``shift = -offset / scale``, ``divisor = 1 / scale``)."""
        return NormParams(shift=(-self.offset / self.scale,), divisor=(1.0 / self.scale,))

    def fit(self, array: np.ndarray | Sequence[np.ndarray], max_samples: int = MAX_FIT_SAMPLES) -> NormParams:
        """Return :attr:`params`; the data are not looked at."""
        return self.params

    def apply(self, array: np.ndarray, params: NormParams | None = None) -> np.ndarray:
        """Return ``array * scale + offset`` as float32 (``params`` is ignored)."""
        out = np.asarray(array, dtype=np.float32) * np.float32(self.scale)
        out += np.float32(self.offset)
        return out

    def invert(self, array: np.ndarray, params: NormParams | None = None) -> np.ndarray:
        """Return ``(array - offset) / scale`` as float32 (``params`` is ignored)."""
        out = np.asarray(array, dtype=np.float32) - np.float32(self.offset)
        out /= np.float32(self.scale)
        return out


class NoiseParams(BaseModel):
    """Fitted parameters of :class:`NoiseStabilizingNormalizer`.

    Attributes
    ----------
    gain
        Slope of the noise variance in the image's units per unit of level (``var = gain * level + c``), 0 for
        signal-independent noise.
    base
        Reference level (the image's background) that maps to 0.
    variance
        Noise variance at ``base`` (positive).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    gain: float = Field(ge=0)
    base: float
    variance: float = Field(gt=0)

    @model_validator(mode="after")
    def _finite(self) -> NoiseParams:
        if not all(math.isfinite(v) for v in (self.gain, self.base, self.variance)):
            raise ValueError("gain, base and variance must be finite")
        return self

    def to_dict(self) -> dict[str, float]:
        """Return a JSON/YAML-serialisable dict."""
        return {"gain": self.gain, "base": self.base, "variance": self.variance}


def _fallback_noise(sample: np.ndarray) -> tuple[float, float]:
    """Signal-independent noise variance from the median absolute difference of neighbours (gain 0)."""
    x = np.asarray(sample, dtype=np.float64)
    diffs = np.abs(np.diff(x.reshape(-1, x.shape[-1]), axis=-1)).ravel()
    sigma = 1.4826 * float(np.median(diffs)) / math.sqrt(2.0) if diffs.size else 0.0
    if not sigma > 0:
        sigma = float(np.std(x)) or 1.0
    return 0.0, sigma * sigma


def _darkest_variance(array: np.ndarray, max_samples: int) -> float:
    """The 5th percentile of the noise variances of the image's flat blocks (neighbour differences without any)."""
    from microrestore.engine.noise_model import flat_block_stats

    _, variances = flat_block_stats(np.asarray(array), max_planes=4)
    if variances.size >= 8:
        return float(np.percentile(variances, 5))
    return _fallback_noise(subsample(array, max_samples))[1]


class _PerImageNormalizer(BaseModel):
    """Shared parts of the non-affine normalisers: fitted on every image, one set of parameters for all channels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @property
    def per_image(self) -> bool:
        """Fitted on every image."""
        return True

    @property
    def per_channel(self) -> bool:
        """One set of parameters for the whole image."""
        return False

    def to_dict(self) -> dict[str, Any]:
        """Return a YAML/JSON-serialisable dict that :func:`normalizer_from_dict` turns back into ``self``."""
        return self.model_dump(mode="json")


class NoiseStabilizingNormalizer(_PerImageNormalizer):
    """Camera-independent normalisation: the image's own Poisson-Gaussian noise model, stabilised to unit variance.

    ``fit`` estimates the noise model ``var = gain * level + c`` from the image itself
    (:func:`microrestore.engine.noise_model.estimate_poisson_gaussian`: flat blocks, robust line fit), so no
    camera offset, gain or bit depth needs to be known. ``apply`` is a generalised Anscombe transform anchored
    at the image's background ``b`` (its ``base_percentile``) with ``v_b`` the noise variance there::

        y = 2 (x - b) / (sqrt(v_b + gain (x - b)) + sqrt(v_b)) / scale      for x >= b
        y = (x - b) / sqrt(v_b) / scale                                     for x <  b

    which is continuous with its slope, strictly increasing, and stays exact as ``gain`` tends to 0 (Gaussian
    noise). The noise then has a standard deviation of about ``1 / scale`` at every level, for every camera,
    offset, gain and photon count; only the signal's amplitude (about ``2 sqrt(photons) / scale``) still varies.
    ``invert`` is the algebraic inverse, so outputs come back in the input's units exactly. A network trained to
    map stabilised noisy images to stabilised clean images (the clean image transformed with the noisy image's
    parameters) then predicts the clean level directly; no bias correction is needed.

    Attributes
    ----------
    base_percentile
        Percentile of the image used as the background level ``b`` (any level works; it sets the zero).
    scale
        Divisor that brings the stabilised values to about the unit range (noise ``1 / scale``).
    """

    kind: Literal["noise"] = "noise"
    base_percentile: float = Field(1.0, ge=0, le=50)
    scale: float = Field(10.0, gt=0)

    def fit(self, array: np.ndarray | Sequence[np.ndarray], max_samples: int = MAX_FIT_SAMPLES) -> NoiseParams:
        """Estimate the noise model and the background level of an image (or of several, pooled).

        Parameters
        ----------
        array
            One array (2D, or a stack whose last two axes are YX) or a sequence of them.
        max_samples
            Number of values looked at for the background percentile.

        Returns
        -------
        NoiseParams
            The fitted parameters; when too little of the image is flat to fit a line, the noise is taken as
            signal-independent with the variance of neighbouring-pixel differences.
        """
        from microrestore.engine.noise_model import NoiseEstimationError, estimate_poisson_gaussian

        arrays = [np.asarray(a) for a in array] if isinstance(array, list | tuple) else [array]
        planes = [a for a in arrays if a.size]
        if not planes:
            raise InputError("cannot normalise an empty image")
        values = np.concatenate([subsample(a, max_samples // len(planes)).ravel() for a in planes])
        finite = values[np.isfinite(values)].astype(np.float64)
        if finite.size == 0:
            raise InputError("the image holds no finite values")
        base = float(np.percentile(finite, self.base_percentile))
        try:
            gains, cs = [], []
            for a in planes:
                model = estimate_poisson_gaussian(a)
                gains.append(model.gain)
                cs.append(model.c)
            gain, c = float(np.median(gains)), float(np.median(cs))
        except NoiseEstimationError:
            gain, c = _fallback_noise(subsample(planes[0], max_samples))
        # The background level ``base`` is a low percentile of the noisy image, below the true background, where
        # the fitted line can extrapolate to (almost) no noise at all: the transform's slope there would explode.
        # Half the variance the darkest flat blocks show (their 5th percentile) is a floor only such degenerate
        # fits reach.
        variance = max(gain * base + c, 0.5 * _darkest_variance(planes[0], max_samples), 1e-12)
        return NoiseParams(gain=max(gain, 0.0), base=base, variance=variance)

    def apply(self, array: np.ndarray, params: NoiseParams | None = None) -> np.ndarray:
        """Stabilise ``array`` (float32 out; ``params`` fitted on ``array`` when omitted)."""
        if params is None:
            params = self.fit(array)
        d = np.asarray(array, dtype=np.float64) - params.base
        sv = math.sqrt(params.variance)
        above = 2.0 * d / (np.sqrt(np.maximum(params.variance + params.gain * d, params.variance)) + sv)
        out = np.where(d >= 0, above, d / sv) / self.scale
        return out.astype(np.float32)

    def invert(self, array: np.ndarray, params: NoiseParams) -> np.ndarray:
        """Map stabilised values back to the input's units (the algebraic inverse of :meth:`apply`)."""
        y = np.asarray(array, dtype=np.float64) * self.scale
        sv = math.sqrt(params.variance)
        d = np.where(y >= 0, y * sv + 0.25 * params.gain * y * y, y * sv)
        return (d + params.base).astype(np.float32)


class CalibrationParams(BaseModel):
    """Fitted parameters of :class:`CameraCalibratedNormalizer`: the image's own gain and background level."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gain: float = Field(ge=0)
    base: float

    def to_dict(self) -> dict[str, float]:
        """Return a JSON/YAML-serialisable dict."""
        return {"gain": self.gain, "base": self.base}


class CameraCalibratedNormalizer(_PerImageNormalizer):
    """A fixed intensity scale, applied after mapping each image into the training camera's units.

    A method whose fixed scale carries meaning (c²GAN: intensities in [-1, 1] keep their relation across images)
    is tied to the camera of its training data: another offset or gain moves every value, and the network sees an
    image it never met. This normaliser fits each input's own Poisson-Gaussian noise (gain ``g`` in units per
    photoelectron, background level ``b``, as :class:`NoiseStabilizingNormalizer`) and maps it affinely into the
    reference camera's units, ``x' = (x - b) g_ref / g + b_ref``, before the fixed scale ``[low, high] -> [-1, 1]``;
    :meth:`restore_units` maps results back exactly. Photon counts are kept: 30 photons stay 30 photons. Where the
    noise shows no Poisson part (``g`` = 0), only the background is moved.

    Attributes
    ----------
    low, high
        The fixed range of the training data (reference units).
    reference_gain, reference_base
        Gain and background level of the training data's camera, fitted the same way.
    """

    kind: Literal["calibrated"] = "calibrated"
    low: float
    high: float
    reference_gain: float = Field(gt=0)
    reference_base: float

    def fixed(self) -> FixedNormalizer:
        """The fixed scale alone (for images already in the reference camera's units)."""
        return FixedNormalizer.from_range(self.low, self.high)

    def fit(self, array: np.ndarray | Sequence[np.ndarray], max_samples: int = MAX_FIT_SAMPLES) -> CalibrationParams:
        """Fit the image's gain and background level (see :class:`NoiseStabilizingNormalizer`)."""
        noise = NoiseStabilizingNormalizer().fit(array, max_samples)
        return CalibrationParams(gain=noise.gain, base=noise.base)

    def _factor(self, params: CalibrationParams) -> float:
        return self.reference_gain / params.gain if params.gain > 0 else 1.0

    def calibrate(self, array: np.ndarray, params: CalibrationParams) -> np.ndarray:
        """The image in the reference camera's units."""
        out = (np.asarray(array, dtype=np.float64) - params.base) * self._factor(params) + self.reference_base
        return out.astype(np.float32)

    def restore_units(self, array: np.ndarray, params: CalibrationParams) -> np.ndarray:
        """Map values in the reference camera's units back to the image's own (inverse of :meth:`calibrate`)."""
        out = (np.asarray(array, dtype=np.float64) - self.reference_base) / self._factor(params) + params.base
        return out.astype(np.float32)

    def apply(self, array: np.ndarray, params: CalibrationParams | None = None) -> np.ndarray:
        """Calibrate, then apply the fixed scale."""
        if params is None:
            params = self.fit(array)
        return self.fixed().apply(self.calibrate(array, params))

    def invert(self, array: np.ndarray, params: CalibrationParams) -> np.ndarray:
        """Undo the fixed scale, then the calibration."""
        return self.restore_units(self.fixed().invert(array), params)


def camera_reference(arrays: Sequence[np.ndarray]) -> dict[str, float] | None:
    """Gain and background level of a training set's camera (medians over its images); ``None`` without a gain.

    Parameters
    ----------
    arrays
        Training images in their own units.

    Returns
    -------
    dict or None
        ``{"gain": ..., "base": ...}`` for :class:`CameraCalibratedNormalizer`, or ``None`` when the noise shows
        no Poisson part (nothing to calibrate against).
    """
    fits = [NoiseStabilizingNormalizer().fit(a) for a in arrays if np.asarray(a).size]
    gains = [f.gain for f in fits if f.gain > 0]
    if not gains or len(gains) < len(fits) / 2:
        return None
    return {"gain": float(np.median(gains)), "base": float(np.median([f.base for f in fits]))}


Normalizer = (
    PercentileNormalizer
    | FixedNormalizer
    | MeanStdNormalizer
    | BackgroundNormalizer
    | NoiseStabilizingNormalizer
    | CameraCalibratedNormalizer
)
#: Discriminated union for pydantic configuration schemas (``normalization: NormalizerSpec``).
NormalizerSpec = Annotated[Normalizer, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Normalizer] = TypeAdapter(NormalizerSpec)


def normalizer_from_dict(data: dict[str, Any]) -> Normalizer:
    """Rebuild a normaliser from its :meth:`to_dict` form.

    Parameters
    ----------
    data
        A dict with ``kind`` (``percentile``, ``fixed``, ``meanstd``, ``background`` or ``noise``) and the
        normaliser's fields.

    Returns
    -------
    PercentileNormalizer or FixedNormalizer or MeanStdNormalizer or BackgroundNormalizer
        The normaliser.

    Raises
    ------
    InputError
        Unknown kind, unknown or invalid fields.
    """
    if not isinstance(data, dict):
        raise InputError(f"normalisation must be a mapping with a 'kind', got {type(data).__name__}")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise InputError(f"invalid normalisation {data.get('kind', '?')!r}: {pydantic_message(exc)}") from None

"""The domain guard: what a model was trained on, and a warning when an input falls outside it.

At training, :func:`describe` measures each training input in camera-independent terms and
:func:`microrestore.engine.modeldir.save_model` stores the summary under ``provenance.domain``:

- ``snr``: the peak signal-to-noise ratio, ``(p99.9 - p1) / sigma``, with ``sigma`` the noise standard deviation
  at the background fitted from the image's own Poisson-Gaussian noise (so offset, gain and bit depth do not
  matter);
- ``photons``: the photoelectrons at the brightest structures above the background, ``(p99.9 - p1) / gain``
  (absent where the noise shows no Poisson part, e.g. Gaussian or heavily processed data);
- ``pixel_size_um``: the lateral pixel sizes the files declared (absent when none did);
- ``dtypes``: the input dtypes.

At prediction, :func:`check` measures the input the same way and returns one line per difference that matters
(the signal-to-noise ratio or photon count beyond a factor of 2 of the training range, or a pixel size beyond a
factor of 1.5), naming the model and what to do. A model without a recorded domain is not checked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["check", "describe", "measure"]

#: Factors beyond the training range that trigger a warning.
SNR_MARGIN = 2.0
PIXEL_MARGIN = 1.5


def measure(data: np.ndarray) -> dict[str, float]:
    """Peak signal-to-noise ratio and photons of one image (a plane or a stack, last two axes YX).

    Parameters
    ----------
    data
        The image in its own units (memory maps are subsampled).

    Returns
    -------
    dict
        ``snr`` and, where the noise has a Poisson part, ``photons``; empty when the noise cannot be measured.
    """
    from microrestore.engine.normalization import NoiseStabilizingNormalizer, subsample

    array = np.asarray(data)
    if array.size == 0 or array.ndim < 2:
        return {}
    try:
        params = NoiseStabilizingNormalizer().fit(array)
    except Exception:  # an image whose noise cannot be measured is simply not checked
        return {}
    values = subsample(array).astype(np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {}
    low, high = np.percentile(values, [1.0, 99.9])
    signal = float(high - low)
    out = {"snr": signal / math.sqrt(params.variance)}
    if params.gain > 0 and params.gain * signal > 0.05 * params.variance:
        out["photons"] = signal / params.gain
    return out


def _span(values: Iterable[float]) -> list[float] | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v)) and float(v) > 0]
    return [min(vals), max(vals)] if vals else None


def describe(images: Iterable[Any]) -> dict[str, Any]:
    """Summarise the training inputs (:class:`~microrestore.io.ImageData` or arrays) for ``provenance.domain``.

    Parameters
    ----------
    images
        The training inputs.

    Returns
    -------
    dict
        ``snr`` and ``photons`` ranges ``[min, max]``, ``pixel_size_um`` range, ``dtypes``; keys without data are
        left out.
    """
    snrs, photons, pixels, dtypes = [], [], [], set()
    for image in images:
        data = getattr(image, "data", image)
        dtypes.add(str(np.asarray(data[:1] if np.ndim(data) > 2 else data).dtype))
        m = measure(data)
        snrs.append(m.get("snr"))
        photons.append(m.get("photons"))
        sizes = getattr(image, "pixel_size", None) or {}
        pixels.append(sizes.get("X"))
    domain: dict[str, Any] = {"dtypes": sorted(dtypes)}
    for key, vals in (("snr", snrs), ("photons", photons), ("pixel_size_um", pixels)):
        span = _span(vals)
        if span:
            domain[key] = span
    return domain


def _outside(value: float, span: list[float], margin: float) -> str | None:
    low, high = span
    if value < low / margin:
        return "below"
    if value > high * margin:
        return "above"
    return None


def check(domain: Mapping[str, Any] | None, image: Any, model: str) -> list[str]:
    """Lines saying how ``image`` differs from what ``model`` was trained on (empty when it does not).

    Parameters
    ----------
    domain
        The model's ``provenance.domain`` (``None`` or empty: nothing is checked).
    image
        An :class:`~microrestore.io.ImageData` or an array.
    model
        The model's name, for the message.

    Returns
    -------
    list of str
        One warning line per difference.
    """
    if not domain:
        return []
    data = getattr(image, "data", image)
    found = measure(data)
    where = getattr(image, "path", None)
    prefix = f"{where}: " if where else ""
    hint = "its output may be wrong; try nl-means, --self-supervised, another model, or train your own"
    lines = []
    for key, label, fmt in (("snr", "peak signal-to-noise ratio", ".3g"), ("photons", "photons at the peak", ".3g")):
        if key in found and domain.get(key):
            side = _outside(found[key], domain[key], SNR_MARGIN)
            if side:
                low, high = domain[key]
                lines.append(
                    f"{prefix}{label} {found[key]:{fmt}} is {side} what model {model} was trained on "
                    f"({low:{fmt}} to {high:{fmt}}); {hint}"
                )
                break  # one line for the signal level is enough
    sizes = getattr(image, "pixel_size", None) or {}
    if sizes.get("X") and domain.get("pixel_size_um"):
        side = _outside(float(sizes["X"]), domain["pixel_size_um"], PIXEL_MARGIN)
        if side:
            low, high = domain["pixel_size_um"]
            lines.append(
                f"{prefix}pixel size {1000 * float(sizes['X']):.0f} nm is {side} what model {model} was trained on "
                f"({1000 * low:.0f} to {1000 * high:.0f} nm); {hint}"
            )
    return lines

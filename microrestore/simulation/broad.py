"""The ``denoise-broad`` case: noisy/clean pairs drawn from a broad distribution of samples, optics and cameras.

A narrow training set (one photon level, one camera offset, one structure) makes a narrow model. Every field of
this case draws its own conditions, so a model trained on it meets, in training, the spread of images users
bring:

- photons at the brightest object pixel, log-uniform in ``photons_range`` (default 2 to 500);
- camera offset uniform in ``offset_range`` (0 to 2000 ADU), gain log-uniform in ``gain_range`` (0.5 to 5 ADU
  per electron), read noise uniform in ``read_noise_range`` (electrons), background a random share of the peak
  plus a constant;
- optics: NA uniform in ``na_range`` (0.8 to 1.45), emission wavelength in ``wavelength_range`` (450 to 700 nm),
  pixel size log-uniform in ``pixel_size_range`` (40 to 160 nm, so undersampled fields are included);
- structure: one of ``phantoms`` (filaments, puncta, tubules, nuclei, mixed fields, and ``image_crops`` of real
  clean images when ``crop_images`` lists some);
- digitisation: 16-bit camera counts, or, with probability ``eight_bit``, an 8-bit contrast-stretched copy
  (the noisy image's 0.1 and 99.9 percentiles mapped to 0 and 255, rounded and clipped: how W2S and FMD were
  published); the clean image then goes through the same affine map, unclipped.

Each field's conditions are recorded in the manifest (``files[i]["conditions"]``), and the clean image is in the
noisy image's units, so affine-free metrics are exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from microrestore.errors import InputError
from microrestore.optics.psf import Optics
from microrestore.simulation import cases, forward
from microrestore.simulation.noise import CameraModel, apply_camera, expected_counts

__all__ = ["BROAD_DEFAULTS", "draw_conditions"]

#: Default parameters of the ``denoise-broad`` case (ranges are ``[low, high]``).
BROAD_DEFAULTS: dict[str, Any] = {
    "shape": (256, 256),
    "photons_range": (2.0, 500.0),
    "offset_range": (0.0, 2000.0),
    "gain_range": (0.5, 5.0),
    "read_noise_range": (0.5, 3.0),
    "background_share": (0.0, 0.1),
    "na_range": (0.8, 1.45),
    "wavelength_range": (450.0, 700.0),
    "pixel_size_range": (40.0, 160.0),
    "immersion_index": 1.518,
    "phantoms": ("filaments", "puncta", "tubules", "nuclei", "mixed"),
    "crop_images": (),
    "crop_region": (0.0, 1.0, 0.0, 1.0),
    "eight_bit": 0.25,
    "frames": 1,
}


def _range(params: dict[str, Any], key: str, *, positive: bool = False) -> tuple[float, float]:
    value = params[key]
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{key} must be two numbers [low, high], got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high) or (positive and low <= 0):
        raise InputError(f"{key} must be finite with low <= high{' and low > 0' if positive else ''}, got {value!r}")
    return low, high


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def draw_conditions(params: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Draw one field's conditions (camera, optics, structure, digitisation) from the case's ranges.

    Parameters
    ----------
    params : dict
        The resolved case parameters (see :data:`BROAD_DEFAULTS`).
    rng : numpy.random.Generator
        The field's generator.

    Returns
    -------
    dict
        ``photons``, ``offset``, ``gain``, ``read_noise``, ``background``, ``na``, ``wavelength_nm``,
        ``pixel_size_nm``, ``phantom`` and ``eight_bit``.
    """
    photons = _log_uniform(rng, *_range(params, "photons_range", positive=True))
    share_low, share_high = _range(params, "background_share")
    phantoms = list(params["phantoms"]) + (["image_crops"] if params["crop_images"] else [])
    if not phantoms:
        raise InputError("phantoms must name at least one structure (or give crop_images)")
    na_low, na_high = _range(params, "na_range", positive=True)
    if na_high >= float(params["immersion_index"]):
        raise InputError(f"na_range must stay below the immersion index {params['immersion_index']}")
    return {
        "photons": photons,
        "offset": float(rng.uniform(*_range(params, "offset_range"))),
        "gain": _log_uniform(rng, *_range(params, "gain_range", positive=True)),
        "read_noise": float(rng.uniform(*_range(params, "read_noise_range"))),
        "background": photons * float(rng.uniform(share_low, share_high)) + float(rng.uniform(0.0, 3.0)),
        "na": float(rng.uniform(na_low, na_high)),
        "wavelength_nm": float(rng.uniform(*_range(params, "wavelength_range", positive=True))),
        "pixel_size_nm": _log_uniform(rng, *_range(params, "pixel_size_range", positive=True)),
        "phantom": str(phantoms[int(rng.integers(len(phantoms)))]),
        "eight_bit": bool(rng.uniform() < float(params["eight_bit"])),
    }


def _stretch_to_8bit(noisy: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    low, high = (float(v) for v in np.percentile(noisy, [0.1, 99.9]))
    scale = 255.0 / max(high - low, 1e-6)
    noisy8 = np.clip(np.rint((noisy.astype(np.float64) - low) * scale), 0, 255).astype(np.uint8)
    clean8 = ((clean.astype(np.float64) - low) * scale).astype(np.float32)
    return noisy8, clean8, low, scale


def _draw_object(cond: dict[str, Any], params: dict[str, Any], shape: tuple[int, ...], rng: np.random.Generator):
    extra: dict[str, Any] = {}
    if cond["phantom"] == "image_crops":
        extra = {"images": list(params["crop_images"]), "region": list(params["crop_region"])}
    return cases._draw_phantom({"phantom": cond["phantom"], "phantom_params": extra}, shape, rng)


def _run_broad(w: Any, rngs: Sequence[np.random.Generator], p: dict[str, Any]) -> dict[str, Any]:
    shape = cases._shape(p["shape"], 2)
    frames = int(p["frames"])
    if frames < 1 or frames != p["frames"]:
        raise InputError(f"frames must be a whole number of at least 1, got {p['frames']!r}")
    files = []
    for i, rng in enumerate(rngs):
        cond = draw_conditions(p, rng)
        optics = Optics(
            na=cond["na"],
            wavelength_nm=cond["wavelength_nm"],
            pixel_size_nm=cond["pixel_size_nm"],
            immersion_index=float(p["immersion_index"]),
        )
        camera = CameraModel(
            photons=cond["photons"],
            offset=cond["offset"],
            read_noise=cond["read_noise"],
            gain=cond["gain"],
            background=cond["background"],
        )
        obj = _draw_object(cond, p, shape, rng)
        img, _ = forward._normalise_peak(forward.convolve_same(obj, forward.psf_kernel(optics)))
        noisy: np.ndarray = apply_camera(img, camera, rng)
        if frames > 1:  # more realisations of the same field, drawn after the first so frames=1 is unchanged
            noisy = np.stack([noisy] + [apply_camera(img, camera, rng) for _ in range(frames - 1)])
        clean: np.ndarray = expected_counts(img, camera)
        entry_cond = dict(cond)
        if cond["eight_bit"]:
            noisy, clean, low, scale = _stretch_to_8bit(noisy, clean)
            entry_cond["stretch"] = {"low": low, "scale": scale}
        name = f"field_{i:03d}.tif"
        files.append(
            {
                "noisy": w.image(f"noisy/{name}", noisy, "TYX" if frames > 1 else "YX", pixel_nm=cond["pixel_size_nm"]),
                "clean": w.image(f"clean/{name}", clean, "YX", pixel_nm=cond["pixel_size_nm"]),
                "conditions": entry_cond,
            }
        )
    return {"axes": "TYX" if frames > 1 else "YX", "files": files}


cases.CASES["denoise-broad"] = cases.SimulationCase(
    "denoise-broad",
    "noisy/clean pairs, each field with its own photons, camera, optics, structure and bit depth",
    {**cases._common(20.0), **BROAD_DEFAULTS},
    _run_broad,
)

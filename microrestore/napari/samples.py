"""Sample data: the bundled low-light demo field, and a raw 2D-SIM stack simulated on the fly."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

__all__ = ["SIM_OPTICS", "demo_sample", "sim_sample"]

#: The optics of :func:`sim_sample` (NA and wavelengths), stored in its layer's metadata for the SIM widget.
SIM_OPTICS: dict[str, float] = {"na": 1.3, "wavelength_nm": 525.0, "na_exc": 1.1, "wavelength_exc_nm": 488.0}


def demo_sample() -> list[tuple[Any, dict[str, Any], str]]:
    """The demo sample of ``microrestore demo``: noisy camera counts and the noise-free field (same units)."""
    from microrestore.cli.demo import SAMPLE_DIR
    from microrestore.io import read_image
    from microrestore.napari.reader import image_layer_data

    noisy = image_layer_data(read_image(SAMPLE_DIR / "noisy.tif"), "demo noisy")
    clean = image_layer_data(read_image(SAMPLE_DIR / "clean.tif"), "demo clean")
    clean[1]["visible"] = False
    return [clean, noisy]


def sim_sample(shape: tuple[int, int] = (128, 128), seed: int = 0) -> list[tuple[Any, dict[str, Any], str]]:
    """A simulated raw 2D-SIM stack (3 orientations x 3 phases, TYX) and its ground truth on the 2x grid.

    Made by ``microrestore simulate sim`` (filaments, 100 photons, NA 1.3, 525 nm emission, 62.6 nm pixels, the
    pattern of excitation NA 1.1 at 488 nm); the raw layer's metadata holds those optics for the SIM widget.
    """
    from microrestore.io import read_image
    from microrestore.napari.reader import image_layer_data
    from microrestore.simulation import simulate

    with tempfile.TemporaryDirectory(prefix="microrestore-sim-sample-") as tmp:
        simulate(
            "sim",
            tmp,
            n=1,
            seed=seed,
            shape=list(shape),
            na=SIM_OPTICS["na"],
            wavelength_nm=SIM_OPTICS["wavelength_nm"],
            na_exc=SIM_OPTICS["na_exc"],
            wavelength_exc_nm=SIM_OPTICS["wavelength_exc_nm"],
        )
        raw = read_image(Path(tmp) / "raw" / "field_000.tif", memmap=False)
        truth = read_image(Path(tmp) / "gt" / "field_000.tif", memmap=False)
    raw_layer = image_layer_data(raw, "SIM raw")
    raw_layer[1]["metadata"]["microrestore"]["sim_optics"] = dict(SIM_OPTICS)
    truth_layer = image_layer_data(truth, "SIM ground truth (2x grid)")
    truth_layer[1]["translate"] = tuple(-0.25 * s * 2 for s in truth_layer[1]["scale"])
    truth_layer[1]["visible"] = False
    return [truth_layer, raw_layer]

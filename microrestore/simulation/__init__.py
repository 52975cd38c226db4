"""Physically grounded simulated microscopy data with exact ground truth (numpy/scipy only).

- :mod:`~microrestore.simulation.phantoms`: filaments, puncta, tubules, nuclei, mixed fields (2D and 3D).
- :mod:`~microrestore.simulation.noise`: Poisson-Gaussian sCMOS camera model.
- :mod:`~microrestore.simulation.forward`: the forward model (PSF convolution, raw 2D-SIM frames).
- :mod:`~microrestore.simulation.cases`: data sets per task (``denoise``, ``defocus``, ``timelapse``,
  ``zstack``, ``sim``) written as TIFF files with a ``manifest.json``; :func:`simulate` runs one.
- :mod:`~microrestore.simulation.broad`: ``denoise-broad``, pairs over a broad distribution of photons,
  cameras, optics, structures and bit depths (for generalist models).
"""

from __future__ import annotations

from microrestore.simulation import broad as _broad  # registers the denoise-broad case  # noqa: F401
from microrestore.simulation.cases import CASES, SimulationCase, simulate
from microrestore.simulation.forward import SimRawFrames, convolve_same, psf_kernel, sim_raw_frames
from microrestore.simulation.noise import CameraModel, apply_camera, expected_counts, variance_counts
from microrestore.simulation.phantoms import PHANTOMS, filaments, mixed, nuclei, puncta, tubules

__all__ = [
    "CASES",
    "PHANTOMS",
    "CameraModel",
    "SimRawFrames",
    "SimulationCase",
    "apply_camera",
    "convolve_same",
    "expected_counts",
    "filaments",
    "mixed",
    "nuclei",
    "psf_kernel",
    "puncta",
    "sim_raw_frames",
    "simulate",
    "tubules",
    "variance_counts",
]

"""Microscope optics: the :class:`Optics` parameters, scalar pupil-function PSFs and OTFs (numpy/scipy only)."""

from __future__ import annotations

from microrestore.optics.otf import frequency_radius, ideal_otf, otf_from_psf, radial_otf_to_2d, read_psf
from microrestore.optics.psf import Optics, gaussian_psf, psf_3d, pupil_psf

__all__ = [
    "Optics",
    "frequency_radius",
    "gaussian_psf",
    "ideal_otf",
    "otf_from_psf",
    "psf_3d",
    "pupil_psf",
    "radial_otf_to_2d",
    "read_psf",
]

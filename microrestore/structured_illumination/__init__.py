"""Classical 2D structured-illumination microscopy (SIM): parameters, OTFs, bands, estimation, Wiener.

The engine every SIM method builds on (``wiener-sim``, ``rdl-sim``), in torch so it runs on a CPU or a GPU
(``device``), float32 / complex64, vectorised across orientations and time points.

Modules
-------
- :mod:`~microrestore.structured_illumination.params`: :class:`SIMParams` (one :class:`OrientationParams` per pattern
  orientation: wave vector, per-frame phases, modulation depth), JSON save/load, frame orders.
- :mod:`~microrestore.structured_illumination.options`: :class:`SIMOptions`, the pydantic model of the options every SIM
  method takes (optics, OTF, frame order, Wiener constant, estimation tolerances); methods subclass it for their
  ``predict_schema``.
- :mod:`~microrestore.structured_illumination.otf`: :class:`OTF` (radial profile, evaluated anywhere in frequency space)
  from the optics (attenuated ideal OTF) or from a file (rDL-SIM MRC radial OTFs, TIFF profiles or PSFs).
- :mod:`~microrestore.structured_illumination.bands`: frame orders, border tapering, orientation equalisation, band
  separation with the phase matrix and its forward model, Fourier upsampling onto the 2x grid, widefield images.
- :mod:`~microrestore.structured_illumination.estimate`: per-orientation wave vector, phase and modulation from the band
  0 / band 1 overlap, with fallbacks to nominal values (:class:`SIMEstimationWarning`).
- :mod:`~microrestore.structured_illumination.wiener`: Wiener-SIM reconstruction on the 2x grid (:class:`WienerFilter`,
  precomputed for fixed parameters: a time series costs one pass per stack).
- :mod:`~microrestore.structured_illumination.reconstruct`: from an :class:`~microrestore.io.ImageData` to the SR image
  (axes and frame order checks, parameters given or estimated, OTF, Wiener).

Conventions (shared with :func:`microrestore.simulation.sim_raw_frames` and ``rdl-sim``)
--------------------------------------------------------------------------------------
- Illumination of frame ``(d, p)``: ``1 + m_d cos(2 pi (ky_d y + kx_d x) + phase_dp)``, ``x``, ``y`` raw pixel
  indices with the origin at the centre of raw pixel (0, 0); wave vectors ``(ky, kx)`` in cycles per raw
  pixel; phases in radians, one per frame.
- A raw stack holds ``n_orientations * n_phases`` frames (9 by default). ``angle-major`` (orientation-major,
  the default): frame ``j`` is orientation ``j // n_phases``, phase ``j % n_phases``; ``phase-major``: frame
  ``j`` is phase ``j // n_orientations``, orientation ``j % n_orientations``. Internally stacks are tensors
  ``(n_stacks, n_orientations, n_phases, Y, X)``.
- The SR image lives on the 2x grid: pixel ``j`` has its centre at raw coordinate ``j / 2 - 0.25`` (each raw
  pixel splits into 2 x 2), pixel size halved. Intensities stay in the input's units (the SR image's mean is
  the widefield mean).

Interface of a ``sim`` method (``Method(task="sim")``, e.g. ``wiener-sim`` and ``rdl-sim``)
---------------------------------------------------------------------------------------------
``microrestore sim reconstruct raw.tif -o sr.tif --method NAME`` resolves ``NAME`` to a registered method of
task ``sim`` (``NAME`` itself, else ``NAME-sim``: ``wiener`` -> ``wiener-sim``, ``rdl`` -> ``rdl-sim``), then:

1. ``options.params`` holds the validated fields of the method's ``predict_schema``, which subclasses
   :class:`~microrestore.structured_illumination.options.SIMOptions` (so every SIM method accepts ``na``,
   ``wavelength_nm``, ``pixel_size_nm``, ``na_exc``, ``wavelength_exc_nm``, ``otf``, ``wiener``, ``params``,
   ``order``, ...); the CLI fills them from its flags, ``--set key=value`` adds method-specific ones.
2. ``method.load(model, options)`` returns a predictor; ``predictor.predict(image, out=None)`` takes the raw
   :class:`~microrestore.io.ImageData` (any axes ending in ``YX`` whose other axes hold ``9 n`` frames, in the
   file's dtype) and returns float32 ``(n, 2 Y, 2 X)``: one SR image per raw stack, in the input's units. With
   ``out`` (an array or :class:`~microrestore.engine.outputs.OutputSink` of that shape) it writes
   ``out[i] = sr_i`` and returns ``out``.
3. After ``predict``, ``predictor.last_params`` is the :class:`SIMParams` used (given or estimated; the first
   stack's with ``per_stack``), which the CLI prints and can save (``--save-params``).

Building blocks for a method: :func:`~microrestore.structured_illumination.reconstruct.raw_stacks` (``ImageData`` +
options -> tensor ``(n, n_or, n_ph, Y, X)``, with one-line errors),
:func:`~microrestore.structured_illumination.reconstruct.resolve_params` (``--params`` file or estimation),
:func:`~microrestore.structured_illumination.reconstruct.prepare_stacks` (equalisation and border apodisation),
:func:`~microrestore.structured_illumination.otf.load_otf` (OTF from the options),
:class:`~microrestore.structured_illumination.wiener.WienerFilter`
(``WienerFilter(params, otf, shape_yx, ...)(stacks)``), and
:func:`~microrestore.structured_illumination.reconstruct.wiener_sim` (all of it, from a file's ``ImageData`` to SR
images).
"""

from __future__ import annotations

from typing import Any

from microrestore.structured_illumination.params import FRAME_ORDERS, OrientationParams, SIMParams

__all__ = [
    "FRAME_ORDERS",
    "OTF",
    "OrientationParams",
    "SIMEstimationWarning",
    "SIMOptions",
    "SIMParams",
    "WienerFilter",
    "estimate_params",
    "load_otf",
    "reconstruct",
]

_LAZY = {
    "OTF": "microrestore.structured_illumination.otf",
    "load_otf": "microrestore.structured_illumination.otf",
    "SIMOptions": "microrestore.structured_illumination.options",
    "SIMEstimationWarning": "microrestore.structured_illumination.estimate",
    "estimate_params": "microrestore.structured_illumination.estimate",
    "WienerFilter": "microrestore.structured_illumination.wiener",
    "reconstruct": "microrestore.structured_illumination.reconstruct",
}


def __getattr__(name: str) -> Any:
    # torch-based modules load on first use, so importing microrestore.structured_illumination stays cheap.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

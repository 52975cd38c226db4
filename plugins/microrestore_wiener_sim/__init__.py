"""Wiener-SIM: classical 2D structured-illumination reconstruction (method ``wiener-sim``, task ``sim``).

Band separation, illumination parameter estimation and Wiener filtering on the 2x grid, by
:mod:`microrestore.structured_illumination` (torch, CPU or GPU). Needs no model and no training. Also registers the
``sim`` command group (``microrestore sim reconstruct`` and ``microrestore sim estimate``), which runs any method of
task ``sim``. See ``docs/methods/sim.md``.

This module stays import-light: torch is loaded only when a predictor runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microrestore import hookimpl
from microrestore.errors import InputError
from microrestore.plugins.registry import Method, PredictOptions
from microrestore.structured_illumination.options import SIMOptions

__all__ = ["CITATION", "load", "register_commands", "register_methods"]

CITATION = (
    "Gustafsson, M. G. L. Surpassing the lateral resolution limit by a factor of two using structured "
    "illumination microscopy. J. Microsc. 198, 82-87 (2000); Heintzmann, R. & Gustafsson, M. G. L. "
    "Subdiffraction resolution in continuous samples. Nat. Photonics 3, 362-364 (2009); Müller, M. et al. "
    "Open-source image reconstruction of super-resolution structured illumination microscopy data in ImageJ "
    "(fairSIM). Nat. Commun. 7, 10980 (2016)"
)


def load(model: str | Path | None, options: PredictOptions) -> Any:
    """Build the Wiener-SIM predictor from the validated SIM options (``options.params``)."""
    if model is not None:
        raise InputError("wiener-sim is model-free: do not give --model")
    from microrestore_wiener_sim.predictor import WienerSIMPredictor

    return WienerSIMPredictor(SIMOptions.model_validate(options.params), options)


@hookimpl
def register_methods(register: Any) -> None:
    """Register ``wiener-sim``."""
    register(
        Method(
            name="wiener-sim",
            task="sim",
            summary="Classical 2D-SIM: parameter estimation and Wiener reconstruction on the 2x grid; no model",
            load=load,
            needs_model=False,
            predict_schema=SIMOptions,
            citation=CITATION,
        )
    )


@hookimpl
def register_commands(register: Any) -> None:
    """Register the ``sim`` command group (reconstruct, estimate)."""
    from microrestore_wiener_sim.cli import sim_app

    register("sim", sim_app)

"""CARE: supervised content-aware restoration with a U-Net (Weigert et al., Nature Methods 2018).

A built-in plugin, registered through the ``microrestore.plugins`` entry point like any third-party one.
This module stays import-light: torch is loaded only when a model is loaded or trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microrestore import hookimpl
from microrestore.plugins.registry import Method, PredictOptions, TrainRequest

CITATION = (
    "Weigert, M. et al. Content-aware image restoration: pushing the limits of fluorescence microscopy. "
    "Nature Methods 15, 1090-1097 (2018). doi:10.1038/s41592-018-0216-7"
)
DEFAULT_MODEL = "care-generalist-2d"


def load(model: str | Path | None, options: PredictOptions) -> Any:
    """Load a CARE model folder, zoo id or microrestore bioimage.io package into a tiled predictor.

    (Foreign bioimage.io packages never get here: :func:`microrestore.api.load_predictor` runs them through
    ``bioimageio.core``.)
    """
    from microrestore.engine.predictor import load_network_model

    return load_network_model(model, options, method="care", default_model=DEFAULT_MODEL)[0]


def train(request: TrainRequest) -> Path:
    """Train CARE on pairs (see :mod:`microrestore_care.training`)."""
    from microrestore_care.training import train as run

    return run(request)


@hookimpl
def register_methods(register: Any) -> None:
    """Register the ``care`` method."""
    from microrestore_care.config import CareConfig

    register(
        Method(
            name="care",
            task="denoise",
            summary="Supervised CARE U-Net trained on pairs of low- and high-quality images",
            load=load,
            train=train,
            config_schema=CareConfig,
            default_model=DEFAULT_MODEL,
            citation=CITATION,
        )
    )

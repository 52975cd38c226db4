"""rDL-SIM: rationalized deep learning for low-light 2D structured-illumination microscopy (Qiao et al. 2022).

The pipeline on raw 9-frame stacks: the DFCAN SR module estimates the SR image from the noisy frames; the
illumination parameters are estimated on the noisy frames; pattern-modulated images are generated from the
SR estimate, the parameters and the OTF; the two-branch rDL denoiser cleans each orientation's raw phases
given those images; the classical Wiener-SIM engine reconstructs the denoised frames.
``microrestore sim reconstruct raw.tif --method rdl`` runs it all.

A built-in plugin, registered through the ``microrestore.plugins`` entry point like any third-party one.
This module stays import-light: torch is loaded only when a model is loaded or trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microrestore import hookimpl
from microrestore.plugins.registry import Method, PredictOptions, TrainRequest

CITATION = (
    "Qiao, C. et al. Rationalized deep learning super-resolution microscopy for sustained live imaging of "
    "rapid subcellular processes. Nature Biotechnology 41, 367-377 (2023). doi:10.1038/s41587-022-01471-3"
)
#: Bundled default model (recipe: zoo/models/rdl-sim-2d.yaml): simulated 2D-SIM of filaments.
DEFAULT_MODEL: str | None = "rdl-sim-2d"


def load(model: str | Path | None, options: PredictOptions) -> Any:
    """Load an rdl-sim model folder (or zoo id) into the full pipeline predictor."""
    from microrestore_rdl_sim.pipeline import RDLSIMPredictor

    return RDLSIMPredictor.from_model(model or DEFAULT_MODEL, options, named=model is not None)


def train(request: TrainRequest) -> Path:
    """Train the DFCAN and the rDL denoiser (see :mod:`microrestore_rdl_sim.training`)."""
    from microrestore_rdl_sim.training import train as run

    return run(request)


@hookimpl
def register_methods(register: Any) -> None:
    """Register the ``rdl-sim`` method."""
    from microrestore_rdl_sim.config import RDLSIMConfig, RDLSIMPredictOptions

    register(
        Method(
            name="rdl-sim",
            task="sim",
            summary="rDL-SIM: DFCAN SR estimate, pattern-modulated images and the rDL denoiser, then Wiener-SIM",
            load=load,
            train=train,
            config_schema=RDLSIMConfig,
            predict_schema=RDLSIMPredictOptions,
            default_model=DEFAULT_MODEL,
            citation=CITATION,
        )
    )

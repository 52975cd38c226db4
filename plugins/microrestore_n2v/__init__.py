"""Noise2Void: self-supervised blind-spot denoising from the noisy images alone (Krull et al., CVPR 2019).

A baseline for the self-supervised denoisers (TiS/SiS-rDL): it needs neither clean targets nor a second noisy
copy, only the assumption that the noise is independent from pixel to pixel. Train once
(``microrestore train n2v --source noisy/ -o model/``) or on the image itself
(``microrestore denoise x.tif --method n2v --self-supervised``).

A built-in plugin, registered through the ``microrestore.plugins`` entry point like any third-party one.
This module stays import-light: torch is loaded only when a model is loaded or trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microrestore import hookimpl
from microrestore.plugins.registry import Method, PredictOptions, TrainRequest

CITATION = (
    "Krull, A., Buchholz, T.-O. & Jug, F. Noise2Void - learning denoising from single noisy images. "
    "CVPR 2019, 2129-2137. doi:10.1109/CVPR.2019.00223"
)
#: Bundled default model (recipe: zoo/models/n2v-generalist-2d.yaml): a generalist for 2D widefield.
DEFAULT_MODEL = "n2v-generalist-2d"

#: The one-shot ``--self-supervised`` network and steps: the n2v U-Net (depth 2) at 16 base filters (83k
#: parameters), about 0.8 megapixels per CPU-second in prediction, so 1000 steps fit the default time budget.
SELF_SUPERVISED_CONFIG = {"base_filters": 16, "steps": 1000}


def load(model: str | Path | None, options: PredictOptions) -> Any:
    """Load an n2v model folder or microrestore package into a tiled predictor."""
    from microrestore.engine.predictor import load_network_model

    return load_network_model(model, options, method="n2v", default_model=DEFAULT_MODEL)[0]


def train(request: TrainRequest) -> Path:
    """Train Noise2Void (see :mod:`microrestore_n2v.training`)."""
    from microrestore_n2v.training import train as run

    return run(request)


@hookimpl
def register_methods(register: Any) -> None:
    """Register the ``n2v`` method."""
    from microrestore_n2v.config import N2VConfig

    register(
        Method(
            name="n2v",
            task="denoise",
            summary="Self-supervised Noise2Void: blind-spot U-Net trained on the noisy images alone",
            load=load,
            train=train,
            config_schema=N2VConfig,
            self_supervised=True,
            self_supervised_config=dict(SELF_SUPERVISED_CONFIG),
            default_model=DEFAULT_MODEL,
            citation=CITATION,
        )
    )

"""Noise2Void: self-supervised blind-spot denoising from the noisy images alone (Krull et al., CVPR 2019).

A baseline for the self-supervised denoisers (TiS/SiS-rDL): it needs neither clean targets nor a second noisy
copy, only the assumption that the noise is independent from pixel to pixel. Train once
(``microrestore train n2v --source noisy/ -o model/``) or on the image itself
(``microrestore denoise x.tif --method n2v --self-supervised``).

A built-in plugin, registered through the ``microrestore.plugins`` entry point like any third-party one.
This module stays import-light: torch is loaded only when a model is loaded or trained.
"""

from __future__ import annotations

from typing import Any

from microrestore.plugin_api import NetworkMethod, TrainingData, TrainRequest, hookimpl
from microrestore_n2v.config import N2VConfig


class N2V(NetworkMethod):
    """Noise2Void: a blind-spot U-Net trained on the noisy images alone."""

    name = "n2v"
    summary = "Self-supervised Noise2Void: blind-spot U-Net trained on the noisy images alone"
    citation = (
        "Krull, A., Buchholz, T.-O. & Jug, F. Noise2Void - learning denoising from single noisy images. "
        "CVPR 2019, 2129-2137. doi:10.1109/CVPR.2019.00223"
    )
    #: Bundled default model (recipe: zoo/models/n2v-generalist-2d.yaml): a generalist for 2D widefield.
    default_model = "n2v-generalist-2d"
    config_schema = N2VConfig
    targets = "refused"
    self_supervised = True
    #: The one-shot ``--self-supervised`` network and steps: the n2v U-Net (depth 2) at 16 base filters (83k
    #: parameters), about 0.8 megapixels per CPU-second in prediction, so 1000 steps fit the default time budget.
    self_supervised_config = {"base_filters": 16, "steps": 1000}  # noqa: RUF012

    def prepare(self, request: TrainRequest, config: N2VConfig) -> TrainingData:
        """Blind-spot batches of the noisy images (see :mod:`microrestore_n2v.training`)."""
        from microrestore_n2v.training import prepare

        return prepare(request, config)

    def training_task(self, networks: dict[str, Any], config: N2VConfig, data: TrainingData) -> Any:
        """The masked loss."""
        from microrestore_n2v.training import N2VTask

        return N2VTask(networks["net"], config)


N2V_METHOD = N2V()
CITATION, DEFAULT_MODEL, SELF_SUPERVISED_CONFIG = N2V.citation, N2V.default_model, N2V.self_supervised_config
load, train = N2V_METHOD.load, N2V_METHOD.train


@hookimpl
def register_methods(register: Any) -> None:
    """Register the ``n2v`` method."""
    register(N2V_METHOD.method())

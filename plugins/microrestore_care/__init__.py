"""CARE: supervised content-aware restoration with a U-Net (Weigert et al., Nature Methods 2018).

A built-in plugin on :mod:`microrestore.plugin_api`, registered through the ``microrestore.plugins`` entry
point like any third-party one. Import-light: torch is loaded only when a model is loaded or trained.
"""

from __future__ import annotations

from typing import Any

from microrestore.plugin_api import NetworkMethod, TrainingData, TrainRequest, hookimpl
from microrestore_care.config import CareConfig


class Care(NetworkMethod):
    """CARE: a U-Net trained on pairs of low- and high-quality images."""

    name = "care"
    summary = "Supervised CARE U-Net trained on pairs of low- and high-quality images"
    citation = (
        "Weigert, M. et al. Content-aware image restoration: pushing the limits of fluorescence microscopy. "
        "Nature Methods 15, 1090-1097 (2018). doi:10.1038/s41592-018-0216-7"
    )
    default_model = "care-generalist-2d"
    config_schema = CareConfig
    targets = "required"

    def prepare(self, request: TrainRequest, config: CareConfig) -> TrainingData:
        """Pairs by file name, normalised with their input's parameters (``target_normalization: own``: their own)."""
        from microrestore.plugin_api import NoiseStabilizingNormalizer, PercentileNormalizer, paired_training_data

        if config.normalization == "noise":
            return paired_training_data(request, config, NoiseStabilizingNormalizer())
        normalizer = PercentileNormalizer(low=config.percentile_low, high=config.percentile_high)
        return paired_training_data(request, config, normalizer, own_targets=config.target_normalization == "own")

    def training_task(self, networks: dict[str, Any], config: CareConfig, data: TrainingData) -> Any:
        """One optimiser on MAE or MSE."""
        from microrestore_care.training import CareTask

        return CareTask(networks["net"], config)


CARE = Care()
CITATION, DEFAULT_MODEL = Care.citation, Care.default_model
load, train = CARE.load, CARE.train


@hookimpl
def register_methods(register: Any) -> None:
    """Register the ``care`` method."""
    register(CARE.method())

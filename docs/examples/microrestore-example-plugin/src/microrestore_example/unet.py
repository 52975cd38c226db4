"""The smallest complete trainable network method: a U-Net trained on pairs with an L2 loss.

Everything else (configuration validation, the training loop with exact resume and ``--max-seconds``, the
model folder with its provenance and training domain, loading, tiled prediction in the input's units,
bioimage.io export) comes from :class:`microrestore.plugin_api.NetworkMethod`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from microrestore.plugin_api import NetworkMethod, NormalizationOptions, PatchOptions, TrainingOptions, UNetOptions


class ExampleUNetConfig(UNetOptions, PatchOptions, NormalizationOptions, TrainingOptions):
    """The shared parts only: U-Net, patches, percentile normalisation, training loop."""

    model_config = ConfigDict(extra="forbid")


class ExampleUNet(NetworkMethod):
    """A supervised U-Net denoiser (``microrestore train example-unet --source noisy/ --target clean/``)."""

    name = "example-unet"
    summary = "U-Net trained on pairs with an L2 loss (example third-party plugin)"
    citation = "Ronneberger, O. et al. U-Net. MICCAI 2015, 234-241. doi:10.1007/978-3-319-24574-4_28"
    config_schema = ExampleUNetConfig
    targets = "required"

    def prepare(self, request: Any, config: ExampleUNetConfig) -> Any:
        """Pairs by file name, each normalised with its input's percentiles."""
        from microrestore.plugin_api import PercentileNormalizer, paired_training_data

        normalizer = PercentileNormalizer(low=config.percentile_low, high=config.percentile_high)
        return paired_training_data(request, config, normalizer)

    def losses(self, network: Any, batch: Any, autocast: Any) -> dict[str, Any]:
        """Mean squared error between the prediction and the target."""
        source, target = batch
        with autocast:
            prediction = network(source)
        return {"loss": ((prediction.float() - target) ** 2).mean()}

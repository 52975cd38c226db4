"""TiS-rDL / SiS-rDL: self-supervised denoising of a noisy time-lapse or z-stack (Qiao et al.).

A time-lapse's even frames are inputs and its odd frames targets (TiS); a z-stack's even slices are inputs and
its odd slices targets, with the amending constraint that removes the expected difference between neighbouring
slices (SiS). The network is an RCAN (2D, frames as samples, or RCAN-3D on z x y x x patches), optionally with
the Fourier noise-suppression module (FNSM). Train once (``microrestore train rdl-denoise --mode tis ...``) or
on the image itself (``microrestore denoise movie.tif --method rdl-denoise --self-supervised``).

A built-in plugin, registered through the ``microrestore.plugins`` entry point like any third-party one.
This module stays import-light: torch is loaded only when a model is loaded or trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microrestore.plugin_api import NetworkMethod, PredictOptions, TrainingData, TrainRequest, hookimpl
from microrestore_rdl_denoise.config import RDLConfig


class _TimeAsDepth:
    """Runs a 3D model trained with a 2D time-lapse's frames as z on time-lapses (T taken as Z)."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor

    def predict(self, image: Any, out: Any = None) -> Any:
        """Relabel T as Z when the image has no Z axis, then predict."""
        if "Z" not in image.axes and "T" in image.axes:
            from microrestore.plugin_api import ImageData

            image = ImageData(image.data, image.axes.replace("T", "Z"), path=image.path, metadata=image.metadata)
        return self.predictor.predict(image, out)


class RDLDenoise(NetworkMethod):
    """TiS/SiS-rDL: an RCAN trained on the even/odd frames or slices of noisy stacks (Noise2Noise)."""

    name = "rdl-denoise"
    summary = (
        "Self-supervised TiS/SiS-rDL: trained on a noisy time-lapse (even/odd frames) or z-stack "
        "(even/odd slices, amending constraint); RCAN 2D/3D, optional FNSM"
    )
    citation = (
        "Qiao, C. et al. Rationalized deep learning super-resolution microscopy for sustained live imaging of rapid "
        "subcellular processes. Nature Biotechnology 41, 367-377 (2023). doi:10.1038/s41587-022-01471-3"
    )
    #: Bundled default (recipe: zoo/models/rdl-denoise-generalist-2d.yaml): a CPU-sized generalist for 2D widefield.
    default_model = "rdl-denoise-generalist-2d"
    config_schema = RDLConfig
    targets = "refused"
    self_supervised = True
    #: The one-shot ``--self-supervised`` network and steps: a 2D RCAN of 2 groups x 2 RCABs at 16 channels (24k
    #: parameters). It predicts about 1 megapixel per CPU-second (the paper-size RCAN: 0.02) and trains about 17
    #: steps (4 patches of 64 x 64) per CPU-second, so 1500 steps take one to two minutes on two idle cores.
    self_supervised_config = {  # noqa: RUF012
        "ndim": 2,
        "n_groups": 2,
        "n_rcab": 2,
        "channels": 16,
        "tail_channels": 32,
        "reduction": 4,
        "steps": 1500,
    }

    def prepare(self, request: TrainRequest, config: RDLConfig) -> TrainingData:
        """Even/odd pairs of the noisy stacks (see :mod:`microrestore_rdl_denoise.training`)."""
        from microrestore_rdl_denoise.training import prepare

        return prepare(request, config)

    def build_networks(self, config: RDLConfig, data: TrainingData) -> dict[str, Any]:
        """The RCAN."""
        from microrestore_rdl_denoise.training import build_networks

        return build_networks(config, data)

    def training_task(self, networks: dict[str, Any], config: RDLConfig, data: TrainingData) -> Any:
        """Random swaps, the Noise2Noise loss and the amending term."""
        from microrestore_rdl_denoise.training import RDLTask

        return RDLTask(networks["net"], config)

    def load(self, model: str | Path | None, options: PredictOptions) -> Any:
        """Load an rdl-denoise model folder, zoo id or microrestore package into a tiled predictor."""
        from microrestore.plugin_api import load_network_model

        predictor, bundle = load_network_model(model, options, method=self.name, default_model=self.default_model)
        return _TimeAsDepth(predictor) if bundle.config.get("depth_axis") == "T" else predictor


RDL_DENOISE = RDLDenoise()
CITATION, DEFAULT_MODEL = RDLDenoise.citation, RDLDenoise.default_model
SELF_SUPERVISED_CONFIG = RDLDenoise.self_supervised_config
load, train = RDL_DENOISE.load, RDL_DENOISE.train


@hookimpl
def register_methods(register: Any) -> None:
    """Register the ``rdl-denoise`` method."""
    register(RDL_DENOISE.method())

"""COMI: correction of out-of-focus microscopy images with a CycleGAN and a multi-component weighted loss.

Zhang et al., Comput. Struct. Biotechnol. J. 2022. G maps out-of-focus images (domain A) to in-focus ones
(domain B), F maps back; ResNet-9 generators with a global skip (output = tanh(.) + input), BatchNorm PatchGAN
discriminators, and the loss adversarial : perceptual content : perceptual cycle = 1e-3 : 1 : 1 plus an
identity-type term. Paired (the content term compares G(a) with the in-focus image of the same field) by
default, as published; unpaired on request. See ``docs/methods/comi.md``.

A built-in plugin, registered through the ``microrestore.plugins`` entry point like any third-party one.
This module stays import-light: torch is loaded only when a model is loaded or trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microrestore import hookimpl
from microrestore.plugins.registry import Method, PredictOptions, TrainRequest

CITATION = (
    "Zhang, C. et al. Correction of out-of-focus microscopic images by deep learning. Computational and "
    "Structural Biotechnology Journal 20, 1957-1966 (2022). doi:10.1016/j.csbj.2022.04.003"
)
#: No zoo model yet: ``--model`` is required.
DEFAULT_MODEL: str | None = None


def load(model: str | Path | None, options: PredictOptions) -> Any:
    """Load a COMI model folder (or zoo id) into a tiled predictor running G (or F with ``direction=BtoA``).

    The input is scaled by its own percentiles (or the model's fixed range), the generator corrects it, and the
    result is mapped back into the input's units; nothing is clipped.
    """
    import microrestore_comi.networks  # noqa: F401  (registers comi_generator with build_network)
    from microrestore.engine.modeldir import load_model
    from microrestore.engine.predictor import NetworkPredictor
    from microrestore.errors import InputError
    from microrestore.nn import build_network
    from microrestore.zoo import resolve_model

    if model is None and DEFAULT_MODEL is None:
        raise InputError("comi has no default model yet: train one with 'microrestore train comi' and pass --model")
    bundle = load_model(resolve_model(model or DEFAULT_MODEL), expected_method="comi")
    name = "G" if str(options.params.get("direction", "AtoB")) == "AtoB" else "F"
    network = bundle.build(name, build_network)
    return NetworkPredictor.from_spec(network, bundle.network_specs[name], bundle.normalization, options)


def train(request: TrainRequest) -> Path:
    """Train COMI (see :mod:`microrestore_comi.training`)."""
    from microrestore_comi.training import train as run

    return run(request)


@hookimpl
def register_methods(register: Any) -> None:
    """Register the ``comi`` method."""
    from microrestore_comi.config import ComiConfig, ComiPredictOptions

    register(
        Method(
            name="comi",
            task="deblur",
            summary="COMI out-of-focus correction: CycleGAN with perceptual content and cycle losses (paired)",
            load=load,
            train=train,
            config_schema=ComiConfig,
            predict_schema=ComiPredictOptions,
            default_model=DEFAULT_MODEL,
            citation=CITATION,
        )
    )

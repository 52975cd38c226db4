"""c²GAN: unsupervised content-preserving image restoration with a saliency-constrained CycleGAN.

Li, X. et al., Light Sci Appl 2021 (published as UTOM). Trained on two unpaired sets of images (degraded
domain A, clean domain B); G restores A -> B, F maps B -> A. Images are scaled by one fixed factor per domain,
so intensities keep their meaning, and outputs are mapped back into the input's units.

A built-in plugin, registered through the ``microrestore.plugins`` entry point like any third-party one.
This module stays import-light: torch is loaded only when a model is loaded or trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microrestore import hookimpl
from microrestore.errors import InputError
from microrestore.plugins.registry import Method, PredictOptions, TrainRequest

CITATION = (
    "Li, X. et al. Unsupervised content-preserving transformation for optical microscopy. "
    "Light: Science & Applications 10, 44 (2021). doi:10.1038/s41377-021-00484-y"
)
#: The bundled zoo model (``zoo/models/c2gan-snr-2d.yaml``): low-SNR -> high-SNR 2D filaments, trained unpaired.
DEFAULT_MODEL: str | None = "c2gan-snr-2d"


def _range(value: Any, where: Path) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"c2gan model has no resolved intensity range (got {value!r})", where) from None
    if not high > low:
        raise InputError(f"c2gan model has an empty intensity range {[low, high]}", where)
    return low, high


def load(model: str | Path | None, options: PredictOptions) -> Any:
    """Load a c²GAN model folder (or zoo id) into a tiled predictor running G (or F with ``direction=BtoA``).

    The input is scaled with its domain's fixed factor; the output is mapped back with the other domain's
    factor (the same one unless the model was trained with ``intensity_range_b``) and kept inside that
    domain's range, which tanh cannot leave anyway.
    """
    from microrestore.engine.modeldir import load_model
    from microrestore.engine.normalization import CameraCalibratedNormalizer, FixedNormalizer
    from microrestore.engine.predictor import NetworkPredictor
    from microrestore.nn import build_network
    from microrestore.zoo import resolve_model

    if model is None and DEFAULT_MODEL is None:
        raise InputError("c2gan has no default model yet: train one with 'microrestore train c2gan' and pass --model")
    bundle = load_model(resolve_model(model or DEFAULT_MODEL), expected_method="c2gan")
    direction = str(options.params.get("direction", "AtoB"))
    range_a = _range(bundle.config.get("intensity_range"), bundle.path)
    range_b = _range(bundle.config.get("intensity_range_b") or range_a, bundle.path)
    name, in_range, out_range = ("G", range_a, range_b) if direction == "AtoB" else ("F", range_b, range_a)
    network = bundle.build(name, build_network)
    camera = bundle.provenance.get("camera_reference", {}).get("A" if direction == "AtoB" else "B")
    if camera and str(options.params.get("calibrate", True)).lower() not in ("false", "0", "no"):
        # each input is mapped into the training camera's units first (offset and gain of its own noise)
        input_normalization = CameraCalibratedNormalizer(
            low=in_range[0], high=in_range[1], reference_gain=camera["gain"], reference_base=camera["base"]
        ).to_dict()
    else:
        input_normalization = FixedNormalizer.from_range(*in_range).to_dict()
    predictor = NetworkPredictor.from_spec(
        network,
        bundle.network_specs[name],
        input_normalization,
        options,
        # the output domain's own scale; tanh cannot leave its range, the clip only absorbs float rounding
        output_normalization=FixedNormalizer.from_range(*out_range).to_dict(),
        output_range=out_range,
    )
    predictor.domain = bundle.provenance.get("domain") or None
    predictor.model_name = str(model or DEFAULT_MODEL)
    return predictor


def train(request: TrainRequest) -> Path:
    """Train c²GAN on unpaired sets (see :mod:`microrestore_c2gan.training`)."""
    from microrestore_c2gan.training import train as run

    return run(request)


@hookimpl
def register_methods(register: Any) -> None:
    """Register the ``c2gan`` method."""
    from microrestore_c2gan.config import C2GANConfig, C2GANPredictOptions

    register(
        Method(
            name="c2gan",
            task="denoise",
            summary="Unsupervised c2GAN (content-preserving CycleGAN) trained on unpaired degraded and clean images",
            load=load,
            train=train,
            config_schema=C2GANConfig,
            predict_schema=C2GANPredictOptions,
            default_model=DEFAULT_MODEL,
            citation=CITATION,
        )
    )

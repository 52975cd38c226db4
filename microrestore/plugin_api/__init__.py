"""The public API for method plugins: everything a plugin imports from microrestore comes from here.

``from microrestore.plugin_api import ...`` gives, grouped as in ``docs/plugins.md``:

Registration
    :data:`hookimpl`, :class:`Method`, :class:`Reader`, :class:`Writer`, :class:`PredictOptions`,
    :class:`Predictor`, :class:`TrainRequest`, :data:`Task`, :class:`ImageData` (what readers return and
    predictors get; loaded on first use) and the errors (:class:`InputError` for bad input,
    exit status 2).
Configuration parts (pydantic mixins)
    :class:`TrainingOptions`, :class:`PatchOptions`, :class:`NormalizationOptions`, :class:`UNetOptions`,
    :class:`BackgroundOptions`, :class:`FNSMOptions`, the bounded network sizes (:data:`UNetDepth`, ...) and
    :func:`validate`.
Trainable network methods
    :class:`NetworkMethod` (request -> config -> data -> networks -> Trainer -> model folder -> predictor) and
    :class:`TrainingData`, :func:`build_unet`; :class:`SingleNetworkTask` (a one-network training step: Adam,
    constant then linear decay; the method writes its loss) and :func:`paired_training_data` (supervised pairs
    as normalised patches).
Training parts (load torch on first use)
    The loop (:class:`Trainer`, :class:`StepContext`, :class:`TrainingTask`, :func:`trainer_config`,
    :func:`fit_and_save`, :func:`constant_then_linear_decay`), the data (:func:`load_images`,
    :func:`samples_from_image`, :func:`load_samples`, :func:`pair_by_name`, :func:`check_pair_shapes`,
    :func:`check_patch_fits`, :func:`training_sampler`, :func:`fit_patch_shape`), the normalisers
    (:class:`PercentileNormalizer`, :class:`NoiseStabilizingNormalizer`), the networks (:class:`UNet`, :class:`RCAN`,
    :func:`fnsm_report`), the model folder (:func:`save_model`, :func:`load_model`,
    :func:`load_network_model`) and :func:`describe` (the training domain the domain guard checks).

Importing this module does not import torch: the training parts are loaded from their modules when first
used, so a plugin's top-level module can import from here and ``microrestore --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from microrestore.configs import (
    BackgroundOptions,
    FNSMOptions,
    GanFilters,
    ImageChannels,
    KernelSize,
    RcanBlocks,
    RcanGroups,
    ResBlocks,
    TailChannels,
    UNetDepth,
    UNetFilters,
    validate,
)
from microrestore.errors import InputError, MicrorestoreError, PluginError
from microrestore.plugin_api.config_parts import (
    NormalizationOptions,
    PatchOptions,
    Precision,
    TrainingOptions,
    UNetOptions,
)
from microrestore.plugin_api.network_method import NetworkMethod, TrainingData, build_unet
from microrestore.plugins.markers import hookimpl
from microrestore.plugins.registry import (
    Method,
    PredictOptions,
    Predictor,
    Reader,
    Task,
    TrainRequest,
    Writer,
)

if TYPE_CHECKING:
    from microrestore.engine.datasets import (
        check_pair_shapes,
        check_patch_fits,
        load_images,
        load_samples,
        pair_by_name,
        samples_from_image,
    )
    from microrestore.engine.domain import describe
    from microrestore.engine.modeldir import load_model, save_model
    from microrestore.engine.normalization import NoiseStabilizingNormalizer, PercentileNormalizer
    from microrestore.engine.patches import fit_patch_shape, training_sampler
    from microrestore.engine.predictor import load_network_model
    from microrestore.engine.trainer import (
        StepContext,
        Trainer,
        TrainingTask,
        constant_then_linear_decay,
        fit_and_save,
        trainer_config,
    )
    from microrestore.io.images import ImageData
    from microrestore.nn import RCAN, UNet, fnsm_report
    from microrestore.plugin_api.training_parts import SingleNetworkTask, options_sampler, paired_training_data

#: The training parts, loaded on first use: name -> module.
_LAZY: dict[str, str] = {
    "StepContext": "microrestore.engine.trainer",
    "Trainer": "microrestore.engine.trainer",
    "TrainingTask": "microrestore.engine.trainer",
    "constant_then_linear_decay": "microrestore.engine.trainer",
    "fit_and_save": "microrestore.engine.trainer",
    "trainer_config": "microrestore.engine.trainer",
    "check_pair_shapes": "microrestore.engine.datasets",
    "check_patch_fits": "microrestore.engine.datasets",
    "load_images": "microrestore.engine.datasets",
    "load_samples": "microrestore.engine.datasets",
    "pair_by_name": "microrestore.engine.datasets",
    "samples_from_image": "microrestore.engine.datasets",
    "fit_patch_shape": "microrestore.engine.patches",
    "training_sampler": "microrestore.engine.patches",
    "NoiseStabilizingNormalizer": "microrestore.engine.normalization",
    "PercentileNormalizer": "microrestore.engine.normalization",
    "UNet": "microrestore.nn",
    "RCAN": "microrestore.nn",
    "fnsm_report": "microrestore.nn",
    "describe": "microrestore.engine.domain",
    "load_model": "microrestore.engine.modeldir",
    "save_model": "microrestore.engine.modeldir",
    "load_network_model": "microrestore.engine.predictor",
    "ImageData": "microrestore.io.images",
    "SingleNetworkTask": "microrestore.plugin_api.training_parts",
    "paired_training_data": "microrestore.plugin_api.training_parts",
    "options_sampler": "microrestore.plugin_api.training_parts",
}

__all__ = [
    "RCAN",
    "BackgroundOptions",
    "FNSMOptions",
    "GanFilters",
    "ImageChannels",
    "ImageData",
    "InputError",
    "KernelSize",
    "Method",
    "MicrorestoreError",
    "NetworkMethod",
    "NoiseStabilizingNormalizer",
    "NormalizationOptions",
    "PatchOptions",
    "PercentileNormalizer",
    "PluginError",
    "Precision",
    "PredictOptions",
    "Predictor",
    "RcanBlocks",
    "RcanGroups",
    "Reader",
    "ResBlocks",
    "SingleNetworkTask",
    "StepContext",
    "TailChannels",
    "Task",
    "TrainRequest",
    "Trainer",
    "TrainingData",
    "TrainingOptions",
    "TrainingTask",
    "UNet",
    "UNetDepth",
    "UNetFilters",
    "UNetOptions",
    "Writer",
    "build_unet",
    "check_pair_shapes",
    "check_patch_fits",
    "constant_then_linear_decay",
    "describe",
    "fit_and_save",
    "fit_patch_shape",
    "fnsm_report",
    "hookimpl",
    "load_images",
    "load_model",
    "load_network_model",
    "load_samples",
    "options_sampler",
    "pair_by_name",
    "paired_training_data",
    "samples_from_image",
    "save_model",
    "trainer_config",
    "training_sampler",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

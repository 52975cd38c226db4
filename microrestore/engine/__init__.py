"""The shared training and inference engine every method plugin builds on.

Submodules
----------
device
    Device resolution (``auto``: CUDA, then MPS, then CPU) and mixed precision.
seeding
    Global seeding and per-step random generators that make resumed runs exact.
normalization
    Serialisable intensity normalisers (percentile, fixed factor, mean/std).
patches
    Random patch sampling from (memory-mapped) channel-first arrays.
pools
    The CycleGAN image history pool.
checkpoints
    Atomic safetensors checkpoints of networks, optimisers and random state.
modeldir
    The model folder format (``config.yaml`` and ``weights.safetensors``).
progress
    The live training display.
trainer
    The training loop for single- and multi-network methods.

The package itself imports nothing heavy: ``import microrestore.engine`` does not import torch. The names
below are loaded from their submodules on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "resolve_device": "device",
    "autocast_context": "device",
    "make_grad_scaler": "device",
    "resolve_precision": "device",
    "configure_determinism": "seeding",
    "seed_everything": "seeding",
    "step_rng": "seeding",
    "PercentileNormalizer": "normalization",
    "FixedNormalizer": "normalization",
    "MeanStdNormalizer": "normalization",
    "NormParams": "normalization",
    "NoiseStabilizingNormalizer": "normalization",
    "NoiseParams": "normalization",
    "normalizer_from_dict": "normalization",
    "NormalizerSpec": "normalization",
    "PatchSampler": "patches",
    "split_validation": "patches",
    "ImagePool": "pools",
    "save_checkpoint": "checkpoints",
    "load_checkpoint": "checkpoints",
    "CheckpointState": "checkpoints",
    "has_checkpoint": "checkpoints",
    "read_checkpoint_record": "checkpoints",
    "save_model": "modeldir",
    "load_model": "modeldir",
    "ModelBundle": "modeldir",
    "TrainingDisplay": "progress",
    "Trainer": "trainer",
    "TrainerConfig": "trainer",
    "TrainingTask": "trainer",
    "StepContext": "trainer",
    "constant_then_linear_decay": "trainer",
    "fit_and_save": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

"""Composable training parts for :class:`~microrestore.plugin_api.network_method.NetworkMethod` (imports torch).

- :class:`SingleNetworkTask`: the training task of a one-network method (Adam, constant then linear decay);
  a method writes only its loss.
- :func:`paired_training_data`: supervised pairs (``--source``/``--target`` by file name), each pair normalised
  with its input's parameters, as patches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from microrestore.engine.datasets import (
    check_pair_shapes,
    check_patch_fits,
    load_images,
    load_samples,
    pair_by_name,
    samples_from_image,
)
from microrestore.engine.patches import training_sampler
from microrestore.engine.trainer import constant_then_linear_decay
from microrestore.plugin_api.training_data import TrainingData
from microrestore.plugins.registry import TrainRequest

__all__ = ["LossTask", "SingleNetworkTask", "paired_training_data"]


class SingleNetworkTask:
    """One network ``net`` trained with Adam at ``config.learning_rate``.

    The learning rate is constant for the first ``config.decay_start`` of the steps, then decays linearly to
    :attr:`final_lr_factor` of its start. Subclasses implement :meth:`losses`; its ``loss`` entry is minimised
    and every entry is logged (and, as ``val_<name>``, validated).
    """

    #: The learning rate at the end of training, as a share of its start.
    final_lr_factor = 0.1

    def __init__(self, network: torch.nn.Module, config: Any) -> None:
        self.networks = {"net": network}
        self.config = config

    def losses(self, batch: Any, autocast: contextlib.AbstractContextManager[Any]) -> Mapping[str, torch.Tensor]:
        """The losses of ``batch`` (run the network under ``autocast``); ``loss`` is the one minimised."""
        raise NotImplementedError

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam on the network."""
        return {"net": torch.optim.Adam(self.networks["net"].parameters(), lr=self.config.learning_rate)}

    def lr_factor(self, step: int, total: int) -> float:
        """Constant, then linear decay to :attr:`final_lr_factor`."""
        keep = self.final_lr_factor
        return keep + (1 - keep) * constant_then_linear_decay(step, total, self.config.decay_start)

    def training_step(self, batch: Any, step: int, ctx: Any) -> dict[str, torch.Tensor]:
        """One optimiser step on ``batch``."""
        losses = self.losses(batch, ctx.autocast())
        ctx.minimize(losses["loss"], "net")
        return {name: value.detach() for name, value in losses.items()}

    def validation_step(self, batch: Any) -> dict[str, float]:
        """The losses of the validation batch, as ``val_<name>``."""
        return {f"val_{name}": float(value) for name, value in self.losses(batch, contextlib.nullcontext()).items()}


class LossTask(SingleNetworkTask):
    """A :class:`SingleNetworkTask` whose losses come from a function ``losses(network, batch, autocast)``."""

    def __init__(self, network: torch.nn.Module, config: Any, losses: Callable[..., Mapping[str, torch.Tensor]]):
        super().__init__(network, config)
        self.loss_function = losses

    def losses(self, batch: Any, autocast: contextlib.AbstractContextManager[Any]) -> Mapping[str, torch.Tensor]:
        """``loss_function(network, batch, autocast)``."""
        return self.loss_function(self.networks["net"], batch, autocast)


def paired_training_data(
    request: TrainRequest, config: Any, normalizer: Any, own_targets: bool = False
) -> TrainingData:
    """Pairs of ``--source`` and ``--target`` files (by name) as normalised patches.

    Parameters
    ----------
    request
        The training request (files, axes).
    config
        A configuration with :class:`~microrestore.plugin_api.config_parts.PatchOptions`,
        :class:`~microrestore.plugin_api.config_parts.TrainingOptions` and ``ndim``.
    normalizer
        Fitted on each input (all its samples); its parameters normalise the input and its target, so the
        network learns in the input's units.
    own_targets
        Normalise each target with parameters fitted on itself instead (predictions then come out in the
        target's relative scale).

    Returns
    -------
    TrainingData
        Patches of ``config.patch_shape(config.ndim)``, the validation batch, the normaliser and the inputs.
    """
    pairs = pair_by_name(request.source, request.target)
    source_images = load_images([p[0] for p in pairs], axes=request.axes)
    sources = [samples_from_image(image, config.ndim) for image in source_images]
    targets = load_samples([p[1] for p in pairs], ndim=config.ndim, axes=request.axes)
    check_pair_shapes(pairs, sources, targets)
    src_norm, tgt_norm = [], []
    for s_list, t_list in zip(sources, targets):
        s_params = normalizer.fit(np.stack(s_list) if len(s_list) > 1 else s_list[0])
        t_params = normalizer.fit(np.stack(t_list) if len(t_list) > 1 else t_list[0]) if own_targets else s_params
        src_norm += [normalizer.apply(s, s_params) for s in s_list]
        tgt_norm += [normalizer.apply(t, t_params) for t in t_list]
    patch = config.patch_shape(config.ndim)
    check_patch_fits([p[0] for p in pairs], sources, patch, "source")
    check_patch_fits([p[1] for p in pairs], targets, patch, "target")
    sampler, validation = options_sampler(config, src_norm, tgt_norm, patch)
    axes = "ZYX" if config.ndim == 3 else "YX"
    return TrainingData(sampler.sample, normalizer.to_dict(), axes, validation, images=source_images)


def options_sampler(config: Any, sources: list[Any], targets: list[Any] | None, patch: tuple[int, ...]) -> tuple:
    """:func:`~microrestore.engine.patches.training_sampler` with the shared options of a method's ``config``.

    Parameters
    ----------
    config
        A configuration with the shared training and patch options (``augment``, ``foreground_bias``,
        ``validation_fraction``, ``seed``, ``batch_size``).
    sources, targets
        Normalised training inputs and their targets (``None`` for self-supervised methods).
    patch
        The patch shape.

    Returns
    -------
    tuple
        ``(sampler, validation batch)``, as :func:`training_sampler` returns them.
    """
    return training_sampler(
        sources,
        targets,
        patch,
        augment=config.augment,
        foreground_bias=config.foreground_bias,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
        validation_size=max(8, config.batch_size),
    )

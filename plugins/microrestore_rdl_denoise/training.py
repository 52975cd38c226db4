"""Training TiS-rDL / SiS-rDL with the shared engine.

Each pair is (even frame or slice, odd frame or slice) of the same noisy stack: the two show the same
structures with independent noise (Noise2Noise), so a network that maps one onto the other learns to remove
the noise. The loss is

    L = loss(pred, target) [+ w loss(pred, target - gap)],   pred = f(input),

with ``loss`` the MSE (or 0.5 L1 + 0.5 L2). The bracket is SiS-rDL's amending constraint: ``gap = f(target) -
f(input)`` is the current network's estimate of how the target slice differs from the input slice, computed
without gradients on the sampled sub-stack (the patch); with the MSE the term is exactly
``MSE(target - pred - gap)``. Input and target of each pair are swapped at random, and patches get one of the 8
rotations/flips.

Intensities: the background (camera offset) is subtracted, then the image is divided by a high percentile above
it; every pair of one file uses the same parameters, so the network works in the input's units and predictions
map back to them exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from microrestore.plugin_api import (
    InputError,
    SingleNetworkTask,
    TrainingData,
    TrainRequest,
    fit_patch_shape,
    load_images,
    options_sampler,
)
from microrestore_rdl_denoise.config import RDLConfig
from microrestore_rdl_denoise.pairs import default_ndim, make_pairs

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def l1l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``0.5 L1 + 0.5 L2`` (DeepCAD's loss)."""
    return 0.5 * F.l1_loss(pred, target) + 0.5 * F.mse_loss(pred, target)


LOSSES: dict[str, LossFn] = {"mse": F.mse_loss, "l1l2": l1l2}


def amending_loss(
    pred: torch.Tensor, target: torch.Tensor, gap: torch.Tensor, loss_fn: LossFn = F.mse_loss, weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SiS-rDL's objective: ``loss(pred, target) + weight * loss(pred, target - gap)``.

    With the MSE the second term is ``MSE(target - pred - gap)``, as in the paper.

    Parameters
    ----------
    pred
        The network's output for the input slices.
    target
        The (noisy) target slices.
    gap
        Expected difference between target and input slices (treated as a constant).
    loss_fn
        The pixel loss.
    weight
        Weight of the amending term.

    Returns
    -------
    tuple of torch.Tensor
        ``(total, data_term, amending_term)``.
    """
    data = loss_fn(pred, target)
    amend = loss_fn(pred, target - gap.detach())
    return data + weight * amend, data, amend


def random_swap(
    source: torch.Tensor, target: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Swap input and target of each pair with probability 1/2 (draws from ``rng`` only).

    Returns
    -------
    tuple
        ``(source, target, swapped)`` with ``swapped`` a boolean array over the batch.
    """
    swapped = rng.random(source.shape[0]) < 0.5
    if not swapped.any():
        return source, target, swapped
    mask = torch.from_numpy(swapped).to(source.device).view(-1, *([1] * (source.dim() - 1)))
    return torch.where(mask, target, source), torch.where(mask, source, target), swapped


class RDLTask(SingleNetworkTask):
    """One TiS/SiS-rDL step: random swap, forward, Noise2Noise loss and (optionally) the amending term.

    Adam on the network (FNSM cutoff and slope included), constant then linear decay to 10 %.
    """

    def __init__(self, network: torch.nn.Module, config: RDLConfig) -> None:
        super().__init__(network, config)
        self.loss_fn = LOSSES[config.loss]
        self.amending = config.amending_on

    def _losses(self, source: torch.Tensor, target: torch.Tensor, ctx: Any = None) -> dict[str, torch.Tensor]:
        net = self.networks["net"]
        autocast = ctx.autocast() if ctx is not None else contextlib.nullcontext()
        with autocast:
            pred = net(source)
        pred = pred.float()
        if not self.amending:
            loss = self.loss_fn(pred, target)
            return {"loss": loss}
        with torch.no_grad(), autocast:
            gap = net(target).float() - pred.detach()
        total, data, amend = amending_loss(pred, target, gap, self.loss_fn, self.config.amending_weight)
        return {"loss": total, "loss_data": data, "loss_amend": amend}

    def training_step(self, batch: Any, step: int, ctx: Any) -> dict[str, torch.Tensor]:
        """One optimiser step on a batch of (input, target) patches."""
        source, target = batch
        if self.config.swap:
            source, target, _ = random_swap(source, target, ctx.rng)
        losses = self._losses(source, target, ctx)
        ctx.minimize(losses["loss"], "net")
        return {k: v.detach() for k, v in losses.items()}

    def validation_step(self, batch: Any) -> dict[str, float]:
        """Validation losses on held-out pairs (Noise2Noise: their floor is the noise variance)."""
        source, target = batch
        return {k: float(v) for k, v in self._losses(source, target).items()}


def _normalised_pairs(images: list[Any], config: RDLConfig, ndim: int) -> tuple[list, list, list[dict], str | None]:
    """Pairs of every image, normalised with that image's background and scale."""
    normalizer = config.background_normalizer()
    inputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    fitted: list[dict] = []
    depth_axes = set()
    for image in images:
        pairs = make_pairs(image, config.mode, ndim)
        params = normalizer.fit(image.data)
        inputs += [normalizer.apply(a, params) for a in pairs.inputs]
        targets += [normalizer.apply(a, params) for a in pairs.targets]
        fitted.append({"file": str(image.path), "pairs": pairs.n_pairs, **params.to_dict()})
        depth_axes.add(pairs.depth_axis)
    if len(depth_axes) > 1:
        raise InputError(
            "the training files mix 2D time-lapses and stacks of volumes; train on one kind (or set ndim=2)"
        )
    return inputs, targets, fitted, depth_axes.pop()


def _patch_shape(config: RDLConfig, ndim: int, inputs: list[np.ndarray], depth_axis: str | None) -> tuple[int, ...]:
    wanted = (config.patch_depth, config.patch_size, config.patch_size) if ndim == 3 else (config.patch_size,) * 2
    patch = fit_patch_shape(wanted, inputs)
    if ndim == 3 and patch[0] < wanted[0] and patch[0] < 4:
        what = {"T": "frames", "Z": "slices"}.get(depth_axis or "Z", "slices")
        raise InputError(
            f"a 3D network needs volumes of at least 4 even {what} (8 in all); the data have {patch[0]}: set ndim=2"
        )
    return patch


def prepare(request: TrainRequest, config: RDLConfig) -> TrainingData:
    """Even/odd pairs of every noisy stack, normalised with that stack's background and scale, as patches."""
    images = load_images(request.source, axes=request.axes)
    ndim = config.ndim or default_ndim(config.mode, images[0].axes)
    inputs, targets, fitted, depth_axis = _normalised_pairs(images, config, ndim)
    patch = _patch_shape(config, ndim, inputs, depth_axis)
    sampler, validation = options_sampler(config, inputs, targets, patch)
    resolved = {"ndim": ndim, "depth_axis": depth_axis, "patch_shape": list(patch), "amending": config.amending_on}
    normalization = config.background_normalizer().to_dict()
    axes = "ZYX" if ndim == 3 else "YX"
    return TrainingData(sampler.sample, normalization, axes, validation, images, resolved, {"background": fitted})


def build_networks(config: RDLConfig, data: TrainingData) -> dict[str, torch.nn.Module]:
    """The RCAN (2D or 3D as resolved from the data), with the FNSM when configured."""
    from microrestore.plugin_api import RCAN

    ndim = data.config["ndim"]
    network = RCAN(
        in_channels=1,
        out_channels=1,
        n_groups=config.n_groups,
        n_rcab=config.n_rcab,
        channels=config.channels,
        ndim=ndim,
        reduction=config.reduction,
        tail_channels=config.tail_channels,
        fnsm=config.fnsm_spec(ndim, data.pixel_size_um),
    )
    return {"net": network}

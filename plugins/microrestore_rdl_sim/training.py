"""Training rDL-SIM with the shared engine: stage 1 the DFCAN SR module, stage 2 the rDL denoiser.

Both stages follow the authors' recipe: inputs and targets min-max normalised per stack, loss
``MSE + 0.1 (1 - SSIM)`` after min-max normalisation, Adam at 1e-4, the rate halved when the validation
NRMSE stops improving (down to 1e-5), and the weights of the best validation NRMSE kept as the result.

Stage 2 prepares each stack once: the trained DFCAN turns the noisy frames into an SR estimate, the
illumination parameters are estimated on the high-SNR raw frames (as the authors train), and the
pattern-modulated images are generated from both (:mod:`microrestore.structured_illumination.patterns`); noisy frames
and targets are orientation-equalised. A step then takes random aligned patches of one stack's three orientations.

Each stage trains in its own sub-folder of the model folder (``dfcan/``, ``denoiser/``: checkpoints and
``metrics.csv``), so ``--resume`` continues whichever stage was interrupted; the plateau state and the best
weights are part of the checkpoints, so a resumed run is the same run.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microrestore import __version__
from microrestore.configs import validate
from microrestore.engine.checkpoints import has_checkpoint
from microrestore.engine.modeldir import CONFIG_NAME, load_model, save_model
from microrestore.engine.trainer import CHECKPOINT_DIR, Trainer, TrainerConfig
from microrestore.errors import InputError
from microrestore.nn import DFCAN, RDLDenoiser, build_network
from microrestore.plugins.registry import TrainRequest
from microrestore_rdl_sim.config import RDLSIMConfig
from microrestore_rdl_sim.data import AlignedPatches, find_triplets, split_indices

# The parts of the method live in sibling modules; these names stay importable from here.
from microrestore_rdl_sim.networks import build_denoiser, build_dfcan
from microrestore_rdl_sim.stacks import StackSet, load_stacks, validation_crops
from microrestore_rdl_sim.task import PlateauBest, RDLStageTask, denoiser_forward, dfcan_forward, image_nrmse

__all__ = [
    "METHOD",
    "STAGES",
    "PlateauBest",
    "RDLStageTask",
    "StackSet",
    "build_denoiser",
    "build_dfcan",
    "denoiser_forward",
    "denoiser_inputs",
    "dfcan_forward",
    "image_nrmse",
    "load_stacks",
    "train",
    "train_denoiser",
    "train_dfcan",
]

METHOD = "rdl-sim"
STAGES = ("dfcan", "denoiser")


def _note(message: str, show: bool) -> None:
    if show:
        print(f"rdl-sim: {message}", file=sys.stderr, flush=True)


def _stage_config(config: RDLSIMConfig, stage: str, device: str, max_seconds: float | None = None) -> TrainerConfig:
    steps = config.dfcan_steps if stage == "dfcan" else config.denoiser_steps
    batch = config.dfcan_batch_size if stage == "dfcan" else config.denoiser_batch_size
    return TrainerConfig(
        steps=steps,
        batch_size=batch,
        seed=config.seed,
        device=device,
        precision=config.precision,
        checkpoint_every=config.checkpoint_every,
        val_every=config.validation_every,
        log_every=min(50, config.validation_every),
        max_seconds=max_seconds,
    )


class Budget:
    """The time left of ``request.max_seconds``, shared by the two stages (``None``: no limit).

    The denoiser stage gets what the DFCAN stage left; a stage that ran out of time stops the run (the model
    is saved with the networks trained so far, and ``--resume`` continues where it stopped).
    """

    def __init__(self, max_seconds: float | None) -> None:
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self.exhausted = False

    def left(self) -> float | None:
        """Seconds left (at least a millisecond, so that a stage runs one step), or ``None``."""
        return None if self.deadline is None else max(1e-3, self.deadline - time.monotonic())


def _run_stage(
    stage: str,
    network: torch.nn.Module,
    forward: Callable[[torch.nn.Module, Any], tuple[torch.Tensor, torch.Tensor]],
    sampler: AlignedPatches,
    validation: Any,
    config: RDLSIMConfig,
    request: TrainRequest,
    budget: Budget,
) -> dict[str, float]:
    folder = request.output / stage
    resume = request.resume and has_checkpoint(folder / CHECKPOINT_DIR)
    task = RDLStageTask(stage, network, config, forward)
    stage_config = _stage_config(config, stage, request.device, budget.left())
    trainer = Trainer(
        task,
        sampler.sample,
        folder,
        stage_config,
        progress=request.progress,
        validation_batch=validation,
    )
    final = trainer.fit(resume=resume)
    budget.exhausted = trainer.step < stage_config.steps
    network.cpu()
    task.plateau.restore_best()
    if task.plateau.best < math.inf:
        final["best_val_nrmse"] = task.plateau.best
    return final


def train_dfcan(
    stacks: StackSet,
    train_idx: list[int],
    val_idx: list[int],
    config: RDLSIMConfig,
    request: TrainRequest,
    budget: Budget | None = None,
) -> tuple[DFCAN, dict[str, float]]:
    """Stage 1: DFCAN from the noisy stacks (9 channels) to the SR targets."""
    n_frames = config.n_frames

    def group(i: int) -> list[np.ndarray]:
        sr = stacks.sr[i]
        assert sr is not None
        return [stacks.noisy[i].reshape(n_frames, *stacks.noisy[i].shape[-2:]), sr]

    sampler = AlignedPatches([group(i) for i in train_idx], [1, 2], config.patch_size, config.augment)
    validation = validation_crops([group(i) for i in val_idx], [1, 2], config.validation_size)
    torch.manual_seed(config.seed)
    network = build_dfcan(config)
    _note(f"stage dfcan: {len(train_idx)} training and {len(val_idx)} validation stacks", request.progress)
    budget = budget or Budget(request.max_seconds)
    final = _run_stage("dfcan", network, dfcan_forward, sampler, validation, config, request, budget)
    return network.eval(), final


def denoiser_inputs(
    stacks: StackSet, dfcan: torch.nn.Module, config: RDLSIMConfig, device: torch.device, show: bool
) -> list[list[np.ndarray]]:
    """Per stack ``[generated, noisy, high]``, each ``(n_or, n_ph, Y, X)``, normalised and equalised.

    Parameters come from the high-SNR raw frames, the SR estimate from the DFCAN on the noisy frames.
    """
    from microrestore.structured_illumination.patterns import (
        equalize_orientations,
        fine_grid_otf,
        generate_from_params,
        minmax,
    )
    from microrestore_rdl_sim.sim_engine import estimate, load_otf_for

    dfcan = dfcan.to(device).eval()
    out = []
    otf_cache: dict[tuple[float, tuple[int, int]], torch.Tensor] = {}
    for i in range(len(stacks)):
        noisy, high = stacks.noisy[i], stacks.high[i]
        shape = (int(noisy.shape[-2]), int(noisy.shape[-1]))
        pixel_nm = stacks.pixel_size_nm[i]
        params = estimate(stacks.high_raw[i], config, pixel_nm)
        key = (pixel_nm, shape)
        if key not in otf_cache:
            otf_cache[key] = fine_grid_otf(load_otf_for(config, pixel_nm), shape, pixel_nm, device)
        with torch.no_grad():
            x = torch.from_numpy(noisy.reshape(1, -1, *shape)).to(device)
            sr = minmax(dfcan(x)[0, 0].float())
            generated = generate_from_params(sr, params, otf_cache[key]).cpu().numpy()
        n_ph = config.n_phases
        noisy_eq = equalize_orientations(noisy.reshape(-1, *shape), n_ph).reshape(noisy.shape)
        high_eq = equalize_orientations(high.reshape(-1, *shape), n_ph).reshape(high.shape)
        out.append([generated.astype(np.float32), noisy_eq.astype(np.float32), high_eq.astype(np.float32)])
        if (i + 1) % 10 == 0 or i + 1 == len(stacks):
            _note(f"prepared {i + 1}/{len(stacks)} stacks for the denoiser", show)
    return out


def train_denoiser(
    stacks: StackSet,
    train_idx: list[int],
    val_idx: list[int],
    dfcan: torch.nn.Module,
    config: RDLSIMConfig,
    request: TrainRequest,
    budget: Budget | None = None,
) -> tuple[RDLDenoiser, dict[str, float]]:
    """Stage 2: the rDL denoiser, on pattern-modulated images + noisy phases, to the high-SNR phases."""
    from microrestore.engine.device import resolve_device

    device = resolve_device(request.device)
    prepared = denoiser_inputs(stacks, dfcan, config, device, request.progress)
    sampler = AlignedPatches([prepared[i] for i in train_idx], [1, 1, 1], config.patch_size, config.augment)
    validation = validation_crops([prepared[i] for i in val_idx], [1, 1, 1], config.validation_size)
    torch.manual_seed(config.seed + 1)
    network = build_denoiser(config)
    _note(f"stage denoiser: {len(train_idx)} training and {len(val_idx)} validation stacks", request.progress)
    budget = budget or Budget(request.max_seconds)
    final = _run_stage("denoiser", network, denoiser_forward, sampler, validation, config, request, budget)
    return network.eval(), final


def _existing_dfcan(config: RDLSIMConfig, output: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The DFCAN for a denoiser-only run: from ``sr_model``, else from the model in ``output``."""
    from microrestore.zoo import resolve_model

    if config.sr_model is not None:
        where: Any = resolve_model(config.sr_model)
    elif (output / CONFIG_NAME).is_file():
        where = output
    else:
        raise InputError(
            "stage=denoiser needs a trained DFCAN: give --set sr_model=MODEL, or first train stage=dfcan into "
            "this output folder"
        )
    bundle = load_model(where, expected_method=METHOD)
    if "dfcan" not in bundle.network_specs:
        raise InputError("the model has no DFCAN network", bundle.path)
    return bundle.build("dfcan", build_network), dict(bundle.metrics.get("dfcan") or {})


def _check_output(request: TrainRequest, stage: str) -> None:
    if request.resume:
        if not any(has_checkpoint(request.output / s / CHECKPOINT_DIR) for s in STAGES):
            raise InputError("cannot resume: no rdl-sim checkpoint in the output folder", request.output)
        return
    if stage != "denoiser" and (request.output / CONFIG_NAME).is_file():
        raise InputError(
            "output folder already holds a model; pass --resume to continue its training or choose another folder",
            request.output,
        )


def train(request: TrainRequest) -> Path:
    """Train rDL-SIM (both stages, or the one asked for) and write a model folder with both networks."""
    budget = Budget(request.max_seconds)
    values = dict(request.config)
    if request.steps is not None:
        values["dfcan_steps"] = values["denoiser_steps"] = request.steps
    config = validate(RDLSIMConfig, values, "rdl-sim configuration")
    if config.n_phases != 3:
        raise InputError(f"rDL-SIM works on 3 phases per orientation, got n_phases={config.n_phases}")
    _check_output(request, config.stage)
    from microrestore.io import expand_inputs

    need_sr = config.stage != "denoiser"
    sr_files = expand_inputs(list(config.sr_target)) if config.sr_target else []
    triplets = find_triplets(request.source, request.target, sr_files, need_sr=need_sr)
    stacks = load_stacks(triplets, config, request.axes, need_sr)
    train_idx, val_idx = split_indices(len(stacks), config.validation_fraction, config.seed)
    _note(f"{len(stacks)} raw stacks from {len(triplets)} files", request.progress)

    metrics: dict[str, Any] = {}
    networks: dict[str, torch.nn.Module] = {}
    if config.stage in ("dfcan", "both"):
        networks["dfcan"], metrics["dfcan"] = train_dfcan(stacks, train_idx, val_idx, config, request, budget)
    else:
        networks["dfcan"], metrics["dfcan"] = _existing_dfcan(config, request.output)
    if config.stage in ("denoiser", "both") and budget.exhausted:
        _note("time budget reached in stage dfcan: the denoiser stage is left to --resume", request.progress)
    elif config.stage in ("denoiser", "both"):
        networks["denoiser"], metrics["denoiser"] = train_denoiser(
            stacks, train_idx, val_idx, networks["dfcan"], config, request, budget
        )
    save_model(
        request.output,
        method=METHOD,
        networks={k: v.cpu() for k, v in networks.items()},
        network_specs={name: net.spec for name, net in networks.items()},
        normalization={"input": "min-max over the frames of each raw stack", "orientations": "mean of orientation 0"},
        config=config.model_dump(mode="json"),
        axes="TYX",
        provenance={
            "microrestore": __version__,
            "seed": config.seed,
            "stage": config.stage,
            "steps": {"dfcan": config.dfcan_steps, "denoiser": config.denoiser_steps},
            "source": [str(t.noisy) for t in triplets],
            "target": [str(t.high) for t in triplets],
            "sr_target": [str(t.sr) for t in triplets if t.sr is not None],
            "validation": [stacks.names[i] for i in val_idx],
        },
        metrics=metrics,
    )
    return request.output

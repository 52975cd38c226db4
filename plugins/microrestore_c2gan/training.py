"""Training c²GAN (content-preserving CycleGAN) on two unpaired image sets with the shared engine.

Domain A holds the degraded images (``--source``), domain B the clean ones (``--target``). G maps A to B, F maps
B to A; D_A and D_B are 70x70 PatchGANs. The generator loss is

    L_GAN(G) + L_GAN(F) + lambda_cycle (L_cyc,A + L_cyc,B) [+ identity] + rho(t) L_sc,

with least-squares GAN losses against the real label 0.9, and the saliency (content-preserving) loss

    L_sc = mean |M_A(a) - M_B(G(a))| + mean |M_B(b) - M_A(F(b))|,   M_t(z) = sigmoid(k (z - (t / 127.5 - 1)))

with z the image on the [-1, 1] scale, t the threshold in grey levels of the 0..255 scale and k the slope per
unit of the [-1, 1] scale (10, as c²GAN's ``tf.nn.sigmoid((x - (58/127.5 - 1)) * 10)``: a ramp about 56 grey
levels wide, not a hard threshold). Each image is thresholded with the mask function of the domain it
belongs to: G(a) is a domain-B image, so M_B; F(b) is a domain-A image, so M_A. (The official TensorFlow code
computes the backward term on G(b); UTOM thresholds each fake with the other domain's threshold. Neither is
copied.) The weight decays as rho(t) = rho0 exp(-decay t / T).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microrestore import __version__
from microrestore.configs import validate
from microrestore.engine.datasets import check_patch_fits, load_samples, pair_by_name
from microrestore.engine.domain import describe
from microrestore.engine.modeldir import save_model
from microrestore.engine.normalization import FixedNormalizer, camera_reference
from microrestore.engine.patches import PatchSampler
from microrestore.engine.trainer import Trainer, trainer_config
from microrestore.errors import InputError
from microrestore.plugins.registry import TrainRequest
from microrestore_c2gan.config import C2GANConfig

# The parts of the method live in sibling modules; these names stay importable from here.
from microrestore_c2gan.losses import discriminator_loss, saliency_loss, saliency_mask, saliency_weight
from microrestore_c2gan.networks import build_discriminator, build_generator
from microrestore_c2gan.otsu import otsu_threshold
from microrestore_c2gan.scaling import (
    DATA_HEADROOM,
    FIT_PLANES,
    FIT_SAMPLES,
    resolve_range,
    scaled_255,
)
from microrestore_c2gan.task import C2GANTask

__all__ = [
    "DATA_HEADROOM",
    "FIT_PLANES",
    "FIT_SAMPLES",
    "C2GANTask",
    "build_discriminator",
    "build_generator",
    "discriminator_loss",
    "otsu_threshold",
    "resolve_range",
    "saliency_loss",
    "saliency_mask",
    "saliency_weight",
    "scaled_255",
    "train",
]


def _note(message: str, show: bool) -> None:
    if show:
        print(f"c2gan: {message}", file=sys.stderr, flush=True)


def _check_domain(values: np.ndarray, name: str, show: bool) -> None:
    outside = float(np.mean((values < 0) | (values > 255)))
    if outside > 0:
        share = f"{100 * outside:.2g}%"
        _note(f"{share} of domain {name} values lie outside intensity_range (tanh cannot reach them)", show)
    used = float(np.percentile(values, 99.9))
    if used < 8:
        _note(
            f"domain {name} uses little of intensity_range (99.9th percentile {used:.2f} of 255): consider a "
            "narrower intensity_range so that the thresholds and the slope work on a useful scale",
            show,
        )


def _validation_pairs(config: C2GANConfig, axes: str | None, norm_a: FixedNormalizer, norm_b: FixedNormalizer) -> Any:
    """A fixed paired batch (centre crops) from ``validation_source``/``validation_target``."""
    assert config.validation_source is not None and config.validation_target is not None
    pairs = pair_by_name([Path(p) for p in config.validation_source], [Path(p) for p in config.validation_target])
    a_files = load_samples([p[0] for p in pairs], ndim=2, axes=axes, channels=config.channels)
    b_files = load_samples([p[1] for p in pairs], ndim=2, axes=axes, channels=config.channels)
    a_list, b_list = [], []
    for (src, _), a_s, b_s in zip(pairs, a_files, b_files):
        if len(a_s) != len(b_s) or any(x.shape != y.shape for x, y in zip(a_s, b_s)):
            raise InputError("validation image does not match the shape of its target", src)
        a_list += a_s
        b_list += b_s
    a_list, b_list = a_list[:8], b_list[:8]
    multiple = config.size_multiple()
    size = min(min(s.shape[-2:]) for s in a_list)
    size = min(size, max(256, config.patch_size)) // multiple * multiple
    if size < multiple:
        raise InputError(f"validation images are smaller than {multiple} px, the generator's size multiple")

    def crop(s: np.ndarray) -> np.ndarray:
        y0, x0 = (s.shape[-2] - size) // 2, (s.shape[-1] - size) // 2
        return np.asarray(s[:, y0 : y0 + size, x0 : x0 + size])

    a = np.stack([norm_a.apply(crop(s)) for s in a_list])
    b = np.stack([norm_b.apply(crop(s)) for s in b_list])
    return a, b


def _flatten(files: list[list[np.ndarray]]) -> list[np.ndarray]:
    return [s for per_file in files for s in per_file]


def train(request: TrainRequest) -> Path:
    """Train c²GAN on unpaired sets (``source``: domain A, degraded; ``target``: domain B, clean)."""
    values = dict(request.config)
    if request.steps is not None:
        values["steps"] = request.steps
    config = validate(C2GANConfig, values, "c2gan configuration")
    if not request.source or not request.target:
        raise InputError(
            "c2gan trains on two unpaired sets: give the degraded images as the source (domain A) and clean "
            "images of other fields as --target (domain B)"
        )
    show = request.progress
    files_a = load_samples(request.source, ndim=2, axes=request.axes, channels=config.channels)
    files_b = load_samples(request.target, ndim=2, axes=request.axes, channels=config.channels)
    check_patch_fits(request.source, files_a, (config.patch_size,) * 2, "source")
    check_patch_fits(request.target, files_b, (config.patch_size,) * 2, "target")
    samples_a, samples_b = _flatten(files_a), _flatten(files_b)

    if config.intensity_range == "data" and config.intensity_range_b is None:
        # one scale for both domains, from both domains' values: intensities keep one meaning across A and B
        range_a = range_b = resolve_range([*samples_a, *samples_b], "data", "A and B")
    else:
        range_a = resolve_range(samples_a, config.intensity_range, "A")
        range_b = resolve_range(
            samples_b, config.intensity_range if config.intensity_range_b is None else config.intensity_range_b, "B"
        )
    norm_a, norm_b = FixedNormalizer.from_range(*range_a), FixedNormalizer.from_range(*range_b)
    values_a, values_b = scaled_255(samples_a, norm_a), scaled_255(samples_b, norm_b)
    _check_domain(values_a, "A", show)
    _check_domain(values_b, "B", show)
    threshold_a = otsu_threshold(values_a) if config.threshold_a is None else float(config.threshold_a)
    threshold_b = otsu_threshold(values_b) if config.threshold_b is None else float(config.threshold_b)
    if config.saliency_weight > 0:
        how_a = "Otsu" if config.threshold_a is None else "given"
        how_b = "Otsu" if config.threshold_b is None else "given"
        _note(
            f"saliency thresholds on the 0..255 scale: A {threshold_a:.2f} ({how_a}, {config.polarity_a}), "
            f"B {threshold_b:.2f} ({how_b}, {config.polarity_b}); intensity ranges A {list(range_a)}, "
            f"B {list(range_b)}",
            show,
        )
    resolved = config.model_copy(
        update={
            "threshold_a": round(threshold_a, 4),
            "threshold_b": round(threshold_b, 4),
            "intensity_range": range_a,
            "intensity_range_b": range_b,
        }
    )

    patch = (config.patch_size, config.patch_size)
    sampler = PatchSampler(
        samples_a,
        samples_b,
        patch,
        paired=False,
        augment=config.augment,
        foreground_bias=config.foreground_bias,
        source_normalizer=norm_a,
        target_normalizer=norm_b,
    )
    paired_validation = config.validation_source is not None
    if paired_validation:
        validation = _validation_pairs(config, request.axes, norm_a, norm_b)
    else:
        validation = sampler.sample(np.random.default_rng([config.seed, 7]), max(4, config.batch_size))

    torch.manual_seed(config.seed)
    networks = {
        "G": build_generator(config),
        "F": build_generator(config),
        "D_A": build_discriminator(config),
        "D_B": build_discriminator(config),
    }
    task = C2GANTask(networks, resolved, paired_validation=paired_validation)
    trainer = Trainer(
        task,
        sampler.sample,
        request.output,
        trainer_config(config, request.device, max_seconds=request.max_seconds),
        progress=request.progress,
        validation_batch=validation,
    )
    final = trainer.fit(resume=request.resume)
    generators = {"G": networks["G"], "F": networks["F"]}
    save_model(
        request.output,
        method="c2gan",
        networks=generators,
        network_specs={name: net.spec for name, net in generators.items()},
        normalization=norm_a.to_dict(),
        config=resolved.model_dump(),
        axes="CYX" if config.channels > 1 else "YX",
        provenance={
            "microrestore": __version__,
            "seed": config.seed,
            "steps": config.steps,
            "steps_run": trainer.step,
            "source": [str(p) for p in request.source],
            "target": [str(p) for p in request.target],
            "thresholds_255": {"A": threshold_a, "B": threshold_b},
            # the training camera (gain, background) of the noisy domain, for CameraCalibratedNormalizer
            "camera_reference": {k: v for k, v in (("A", camera_reference(samples_a)),) if v},
            "domain": describe(samples_a),
        },
        metrics=final,
    )
    return request.output

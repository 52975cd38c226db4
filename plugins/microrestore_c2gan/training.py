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

import contextlib
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from microrestore import __version__
from microrestore.configs import validate
from microrestore.engine.datasets import check_patch_fits, load_samples, pair_by_name
from microrestore.engine.domain import describe
from microrestore.engine.modeldir import save_model
from microrestore.engine.normalization import FixedNormalizer, camera_reference, subsample
from microrestore.engine.patches import PatchSampler
from microrestore.engine.pools import ImagePool
from microrestore.engine.trainer import Trainer, constant_then_linear_decay, trainer_config
from microrestore.errors import InputError
from microrestore.losses.basic import l1, lsgan_loss
from microrestore.nn import PatchGAN, ResnetGenerator, UNetGenerator
from microrestore.plugins.registry import TrainRequest
from microrestore_c2gan.config import C2GANConfig

#: Values looked at per domain when computing Otsu's threshold and the ``auto`` range of float images.
FIT_SAMPLES = 1 << 20
#: At most this many planes per domain are looked at for the automatic threshold and range.
FIT_PLANES = 64

# --------------------------------------------------------------------------------------------------------------
# The pieces of the objective (pure functions, unit-tested one by one)


def saliency_mask(
    z: torch.Tensor, threshold: float, slope: float, polarity: str = "bright", channel_mean: bool = True
) -> torch.Tensor:
    """Soft foreground mask ``M_t(z) = sigmoid(k (z - (t / 127.5 - 1)))`` of images scaled to [-1, 1].

    Parameters
    ----------
    z
        Images ``(B, C, Y, X)`` in [-1, 1].
    threshold
        t in grey levels of the 0..255 scale.
    slope
        k, per unit of the [-1, 1] scale of ``z`` (c²GAN: 10; 127.5 times that is a slope of ``k`` per grey
        level, the earlier hard mask).
    polarity
        ``bright``: objects brighter than t are foreground; ``dark``: the mask is inverted,
        ``sigmoid(k ((t / 127.5 - 1) - z))`` (bright background, e.g. histology).
    channel_mean
        Average the channels first (one mask per image).

    Returns
    -------
    torch.Tensor
        Masks in (0, 1), ``(B, 1, Y, X)`` with ``channel_mean`` else ``(B, C, Y, X)``, float32.
    """
    if polarity not in ("bright", "dark"):
        raise ValueError(f"polarity must be 'bright' or 'dark', got {polarity!r}")
    z = z.float()
    if channel_mean:
        z = z.mean(dim=1, keepdim=True)
    sign = 1.0 if polarity == "bright" else -1.0
    return torch.sigmoid(sign * float(slope) * (z - (float(threshold) / 127.5 - 1.0)))


def saliency_loss(
    real_a: torch.Tensor,
    fake_b: torch.Tensor,
    real_b: torch.Tensor,
    fake_a: torch.Tensor,
    mask_a: Callable[[torch.Tensor], torch.Tensor],
    mask_b: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """c²GAN's saliency constraint ``mean|M_A(a) - M_B(G(a))| + mean|M_B(b) - M_A(F(b))|``.

    Parameters
    ----------
    real_a, fake_b
        A domain-A batch and its translation ``G(a)`` (a domain-B image: thresholded with ``mask_b``).
    real_b, fake_a
        A domain-B batch and its translation ``F(b)`` (a domain-A image: thresholded with ``mask_a``).
    mask_a, mask_b
        The mask functions of the two domains (:func:`saliency_mask` with each domain's threshold).

    Returns
    -------
    torch.Tensor
        Scalar, float32.
    """
    forward = torch.mean(torch.abs(mask_a(real_a) - mask_b(fake_b)))
    backward = torch.mean(torch.abs(mask_b(real_b) - mask_a(fake_a)))
    return forward + backward


def saliency_weight(step: int, total: int, rho0: float, decay: float = 6.0) -> float:
    """``rho(t) = rho0 exp(-decay t / T)`` for the 0-based step ``t`` of ``T``."""
    return float(rho0) * math.exp(-float(decay) * step / max(1, total))


def discriminator_loss(pred_real: torch.Tensor, pred_fake: torch.Tensor, real_label: float = 0.9) -> torch.Tensor:
    """LSGAN discriminator loss ``0.5 [mean (D(real) - label)^2 + mean D(fake)^2]``."""
    return 0.5 * (lsgan_loss(pred_real, real_label) + lsgan_loss(pred_fake, 0.0))


def otsu_threshold(values: np.ndarray, bins: int = 1024) -> float:
    """Otsu's threshold: the level that maximises the between-class variance of a histogram.

    The histogram spans the values' own range (not a fixed 0..255), so images that use a small part of the
    scale (16-bit data scaled by a fixed factor) still get a resolved threshold.

    Parameters
    ----------
    values
        Any numbers (flattened; non-finite values are ignored).
    bins
        Histogram bins.

    Returns
    -------
    float
        The threshold: values above it are the upper class (as ``skimage.filters.threshold_otsu``).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise InputError("cannot compute a threshold of no values")
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return lo
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centers = (edges[:-1] + edges[1:]) / 2
    weight1 = np.cumsum(counts)
    weight2 = np.cumsum(counts[::-1])[::-1]
    mean1 = np.cumsum(counts * centers) / np.maximum(weight1, 1)
    mean2 = (np.cumsum((counts * centers)[::-1]) / np.maximum(weight2[::-1], 1))[::-1]
    variance = weight1[:-1] * weight2[1:] * (mean1[:-1] - mean2[1:]) ** 2
    return float(centers[int(np.argmax(variance))])


# --------------------------------------------------------------------------------------------------------------
# Networks


def build_generator(config: C2GANConfig) -> nn.Module:
    """The generator of the configuration (ResNet as c²GAN, or UTOM's U-Net), CycleGAN-initialised."""
    if config.generator == "unet":
        return UNetGenerator(
            in_channels=config.channels,
            out_channels=config.channels,
            num_downs=config.resolved_unet_downs(),
            ngf=config.ngf,
            norm="instance",
        )
    return ResnetGenerator(
        in_channels=config.channels,
        out_channels=config.channels,
        n_blocks=config.resolved_n_blocks(),
        ngf=config.ngf,
        norm="instance",
        upsampling="transpose",
    )


def build_discriminator(config: C2GANConfig) -> nn.Module:
    """The 70x70 PatchGAN with instance norm."""
    return PatchGAN(in_channels=config.channels, ndf=config.ndf, n_layers=3, norm="instance")


# --------------------------------------------------------------------------------------------------------------
# The training task


class C2GANTask:
    """One c²GAN step: update G and F together (optimiser ``G``), then D_A and D_B (optimiser ``D``).

    Parameters
    ----------
    networks
        ``G`` (A -> B), ``F`` (B -> A), ``D_A`` and ``D_B``.
    config
        The configuration; ``threshold_a`` and ``threshold_b`` must be resolved (not ``None``) when the
        saliency weight is positive.
    paired_validation
        Whether the validation batch pairs each A image with its B image (then PSNR of G(a) against b).
    """

    def __init__(self, networks: dict[str, nn.Module], config: C2GANConfig, paired_validation: bool = False) -> None:
        missing = {"G", "F", "D_A", "D_B"} - set(networks)
        if missing:
            raise ValueError(f"c2gan needs networks G, F, D_A and D_B; missing {sorted(missing)}")
        self.networks = networks
        self.config = config
        self.paired_validation = paired_validation
        self.pool_a = ImagePool(config.pool_size)  # generated domain-A images F(b), for D_A
        self.pool_b = ImagePool(config.pool_size)  # generated domain-B images G(a), for D_B
        self.threshold_a = 127.5 if config.threshold_a is None else float(config.threshold_a)
        self.threshold_b = 127.5 if config.threshold_b is None else float(config.threshold_b)

    # -- masks and losses -----------------------------------------------------------------------------------

    def mask_a(self, z: torch.Tensor) -> torch.Tensor:
        """Domain A's mask function M_A."""
        c = self.config
        return saliency_mask(z, self.threshold_a, c.saliency_slope, c.polarity_a, c.mask_channel_mean)

    def mask_b(self, z: torch.Tensor) -> torch.Tensor:
        """Domain B's mask function M_B."""
        c = self.config
        return saliency_mask(z, self.threshold_b, c.saliency_slope, c.polarity_b, c.mask_channel_mean)

    def generator_losses(
        self, real_a: torch.Tensor, real_b: torch.Tensor, rho: float, autocast: Any = None
    ) -> dict[str, torch.Tensor]:
        """Forward both cycles and return the generator losses (``total`` included) and the fakes.

        Returns
        -------
        dict of str to torch.Tensor
            ``total``, ``gan_G``, ``gan_F``, ``cycle_A``, ``cycle_B``, ``identity``, ``saliency`` and the
            tensors ``fake_a`` (F(b)) and ``fake_b`` (G(a)).
        """
        c = self.config
        net_g, net_f = self.networks["G"], self.networks["F"]
        d_a, d_b = self.networks["D_A"], self.networks["D_B"]
        context = autocast() if autocast is not None else contextlib.nullcontext()
        with context:
            fake_b = net_g(real_a)
            rec_a = net_f(fake_b)
            fake_a = net_f(real_b)
            rec_b = net_g(fake_a)
            pred_fake_b = d_b(fake_b)
            pred_fake_a = d_a(fake_a)
            idt_b = net_g(real_b) if c.lambda_identity > 0 else None
            idt_a = net_f(real_a) if c.lambda_identity > 0 else None
        gan_g = lsgan_loss(pred_fake_b, c.real_label)
        gan_f = lsgan_loss(pred_fake_a, c.real_label)
        cycle_a = l1(rec_a, real_a)
        cycle_b = l1(rec_b, real_b)
        identity = torch.zeros((), device=real_a.device)
        if idt_a is not None and idt_b is not None:
            identity = c.lambda_cycle * c.lambda_identity * (l1(idt_b, real_b) + l1(idt_a, real_a))
        # G(a) belongs to domain B, F(b) to domain A: each is thresholded with its own domain's mask.
        sal = saliency_loss(real_a, fake_b, real_b, fake_a, self.mask_a, self.mask_b)
        total = gan_g + gan_f + c.lambda_cycle * (cycle_a + cycle_b) + identity + rho * sal
        return {
            "total": total,
            "gan_G": gan_g,
            "gan_F": gan_f,
            "cycle_A": cycle_a,
            "cycle_B": cycle_b,
            "identity": identity,
            "saliency": sal,
            "fake_a": fake_a,
            "fake_b": fake_b,
        }

    # -- TrainingTask ---------------------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam on G and F together (``G``), and on D_A and D_B together (``D``), as CycleGAN."""
        c = self.config
        betas = (c.beta1, c.beta2)
        gen = [*self.networks["G"].parameters(), *self.networks["F"].parameters()]
        disc = [*self.networks["D_A"].parameters(), *self.networks["D_B"].parameters()]
        return {
            "G": torch.optim.Adam(gen, lr=c.learning_rate, betas=betas),
            "D": torch.optim.Adam(disc, lr=c.learning_rate, betas=betas),
        }

    def lr_factor(self, step: int, total: int) -> float:
        """Constant, then linear decay to 0 from ``decay_start`` (both optimisers)."""
        return constant_then_linear_decay(step, total, self.config.decay_start)

    def _discriminators_trainable(self, flag: bool) -> None:
        for name in ("D_A", "D_B"):
            for p in self.networks[name].parameters():
                p.requires_grad_(flag)

    def training_step(self, batch: Any, step: int, ctx: Any) -> dict[str, torch.Tensor]:
        """One generator update, then one discriminator update on pooled fakes."""
        c = self.config
        real_a, real_b = batch
        rho = saliency_weight(step, ctx.total, c.saliency_weight, c.saliency_decay)

        self._discriminators_trainable(False)
        try:
            gen = self.generator_losses(real_a, real_b, rho, ctx.autocast)
            ctx.minimize(gen["total"], "G")
        finally:
            self._discriminators_trainable(True)

        # Pools hold float32 fakes; the randomness comes from the step's generator (exact resume).
        pooled_b = self.pool_b.query(gen["fake_b"].detach().float(), ctx.rng)
        pooled_a = self.pool_a.query(gen["fake_a"].detach().float(), ctx.rng)
        d_a, d_b = self.networks["D_A"], self.networks["D_B"]
        with ctx.autocast():
            pred_real_b, pred_fake_b = d_b(real_b), d_b(pooled_b)
            pred_real_a, pred_fake_a = d_a(real_a), d_a(pooled_a)
        loss_d_b = discriminator_loss(pred_real_b, pred_fake_b, c.real_label)
        loss_d_a = discriminator_loss(pred_real_a, pred_fake_a, c.real_label)
        ctx.minimize(loss_d_a + loss_d_b, "D")

        out = {k: v.detach() for k, v in gen.items() if k not in ("fake_a", "fake_b")}
        out["G"] = out.pop("total")
        out["D_A"] = loss_d_a.detach()
        out["D_B"] = loss_d_b.detach()
        out["rho"] = torch.tensor(rho, device=real_a.device)
        return out

    def validation_step(self, batch: Any) -> dict[str, float]:
        """Cycle loss on the fixed batch; with paired validation data also the PSNR of G(a) against b."""
        real_a, real_b = batch
        fake_b = self.networks["G"](real_a).float()
        fake_a = self.networks["F"](real_b).float()
        cycle = float(l1(self.networks["F"](fake_b), real_a) + l1(self.networks["G"](fake_a), real_b))
        metrics = {"val_cycle": cycle}
        if self.paired_validation:
            mse = float(torch.mean((fake_b - real_b.float()) ** 2))
            metrics["val_psnr"] = 10 * math.log10(4.0 / max(mse, 1e-12))  # data range 2 on [-1, 1]
        return metrics

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The two image pools, for checkpoints."""
        out = {f"pool_a/{k}": v for k, v in self.pool_a.state_tensors().items()}
        out.update({f"pool_b/{k}": v for k, v in self.pool_b.state_tensors().items()})
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore the image pools saved by :meth:`state_tensors`."""
        unknown = [k for k in tensors if not k.startswith(("pool_a/", "pool_b/"))]
        if unknown:
            raise InputError(f"c2gan checkpoint holds unknown task state {unknown[:3]}")
        for prefix, pool in (("pool_a/", self.pool_a), ("pool_b/", self.pool_b)):
            pool.load_state_tensors({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})


# --------------------------------------------------------------------------------------------------------------
# Data: fixed scaling, automatic thresholds


def _fit_planes(samples: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Up to FIT_PLANES evenly spaced samples, each subsampled so that the total stays near FIT_SAMPLES."""
    items = list(samples)
    if len(items) > FIT_PLANES:
        items = [items[i] for i in np.linspace(0, len(items) - 1, FIT_PLANES).round().astype(int)]
    budget = max(4096, FIT_SAMPLES // len(items))
    return [np.asarray(subsample(s, budget), dtype=np.float64) for s in items]


#: Share of the data's span added above its 99.99th percentile by ``intensity_range: data``.
DATA_HEADROOM = 0.25


def resolve_range(samples: Sequence[np.ndarray], spec: Any, domain: str) -> tuple[float, float]:
    """The fixed intensity range of one domain: the given ``[low, high]`` or ``auto`` (from the dtype).

    ``auto``: integer images use their dtype's range (0..255 for uint8, 0..65535 for uint16; the widest type
    of the domain); float images 0 (or the minimum, if negative) to the maximum of the domain's images.
    ``data``: from the images' values, for low-count data that uses a sliver of its dtype's range: the 0.1st
    percentile minus 5 % of the span to the 99.99th percentile plus :data:`DATA_HEADROOM` of it (room for
    structures brighter than any seen in training), never below 0 for unsigned images.
    """
    if spec == "data":
        values = np.concatenate([v.ravel() for v in _fit_planes(samples)])
        lo, hi = (float(v) for v in np.percentile(values, [0.1, 99.99]))
        if not hi > lo:
            raise InputError(f"domain {domain} images are constant; give intensity_range explicitly")
        span = hi - lo
        low = lo - 0.05 * span
        if all(np.dtype(s.dtype).kind in "ub" for s in samples):
            low = max(0.0, low)
        return low, hi + DATA_HEADROOM * span
    if spec != "auto":
        low, high = (float(v) for v in spec)
        return low, high
    dtypes = {np.dtype(s.dtype) for s in samples}
    if all(d.kind in "ui" for d in dtypes):
        return float(min(np.iinfo(d).min for d in dtypes)), float(max(np.iinfo(d).max for d in dtypes))
    if all(d.kind == "b" for d in dtypes):
        return 0.0, 1.0
    values = _fit_planes(samples)
    low = min(0.0, min(float(v.min()) for v in values))
    high = max(float(v.max()) for v in values)
    if not high > low:
        raise InputError(f"domain {domain} images are constant; give intensity_range explicitly")
    return low, high


def scaled_255(samples: Sequence[np.ndarray], normalizer: FixedNormalizer) -> np.ndarray:
    """A subsample of the domain's images on the 0..255 scale of the thresholds (``(scaled + 1) * 127.5``)."""
    parts = [((normalizer.apply(v) + 1.0) * 127.5).ravel() for v in _fit_planes(samples)]
    return np.concatenate(parts)


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

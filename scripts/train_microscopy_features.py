"""Rebuild the shipped microscopy feature network (``microrestore/nn/weights/microscopy-features-v2.safetensors``).

The network (:class:`microrestore.nn.features.MicroscopyFeatures`) is the encoder of an autoencoder. Version 2
(the default here: ``--objective reconstruct --activation leaky_relu --pool avg``) rebuilds its own input, clean or
noisy, blurred or sharp, at a random intensity range, so its features keep everything in the image: matching
them pins the pixels down, which is what a content loss needs. Version 1 (``--objective denoise --activation relu
--pool max``) rebuilt the clean image from a noisy copy; its ReLU and max-pooling left whole regions of an image
(everything below a window's maximum, everything below a unit's threshold) invisible to the loss, and a generator
trained on it matched the features without matching the image.

Training images (never the DFNN defocus series, which the COMI benchmark holds out):

- simulated fields of every phantom of :mod:`microrestore.simulation` (filaments, puncta, tubules, nuclei,
  mixed), through the pupil-function PSF at a random defocus of 0 to 1.2 um (NA 0.8 to 1.4);
- real images with licences that allow it: ``deblur/cells3d_nuclei.tif`` (CC0, every 4th plane) and
  ``deblur/sdeconv_celegans.tif`` (BSD-3) from ``../shared/data`` when present, with an extra random Gaussian
  blur.

Each step draws 16 patches of 64 x 64, each scaled by its clean image's 0.1/99.9 percentiles (span at least 5 %
of the image's peak) onto [-1, 1] (version 2: onto a random ``[lo, hi]`` inside it), adds Poisson-Gaussian noise
at 5 to 500 photons (peak), and minimises the MSE of the reconstruction (gradient norm clipped at 1). Finally
each feature channel is scaled to unit standard deviation over 64 clean training patches (channels that never
vary get 0); ``--rescale FILE`` redoes only this last step on a trained file. ``--check FILE`` reports how well a
content loss on a file's features pins an image down (also printed after training).

Run: ``python scripts/train_microscopy_features.py`` (3000 steps, about 9 minutes on one CPU thread); then update
``MICROSCOPY_FEATURES_SHA256`` in ``microrestore/nn/features.py`` with the printed sha256.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def percentile_scale(clean: np.ndarray, *others: np.ndarray, min_span: float = 1e-6) -> list[np.ndarray]:
    """Scale ``clean`` and ``others`` by the clean image's 0.1/99.9 percentiles onto [-1, 1].

    ``min_span`` floors the percentile span, so that a patch of near-constant background does not blow its
    noise up to huge values.
    """
    lo, hi = np.percentile(clean, [0.1, 99.9])
    span = max(float(hi - lo), min_span)
    return [(2.0 * (a - lo) / span - 1.0).astype(np.float32) for a in (clean, *others)]


def simulated_images(n: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Noise-free density images (peak 1) of random phantoms at random defocus and NA."""
    from microrestore.optics import Optics
    from microrestore.simulation.cases import convolve_same, psf_kernel
    from microrestore.simulation.phantoms import PHANTOMS

    names = sorted(name for name in PHANTOMS if name != "image_crops")  # that one needs images of its own
    images = []
    for i in range(n):
        name = names[i % len(names)]
        obj = PHANTOMS[name]((size, size), rng)
        optics = Optics(na=float(rng.uniform(0.8, 1.4)), wavelength_nm=float(rng.uniform(450, 650)), pixel_size_nm=65.0)
        dz = float(rng.choice([0.0, 0.0, rng.uniform(-1.2, 1.2)]))
        img = np.maximum(convolve_same(obj, psf_kernel(optics, dz)), 0)
        images.append((img / max(float(img.max()), 1e-12)).astype(np.float32))
    return images


def real_images(rng: np.random.Generator) -> list[np.ndarray]:
    """CC0 / BSD-3 real microscopy from ../shared/data (empty list when absent)."""
    import tifffile
    from scipy import ndimage

    found = []
    nuclei = SHARED / "deblur" / "cells3d_nuclei.tif"
    if nuclei.is_file():
        stack = tifffile.imread(nuclei).astype(np.float32)
        found += [stack[z] for z in range(0, stack.shape[0], 4)]
    worm = SHARED / "deblur" / "sdeconv_celegans.tif"
    if worm.is_file():
        found.append(tifffile.imread(worm).astype(np.float32))
    out = []
    for img in found:
        img = img - np.percentile(img, 0.5)
        img = np.maximum(img, 0) / max(float(np.percentile(img, 99.9)), 1e-6)
        sigma = float(rng.choice([0.0, rng.uniform(0.5, 3.0)]))
        out.append(ndimage.gaussian_filter(img, sigma) if sigma > 0 else img)
    return out


class Decoder(nn.Module):
    """Mirror of the encoder: per level 2x nearest upsampling and two 3x3 convs, then a conv to one channel."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = widths[-1]
        for width in reversed(widths[:-1]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(channels, width, 3, padding=1)]
            layers += [nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct the image from the encoder's features."""
        return self.body(x)


def batch(
    images: list[np.ndarray], rng: np.random.Generator, size: int, count: int, ranges: bool = False
) -> tuple[np.ndarray, ...]:
    """Random (noisy, clean) patches, rotated, with Poisson-Gaussian noise at 5 to 500 photons, on [-1, 1].

    ``ranges``: instead of [-1, 1], map each patch pair onto a random range ``[lo, hi]`` with ``lo`` in
    [-1, -0.8] and ``hi`` in [lo + 0.3, 1] (images in a loss need not fill [-1, 1]: COMI's inputs, scaled with
    headroom, span about a quarter of it).
    """
    noisy_out = np.empty((count, 1, size, size), np.float32)
    clean_out = np.empty_like(noisy_out)
    for b in range(count):
        img = images[int(rng.integers(len(images)))]
        y, x = (int(rng.integers(n - size + 1)) for n in img.shape)
        clean = np.rot90(img[y : y + size, x : x + size], int(rng.integers(4)))
        photons = float(np.exp(rng.uniform(np.log(5.0), np.log(500.0))))
        counts = rng.poisson(np.maximum(clean, 0) * photons + 2.0) + rng.normal(0, 1.5, clean.shape)
        clean_s, noisy_s = percentile_scale(clean, (counts - 2.0) / photons, min_span=0.05)
        if ranges:
            lo = float(rng.uniform(-1.0, -0.8))
            hi = float(rng.uniform(lo + 0.3, 1.0))
            clean_s, noisy_s = ((a + 1.0) * (0.5 * (hi - lo)) + lo for a in (clean_s, noisy_s))
        clean_out[b, 0], noisy_out[b, 0] = clean_s, noisy_s
    return noisy_out, clean_out


def check_inversion(path: Path) -> str:
    """How well a content loss on the file's features pins an image down (``pixel_recovery``)."""
    from microrestore.nn.features import load_microscopy_features, pixel_recovery

    report = pixel_recovery(load_microscopy_features(path))
    steps = ", ".join(f"{step} steps {value:.2f} dB" for step, value in report.items() if step)
    return f"matching a sharp image's features from its blurred copy: PSNR {report[0]:.2f} dB, then {steps}"


def main() -> None:
    """Train the encoder-decoder and write the encoder's weights with their feature scale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--n-sim", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument(
        "--objective",
        choices=["reconstruct", "denoise"],
        default="reconstruct",
        help="reconstruct: the decoder rebuilds its input, clean or noisy (features keep everything, v2); "
        "denoise: it rebuilds the clean image from a noisy copy (features ignore noise, v1)",
    )
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--activation",
        choices=["leaky_relu", "relu"],
        default="leaky_relu",
        help="leaky_relu (v2): no unit is ever dead, so no input region is invisible to the loss; relu: VGG's (v1)",
    )
    parser.add_argument(
        "--pool",
        choices=["avg", "max"],
        default="avg",
        help="avg (v2): every pixel reaches the features; max: VGG's, only each window's largest response does (v1)",
    )
    parser.add_argument("--check", type=Path, help="only report how well this file's features pin an image down")
    parser.add_argument("--rescale", type=Path, help="only recompute the feature scale of this trained file")
    default_out = ROOT / "microrestore" / "nn" / "weights" / "microscopy-features-v2.safetensors"
    parser.add_argument("--output", type=Path, default=default_out)
    args = parser.parse_args()

    from microrestore.nn.features import MicroscopyFeatures

    torch.set_num_threads(args.threads)
    if args.check is not None:
        print(check_inversion(args.check))
        return
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    images = simulated_images(args.n_sim, 160, rng)
    real = real_images(rng)
    images += real
    print(f"{len(images)} training images ({len(real)} real), {time.perf_counter() - start:.0f} s", flush=True)

    if args.rescale is not None:
        from safetensors import safe_open

        from microrestore.nn.features import load_microscopy_features

        with safe_open(str(args.rescale), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
        write(load_microscopy_features(args.rescale), images, args, metadata)  # the scale is recomputed
        return
    widths = (16, 32, 64)
    encoder = MicroscopyFeatures(widths, activation=args.activation, pool=args.pool)
    encoder.requires_grad_(True)
    decoder = Decoder(widths)
    params = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(params, lr=args.lr)
    reconstruct = args.objective == "reconstruct"
    for step in range(args.steps):
        lr = args.lr * (0.1 if step > 0.8 * args.steps else 1.0)
        for group in optimizer.param_groups:
            group["lr"] = lr
        noisy, clean = (torch.from_numpy(a) for a in batch(images, rng, args.patch, args.batch, reconstruct))
        if reconstruct:  # half the patches clean, half noisy; the target is the input itself
            noisy[: args.batch // 2] = clean[: args.batch // 2]
            clean = noisy
        loss = torch.mean((decoder(encoder.encode(noisy)) - clean) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if step % 200 == 0 or step == args.steps - 1:
            elapsed = time.perf_counter() - start
            print(f"step {step + 1}/{args.steps} loss {loss.item():.4f} ({elapsed:.0f} s)", flush=True)

    metadata = {
        "format": "microrestore-features",
        "name": "microscopy",
        "widths": json.dumps(list(widths)),
        "recipe": " ".join(["scripts/train_microscopy_features.py", *sys.argv[1:]]),
        "seed": str(args.seed),
        "steps": str(args.steps),
        "final_loss": f"{loss.item():.5f}",
        "objective": args.objective,
        "activation": args.activation,
        "pool": args.pool,
        "training_images": f"{len(images) - len(real)} simulated, {len(real)} real "
        "(cells3d nuclei CC0, celegans BSD-3)",
    }
    write(encoder, images, args, metadata)


def write(encoder: nn.Module, images: list[np.ndarray], args: argparse.Namespace, metadata: dict[str, str]) -> None:
    """Set the per-channel feature scale (unit standard deviation on clean patches) and write the file."""
    from safetensors.torch import save_file

    from microrestore.zoo import sha256_of

    with torch.no_grad():
        probe = torch.from_numpy(batch(images, np.random.default_rng(args.seed + 1), args.patch, 64)[1])
        std = encoder.encode(probe).std(dim=(0, 2, 3))
    live = std > 1e-3 * float(std.max())  # channels that never vary (dead ReLUs) are dropped, not amplified
    encoder.scale.copy_(torch.where(live, 1.0 / torch.clamp(std, min=1e-12), torch.zeros_like(std)).view(-1, 1, 1))
    state = {k: v.detach().contiguous() for k, v in encoder.state_dict().items()}
    metadata = {**metadata, "scale": f"per-channel 1/std over 64 clean training patches ({int(live.sum())} live)"}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".tmp")
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes), sha256 {sha256_of(args.output)}")
    print(check_inversion(args.output))


if __name__ == "__main__":
    main()

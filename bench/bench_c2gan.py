"""c²GAN benchmark on simulated unpaired data: c²GAN vs plain CycleGAN vs CARE (with pairs) vs nl-means vs raw.

Run: ``python bench/bench_c2gan.py`` (about 25 minutes on 2 cores with the defaults). Writes the
"c²GAN (simulated, unpaired)" section of docs/benchmarks.md and ``docs/figures/c2gan_fig2.png``.

Data follow the authors' split: ``--n`` simulated low/high-SNR field pairs; the first 10 % are held out as
paired test data; of the rest, half give only their noisy image (domain A) and half only their clean image
(domain B), so no training image has its partner in the other domain. CARE is trained on the same
training fields *with* their pairs (the supervised upper bound). All networks get the same step budget.
``--hard-mask`` adds a c²GAN row trained with microrestore's earlier hard saliency mask (slope 10 per grey level
instead of the paper's 10 per unit of the [-1, 1] scale).

Scores against the noise-free truth: PSNR, SSIM, PCC, structure IoU (Otsu foreground masks of output and
truth), the 1-Wasserstein distance between output and truth intensity histograms (in ADU), and the count of
saturated pixels in the 16-bit output.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import publish  # noqa: E402


def otsu(values: np.ndarray, bins: int = 256) -> float:
    hist, edges = np.histogram(values, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    return float(centers[np.argmax(w0 * w1 * (mu0 - mu1) ** 2)])


def structure_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of Otsu foreground masks (each image thresholded on its own histogram)."""
    a, b = pred > otsu(pred), gt > otsu(gt)
    return float((a & b).sum() / max(1, (a | b).sum()))


def wasserstein(pred: np.ndarray, gt: np.ndarray) -> float:
    """1-Wasserstein distance between the two intensity distributions (same units as the images)."""
    qs = np.linspace(0, 100, 1001)
    return float(np.mean(np.abs(np.percentile(pred, qs) - np.percentile(gt, qs))))


def split(n: int) -> tuple[list[int], list[int], list[int]]:
    n_test = max(1, n // 10)
    rest = list(range(n_test, n))
    half = len(rest) // 2
    return list(range(n_test)), rest[:half], rest[half : 2 * half]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--photons", type=float, default=30.0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--care-steps", type=int, default=1500)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="GAN training seeds (GANs vary run to run: use several)"
    )
    parser.add_argument(
        "--identity",
        type=float,
        default=0.0,
        help="also train c²GAN with this identity-loss weight (lambda_identity; the paper's is 0); 0: no such row",
    )
    parser.add_argument(
        "--hard-mask",
        action="store_true",
        help="also train c²GAN with the earlier hard saliency mask (saliency_slope 1275: 10 per grey level, 127.5x "
        "the paper's slope), otherwise as the c2gan row",
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from microrestore import api, metrics
    from microrestore.io import read_image
    from microrestore.plugins import PredictOptions
    from microrestore.simulation import simulate

    tmp = Path(tempfile.mkdtemp(prefix="bench-c2gan-"))
    try:
        sim = tmp / "sim"
        simulate("denoise", sim, n=args.n, seed=7, photons=args.photons)
        test, only_a, only_b = split(args.n)
        name = "field_{:03d}.tif".format
        a_files = [sim / "noisy" / name(i) for i in only_a]
        b_files = [sim / "clean" / name(i) for i in only_b]
        # CARE gets the same training fields with their pairs.
        pair_dir = tmp / "pairs"
        for sub in ("noisy", "clean"):
            (pair_dir / sub).mkdir(parents=True)
            for i in only_a + only_b:
                shutil.copy(sim / sub / name(i), pair_dir / sub / name(i))
        # One fixed intensity scale for both domains (c2GAN never rescales per image).
        values = np.concatenate([np.asarray(read_image(p).data, np.float32).ravel()[::7] for p in a_files + b_files])
        lo, hi = float(np.percentile(values, 0.01)), float(np.percentile(values, 99.99))
        span = hi - lo
        intensity_range = [max(0.0, lo - 0.05 * span), hi + 0.25 * span]

        gan_config = {
            "ngf": args.ngf,
            "ndf": args.ngf,
            "patch_size": args.patch,
            "seed": 0,
            "intensity_range": intensity_range,
            "checkpoint_every": 1000,
            "validation_every": 1000,
        }
        models: dict[str, list[Path]] = {}
        timings: dict[str, float] = {}
        variants = [("c2gan", {"saliency_weight": 5.0}), ("cyclegan", {"saliency_weight": 0.0})]
        if args.identity > 0:
            variants.append(("c2gan-idt", {"saliency_weight": 5.0, "lambda_identity": args.identity}))
        if args.hard_mask:
            from microrestore_c2gan.config import HARD_MASK_SLOPE

            variants.append(("c2gan-hard", {"saliency_weight": 5.0, "saliency_slope": HARD_MASK_SLOPE}))
        for label, extra in variants:
            start = time.perf_counter()
            for seed in args.seeds:
                models.setdefault(label, []).append(
                    api.train(
                        "c2gan",
                        a_files,
                        tmp / f"{label}-{seed}",
                        target=b_files,
                        steps=args.steps,
                        device="cpu",
                        progress=False,
                        config={**gan_config, **extra, "seed": seed},
                    )
                )
            timings[label] = (time.perf_counter() - start) / len(args.seeds)
        start = time.perf_counter()
        models["care"] = [
            api.train(
                "care",
                [pair_dir / "noisy"],
                tmp / "care",
                target=[pair_dir / "clean"],
                steps=args.care_steps,
                device="cpu",
                progress=False,
                config={"seed": 0},
            )
        ]
        timings["care"] = time.perf_counter() - start

        # Per method and seed, the metrics over the test fields (GANs: one entry per seed).
        rows: dict[str, dict[str, list[list[float]]]] = {}
        example = {}
        for i in test:
            noisy = read_image(sim / "noisy" / name(i))
            gt = np.asarray(read_image(sim / "clean" / name(i)).data, np.float32)
            outputs = {"raw": np.asarray(noisy.data)}
            outputs["nl-means"] = api.restore(noisy, "nl-means", dtype="same")
            runs: dict[str, list[np.ndarray]] = {"raw": [np.asarray(noisy.data)]}
            runs["nl-means"] = [api.restore(noisy, "nl-means", dtype="same")]
            for label, trained in models.items():
                method = "care" if label == "care" else "c2gan"
                runs[label] = [api.restore(noisy, method, model=m, dtype="same") for m in trained]
                if label not in ("cyclegan", "c2gan-hard"):  # --tta: 8 rotations and flips averaged
                    tta = PredictOptions(tta=True)
                    runs[f"{label}-tta"] = [
                        api.restore(noisy, method, model=m, dtype="same", options=tta) for m in trained
                    ]
            for label, outs in runs.items():
                entry = rows.setdefault(label, {})
                for run, out in enumerate(outs):
                    f = np.asarray(out, np.float32)
                    scores = metrics.evaluate(f, gt)
                    for key, value in (
                        ("psnr", scores["psnr"]),
                        ("ssim", scores["ssim"]),
                        ("pcc", scores["pcc"]),
                        ("iou", structure_iou(f, gt)),
                        ("w1", wasserstein(f, gt)),
                        ("saturated", float(metrics.saturation_count(np.asarray(out), np.uint16))),
                    ):
                        per_run = entry.setdefault(key, [])
                        while len(per_run) <= run:
                            per_run.append([])
                        per_run[run].append(value)
            if not example:
                example = {k: np.asarray(v[0], np.float32) for k, v in runs.items()} | {"truth": gt}
        figure = ROOT / "docs" / "figures" / "c2gan_fig2.png"
        if not args.no_write:
            draw_figure(figure, example)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(json.dumps({k: {m: [float(np.mean(r)) for r in v] for m, v in d.items()} for k, d in rows.items()}, indent=1))
    print(json.dumps(timings, indent=1))
    import torch

    torch_threads = torch.get_num_threads()
    lines = [
        f"{args.n} simulated 256 x 256 filament fields at {args.photons:g} photons (peak), the authors' split: "
        f"{len(test)} paired test fields, {len(only_a)} fields give only their noisy image (A), {len(only_b)} only "
        f"their clean image (B). c²GAN and plain CycleGAN (saliency weight 0): ResNet generator with {args.ngf} "
        f"base filters (6 blocks), {args.patch} px patches, batch 1, {args.steps} steps on CPU, trained with "
        f"{len(args.seeds)} seed(s) (mean +/- std over seeds of the per-seed mean over test fields; the figure "
        "shows the first seed); CARE: the same "
        f"training fields with pairs, {args.care_steps} steps. One fixed intensity scale "
        f"[{intensity_range[0]:.0f}, {intensity_range[1]:.0f}] ADU for both domains. "
        f"`python bench/bench_c2gan.py --steps {args.steps} --ngf {args.ngf} --seeds "
        f"{' '.join(map(str, args.seeds))}"
        + (f" --identity {args.identity:g}" if args.identity > 0 else "")
        + (" --hard-mask" if args.hard_mask else "")
        + "`.",
        "",
        "| method | PSNR (dB) | SSIM | PCC | structure IoU | histogram W1 (ADU) | saturated px | PSNR per seed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = ("raw", "nl-means", "cyclegan", "c2gan-hard", "c2gan", "c2gan-tta", "c2gan-idt", "c2gan-idt-tta")
    order += ("care", "care-tta")
    for label in [k for k in order if k in rows]:
        d = rows[label]
        shown = {
            "c2gan": "**c²GAN**",
            "c2gan-tta": "**c²GAN**, `--tta`",
            "c2gan-idt": f"**c²GAN**, identity loss {args.identity:g}",
            "c2gan-idt-tta": f"**c²GAN**, identity loss {args.identity:g}, `--tta`",
            "cyclegan": "CycleGAN",
            "c2gan-hard": "c²GAN, old hard mask",
            "care": "CARE (paired)",
            "care-tta": "CARE (paired), `--tta`",
        }.get(label, label)
        per_seed = {key: [float(np.mean(run)) for run in runs] for key, runs in d.items()}

        def cell(key: str, digits: int, values: dict[str, list[float]] = per_seed) -> str:
            v = values[key]
            return f"{np.mean(v):.{digits}f}" + (f" +/- {np.std(v):.{digits}f}" if len(v) > 1 else "")

        seeds = ", ".join(f"{v:.2f}" for v in per_seed["psnr"]) if label.startswith(("c2gan", "cyclegan")) else "-"
        saturated = int(sum(sum(run) for run in d["saturated"]))
        lines.append(
            f"| {shown} | {cell('psnr', 2)} | {cell('ssim', 3)} | {cell('pcc', 3)} | {cell('iou', 3)} | "
            f"{cell('w1', 2)} | {saturated} | {seeds} |"
        )
    lines += [
        "",
        "`--tta`: test-time augmentation, the mean of the outputs for the 8 rotations and flips of each tile "
        "(8x the inference time)."
        + (
            f" Identity loss {args.identity:g}: CycleGAN's `lambda_identity` (L1 of G(b) against b and of F(a) "
            f"against a, weighted {args.identity:g} x the cycle weight; c²GAN's is 0), the same seeds."
            if args.identity > 0
            else ""
        )
        + (
            " Old hard mask: `saliency_slope` 1275, microrestore's mask before it followed the paper (a slope of 10 "
            "per grey level of the 0..255 scale instead of 10 per unit of the [-1, 1] scale: a step that leaves "
            "almost every pixel without gradient); otherwise as the c²GAN row."
            if args.hard_mask
            else ""
        ),
        "",
        f"Training time per model ({torch_threads} torch thread(s)): "
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items())
        + ".",
        "",
        "![input, c²GAN, CARE, truth with histograms](figures/c2gan_fig2.png)",
    ]
    publish("c²GAN (simulated, unpaired)", lines, write=not args.no_write)


def draw_figure(path: Path, images: dict[str, np.ndarray]) -> None:
    """Input, c²GAN, CARE and truth side by side, with their intensity histograms (as the paper's Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("input", images["raw"]),
        ("c²GAN", images["c2gan"]),
        ("CARE", images["care"]),
        ("ground truth", images["truth"]),
    ]
    lo, hi = np.percentile(images["truth"], [0.5, 99.8])
    fig, axes = plt.subplots(2, 4, figsize=(14, 7), gridspec_kw={"height_ratios": [3, 1.4]})
    bins = np.arange(np.floor(min(p.min() for _, p in panels)) - 0.5, np.ceil(max(p.max() for _, p in panels)) + 1.5)
    for ax, (title, image) in zip(axes[0], panels, strict=True):
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
        ax.set_title(title)
        ax.set_axis_off()
    for ax, (title, image) in zip(axes[1], panels, strict=True):
        ax.hist(images["truth"].ravel(), bins=bins, histtype="step", color="tab:blue", label="truth", log=True)
        if title != "ground truth":
            ax.hist(image.ravel(), bins=bins, histtype="step", color="tab:orange", label=title, log=True)
        ax.set_xlabel("intensity (ADU)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()

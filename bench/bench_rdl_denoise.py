"""Self-supervised denoising benchmark: TiS/SiS-rDL vs Noise2Void vs supervised CARE vs nl-means vs raw.

Run: ``python bench/bench_rdl_denoise.py`` (about 20 minutes on a busy 2-core machine with the defaults).
Writes the "Self-supervised denoising (TiS/SiS-rDL)" section of docs/benchmarks.md and two figures in
docs/figures/.

Simulated data (known clean truth, ``microrestore.simulation``): a noisy time-lapse (drifting, deforming,
bleaching structures, diffusing puncta) and a widefield z-stack of 3D filaments at two photon levels. The
self-supervised methods (TiS-rDL, SiS-rDL with and without the amending constraint, Noise2Void) train on the very
stack they denoise, as users apply them; CARE (the upper bound) trains on other simulated stacks with their clean
truth; nl-means needs no training. Every network gets the same number of steps. Scores are against the
noise-free expected counts, averaged over frames/slices (PSNR over the stack's range, SSIM, PCC).

FNSM ablation: the same TiS network and budget with the FNSM initialised at 2 NA / lambda (pixel size from the
file), and initialised at Nyquist without optics (cycles/pixel), against the true OTF cutoff of the simulation.

Real data (../shared/data, skipped when absent): the Spotiflow telomere time-lapse (no ground truth: the movie's
even and odd frames are split into two halves that are trained and denoised independently; their agreement,
frame 2i against frame 2i+1, is a no-reference measure), and the W2S pairs (self-supervised on the noisy inputs
only, scored against the 400-frame averages after an affine fit).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import write_section  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "denoise"
SECTION = "Self-supervised denoising (TiS/SiS-rDL)"


def networks(steps: int) -> dict[str, dict[str, Any]]:
    """Small networks of similar cost, so that a CPU budget trains them all."""
    rdl = {
        "channels": 16,
        "n_groups": 2,
        "n_rcab": 3,
        "tail_channels": 32,
        "patch_size": 48,
        "batch_size": 4,
        "learning_rate": 5e-4,
        "validation_fraction": 0,
        "ndim": 2,
    }
    unet = {"depth": 2, "base_filters": 16, "patch_size": 48, "batch_size": 8, "validation_fraction": 0}
    return {
        "rdl": rdl,
        "n2v": {**unet, "masked_percent": 1.0, "learning_rate": 4e-4},
        "care": {**unet, "learning_rate": 4e-4},
    }


class Bench:
    def __init__(self, work: Path, steps: int) -> None:
        self.work = work
        self.steps = steps
        self.nets = networks(steps)
        self.seconds: dict[str, float] = {}

    def train(self, tag: str, method: str, sources: list[Path], config: dict[str, Any], target=None) -> Path:
        from microrestore import api

        out = self.work / f"model-{tag}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        api.train(
            method, sources, out, target=target or (), steps=self.steps, device="cpu", progress=False, config=config
        )
        self.seconds[tag] = time.perf_counter() - start
        print(f"  trained {tag} in {self.seconds[tag]:.0f} s", flush=True)
        return out

    @staticmethod
    def predict(method: str, image: Any, model: Path | None = None) -> np.ndarray:
        from microrestore import api

        return api.restore(image, method, model=model)


def stack_scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """PSNR (over the whole stack's range), SSIM and PCC per plane, averaged; PSNR after an affine fit."""
    from microrestore import metrics

    span = float(gt.max() - gt.min())
    rows = [metrics.evaluate(p, g, data_range=span) for p, g in zip(pred, gt)]
    return {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "pcc", "psnr_affine")}


def neighbour_difference(clean: np.ndarray, noisy: np.ndarray) -> float:
    """RMS difference of neighbouring clean planes, relative to the RMS of the noise."""
    diff = np.sqrt(np.mean((clean[1:] - clean[:-1]) ** 2))
    return float(diff / np.sqrt(np.mean((noisy - clean) ** 2)))


def simulated(bench: Bench, args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from microrestore.io import read_image
    from microrestore.simulation import simulate

    rows: list[dict[str, Any]] = []
    figure: dict[str, Any] = {}
    shape = (args.planes, args.size, args.size)
    nets = bench.nets
    for case, mode in (("timelapse", "tis"), ("zstack", "sis")):
        extra = {"z_step_nm": args.z_step} if case == "zstack" else {}
        name = "movie" if case == "timelapse" else "stack"
        for photons in args.photons:
            print(f"{case}, {photons:g} photons", flush=True)
            test = bench.work / f"{case}-{photons:g}-test"
            train = bench.work / f"{case}-{photons:g}-train"
            manifest = simulate(case, test, n=1, seed=101, photons=photons, shape=shape, **extra)
            simulate(case, train, n=2, seed=201, photons=photons, shape=shape, **extra)
            noisy_path = test / "noisy" / f"{name}_000.tif"
            noisy = read_image(noisy_path)
            gt = np.asarray(read_image(test / "clean" / f"{name}_000.tif").data, np.float32)
            raw = np.asarray(noisy.data, np.float32)
            tag = f"{case}-{photons:g}"
            outputs: dict[str, np.ndarray] = {"raw": raw}
            start = time.perf_counter()
            outputs["nl-means"] = bench.predict("nl-means", noisy)
            bench.seconds[f"nl-means-{tag}"] = time.perf_counter() - start
            if mode == "tis":
                model = bench.train(f"tis-{tag}", "rdl-denoise", [noisy_path], {**nets["rdl"], "mode": "tis"})
                outputs["TiS-rDL"] = bench.predict("rdl-denoise", noisy, model)
            else:
                for label, amending in (("SiS-rDL", True), ("SiS-rDL, no amending", False)):
                    cfg = {**nets["rdl"], "mode": "sis", "amending": amending}
                    model = bench.train(f"sis{int(amending)}-{tag}", "rdl-denoise", [noisy_path], cfg)
                    outputs[label] = bench.predict("rdl-denoise", noisy, model)
            model = bench.train(f"n2v-{tag}", "n2v", [noisy_path], nets["n2v"])
            outputs["Noise2Void"] = bench.predict("n2v", noisy, model)
            model = bench.train(f"care-{tag}", "care", [train / "noisy"], nets["care"], target=[train / "clean"])
            outputs["CARE (supervised)"] = bench.predict("care", noisy, model)
            ratio = neighbour_difference(gt, raw)
            for method, pred in outputs.items():
                rows.append(
                    {"data": case, "photons": photons, "method": method, "neighbour": ratio, **stack_scores(pred, gt)}
                )
            if photons == min(args.photons):
                figure[case] = {"gt": gt, **outputs}
                figure[f"{case}-optics"] = manifest["optics"]
    return rows, figure


def fnsm_ablation(bench: Bench, args: argparse.Namespace) -> list[dict[str, Any]]:
    from microrestore.io import read_image
    from microrestore.nn import otf_cutoff

    photons = min(args.photons)
    test = bench.work / f"timelapse-{photons:g}-test"
    noisy_path = test / "noisy" / "movie_000.tif"
    noisy = read_image(noisy_path)
    gt = np.asarray(read_image(test / "clean" / "movie_000.tif").data, np.float32)
    manifest = json.loads((test / "manifest.json").read_text())
    optics = manifest["optics"]
    pixel_um = optics["pixel_size_nm"] / 1000.0
    true_cutoff = otf_cutoff(optics["na"], optics["wavelength_nm"])
    base = {**bench.nets["rdl"], "mode": "tis"}
    rows = []
    variants = (
        ("without FNSM", None, {}),
        (
            "FNSM, cutoff from 2 NA / lambda",
            "optics",
            {"fnsm": True, "na": optics["na"], "wavelength_nm": optics["wavelength_nm"]},
        ),
        ("FNSM, cutoff from Nyquist", "nyquist", {"fnsm": True}),
    )
    for label, key, extra in variants:
        tag = f"tis-timelapse-{photons:g}" if key is None else f"fnsm-{key}"
        model = bench.work / f"model-{tag}"
        if key is not None:
            model = bench.train(tag, "rdl-denoise", [noisy_path], {**base, **extra})
        pred = bench.predict("rdl-denoise", noisy, model)
        from microrestore.engine.modeldir import read_model_config

        metrics_ = read_model_config(model)[0]["metrics"]
        row = {"variant": label, **stack_scores(pred, gt)}
        if key is not None:
            per_pixel = metrics_["fnsm_cutoff_cycles_per_pixel"]
            row["learned"] = per_pixel / pixel_um
            row["start"] = true_cutoff if key == "optics" else 0.5 / pixel_um
        rows.append(row)
    for row in rows:
        row["true"] = true_cutoff
    return rows


def spotiflow(bench: Bench, args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from microrestore import metrics
    from microrestore.io import ImageData, read_image, write_image

    path = SHARED / "spotiflow_timelapse_telomeres_2d.tif"
    movie = read_image(path, axes="TYX")
    data = np.asarray(movie.data)
    halves = {"even": data[0::2], "odd": data[1::2]}
    n = min(len(halves["even"]), len(halves["odd"]))
    files = {}
    for key, frames in halves.items():
        files[key] = write_image(bench.work / f"spotiflow-{key}.tif", frames[:n], "TYX")
    results: dict[str, dict[str, np.ndarray]] = {"raw": {k: v[:n].astype(np.float32) for k, v in halves.items()}}
    results["nl-means"] = {k: bench.predict("nl-means", ImageData(v[:n], "TYX")) for k, v in halves.items()}
    for label, method, config in (
        ("Noise2Void", "n2v", bench.nets["n2v"]),
        ("TiS-rDL", "rdl-denoise", {**bench.nets["rdl"], "mode": "tis"}),
    ):
        results[label] = {}
        for key in halves:
            model = bench.train(f"spotiflow-{method}-{key}", method, [files[key]], config)
            results[label][key] = bench.predict(method, read_image(files[key]), model)
    rows = []
    for label, pair in results.items():
        a, b = pair["even"], pair["odd"]
        pcc = float(np.mean([metrics.pcc(x, y) for x, y in zip(a, b)]))
        span = float(np.percentile(b, 99.9) - np.percentile(b, 0.1))
        psnr = float(np.mean([metrics.psnr(x, y, data_range=span) for x, y in zip(a, b)]))
        rows.append({"method": label, "pcc": pcc, "psnr": psnr})
    return rows, {k: v["even"] for k, v in results.items()}


def w2s(bench: Bench, args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from microrestore import metrics
    from microrestore.io import read_image

    folder = SHARED / "w2s_pairs"
    inputs = sorted(folder.glob("input_avg1_*.tif"))
    targets = [folder / p.name.replace("input_avg1_", "target_avg400_") for p in inputs]
    model = bench.train("w2s-n2v", "n2v", inputs, bench.nets["n2v"])
    scores: dict[str, list[dict[str, float]]] = {}
    figure: dict[str, Any] = {}
    for src, tgt in zip(inputs, targets):
        noisy = read_image(src, axes="YX")
        gt = np.asarray(read_image(tgt, axes="YX").data, np.float32)
        outputs = {"raw": np.asarray(noisy.data, np.float32), "nl-means": bench.predict("nl-means", noisy)}
        outputs["Noise2Void (self-supervised on the 5 inputs)"] = bench.predict("n2v", noisy, model)
        try:
            outputs["rdl-denoise default model (simulated TiS)"] = bench.predict("rdl-denoise", noisy, args.rdl_model)
        except Exception as exc:  # no default model bundled yet
            print(f"  rdl-denoise default model unavailable: {exc}", flush=True)
        for label, pred in outputs.items():
            values = metrics.evaluate(pred, gt)
            scores.setdefault(label, []).append({k: values[k] for k in ("psnr_affine", "ssim_affine", "pcc")})
        if not figure:
            figure = {"target (400-frame average)": gt, **outputs}
    rows = [
        {"method": label, **{k: float(np.mean([v[k] for v in values])) for k in values[0]}}
        for label, values in scores.items()
    ]
    return rows, figure


def draw_figures(sim: dict[str, Any], real: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = ROOT / "docs" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    rows = [k for k in ("timelapse", "zstack") if k in sim]
    if rows:
        cols = max(len(sim[r]) for r in rows)
        fig, axes = plt.subplots(len(rows), cols, figsize=(2.2 * cols, 2.4 * len(rows)), squeeze=False)
        for i, case in enumerate(rows):
            images = sim[case]
            plane = images["gt"].shape[0] // 2
            lo, hi = np.percentile(images["gt"][plane], [0.5, 99.8])
            for j, (label, stack) in enumerate(images.items()):
                ax = axes[i, j]
                ax.imshow(stack[plane], cmap="magma", vmin=lo, vmax=hi)
                ax.set_title(("clean truth" if label == "gt" else label), fontsize=7)
                ax.axis("off")
            for j in range(len(images), cols):
                axes[i, j].axis("off")
        fig.tight_layout()
        fig.savefig(figures / "rdl_denoise_simulated.png", dpi=90)
        plt.close(fig)
    panels = [(f"Spotiflow: {k}", v[len(v) // 2]) for k, v in real.get("spotiflow", {}).items()]
    panels += [(f"W2S: {k}", v) for k, v in real.get("w2s", {}).items()]
    if panels:
        cols = 4
        nrows = math.ceil(len(panels) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(2.6 * cols, 2.6 * nrows), squeeze=False)
        for ax, (label, image) in zip(axes.flat, panels):
            lo, hi = np.percentile(image, [0.5, 99.8])
            ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
            ax.set_title(label, fontsize=7)
        for ax in axes.flat:
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(figures / "rdl_denoise_real.png", dpi=90)
        plt.close(fig)


def report(args: argparse.Namespace, bench: Bench, sim_rows, fnsm_rows, spot_rows, w2s_rows, wall: float) -> str:
    nets = bench.nets
    command = "python bench/bench_rdl_denoise.py " + " ".join(sys.argv[1:])
    lines = [
        f"Command: `{command.strip()}` ({wall / 60:.0f} min wall on a shared 2-core CPU, torch with "
        f"{args.threads} thread). Every network trains for {args.steps} steps: rdl-denoise is an RCAN with "
        f"{nets['rdl']['n_groups']} groups x {nets['rdl']['n_rcab']} RCABs and {nets['rdl']['channels']} channels "
        f"(2D, frames/slices as samples; batch {nets['rdl']['batch_size']} of {nets['rdl']['patch_size']}^2 "
        f"patches, Adam {nets['rdl']['learning_rate']:g}); Noise2Void and CARE are U-Nets of depth 2 with 16 "
        f"filters (batch 8; Noise2Void masks 1 % of the pixels). These are far smaller budgets and networks than "
        "the paper's (RCAN 3 x 5 x 64, many thousand steps on a GPU): the ranking, not the absolute numbers, is "
        "the point. The self-supervised methods train on the stack they denoise; CARE on two other simulated "
        "stacks with their clean truth.",
        "",
        f"Simulated data: {args.planes} x {args.size} x {args.size} (T or Z x Y x X), NA 1.3, 520 nm, 65 nm "
        f"pixels, sCMOS offset 100, read noise 1.5; z-stacks with {args.z_step:g} nm steps. 'Neighbours' is the RMS "
        "difference of adjacent clean planes divided by the RMS of the noise (how much adjacent planes differ "
        "beyond noise). Scores against the noise-free expected counts, averaged over planes.",
        "",
        "| data | photons (peak) | neighbours | method | PSNR (dB) | SSIM | PCC | PSNR affine |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sim_rows:
        lines.append(
            f"| {r['data']} | {r['photons']:g} | {r['neighbour']:.2f} | {r['method']} | {r['psnr']:.2f} | "
            f"{r['ssim']:.3f} | {r['pcc']:.3f} | {r['psnr_affine']:.2f} |"
        )
    if fnsm_rows:
        true = fnsm_rows[0]["true"]
        lines += [
            "",
            f"FNSM ablation (time-lapse, {min(args.photons):g} photons, same TiS network and budget). The "
            f"simulation's true OTF cutoff is 2 NA / lambda = {true:.2f} 1/um; the learned cutoff is the trained "
            "FNSM's (slope starts at 100 as in the paper).",
            "",
            "| variant | PSNR (dB) | SSIM | PCC | initial cutoff (1/um) | learned cutoff (1/um) |",
            "|---|---|---|---|---|---|",
        ]
        for r in fnsm_rows:
            start = f"{r['start']:.2f}" if "start" in r else "-"
            learned = f"{r['learned']:.2f}" if "learned" in r else "-"
            lines.append(
                f"| {r['variant']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['pcc']:.3f} | {start} | {learned} |"
            )
    if spot_rows:
        lines += [
            "",
            "Real time-lapse without ground truth (Spotiflow telomeres, 200 frames of 133 x 162, offset ~100): the "
            "even and odd frames form two independent movies, each trained on and denoised alone; agreement of "
            "denoised frame 2i with denoised frame 2i+1 (independent noise, independent models). Higher is "
            "better, as long as the structures are kept (see the figure).",
            "",
            "| method | PCC (even vs odd) | PSNR (even vs odd, dB) |",
            "|---|---|---|",
        ]
        lines += [f"| {r['method']} | {r['pcc']:.3f} | {r['psnr']:.2f} |" for r in spot_rows]
    if w2s_rows:
        lines += [
            "",
            "Real W2S pairs (5 single noisy widefield frames against 400-frame averages, each contrast-stretched on "
            "its own, so scored after a least-squares affine fit). Single frames have no second noisy copy, so "
            "TiS/SiS cannot train on them: Noise2Void trains self-supervised on the five noisy inputs only, and "
            "the rdl-denoise default model `rdl-denoise-tis-2d` (trained on a simulated time-lapse) is applied "
            "as is.",
            "",
            "| method | PSNR affine (dB) | SSIM affine | PCC |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['method']} | {r['psnr_affine']:.2f} | {r['ssim_affine']:.3f} | {r['pcc']:.3f} |" for r in w2s_rows
        ]
    train_times = {k: v for k, v in bench.seconds.items() if not k.startswith("nl-means")}
    if train_times:
        lines += [
            "",
            "Training time per model (s): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(train_times.items())) + ".",
            "",
            "![simulated](figures/rdl_denoise_simulated.png)",
        ]
        if spot_rows or w2s_rows:
            lines.append("![real](figures/rdl_denoise_real.png)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photons", type=float, nargs="+", default=[10.0, 50.0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--planes", type=int, default=32)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--z-step", type=float, default=400.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--rdl-model", type=Path, help="rdl-denoise model for W2S (default: the zoo's default)")
    parser.add_argument("--skip-fnsm", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-rdl-") as tmp:
        bench = Bench(Path(tmp), args.steps)
        sim_rows, sim_figure = simulated(bench, args)
        fnsm_rows = [] if args.skip_fnsm else fnsm_ablation(bench, args)
        spot_rows, w2s_rows, real_figure = [], [], {}
        if not args.skip_real and SHARED.is_dir():
            spot_rows, real_figure["spotiflow"] = spotiflow(bench, args)
            w2s_rows, real_figure["w2s"] = w2s(bench, args)
        wall = time.perf_counter() - start
        text = report(args, bench, sim_rows, fnsm_rows, spot_rows, w2s_rows, wall)
        print(text)
        if not args.no_write:
            draw_figures(sim_figure, real_figure)
            write_section(ROOT / "docs" / "benchmarks.md", SECTION, text)


if __name__ == "__main__":
    main()

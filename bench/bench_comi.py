"""COMI benchmark: out-of-focus correction per defocus distance (the paper's Table 3), on simulated and real data.

Run: ``python bench/bench_comi.py --budget-min 25`` (writes the "COMI (defocus)" section of docs/benchmarks.md).

Methods, all trained on the same training data, the networks sharing the wall-clock budget evenly:

- **COMI**: paired, the shipped ``microscopy`` feature network (ImageNet VGG-19 needs a download), ResNet
  generators with the global skip, BatchNorm PatchGANs, weights 1e-3 : 1 : 1 : 1;
- **COMI - perceptual**: the same with ``feature_network=pixel`` (content and cycle terms as pixel MSE);
- **COMI - cycle**: the same with ``weight_cycle=0``;
- **CycleGAN**: plain, unpaired CycleGAN, i.e. the ``c2gan`` method with ``saliency_weight=0`` (transposed-conv
  ResNet generator, L1 cycle x10, LSGAN, image pool), on the same images drawn unpaired;
- **CARE**: the ``care`` U-Net (supervised, MAE) on the same pairs;
- **RL**: Richardson-Lucy (``richardson-lucy``) with the true PSF (simulated data: the pupil PSF at the image's
  defocus; DFNN: the Gaussian kernel that best maps the in-focus onto the defocused image on the training rows,
  since the instrument's PSF is not published), iterations chosen on training data from 2, 5, 15, 40;
- **raw**: the out-of-focus input.

Data:

- simulated (``microrestore.simulation``, case ``defocus``): ``--n-train`` fields for training and ``--n-test``
  held-out fields, each imaged in focus and at +/- each ``--dz``; scored against the noise-free in-focus image;
- real, DFNN (``../shared/data/deblur/dfnn_defocus_microtubules``, MIT): one cell imaged in focus and at
  -/+0.1, 0.3, 0.5, 0.7 um (lattice light-sheet, 105 nm pixels). There is one field only, so the bottom
  ``--holdout`` share of the rows is held out for testing and the networks train on the rows above it; each
  defocused image is registered to its in-focus reference (the one the ReadMe assigns) by an integer shift found
  on the training rows. Scored against the (noisy) in-focus image.

Scores: PSNR (data range of the reference), SSIM and PCC, averaged over the test images of each distance (+ and -
pooled).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.nn.features import MICROSCOPY_FEATURES_FILE

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import publish  # noqa: E402

DFNN = ROOT.parent / "shared" / "data" / "deblur" / "dfnn_defocus_microtubules"
#: ReadMe: which in-focus image each defocused one goes with.
DFNN_FIRST_REFERENCE = ("M0p1", "P0p1", "M0p3")
METHODS = ("raw", "rl", "care", "cyclegan", "comi", "comi-perc", "comi-cycle")
LABELS = {
    "raw": "raw",
    "rl": "RL (true PSF)",
    "care": "CARE",
    "cyclegan": "CycleGAN",
    "comi": "**COMI**",
    "comi-perc": "COMI - perceptual",
    "comi-cycle": "COMI - cycle",
}
RL_ITERATIONS = (2, 5, 15, 40)


# ----------------------------------------------------------------------------------------------------------
# Training with a wall-clock budget


class Budget:
    """Shares what is left of the wall-clock budget evenly over the networks still to train.

    Each family's step time is probed once (a 12-step run minus a 2-step run, both after a 1-step warm-up run that
    pays the one-time costs: imports, feature network, allocator) and then replaced by the time per step its last
    full run actually took, so a busy machine shortens the later runs instead of overrunning.
    """

    def __init__(self, tmp: Path, deadline: float, runs: int, reserve_s: float) -> None:
        self.tmp = tmp
        self.deadline = deadline
        self.runs_left = runs
        self.reserve_s = reserve_s
        self.step_s: dict[str, float] = {}

    def _probe(self, family: str, run: Callable[[Path, int], Any]) -> float:
        if family not in self.step_s:
            times = []
            for steps in (1, 2, 12):
                start = time.perf_counter()
                run(self.tmp / f"probe-{family}-{steps}", steps)
                times.append(time.perf_counter() - start)
            self.step_s[family] = max((times[2] - times[1]) / 10, times[2] / 12 / 4)
        return self.step_s[family]

    def train(self, family: str, run: Callable[[Path, int], Any], out: Path) -> tuple[Path, int, float]:
        """Train ``out`` for this run's share of the remaining time; return (model, steps, seconds taken)."""
        step_s = self._probe(family, run)
        share = (self.deadline - time.perf_counter() - self.reserve_s) / max(1, self.runs_left)
        steps = max(20, int(share / step_s))
        start = time.perf_counter()
        model = run(out, steps)
        took = time.perf_counter() - start
        self.step_s[family] = took / steps
        self.runs_left -= 1
        return model, steps, took


def comi_config(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    return {
        "ngf": args.ngf,
        "ndf": args.ngf,
        "n_blocks": args.n_blocks,
        "patch_size": args.patch,
        "learning_rate": args.lr,
        "foreground_bias": 0.5,
        "checkpoint_every": 10_000,
        "validation_every": 10_000,
        "seed": 0,
        **extra,
    }


def care_config(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    return {"patch_size": args.patch, "checkpoint_every": 10_000, "validation_every": 10_000, **extra}


def train_all(
    args: argparse.Namespace,
    budget: Budget,
    tmp: Path,
    tag: str,
    sources: list[Path],
    targets: list[Path],
    intensity_range: list[float],
    ablations: bool,
) -> tuple[dict[str, Path], dict[str, dict[str, float]]]:
    """Train every network of one data set for its share of the budget; return model folders and steps/minutes."""
    from microrestore import api

    def comi(extra: dict[str, Any]) -> Callable[[Path, int], Path]:
        def run(out: Path, steps: int) -> Path:
            config = comi_config(args, **extra)
            return api.train("comi", sources, out, target=targets, steps=steps, progress=False, config=config)

        return run

    def cyclegan(out: Path, steps: int) -> Path:
        config = {
            "ngf": args.ngf,
            "ndf": args.ngf,
            "n_blocks": args.n_blocks,
            "patch_size": args.patch,
            "learning_rate": args.lr,
            "saliency_weight": 0.0,
            "intensity_range": intensity_range,
            "checkpoint_every": 10_000,
            "validation_every": 10_000,
        }
        return api.train("c2gan", sources, out, target=targets, steps=steps, progress=False, config=config)

    def care(out: Path, steps: int) -> Path:
        return api.train("care", sources, out, target=targets, steps=steps, progress=False, config=care_config(args))

    runs: dict[str, tuple[str, Callable[[Path, int], Path]]] = {
        "comi": ("comi", comi({})),
        "cyclegan": ("cyclegan", cyclegan),
        "care": ("care", care),
    }
    if ablations:
        runs["comi-perc"] = ("comi-pixel", comi({"feature_network": "pixel"}))
        runs["comi-cycle"] = ("comi", comi({"weight_cycle": 0.0}))
    models, info = {}, {}
    for label, (family, run) in runs.items():
        models[label], steps, took = budget.train(family, run, tmp / f"{tag}-{label}")
        info[label] = {"steps": steps, "minutes": took / 60}
        print(f"{tag} {label}: {steps} steps in {info[label]['minutes']:.1f} min", flush=True)
    return models, info


# ----------------------------------------------------------------------------------------------------------
# Scoring


def score(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    from microrestore import metrics

    s = metrics.evaluate(np.asarray(pred, np.float32), np.asarray(ref, np.float32))
    return {"psnr": s["psnr"], "ssim": s["ssim"], "pcc": s["pcc"]}


def rl_restore(image: np.ndarray, iterations: int, **psf: Any) -> np.ndarray:
    from microrestore import api

    return api.restore(image, "richardson-lucy", axes="YX", iterations=iterations, **psf)


def best_iterations(pairs: list[tuple[np.ndarray, np.ndarray]], **psf: Any) -> int:
    """The RL iteration count with the best mean PSNR on training pairs (input, reference)."""
    means = {k: np.mean([score(rl_restore(x, k, **psf), y)["psnr"] for x, y in pairs]) for k in RL_ITERATIONS}
    return max(means, key=lambda k: means[k])


def evaluate_all(
    tests: list[tuple[float, np.ndarray, np.ndarray, dict[str, Any]]],
    models: dict[str, Path],
    rl_iterations: dict[float, int],
) -> dict[float, dict[str, list[dict[str, float]]]]:
    """Scores per distance and method; ``tests`` holds (distance, input, reference, RL PSF options)."""
    from microrestore import api

    method_of = {"care": "care", "cyclegan": "c2gan"}
    table: dict[float, dict[str, list[dict[str, float]]]] = {}
    for distance, image, ref, psf in tests:
        outputs = {"raw": image, "rl": rl_restore(image, rl_iterations[distance], **psf)}
        for label, model in models.items():
            outputs[label] = api.restore(image, method_of.get(label, "comi"), model=model, axes="YX")
        for label, out in outputs.items():
            table.setdefault(distance, {}).setdefault(label, []).append(score(out, ref))
    return table


# ----------------------------------------------------------------------------------------------------------
# Data sets


def simulated(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Simulated defocus fields: training pairs on disk (one folder per side), held-out test images in memory."""
    import tifffile

    from microrestore.simulation import simulate

    sim = tmp / "sim"
    dzs = sorted({s * d for d in args.dz for s in (-1.0, 1.0)})
    n = args.n_train + args.n_test
    manifest = simulate("defocus", sim, n=n, seed=11, shape=(args.shape, args.shape), defocus_um=dzs)
    optics = manifest["optics"]
    train_src, train_tgt = tmp / "sim-train" / "defocus", tmp / "sim-train" / "infocus"
    train_src.mkdir(parents=True)
    train_tgt.mkdir(parents=True)
    rl_pairs: dict[float, list[tuple[np.ndarray, np.ndarray]]] = {}
    tests = []
    for i in range(n):
        field = f"field_{i:03d}"
        infocus = tifffile.imread(sim / "infocus" / f"{field}.tif")
        clean = tifffile.imread(sim / "infocus_clean" / f"{field}.tif")
        for dz in dzs:
            name = f"{field}_dz{dz:+.2f}.tif"
            image = tifffile.imread(sim / "defocus" / name)
            psf = {
                "na": optics["na"],
                "wavelength_nm": optics["wavelength_nm"],
                "pixel_size_nm": optics["pixel_size_nm"],
                "immersion_index": optics["immersion_index"],
                "defocus_um": dz,
            }
            if i < args.n_train:  # training: the defocused image paired (by name) with its field's in-focus image
                shutil.copy(sim / "defocus" / name, train_src / name)
                tifffile.imwrite(train_tgt / name, infocus)
                if i < 2:
                    rl_pairs.setdefault(abs(dz), []).append((image, clean))
            else:
                tests.append((abs(dz), image, clean, psf))
    first = tests[0][3]
    rl_iterations = {d: best_iterations(pairs, **{**first, "defocus_um": d}) for d, pairs in sorted(rl_pairs.items())}
    values = np.concatenate([tifffile.imread(p).ravel()[::5] for p in sorted(train_src.glob("*.tif"))])
    return {
        "sources": [train_src],
        "targets": [train_tgt],
        "tests": tests,
        "rl_iterations": rl_iterations,
        "intensity_range": _range(values),
        "distances": sorted({abs(d) for d in dzs}),
        "optics": optics,
    }


def _range(values: np.ndarray) -> list[float]:
    lo, hi = float(np.percentile(values, 0.01)), float(np.percentile(values, 99.99))
    span = hi - lo
    return [max(0.0, lo - 0.05 * span), hi + 0.5 * span]  # room above: in-focus peaks are brighter


def _shift(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Integer (dy, dx) with ``b[y + dy, x + dx] ~ a[y, x]`` (phase of the cross-power spectrum)."""
    fa, fb = np.fft.fft2(a - a.mean()), np.fft.fft2(b - b.mean())
    corr = np.real(np.fft.ifft2(np.conj(fa) * fb))
    iy, ix = np.unravel_index(int(np.argmax(corr)), corr.shape)
    return (iy if iy <= a.shape[0] // 2 else iy - a.shape[0], ix if ix <= a.shape[1] // 2 else ix - a.shape[1])


def _register(ref: np.ndarray, img: np.ndarray) -> tuple[int, int]:
    """Integer shift: the cross-correlation peak, refined within +/-2 px by the PCC with the blurred reference."""
    from scipy import ndimage

    dy0, dx0 = _shift(ref, img)
    soft = ndimage.gaussian_filter(ref, 2.0)
    best = max(
        (np.corrcoef(*(a.ravel() for a in _aligned(soft, img, dy, dx)))[0, 1], dy, dx)
        for dy in range(dy0 - 2, dy0 + 3)
        for dx in range(dx0 - 2, dx0 + 3)
    )
    return int(best[1]), int(best[2])


def _aligned(ref: np.ndarray, img: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop both to their overlap so that ``img_c[y, x]`` images ``ref_c[y, x]``."""
    h, w = ref.shape
    y0, y1 = max(0, -dy), min(h, h - dy)
    x0, x1 = max(0, -dx), min(w, w - dx)
    return ref[y0:y1, x0:x1], img[y0 + dy : y1 + dy, x0 + dx : x1 + dx]


def _gaussian_psf(sigma: float) -> np.ndarray:
    r = max(3, math.ceil(4 * sigma))
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    k = np.exp(-(x**2 + y**2) / (2 * max(sigma, 1e-3) ** 2))
    return (k / k.sum()).astype(np.float32)


def _fit_sigma(ref: np.ndarray, img: np.ndarray) -> float:
    """The Gaussian sigma (px) for which ref blurred by it best matches img (PCC), on a 0.25 px grid."""
    from scipy import ndimage

    grid = np.arange(0.25, 6.01, 0.25)
    pccs = [np.corrcoef(ndimage.gaussian_filter(ref, s).ravel(), img.ravel())[0, 1] for s in grid]
    return float(grid[int(np.argmax(pccs))])


def dfnn(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The DFNN series: top rows for training (registered pairs), bottom ``holdout`` rows for testing."""
    import tifffile

    on = tifffile.imread(DFNN / "cell11G3Dz0p5umON.tif").astype(np.float32)
    on1 = tifffile.imread(DFNN / "cell11G3Dz0p5umON(1).tif").astype(np.float32)
    cut = round(on.shape[0] * (1 - args.holdout))
    train_src, train_tgt = tmp / "dfnn-train" / "defocus", tmp / "dfnn-train" / "infocus"
    train_src.mkdir(parents=True)
    train_tgt.mkdir(parents=True)
    tests, rl_pairs, notes, values = [], {}, [], []
    for path in sorted(DFNN.glob("*Off*.tif")):
        tag = path.stem.split("Off")[1].replace("um", "")  # e.g. M0p3
        distance = float(tag[1:].replace("p", "."))
        ref_full = on if tag in DFNN_FIRST_REFERENCE else on1
        img_full = tifffile.imread(path).astype(np.float32)
        dy, dx = _register(ref_full[:cut], img_full[:cut])
        ref, img = _aligned(ref_full, img_full, dy, dx)
        top = cut - max(0, -dy)
        sigma = _fit_sigma(ref[:top], img[:top])
        psf_file = tmp / f"dfnn-psf-{tag}.tif"
        tifffile.imwrite(psf_file, _gaussian_psf(sigma))
        name = f"{tag}.tif"
        tifffile.imwrite(train_src / name, img[:top].astype(np.uint16))
        tifffile.imwrite(train_tgt / name, ref[:top].astype(np.uint16))
        values.append(img[:top].ravel()[::5])
        rl_pairs.setdefault(distance, []).append((img[:top][:256], ref[:top][:256], {"psf": str(psf_file)}))
        tests.append((distance, img[top:].astype(np.uint16), ref[top:], {"psf": str(psf_file)}))
        notes.append(f"{tag}: shift ({dy}, {dx}) px, Gaussian sigma {sigma:.2f} px")
    rl_iterations = {
        d: best_iterations([(x, y) for x, y, _ in pairs], **pairs[0][2]) for d, pairs in sorted(rl_pairs.items())
    }
    return {
        "sources": [train_src],
        "targets": [train_tgt],
        "tests": tests,
        "rl_iterations": rl_iterations,
        "intensity_range": _range(np.concatenate(values)),
        "distances": sorted({t[0] for t in tests}),
        "notes": notes,
        "rows": (cut, on.shape[0]),
    }


# ----------------------------------------------------------------------------------------------------------
# Report


def summary(table: dict[float, dict[str, list[dict[str, float]]]]) -> dict[float, dict[str, dict[str, float]]]:
    return {
        d: {
            m: {k: float(np.mean([s[k] for s in scores])) for k in ("psnr", "ssim", "pcc")} for m, scores in row.items()
        }
        for d, row in table.items()
    }


def markdown_table(means: dict[float, dict[str, dict[str, float]]], unit: str = "um") -> list[str]:
    methods = [m for m in METHODS if m in next(iter(means.values()))]
    lines = [
        f"| defocus ({unit}) | " + " | ".join(LABELS[m] for m in methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for d in sorted(means):
        best = max(methods, key=lambda m: means[d][m]["psnr"])
        cells = []
        for m in methods:
            s = means[d][m]
            text = f"{s['psnr']:.2f} / {s['ssim']:.3f} / {s['pcc']:.3f}"
            cells.append(f"**{text}**" if m == best else text)
        lines.append(f"| {d:g} | " + " | ".join(cells) + " |")
    return lines


def verdict(means: dict[float, dict[str, dict[str, float]]]) -> str:
    parts = []
    for rival in ("cyclegan", "rl"):
        wins = [d for d in sorted(means) if means[d]["comi"]["psnr"] > means[d][rival]["psnr"]]
        parts.append(f"COMI's PSNR is above {LABELS[rival]}'s at {len(wins)} of {len(means)} distances")
    care = [d for d in sorted(means) if means[d]["comi"]["psnr"] > means[d]["care"]["psnr"]]
    raw = [d for d in sorted(means) if means[d]["comi"]["psnr"] > means[d]["raw"]["psnr"]]
    parts.append(f"above CARE's at {len(care)}, above the raw input's at {len(raw)}")
    return "; ".join(parts) + "."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-min", type=float, default=25.0, help="wall-clock budget of the whole run")
    parser.add_argument("--n-train", type=int, default=10)
    parser.add_argument("--n-test", type=int, default=3)
    parser.add_argument("--shape", type=int, default=128)
    parser.add_argument("--dz", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    parser.add_argument("--holdout", type=float, default=0.3, help="share of DFNN rows held out for testing")
    parser.add_argument("--ngf", type=int, default=8)
    parser.add_argument("--n-blocks", type=int, default=3)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--lr", type=float, default=5e-4, help="learning rate of the GANs (short budget)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-comi-"))
    results: dict[str, Any] = {}
    try:
        datasets = {"sim": simulated(args, tmp)}
        if not args.skip_real and DFNN.is_dir():
            datasets["dfnn"] = dfnn(args, tmp)
        # The networks share what is left of the budget after the data, less a reserve for RL and scoring.
        reserve = 90.0 * len(datasets)
        budget = Budget(tmp, start + args.budget_min * 60, 5 + 3 * ("dfnn" in datasets), reserve)
        for tag, data in datasets.items():
            models, info = train_all(
                args,
                budget,
                tmp,
                tag,
                data["sources"],
                data["targets"],
                data["intensity_range"],
                ablations=tag == "sim",
            )
            budget.reserve_s -= 90.0
            table = evaluate_all(data["tests"], models, data["rl_iterations"])
            results[tag] = {"means": summary(table), "info": info, "n_tests": len(data["tests"])}
        total = (time.perf_counter() - start) / 60
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(json.dumps({k: v["means"] for k, v in results.items()}, indent=1, default=str))
    sim, lines = datasets["sim"], []
    info = results["sim"]["info"]
    steps = ", ".join(f"{LABELS[k].strip('*')} {v['steps']} ({v['minutes']:.1f} min)" for k, v in info.items())
    cmd = f"python bench/bench_comi.py --budget-min {args.budget_min:g}"
    lines += [
        f"`{cmd}` ({total:.0f} min on 2 shared CPU cores, {args.threads} torch thread). PSNR (dB) / SSIM / PCC "
        "against the in-focus image, mean over the test images of each defocus distance (+ and - pooled); the best "
        "PSNR of each row in bold. The networks share the wall-clock budget evenly (what is left after the data, "
        "each run an equal share of the rest; steps and minutes below): ResNet generators with "
        f"{args.ngf} filters and {args.n_blocks} blocks, {args.patch} px patches, learning rate {args.lr:g} for "
        "the GANs (COMI's 1e-4 moves too little in so few steps); CARE with its defaults. CycleGAN is the "
        "`c2gan` method with `saliency_weight=0`; COMI uses the shipped "
        f"`microscopy` feature network (`{MICROSCOPY_FEATURES_FILE.name}`; the ImageNet VGG-19 needs a download). "
        "RL uses the true PSF (pupil function at the image's defocus); its iterations are chosen on training "
        "fields from 2/5/15/40 "
        f"({', '.join(f'{d:g} um: {k}' for d, k in sim['rl_iterations'].items())}).",
        "",
        f"**Simulated** (`microrestore.simulation` case `defocus`, {args.shape} x {args.shape} filaments, NA "
        f"{sim['optics']['na']}, {sim['optics']['wavelength_nm']:g} nm, {sim['optics']['pixel_size_nm']:g} nm "
        f"pixels, 200 photons): {args.n_train} training fields, {args.n_test} held-out fields, each at "
        f"+/- {', '.join(f'{d:g}' for d in args.dz)} um ({results['sim']['n_tests']} test images); one model per "
        f"method for all distances. Steps: {steps}.",
        "",
        *markdown_table(results["sim"]["means"]),
        "",
        verdict(results["sim"]["means"]),
    ]
    if "dfnn" in results:
        real = datasets["dfnn"]
        steps = ", ".join(
            f"{LABELS[k].strip('*')} {v['steps']} ({v['minutes']:.1f} min)" for k, v in results["dfnn"]["info"].items()
        )
        cut, rows = real["rows"]
        lines += [
            "",
            "**Real, DFNN defocus series** (`deblur/dfnn_defocus_microtubules`, one lattice light-sheet cell, "
            "MIT): a single field, so the test set is a held-out region: networks train on rows 0-"
            f"{cut - 1} and are scored on rows {cut}-{rows - 1} (all 8 defocused images; - and + pooled). Each "
            "defocused image is registered to its in-focus reference (as the ReadMe pairs them) by the integer "
            "shift that best correlates them on the training rows; RL uses the Gaussian kernel fitted on the "
            f"training rows (the instrument's PSF is not published): {'; '.join(real['notes'])}; RL iterations "
            f"{', '.join(f'{d:g} um: {k}' for d, k in real['rl_iterations'].items())}. Scores against the noisy "
            f"in-focus image. Steps: {steps}. No ablations here (budget).",
            "",
            *markdown_table(results["dfnn"]["means"]),
            "",
            verdict(results["dfnn"]["means"]),
        ]
    publish("COMI (defocus)", lines, write=not args.no_write)


if __name__ == "__main__":
    main()

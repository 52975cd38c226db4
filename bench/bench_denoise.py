"""Denoising benchmark: CARE trained with the engine vs the classical denoiser vs raw, on held-out fields.

Run: ``python bench/bench_denoise.py`` (about 10 minutes on 2 cores). Writes the "Denoising (simulated)" section
of docs/benchmarks.md.

Data: ``microrestore simulate denoise`` (filament phantoms, pupil-function PSF, Poisson-Gaussian sCMOS
noise). Training fields and test fields come from different seeds, so no test field is seen in training.
CARE is trained for a fixed step budget; nl-means runs with parameters estimated from each image.
Scores are against the noise-free expected counts (same units as the camera counts), as mean +/- std over
the test fields, raw and after CARE's least-squares affine fit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import write_section  # noqa: E402


def run(photons: float, steps: int, n_train: int, n_test: int, work: Path) -> dict[str, dict[str, list[float]]]:
    from microrestore import api, metrics
    from microrestore.io import read_image
    from microrestore.simulation import simulate

    train_dir, test_dir = work / f"train-{photons:g}", work / f"test-{photons:g}"
    simulate("denoise", train_dir, n=n_train, seed=1, photons=photons)
    simulate("denoise", test_dir, n=n_test, seed=1001, photons=photons)
    model = work / f"care-{photons:g}"
    start = time.perf_counter()
    api.train(
        "care",
        [train_dir / "noisy"],
        model,
        target=[train_dir / "clean"],
        steps=steps,
        device="cpu",
        progress=False,
        config={"seed": 0},
    )
    train_seconds = time.perf_counter() - start
    scores: dict[str, dict[str, list[float]]] = {}
    timings: dict[str, float] = {"care_train_s": train_seconds}
    for noisy_path in sorted((test_dir / "noisy").glob("*.tif")):
        noisy = read_image(noisy_path)
        gt = np.asarray(read_image(test_dir / "clean" / noisy_path.name).data, np.float32)
        outputs = {"raw": np.asarray(noisy.data, np.float32)}
        for method, model_ref in (("nl-means", None), ("care", model)):
            start = time.perf_counter()
            outputs[method] = api.restore(noisy, method, model=model_ref, dtype="float32")
            timings[f"{method}_s"] = timings.get(f"{method}_s", 0.0) + time.perf_counter() - start
        for name, image in outputs.items():
            values = metrics.evaluate(image, gt)
            for key in ("psnr", "ssim", "psnr_affine", "ssim_affine"):
                scores.setdefault(name, {}).setdefault(key, []).append(values[key])
    scores["_timing"] = {k: [v] for k, v in timings.items()}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photons", type=float, nargs="+", default=[10.0, 50.0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--n-train", type=int, default=16)
    parser.add_argument("--n-test", type=int, default=6)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for photons in args.photons:
            results[photons] = run(photons, args.steps, args.n_train, args.n_test, Path(tmp))
    print(json.dumps({str(k): v for k, v in results.items()}, indent=1))
    lines = [
        f"Simulated 256 x 256 filament fields (NA 1.3, 520 nm, 65 nm pixels, sCMOS offset 100, read noise 1.5 e-); "
        f"{args.n_train} training fields, {args.n_test} held-out test fields (other seed). CARE: U-Net depth 2, "
        f"32 filters, {args.steps} steps of 16 patches 64 x 64 on CPU. "
        f"`python bench/bench_denoise.py --steps {args.steps}`.",
        "",
        "| photons (peak) | method | PSNR (dB) | SSIM | PSNR affine | SSIM affine |",
        "|---|---|---|---|---|---|",
    ]
    for photons, scores in results.items():
        for name in ("raw", "nl-means", "care"):
            s = scores[name]
            cells = [
                f"{np.mean(s[k]):.2f} +/- {np.std(s[k]):.2f}"
                if "psnr" in k
                else f"{np.mean(s[k]):.3f} +/- {np.std(s[k]):.3f}"
                for k in ("psnr", "ssim", "psnr_affine", "ssim_affine")
            ]
            label = f"**{name}**" if name == "care" else name
            lines.append(f"| {photons:g} | {label} | " + " | ".join(cells) + " |")
    timing = {p: {k: v[0] for k, v in r["_timing"].items()} for p, r in results.items()}
    lines += [
        "",
        "Time: "
        + "; ".join(
            f"{p:g} photons: CARE training {t['care_train_s']:.0f} s, prediction on the test fields "
            f"CARE {t['care_s']:.1f} s vs nl-means {t['nl-means_s']:.1f} s"
            for p, t in timing.items()
        )
        + ".",
    ]
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", "Denoising (simulated)", "\n".join(lines))


if __name__ == "__main__":
    main()

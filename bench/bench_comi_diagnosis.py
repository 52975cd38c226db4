"""COMI diagnosis: what limits it at CPU budgets, from runs of a fixed number of steps on the same data.

Run: ``python bench/bench_comi_diagnosis.py`` (about 40 min on one CPU thread; writes the "COMI diagnosis"
section of docs/benchmarks.md).

The data are ``bench_comi.py``'s simulated defocus set (10 training fields, 3 held-out ones at +/- 0.3, 0.6 and
0.9 um). Every network trains the same number of steps (``--steps``; ``--long-steps`` for the rows marked so),
so the rows compare what each piece of COMI's design learns per step, not per second:

- COMI as benchmarked (ResNet generators with 8 filters and 3 blocks, 48 px patches, batch 4, lr 5e-4,
  weights 1e-3 : 1 : 1 : 1, the shipped ``microscopy`` feature network), and with 16 filters;
- COMI without its identity term, and with pixel MSE in place of the features (ablations);
- COMI's generator alone, trained with the content term only (no adversarial, cycle or identity terms): once
  with the ``microscopy`` features, once with pixel MSE (a plain supervised ResNet), and with CARE's batch of 16;
- CARE (the ``care`` U-Net, batch 16) and Richardson-Lucy with the true PSF as references.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.nn.features import MICROSCOPY_FEATURES_FILE

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import bench_comi  # noqa: E402
from _report import publish  # noqa: E402

CONTENT_ONLY = {"weight_adversarial": 0.0, "weight_cycle": 0.0, "weight_identity": 0.0}
PIXEL_ONLY = {**CONTENT_ONLY, "feature_network": "pixel"}
#: (label, method, configuration overrides, long run)
VARIANTS: tuple[tuple[str, str, dict[str, Any], bool], ...] = (
    ("COMI", "comi", {}, False),
    ("COMI, 16 filters", "comi", {"ngf": 16, "ndf": 16}, False),
    ("COMI - identity term", "comi", {"weight_identity": 0.0}, False),
    ("COMI, pixel MSE for the features", "comi", {"feature_network": "pixel"}, False),
    ("generator, content term only (microscopy features)", "comi", CONTENT_ONLY, False),
    ("generator, pixel MSE only", "comi", PIXEL_ONLY, False),
    ("generator, pixel MSE only, batch 16", "comi", {**PIXEL_ONLY, "batch_size": 16}, False),
    ("CARE (U-Net, batch 16)", "care", {}, False),
    ("COMI", "comi", {}, True),
    ("generator, pixel MSE only, batch 16", "comi", {**PIXEL_ONLY, "batch_size": 16}, True),
)
#: bench_comi's settings: the data set and the small GANs (its defaults)
SETTINGS = argparse.Namespace(n_train=10, n_test=3, shape=128, dz=[0.3, 0.6, 0.9], ngf=8, n_blocks=3, patch=48, lr=5e-4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--long-steps", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import torch

    from microrestore import api

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-comi-diagnosis-"))
    data = bench_comi.simulated(SETTINGS, tmp)
    distances = data["distances"]
    rows: list[tuple[str, int | None, float | None, dict[float, list[dict[str, float]]]]] = []

    def scores_of(restore: Any) -> dict[float, list[dict[str, float]]]:
        table: dict[float, list[dict[str, float]]] = {}
        for distance, image, ref, psf in data["tests"]:
            table.setdefault(distance, []).append(bench_comi.score(restore(image, distance, psf), ref))
        return table

    rows.append(("raw input", None, None, scores_of(lambda image, d, psf: image)))
    rl = data["rl_iterations"]
    rows.append(
        ("Richardson-Lucy, true PSF", None, None, scores_of(lambda im, d, psf: bench_comi.rl_restore(im, rl[d], **psf)))
    )
    for i, (label, method, extra, long) in enumerate(VARIANTS):
        steps = args.long_steps if long else args.steps
        config_of = bench_comi.care_config if method == "care" else bench_comi.comi_config
        config = config_of(SETTINGS, **extra)
        t0 = time.perf_counter()
        model = api.train(
            method, data["sources"], tmp / f"m{i}", target=data["targets"], steps=steps, progress=False, config=config
        )
        minutes = (time.perf_counter() - t0) / 60
        table = scores_of(lambda image, d, psf, m=model, k=method: api.restore(image, k, model=m, axes="YX"))
        rows.append((label, steps, minutes, table))
        print(
            f"{label} ({steps} steps, {minutes:.1f} min): "
            + ", ".join(f"{d:g} um {np.mean([s['psnr'] for s in table[d]]):.2f}" for d in distances),
            flush=True,
        )
    total = (time.perf_counter() - start) / 60

    head = "| variant | steps | min | " + " | ".join(f"{d:g} um PSNR / SSIM" for d in distances) + " |"
    lines = [
        f"`python bench/bench_comi_diagnosis.py --steps {args.steps} --long-steps {args.long_steps}` ({total:.0f} min, "
        f"{args.threads} torch thread). The simulated set of the COMI benchmark (10 training fields, 3 held-out "
        "fields at +/- each distance, + and - pooled); every network trains a fixed number of steps, so the rows "
        "compare what each part of COMI's design learns per step. COMI rows: ResNet generators with 8 filters "
        "and 3 blocks unless noted, 48 px patches, batch 4, lr 5e-4, weights 1e-3 : 1 : 1 : 1, the `microscopy` "
        f"feature network (`{MICROSCOPY_FEATURES_FILE.name}`). 'generator, ...' rows train COMI's generator with "
        "the content term alone (adversarial, cycle and identity weights 0).",
        "",
        head,
        "|---|---|---|" + "---|" * len(distances),
    ]
    for label, steps, minutes, table in rows:
        cells = [
            f"{np.mean([s['psnr'] for s in table[d]]):.2f} / {np.mean([s['ssim'] for s in table[d]]):.3f}"
            for d in distances
        ]
        lines.append(
            f"| {label} | {steps if steps else '-'} | {f'{minutes:.1f}' if minutes else '-'} | "
            + " | ".join(cells)
            + " |"
        )
    publish("COMI diagnosis (fixed steps)", lines, write=not args.no_write)


if __name__ == "__main__":
    main()

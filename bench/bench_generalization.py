"""Generalisation benchmark: every default denoising model on data and settings no recipe used.

Run: ``python bench/bench_generalization.py`` (about 20-40 minutes on 2 cores; ``--quick`` for a third of the
grid). Writes the "Generalisation (unseen conditions)" section of docs/benchmarks.md.

A grid built to catch narrow models: photons 3 / 10 / 30 / 100 / 300 at the brightest pixel; camera offset 100
and 1000 ADU; gain 1 and 3 ADU per electron; three structure families (tubules, nuclei, and crops of the right
35 % of the real BPAE images, which no recipe trained on) through optics no recipe used (NA 1.2, 600 nm, 90 nm
pixels), seeds 9000+. Then real data: the W2S widefield pairs (single 8-bit frame against the 400-frame
average, PSNR after an affine fit, as CARE's evaluation does) and the BPAE images themselves with synthetic
Poisson-Gaussian noise at three levels (truth: the image).

Rows: the raw input, ``nl-means``, and every default model (``--methods``); ``--extra NAME=METHOD:MODEL`` adds a
candidate model (e.g. ``--extra generalist=care:zoo-out/care-generalist-2d``). Scores are PSNR in dB against
the noise-free image in the input's units (data range of the truth), the W2S rows after the affine fit.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import publish  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
BPAE = [SHARED / "denoise" / f"bian_BPAE_{n}.tif" for n in ("actin", "mito", "nuclei")]
W2S = SHARED / "denoise" / "w2s_pairs"
OPTICS = {"na": 1.2, "wavelength_nm": 600.0, "pixel_size_nm": 90.0}
DEFAULT_METHODS = ("nl-means", "care", "n2v", "c2gan", "rdl-denoise")


def _structures() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"tubules": {"phantom": "tubules"}, "nuclei": {"phantom": "nuclei"}}
    if all(p.exists() for p in BPAE):
        out["bpae"] = {
            "phantom": "image_crops",
            "phantom_params": {"images": [str(p) for p in BPAE], "region": [0.0, 1.0, 0.65, 1.0], "min_signal": 0.15},
        }
    return out


def grid(quick: bool) -> list[dict[str, Any]]:
    """The simulated cells: photons x offset x gain x structure."""
    photons = (3, 30, 300) if quick else (3, 10, 30, 100, 300)
    cells = []
    for i, (p, off, g, (name, struct)) in enumerate(
        itertools.product(photons, (100, 1000), (1.0, 3.0), _structures().items())
    ):
        cells.append({"photons": p, "offset": off, "gain": g, "structure": name, "params": struct, "seed": 9000 + i})
    return cells


def simulate_cell(cell: dict[str, Any], work: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One noisy field and its noise-free expected counts for a grid cell."""
    from microrestore.io import read_image
    from microrestore.simulation import simulate

    folder = work / f"cell-{cell['seed']}"
    simulate(
        "denoise",
        folder,
        n=1,
        seed=cell["seed"],
        photons=cell["photons"],
        offset=cell["offset"],
        gain=cell["gain"],
        shape=(size, size),
        **OPTICS,
        **cell["params"],
    )
    noisy = np.asarray(read_image(folder / "noisy" / "field_000.tif").data)
    clean = np.asarray(read_image(folder / "clean" / "field_000.tif").data, np.float32)
    return noisy, clean


def bpae_noisy(level: float, seed: int, size: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Crops of the real BPAE images (right 35 %) scaled to ``level`` photons at their 99.9th percentile,
    with Poisson noise, 1.5 e- read noise and an offset of 100 (gain 1)."""
    from microrestore.io import read_image

    rng = np.random.default_rng(seed)
    out = []
    for path in BPAE:
        img = np.asarray(read_image(path).data, np.float64)
        x0 = int(img.shape[1] * 0.65)
        crop = img[:size, x0 : x0 + size]
        low, high = np.percentile(crop, [0.5, 99.9])
        density = np.clip((crop - low) / (high - low), 0, None)
        clean = level * density + 2.0 + 100.0
        noisy = rng.poisson(level * density + 2.0) + rng.normal(0, 1.5, density.shape) + 100.0
        out.append((path.stem, np.clip(np.rint(noisy), 0, 65535).astype(np.uint16), clean.astype(np.float32)))
    return out


def restore(method: str, model: str | None, noisy: np.ndarray) -> tuple[np.ndarray, float]:
    from microrestore import api
    from microrestore.plugins.registry import PredictOptions

    start = time.perf_counter()
    out = api.restore(noisy, method, model=model, axes="YX", options=PredictOptions(device="cpu"), dtype="float32")
    return np.asarray(out, np.float32), time.perf_counter() - start


def score(pred: np.ndarray, truth: np.ndarray, affine: bool) -> float:
    from microrestore import metrics

    if affine:
        scale, offset = metrics.affine_fit(pred, truth)
        pred = scale * pred + offset
    return float(metrics.psnr(pred, truth))


def run_rows(rows: dict[str, tuple[str, str | None]], images: list[tuple[str, np.ndarray, np.ndarray, bool]]):
    """PSNR per image and row."""
    scores: dict[str, dict[str, float]] = {}
    for name, noisy, truth, affine in images:
        scores[name] = {"raw": score(noisy.astype(np.float32), truth, affine)}
        for row, (method, model) in rows.items():
            try:
                pred, _ = restore(method, model, noisy)
            except Exception as exc:  # a model that fails on an input is a result too
                print(f"{row} failed on {name}: {exc}", file=sys.stderr)
                scores[name][row] = float("nan")
                continue
            scores[name][row] = score(pred, truth, affine)
        print(name, {k: round(v, 2) for k, v in scores[name].items()}, file=sys.stderr, flush=True)
    return scores


def speed(rows: dict[str, tuple[str, str | None]], rounds: int = 3) -> dict[str, float]:
    """Megapixels per second of each row on one 512 x 512 image, the model loaded once (``api.restorer``): the
    best of ``rounds`` runs, rows taken in turn after a warm-up run each, so that other processes' bursts land on
    every row alike."""
    from microrestore import api
    from microrestore.plugins.registry import PredictOptions

    rng = np.random.default_rng(0)
    image = (rng.poisson(20.0, (512, 512)) + 100).astype(np.uint16)
    loaded = {}
    for row, (method, model) in rows.items():
        loaded[row] = api.restorer(method, model=model, axes="YX", options=PredictOptions(device="cpu"))
        loaded[row](image[:128, :128])
    best = {row: float("inf") for row in rows}
    for _ in range(rounds):
        for row, run in loaded.items():
            start = time.perf_counter()
            run(image)
            best[row] = min(best[row], time.perf_counter() - start)
    return {row: image.size / dt / 1e6 for row, dt in best.items()}


def _fmt(v: float) -> str:
    return "fail" if not np.isfinite(v) else f"{v:.2f}"


def table(scores: dict[str, dict[str, float]], columns: list[str]) -> list[str]:
    lines = ["| image | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in scores.items():
        best = max((row[c] for c in columns if np.isfinite(row.get(c, np.nan))), default=np.nan)
        cells = [f"**{_fmt(row[c])}**" if row.get(c) == best else _fmt(row.get(c, np.nan)) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def summary(scores: dict[str, dict[str, float]], columns: list[str]) -> list[str]:
    lines = ["| row | cells >= nl-means + 1 dB | cells >= nl-means | cells below raw | mean gain over nl-means (dB) |"]
    lines.append("|---|---|---|---|---|")
    for col in columns:
        if col in ("raw", "nl-means"):
            continue
        gains = np.array([r[col] - r["nl-means"] for r in scores.values()])
        below = np.array([r[col] < r["raw"] for r in scores.values()])
        n = len(gains)
        lines.append(
            f"| {col} | {int(np.sum(gains >= 1.0))}/{n} | {int(np.sum(gains >= 0))}/{n} | {int(np.sum(below))}/{n} "
            f"| {np.nanmean(gains):+.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="photons 3 / 30 / 300 only")
    parser.add_argument("--size", type=int, default=128, help="edge of the simulated fields")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="default models to run")
    parser.add_argument("--extra", action="append", default=[], help="NAME=METHOD:MODEL, a candidate model row")
    parser.add_argument("--no-real", action="store_true", help="skip W2S and BPAE")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw scores here")
    parser.add_argument("--from-json", type=Path, help="publish the tables of an earlier run's --json file")
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="with --from-json: measure the prediction speed of its rows again, all in this one run (a quiet "
        "machine), and publish it with the saved scores",
    )
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        if args.speed_only:
            rows = {m: (m, None) for m in saved["speed"] if m in args.methods.split(",") or m == "nl-means"}
            for extra in args.extra:
                name, _, ref = extra.partition("=")
                method, _, model = ref.partition(":")
                rows[name] = (method, model or None)
            saved["speed"] = speed(rows)
            if args.json:
                args.json.write_text(json.dumps(saved, indent=1))
        command = saved.get("command", "python bench/bench_generalization.py")
        report(saved["simulated"], saved["real"], saved["speed"], command, args)
        return

    import torch

    torch.set_num_threads(2)
    rows: dict[str, tuple[str, str | None]] = {m: (m, None) for m in args.methods.split(",") if m}
    for extra in args.extra:
        name, _, ref = extra.partition("=")
        method, _, model = ref.partition(":")
        rows[name] = (method, model or None)
    with tempfile.TemporaryDirectory() as tmp:
        sim_images = []
        for cell in grid(args.quick):
            noisy, clean = simulate_cell(cell, Path(tmp), args.size)
            label = f"{cell['photons']} ph, offset {cell['offset']}, gain {cell['gain']:g}, {cell['structure']}"
            sim_images.append((label, noisy, clean, False))
        sim_scores = run_rows(rows, sim_images)
    real_scores: dict[str, dict[str, float]] = {}
    if not args.no_real and W2S.exists():
        from microrestore.io import read_image

        w2s = []
        for path in sorted(W2S.glob("input_avg1_*.tif")):
            truth = np.asarray(read_image(W2S / path.name.replace("input_avg1", "target_avg400")).data, np.float32)
            w2s.append((f"W2S {path.stem[11:]}", np.asarray(read_image(path).data), truth, True))
        bpae = []
        for level in (5.0, 20.0, 100.0):
            for stem, noisy, clean in bpae_noisy(level, int(level), 256):
                bpae.append((f"BPAE {stem[10:]} {level:g} ph", noisy, clean, False))
        real_scores = run_rows(rows, w2s + bpae)
    mps = speed(rows)

    cmd = "python bench/bench_generalization.py" + (" --quick" if args.quick else "")
    cmd += "".join(f" --extra {e}" for e in args.extra)
    if args.json:
        saved = {"simulated": sim_scores, "real": real_scores, "speed": mps, "command": cmd}
        args.json.write_text(json.dumps(saved, indent=1))
    report(sim_scores, real_scores, mps, cmd, args)


def report(
    sim_scores: dict[str, dict[str, float]],
    real_scores: dict[str, dict[str, float]],
    mps: dict[str, float],
    cmd: str,
    args: argparse.Namespace,
) -> None:
    """Print the section and, unless ``--no-write``, put it into docs/benchmarks.md."""
    columns = list(next(iter(sim_scores.values())))
    lines = [
        f"Every row as a user gets it (`microrestore denoise IN --method M`, default model) on conditions no recipe "
        f"used: simulated {args.size} x {args.size} fields (NA 1.2, 600 nm, 90 nm pixels, seeds 9000+), tubules, "
        "nuclei and crops of the right 35 % of the real BPAE images; then the real W2S pairs (PSNR after an affine "
        "fit) and real BPAE crops with synthetic noise. PSNR in dB against the noise-free image; best per row in "
        f"bold. `{cmd}`.",
        "",
        "### Summary over the simulated grid",
        "",
        *summary(sim_scores, columns),
        "",
    ]
    if real_scores:
        lines += ["### Summary over the real images (W2S, BPAE)", "", *summary(real_scores, columns), ""]
    lines += [
        "### Prediction speed (one 512 x 512 image, model loaded once, best of 3, 2 threads)",
        "",
        "| row | megapixels/s |",
        "|---|---|",
        *[f"| {k} | {v:.2f} |" for k, v in mps.items()],
        "",
    ]
    if real_scores:
        lines += ["### Real images", "", *table(real_scores, columns), ""]
    lines += ["### Every simulated cell", "", *table(sim_scores, columns)]
    publish("Generalisation (unseen conditions)", lines, write=not args.no_write)


if __name__ == "__main__":
    main()

"""rDL-SIM benchmark: reconstruction quality of low-SNR simulated 2D-SIM against the ground truth.

Run: ``python bench/bench_rdl_sim.py`` (trains its own small rDL-SIM and CARE; about 25 minutes on 2 busy
cores with the defaults) or ``python bench/bench_rdl_sim.py --rdl-model /work/artifacts/rdl-sim-2d`` to score a
trained model (its training data are simulated again with the same recipe, for CARE). Writes the "rDL-SIM
(simulated low-SNR 2D-SIM)" section of docs/benchmarks.md and docs/figures/rdl_sim_simulated.png (and
docs/figures/rdl_sim_mt.png when the real MT.mrc sample is present).

Data: ``microrestore simulate sim`` fields as the ``rdl-sim-2d`` recipe makes them (filaments on the 2x grid,
NA 1.3, 525 nm emission, 62.6 nm raw pixels, modulation 0.8, sCMOS noise, the recipe's pattern frequency and
photon count) for training and testing (low SNR), and the same test fields at ``--photons-high`` for the
reference. The ground truth is the
object filtered by the ideal SIM OTF (``gt_mode=sim``) on the 2x grid.

Rows, each reconstructed by the same Wiener-SIM engine (``wiener-sim`` defaults; parameters estimated on the
frames each row reconstructs, rDL: on the noisy frames as the method prescribes):

- Wiener on the high-SNR raw frames (the reference);
- Wiener on the low-SNR raw frames;
- CARE (``care`` plugin, trained on the same low-SNR / noise-free raw frame pairs, frame by frame) then Wiener;
- rDL-SIM (its denoiser) then Wiener;
- and, for context, DFCAN's SR image alone (the network's own guess, not a SIM reconstruction).

Scores against the truth (after a least-squares affine fit, as the intensity scales differ): PSNR, SSIM, the
FRC resolution against the truth (threshold 0.5), the modulation depth estimated on the frames that are
reconstructed (CARE-style denoising of single frames tends to flatten the pattern that SIM decodes), and the
error in the SR band (PSNR of the images high-passed beyond the widefield cut-off: where reconstruction
artefacts live).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import write_section  # noqa: E402

#: Optics of the real MT.mrc sample (TIRF-SIM, rDL-SIM demo data).
MT_OPTICS = {"na": 1.3, "wavelength_nm": 525.0, "na_exc": 1.35, "wavelength_exc_nm": 488.0}
PIXEL_NM = 62.6
#: Optics of the simulated data: set from the zoo recipe's training configuration in main().
OPTICS: dict[str, float] = {}
MT_DIR = ROOT.parent / "shared" / "data" / "sim" / "rdlsim_microtubules"


def zoo_recipe() -> dict[str, Any]:
    """The default model's recipe (data and training configuration), so the bench trains on the same data."""
    import yaml

    return yaml.safe_load((ROOT / "zoo" / "models" / "rdl-sim-2d.yaml").read_text())["recipe"]


def simulate_set(root: Path, n: int, seed: int, photons: float, params: dict[str, Any]) -> Path:
    from microrestore.simulation import simulate

    simulate("sim", root, n=n, seed=seed, **{**params, "photons": photons})
    return root


def highpass_psnr(pred: np.ndarray, gt: np.ndarray, cutoff_cycles_per_px: float) -> float:
    """PSNR of the affine-fitted prediction against the truth, both high-passed beyond ``cutoff`` (2x grid)."""
    from microrestore.metrics import affine_fit

    a, b = affine_fit(pred, gt)
    p = a * pred + b
    fy = np.fft.fftfreq(gt.shape[0])[:, None]
    fx = np.fft.fftfreq(gt.shape[1])[None, :]
    mask = np.sqrt(fy**2 + fx**2) > cutoff_cycles_per_px

    def hp(x: np.ndarray) -> np.ndarray:
        return np.fft.ifft2(np.fft.fft2(x) * mask).real

    err = np.mean((hp(p) - hp(gt)) ** 2)
    return float(10 * np.log10((gt.max() - gt.min()) ** 2 / max(err, 1e-30)))


def modulation(frames: np.ndarray, options: Any) -> float:
    """Mean modulation depth estimated on raw frames ``(9, Y, X)`` (wiener-sim's estimator)."""
    import torch

    from microrestore.structured_illumination.estimate import estimate_params
    from microrestore.structured_illumination.otf import load_otf

    stacks = torch.from_numpy(np.asarray(frames, dtype=np.float32).reshape(1, 3, 3, *frames.shape[-2:]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = estimate_params(
            stacks, load_otf(options, PIXEL_NM), PIXEL_NM, options.nominal_k_per_um(), options.estimation
        )
    return float(np.mean(p.modulations()))


def wiener(frames: np.ndarray, options: Any) -> np.ndarray:
    from microrestore.io import ImageData
    from microrestore.structured_illumination.reconstruct import wiener_sim

    image = ImageData(
        np.asarray(frames, dtype=np.float32), "TYX", pixel_size={"X": PIXEL_NM / 1000, "Y": PIXEL_NM / 1000}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sr, _ = wiener_sim(image, options)
    return np.asarray(sr[0])


def train_models(args: argparse.Namespace, recipe: dict[str, Any], train_root: Path, work: Path) -> tuple[Path, Path]:
    from microrestore import api

    rdl = Path(args.rdl_model) if args.rdl_model else None
    if rdl is None:
        config = dict(recipe["train"]["config"])
        if args.dfcan_steps:
            config["dfcan_steps"] = args.dfcan_steps
        if args.denoiser_steps:
            config["denoiser_steps"] = args.denoiser_steps
        t = time.time()
        rdl = api.train("rdl-sim", [str(train_root / "raw")], work / "rdl", config=config, progress=False)
        print(f"rdl-sim trained in {time.time() - t:.0f} s", flush=True)
    t = time.time()
    care_config = {"steps": args.care_steps, "batch_size": 8, "patch_size": 64, "base_filters": 16, "depth": 2}
    care = api.train(
        "care",
        [str(train_root / "raw")],
        work / "care",
        target=[str(train_root / "raw_clean")],
        config=care_config,
        progress=False,
    )
    print(f"care trained in {time.time() - t:.0f} s", flush=True)
    return rdl, care


def score(pred: np.ndarray, gt: np.ndarray, cutoff: float) -> dict[str, float]:
    from microrestore.metrics import evaluate, frc_resolution

    m = evaluate(pred, gt)
    return {
        "psnr": m["psnr_affine"],
        "ssim": m["ssim_affine"],
        "frc_nm": frc_resolution(pred, gt, threshold=0.5, pixel_size=PIXEL_NM / 2),
        "hp_psnr": highpass_psnr(pred, gt, cutoff),
    }


ROWS = (
    ("wiener_high", "Wiener, high-SNR raw (reference)"),
    ("wiener_low", "Wiener, low-SNR raw"),
    ("care", "CARE on raw frames, then Wiener"),
    ("rdl", "rDL-SIM, then Wiener"),
    ("dfcan", "DFCAN SR alone (network output, not SIM)"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rdl-model", help="trained rdl-sim model folder (default: train one by the zoo recipe)")
    parser.add_argument(
        "--mt-model",
        help="rdl-sim model (folder or zoo id) for the real MT.mrc figure (default: the --rdl-model / trained one)",
    )
    parser.add_argument("--dfcan-steps", type=int, default=None, help="override the recipe's DFCAN steps")
    parser.add_argument("--denoiser-steps", type=int, default=None, help="override the recipe's denoiser steps")
    parser.add_argument("--care-steps", type=int, default=600)
    parser.add_argument("--test-fields", type=int, default=4)
    parser.add_argument("--photons-high", type=float, default=1000.0)
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md and figures")
    args = parser.parse_args()

    import torch
    from microrestore_rdl_sim.pipeline import RDLSIMPredictor
    from microrestore_rdl_sim.sim_engine import stacks_from_image

    from microrestore.io import read_image
    from microrestore.plugins import PredictOptions
    from microrestore.structured_illumination.options import SIMOptions

    t0 = time.time()
    recipe = zoo_recipe()
    OPTICS.update(
        {k: float(recipe["train"]["config"][k]) for k in ("na", "wavelength_nm", "na_exc", "wavelength_exc_nm")}
    )
    data = recipe["data"]
    params = dict(data["params"])
    photons = float(params.pop("photons"))
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-rdl-sim-"))
    work.mkdir(parents=True, exist_ok=True)
    train_root = simulate_set(work / "train", int(data["n"]), int(data["seed"]), photons, params)
    test_seed = int(data["seed"]) + 1000
    low_root = simulate_set(work / "test_low", args.test_fields, test_seed, photons, params)
    high_root = simulate_set(work / "test_high", args.test_fields, test_seed, args.photons_high, params)
    rdl_path, care_path = train_models(args, recipe, train_root, work)

    from microrestore import api

    options = SIMOptions(**OPTICS)
    cutoff = 2 * OPTICS["na"] / (OPTICS["wavelength_nm"] / 1000) * (PIXEL_NM / 2000)  # widefield cut-off, 2x grid
    rdl = RDLSIMPredictor.from_model(rdl_path, PredictOptions(device="cpu", params=dict(OPTICS)))
    care_method = api.get_method("care")
    care = api.load_predictor(care_method, care_path, PredictOptions(device="cpu"))
    results: dict[str, list[dict[str, float]]] = {key: [] for key, _ in ROWS}
    seconds: dict[str, list[float]] = {key: [] for key, _ in ROWS}
    example: dict[str, np.ndarray] = {}
    for i in range(args.test_fields):
        name = f"field_{i:03d}.tif"
        gt = read_image(low_root / "gt" / name).data.astype(np.float64)
        gt_high = read_image(high_root / "gt" / name).data
        assert np.array_equal(gt, gt_high), "low- and high-SNR test fields differ"
        low = read_image(low_root / "raw" / name)
        high = read_image(high_root / "raw" / name)
        outputs: dict[str, np.ndarray] = {}
        mods: dict[str, float] = {}

        t = time.time()
        outputs["wiener_high"] = wiener(high.data, options)
        seconds["wiener_high"].append(time.time() - t)
        mods["wiener_high"] = modulation(high.data, options)
        t = time.time()
        outputs["wiener_low"] = wiener(low.data, options)
        seconds["wiener_low"].append(time.time() - t)
        mods["wiener_low"] = modulation(low.data, options)
        t = time.time()
        care_frames = care.predict(low)
        outputs["care"] = wiener(care_frames, options)
        seconds["care"].append(time.time() - t)
        mods["care"] = modulation(care_frames, options)
        t = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outputs["rdl"] = rdl.predict(low)[0]
        seconds["rdl"].append(time.time() - t)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            denoised = rdl.denoise(low)[0].reshape(9, *low.data.shape[-2:]).numpy()
        mods["rdl"] = modulation(denoised, options)
        stacks = stacks_from_image(low, rdl.settings)
        x = stacks[0].reshape(1, 9, *stacks.shape[-2:])
        x = (x - x.min()) / (x.max() - x.min() + 1e-7)
        t = time.time()
        with torch.no_grad():
            outputs["dfcan"] = rdl.dfcan(x)[0, 0].numpy()
        seconds["dfcan"].append(time.time() - t)
        mods["dfcan"] = float("nan")
        for key, _ in ROWS:
            row = score(outputs[key], gt, cutoff)
            row["modulation"] = mods[key]
            results[key].append(row)
        if i == 0:
            example = {"truth": gt, "widefield": low.data.astype(np.float64).mean(axis=0), **outputs}
        print(f"field {i}: " + ", ".join(f"{k} {results[k][-1]['psnr']:.2f}" for k, _ in ROWS), flush=True)

    lines = table(results, seconds, args, photons, rdl_path, recipe)
    total = time.time() - t0
    lines.append(f"\nTotal bench time {total / 60:.1f} min.")
    print("\n".join(lines))
    (work / "results.json").write_text(json.dumps({k: v for k, v in results.items()}, indent=1))
    if not args.no_write:
        figure = ROOT / "docs" / "figures" / "rdl_sim_simulated.png"
        draw_simulated(figure, example)
        alt = "truth, widefield, Wiener (low and high SNR), CARE + Wiener, rDL + Wiener"
        lines.append(f"\n![{alt}](figures/rdl_sim_simulated.png)")
        from microrestore.zoo import resolve_model

        mt_model = resolve_model(args.mt_model) if args.mt_model else rdl_path
        mt = draw_mt(ROOT / "docs" / "figures" / "rdl_sim_mt.png", mt_model, args.mt_model)
        if mt:
            lines.append(mt)
        write_section(ROOT / "docs" / "benchmarks.md", "rDL-SIM (simulated low-SNR 2D-SIM)", "\n".join(lines))


def _fmt(values: list[float], digits: int) -> str:
    arr = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return "-"
    return f"{arr.mean():.{digits}f} +/- {arr.std():.{digits}f}"


def table(
    results: dict[str, list[dict[str, float]]],
    seconds: dict[str, list[float]],
    args: argparse.Namespace,
    photons: float,
    rdl_path: Path,
    recipe: dict[str, Any],
) -> list[str]:
    cfg = recipe["train"]["config"]
    steps = (
        f"{args.dfcan_steps or cfg.get('dfcan_steps')} DFCAN and {args.denoiser_steps or cfg.get('denoiser_steps')} "
        "denoiser steps"
    )
    source = f"the model {rdl_path}" if args.rdl_model else f"a model trained here by the rdl-sim-2d recipe ({steps})"
    lines = [
        f"Simulated 2D-SIM of filaments ({args.test_fields} held-out 128 x 128 fields, 3 x 3 frames; NA 1.3, 525 nm, "
        f"62.6 nm pixels, pattern period {1000 * OPTICS['wavelength_exc_nm'] / 2 / OPTICS['na_exc'] / 1000:.0f} nm, "
        f"modulation 0.8) at {photons:g} photons peak (low SNR) "
        f"and {args.photons_high:g} (reference). rDL-SIM: {source}. CARE: `care` plugin, U-Net depth 2 / 16 filters, "
        f"{args.care_steps} steps, trained on the same low-SNR / noise-free raw frame pairs. Every row is "
        "reconstructed by the same Wiener-SIM engine (default options). Scores against the truth on the 2x grid "
        "after an affine fit; FRC resolution against the truth (0.5 threshold); HP PSNR: PSNR of the "
        "high-passed images beyond the widefield cut-off (where SIM's extra resolution, and its artefacts, live); "
        "m: modulation depth estimated on the reconstructed frames (truth 0.8). "
        f"`python bench/bench_rdl_sim.py{' --rdl-model ' + str(args.rdl_model) if args.rdl_model else ''}"
        f"{' --mt-model ' + str(args.mt_model) if args.mt_model else ''} "
        f"--care-steps {args.care_steps} --test-fields {args.test_fields}`.",
        "",
        "| method | PSNR (dB) | SSIM | FRC resolution (nm) | HP PSNR (dB) | m | s / stack |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in ROWS:
        rows = results[key]
        lines.append(
            f"| {label} | {_fmt([r['psnr'] for r in rows], 2)} | {_fmt([r['ssim'] for r in rows], 3)} | "
            f"{_fmt([r['frc_nm'] for r in rows], 0)} | {_fmt([r['hp_psnr'] for r in rows], 2)} | "
            f"{_fmt([r['modulation'] for r in rows], 2)} | {np.mean(seconds[key]):.2f} |"
        )
    return lines


def _show(ax: Any, image: np.ndarray, title: str) -> None:
    lo, hi = np.percentile(image, [0.5, 99.8])
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def draw_simulated(path: Path, images: dict[str, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("truth", "truth (SIM-limited)"),
        ("widefield", "widefield (low SNR)"),
        ("wiener_low", "Wiener, low SNR"),
        ("care", "CARE + Wiener"),
        ("rdl", "rDL + Wiener"),
        ("wiener_high", "Wiener, high SNR"),
    ]
    fig, axes = plt.subplots(2, len(panels), figsize=(2.2 * len(panels), 4.6))
    for col, (key, title) in enumerate(panels):
        image = images[key]
        _show(axes[0, col], image, title)
        s = image.shape[0] // 4  # the same region on either grid (widefield: raw pixels, the rest: 2x grid)
        zoom = image[s : 2 * s, s : 2 * s]
        _show(axes[1, col], zoom, "zoom")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_mt(path: Path, model: Path, label: str | None = None) -> str:
    """Widefield, Wiener and rDL of the real MT.mrc sample with its measured OTF; returns the markdown lines."""
    raw_path, otf_path = MT_DIR / "MT.mrc", MT_DIR / "TIRF488_cam1_0_z30_OTF2d.mrc"
    if not raw_path.is_file() or not otf_path.is_file():
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from microrestore_rdl_sim.pipeline import RDLSIMPredictor

    from microrestore.io import read_image
    from microrestore.plugins import PredictOptions
    from microrestore.structured_illumination.options import SIMOptions

    image = read_image(raw_path)
    settings = {**MT_OPTICS, "pixel_size_nm": PIXEL_NM, "otf": otf_path}
    options = SIMOptions(**settings)
    wf = image.data.astype(np.float64).mean(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from microrestore.io import ImageData
        from microrestore.structured_illumination.reconstruct import wiener_sim

        frames = ImageData(image.data, "TYX", pixel_size={"X": PIXEL_NM / 1000, "Y": PIXEL_NM / 1000})
        sr_wiener, params = wiener_sim(frames, options)
        predictor = RDLSIMPredictor.from_model(model, PredictOptions(device="cpu", params=settings))
        sr_rdl = predictor.predict(frames)
    panels = [
        (wf, "widefield (mean of 9 frames)"),
        (np.asarray(sr_wiener[0]), "Wiener-SIM"),
        (np.asarray(sr_rdl[0]), "rDL-SIM + Wiener"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(10, 7))
    for col, (img, title) in enumerate(panels):
        _show(axes[0, col], img, title)
        s = img.shape[0] // 4  # the same region on either grid
        _show(axes[1, col], img[s : 2 * s, s : 2 * s], "zoom")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    angles = ", ".join(f"{o.angle_deg:.1f}" for o in params[0].orientations)
    ks = ", ".join(f"{o.k_per_um(PIXEL_NM):.3f}" for o in params[0].orientations)
    import yaml

    trained = yaml.safe_load((model / "config.yaml").read_text())["config"]
    period = trained["wavelength_exc_nm"] / 2 / trained["na_exc"]
    return (
        f"\nReal sample MT.mrc, rDL-SIM model `{label or model.name}` (trained on simulated filaments, pattern period "
        f"{period:.0f} nm; MT.mrc's is 180 nm)"
        ": the rDL-SIM demo data, TIRF-SIM of microtubules at very low SNR, measured OTF "
        f"TIRF488: estimated angles {angles} deg, |k| {ks} /um (nominal 2 NA_exc / lambda = "
        f"{2 * 1.35 / 0.488:.3f} /um). No ground truth.\n\n"
        "![MT.mrc: widefield, Wiener-SIM, rDL-SIM](figures/rdl_sim_mt.png)"
    )


if __name__ == "__main__":
    main()

"""SIM benchmark: parameter estimation accuracy, Wiener reconstruction quality and speed, and a figure.

Run: ``python bench/bench_sim.py`` (about 10-15 minutes on 2 shared cores; ``--quick`` for a smoke run).
Writes three sections of docs/benchmarks.md and ``docs/figures/sim_wiener.png``.

1. **Estimation** on simulated raw 2D-SIM (``microrestore.simulation``: filaments through a pupil PSF,
   Poisson-Gaussian camera; 256 x 256 raw pixels of 62.6 nm, NA 1.3, 525 nm emission, pattern at 0.98 of the
   nominal ``2 NA_exc / lambda_exc`` with NA_exc 1.35 at 488 nm, random angles and phases, modulation 0.8)
   over a sweep of photons at the brightest pixel: errors of angle, ``|k|``, phase (at the field centre, where
   the data are; the phase at pixel (0, 0) adds the lever arm of any ``k`` error) and modulation, and how many
   orientations fell back. Then the real ``MT.mrc`` (rDL-SIM, TIRF-SIM of microtubules) with its measured OTF:
   what is found against the optics.
2. **Quality** against the simulated ground truth (the object through the ideal SIM OTF, ``gt_mode="sim"``),
   at high and low SNR: widefield, Wiener on high-SNR raw (reference), Wiener on low-SNR raw, a generic
   denoiser on the raw frames then Wiener (``--denoiser``, default ``nl-means``: model-free), and any other SIM
   method (``--sim-method rdl-sim=MODEL``). PSNR / SSIM after a least-squares affine fit (the ground truth is in
   density units), FRC resolution against the truth (0.5 threshold) and decorrelation resolution. Rows for more
   methods come from the options, not from code changes.
3. **Speed**: raw frames per second of Wiener reconstruction with fixed parameters (the precomputed filter) at
   256^2 and 512^2 raw on the CPU, side by side in the same run with napari-sim-processor's numpy
   ``SimProcessor`` (one orientation, three phases; its package ``__init__`` imports Qt, so its
   ``processors`` modules are loaded on their own). Install it in a venv with
   ``pip install --no-deps napari-sim-processor``; the row is skipped when it is absent.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import write_section  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "sim" / "rdlsim_microtubules"
PX, NA, LAM, NA_EXC, LAM_EXC = 62.6, 1.3, 525.0, 1.35, 488.0
NOMINAL = 2 * NA_EXC / (LAM_EXC / 1000.0)
K_FRACTION = 0.98  # the simulated pattern sits 2 % below nominal, so a fit that returns nominal shows
OPTICS = {"na": NA, "wavelength_nm": LAM, "na_exc": NA_EXC, "wavelength_exc_nm": LAM_EXC}


def simulate(folder: Path, n: int, photons: float, shape: int, seed: int) -> dict[str, Any]:
    from microrestore.simulation import simulate as run

    return run(
        "sim",
        folder,
        n=n,
        seed=seed,
        shape=(shape, shape),
        photons=photons,
        na=NA,
        wavelength_nm=LAM,
        pixel_size_nm=PX,
        pattern_k_per_um=K_FRACTION * NOMINAL,
        gt_mode="sim",
    )


def stacks_of(path: Path) -> Any:
    import torch

    from microrestore.io import read_image
    from microrestore.structured_illumination.bands import to_stacks

    return to_stacks(torch.from_numpy(read_image(path).data.astype(np.float32)), 3, 3)


# -- 1. estimation ------------------------------------------------------------------------------------------


def estimation_errors(found: Any, truth_file: Path, shape: int) -> list[tuple[float, float, float, float]]:
    """Per orientation: angle (deg), |k| (relative), phase at the field centre (rad), modulation (absolute)."""
    from microrestore.structured_illumination.params import SIMParams, parameter_errors

    centre = (shape - 1) / 2.0
    rows = parameter_errors(found, SIMParams.load(truth_file), (centre, centre))
    return [(r["angle_deg"], r["k_relative"], r["phase_rad"], r["modulation"]) for r in rows]


def bench_estimation(work: Path, photon_levels: list[float], n: int, shape: int) -> tuple[str, list[dict]]:
    from microrestore.structured_illumination.estimate import estimate_params
    from microrestore.structured_illumination.otf import otf_from_optics

    otf = otf_from_optics(NA, LAM, pixel_size_nm=PX)
    rows, raw_rows = [], []
    for photons in photon_levels:
        folder = work / f"est_{photons:g}"
        simulate(folder, n, photons, shape, seed=11)
        errors, fallbacks, seconds = [], 0, []
        for i in range(n):
            stacks = stacks_of(folder / "raw" / f"field_{i:03d}.tif")
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = estimate_params(stacks, otf, PX, NOMINAL)
            seconds.append(time.perf_counter() - start)
            fallbacks += sum(1 for o in found.orientations if o.fallback)
            errors += estimation_errors(found, folder / "params" / f"field_{i:03d}.json", shape)
        e = np.array(errors)
        row = {
            "photons": photons,
            "angle_median": float(np.median(e[:, 0])),
            "angle_max": float(e[:, 0].max()),
            "k_median": 100 * float(np.median(e[:, 1])),
            "k_max": 100 * float(e[:, 1].max()),
            "phase_median": float(np.median(e[:, 2])),
            "phase_max": float(e[:, 2].max()),
            "mod_median": float(np.median(e[:, 3])),
            "fallbacks": fallbacks,
            "orientations": len(errors),
            "seconds": float(np.median(seconds)),
        }
        raw_rows.append(row)
        rows.append(
            f"| {photons:g} | {row['angle_median']:.3f} / {row['angle_max']:.3f} | {row['k_median']:.3f} / "
            f"{row['k_max']:.3f} | {row['phase_median']:.3f} / {row['phase_max']:.3f} | {row['mod_median']:.3f} | "
            f"{fallbacks} / {len(errors)} | {row['seconds']:.2f} |"
        )
        print(rows[-1], flush=True)
    table = "\n".join(
        [
            "| photons (peak) | angle error, deg (median / max) | abs(k) error, % (median / max) | "
            "phase error, rad (median / max) | modulation error (median) | fallbacks | seconds per stack |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    return table, raw_rows


def bench_mt() -> tuple[str, dict[str, np.ndarray]]:
    """Estimate the pattern of MT.mrc with its measured OTF (a table against the nominal optics), reconstruct it."""
    from microrestore.io import read_image
    from microrestore.metrics import decorrelation_resolution
    from microrestore.structured_illumination.bands import widefield
    from microrestore.structured_illumination.options import SIMOptions
    from microrestore.structured_illumination.otf import load_otf
    from microrestore.structured_illumination.reconstruct import raw_stacks, resolve_params, wiener_sim

    options = SIMOptions(**OPTICS, otf=SHARED / "TIRF488_cam1_0_z30_OTF2d.mrc")
    image = read_image(SHARED / "MT.mrc")
    stacks = raw_stacks(image, options)
    otf = load_otf(options, PX)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        params = resolve_params(stacks, options, otf, PX)[0]
    rows = []
    for d, o in enumerate(params.orientations):
        k_um = o.k_per_um(PX)
        fit = "fitted" if not o.fallback else "fallback: " + ", ".join(o.fallback)
        rows.append(
            f"| {d} | {o.angle_deg:.2f} | {k_um:.4f} | {100 * (k_um / NOMINAL - 1):+.2f} % | {o.period_nm(PX):.1f} | "
            f"{o.modulation:.3f} | {o.quality.get('peak_significance', float('nan')):.1f} | {fit} |"
        )
    notes = "; ".join(str(w.message) for w in caught) or "none"
    images = {"widefield": widefield(stacks)[0].numpy()}
    wf_raw = decorrelation_resolution(widefield(stacks, upsample=False)[0].numpy(), PX).resolution
    resolutions = [f"widefield {wf_raw:.0f} nm"]
    for w in (0.05, 0.2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sr = wiener_sim(image, options.model_copy(update={"wiener": w}))[0][0]
        images[f"Wiener (w {w:g})"] = sr
        resolutions.append(f"Wiener w {w:g}: {decorrelation_resolution(sr, PX / 2).resolution:.0f} nm")
    table = "\n".join(
        [
            "| orientation | angle (deg) | abs(k) (1/um) | vs nominal 2 NA_exc / lambda | period (nm) | modulation | "
            "peak significance | |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    text = (
        f"{table}\n\nEstimation warnings: {notes}\n\nDecorrelation resolution (Descloux et al. 2019, single image; "
        f"it rewards amplified noise, read with care): {'; '.join(resolutions)}."
    )
    return text, images


# -- 2. quality ---------------------------------------------------------------------------------------------


def _parse_pairs(items: list[str]) -> list[tuple[str, str | None]]:
    out = []
    for item in items:
        name, _, model = item.partition("=")
        out.append((name.strip(), model.strip() or None))
    return out


def quality_rows(work: Path, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from microrestore import api
    from microrestore.io import ImageData, read_image
    from microrestore.metrics import decorrelation_resolution, evaluate, frc_resolution
    from microrestore.plugins import PredictOptions
    from microrestore.structured_illumination.bands import widefield
    from microrestore.structured_illumination.options import SIMOptions
    from microrestore.structured_illumination.reconstruct import wiener_sim

    high, low = work / "q_high", work / "q_low"
    simulate(high, args.fields, args.photons_high, args.shape, seed=21)
    simulate(low, args.fields, args.photons_low, args.shape, seed=21)  # same objects and patterns, fewer photons
    options = SIMOptions(**OPTICS, pixel_size_nm=PX)
    results: dict[str, list[dict[str, float]]] = {}
    keep: dict[str, Any] = {}

    def score(name: str, sr: np.ndarray, gt: np.ndarray, raw_grid: np.ndarray | None = None) -> None:
        crop = (slice(16, -16), slice(16, -16))  # leave out the border apodisation
        q = evaluate(sr[crop], gt[crop])
        # decorrelation analysis on the native grid: a zero-padded image's support edge would pose as a peak
        native = (
            decorrelation_resolution(raw_grid, PX) if raw_grid is not None else decorrelation_resolution(sr, PX / 2)
        )
        entry = {
            "psnr": q["psnr_affine"],
            "ssim": q["ssim_affine"],
            "frc_nm": frc_resolution(sr, gt, 0.5, PX / 2),
            "decorr_nm": native.resolution,
        }
        results.setdefault(name, []).append(entry)

    def wiener(path: Path) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return wiener_sim(read_image(path), options)[0][0]

    extra_sim = _parse_pairs(args.sim_method)
    denoisers = _parse_pairs(args.denoiser)
    for i in range(args.fields):
        name = f"field_{i:03d}.tif"
        gt = read_image(high / "gt" / name).data.astype(np.float64)
        low_stacks = stacks_of(low / "raw" / name)
        wf = widefield(low_stacks)[0].numpy()
        score("widefield (low-SNR raw)", wf, gt, widefield(low_stacks, upsample=False)[0].numpy())
        sr_high = wiener(high / "raw" / name)
        score("Wiener, high-SNR raw (reference)", sr_high, gt)
        sr_low = wiener(low / "raw" / name)
        score("Wiener, low-SNR raw", sr_low, gt)
        if i == 0:
            keep.update(gt=gt, wf=wf, high=sr_high, low=sr_low)
        raw_low = read_image(low / "raw" / name)
        for denoiser, model in denoisers:
            restored = api.restore(raw_low, denoiser, model=model)
            denoised = ImageData(restored, "TYX", pixel_size=raw_low.pixel_size)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sr = wiener_sim(denoised, options)[0][0]
            score(f"{denoiser} on raw frames, then Wiener", sr, gt)
            if i == 0:
                keep[f"{denoiser}+wiener"] = sr
        for method, model in extra_sim:
            found = api.get_method(method, "sim")
            predictor = api.load_predictor(
                found, model, PredictOptions(device="cpu", params=dict(options.model_dump()))
            )
            sr = np.asarray(predictor.predict(raw_low))[0]
            score(f"{method} (low-SNR raw)", sr, gt)
    lines = [
        "| method | PSNR (dB) | SSIM | FRC resolution vs truth (nm) | decorrelation resolution (nm) |",
        "|---|---|---|---|---|",
    ]
    for name, entries in results.items():
        mean = {k: float(np.mean([e[k] for e in entries])) for k in entries[0]}
        lines.append(
            f"| {name} | {mean['psnr']:.2f} | {mean['ssim']:.3f} | {mean['frc_nm']:.0f} | {mean['decorr_nm']:.0f} |"
        )
        print(lines[-1], flush=True)
    gt_res = frc_resolution(keep["gt"], keep["gt"], 0.5, PX / 2)
    return "\n".join(lines) + f"\n\n(FRC of the truth with itself: {gt_res:.0f} nm, the 2x grid's Nyquist.)", keep


# -- 3. speed -----------------------------------------------------------------------------------------------


def load_napari_sim_processor() -> Any:
    """``SimProcessor`` from napari-sim-processor's ``processors`` modules, without its Qt package ``__init__``."""
    spec = importlib.util.find_spec("napari_sim_processor")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = types.ModuleType("napari_sim_processor")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules.setdefault("napari_sim_processor", package)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # it prints which FFT libraries it found
        module = importlib.import_module("napari_sim_processor.processors.simProcessor")
    return module.SimProcessor


def bench_speed(sizes: list[int], n_stacks: int, repeats: int) -> str:
    """Frames per second, all runs interleaved (ours on 1 thread, ours on all threads, napari) so load is shared."""
    import contextlib
    import io

    import torch

    from microrestore.optics import Optics
    from microrestore.simulation import filaments, sim_raw_frames
    from microrestore.structured_illumination.estimate import estimate_params
    from microrestore.structured_illumination.otf import otf_from_optics
    from microrestore.structured_illumination.wiener import WienerFilter

    sim_processor = load_napari_sim_processor()
    threads = os.cpu_count() or 1
    rows = []
    for size in sizes:
        rng = np.random.default_rng(0)
        obj = filaments((2 * size, 2 * size), rng).astype(np.float64)
        k = K_FRACTION * NOMINAL * PX / 1000
        angles = np.deg2rad([10.0, 70.0, 130.0])
        kv = k * np.column_stack([np.sin(angles), np.cos(angles)])
        phases = rng.uniform(0, 2 * np.pi, 3)[:, None] + 2 * np.pi * np.arange(3)[None, :] / 3
        frames = (sim_raw_frames(obj, Optics(NA, LAM, PX), kv, phases, 0.8).density * 1000 + 100).astype(np.float32)
        series = np.tile(frames, (n_stacks, 1, 1))
        stacks = torch.from_numpy(series).reshape(n_stacks, 3, 3, size, size)
        otf = otf_from_optics(NA, LAM, pixel_size_nm=PX)
        torch.set_num_threads(1)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params = estimate_params(stacks[:1], otf, PX, NOMINAL)
        t_est = time.perf_counter() - start
        start = time.perf_counter()
        filt = WienerFilter(params, otf, (size, size), PX)
        t_build = time.perf_counter() - start
        proc = None
        if sim_processor is not None:
            proc = sim_processor()
            proc.debug = False
            proc.pixelsize, proc.magnification = PX / 1000 * 100, 100  # camera pixel (um) / magnification
            proc.NA, proc.n, proc.wavelength, proc.eta, proc.w = NA, 1.518, LAM / 1000, 0.7, 0.05
            with contextlib.redirect_stdout(io.StringIO()):
                proc.calibrate(frames[:3])
        times: dict[str, list[float]] = {"one": [], "all": [], "rfftw": [], "batch": []}
        filt(stacks, batch=4)  # warm-up (allocates the padded spectra)
        for _ in range(repeats):
            for key, n in (("one", 1), ("all", threads)):
                torch.set_num_threads(n)
                start = time.perf_counter()
                filt(stacks, batch=4)
                times[key].append(time.perf_counter() - start)
            if proc is not None:
                with contextlib.redirect_stdout(io.StringIO()):
                    start = time.perf_counter()
                    for j in range(0, series.shape[0], 3):
                        proc.reconstruct_rfftw(series[j : j + 3])
                    times["rfftw"].append(time.perf_counter() - start)
                    start = time.perf_counter()
                    proc.batchreconstruct(series)
                    times["batch"].append(time.perf_counter() - start)
        torch.set_num_threads(threads)
        fps = {key: (series.shape[0] / min(v) if v else float("nan")) for key, v in times.items()}
        rows.append(
            f"| {size}^2 | {fps['one']:.0f} | {fps['all']:.0f} | {fps['rfftw']:.0f} | {fps['batch']:.0f} | "
            f"{fps['one'] / fps['rfftw']:.2f} | {t_est:.2f} | {t_build:.2f} |"
        )
        print(rows[-1], flush=True)
    return "\n".join(
        [
            f"| raw frame size | microrestore, 1 thread (frames/s) | microrestore, {threads} threads (frames/s) | "
            "napari-sim-processor reconstruct_rfftw (frames/s) | napari-sim-processor batchreconstruct (frames/s) "
            "| ratio (ours on 1 thread / rfftw) | estimation, 1 thread (s per stack) | filter precomputation, 1 "
            "thread (s) |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )


# -- figure -------------------------------------------------------------------------------------------------


def figure(path: Path, keep: dict[str, Any], mt_images: dict[str, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels_mt = [(f"MT.mrc {name}", img) for name, img in mt_images.items()]
    panels_sim = [
        ("simulated widefield (low SNR)", keep["wf"]),
        ("Wiener, high-SNR raw", keep["high"]),
        ("Wiener, low-SNR raw", keep["low"]),
        ("ground truth (SIM-limited)", keep["gt"]),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(16, 8.4))
    for row, panels in enumerate((panels_mt, panels_sim)):
        for col in range(4):
            ax = axes[row, col]
            ax.axis("off")
            if col >= len(panels):
                continue
            title, img = panels[col]
            h = img.shape[0]
            crop = img[h // 4 : 3 * h // 4, h // 4 : 3 * h // 4]
            lo, hi = np.percentile(crop, [0.5, 99.7])
            ax.imshow(crop, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_title(title, fontsize=11)
    fig.suptitle("Wiener-SIM (microrestore sim reconstruct): centre crops, 31.3 nm pixels", fontsize=12)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small smoke run (no report written).")
    parser.add_argument("--photons", type=float, nargs="+", default=[10, 20, 50, 100, 300, 1000])
    parser.add_argument("--fields", type=int, default=4, help="Simulated fields per SNR level.")
    parser.add_argument("--shape", type=int, default=256, help="Raw frame size of the simulations.")
    parser.add_argument("--photons-high", type=float, default=1000.0)
    parser.add_argument("--photons-low", type=float, default=20.0)
    parser.add_argument("--denoiser", action="append", default=None, help="NAME[=MODEL] run on raw frames.")
    parser.add_argument("--sim-method", action="append", default=[], help="Other SIM method NAME[=MODEL].")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--stacks", type=int, default=8, help="Raw stacks per timed series.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--only",
        choices=["estimation", "quality", "speed"],
        action="append",
        help="Run these parts only (repeatable); the other sections of the report are left as they are.",
    )
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "figures" / "sim_wiener.png")
    args = parser.parse_args()
    args.denoiser = ["nl-means"] if args.denoiser is None else args.denoiser
    import torch

    torch.set_num_threads(1)  # estimation and quality: one thread (small tensors; the machine is shared)
    if args.quick:
        args.photons, args.fields, args.shape, args.sizes, args.stacks, args.repeats = [50], 1, 128, [128], 2, 1
    command = " ".join(["python bench/bench_sim.py", *sys.argv[1:]])
    parts = set(args.only or ["estimation", "quality", "speed"])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "estimation" in parts:
            est_table, _ = bench_estimation(work, args.photons, args.fields, args.shape)
            mt_table, mt_images = bench_mt() if SHARED.is_dir() else ("(MT.mrc not present)", {})
        if "quality" in parts:
            quality_table, keep = quality_rows(work, args)
            if "estimation" in parts:
                figure(args.figure, keep, mt_images)
        if "speed" in parts:
            speed_table = bench_speed(args.sizes, args.stacks, args.repeats)
    if args.quick:
        for part, text in (("estimation", "est_table"), ("quality", "quality_table"), ("speed", "speed_table")):
            if part in parts:
                print(locals()[text], end="\n\n")
        return
    setup = (
        f"Simulated raw 2D-SIM: {args.shape} x {args.shape} raw pixels of {PX} nm, NA {NA}, {LAM:g} nm emission, "
        f"pattern |k| = {K_FRACTION} x 2 NA_exc / lambda_exc (NA_exc {NA_EXC}, {LAM_EXC:g} nm), random angles and "
        f"phases, modulation 0.8, filaments, sCMOS noise; ideal OTF of the optics; torch on one thread. "
        f"Command: `{command}`."
    )
    if "estimation" in parts:
        write_section(
            args.report,
            "SIM parameter estimation",
            f"{setup}\n\n{args.fields} fields (3 orientations each) per photon level; phase errors at the field "
            f"centre.\n\n{est_table}\n\nReal data, `MT.mrc` (rDL-SIM TIRF-SIM microtubules, 256 x 256, 62.6 nm; "
            f"OTF `TIRF488_cam1_0_z30_OTF2d.mrc`), nominal 2 NA_exc / lambda = {NOMINAL:.4f}/um:\n\n{mt_table}",
        )
    if "quality" in parts:
        write_section(
            args.report,
            "SIM reconstruction quality (simulated)",
            f"{setup}\n\nMean over {args.fields} fields; high SNR {args.photons_high:g} photons, low SNR "
            f"{args.photons_low:g} photons at the brightest pixel (same objects and patterns). PSNR / SSIM after "
            "an affine fit to the ground truth (the object through the ideal SIM OTF), 16-pixel border left out. "
            "Wiener with the default options (w 0.05, OTF-shaped apodisation), parameters estimated from each raw "
            "stack. Decorrelation resolution on each image's own grid (the raw grid for widefield); it rewards "
            f"amplified noise, so read it with the FRC.\n\n{quality_table}\n\nFigure: `docs/figures/sim_wiener.png`.",
        )
    if "speed" in parts:
        write_section(
            args.report,
            "SIM Wiener reconstruction speed (CPU)",
            f"Raw frames per second, best of {args.repeats} interleaved rounds, a series of {args.stacks} stacks "
            f"of 9 frames, parameters fixed (filter precomputed), float32, {os.cpu_count()} CPU cores shared with "
            "other jobs (torch on all threads suffers most from the load; numpy's FFT is single-threaded, so the "
            "ratio compares single threads). napari-sim-processor (0.1.1, numpy FFT, no pyfftw) reconstructs one "
            f"orientation of 3 phases per call. No GPU was lent to this run. Command: `{command}`.\n\n{speed_table}",
        )


if __name__ == "__main__":
    main()

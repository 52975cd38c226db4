"""Ground-truth-free assessment benchmark: does ``assess`` estimate the true error, ``compare`` pick the best
method, and the uncertainty map cover the truth?

Run: ``nice -n 10 python bench/bench_assess.py`` (about 30 minutes on 2 heavily loaded cores; ``--quick``: photons
3 and 30, one camera, about 10 minutes). Writes the "Assessment without ground truth" section of docs/benchmarks.md
and docs/figures/assess_scatter.png.

Simulated grid (settings and seeds no recipe used): photons 3 / 10 / 30 / 100 at the brightest pixel; two
cameras (offset 150 ADU with gain 1.5 ADU/e-, offset 900 ADU with gain 3.5 ADU/e-, read noise 1.6 e-); three
structure families (tubules, nuclei, filaments); 128 x 128 fields through NA 1.1, 580 nm, 95 nm pixels; seeds
31000+. For every denoising method's default model and nl-means, ``microrestore.assess`` estimates the RMSE
of the full-dose output from the noisy field alone (3 split strengths x 2 splits), and it is compared with
the true RMSE against the noise-free field; the uncertainty map's coverage of the truth at 1 and 2 sigma is
counted; and in each field ``compare``'s pick (lowest estimated RMSE) is checked against the truly best
method (within 0.5 dB of it counts).

Real data: the W2S pairs (a 128 x 128 crop of the single 8-bit frame; truth: the 400-frame average mapped onto
the frame's intensities by a least-squares affine fit), then what assess and compare say on the Spotiflow
movie (one frame) and MT.mrc's widefield sum (the 9 SIM frames summed), which have no truth.
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
W2S = SHARED / "denoise" / "w2s_pairs"
SPOTIFLOW = SHARED / "denoise" / "spotiflow_timelapse_telomeres_2d.tif"
MT = SHARED / "sim" / "rdlsim_microtubules" / "MT.mrc"
OPTICS = {"na": 1.1, "wavelength_nm": 580.0, "pixel_size_nm": 95.0}
CAMERAS = ((150.0, 1.5), (900.0, 3.5))
STRUCTURES = ("tubules", "nuclei", "filaments")
METHODS = ("nl-means", "care", "n2v", "c2gan", "rdl-denoise")
FIGURE = ROOT / "docs" / "figures" / "assess_scatter.png"
TITLE = "Assessment without ground truth"


def grid(quick: bool) -> list[dict[str, Any]]:
    """The simulated cells: photons x camera x structure."""
    photons = (3, 30) if quick else (3, 10, 30, 100)
    cameras = CAMERAS[:1] if quick else CAMERAS
    return [
        {"photons": p, "offset": off, "gain": g, "structure": s, "seed": 31000 + i}
        for i, (p, (off, g), s) in enumerate(itertools.product(photons, cameras, STRUCTURES))
    ]


def simulate_cell(cell: dict[str, Any], work: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One noisy field and its noise-free expected counts."""
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
        read_noise=1.6,
        shape=(size, size),
        phantom=cell["structure"],
        **OPTICS,
    )
    noisy = np.asarray(read_image(folder / "noisy" / "field_000.tif").data)
    clean = np.asarray(read_image(folder / "clean" / "field_000.tif").data, np.float64)
    return noisy, clean


def assess_all(noisy: np.ndarray, restorers: dict[str, Any], repeats: int, seed: int) -> dict[str, Any]:
    """Every method's assessment on one image (shared camera fit and splits)."""
    from microrestore.assess import assess_restoration, camera_report

    camera = camera_report(noisy)
    out = {}
    for name, restore in restorers.items():
        try:
            out[name] = assess_restoration(noisy, restore, name, camera=camera, repeats=repeats, seed=seed)
        except Exception as exc:  # a failure on an input is a result too
            print(f"{name} failed: {exc}", file=sys.stderr)
    return out


def truth_scores(assessments: dict[str, Any], truth: np.ndarray) -> dict[str, dict[str, float]]:
    """True RMSE, estimated RMSE and coverage per method."""
    rows = {}
    for name, a in assessments.items():
        err = a.output.astype(np.float64) - truth
        sigma = a.sigma.astype(np.float64)
        rows[name] = {
            "true_rmse": float(np.sqrt(np.mean(err**2))),
            "est_rmse": a.error.estimated_rmse,
            "low": a.error.rmse_interval[0],
            "high": a.error.rmse_interval[1],
            "cover1": float(np.mean(np.abs(err) <= sigma)),
            "cover2": float(np.mean(np.abs(err) <= 2 * sigma)),
            "added": a.unsupported.added,
        }
    return rows


def pick_ok(assessments: dict[str, Any], rows: dict[str, dict[str, float]], tol_db: float = 0.5) -> dict[str, Any]:
    """Whether compare's pick is the truly best method or within ``tol_db`` of it."""
    from microrestore.assess import rank

    ranking = rank({n: a.error for n, a in assessments.items()})
    best_true = min(rows, key=lambda n: rows[n]["true_rmse"])
    gap = 20 * np.log10(rows[ranking.best]["true_rmse"] / rows[best_true]["true_rmse"])
    return {
        "picked": ranking.best,
        "best": best_true,
        "gap_db": float(gap),
        "ok": bool(gap <= tol_db),
        "confidence": ranking.confidence,
    }


def restorers(methods: list[str]) -> dict[str, Any]:
    from microrestore import api
    from microrestore.plugins.registry import PredictOptions

    return {m: api.restorer(m, options=PredictOptions(device="cpu")) for m in methods}


def w2s_images(size: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Centre crops of the W2S pairs: the noisy frame and the affine-mapped 400-frame average."""
    from microrestore import metrics
    from microrestore.io import read_image

    out = []
    for path in sorted(W2S.glob("input_avg1_*.tif")):
        target = W2S / path.name.replace("input_avg1", "target_avg400")
        y = np.asarray(read_image(path).data)
        t = np.asarray(read_image(target).data, np.float64)
        c0, c1 = (y.shape[0] - size) // 2, (y.shape[1] - size) // 2
        y, t = y[c0 : c0 + size, c1 : c1 + size], t[c0 : c0 + size, c1 : c1 + size]
        scale, offset = metrics.affine_fit(t, y.astype(np.float64))
        out.append((path.stem.replace("input_avg1_", "w2s_"), y, scale * t + offset))
    return out


def untruthed_images(size: int) -> list[tuple[str, np.ndarray]]:
    """One Spotiflow frame and MT.mrc's widefield sum, cropped to ``size``."""
    from microrestore.io import read_image

    out = []
    if SPOTIFLOW.exists():
        movie = np.asarray(read_image(SPOTIFLOW).data)
        out.append(("spotiflow frame 100", movie[100, :size, :size]))
    if MT.exists():
        stack = np.asarray(read_image(MT).data, np.float64)
        wf = stack.sum(axis=0)
        c = (wf.shape[0] - size) // 2
        out.append(("MT.mrc widefield sum", wf[c : c + size, c : c + size].astype(np.float32)))
    return out


def scatter(results: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from microrestore.io.atomic import atomic_path

    fig = Figure(figsize=(5.2, 4.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    methods = sorted({m for r in results for m in r["rows"]})
    for m in methods:
        pts = [(r["rows"][m]["true_rmse"], r["rows"][m]["est_rmse"]) for r in results if m in r["rows"]]
        if pts:
            t, e = np.array(pts).T
            ax.scatter(t, e, s=12, label=m, alpha=0.8)
    lims = [
        min(min(r["rows"][m]["true_rmse"] for m in r["rows"]) for r in results) * 0.7,
        max(max(r["rows"][m]["true_rmse"] for m in r["rows"]) for r in results) * 1.4,
    ]
    ax.plot(lims, lims, "k-", lw=0.8)
    for f in (0.85, 1.15):
        ax.plot(lims, [f * v for v in lims], "k:", lw=0.6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("true RMSE (input units)")
    ax.set_ylabel("estimated RMSE, no ground truth")
    ax.set_title("assess: estimated vs true error (dotted: +/-15 %)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def _rel(row: dict[str, float]) -> float:
    return abs(row["est_rmse"] - row["true_rmse"]) / row["true_rmse"]


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report(sim: list[dict[str, Any]], real: list[dict[str, Any]], blind: list[dict[str, Any]], args: Any) -> list[str]:
    methods = [m for m in METHODS if any(m in r["rows"] for r in sim)]
    lines = [
        f"Command: `nice -n 10 python bench/bench_assess.py{' --quick' if args.quick else ''}`. "
        f"{len(sim)} simulated {args.size} x {args.size} fields "
        f"(photons {sorted({c['cell']['photons'] for c in sim})}, "
        f"cameras offset/gain {', '.join(f'{o:g}/{g:g}' for o, g in CAMERAS[: 1 if args.quick else 2])}, "
        f"structures {', '.join(STRUCTURES)}; NA 1.1, 580 nm, 95 nm pixels; seeds 31000+), each method's default "
        f"model on CPU; {args.repeats} splits at each of the 3 strengths. Relative error: "
        "|estimated - true| / true RMSE of the full-dose output; coverage: share of pixels whose truth lies within "
        "+/-1 and +/-2 sigma of the output (targets 68 % and 95 %).",
        "",
        "| method | fields | median rel. error | 90th pct rel. error | within 15 % | coverage 1 sigma "
        "| coverage 2 sigma |",
        "|---|---|---|---|---|---|---|",
    ]
    every: list[float] = []
    for m in methods:
        rel = [
            abs(r["rows"][m]["est_rmse"] - r["rows"][m]["true_rmse"]) / r["rows"][m]["true_rmse"]
            for r in sim
            if m in r["rows"]
        ]
        c1 = [r["rows"][m]["cover1"] for r in sim if m in r["rows"]]
        c2 = [r["rows"][m]["cover2"] for r in sim if m in r["rows"]]
        every += rel
        lines.append(
            f"| {m} | {len(rel)} | {100 * _pct(rel, 50):.1f} % | {100 * _pct(rel, 90):.1f} % | "
            f"{100 * np.mean(np.array(rel) <= 0.15):.0f} % | {100 * np.mean(c1):.1f} % | {100 * np.mean(c2):.1f} % |"
        )
    lines.append(
        f"| all | {len(every)} | {100 * _pct(every, 50):.1f} % | {100 * _pct(every, 90):.1f} % | "
        f"{100 * np.mean(np.array(every) <= 0.15):.0f} % | | |"
    )
    inside = [r["rows"][m]["low"] <= r["rows"][m]["true_rmse"] <= r["rows"][m]["high"] for r in sim for m in r["rows"]]
    lines += [
        "",
        f"The true RMSE lies inside the estimate's 90 % interval in {100 * np.mean(inside):.0f} % of the "
        f"{len(inside)} cases.",
    ]
    picks = [r["pick"] for r in sim]
    exact = sum(p["picked"] == p["best"] for p in picks)
    ok = sum(p["ok"] for p in picks)
    lines += [
        "",
        f"`compare`'s pick: the truly best method in {exact} of {len(picks)} fields "
        f"({100 * exact / len(picks):.0f} %), "
        f"the best or within 0.5 dB of it in {ok} ({100 * ok / len(picks):.0f} %; target 90 %); the largest miss "
        f"{max(p['gap_db'] for p in picks):.2f} dB.",
        "",
        "By photons (median relative error over methods and fields; pick within 0.5 dB):",
        "",
        "| photons | median rel. error | 90th pct | picks ok |",
        "|---|---|---|---|",
    ]
    for p in sorted({r["cell"]["photons"] for r in sim}):
        sub = [r for r in sim if r["cell"]["photons"] == p]
        rel = [_rel(v) for r in sub for v in r["rows"].values()]
        lines.append(
            f"| {p} | {100 * _pct(rel, 50):.1f} % | {100 * _pct(rel, 90):.1f} % | "
            f"{sum(r['pick']['ok'] for r in sub)}/{len(sub)} |"
        )
    lines += ["", f"![estimated vs true RMSE](figures/{FIGURE.name})", ""]
    if real:
        lines += [
            "Real W2S pairs (128 x 128 centre crops of the single 8-bit frame; truth: the 400-frame average after an "
            "affine fit onto the frame, itself not noise-free):",
            "",
            "| image | fitted gain | method | estimated RMSE | true RMSE | rel. error | pick |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in real:
            for m, v in r["rows"].items():
                mark = "picked" if m == r["pick"]["picked"] else ("best" if m == r["pick"]["best"] else "")
                lines.append(
                    f"| {r['name']} | {r['gain']:.3g} | {m} | {v['est_rmse']:.3g} | {v['true_rmse']:.3g} | "
                    f"{100 * abs(v['est_rmse'] - v['true_rmse']) / v['true_rmse']:.0f} % | {mark} |"
                )
        rel = [_rel(v) for r in real for v in r["rows"].values()]
        ok = sum(r["pick"]["ok"] for r in real)
        lines += [
            "",
            f"W2S: median relative error {100 * _pct(rel, 50):.0f} %, 90th percentile {100 * _pct(rel, 90):.0f} %; "
            f"compare's pick within 0.5 dB of the best in {ok} of {len(real)}.",
            "",
        ]
    if blind:
        lines += [
            "No truth (what assess and compare report):",
            "",
            "| image | gain | photons (bright) | fit | ranking (estimated RMSE) | recommended (confidence) |",
            "|---|---|---|---|---|---|",
        ]
        for r in blind:
            order = ", ".join(f"{m} {v:.3g}" for m, v in r["ranking"])
            lines.append(
                f"| {r['name']} | {r['gain']:.3g} | {r['photons']:.3g} | {r['fit']} | {order} | "
                f"{r['recommended']} ({100 * r['confidence']:.0f} %) |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="photons 3 and 30, one camera")
    parser.add_argument("--size", type=int, default=128, help="edge of the simulated fields and crops")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--repeats", type=int, default=2, help="splits per strength")
    parser.add_argument("--no-real", action="store_true", help="skip W2S, Spotiflow and MT.mrc")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--from-json", type=Path, help="publish the tables of an earlier run's --json file")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        args.quick = len(saved["sim"]) < len(grid(False))
        if not args.no_write:
            scatter(saved["sim"] + saved.get("real", []), FIGURE)
        lines = report(saved["sim"], saved.get("real", []), saved.get("blind", []), args)
        publish(TITLE, [*lines, f"\nTotal time {saved.get('seconds', float('nan')):.0f} s."], write=not args.no_write)
        return
    import torch

    torch.set_num_threads(2)
    start = time.perf_counter()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    run = restorers(methods)
    sim = []
    with tempfile.TemporaryDirectory() as tmp:
        for cell in grid(args.quick):
            noisy, clean = simulate_cell(cell, Path(tmp), args.size)
            found = assess_all(noisy, run, args.repeats, cell["seed"])
            rows = truth_scores(found, clean)
            sim.append({"cell": cell, "rows": rows, "pick": pick_ok(found, rows)})
            print(
                cell["photons"],
                cell["offset"],
                cell["structure"],
                {m: (round(v["est_rmse"], 3), round(v["true_rmse"], 3)) for m, v in rows.items()},
                sim[-1]["pick"]["picked"],
                sim[-1]["pick"]["best"],
                f"{time.perf_counter() - start:.0f}s",
                file=sys.stderr,
                flush=True,
            )
            if args.json:  # as it goes: a long run interrupted keeps what it measured
                args.json.write_text(json.dumps({"sim": sim}, indent=1, default=float))
    real, blind = [], []
    if not args.no_real:
        for name, y, truth in w2s_images(args.size) if W2S.is_dir() else []:
            found = assess_all(y, run, args.repeats, 4242)
            rows = truth_scores(found, truth)
            gain = next(iter(found.values())).camera.gain
            real.append({"name": name, "rows": rows, "pick": pick_ok(found, rows), "gain": gain})
            print(name, rows, file=sys.stderr, flush=True)
        for name, y in untruthed_images(args.size):
            found = assess_all(y, run, args.repeats, 4243)
            from microrestore.assess import rank

            ranking = rank({n: a.error for n, a in found.items()})
            cam = next(iter(found.values())).camera
            blind.append(
                {
                    "name": name,
                    "gain": cam.gain,
                    "photons": cam.photons_bright,
                    "fit": cam.fits,
                    "ranking": [(n, found[n].error.estimated_rmse) for n in ranking.order],
                    "recommended": ranking.best,
                    "confidence": ranking.confidence,
                }
            )
            print(name, blind[-1], file=sys.stderr, flush=True)
    if args.json:
        seconds = time.perf_counter() - start
        data = {"sim": sim, "real": real, "blind": blind, "seconds": seconds}
        args.json.write_text(json.dumps(data, indent=1, default=float))
    if not args.no_write:
        scatter(sim + real, FIGURE)
    lines = report(sim, real, blind, args)
    lines.append(f"\nTotal time {time.perf_counter() - start:.0f} s.")
    publish(TITLE, lines, write=not args.no_write)


if __name__ == "__main__":
    main()

"""Run the README's SIM lines on the rDL-SIM sample ``MT.mrc`` and draw what they give.

Reads every ``microrestore sim reconstruct`` line of the README's code blocks, runs it as written (in-process,
one torch thread) on ``MT.mrc`` from ``../shared/data/sim/rdlsim_microtubules`` (or ``--data DIR``), with the
outputs in a temporary folder, checks each exits with status 0, and writes ``docs/figures/readme_sim_mt.png``:
the widefield image (the mean of the 9 raw frames) and each line's SR image, whole and a 4x zoom, each panel
with its display range. The figure therefore always shows what the README's commands do.

Run: ``python scripts/readme_sim_figures.py`` (about a minute on one CPU thread).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sim" / "rdlsim_microtubules"
FIGURE = ROOT / "docs" / "figures" / "readme_sim_mt.png"


def readme_sim_lines(readme: Path = ROOT / "README.md") -> list[list[str]]:
    """The ``microrestore sim reconstruct`` commands of the README's code blocks, as argument lists."""
    lines, inside = [], False
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if inside and line.strip().startswith("microrestore sim reconstruct"):
            lines.append(shlex.split(line, comments=True)[1:])
    return lines


def _replace(args: list[str], data: Path, out_dir: Path) -> tuple[list[str], Path]:
    """The arguments with ``MT.mrc`` pointing at the data and ``-o`` into ``out_dir``."""
    new, output = [], None
    for i, arg in enumerate(args):
        if arg == "MT.mrc":
            arg = str(data / "MT.mrc")
        elif i > 0 and args[i - 1] in ("-o", "--output"):
            output = out_dir / Path(arg).name
            arg = str(output)
        new.append(arg)
    if output is None:
        raise SystemExit(f"no -o in README line: {shlex.join(args)}")
    return new, output


def _display(image: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(image, [0.1, 99.9])
    return float(lo), float(hi if hi > lo else lo + 1)


def main(argv: list[str] | None = None) -> int:
    """Run the README's SIM lines and write the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding MT.mrc")
    parser.add_argument("--figure", type=Path, default=FIGURE, help="PNG to write")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from microrestore.cli.app import main as cli
    from microrestore.io import read_image

    raw = np.asarray(read_image(args.data / "MT.mrc").data, dtype=np.float32)
    widefield = np.kron(raw.mean(axis=0), np.ones((2, 2), dtype=np.float32))
    panels = [("widefield (mean of the 9 raw frames)", widefield)]
    with tempfile.TemporaryDirectory(prefix="readme-sim-") as tmp:
        for line in readme_sim_lines():
            run, output = _replace(line, args.data, Path(tmp))
            log = io.StringIO()
            with contextlib.redirect_stderr(log), contextlib.redirect_stdout(io.StringIO()):
                code = cli(run)
            print(f"$ microrestore {shlex.join(line)}\n{log.getvalue().rstrip()}\nexit status {code}")
            if code != 0:
                return code
            method = "rdl-sim" if "rdl" in line else "wiener-sim"
            model = line[line.index("--model") + 1] if "--model" in line else None
            wiener = next((t for t in log.getvalue().split("\n") if t.startswith("Wiener constant")), "")
            label = f"{method}" + (f" ({model})" if model else "") + (f", w = {wiener.split()[4]}" if wiener else "")
            panels.append((label, np.asarray(read_image(output).data, dtype=np.float32)))

    n = len(panels)
    fig = Figure(figsize=(4.2 * n, 8.8), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    y0, x0, size = 250, 250, 128  # a 4x zoom of the 512 x 512 SR grid
    for j, (title, image) in enumerate(panels):
        lo, hi = _display(image)
        for i, view in enumerate((image, image[y0 : y0 + size, x0 : x0 + size])):
            ax = axes[i, j]
            shown = ax.imshow(view, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=10)
                ax.add_patch(
                    matplotlib.patches.Rectangle((x0, y0), size, size, fill=False, edgecolor="yellow", linewidth=1)
                )
            else:
                ax.set_title("zoom (yellow box), 31.3 nm pixels", fontsize=9)
            bar = fig.colorbar(shown, ax=ax, shrink=0.8, location="bottom")
            bar.set_label(f"display range {lo:.0f} to {hi:.0f} (0.1 / 99.9 percentiles, counts)", fontsize=8)
    fig.suptitle("MT.mrc (rDL-SIM sample, TIRF-SIM of microtubules) through the README's SIM lines", fontsize=11)
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=90)
    print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

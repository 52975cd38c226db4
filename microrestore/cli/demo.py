"""``microrestore demo``: restore the bundled sample with the bundled default model, offline."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from microrestore.cli.common import console, stdout

#: The method whose default model the demo shows, and the classical baseline shown beside it.
DEMO_METHOD = "care"
BASELINE_METHOD = "nl-means"
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "demo"


def add_commands(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command("demo")(demo)


def demo(
    output: Path = typer.Option(Path("microrestore-demo"), "-o", "--output", help="Folder for the results."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
) -> None:
    """Denoise a bundled low-light sample (simulated filaments, 16-bit camera counts) and score it."""
    import numpy as np

    from microrestore import api, metrics
    from microrestore.io import read_image, write_image
    from microrestore.io.atomic import atomic_write_text
    from microrestore.plugins import PredictOptions

    noisy = read_image(SAMPLE_DIR / "noisy.tif")
    clean = read_image(SAMPLE_DIR / "clean.tif")
    output.mkdir(parents=True, exist_ok=True)
    write_image(output / "input.tif", np.asarray(noisy.data), noisy.axes, pixel_size=noisy.pixel_size)
    gt = np.asarray(clean.data, dtype=np.float32)
    results: dict[str, dict[str, float]] = {"input": metrics.evaluate(np.asarray(noisy.data), gt)}
    restored = {}
    for method in (DEMO_METHOD, BASELINE_METHOD):
        with console.status(f"restoring with {method} ..."):
            # As `microrestore denoise` writes it by default: never rounded to the input's 16-bit counts.
            image = api.restore(noisy, method, options=PredictOptions(device=device), dtype="auto")
        restored[method] = image
        write_image(output / f"restored_{method}.tif", image, noisy.axes, pixel_size=noisy.pixel_size)
        results[method] = metrics.evaluate(image, gt)
        results[method]["saturated"] = metrics.saturation_count(image, noisy.data.dtype)
    figure = metrics.evaluation_figure(
        output / "figure.png", restored[DEMO_METHOD], gt, input=np.asarray(noisy.data), title=f"{DEMO_METHOD} (demo)"
    )
    atomic_write_text(output / "metrics.json", json.dumps(results, indent=2))
    table = Table(title="microrestore demo: denoising a simulated low-light image (vs ground truth)")
    table.add_column("image")
    for key in ("psnr", "ssim", "pcc", "nrmse"):
        table.add_column(key.upper(), justify="right")
    for name, values in results.items():
        table.add_row(name, *(f"{values[k]:.4g}" for k in ("psnr", "ssim", "pcc", "nrmse")))
    stdout.print(table)
    console.print(
        f"results in {output}/: restored_{DEMO_METHOD}.tif, restored_{BASELINE_METHOD}.tif, "
        f"metrics.json, {Path(figure).name}"
    )

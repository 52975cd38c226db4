"""``microrestore demo``: restore the bundled sample with the bundled default model, offline."""

from __future__ import annotations

from pathlib import Path

import typer

from microrestore.cli.common import console, to_json
from microrestore.cli.outputs import OVERWRITE, refuse_existing
from microrestore.cli.tables import Column, print_table

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
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON instead of a table."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Denoise a bundled low-light sample (simulated filaments, 16-bit camera counts) and score it."""
    import numpy as np

    from microrestore import api, metrics
    from microrestore.io import read_image, write_image
    from microrestore.io.atomic import atomic_write_text
    from microrestore.plugins import PredictOptions

    written = ("input.tif", f"restored_{DEMO_METHOD}.tif", f"restored_{BASELINE_METHOD}.tif", "metrics.json")
    refuse_existing([output / name for name in (*written, "figure.png")], overwrite=overwrite)
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
        output / "figure.png",
        {DEMO_METHOD: restored[DEMO_METHOD], f"{BASELINE_METHOD} (baseline)": restored[BASELINE_METHOD]},
        gt,
        input=np.asarray(noisy.data),
        title=f"microrestore demo: {DEMO_METHOD} and the {BASELINE_METHOD} baseline on a simulated low-light image",
        scores={
            DEMO_METHOD: results[DEMO_METHOD],
            f"{BASELINE_METHOD} (baseline)": results[BASELINE_METHOD],
            "input": results["input"],
        },
    )
    atomic_write_text(output / "metrics.json", to_json(results))
    if as_json:
        typer.echo(to_json(results))
    else:
        keys = ("psnr", "ssim", "pcc", "nrmse")
        columns = [Column("image", "image"), *(Column(k.upper(), k, justify="right") for k in keys)]
        table = [{"image": name, **{k: f"{values[k]:.4g}" for k in keys}} for name, values in results.items()]
        print_table(table, columns, title="microrestore demo: denoising a simulated low-light image (vs ground truth)")
    console.print(
        f"results in {output}/: restored_{DEMO_METHOD}.tif, restored_{BASELINE_METHOD}.tif, "
        f"metrics.json, {Path(figure).name}"
    )

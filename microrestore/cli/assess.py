"""``microrestore assess | compare``: how good a restoration is, without a ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from microrestore.cli.common import console, parse_settings, to_json
from microrestore.cli.outputs import OVERWRITE, refuse_existing
from microrestore.cli.tables import Column, print_table
from microrestore.errors import InputError

#: The recommendation is reported as sure when it is best in this share of the bootstrap replicates.
SURE = 0.9


def add_commands(app: typer.Typer) -> None:
    """Add ``assess`` and ``compare`` to ``app``."""
    app.command("assess")(assess)
    app.command("compare")(compare)


def _read(path: Path, axes: str | None) -> Any:
    from microrestore import api
    from microrestore.io import read_image

    image = read_image(path, axes=axes)
    api.check_image(image)
    return image


def _options(device: str, settings: list[str] | None) -> Any:
    from microrestore.plugins import PredictOptions

    return PredictOptions(device=device, params=parse_settings(settings))


def _check_repeats(repeats: int) -> None:
    if repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {repeats}")


def _interval(low: float, high: float) -> str:
    return f"{low:.4g} to {high:.4g}"


def assess(
    image_path: Path = typer.Argument(..., help="The noisy image (raw camera units, not background-subtracted)."),
    method: str = typer.Option(..., "--method", "-m", help="Method name (see `microrestore methods`)."),
    model: str = typer.Option(None, "--model", help="Zoo id or model folder; default: the method's default."),
    axes: str = typer.Option(None, "--axes", help="Axes when metadata lacks them (YX, ZYX, TYX)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    settings: list[str] = typer.Option(None, "--set", help="Method option key=value (repeatable)."),
    repeats: int = typer.Option(2, "--repeats", help="Random splits per split strength (3 strengths)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random splits."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (estimated_rmse, psnr, intervals, camera, ...)."),
) -> None:
    """Estimate a method's error on your image without a ground truth (see docs/assess.md).

    Fits the camera's noise model from the image, splits the image into independent noisy copies, restores
    them and compares: the estimated RMSE of the full-dose output in the input's units, its PSNR with a 90 %
    interval, and the share of pixels holding structure the data do not support.
    """
    from microrestore import api

    _check_repeats(repeats)
    image = _read(image_path, axes)
    result = api.assess(
        image, method, model=model, options=_options(device, settings), repeats=repeats, seed=seed, uncertainty=False
    )
    report = {"input": str(image_path), **result.as_dict()}
    if as_json:
        typer.echo(to_json(report))
        return
    cam, err = result.camera, result.error
    rows = [
        ("estimated RMSE", f"{err.estimated_rmse:.4g}", f"90 %: {_interval(*err.rmse_interval)} (input units)"),
        (
            "estimated PSNR",
            f"{err.psnr:.2f} dB",
            f"90 %: {_interval(*err.psnr_interval)} dB (range {err.data_range:.4g})",
        ),
        ("input noise RMSE", f"{err.noise_rmse:.4g}", "the raw image's error under the noise model"),
        ("gain", f"{cam.gain:.4g}", "units per photon"),
        ("offset", f"{cam.offset:.4g}", "level of the darkest structures"),
        ("read noise", f"{cam.read_noise:.4g}", "input units"),
        ("photons (bright)", f"{cam.photons_bright:.4g}", "at the 99.9th percentile"),
        ("noise model fit", cam.fits, f"largest deviation {cam.fit_deviation:.2f} over {cam.blocks} blocks"),
        ("unsupported (added)", f"{100 * result.unsupported.added:.3g} %", "output brighter than the data allow"),
        ("unsupported (removed)", f"{100 * result.unsupported.removed:.3g} %", "output darker than the data allow"),
    ]
    columns = [Column("quantity", "q"), Column("value", "v", justify="right"), Column("note", "n", free_text=True)]
    print_table(
        [{"q": q, "v": v, "n": n} for q, v, n in rows],
        columns,
        title=f"{method} on {image_path.name} (no ground truth)",
    )


def compare(
    image_path: Path = typer.Argument(..., help="The noisy image (raw camera units)."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for the outputs, compare.json and compare.png."),
    methods: str = typer.Option(
        "all", "--methods", help="all (the denoising methods that need no model of yours) or a comma-separated list."
    ),
    axes: str = typer.Option(None, "--axes", help="Axes when metadata lacks them (YX, ZYX, TYX)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    budget: float = typer.Option(
        None, "--budget", help="Seconds for the whole comparison; slower methods are skipped (default: no limit)."
    ),
    repeats: int = typer.Option(2, "--repeats", help="Random splits per split strength (3 strengths)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random splits (shared by the methods)."),
    as_json: bool = typer.Option(False, "--json", help="Print compare.json's content instead of the table."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Run several methods on your image, rank them by estimated error and recommend one (no ground truth)."""
    from microrestore import api

    _check_repeats(repeats)
    if budget is not None and not budget > 0:
        raise InputError(f"--budget must be positive, got {budget:g}")
    names = None if methods.strip().lower() == "all" else [m.strip() for m in methods.split(",") if m.strip()]
    if names is not None and not names:
        raise InputError("--methods lists no method")
    for name in names or []:
        api.get_method(name)
    image = _read(image_path, axes)
    if output.exists() and not output.is_dir():
        raise InputError("the output must be a folder", output)
    stem = image_path.name.split(".")[0]
    planned = names or api.compare_candidates()
    refuse_existing(
        [output / "compare.json", output / "compare.png", *(output / f"{stem}_{n}.tif" for n in planned)],
        overwrite=overwrite,
    )
    result = api.compare(
        image,
        names,
        options=_options(device, None),
        budget=budget,
        repeats=repeats,
        seed=seed,
        on_method=lambda name: console.print(f"assessing {name}") if not as_json else None,
    )
    if result.ranking is None:
        reasons = "; ".join(f"{k}: {v}" for k, v in result.skipped.items())
        raise InputError(f"no method could be assessed ({reasons})", image_path)
    report = {"input": str(image_path), **result.as_dict()}
    _write_outputs(output, stem, image, result, report)
    if as_json:
        typer.echo(to_json(report))
        return
    _print_ranking(result, image_path, output)


def _write_outputs(output: Path, stem: str, image: Any, result: Any, report: dict[str, Any]) -> None:
    """The outputs, compare.json and compare.png (everything computed before the first file is written)."""
    import numpy as np

    from microrestore.assess import variance_map
    from microrestore.assess.figure import comparison_figure
    from microrestore.io import write_image
    from microrestore.io.atomic import atomic_path
    from microrestore.metrics import middle_plane

    output.mkdir(parents=True, exist_ok=True)
    order = result.ranking.order
    files = {}
    for name in order:
        path = output / f"{stem}_{name}.tif"
        write_image(path, result.assessments[name].output, image.axes, pixel_size=image.pixel_size)
        files[name] = str(path)
    for row in report["methods"]:
        row["output"] = files[row["method"]]
    data = np.asarray(image.data)
    first = result.assessments[order[0]]
    sigmas = {n: result.assessments[n].sigma for n in order if result.assessments[n].sigma is not None}
    comparison_figure(
        output / "compare.png",
        middle_plane(data, image.axes),
        {n: middle_plane(result.assessments[n].output, image.axes) for n in order},
        {n: middle_plane(sigma, image.axes) for n, sigma in sigmas.items()},
        noise_sd=np.sqrt(middle_plane(variance_map(data, first.camera), image.axes)),
        titles={n: f"#{i} RMSE {result.assessments[n].error.estimated_rmse:.3g}" for i, n in enumerate(order, 1)},
    )
    with atomic_path(output / "compare.json") as tmp:
        Path(tmp).write_text(to_json(report) + "\n", encoding="utf-8")


def _print_ranking(result: Any, image_path: Path, output: Path) -> None:
    ranking = result.ranking
    rows = []
    for i, name in enumerate(ranking.order, 1):
        err = result.assessments[name].error
        rows.append(
            {
                "rank": str(i),
                "method": name,
                "rmse": f"{err.estimated_rmse:.4g}",
                "interval": _interval(*err.rmse_interval),
                "psnr": f"{err.psnr:.2f}",
                "added": f"{100 * result.assessments[name].unsupported.added:.2g} %",
            }
        )
    columns = [
        Column("rank", "rank", justify="right"),
        Column("method", "method"),
        Column("est. RMSE", "rmse", justify="right"),
        Column("90 % interval", "interval", justify="right"),
        Column("est. PSNR dB", "psnr", justify="right"),
        Column("unsupported", "added", justify="right", optional=True),
    ]
    notes = [f"skipped {name}: {why}" for name, why in result.skipped.items()]
    sure = (
        "the ranking is clear"
        if ranking.confidence >= SURE
        else f"the next ones are within the noise of the estimate ({ranking.within_tolerance:.0%} of the resamples "
        f"put it within {ranking.tolerance_db:g} dB of the best)"
    )
    notes.append(
        f"recommended: {ranking.best} (best in {ranking.confidence:.0%} of the bootstrap resamples; {sure}); "
        f"outputs, compare.json and compare.png in {output}"
    )
    print_table(rows, columns, title=f"{image_path.name}: methods by estimated error (no ground truth)", notes=notes)

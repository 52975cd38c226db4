"""``microrestore evaluate``: score a restored image against ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from microrestore.cli.common import console, to_json
from microrestore.cli.outputs import OVERWRITE, refuse_existing
from microrestore.cli.tables import Column, print_table
from microrestore.errors import InputError


def add_commands(app: typer.Typer) -> None:
    """Add ``evaluate`` to ``app``."""
    app.command("evaluate")(evaluate)


def evaluate(
    prediction: Path = typer.Argument(..., help="Restored image."),
    ground_truth: Path = typer.Argument(..., help="Ground-truth image of the same shape."),
    input_image: Path = typer.Option(None, "--input", "-i", help="The raw input, for the figure and its scores."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    figure: Path = typer.Option(None, "--figure", help="Write a PNG figure (images, zoomed crops, histograms)."),
    axes: str = typer.Option(None, "--axes", help="Axes when metadata lacks them."),
    data_range: float = typer.Option(None, "--data-range", help="Data range for PSNR/SSIM (default: of the truth)."),
    overwrite: bool = OVERWRITE,
    label: str = typer.Option(
        None, "--label", help="Name of the method in the figure (default: the prediction's file name)."
    ),
    figure_fit: str = typer.Option(
        "affine",
        "--figure-fit",
        help="Figure panels: affine (fitted onto the truth, as the *_affine scores) or none (raw values).",
    ),
) -> None:
    """PSNR, SSIM, PCC and NRMSE, raw and after a least-squares affine fit (CARE's convention)."""
    import numpy as np

    from microrestore import metrics
    from microrestore.io import check_finite, read_image

    refuse_existing([figure], overwrite=overwrite)
    pred = read_image(prediction, axes=axes)
    gt = read_image(ground_truth, axes=axes)
    for image in (pred, gt):
        check_finite(image)
    if pred.data.shape != gt.data.shape:
        raise InputError(f"shape {pred.data.shape} differs from the ground truth's {gt.data.shape}", prediction)
    rows = {"prediction": _scores(np.asarray(pred.data), np.asarray(gt.data), data_range, prediction, ground_truth)}
    rows["prediction"]["saturated"] = metrics.saturation_count(np.asarray(pred.data), pred.data.dtype)
    raw = None
    if input_image is not None:
        raw = read_image(input_image, axes=axes)
        check_finite(raw)
        if raw.data.shape != gt.data.shape:
            raise InputError(f"shape {raw.data.shape} differs from the ground truth's {gt.data.shape}", input_image)
        rows["input"] = _scores(np.asarray(raw.data), np.asarray(gt.data), data_range, input_image, ground_truth)
        rows["input"]["saturated"] = metrics.saturation_count(np.asarray(raw.data), raw.data.dtype)
    if figure is not None:
        if figure_fit not in ("affine", "none"):
            raise InputError(f"--figure-fit must be affine or none, got {figure_fit!r}")
        plane = metrics.middle_plane
        name = label or prediction.name
        several = [a for a in pred.axes.upper() if a not in "YX" and pred.data.shape[pred.axes.upper().index(a)] > 1]
        where = f" (middle {'/'.join(several)} plane shown; scores of the whole image)" if several else ""
        metrics.evaluation_figure(
            figure,
            {name: plane(np.asarray(pred.data), pred.axes)},
            plane(np.asarray(gt.data), gt.axes),
            input=None if raw is None else plane(np.asarray(raw.data), raw.axes),
            title=f"{name} vs {ground_truth.name}{where}",
            fit=figure_fit,  # type: ignore[arg-type]
            scores={name: rows["prediction"], **({"input": rows["input"]} if "input" in rows else {})},
        )
    if as_json:
        typer.echo(to_json(rows))
    else:
        columns = [Column("metric", "metric"), *(Column(name, name, justify="right") for name in rows)]
        table = [
            {"metric": key, **{name: _fmt(values[key]) for name, values in rows.items()}} for key in rows["prediction"]
        ]
        print_table(table, columns, title=f"{prediction.name} vs {ground_truth.name}")
    if figure is not None:
        console.print(f"figure written to {figure}")


def _scores(scored: object, truth: object, data_range: float | None, path: Path, truth_path: Path) -> dict:
    """``metrics.evaluate`` with its errors in the CLI's terms: the file concerned and ``--data-range``."""
    from microrestore import metrics

    try:
        return metrics.evaluate(scored, truth, data_range=data_range)  # type: ignore[arg-type]
    except InputError as exc:
        text = str(exc).replace("pass data_range explicitly", "pass --data-range")
        text = text.replace("data_range must be", "--data-range must be")
        raise InputError(text, truth_path if "ground truth" in text else path) from None


def _fmt(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"

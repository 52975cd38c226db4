"""``microrestore train``: train a method's model on your images."""

from __future__ import annotations

from pathlib import Path

import typer

from microrestore.cli.common import console, load_config_file, merge, parse_settings


def add_commands(app: typer.Typer) -> None:
    """Add ``train`` to ``app``."""
    app.command("train")(train)


def train(
    method: str = typer.Argument(..., help="Method to train (see `microrestore methods`)."),
    source: list[str] = typer.Option(..., "--source", "-s", help="Input images: files, folders or globs."),
    target: list[str] = typer.Option(None, "--target", "-t", help="Target images (paired or the other domain)."),
    output: Path = typer.Option(..., "-o", "--output", help="Model folder to write (checkpoints go inside)."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML or JSON configuration file."),
    settings: list[str] = typer.Option(None, "--set", help="Configuration override key=value (repeatable)."),
    steps: int = typer.Option(None, "--steps", help="Training steps (overrides the configuration)."),
    paired: bool = typer.Option(
        None,
        "--paired/--unpaired",
        help="Pair --source with --target (same field) or draw them independently (sets 'paired'; methods "
        "that take both, e.g. comi).",
        show_default=False,
    ),
    focus_slice: int = typer.Option(
        None,
        "--focus-slice",
        help="Z-stacks as --source whose slice N (0-based) is the in-focus target (sets 'focus_slice'; e.g. comi).",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in the model folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    axes: str = typer.Option(None, "--axes", help="Axes of the training images when metadata lacks them."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live progress display."),
) -> None:
    """Train a model; writes config, weights, metrics.csv and checkpoints into the model folder."""
    from microrestore import api

    values = merge(load_config_file(config), parse_settings(settings))
    # Shorthands for configuration keys, like --steps; methods without these keys refuse them by name.
    if paired is not None:
        values["paired"] = paired
    if focus_slice is not None:
        values["focus_slice"] = focus_slice
    path = api.train(
        method,
        source,
        output,
        target=target or (),
        config=values,
        steps=steps,
        resume=resume,
        device=device,
        axes=axes,
        progress=not quiet,
    )
    console.print(f"model written to {path}")

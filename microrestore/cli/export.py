"""``microrestore export``: a model folder as a BioImage Model Zoo (bioimage.io) package."""

from __future__ import annotations

from pathlib import Path

import typer

from microrestore.cli.common import console, parse_settings


def add_commands(app: typer.Typer) -> None:
    """Add ``export`` to ``app``."""
    app.command("export")(export)


def export(
    model: str = typer.Argument(..., help="Model folder (or its config.yaml, or a zoo id)."),
    output: Path = typer.Option(..., "-o", "--output", help="Package to write (.zip)."),
    sample: Path = typer.Option(None, "--sample", help="Image for the test tensors and cover (default: demo)."),
    name: str = typer.Option(None, "--name", help="Model name (5-64 letters, digits, spaces, _+-())."),
    author: list[str] = typer.Option(None, "--author", help="Author name (repeatable)."),
    license: str = typer.Option(None, "--license", help="SPDX licence id (default: the model's or BSD-3-Clause)."),
    settings: list[str] = typer.Option(
        None, "--set", help="Method prediction option KEY=VALUE baked into the package (e.g. direction=BtoA)."
    ),
) -> None:
    """Export a model as a bioimage.io package; bioimageio.core's test_model must pass before it is written."""
    from microrestore.bioimage import export_model

    path = export_model(
        model,
        output,
        sample=sample,
        name=name,
        authors=author or None,
        license=license,
        params=parse_settings(settings),
    )
    console.print(f"bioimage.io package written to {path} ({path.stat().st_size / 1e6:.1f} MB)")

"""``microrestore export``: a model folder as a BioImage Model Zoo (bioimage.io) package."""

from __future__ import annotations

from pathlib import Path

import typer

from microrestore.cli.common import console, parse_settings
from microrestore.cli.outputs import OVERWRITE, refuse_existing


def add_commands(app: typer.Typer) -> None:
    """Add ``export`` to ``app``."""
    app.command("export")(export)


def export(
    model: str = typer.Argument(..., help="Model folder (or its config.yaml, or a zoo id)."),
    output: Path = typer.Option(..., "-o", "--output", help="Package to write (.zip)."),
    sample: Path = typer.Option(None, "--sample", help="Image for the test tensors and cover (default: demo)."),
    name: str = typer.Option(None, "--name", help="Model name (5-64 letters, digits, spaces, _+-())."),
    author: list[str] = typer.Option(
        None,
        "--author",
        help="Author name (repeatable). Required for your own model (asked for on a terminal); zoo models name "
        "their own authors.",
    ),
    license: str = typer.Option(None, "--license", help="SPDX licence id (default: the model's or BSD-3-Clause)."),
    settings: list[str] = typer.Option(
        None, "--set", help="Method prediction option KEY=VALUE baked into the package (e.g. direction=BtoA)."
    ),
    network: str = typer.Option(
        None,
        "--network",
        help="Network to export: required for pipeline methods (rdl-sim: dfcan or denoiser, one package each); "
        "for other methods it must name the network prediction runs.",
    ),
    overwrite: bool = OVERWRITE,
) -> None:
    """Export a model as a bioimage.io package; bioimageio.core's test_model must pass before it is written.

    Pipeline methods (rdl-sim) export one network stage per package with --network; its README says what the
    rest of the pipeline does.
    """
    from microrestore.bioimage import export_model
    from microrestore.errors import InputError

    if Path(model).exists() and Path(output).resolve() == Path(model).resolve():
        raise InputError("the package to write is the model being exported; give another -o", Path(output))
    refuse_existing([output], overwrite=overwrite)
    author = author or _ask_authors(model)
    path = export_model(
        model,
        output,
        sample=sample,
        name=name,
        authors=author or None,
        license=license,
        params=parse_settings(settings),
        network=network,
    )
    console.print(f"bioimage.io package written to {path} ({path.stat().st_size / 1e6:.1f} MB)")


def _interactive() -> bool:
    import sys

    return sys.stdin.isatty() and sys.stderr.isatty()


def _ask_authors(model: str) -> list[str] | None:
    """The authors of a user's own model: asked for on a terminal, else refused; ``None`` for a zoo model.

    A package names its authors; without ``--author`` it would name microrestore's developers, who did not
    train the user's model.
    """
    from microrestore.errors import InputError
    from microrestore.zoo import entries

    if model in entries():
        return None  # a zoo model: the package names the zoo's authors
    if _interactive():
        answer = typer.prompt("Authors of this model (comma-separated)", err=True)
        names = [name.strip() for name in answer.split(",") if name.strip()]
        if names:
            return names
    raise InputError(
        "give the model's authors with --author NAME (repeatable): the package names them, and this model is "
        "yours, not the zoo's",
        model,
    )

"""``microrestore zoo``: list, inspect, verify and rebuild models of the zoo."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from microrestore.cli.common import console, stdout

app = typer.Typer(help="The model zoo: list, inspect, verify and rebuild models.", no_args_is_help=True)


def add_commands(root: typer.Typer) -> None:
    """Add the ``zoo`` command group to ``root``."""
    root.add_typer(app, name="zoo")


@app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the zoo's models."""
    from microrestore.zoo import entries

    rows = [
        {
            "id": e.id,
            "method": e.method,
            "task": e.task,
            "version": e.version,
            "bundled": e.bundled,
            "license": e.license,
            "description": e.description,
        }
        for e in entries().values()
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="microrestore zoo")
    for column in ("id", "method", "task", "version", "bundled", "license", "description"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["id"],
            r["method"],
            r["task"],
            str(r["version"]),
            "yes" if r["bundled"] else "no",
            r["license"],
            r["description"],
        )
    stdout.print(table)


@app.command("info")
def info(model_id: str = typer.Argument(..., help="Zoo id.")) -> None:
    """Show a model's registry entry (files, recipe, metrics)."""
    from dataclasses import asdict

    from microrestore.errors import InputError
    from microrestore.zoo import entries

    entry = entries().get(model_id)
    if entry is None:
        raise InputError(f"unknown model {model_id!r}; see 'microrestore zoo list'")
    data = asdict(entry)
    data["source"] = str(data["source"])
    typer.echo(json.dumps(data, indent=2))


@app.command("verify")
def verify() -> None:
    """Check every bundled model's files against their sha256."""
    from microrestore.zoo import BUNDLED_DIR, entries, verify_files

    count = 0
    for entry in entries().values():
        if entry.bundled:
            verify_files(entry, BUNDLED_DIR / entry.id)
            count += 1
            console.print(f"ok  {entry.id}")
    console.print(f"{count} bundled model(s) verified")


@app.command("train")
def train(
    recipe: str = typer.Argument(..., help="Zoo id or registry YAML file with a recipe."),
    output: Path = typer.Option(..., "-o", "--output", help="Model folder to write."),
    workdir: Path = typer.Option(Path("zoo-work"), "--workdir", help="Where simulated training data goes."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
) -> None:
    """Rebuild a zoo model from its recipe (data + configuration + seed)."""
    from microrestore.zoo import sha256_of
    from microrestore.zoo.recipes import build

    path = build(recipe, output, workdir, device=device)
    for name in ("config.yaml", "weights.safetensors"):
        console.print(f"{name}: sha256 {sha256_of(path / name)}")

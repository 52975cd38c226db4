"""``microrestore zoo``: list, inspect, pull, verify and rebuild models of the zoo."""

from __future__ import annotations

from pathlib import Path

import typer

from microrestore.cli.common import console, stdout, styled, to_json
from microrestore.cli.listing import JSON_OPTION
from microrestore.cli.tables import Column, print_table

app = typer.Typer(help="The model zoo: list, inspect, pull, verify and rebuild models.", no_args_is_help=True)


def add_commands(root: typer.Typer) -> None:
    """Add the ``zoo`` command group to ``root``."""
    root.add_typer(app, name="zoo")


@app.command("list")
def list_models(as_json: bool = JSON_OPTION) -> None:
    """List the zoo's models, which method each is the default of, and whether each is in the download cache."""
    from microrestore.plugins.manager import get_registry
    from microrestore.zoo import entries
    from microrestore.zoo.fetch import cached_state

    methods = get_registry().methods
    defaults = {m.default_model: name for name, m in methods.items() if m.default_model}
    rows = [
        {
            "id": e.id,
            "method": e.method,
            "task": e.task,
            "version": e.version,
            "default_of": defaults.get(e.id),
            "bundled": e.bundled,
            "cached": None if e.bundled else cached_state(e),
            "license": e.license,
            "description": e.description,
        }
        for e in entries().values()
    ]
    # methods that need a model but have none to run without training
    missing = sorted(name for name, m in methods.items() if m.needs_model and m.train and not m.default_model)
    if as_json:
        typer.echo(to_json(rows))
        return
    shown = [
        {
            **r,
            "default_of": "yes" if r["default_of"] else "",
            "bundled": "yes" if r["bundled"] else "no",
            "cached": "-" if r["cached"] is None else r["cached"],
        }
        for r in rows
    ]
    note = f"methods without a default model (train one, then pass --model): {', '.join(missing)}"
    print_table(shown, ZOO_COLUMNS, title="microrestore zoo", notes=[note] if missing else [])


ZOO_COLUMNS = (
    Column("id", "id"),
    Column("method", "method"),
    Column("task", "task"),
    Column("default", "default_of"),
    Column("bundled", "bundled"),
    Column("cached", "cached"),
    Column("version", "version", optional=True),
    Column("license", "license", optional=True),
    Column("description", "description", optional=True, free_text=True),
)


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
    typer.echo(to_json(data))


@app.command("pull")
def pull(
    model_id: str = typer.Argument(..., help="Zoo id."),
    offline: bool = typer.Option(
        False, "--offline", help="Use only the cache (as MICRORESTORE_OFFLINE=1); fail if the model is not there."
    ),
) -> None:
    """Download a model into the cache (sha256-verified) and print its folder."""
    import time

    from microrestore.errors import InputError
    from microrestore.zoo import bundled_folder, entries, package_name, verify_files
    from microrestore.zoo.fetch import fetch_model
    from microrestore.zoo.package import open_model_package

    entry = entries().get(model_id)
    if entry is None:
        raise InputError(f"unknown model {model_id!r}; see 'microrestore zoo list'")
    start = time.perf_counter()
    if entry.bundled:
        folder = bundled_folder(entry)
        verify_files(entry, folder)
        note = "bundled with microrestore; nothing to download"
    else:
        actions: list[str] = []

        def on_file(name: str, action: str) -> None:
            actions.append(action)
            console.print(f"{action:<10}  {name}")

        folder = fetch_model(entry, offline=True if offline else None, on_file=on_file)
        note = f"{actions.count('downloaded')} downloaded, {actions.count('cached')} already cached"
    size = sum((folder / item["name"]).stat().st_size for item in entry.files)
    package = package_name(entry)
    if package is not None:  # a BioImage Model Zoo package: its microrestore model folder, extracted
        folder = open_model_package(folder / package, sha256=str(entry.files[0]["sha256"]))
    elapsed = time.perf_counter() - start
    console.print(
        f"{entry.id} {entry.version}: {len(entry.files)} file(s), {_size(size)}, sha256 verified, "
        f"{elapsed:.2f} s ({note})"
    )
    stdout.print(str(folder))


@app.command("verify")
def verify() -> None:
    """Check every bundled model, and every cached downloaded model, against its sha256."""
    from microrestore.errors import InputError
    from microrestore.zoo import bundled_folder, entries, verify_files
    from microrestore.zoo.fetch import cached_state, model_dir

    bundled = cached = 0
    failed: list[str] = []
    for entry in entries().values():
        if entry.bundled:
            folder, kind = bundled_folder(entry), "bundled"
        elif cached_state(entry) != "no":
            folder, kind = model_dir(entry), "cached"
        else:
            continue
        try:
            verify_files(entry, folder)
        except InputError as exc:
            failed.append(entry.id)
            console.print(styled("FAILED", "bold red", f" {entry.id} ({kind}): {exc}"))
            continue
        if kind == "bundled":
            bundled += 1
        else:
            cached += 1
        console.print(f"ok  {entry.id} ({kind})")
    console.print(f"{bundled} bundled and {cached} cached model(s) verified")
    if failed:
        raise InputError(
            f"{len(failed)} model(s) failed verification: {', '.join(failed)} "
            "(run 'microrestore zoo pull ID' to download a cached model again)"
        )


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


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover


@app.command("cards")
def cards(
    output: Path = typer.Option(Path("docs/models"), "-o", "--output", help="Folder for the Markdown cards."),
) -> None:
    """Write one Markdown model card per registry entry (and an index)."""
    from microrestore.zoo.cards import write_cards

    for path in write_cards(output):
        console.print(f"wrote {path}")

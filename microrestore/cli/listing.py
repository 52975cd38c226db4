"""``microrestore plugins`` and ``microrestore methods``."""

from __future__ import annotations

import typer
from rich.table import Table

from microrestore.cli.common import stdout, styled, to_json


def add_commands(app: typer.Typer) -> None:
    """Add the listing commands to ``app``."""
    app.command("plugins")(plugins)
    app.command("methods")(methods)


def plugins(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List installed plugins: name, version, hooks, and any load error."""
    from microrestore.plugins import get_host

    host = get_host()
    rows = [info.as_dict() for info in host.plugins.values()]
    if as_json:
        typer.echo(to_json(rows))
        return
    table = Table(title="microrestore plugins")
    for column in ("plugin", "version", "module"):
        table.add_column(column, no_wrap=True)
    table.add_column("hooks")
    table.add_column("status")
    for row in rows:
        status = styled(row["error"], "red") if row["error"] else styled("ok", "green")
        table.add_row(row["name"], row["version"], row["module"], ", ".join(row["hooks"]), status)
    stdout.print(table)


def methods(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    task: str = typer.Option(None, "--task", help="Only methods of this task (denoise, deblur, sim, restore)."),
) -> None:
    """List restoration methods: name, task, plugin, version, default model."""
    from microrestore.plugins import get_registry

    registry = get_registry()
    rows = [
        {
            "name": m.name,
            "task": m.task,
            "plugin": m.plugin,
            "version": m.plugin_version,
            "default_model": m.default_model or ("none needed" if not m.needs_model else "none yet: train one"),
            "trainable": m.train is not None,
            "self_supervised": m.self_supervised,
            "summary": m.summary,
        }
        for m in sorted(registry.methods.values(), key=lambda m: (m.task, m.name))
        if task is None or m.task == task
    ]
    if as_json:
        typer.echo(to_json(rows))
        return
    table = Table(title="microrestore methods")
    for column in ("method", "task", "plugin", "version", "default model", "trainable"):
        table.add_column(column, no_wrap=True)
    table.add_column("summary", ratio=1)
    for r in rows:
        table.add_row(
            r["name"],
            r["task"],
            r["plugin"],
            r["version"],
            r["default_model"],
            ("yes, self-supervised" if r["self_supervised"] else "yes") if r["trainable"] else "no",
            r["summary"],
        )
    stdout.print(table)

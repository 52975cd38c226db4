"""``microrestore plugins`` and ``microrestore methods``."""

from __future__ import annotations

import typer

from microrestore.cli.common import to_json
from microrestore.cli.tables import Column, print_table

#: ``--json`` on every command that prints a table.
JSON_OPTION = typer.Option(False, "--json", help="Print JSON (every field) instead of a table.")

PLUGIN_COLUMNS = (
    Column("plugin", "name"),
    Column("version", "version"),
    Column("module", "module", optional=True),
    Column("hooks", "hooks", optional=True),
    Column("status", "status", free_text=True, style=lambda text: "green" if text == "ok" else "red"),
)

METHOD_COLUMNS = (
    Column("method", "name"),
    Column("task", "task"),
    Column("plugin", "plugin", optional=True),
    Column("version", "version", optional=True),
    Column("default model", "default_model"),
    Column("trainable", "trainable"),
    Column("summary", "summary", free_text=True),
)


def add_commands(app: typer.Typer) -> None:
    """Add the listing commands to ``app``."""
    app.command("plugins")(plugins)
    app.command("methods")(methods)


def plugins(as_json: bool = JSON_OPTION) -> None:
    """List installed plugins: name, version, hooks, and any load error."""
    from microrestore.plugins import get_host

    host = get_host()
    rows = [info.as_dict() for info in host.plugins.values()]
    if as_json:
        typer.echo(to_json(rows))
        return
    shown = [{**row, "hooks": ", ".join(row["hooks"]), "status": row["error"] or "ok"} for row in rows]
    print_table(shown, PLUGIN_COLUMNS, title="microrestore plugins")


def methods(
    as_json: bool = JSON_OPTION,
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
    shown = [{**r, "trainable": _trainable(r)} for r in rows]
    print_table(shown, METHOD_COLUMNS, title="microrestore methods")


def _trainable(row: dict[str, object]) -> str:
    if not row["trainable"]:
        return "no"
    return "self-supervised" if row["self_supervised"] else "yes"

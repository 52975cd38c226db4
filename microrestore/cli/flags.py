"""Boolean flags read as flags in ``--help``.

Typer's rich help prints a type for every option, ``<bool>`` for a flag too, which reads as if ``--json true``
were the way to give it (click then refuses ``true`` as an extra argument). A flag takes no value, so its type
column is left empty: the ``metavar`` of every flag of every command is set to ``""``.
"""

from __future__ import annotations

from typing import Any


def flags_without_type(command: Any, parent: Any = None) -> Any:
    """Blank the help type of every boolean flag of ``command`` and its subcommands; returns ``command``."""
    import typer

    # the help option is made (and kept) for a context: the chain of contexts gives it -h as well as --help
    ctx = typer.Context(command, parent=parent, **(command.context_settings or {}))
    # typer vendors click: its options are recognised by their attributes, not by a class
    for param in [*command.params, command.get_help_option(ctx)]:
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        flags_without_type(sub, ctx)
    return command

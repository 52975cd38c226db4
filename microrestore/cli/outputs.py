"""The output policy of every command: an existing output is replaced only with ``--overwrite``.

Commands that write files refuse to replace one that exists, with a one-line hint, unless ``--overwrite`` is
given; ``denoise``/``deblur``/``restore`` also take ``--skip-existing`` (keep what exists and do the rest, to
resume an interrupted batch). Outputs are written whole under a temporary name and renamed, so what exists
is always complete.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import typer

from microrestore.errors import InputError

OVERWRITE = typer.Option(False, "--overwrite", help="Replace outputs that exist (refused otherwise).")


def refuse_existing(paths: Iterable[Path | None], *, overwrite: bool, skip_option: bool = False) -> None:
    """Raise :class:`InputError` naming the first of ``paths`` that exists, unless ``overwrite``.

    Parameters
    ----------
    paths
        Outputs the command is about to write (``None`` entries are ignored).
    overwrite
        ``--overwrite`` was given: nothing is refused.
    skip_option
        The command also has ``--skip-existing``; the hint names it.
    """
    if overwrite:
        return
    existing = [Path(p) for p in paths if p is not None and Path(p).exists()]
    if not existing:
        return
    more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
    keep = " or --skip-existing to keep it" if skip_option else ""
    raise InputError(f"output exists{more}; pass --overwrite to replace it{keep}", existing[0])


def refuse_filled_folder(folder: Path, *, overwrite: bool) -> None:
    """Raise :class:`InputError` when ``folder`` already holds files, unless ``overwrite``.

    For commands that write a set of files into a folder (``simulate``): writing into a folder that holds an
    earlier set would mix the two or replace files silently.
    """
    if overwrite or not folder.is_dir():
        return
    if any(folder.iterdir()):
        raise InputError("the output folder is not empty; pass --overwrite to write into it", folder)

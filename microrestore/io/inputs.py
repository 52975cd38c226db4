"""Command-line inputs and outputs: files, folders and glob patterns in; one file or a folder out."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any

from microrestore import formats
from microrestore.errors import InputError
from microrestore.io.atomic import make_folder
from microrestore.io.pillow import PILLOW_SUFFIXES

__all__ = ["IMAGE_SUFFIXES", "expand_inputs", "image_suffixes", "inputs_are_many", "plan_outputs"]

IMAGE_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".mrc", ".st", ".ali")
"""Suffixes microrestore reads itself (``.ome.tif`` ends in ``.tif``); plugins may add more."""
_GLOB_CHARS = re.compile(r"[*?\[]")


def image_suffixes() -> tuple[str, ...]:
    """Return :data:`IMAGE_SUFFIXES`, the read-only PNG/JPEG suffixes and those of plugin readers (lower case).

    Returns
    -------
    tuple of str
        Suffixes with their leading dot.
    """
    return tuple(dict.fromkeys((*IMAGE_SUFFIXES, *PILLOW_SUFFIXES, *formats.reader_suffixes())))


def _is_image(path: Path, suffixes: tuple[str, ...]) -> bool:
    if path.name.startswith(".") or not path.name.lower().endswith(suffixes):
        return False
    return path.is_file() or _is_folder_image(path)


def _is_folder_image(path: Path) -> bool:
    """A folder that a plugin reader reads as one image (OME-Zarr)."""
    if not path.is_dir():
        return False
    return path.name.lower().endswith(formats.reader_suffixes())


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _is_pattern(item: str) -> bool:
    return bool(_GLOB_CHARS.search(item)) and not Path(item).exists()


def inputs_are_many(items: list[str]) -> bool:
    """Return whether ``items`` name a collection (several items, a folder or a glob pattern).

    Parameters
    ----------
    items
        The command-line input arguments.

    Returns
    -------
    bool
        The ``many`` argument of :func:`plan_outputs`: outputs then go to a folder.
    """
    return len(items) > 1 or any(
        _is_pattern(item) or (Path(item).is_dir() and not _is_folder_image(Path(item))) for item in items
    )


def expand_inputs(items: list[str]) -> list[Path]:
    """Turn files, folders and glob patterns into a list of image files.

    Parameters
    ----------
    items
        Each a file, a folder (its image files, not recursive, in natural name order) or a glob pattern
        (``**`` recurses; non-image matches are skipped).

    Returns
    -------
    list of Path
        The files, each once, in the order given.

    Raises
    ------
    InputError
        For a missing file, or a folder or pattern without images.
    """
    suffixes = image_suffixes()
    found: dict[Path, None] = {}
    for item in items:
        text = os.path.expanduser(str(item))
        path = Path(text)
        if path.is_dir() and not _is_folder_image(path):
            files = sorted((p for p in path.iterdir() if _is_image(p, suffixes)), key=_natural_key)
            if not files:
                raise InputError(f"the folder has no image files ({', '.join(suffixes)})", path)
        elif path.exists():
            files = [path]
        elif _is_pattern(text):
            matches = sorted(glob.glob(text, recursive=True))
            files = [Path(m) for m in matches if _is_image(Path(m), suffixes)]
            if not files:
                if matches:
                    raise InputError(f"{len(matches)} paths match the pattern {text!r} but none is an image file")
                raise InputError(f"no files match the pattern {text!r}")
        else:
            raise InputError("no such file", path)
        for file in files:
            found.setdefault(Path(os.path.normpath(file)), None)
    return list(found)


def _writable_suffix(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(IMAGE_SUFFIXES):
        return True
    return formats.writer_for(path) is not None


def _output_name(source: Path, suffix: str | None) -> str:
    if suffix is None:
        return source.name if _writable_suffix(source) else f"{source.stem}.tif"
    suffix = suffix if suffix.startswith(".") else f".{suffix}"
    return f"{source.stem}{suffix}"


def _key(path: Path) -> Path:
    return Path(os.path.normcase(path.resolve()))


def plan_outputs(inputs: list[Path], output: Path, *, many: bool, suffix: str | None = None) -> list[Path]:
    """Choose the output file of every input.

    Parameters
    ----------
    inputs
        Input files from :func:`expand_inputs`.
    output
        The ``--output`` argument.
    many
        The inputs came from several items, a folder or a pattern (see :func:`inputs_are_many`): ``output``
        is then a folder, created if needed, and every input keeps its name there.
    suffix
        Replace the inputs' suffix (e.g. ``".tif"``). By default names are kept, except that suffixes no
        writer handles become ``.tif``.

    Returns
    -------
    list of Path
        One output file per input, in the same order.

    Raises
    ------
    InputError
        When an output would overwrite an input, when two inputs map to the same output, or when a folder
        is needed where a file exists.
    """
    output = Path(os.path.expanduser(str(output)))
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise InputError("no input files")
    if many or len(inputs) > 1:
        if output.exists() and not output.is_dir():
            raise InputError("the output must be a folder for several inputs, but a file has this name", output)
        make_folder(output)
        outputs = [output / _output_name(p, suffix) for p in inputs]
    elif output.is_dir() or (not output.exists() and not output.suffix):
        make_folder(output)
        outputs = [output / _output_name(inputs[0], suffix)]
    else:
        if suffix is None and not _writable_suffix(output):
            raise InputError(f"cannot write {output.suffix!r} files; use .tif, .tiff, .ome.tif or .mrc", output)
        make_folder(output.parent, output)
        outputs = [output]
    input_keys = {_key(p) for p in inputs}
    seen: dict[Path, Path] = {}
    for source, target in zip(inputs, outputs, strict=True):
        key = _key(target)
        if key in input_keys:
            raise InputError("the output would overwrite an input file; choose another --output", target)
        if key in seen:
            raise InputError(f"inputs {seen[key]} and {source} would both be written here", target)
        seen[key] = source
    return outputs

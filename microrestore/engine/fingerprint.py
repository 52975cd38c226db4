"""Fingerprints of training data, so that ``--resume`` continues a run only on the data it started on.

:func:`microrestore.api.train` computes the fingerprint of its ``source`` and ``target`` files and sets it for
the method's training (:func:`training_data`); the :class:`~microrestore.engine.trainer.Trainer` records it in
every checkpoint and, on resume, refuses a checkpoint whose recorded fingerprint differs
(:func:`check_resumed_data`), saying what differs: swapped source and target, other files, changed contents.

A file's fingerprint is cheap and does not depend on where the data lies: its name (not its folder), its size,
and the sha256 of its first and last MiB (the whole file when it is smaller). Copying or moving the data keeps
it; swapping, replacing, truncating or appending to a file changes it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from microrestore.errors import InputError

#: Bytes hashed at each end of a file.
SAMPLE = 1 << 20
#: The roles of the training files, in the order they are compared.
ROLES = ("source", "target")

_CURRENT: ContextVar[dict[str, Any] | None] = ContextVar("microrestore_training_data", default=None)


def file_fingerprint(path: Path) -> str:
    """``name:size:sha256`` of one file (sha256 over its first and last :data:`SAMPLE` bytes)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(SAMPLE))
        if size > 2 * SAMPLE:
            handle.seek(size - SAMPLE)
        digest.update(handle.read(SAMPLE))
    return f"{path.name}:{size}:{digest.hexdigest()}"


def data_fingerprint(source: Sequence[Path], target: Sequence[Path] = ()) -> dict[str, Any]:
    """The fingerprint of training files: per role, the file count and a sha256 over the files' fingerprints.

    Folders (e.g. OME-Zarr) count by name only. Unreadable files are left to the training's own reading.
    """
    result: dict[str, Any] = {}
    for role, paths in zip(ROLES, (source, target)):
        digest = hashlib.sha256()
        for path in paths:
            try:
                item = file_fingerprint(path) if Path(path).is_file() else f"{Path(path).name}:folder"
            except OSError:
                item = f"{Path(path).name}:unreadable"
            digest.update(item.encode("utf-8") + b"\n")
        result[role] = {"files": len(paths), "sha256": digest.hexdigest()}
    return result


@contextlib.contextmanager
def training_data(fingerprint: dict[str, Any] | None) -> Iterator[None]:
    """Make ``fingerprint`` the current training data's, for trainers created and run inside the block."""
    token = _CURRENT.set(fingerprint)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_fingerprint() -> dict[str, Any] | None:
    """The fingerprint set by :func:`training_data` (``None`` outside it)."""
    return _CURRENT.get()


def _describe(saved: dict[str, Any], now: dict[str, Any]) -> str | None:
    """What differs between two fingerprints, in words (``None``: nothing)."""

    def key(fp: dict[str, Any], role: str) -> tuple[Any, Any]:
        entry = fp.get(role) or {}
        return entry.get("files"), entry.get("sha256")

    differing = [role for role in ROLES if key(saved, role) != key(now, role)]
    if not differing:
        return None
    if (
        differing == list(ROLES)
        and key(saved, "source") == key(now, "target")
        and key(saved, "target") == key(now, "source")
    ):
        return "the source and target data are swapped"
    parts = []
    for role in differing:
        (was, _), (count, _) = key(saved, role), key(now, role)
        if was != count:
            parts.append(f"{count} {role} files instead of {was}")
        else:
            parts.append(f"other {role} files or contents")
    return "the training data differ: " + ", ".join(parts)


def check_resumed_data(saved: Any, path: Path) -> None:
    """Refuse to resume a checkpoint trained on other data than the current run's.

    Parameters
    ----------
    saved
        The fingerprint the checkpoint recorded (``None`` for checkpoints of older versions: not checked).
    path
        The checkpoint, for the message.

    Raises
    ------
    InputError
        The fingerprints differ (one line: what differs, and how to start a new run instead).
    """
    now = current_fingerprint()
    if now is None or not isinstance(saved, dict):
        return
    problem = _describe(saved, now)
    if problem is not None:
        raise InputError(
            f"cannot resume: {problem} (compared with the data the checkpoint was trained on); resume with the same "
            "--source and --target, or train without --resume into another output folder to start a new run",
            path,
        )

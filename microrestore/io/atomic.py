"""Write files under a temporary name in the destination folder, then rename them into place.

A reader never sees a partial file: the data go to ``.<name>.tmp-<random>`` next to the destination and
:func:`os.replace` (atomic on POSIX and Windows within one file system) moves it into place only when the
writer finished without raising. On any exception, ``KeyboardInterrupt`` included, the temporary file is
removed and the destination is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from microrestore.errors import InputError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "fsync_dir", "temp_name", "user_file_mode"]

TMP_MARKER = ".tmp-"


def temp_name(path: Path) -> Path:
    """Return a fresh temporary sibling of ``path``: ``<dir>/.<name>.tmp-<random>``.

    Parameters
    ----------
    path
        The destination file.

    Returns
    -------
    Path
        A name in the same folder that does not exist yet (hidden on POSIX, ignored by folder listings).
    """
    while True:
        candidate = path.parent / f".{path.name}{TMP_MARKER}{secrets.token_hex(4)}"
        if not os.path.lexists(candidate):
            return candidate


def _umask() -> int:
    """The process's umask: from ``/proc`` on Linux, else read by setting it and setting it back."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as status:
            return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def user_file_mode(path: str | os.PathLike[str]) -> None:
    """Give the file at ``path`` the permissions a plain ``open()`` would: ``0o666`` less the user's umask.

    Some writers (safetensors among them) create files readable by their owner alone (``0600``); a model
    written for a group to share must follow the user's umask like any other output. Nothing is done on
    Windows or for what is not a regular file.
    """
    if os.name != "posix" or not os.path.isfile(path) or os.path.islink(path):
        return
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666 & ~_umask())


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries to disk, so that the renames done in it survive a power cut.

    Parameters
    ----------
    path
        The folder. Nothing is done on systems where a folder cannot be opened for this (Windows), and an
        ``OSError`` is ignored: the flush makes a rename durable but is not needed for it to take place.
    """
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    with contextlib.suppress(OSError):
        _fsync_path(Path(path))


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, keep_name: bool = False, fsync: bool = False, replace_folder: bool = False
) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` when the block exits without error.

    Parameters
    ----------
    path
        The destination file; its folder must exist. An existing file is replaced.
    keep_name
        Yield ``<dir>/.<name>.tmp-<random>/<name>`` (a file with the destination's own name inside a
        temporary folder) for writers that choose the format from the file name.
    fsync
        Flush the written file (and the folder entry) to disk before and after the rename: use it for
        files that must survive a power cut, such as checkpoints.
    replace_folder
        The destination is a folder format (OME-Zarr): an existing folder at ``path`` is replaced (moved
        aside, the new one renamed into place, the old one deleted) instead of refused.

    Yields
    ------
    Path
        Where to write. Nothing exists there yet.

    Raises
    ------
    InputError
        When the destination's folder does not exist or ``path`` is a folder.
    FileNotFoundError
        When the block exits normally but wrote nothing at the temporary path.
    """
    dest = Path(path)
    folder = dest.parent
    if not folder.is_dir():
        raise InputError("cannot write: the folder does not exist", folder)
    if dest.is_dir() and not replace_folder:
        raise InputError("cannot write: a folder has this name", dest)
    tmp = temp_name(dest)
    target = tmp
    if keep_name:
        tmp.mkdir()
        target = tmp / dest.name
    try:
        yield target
        if not target.exists():
            raise FileNotFoundError(f"nothing was written to the temporary file {target}")
        user_file_mode(target)
        if fsync:
            _fsync_path(target)
        old = None
        if replace_folder and dest.is_dir():
            old = temp_name(dest)
            os.rename(dest, old)
        os.replace(target, dest)
        if old is not None:
            _remove(old)
        if fsync:
            fsync_dir(folder)
    finally:
        _remove(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically.

    Parameters
    ----------
    path
        Destination file; its folder must exist.
    data
        The file's complete content.
    fsync
        Flush to disk before the rename (default), so that the file is complete after a power cut.

    Returns
    -------
    Path
        ``path``.
    """
    dest = Path(path)
    with atomic_path(dest, fsync=fsync) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return dest


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", fsync: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`).

    Parameters
    ----------
    path
        Destination file; its folder must exist.
    text
        The file's complete content.
    encoding
        Text encoding.
    fsync
        Flush to disk before the rename.

    Returns
    -------
    Path
        ``path``.
    """
    return atomic_write_bytes(path, text.encode(encoding), fsync=fsync)

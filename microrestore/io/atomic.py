"""Write files under a temporary name in the destination folder, then rename them into place.

A reader never sees a partial file: the data go to ``.<name>.tmp-<random>`` next to the destination and
:func:`os.replace` (atomic on POSIX and Windows within one file system) moves it into place only when the
writer finished without raising. On any exception, ``KeyboardInterrupt`` included, the temporary file is
removed and the destination is left as it was.

Temporary names fit the file system's name limit (``NAME_MAX``, 255 bytes): a destination name too long for
the ``.<name>.tmp-<random>`` form gets a shortened name with a hash of the full one. While a temporary file
(or folder) is in use its writer holds an exclusive ``flock`` on it; leftovers of a killed writer hold no
lock, and :func:`clean_stale_temps` removes them (only those of the given destinations, only unlocked ones
last modified before this process started) after each successful write. Operating-system errors of the
write (full disk, read-only or missing folder, a file where a folder should be, a name too long) become one
line naming the destination, never the temporary name.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from microrestore.errors import InputError, MicrorestoreError

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "clean_stale_temps",
    "fsync_dir",
    "make_folder",
    "temp_name",
    "user_file_mode",
    "write_error",
]

TMP_MARKER = ".tmp-"
_TOKEN_HEX = 8  # characters of the random part
_NAME_MAX = 255
_IMPORTED = time.time()


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return _NAME_MAX


def _temp_stem(path: Path) -> str:
    """Return the part of ``path``'s temporary names before the marker.

    That is ``.<name>``, or a shortened name with a hash of the full one when ``.<name>.tmp-<random>`` would
    not fit the file system's name limit.
    """
    name = path.name
    limit = _name_max(path.parent) - len(TMP_MARKER) - _TOKEN_HEX
    stem = f".{name}"
    if len(os.fsencode(stem)) <= limit:
        return stem
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    prefix = name
    while prefix and len(os.fsencode(f".{prefix}~{digest}")) > limit:
        prefix = prefix[:-1]
    return f".{prefix}~{digest}"


def temp_name(path: Path) -> Path:
    """Return a fresh temporary sibling of ``path``: ``<dir>/.<name>.tmp-<random>``.

    Parameters
    ----------
    path
        The destination file.

    Returns
    -------
    Path
        A name in the same folder that does not exist yet (hidden on POSIX, ignored by folder listings) and
        fits the file system's name limit: for names too long, ``.<shortened name>~<hash>.tmp-<random>``.
    """
    stem = _temp_stem(path)
    while True:
        candidate = path.parent / f"{stem}{TMP_MARKER}{secrets.token_hex(_TOKEN_HEX // 2)}"
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


try:
    import fcntl
except ImportError:  # Windows: no flock, temporary files are not locked and never judged stale
    fcntl = None  # type: ignore[assignment]


def _open_locked(path: Path, *, create: bool) -> int | None:
    """Create (an empty file) or open ``path`` and take an exclusive ``flock`` on it without waiting.

    Returns the descriptor holding the lock, or None when another process holds it (or locks do not exist
    here; a file asked for is still created).
    """
    if create:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    elif fcntl is None:
        return None
    else:
        fd = os.open(path, os.O_RDONLY)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            pass
    os.close(fd)
    return None


def _process_start() -> float:
    try:
        import psutil

        return min(float(psutil.Process().create_time()), _IMPORTED)
    except Exception:  # psutil missing or unable to say: the import of this module is later than the start
        return _IMPORTED


_TEMP_PATTERN = re.compile(rf"^(.*){re.escape(TMP_MARKER)}[0-9a-f]{{{_TOKEN_HEX}}}$")
_CANDIDATES: dict[str, dict[str, list[str]]] = {}  # folder -> stem -> leftovers older than this process
_CANDIDATES_LOCK = threading.Lock()


def _candidates(folder: Path) -> dict[str, list[str]]:
    """Temporary names in ``folder`` last modified before this process started, by stem (listed once).

    Only leftovers older than this process can be removed, so one listing per folder and process finds them
    all: writing many outputs into one large folder lists it once, not once per output.
    """
    key = os.path.abspath(folder)
    with _CANDIDATES_LOCK:
        found = _CANDIDATES.get(key)
        if found is not None:
            return found
        found = {}
        started = None
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                match = _TEMP_PATTERN.match(entry.name)
                if match is None:
                    continue
                started = _process_start() if started is None else started
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < started:
                        found.setdefault(match.group(1), []).append(entry.name)
        _CANDIDATES[key] = found
        return found


def clean_stale_temps(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Remove temporary leftovers of writes to ``paths`` that were killed (power cut, ``kill -9``).

    A leftover is removed when its name is one :func:`temp_name` gives for one of ``paths``, no process
    holds its lock (a writer locks its temporary file or folder until it is done), and it was last
    modified before this process started (so a writer that created it an instant ago and has not locked it
    yet is left alone). Anything else in the folders is never touched.

    Parameters
    ----------
    paths
        Destination files; their folders are listed once each per process (see :func:`_candidates`).

    Returns
    -------
    list of Path
        The leftovers removed.
    """
    removed: list[Path] = []
    started: float | None = None
    for item in paths:
        path = Path(item)
        stem = _temp_stem(path)
        names = _candidates(path.parent).get(stem)
        for name in list(names or ()):
            leftover = path.parent / name
            started = _process_start() if started is None else started
            with contextlib.suppress(OSError):
                if leftover.is_symlink() or leftover.stat().st_mtime >= started:
                    continue
                fd = _open_locked(leftover, create=False)
                if fd is None:  # in use
                    continue
                try:
                    _remove(leftover)
                finally:
                    os.close(fd)
                removed.append(leftover)
            if not os.path.lexists(leftover):
                with _CANDIDATES_LOCK:
                    names.remove(name)
    return removed


_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is too large for the file system",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EIO: "input/output error on the device",
}
_USER_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.ENAMETOOLONG})
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")


def write_error(
    exc: OSError, path: str | os.PathLike[str], action: str = "cannot write the file", needed: int | None = None
) -> MicrorestoreError:
    """Turn an ``OSError`` of writing ``path`` into one line naming ``path`` (not a temporary name).

    Parameters
    ----------
    exc
        The error (``ENOSPC``, ``EROFS``, ``EACCES``, ``ENOTDIR``, a short write reported by numpy, ...).
    path
        The destination the user asked for.
    action
        What failed, the start of the message.
    needed
        Bytes the write needs, said with a full disk.

    Returns
    -------
    MicrorestoreError
        An :class:`~microrestore.errors.InputError` (exit status 2) when the destination cannot be written
        at all (read-only, no permission, a file where a folder should be, a name too long); otherwise a
        :class:`~microrestore.errors.MicrorestoreError` (exit status 1: a full disk, an I/O error).
    """
    dest = Path(path)
    code = exc.errno
    short = _SHORT_WRITE.search(str(exc))
    if short is not None and code is None:  # numpy's tofile: a short write on a regular file means a full disk
        code = errno.ENOSPC
    reason = _REASONS.get(code or -1) or exc.strerror or str(exc) or type(exc).__name__
    if code in (errno.ENOSPC, errno.EDQUOT):
        facts = [f"about {needed} bytes needed"] if needed else []
        with contextlib.suppress(OSError):
            stats = os.statvfs(dest.parent)
            facts.append(f"{stats.f_bavail * stats.f_frsize} bytes free")
        reason += f" ({', '.join(facts)})" if facts else ""
    if code in _USER_ERRNOS:
        return InputError(f"{action}: {reason}", dest)
    return MicrorestoreError(" ".join(f"{dest}: {action}: {reason}".split()))


def _ours(exc: OSError, names: Iterable[Path]) -> bool:
    """Whether ``exc`` is about writing one of ``names`` (or names no file, as numpy's short writes)."""
    if exc.filename is None:
        return True
    mentioned = {os.path.abspath(os.fsdecode(f)) for f in (exc.filename, exc.filename2) if f is not None}
    return bool(mentioned & {os.path.abspath(p) for p in names})


def _missing_folder(folder: Path, named: Path) -> InputError:
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                return InputError(f"cannot write here: {parent} is a file, not a folder", named)
            break
    return InputError("cannot write: the folder does not exist", folder)


def make_folder(folder: str | os.PathLike[str], for_path: str | os.PathLike[str] | None = None) -> Path:
    """Create ``folder`` and its parents when missing; one line naming it when that is impossible.

    Parameters
    ----------
    folder
        The folder.
    for_path
        The file to be written there, named in the message instead of the folder.

    Returns
    -------
    Path
        ``folder``.

    Raises
    ------
    InputError
        A file has the name of the folder or of a parent, or the folder cannot be created (read-only,
        permission denied, name too long); a full disk is a :class:`~microrestore.errors.MicrorestoreError`.
    """
    path = Path(folder)
    named = Path(for_path) if for_path is not None else path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise _missing_folder(path, named) from None
    except OSError as exc:
        raise write_error(exc, named, f"cannot create the folder {path}") from None
    return path


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
    path: str | os.PathLike[str],
    *,
    keep_name: bool = False,
    fsync: bool = False,
    replace_folder: bool = False,
    allow_empty: bool = False,
    size_hint: int | None = None,
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
    allow_empty
        Accept an empty file (otherwise an empty temporary file means the writer wrote nothing).
    size_hint
        About how many bytes the file takes, said when the disk is full.

    Yields
    ------
    Path
        Where to write: an empty file, created and locked for the duration of the block (with
        ``keep_name``, a name in a locked temporary folder where nothing exists yet). Writers open it for
        writing (truncating it) as usual.

    Raises
    ------
    InputError
        When the destination's folder does not exist, a part of its path is a file, ``path`` is a folder,
        or the destination cannot be written (read-only, permission denied, name too long).
    MicrorestoreError
        A full disk or an I/O error while writing: one line naming ``path``.
    FileNotFoundError
        When the block exits normally but wrote nothing at the temporary path.
    """
    dest = Path(path)
    folder = dest.parent
    if not folder.is_dir():
        raise _missing_folder(folder, dest)
    if dest.is_dir() and not replace_folder:
        raise InputError("cannot write: a folder has this name", dest)
    tmp = temp_name(dest)
    target = tmp
    lock: int | None = None
    try:
        try:
            if keep_name:
                tmp.mkdir()
                target = tmp / dest.name
                lock = _open_locked(tmp, create=False)
            else:  # created empty and locked: a later run knows it is in use
                lock = _open_locked(tmp, create=True)
        except OSError as exc:
            raise write_error(exc, dest) from None
        try:
            yield target
            if not target.exists() or (not allow_empty and target.is_file() and target.stat().st_size == 0):
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
        except OSError as exc:
            if (isinstance(exc, FileNotFoundError) and exc.errno is None) or not _ours(exc, (dest, tmp, target)):
                raise
            _remove(tmp)  # before the free space is measured
            raise write_error(exc, dest, needed=size_hint) from None
    finally:
        _remove(tmp)
        if lock is not None:
            os.close(lock)
    clean_stale_temps([dest])


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
    with atomic_path(dest, fsync=fsync, allow_empty=True) as tmp, open(tmp, "wb") as fh:
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

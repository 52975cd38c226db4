"""Native loading of BioImage Model Zoo packages (``.zip``) that carry a microrestore model folder.

``microrestore export`` attaches the model folder's ``config.yaml`` and ``weights.safetensors`` to the package
unchanged, so one artifact serves both bioimage.io tools and microrestore. :func:`open_model_package` extracts
those two files (and nothing else) into ``<cache>/packages/<sha256[:16]>/``, keyed by the zip's sha256, and
returns that folder, which :func:`microrestore.engine.modeldir.load_model` reads as usual: exact microrestore
prediction, output in the input's units, no bioimageio import, nothing unpickled.

Safety: every member name of the zip is checked (no ``..``, no absolute paths, no drive letters, no
backslashes); the extracted files may not exceed :data:`MAX_TOTAL_BYTES` uncompressed, counted while
decompressing (the sizes in the zip's directory are not trusted), nor a compression ratio of
:data:`MAX_RATIO`. Extraction goes to a temporary folder that is renamed into place when complete, and a
cached extraction is compared with the zip (sha256 of each file) every time it is used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

from microrestore.errors import InputError
from microrestore.limits import MAX_RATIO, expands_too_far

#: The files of a microrestore model folder that a package carries (at the root of the zip).
MODEL_MEMBERS = ("config.yaml", "weights.safetensors")
#: Largest total uncompressed size of the extracted files.
MAX_TOTAL_BYTES = 4 * 2**30
# MAX_RATIO (uncompressed / compressed, per member) and RATIO_FLOOR_BYTES come from microrestore.limits, which
# the TIFF reader shares.
#: Largest config.yaml read to check the method without extracting.
MAX_CONFIG_BYTES = 2**20

_CHUNK = 2**20
_DRIVE = re.compile(r"^[A-Za-z]:")
_LOG = logging.getLogger(__name__)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def check_member_name(name: str, source: Path | None = None) -> None:
    """Refuse a zip member name that could escape the extraction folder.

    Raises
    ------
    InputError
        For ``..`` components, absolute paths, drive letters, backslashes or NUL characters.
    """
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or "\0" in name or _DRIVE.match(name) or ".." in parts:
        raise InputError(f"unsafe file name {name!r} in the package (path traversal); refusing it", source)


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"not a readable zip file: {exc}", path) from None
    try:
        for info in archive.infolist():
            check_member_name(info.filename, path)
    except BaseException:
        archive.close()
        raise
    return archive


def _model_infos(archive: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo] | None:
    """The ZipInfo of each of :data:`MODEL_MEMBERS` at the zip's root, or None when one is missing."""
    found = {info.filename: info for info in archive.infolist() if info.filename in MODEL_MEMBERS}
    if len(found) != len(MODEL_MEMBERS):
        return None
    total = 0
    for name, info in found.items():
        if info.is_dir():
            return None
        total += info.file_size
        if expands_too_far(info.file_size, info.compress_size):
            raise InputError(
                f"{name} in the package expands {info.file_size / max(info.compress_size, 1):.0f}-fold "
                f"(more than {MAX_RATIO:.0f}); refusing a possible zip bomb",
                path,
            )
    if total > MAX_TOTAL_BYTES:
        raise InputError(
            f"the model files in the package would take {total / 2**30:.1f} GiB "
            f"(more than {MAX_TOTAL_BYTES / 2**30:.0f} GiB); refusing it",
            path,
        )
    return found


def has_microrestore_model(zip_path: str | Path, method: str | None = None) -> bool:
    """Whether a ``.zip`` carries a microrestore model folder (``config.yaml`` + ``weights.safetensors``).

    Parameters
    ----------
    zip_path
        The package.
    method
        When given, the carried ``config.yaml`` must also name this method.

    Returns
    -------
    bool
        False for a missing or unreadable file and for a foreign bioimage.io package (those go through the
        bioimageio importer). Never imports bioimageio.

    Raises
    ------
    InputError
        The zip has an unsafe member name, or its model files are a possible zip bomb.
    """
    path = Path(zip_path).expanduser()
    if not path.is_file():
        return False
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return False
    with archive:
        for info in archive.infolist():
            check_member_name(info.filename, path)
        infos = _model_infos(archive, path)
        if infos is None:
            return False
        if method is None:
            return True
        import yaml

        info = infos["config.yaml"]
        if info.file_size > MAX_CONFIG_BYTES:
            return False
        try:
            with archive.open(info) as handle:
                document = yaml.safe_load(handle.read(MAX_CONFIG_BYTES + 1))
        except (yaml.YAMLError, zipfile.BadZipFile, OSError, ValueError):
            return False
        return isinstance(document, dict) and str(document.get("method")) == method


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, source: Path) -> int:
    """Stream one member to ``target``, counting the bytes actually produced; return how many."""
    written = 0
    try:
        with archive.open(info) as src, open(target, "wb") as dst:
            while block := src.read(_CHUNK):
                written += len(block)
                if written > budget:
                    raise InputError(
                        f"{info.filename} in the package expands beyond the {MAX_TOTAL_BYTES / 2**30:.0f} GiB limit; "
                        "refusing a possible zip bomb",
                        source,
                    )
                if expands_too_far(written, info.compress_size):
                    raise InputError(
                        f"{info.filename} in the package expands more than {MAX_RATIO:.0f}-fold; "
                        "refusing a possible zip bomb",
                        source,
                    )
                dst.write(block)
    except (zipfile.BadZipFile, zlib.error) as exc:  # CRC mismatch, truncated or corrupt data
        raise InputError(f"{info.filename} in the package is corrupt: {exc}", source) from None
    return written


def _member_digests(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], source: Path) -> dict[str, str]:
    """sha256 of each model member, decompressed in a stream (with the same size limits as extraction)."""
    digests = {}
    budget = MAX_TOTAL_BYTES
    for name, info in infos.items():
        digest = hashlib.sha256()
        read = 0
        try:
            with archive.open(info) as handle:
                while block := handle.read(_CHUNK):
                    read += len(block)
                    if read > budget or expands_too_far(read, info.compress_size):
                        raise InputError(f"{name} in the package expands too far; refusing a possible zip bomb", source)
                    digest.update(block)
        except (zipfile.BadZipFile, zlib.error) as exc:
            raise InputError(f"{name} in the package is corrupt: {exc}", source) from None
        budget -= read
        digests[name] = digest.hexdigest()
    return digests


def _check_weights_record(folder: Path, weights_sha256: str, source: Path) -> None:
    """Refuse a package whose weights do not match the sha256 its ``config.yaml`` records, naming the zip.

    The model loader checks the same, but would name the extracted copy in the cache, which the user never
    gave; a ``config.yaml`` that cannot be read is left to the loader's own messages.
    """
    import yaml

    try:
        weights = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))["weights"]
        named = str(weights.get("file", "weights.safetensors"))
        recorded = weights.get("sha256") if named == "weights.safetensors" else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, TypeError, KeyError, AttributeError):
        return
    if recorded and str(recorded).lower() != weights_sha256:
        raise InputError(
            "weights.safetensors in the package is corrupt or was modified: its sha256 differs from the one "
            "recorded in its config.yaml",
            source,
        )


def packages_dir(cache_root: str | Path | None = None) -> Path:
    """Folder holding extracted packages: ``<cache>/packages`` (``cache_root`` or :func:`fetch.cache_dir`)."""
    if cache_root is not None:
        return Path(cache_root).expanduser() / "packages"
    from microrestore.zoo.fetch import cache_dir

    folder = cache_dir() / "packages"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:  # read-only home (clusters, containers): the extracted files are re-verified anyway
        import tempfile

        folder = Path(tempfile.gettempdir()) / f"microrestore-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        folder = folder / "packages"
    return folder


def open_model_package(
    zip_path: str | Path, cache_root: str | Path | None = None, *, sha256: str | None = None
) -> Path:
    """Extract a package's microrestore model folder into the cache and return that folder.

    Parameters
    ----------
    zip_path
        A ``.zip`` carrying ``config.yaml`` and ``weights.safetensors`` at its root (as ``microrestore export``
        writes it).
    cache_root
        Cache folder; the files go to ``<cache_root>/packages/<sha256[:16]>/``. Default
        :func:`microrestore.zoo.fetch.cache_dir`.
    sha256
        The zip's sha256 when the caller has just verified it (saves hashing it again).

    Returns
    -------
    Path
        The folder holding exactly ``config.yaml`` and ``weights.safetensors``, extracted unchanged.

    Raises
    ------
    InputError
        Not a zip, an unsafe member name (path traversal), a possible zip bomb, corrupt data, or a package
        without microrestore's model files (load that one with the bioimageio importer).
    """
    path = Path(zip_path).expanduser()
    if not path.is_file():
        raise InputError("no such package", path)
    digest = (sha256 or _sha256_file(path)).lower()
    folder = packages_dir(cache_root) / digest[:16]
    with _open_zip(path) as archive:
        infos = _model_infos(archive, path)
        if infos is None:
            raise InputError(
                f"the package holds no microrestore model ({' and '.join(MODEL_MEMBERS)}); it is a foreign "
                "bioimage.io package, loaded through the bioimageio importer",
                path,
            )
        if folder.is_dir():
            expected = _member_digests(archive, infos, path)
            actual = {n: _sha256_file(folder / n) if (folder / n).is_file() else "" for n in MODEL_MEMBERS}
            if actual == expected:
                _check_weights_record(folder, actual["weights.safetensors"], path)
                return folder
            _LOG.warning("the extracted copy of %s in %s differs from the package; extracting it again", path, folder)
            shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{digest[:16]}-", dir=folder.parent))
        try:
            budget = MAX_TOTAL_BYTES
            for name, info in infos.items():
                budget -= _extract_member(archive, info, temp / name, budget, path)
            _check_weights_record(temp, _sha256_file(temp / "weights.safetensors"), path)
            try:
                os.replace(temp, folder)
            except OSError:
                if not folder.is_dir():  # not a concurrent extraction that won the race
                    raise
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    return folder

"""Model references: zoo ids, bundled models and model folders.

The registry is one YAML file per model in the project's ``zoo/models/`` folder (shipped inside the wheel as
``microrestore/zoo/registry``). Small default models ship inside the package under ``bundled/<id>/``; the
others are downloaded on first use into a per-user cache (:mod:`microrestore.zoo.fetch`). Either way, every
file is verified against the sha256 recorded in the registry every time it is used (:func:`verify_files`).
A model may be stored as one BioImage Model Zoo package (``bundled/<id>.zip`` or a downloaded ``.zip``) that
carries microrestore's model folder; it is verified as a whole, then opened natively
(:mod:`microrestore.zoo.package`).
See ``docs/zoo.md``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microrestore.errors import InputError

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_DIR = PACKAGE_DIR / "bundled"


@dataclass
class ZooEntry:
    """One model of the registry."""

    id: str
    method: str
    task: str
    version: str
    description: str
    license: str
    files: list[dict[str, Any]]
    citation: str = ""
    bundled: bool = False
    recipe: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None


def registry_dir() -> Path:
    """Folder holding the registry YAML files (installed copy first, then the source tree's ``zoo/``)."""
    installed = PACKAGE_DIR / "registry"
    if installed.is_dir():
        return installed
    return PACKAGE_DIR.parents[1] / "zoo" / "models"


def entries() -> dict[str, ZooEntry]:
    """Read every registry entry, keyed by id."""
    from microrestore.io.safe_yaml import safe_load

    found: dict[str, ZooEntry] = {}
    folder = registry_dir()
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.yaml")):
        data = safe_load(path.read_text(encoding="utf-8"))
        known = {k: data[k] for k in ZooEntry.__dataclass_fields__ if k in data and k != "source"}
        entry = ZooEntry(**known, source=path)
        found[entry.id] = entry
    return found


def sha256_of(path: Path, chunk: int = 2**20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_files(entry: ZooEntry, folder: Path) -> None:
    """Check every file of ``entry`` in ``folder`` against its recorded sha256."""
    for item in entry.files:
        path = folder / item["name"]
        if not path.is_file():
            raise InputError(f"model {entry.id!r} is missing its file {item['name']}", folder)
        actual = sha256_of(path)
        if actual != item["sha256"]:
            raise InputError(
                f"model {entry.id!r}: {item['name']} has sha256 {actual[:12]}..., expected {item['sha256'][:12]}... "
                "(corrupted or tampered; refusing to load it)",
                folder,
            )


def package_name(entry: ZooEntry) -> str | None:
    """The file name when ``entry`` is stored as one BioImage Model Zoo package (a single ``.zip``), else None."""
    if len(entry.files) == 1 and str(entry.files[0].get("name", "")).lower().endswith(".zip"):
        return str(entry.files[0]["name"])
    return None


def bundled_folder(entry: ZooEntry) -> Path:
    """Where a bundled entry's files are: ``bundled/`` for a package (``bundled/<id>.zip``), else ``bundled/<id>/``."""
    return BUNDLED_DIR if package_name(entry) is not None else BUNDLED_DIR / entry.id


def resolve_model(ref: str | Path) -> Path:
    """Turn a ``--model`` value into a local model folder.

    ``ref`` is a model folder, its ``config.yaml``, a ``.zip`` package carrying a microrestore model (see
    :mod:`microrestore.zoo.package`), or a zoo id. Bundled zoo models are verified by sha256; other zoo models
    are fetched into the cache (or found there) and verified by sha256
    (:func:`microrestore.zoo.fetch.fetch_model`; ``MICRORESTORE_OFFLINE=1`` uses only the cache). A zoo model
    stored as a package is verified as a whole (the zip's sha256), then its model folder is extracted into the
    cache (:func:`microrestore.zoo.package.open_model_package`).
    """
    from microrestore.zoo.package import has_microrestore_model, open_model_package

    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        if path.name in ("config.yaml", "config.yml", "config.json"):
            return path.parent
        if path.suffix.lower() == ".zip":
            if not has_microrestore_model(path):
                raise InputError(
                    "this bioimage.io package carries no microrestore model (config.yaml and weights.safetensors); "
                    "load it through the bioimageio importer (microrestore.bioimage.load_bioimage_predictor)",
                    path,
                )
            return open_model_package(path)
        raise InputError("not a model folder, its config.yaml or a .zip package", path)
    known = entries()
    entry = known.get(str(ref))
    if entry is None:
        if any(sep in str(ref) for sep in ("/", "\\")) or str(ref).startswith("."):
            raise InputError("no such model folder", path)
        listing = ", ".join(sorted(known)) or "none"
        raise InputError(f"unknown model {str(ref)!r}: not a folder and not a zoo id (known ids: {listing})")
    if entry.bundled:
        folder = bundled_folder(entry)
        verify_files(entry, folder)
    else:
        from microrestore.zoo.fetch import fetch_model

        folder = fetch_model(entry)
    name = package_name(entry)
    if name is None:
        return folder
    return open_model_package(folder / name, sha256=str(entry.files[0]["sha256"]))

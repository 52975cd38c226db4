"""The zoo's catalogue: registry entries, where bundled models are, and sha256 verification.

The registry is one YAML file per model in the project's ``zoo/models/`` folder (shipped inside the wheel as
``microrestore/zoo/registry``). Everything here is local; downloads are :mod:`microrestore.zoo.fetch`,
packages :mod:`microrestore.zoo.package`, and :func:`microrestore.zoo.resolve_model` combines them.
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

"""Model references: zoo ids, bundled models and model folders.

The registry (:mod:`microrestore.zoo.catalog`) is one YAML file per model in the project's ``zoo/models/``
folder (shipped inside the wheel as ``microrestore/zoo/registry``). Small default models ship inside the
package under ``bundled/<id>/``; the others are downloaded on first use into a per-user cache
(:mod:`microrestore.zoo.fetch`). Either way, every file is verified against the sha256 recorded in the
registry every time it is used (:func:`verify_files`). A model may be stored as one BioImage Model Zoo package
(``bundled/<id>.zip`` or a downloaded ``.zip``) that carries microrestore's model folder; it is verified as a
whole, then opened natively (:mod:`microrestore.zoo.package`).
See ``docs/zoo.md``.
"""

from __future__ import annotations

from pathlib import Path

from microrestore.errors import InputError
from microrestore.zoo.catalog import (
    BUNDLED_DIR,
    PACKAGE_DIR,
    ZooEntry,
    bundled_folder,
    entries,
    package_name,
    registry_dir,
    sha256_of,
    verify_files,
)

__all__ = [
    "BUNDLED_DIR",
    "PACKAGE_DIR",
    "ZooEntry",
    "bundled_folder",
    "entries",
    "package_name",
    "registry_dir",
    "resolve_model",
    "sha256_of",
    "verify_files",
]


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

"""Zoo models stored as BioImage Model Zoo packages: safe native extraction, caching, and routing (no bioimageio)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from microrestore import zoo
from microrestore.bioimage.importer import is_bioimage_package
from microrestore.errors import InputError
from microrestore.plugins.registry import PredictOptions
from microrestore.zoo import catalog, package

BUNDLED = zoo.BUNDLED_DIR / "care-demo-2d.zip"


@pytest.fixture(autouse=True)
def _cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("MICRORESTORE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _members() -> dict[str, bytes]:
    with zipfile.ZipFile(BUNDLED) as archive:
        return {name: archive.read(name) for name in package.MODEL_MEMBERS}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("evil", ["../evil.yaml", "a/../../evil.yaml", "/etc/evil.yaml", "C:/evil.yaml", "a\\..\\x"])
def test_path_traversal_is_refused(tmp_path: Path, evil: str) -> None:
    bad = _zip(tmp_path / "bad.zip", {**_members(), evil: b"x: 1\n"})
    with pytest.raises(InputError, match="path traversal") as info:
        package.open_model_package(bad, tmp_path / "cache")
    assert repr(evil) in str(info.value) and "bad.zip" in str(info.value)
    with pytest.raises(InputError, match="path traversal"):
        zoo.resolve_model(bad)
    assert not (tmp_path / "evil.yaml").exists()
    assert not list((tmp_path / "cache").rglob("*.yaml"))  # nothing extracted at all


def test_zip_bombs_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members = _members()
    bomb = _zip(tmp_path / "bomb.zip", {**members, "weights.safetensors": bytes(64 * 2**20)})  # ~1000-fold
    with pytest.raises(InputError, match="zip bomb"):
        package.open_model_package(bomb, tmp_path / "cache")
    monkeypatch.setattr(package, "MAX_TOTAL_BYTES", 2**20)
    with pytest.raises(InputError, match="GiB"):
        package.open_model_package(BUNDLED, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_foreign_package_goes_to_the_bioimageio_importer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import microrestore.bioimage.importer as importer
    from microrestore import api
    from microrestore.plugins.manager import get_registry

    care = get_registry().methods["care"]

    def load(model: str, options: PredictOptions) -> object:
        return api.load_predictor(care, model, options)

    foreign = _zip(tmp_path / "foreign.zip", {"rdf.yaml": b"format_version: 0.5.4\n", "weights.pt": b"\0" * 10})
    assert is_bioimage_package(foreign) and is_bioimage_package(foreign, "care")
    assert not package.has_microrestore_model(foreign)
    assert is_bioimage_package(tmp_path / "missing.zip")  # the importer reports a missing file
    calls: list[Path] = []
    monkeypatch.setattr(importer, "load_bioimage_predictor", lambda path, options: calls.append(path) or "bioimageio")
    assert load(str(foreign), PredictOptions(device="cpu")) == "bioimageio"
    assert calls == [str(foreign)]
    with pytest.raises(InputError, match="no microrestore model"):
        zoo.resolve_model(foreign)
    # microrestore's own package is loaded natively, for its method only
    assert not is_bioimage_package(BUNDLED, "care") and is_bioimage_package(BUNDLED, "n2v")
    assert not is_bioimage_package(BUNDLED)
    assert load(str(BUNDLED), PredictOptions(device="cpu")) != "bioimageio" and len(calls) == 1


def test_extraction_is_cached_and_reverified(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    copy = tmp_path / "model.zip"
    copy.write_bytes(BUNDLED.read_bytes())
    folder = package.open_model_package(copy, cache)
    assert folder.parent == cache / "packages" and folder.name == zoo.sha256_of(copy)[:16]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == _members()
    stamp = (folder / "weights.safetensors").stat().st_mtime_ns
    assert package.open_model_package(copy, cache) == folder
    assert (folder / "weights.safetensors").stat().st_mtime_ns == stamp  # cached, not extracted again
    assert not [p for p in (cache / "packages").iterdir() if p.name.startswith(".")]  # no temporary folders left
    # a damaged extraction is noticed and replaced
    (folder / "weights.safetensors").write_bytes(b"damaged")
    assert package.open_model_package(copy, cache) == folder
    assert (folder / "weights.safetensors").read_bytes() == _members()["weights.safetensors"]
    # a changed zip gets a new folder
    members = _members()
    members["config.yaml"] += b"# changed\n"
    _zip(copy, members)
    other = package.open_model_package(copy, cache)
    assert other != folder and (other / "config.yaml").read_bytes().endswith(b"# changed\n")
    assert (folder / "config.yaml").read_bytes() == _members()["config.yaml"]


def test_bundled_package_is_verified_on_every_use(monkeypatch: pytest.MonkeyPatch, _cache: Path) -> None:
    hashed: list[str] = []
    real = catalog.sha256_of
    monkeypatch.setattr(catalog, "sha256_of", lambda path, *a: hashed.append(Path(path).name) or real(path, *a))
    first = zoo.resolve_model("care-demo-2d")
    second = zoo.resolve_model("care-demo-2d")
    assert first == second and first.parent == _cache / "packages"
    assert hashed == ["care-demo-2d.zip", "care-demo-2d.zip"]


def test_native_package_load_matches_the_model_folder() -> None:
    from microrestore import api

    folder = zoo.resolve_model("care-demo-2d")
    rng = np.random.default_rng(0)
    image = rng.poisson(20 * rng.random((48, 48))).astype(np.uint16)
    expected = api.restore(image, "care", model=str(folder), axes="YX")
    np.testing.assert_array_equal(api.restore(image, "care", model=str(BUNDLED), axes="YX"), expected)


def test_native_package_load_imports_no_bioimageio(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from microrestore_care import load\n"
        "from microrestore.plugins.registry import PredictOptions\n"
        f"load({str(BUNDLED)!r}, PredictOptions(device='cpu'))\n"
        "assert not [m for m in sys.modules if m.startswith('bioimageio')], 'bioimageio imported'\n"
    )
    env = {**__import__("os").environ, "MICRORESTORE_CACHE": str(tmp_path / "cache")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_unwritable_cache_falls_back_to_a_temporary_folder(tmp_path, monkeypatch):
    from microrestore.zoo.package import packages_dir

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MICRORESTORE_CACHE", str(blocker / "cache"))  # cannot be created, even by root
    folder = packages_dir()
    assert not str(folder).startswith(str(blocker))
    folder.mkdir(parents=True, exist_ok=True)


def test_bioimageio_ids_go_to_the_importer() -> None:
    assert is_bioimage_package("bioimageio:affable-shark")
    assert is_bioimage_package("bioimageio:affable-shark", "care")


def test_empty_bioimageio_id_is_a_one_line_error() -> None:
    pytest.importorskip("bioimageio.core")
    from microrestore.bioimage import load_bioimage_predictor

    with pytest.raises(InputError, match="give a bioimage"):
        load_bioimage_predictor("bioimageio:", PredictOptions(device="cpu"))


@pytest.mark.skipif(
    not os.environ.get("MICRORESTORE_ONLINE_TESTS"), reason="needs the network (set MICRORESTORE_ONLINE_TESTS=1)"
)
def test_bioimageio_model_by_id_online() -> None:
    from microrestore.bioimage import load_bioimage_predictor

    predictor = load_bioimage_predictor("bioimageio:affable-shark", PredictOptions(device="cpu"))
    image = np.random.default_rng(0).random((128, 128), dtype=np.float32)
    from microrestore.io.images import ImageData

    assert predictor.predict(ImageData(image, "YX")).shape == image.shape

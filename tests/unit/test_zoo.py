"""Zoo references, the download cache's settings and offline checks (no network)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from microrestore import zoo
from microrestore.errors import InputError
from microrestore.zoo import ZooEntry, fetch

SHA = "0" * 64


def _entry(**changes) -> ZooEntry:
    values = dict(
        id="m1",
        method="care",
        task="denoise",
        version="2",
        description="",
        license="BSD-3-Clause",
        files=[{"name": "config.yaml", "sha256": SHA}, {"name": "weights.safetensors", "sha256": SHA}],
    )
    values.update(changes)
    return ZooEntry(**values)


@pytest.fixture(autouse=True)
def _no_zoo_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MICRORESTORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MICRORESTORE_ZOO_URL", raising=False)
    monkeypatch.delenv("MICRORESTORE_OFFLINE", raising=False)


def test_cache_dir_from_env_or_platformdirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import platformdirs

    assert fetch.cache_dir() == tmp_path / "cache"
    monkeypatch.setenv("MICRORESTORE_CACHE", "")
    assert fetch.cache_dir() == Path(platformdirs.user_cache_dir("microrestore"))
    monkeypatch.delenv("MICRORESTORE_CACHE")
    assert fetch.cache_dir() == Path(platformdirs.user_cache_dir("microrestore"))


def test_base_url_and_file_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _entry(files=[{"name": "a.yaml", "sha256": SHA, "url": "https://example.org/x/a.yaml"}])
    assert fetch.base_url() is None
    assert fetch.file_url(entry, entry.files[0]) == "https://example.org/x/a.yaml"
    monkeypatch.setenv("MICRORESTORE_ZOO_URL", "http://127.0.0.1:8000/zoo/")
    assert fetch.base_url() == "http://127.0.0.1:8000/zoo"
    assert fetch.file_url(entry, entry.files[0]) == "http://127.0.0.1:8000/zoo/m1/a.yaml"


def test_file_without_url_or_with_a_non_http_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _entry()
    with pytest.raises(InputError, match="MICRORESTORE_ZOO_URL"):
        fetch.file_url(entry, entry.files[0])
    with pytest.raises(InputError, match="only http"):
        fetch.file_url(entry, {"name": "a", "sha256": SHA, "url": "file:///etc/passwd"})


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)])
def test_offline_mode_from_env(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("MICRORESTORE_OFFLINE", value)
    assert fetch.offline_mode() is expected
    assert fetch.offline_mode(True) is True and fetch.offline_mode(False) is False


def test_model_dir_is_per_id_and_version(tmp_path: Path) -> None:
    assert fetch.model_dir(_entry()) == tmp_path / "cache" / "m1" / "2"
    assert fetch.model_dir(_entry(version=5)) == tmp_path / "cache" / "m1" / "5"


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".hidden", "", "c:x"])
def test_names_that_would_escape_the_cache_are_refused(name: str) -> None:
    with pytest.raises(InputError, match="not a plain file name"):
        fetch.fetch_model(_entry(files=[{"name": name, "sha256": SHA}]), offline=True)
    with pytest.raises(InputError, match="not a plain file name"):
        fetch.model_dir(_entry(id=name or "."))


def test_entry_needs_files_with_sha256() -> None:
    with pytest.raises(InputError, match="lists no files"):
        fetch.fetch_model(_entry(files=[]), offline=True)
    with pytest.raises(InputError, match="no valid sha256"):
        fetch.fetch_model(_entry(files=[{"name": "a", "sha256": "abc"}]), offline=True)


def _bundled_members() -> dict[str, bytes]:
    """The model folder carried by the bundled care-demo-2d package."""
    with zipfile.ZipFile(zoo.BUNDLED_DIR / "care-demo-2d.zip") as archive:
        return {name: archive.read(name) for name in ("config.yaml", "weights.safetensors")}


def test_offline_uses_only_a_verified_cache(tmp_path: Path) -> None:
    members = _bundled_members()
    files = [{"name": n, "sha256": hashlib.sha256(b).hexdigest()} for n, b in members.items()]
    entry = _entry(files=files)
    with pytest.raises(InputError, match="model 'm1' is not in the cache and offline mode is on"):
        fetch.fetch_model(entry, offline=True)
    assert fetch.cached_state(entry) == "no"
    folder = fetch.model_dir(entry)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_bytes(members["config.yaml"])
    assert fetch.cached_state(entry) == "partial"
    with pytest.raises(InputError, match="offline mode is on"):
        fetch.fetch_model(entry, offline=True)
    for name, data in members.items():
        (folder / name).write_bytes(data)
    assert fetch.cached_state(entry) == "yes"
    seen: list[tuple[str, str]] = []
    assert fetch.fetch_model(entry, offline=True, on_file=lambda n, a: seen.append((n, a))) == folder
    assert {a for _, a in seen} == {"cached"} and len(seen) == len(files)
    (folder / "config.yaml").write_text("tampered\n")
    with pytest.raises(InputError, match="sha256"):
        fetch.fetch_model(entry, offline=True)


def test_resolve_model_keeps_folders_and_opens_the_bundled_package(tmp_path: Path) -> None:
    folder = zoo.resolve_model("care-demo-2d")
    assert folder.parent == tmp_path / "cache" / "packages"  # the package's model folder, extracted once
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "weights.safetensors"]
    assert zoo.resolve_model(folder) == folder
    assert zoo.resolve_model(folder / "config.yaml") == folder
    assert zoo.resolve_model(zoo.BUNDLED_DIR / "care-demo-2d.zip") == folder  # the same zip, the same folder
    with pytest.raises(InputError, match="unknown model"):
        zoo.resolve_model("no-such-model")


def test_resolve_model_fetches_non_bundled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry = _entry(id="remote")
    monkeypatch.setattr(zoo, "entries", lambda: {"remote": entry})
    monkeypatch.setenv("MICRORESTORE_OFFLINE", "1")
    with pytest.raises(InputError, match="'remote' is not in the cache and offline mode is on"):
        zoo.resolve_model("remote")
    monkeypatch.setenv("MICRORESTORE_OFFLINE", "0")
    with pytest.raises(InputError, match=r"gives no URL for config\.yaml"):
        zoo.resolve_model("remote")
    assert fetch.cached_state(entry) == "no"


def test_fetch_module_imports_no_pooch() -> None:
    code = "import sys, microrestore.zoo.fetch, microrestore.cli.zoo; assert 'pooch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_zoo_cli_list_shows_cached_column(cli) -> None:
    import json

    rows = json.loads(cli("zoo", "list", "--json").stdout)
    bundled = next(r for r in rows if r["id"] == "care-demo-2d")
    assert bundled["bundled"] is True and bundled["cached"] is None
    assert "cached" in cli("zoo", "list").stdout


def test_zoo_cli_pull_of_a_bundled_model(cli) -> None:
    result = cli("zoo", "pull", "care-demo-2d")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(zoo.resolve_model("care-demo-2d"))
    assert "nothing to download" in result.stderr
    assert cli("zoo", "pull", "no-such-model").exit_code == 2


def test_default_models_are_registered_and_bundled() -> None:
    """A method's default model is a zoo entry whose package ships with microrestore (it works offline)."""
    from microrestore.plugins.manager import get_registry

    registered = zoo.entries()
    for name, method in get_registry().methods.items():
        if method.default_model is None:
            continue
        entry = registered.get(method.default_model)
        assert entry is not None, f"{name}'s default model {method.default_model!r} is not in the zoo registry"
        assert entry.method == name and entry.bundled and entry.files, f"{entry.id} must be bundled"
        assert zoo.bundled_folder(entry).is_dir()

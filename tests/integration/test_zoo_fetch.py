"""Fetching non-bundled zoo models over real HTTP (a loopback server in a thread), sha256-verified and cached."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml

from microrestore import zoo
from microrestore.errors import InputError, MicrorestoreError
from microrestore.zoo import catalog, fetch

MODEL_ID = "care-fetch-test"
FILES = ("config.yaml", "weights.safetensors", "metrics.csv")


def _model_files() -> dict[str, bytes]:
    """A folder-style copy of care-demo-2d: the model folder carried by the bundled package, plus a metrics.csv."""
    with zipfile.ZipFile(zoo.BUNDLED_DIR / "care-demo-2d.zip") as archive:
        files = {name: archive.read(name) for name in FILES[:2]}
    files["metrics.csv"] = b"step,loss\n1500,0.05\n"
    return files


@dataclass
class Server:
    """A loopback HTTP server serving ``root`` laid out as ``<id>/<name>``."""

    root: Path
    url: str
    fail_first: int = 0
    paths: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: Server) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                state.paths.append(self.path)
                fail = state.fail_first > 0
                if fail:
                    state.fail_first -= 1
            if fail:
                state.statuses.append(500)
                self.send_error(500, "injected failure")
                return
            super().do_GET()

        def send_response(self, code: int, message: str | None = None) -> None:
            if code != 500:
                state.statuses.append(code)
            super().send_response(code, message)

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

    return Handler


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "served"
    (root / MODEL_ID).mkdir(parents=True)
    for name, data in _model_files().items():
        (root / MODEL_ID / name).write_bytes(data)
    state = Server(root=root, url="")
    handler = functools.partial(_handler(state), directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    host, port = httpd.server_address[:2]
    state.url = f"http://{host}:{port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry with the bundled care-demo-2d plus a non-bundled copy of it under MODEL_ID."""
    folder = tmp_path / "registry"
    folder.mkdir()
    source = zoo.registry_dir() / "care-demo-2d.yaml"
    shutil.copy2(source, folder / source.name)
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data.update(id=MODEL_ID, bundled=False, version="3", description="non-bundled copy of care-demo-2d")
    data["files"] = [{"name": n, "sha256": hashlib.sha256(b).hexdigest()} for n, b in _model_files().items()]
    (folder / f"{MODEL_ID}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setattr(catalog, "registry_dir", lambda: folder)
    return folder


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Server, registry: Path) -> Path:
    """Fresh cache, the mirror URL pointing at the loopback server, online, fast retries; returns the cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MICRORESTORE_CACHE", str(cache))
    monkeypatch.setenv("MICRORESTORE_ZOO_URL", server.url)
    monkeypatch.delenv("MICRORESTORE_OFFLINE", raising=False)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(fetch, "BACKOFF_S", 0.01)
    monkeypatch.setattr(fetch, "TIMEOUT_S", 10.0)
    return cache


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_pull_into_fresh_cache_then_restore(cli, env: Path, server: Server) -> None:
    from microrestore import api

    result = cli("zoo", "pull", MODEL_ID)
    assert result.exit_code == 0, result.output
    folder = env / MODEL_ID / "3"
    assert result.stdout.strip() == str(folder)
    assert "3 file(s)" in result.stderr and "MB" in result.stderr and " s (" in result.stderr
    assert "3 downloaded" in result.stderr
    assert _files_under(env) == sorted(f"{MODEL_ID}/3/{name}" for name in FILES)
    assert sorted(server.paths) == sorted(f"/{MODEL_ID}/{name}" for name in FILES)

    rows = {r["id"]: r for r in json.loads(cli("zoo", "list", "--json").stdout)}
    assert rows[MODEL_ID]["cached"] == "yes" and rows["care-demo-2d"]["cached"] is None
    assert "cached" in cli("zoo", "list").stdout

    rng = np.random.default_rng(0)
    image = rng.poisson(20 * rng.random((64, 64))).astype(np.uint16)
    restored = api.restore(image, "care", model=MODEL_ID, axes="YX")
    assert restored.shape == image.shape and restored.dtype == np.float32 and np.isfinite(restored).all()
    # the same bytes as the bundled model, so the same result
    np.testing.assert_array_equal(restored, api.restore(image, "care", model="care-demo-2d", axes="YX"))
    assert len(server.paths) == len(FILES)  # using the cached model downloads nothing

    again = cli("zoo", "pull", MODEL_ID)
    assert again.exit_code == 0 and "3 already cached" in again.stderr
    assert len(server.paths) == len(FILES)

    verified = cli("zoo", "verify")
    assert verified.exit_code == 0, verified.output
    assert f"ok  {MODEL_ID} (cached)" in verified.stderr and "1 cached" in verified.stderr


def test_corrupted_download_is_refused_and_not_cached(cli, env: Path, server: Server) -> None:
    _corrupt(server.root / MODEL_ID / "weights.safetensors")
    with pytest.raises(InputError) as info:
        zoo.resolve_model(MODEL_ID)
    message = str(info.value)
    assert "\n" not in message
    assert MODEL_ID in message and "weights.safetensors" in message and "sha256" in message
    assert "nothing was cached" in message
    cached = _files_under(env)
    assert f"{MODEL_ID}/3/weights.safetensors" not in cached
    # only verified files remain (no pooch temporary file, no unverified download)
    expected = {f["name"]: f["sha256"] for f in zoo.entries()[MODEL_ID].files}
    for rel in cached:
        path = env / rel
        assert zoo.sha256_of(path) == expected[path.name]
    # weights are never retried on a hash mismatch: one request for it
    assert server.paths.count(f"/{MODEL_ID}/weights.safetensors") == 1

    result = cli("zoo", "pull", MODEL_ID)
    assert result.exit_code == 2
    assert "weights.safetensors" in result.stderr and "sha256" in result.stderr
    assert f"{MODEL_ID}/3/weights.safetensors" not in _files_under(env)


def test_server_errors_are_retried(env: Path, server: Server) -> None:
    server.fail_first = 2
    folder = fetch.fetch_model(zoo.entries()[MODEL_ID])
    assert folder == env / MODEL_ID / "3"
    assert server.statuses[:2] == [500, 500]
    first = f"/{MODEL_ID}/{FILES[0]}"
    assert server.paths[:3] == [first, first, first]  # two failures, then served
    zoo.verify_files(zoo.entries()[MODEL_ID], folder)


def test_server_that_keeps_failing_gives_up_after_three_attempts(env: Path, server: Server) -> None:
    server.fail_first = 100
    with pytest.raises(MicrorestoreError) as info:
        zoo.resolve_model(MODEL_ID)
    assert not isinstance(info.value, InputError)
    assert "after 3 attempt(s)" in str(info.value) and "HTTP 500" in str(info.value)
    assert len(server.paths) == 3
    assert _files_under(env) == []


def test_missing_file_on_server_is_an_input_error(env: Path, server: Server) -> None:
    (server.root / MODEL_ID / "metrics.csv").unlink()
    with pytest.raises(InputError, match=r"HTTP 404 for metrics\.csv"):
        zoo.resolve_model(MODEL_ID)
    assert server.paths.count(f"/{MODEL_ID}/metrics.csv") == 1  # a 404 is not retried
    assert f"{MODEL_ID}/3/metrics.csv" not in _files_under(env)


def test_offline_with_empty_cache(cli, env: Path, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICRORESTORE_OFFLINE", "1")
    with pytest.raises(InputError, match=f"model '{MODEL_ID}' is not in the cache and offline mode is on"):
        zoo.resolve_model(MODEL_ID)
    monkeypatch.delenv("MICRORESTORE_OFFLINE")
    result = cli("zoo", "pull", MODEL_ID, "--offline")
    assert result.exit_code == 2 and "offline mode is on" in result.stderr
    assert server.paths == []
    assert _files_under(env) == []


def test_offline_after_pull(cli, env: Path, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("zoo", "pull", MODEL_ID).exit_code == 0
    served = len(server.paths)
    monkeypatch.setenv("MICRORESTORE_OFFLINE", "1")
    assert zoo.resolve_model(MODEL_ID) == env / MODEL_ID / "3"
    result = cli("zoo", "pull", MODEL_ID)
    assert result.exit_code == 0 and "0 downloaded" in result.stderr
    assert len(server.paths) == served

    # offline still verifies: a damaged cached file is refused, not used
    _corrupt(env / MODEL_ID / "3" / "weights.safetensors")
    with pytest.raises(InputError, match="sha256"):
        zoo.resolve_model(MODEL_ID)
    assert cli("zoo", "verify").exit_code == 2
    assert len(server.paths) == served


def test_damaged_cached_file_is_downloaded_again_when_online(env: Path, server: Server) -> None:
    entry = zoo.entries()[MODEL_ID]
    folder = fetch.fetch_model(entry)
    _corrupt(folder / "weights.safetensors")
    server.paths.clear()
    assert fetch.fetch_model(entry) == folder
    assert server.paths == [f"/{MODEL_ID}/weights.safetensors"]
    zoo.verify_files(entry, folder)


def test_environment_is_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: Path, server: Server):
    # fetch was imported at the top of this module; the variables below are set after that
    other = tmp_path / "other-cache"
    monkeypatch.setenv("MICRORESTORE_CACHE", str(other))
    assert fetch.cache_dir() == other
    assert zoo.resolve_model(MODEL_ID) == other / MODEL_ID / "3"
    assert _files_under(env) == []

    monkeypatch.setenv("MICRORESTORE_CACHE", str(tmp_path / "third"))
    monkeypatch.setenv("MICRORESTORE_ZOO_URL", "http://127.0.0.1:9/nowhere")  # discard port: refused
    monkeypatch.setattr(fetch, "ATTEMPTS", 1)
    with pytest.raises(MicrorestoreError, match=r"127\.0\.0\.1:9/nowhere"):
        zoo.resolve_model(MODEL_ID)
    monkeypatch.setenv("MICRORESTORE_ZOO_URL", server.url + "/")
    assert zoo.resolve_model(MODEL_ID) == tmp_path / "third" / MODEL_ID / "3"


def test_damaged_cached_file_is_dropped_when_the_server_copy_is_bad_too(env: Path, server: Server) -> None:
    entry = zoo.entries()[MODEL_ID]
    folder = fetch.fetch_model(entry)
    _corrupt(folder / "weights.safetensors")
    _corrupt(server.root / MODEL_ID / "weights.safetensors")
    with pytest.raises(InputError, match="nothing was cached"):
        fetch.fetch_model(entry)
    assert not (folder / "weights.safetensors").exists()
    assert fetch.cached_state(entry) == "partial"


def test_fetched_package_is_verified_then_opened_natively(cli, env: Path, server: Server, registry: Path) -> None:
    """A non-bundled entry stored as one BioImage Model Zoo package: downloaded, sha256-checked, extracted once."""
    package_id = "care-fetch-package"
    (server.root / package_id).mkdir()
    shutil.copy2(zoo.BUNDLED_DIR / "care-demo-2d.zip", server.root / package_id / "model.zip")
    data = yaml.safe_load((registry / "care-demo-2d.yaml").read_text(encoding="utf-8"))
    data.update(id=package_id, bundled=False, version="1")
    data["files"] = [{"name": "model.zip", "sha256": data["files"][0]["sha256"]}]
    (registry / f"{package_id}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")

    result = cli("zoo", "pull", package_id)
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip())
    assert folder.parent == env / "packages"
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "weights.safetensors"]
    assert (env / package_id / "1" / "model.zip").is_file()
    assert zoo.resolve_model(package_id) == folder == zoo.resolve_model("care-demo-2d")  # same zip, same folder
    assert server.paths == [f"/{package_id}/model.zip"]

    _corrupt(env / package_id / "1" / "model.zip")  # a damaged cached zip is downloaded again, then opened
    assert zoo.resolve_model(package_id) == folder
    assert server.paths == [f"/{package_id}/model.zip"] * 2

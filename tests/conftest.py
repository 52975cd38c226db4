"""Fixtures shared by the test layers (unit, integration, e2e)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

try:  # CI runs the same examples every time; locally hypothesis explores new ones.
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, deadline=None)
    settings.register_profile("dev", deadline=None)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")
except ImportError:  # pragma: no cover
    pass

#: Real data beside the project (../shared/data); absent in a user's clone, so tests that need it skip.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data, or skip the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _clean_plugin_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees freshly loaded plugins and no plugin-related environment from the caller."""
    from microrestore.plugins import reset

    for name in (
        "MICRORESTORE_LOAD_PLUGINS",
        "MICRORESTORE_STRICT_PLUGINS",
        "MICRORESTORE_TRACE_PLUGINS",
        "MICRORESTORE_ZOO_URL",
        "MICRORESTORE_OFFLINE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MICRORESTORE_CACHE", str(Path(os.environ.get("TMPDIR", "/tmp")) / "microrestore-test-cache"))
    reset()
    yield
    reset()


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: tiny networks are fastest so, and do not fight other processes for the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def torch_one_thread(one_torch_thread: None) -> None:
    """The same as ``one_torch_thread``, under the name the SIM tests use."""


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``microrestore ARGS`` in-process; returns exit code, stdout and stderr."""
    from microrestore.cli.app import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


EXAMPLE_PLUGIN = Path(__file__).resolve().parents[1] / "docs" / "examples" / "microrestore-example-plugin"


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Put a distribution with ``microrestore.plugins`` entry points on sys.path (as pip would).

    ``install_plugin(dist, version, entry_points={name: module}, modules={module: source}, path=None)``
    writes the modules (unless ``path`` already holds them) and a ``.dist-info`` folder, then reloads plugins.
    """
    import importlib
    import sys

    from microrestore.plugins import reset

    def install(
        dist: str,
        version: str,
        entry_points: dict[str, str],
        modules: dict[str, str] | None = None,
        path: Path | None = None,
    ) -> Path:
        root = tmp_path / f"site-{dist}"
        root.mkdir()
        for module, source in (modules or {}).items():
            (root / f"{module}.py").write_text(source)
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = ["[microrestore.plugins]"] + [f"{k} = {v}" for k, v in entry_points.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(root))
        if path is not None:
            monkeypatch.syspath_prepend(str(path))
        for module in list(modules or {}) + list(entry_points.values()):
            sys.modules.pop(module.split(":")[0], None)
        importlib.invalidate_caches()
        reset()
        return root

    return install

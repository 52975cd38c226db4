"""Fixtures shared by the test layers (unit, integration, e2e)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

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

    for name in ("MICRORESTORE_LOAD_PLUGINS", "MICRORESTORE_STRICT_PLUGINS", "MICRORESTORE_TRACE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MICRORESTORE_CACHE", str(Path(os.environ.get("TMPDIR", "/tmp")) / "microrestore-test-cache"))
    reset()
    yield
    reset()


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

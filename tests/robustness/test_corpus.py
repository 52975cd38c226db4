"""The corpus builder itself: every registered case builds, the script writes them all, names are unique."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness import corpus


def test_the_script_builds_every_registered_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert corpus.main([str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"{len(corpus.REGISTRY)} cases in {tmp_path}"
    assert sorted(p.name for p in tmp_path.iterdir()) == corpus.names()
    for name in corpus.names():
        assert any((tmp_path / name).iterdir()), name


def test_groups_and_registration() -> None:
    assert set(corpus.names("model-config")) <= set(corpus.names())
    assert "package-arch-py" in corpus.names("foreign-package")

    def other(folder: Path) -> corpus.Case:
        return corpus.Case(folder)

    with pytest.raises(ValueError, match="registered twice"):
        corpus.case("package-arch-py")(other)
    assert corpus.REGISTRY["package-arch-py"].group == "foreign-package"


def test_usage_without_a_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert corpus.main([]) == 2
    assert "usage" in capsys.readouterr().err

"""The README's install lines keep a user's own (CUDA) torch and install the tested one only when none is there."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "no bash block in the Quick start"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_no_quick_start_line_replaces_an_installed_torch() -> None:
    lines = _quick_start()
    torch_lines = [line for line in lines if re.search(r"pip install[^#]*\btorch\b", line)]
    assert torch_lines, "the Quick start should say which torch is tested"
    for line in torch_lines:  # only ever behind a check that no torch is importable
        assert re.match(r'python -c "import torch" 2>/dev/null \|\| pip install', line), line
    for line in lines:
        if line not in torch_lines and "pip install" in line:
            assert "torch" not in line.split("#")[0], line


def test_the_package_asks_only_for_a_minimum_torch() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    deps = text.split("\ndependencies = [", 1)[1].split("]", 1)[0]
    torch = re.findall(r'"(torch\b[^"]*)"', deps)
    assert torch == ["torch>=2.1"], "a pin or upper bound would make pip replace a user's CUDA torch"


def _run_first_line(tmp_path: Path, python_works: bool) -> str:
    """Run the Quick start's torch line with ``pip`` replaced by echo and ``python`` that has torch or not."""
    bin_dir = tmp_path / ("with" if python_works else "without")
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f"#!/bin/sh\nexit {0 if python_works else 1}\n")
    (bin_dir / "pip").write_text('#!/bin/sh\necho "pip $*"\n')
    for name in ("python", "pip"):
        (bin_dir / name).chmod(0o755)
    line = next(line for line in _quick_start() if "torch" in line)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, check=True).stdout


def test_the_torch_line_installs_only_when_torch_is_missing(tmp_path: Path) -> None:
    assert _run_first_line(tmp_path, python_works=True) == ""
    assert _run_first_line(tmp_path, python_works=False).strip() == "pip install torch==2.13.0"


def test_ci_still_installs_the_tested_torch_first() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.index('pip install --quiet "torch==2.13.0"') < ci.index('pip install --quiet -e ".[test]"')

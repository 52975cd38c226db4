"""microrestore.plugin_api: the one public module plugins import, light at import, complete, and used."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from microrestore import plugin_api as api
from tests.conftest import EXAMPLE_PLUGIN

ROOT = Path(__file__).resolve().parents[2]
#: Plugins built on the public API: they import nothing else from microrestore.
ON_THE_API = [
    ROOT / "plugins" / "microrestore_care",
    ROOT / "plugins" / "microrestore_n2v",
    ROOT / "plugins" / "microrestore_rdl_denoise",
    EXAMPLE_PLUGIN / "src" / "microrestore_example",
]


def core_imports(package: Path) -> set[tuple[str, str]]:
    """``(module, name)`` of every ``microrestore`` import in a plugin package (its own modules excluded)."""
    found = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "microrestore":
                found |= {(node.module or "", alias.name) for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {(a.name, "") for a in node.names if a.name.split(".")[0] == "microrestore"}
    return found


def test_every_public_name_resolves():
    assert len(set(api.__all__)) == len(api.__all__)
    missing = [name for name in api.__all__ if getattr(api, name, None) is None]
    assert not missing


def test_importing_the_api_imports_no_torch():
    code = "import sys, microrestore.plugin_api, microrestore_care, microrestore_n2v; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("package", ON_THE_API, ids=lambda p: p.name)
def test_plugin_imports_only_the_public_api(package):
    outside = {f"{m}.{n}" for m, n in core_imports(package) if m != "microrestore.plugin_api"}
    assert not outside, f"{package.name} imports from the core outside microrestore.plugin_api: {sorted(outside)}"


def test_the_trainable_built_ins_on_the_api_share_the_training_options():
    from microrestore.plugins.manager import get_registry

    for name in ("care", "n2v", "rdl-denoise"):
        assert issubclass(get_registry().method(name).config_schema, api.TrainingOptions), name

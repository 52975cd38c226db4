"""Security properties checked over the package source and at run time.

Zip path traversal and zip bombs are refused by ``tests/unit/test_zoo_package.py``; sha256 checks of downloads
by ``tests/integration/test_zoo_fetch.py``. Here: no unpickling anywhere in the package, downloads only through
the sha256-checking fetcher, and plugin failures at call time reported with the plugin's name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.e2e.test_cli import _assert_one_line_error

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.glob("microrestore/**/*.py"), *ROOT.glob("plugins/*/**/*.py")])


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found.append((ast.unparse(node.func), node))
    return found


def test_the_sources_were_found() -> None:
    assert len(SOURCES) > 50 and any(p.name == "checkpoints.py" for p in SOURCES)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_is_unpickled(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            bad = {n for n in names if n and n.split(".")[0] in {"pickle", "cPickle", "dill", "shelve", "marshal"}}
            assert not bad, f"{path}: imports {bad}"
    for name, call in _calls(tree):
        keywords = {k.arg: k.value for k in call.keywords}
        if name.endswith("torch.load") or (name == "load" and "weights_only" in keywords):
            value = keywords.get("weights_only")
            assert isinstance(value, ast.Constant) and value.value is True, f"{path}:{call.lineno}: {name} unpickles"
        if name in {"np.load", "numpy.load"}:
            value = keywords.get("allow_pickle")
            assert value is None or (isinstance(value, ast.Constant) and value.value is False), f"{path}:{call.lineno}"
        if name in {"yaml.load", "yaml.unsafe_load", "yaml.full_load"}:
            pytest.fail(f"{path}:{call.lineno}: {name} can build arbitrary objects; use yaml.safe_load")
        assert name not in {"eval", "exec"}, f"{path}:{call.lineno}: {name}"
        if name.endswith(("broadcast_object_list", "all_gather_object", "gather_object", "scatter_object_list")):
            pytest.fail(f"{path}:{call.lineno}: {name} pickles; send tensors or JSON bytes")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_downloads_only_through_pooch_with_a_hash(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for pattern in (r"urllib\.request", r"urlopen\(", r"requests\.(get|post)\(", r"http\.client"):
        assert not re.search(pattern, text), f"{path}: {pattern} (downloads go through microrestore.zoo.fetch)"
    tree = ast.parse(text)
    for name, call in _calls(tree):
        if name == "pooch.retrieve":
            keywords = {k.arg: k.value for k in call.keywords}
            hashed = keywords.get("known_hash")
            assert hashed is not None and not (isinstance(hashed, ast.Constant) and hashed.value is None), (
                f"{path}:{call.lineno}: pooch.retrieve without a known_hash"
            )


BROKEN = """
from microrestore import hookimpl
from microrestore.plugins.registry import Method, Reader


def load(model, options):
    raise ValueError("the weights went missing")


class Predictor:
    def predict(self, image, out=None):
        raise ZeroDivisionError("division by zero in predict")


@hookimpl
def register_methods(register):
    register(Method(name="fragile", task="denoise", summary="breaks", load=load, needs_model=False))
    register(Method(name="shaky", task="denoise", summary="breaks later", load=lambda m, o: Predictor(),
                    needs_model=False))


@hookimpl
def register_readers(register):
    def read(path, axes=None):
        raise KeyError("no such field")
    register(Reader(name="weird", suffixes=(".weird",), read=read))
"""


def test_plugin_failures_at_call_time_name_the_plugin(cli, install_plugin, tmp_path: Path) -> None:
    install_plugin("microrestore-broken", "2.5", {"broken": "broken_plugin"}, {"broken_plugin": BROKEN})
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.full((16, 16), 100, np.uint16))
    for method, needle in (("fragile", "fragile load: ValueError"), ("shaky", "shaky predict: ZeroDivisionError")):
        result = cli("denoise", src, "-o", tmp_path / "out.tif", "--method", method)
        assert result.exit_code == 1, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert "plugin broken 2.5 failed in" in lines[0] and needle in lines[0], lines[0]
        assert not (tmp_path / "out.tif").exists()
    (tmp_path / "x.weird").write_bytes(b"data")
    result = cli("denoise", tmp_path / "x.weird", "-o", tmp_path / "out.tif", "--method", "nl-means")
    assert result.exit_code == 1 and "plugin broken failed in reader weird: KeyError" in result.stderr


def test_plugin_input_errors_keep_their_exit_status(cli, tmp_path: Path) -> None:
    # Errors a plugin raises on purpose (InputError) are the user's, not the plugin's: exit 2, their own text.
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.full((4, 4), 100, np.uint16))
    result = cli("denoise", src, "-o", tmp_path / "out.tif", "--method", "nl-means")
    _assert_one_line_error(result, "noise model")

"""The package's layers: no import cycle inside ``microrestore/``, and I/O that never loads a plugin.

The import graph is read statically (``ast``) from every module of the package. Every import counts, wherever
it is written: at module level, inside ``if TYPE_CHECKING:``, and inside a function (a lazy import). A lazy
import only postpones the cost of a dependency; it does not change its direction, so a module that imports
another lazily still depends on it, and a cycle through lazy imports is still a cycle (it only stops failing at
import time). ``from package import name`` is an edge to ``package.name`` when that is a module, else to the
package's ``__init__``; the implicit import of a module's parent packages is not an edge (every submodule would
otherwise form a cycle with a package ``__init__`` that imports it).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "microrestore"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    known = modules()
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:
        base = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        yield sub if sub in known else target


def imports_of(module: str) -> set[str]:
    """The package's modules that ``module`` imports, anywhere in its code (module level, lazy, TYPE_CHECKING)."""
    path = modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(t for t in _targets(module, path.name == "__init__.py", node) if t in modules())
    found.discard(module)
    return found


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """``{module: modules it imports}`` for the whole package."""
    return {name: frozenset(imports_of(name)) for name in modules()}


def cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert len(graph) > 100
    assert "microrestore.errors" in graph["microrestore.io.images"]  # module level
    assert "microrestore.engine.normalization" in graph["microrestore.configs"]  # inside a method
    assert "microrestore.io.images" in graph["microrestore.plugins.registry"]  # under TYPE_CHECKING
    assert "microrestore.plugins.hookspecs" in graph["microrestore.plugins.manager"]  # from package import module


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_no_import_cycle_in_the_package() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles (break them; lazy imports count too):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_io_never_imports_the_plugins() -> None:
    for module, imported in import_graph().items():
        if module.startswith("microrestore.io"):
            assert not {m for m in imported if m.startswith("microrestore.plugins")}, module


def test_reading_and_writing_a_tiff_loads_no_plugin(tmp_path: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from microrestore.io import read_image, write_image\n"
        f"folder = Path({str(tmp_path)!r})\n"
        "write_image(folder / 'a.tif', np.arange(64, dtype=np.uint16).reshape(8, 8), 'YX')\n"
        "image = read_image(folder / 'a.tif')\n"
        "assert image.data.sum() == 2016\n"
        "from microrestore.plugins import manager\n"
        "assert manager._host is None, 'the plugin host was built'\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('microrestore_'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_a_plugin_format_still_loads_the_plugins_when_needed(tmp_path: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from microrestore.io import read_image, write_image\n"
        f"out = Path({str(tmp_path)!r}) / 'a.ome.zarr'\n"
        "write_image(out, np.arange(64, dtype=np.uint16).reshape(8, 8), 'YX')\n"
        "assert 'microrestore_zarr' in sys.modules\n"
        "assert read_image(out).data.sum() == 2016\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


# -- the layering rule: what each folder may import ------------------------------------------------------------

#: The core's layers, lowest first (docs/architecture.md). A module may import its own folder (or top-level
#: module) and any folder of a lower layer; never a higher layer, nor another folder of its own layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("microrestore", "errors", "limits", "suggest", "formats"),  # base: no microrestore imports
    ("io", "optics", "validation"),  # files, physics, validated settings
    ("metrics", "simulation", "structured_illumination", "plugins", "zoo", "losses"),  # what methods build on
    ("configs",),  # shared option groups of method configurations
    ("nn",),  # networks
    ("engine",),  # training and inference
    ("bioimage", "assess", "plugin_api"),  # packages; quality without ground truth; the plugin authors' API
    ("api",),  # the library facade
    ("cli",),  # the command line
    ("napari",),  # the napari plugin (its demo sample is the CLI's)
    ("__main__", "testing"),  # python -m microrestore; the method contract suite (drives the CLI)
)

#: Imports that break the rule, each with its reason; the test fails when one is no longer needed.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("microrestore", "microrestore.plugins.markers"): "the package root re-exports hookimpl for plugin authors",
    ("microrestore.configs", "microrestore.engine.normalization"): "BackgroundOptions builds its normaliser",
    ("microrestore.zoo.recipes", "microrestore.api"): "a recipe rebuilds a model by training it through the API",
    ("microrestore.zoo.recipes", "microrestore.simulation"): "a recipe simulates its training data",
}


def folder_of(module: str) -> str:
    """The folder (or top-level module) of a module: ``microrestore.io.images`` -> ``io``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _rank() -> dict[str, int]:
    return {name: rank for rank, names in enumerate(LAYERS) for name in names}


def allowed(source: str, target: str) -> bool:
    """Whether ``source`` may import ``target`` under the layering rule (exceptions aside)."""
    rank = _rank()
    a, b = folder_of(source), folder_of(target)
    return a == b or rank[b] < rank[a]


def test_every_folder_has_a_layer() -> None:
    rank = _rank()
    missing = sorted({folder_of(m) for m in modules()} - set(rank))
    assert not missing, f"give these a layer in LAYERS (and docs/architecture.md): {missing}"
    assert len(rank) == sum(len(names) for names in LAYERS), "a folder is in two layers"


def test_imports_follow_the_layers() -> None:
    wrong = [
        f"{source} -> {target}"
        for source, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if not allowed(source, target) and (source, target) not in EXCEPTIONS
    ]
    assert not wrong, "imports against the layering (see docs/architecture.md):\n" + "\n".join(wrong)


def test_every_exception_is_still_needed() -> None:
    graph = import_graph()
    stale = [f"{s} -> {t}" for s, t in EXCEPTIONS if t not in graph.get(s, ()) or allowed(s, t)]
    assert not stale, f"remove these from EXCEPTIONS: {stale}"

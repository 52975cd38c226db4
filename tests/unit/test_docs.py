"""Documentation that cannot drift: the docs' tables, maps and lists are held to the registry, the CLI and the files.

The README's methods table, docs/plugins.md's built-in plugins, docs/architecture.md's module map and layers,
the ``zoo list`` columns of docs/zoo.md, the method pages of docs/methods/ and the docs' statements about
default models and output types. (Every command the docs show is checked against the CLI by
``tests/integration/test_docs_commands.py``; the model cards against the registry by
``tests/unit/test_zoo_cards.py``.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib

from tests.unit.test_layers import LAYERS, modules

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ALL_DOCS = sorted([ROOT / "README.md", *DOCS.glob("*.md"), *DOCS.glob("methods/*.md"), *DOCS.glob("models/*.md")])
#: Pages of docs/methods that document a part shared by methods rather than one method.
TOPIC_PAGES = {"fnsm.md"}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    """The body of the Markdown section ``heading`` (up to the next heading of the same or a higher level)."""
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    following = re.search(rf"\n#{{1,{len(level)}}} ", text[start:])
    return text[start : start + following.start()] if following else text[start:]


def _table(text: str) -> list[list[str]]:
    """The rows (cells stripped) of the first Markdown table in ``text``, header and separator left out."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def _registry():
    from microrestore.plugins import get_registry

    return get_registry()


def _entry_points() -> dict[str, str]:
    project = tomllib.loads(_text(ROOT / "pyproject.toml"))["project"]
    return dict(project["entry-points"]["microrestore.plugins"])


# -- README ------------------------------------------------------------------------------------------------------


def _readme_methods() -> dict[str, list[str]]:
    rows = _table(_section(_text(ROOT / "README.md"), "## Methods"))
    return {row[0].strip("`"): row for row in rows}


def test_readme_methods_table_is_the_registry() -> None:
    methods = _registry().methods
    table = _readme_methods()
    assert sorted(table) == sorted(methods), "the README's methods table and the installed methods differ"
    for name, (_, task, what) in table.items():
        tasks = {t.strip() for t in task.split("/")}
        assert methods[name].task in tasks and tasks <= {methods[name].task, "restore"}, (name, task)
        link = re.search(r"\(docs/methods/([\w.-]+\.md)\)", what)
        assert link, f"README: the {name} row links no docs/methods page"
        assert (DOCS / "methods" / link.group(1)).is_file(), link.group(1)
        if "default model" in what:
            named = [w for w in re.findall(r"`([\w-]+)`", what) if w.endswith(("-2d", "-3d"))]
            assert named == [methods[name].default_model], f"README: {name}'s default model is not {named}"


def test_every_method_page_is_linked_and_every_page_is_a_method_or_a_topic() -> None:
    linked = set()
    for _, _, what in _readme_methods().values():
        linked.update(re.findall(r"\(docs/methods/([\w.-]+\.md)\)", what))
    pages = {p.name for p in (DOCS / "methods").glob("*.md")}
    assert pages == linked | TOPIC_PAGES, f"pages not in the README's methods table: {sorted(pages - linked)}"


# -- docs/plugins.md ---------------------------------------------------------------------------------------------


def test_plugins_doc_lists_the_built_in_plugins() -> None:
    rows = _table(_section(_text(DOCS / "plugins.md"), "## The built-in plugins"))
    documented = {row[0].strip("`"): row for row in rows}
    entry_points = _entry_points()
    assert sorted(documented) == sorted(entry_points), "docs/plugins.md and pyproject.toml's entry points differ"
    assert sorted(p.name for p in (ROOT / "plugins").iterdir() if p.is_dir() and p.name.startswith("microrestore_"))
    registry = _registry()
    for name, (_, module, registers) in documented.items():
        assert module.strip("`") == entry_points[name], name
        assert (ROOT / "plugins" / entry_points[name]).is_dir(), name
        methods = sorted(m.name for m in registry.methods.values() if m.plugin == name)
        assert sorted(re.findall(r"method `([\w-]+)`", registers)) == methods, name
        formats = [r for r in [*registry.readers, *registry.writers] if r.plugin == name]
        assert bool(formats) == ("reader" in registers or "writer" in registers), name
        for item in formats:
            assert all(f"`{suffix}`" in registers for suffix in item.suffixes), (name, item.suffixes)


def test_plugins_doc_names_every_plugin_folder() -> None:
    folders = {p.name for p in (ROOT / "plugins").iterdir() if p.is_dir() and p.name.startswith("microrestore_")}
    assert folders == set(_entry_points().values()), "a plugin folder without an entry point, or the reverse"


# -- docs/architecture.md ----------------------------------------------------------------------------------------


def _module_map() -> tuple[dict[str, set[str]], set[str]]:
    """``({folder or top-level module: modules named}, plugin folders)`` from the module map's code block."""
    body = _section(_text(DOCS / "architecture.md"), "## Module map")
    block = re.search(r"```\n(.*?)```", body, re.S)
    assert block, "docs/architecture.md: no code block under '## Module map'"
    core: dict[str, set[str]] = {}
    plugins: set[str] = set()
    part, key = "", ""
    for line in block.group(1).splitlines():
        if not line.startswith(" "):
            part = line.strip().rstrip("/")
            continue
        entry = re.match(r"  (\S+)", line)
        if entry and not line.startswith("   "):
            key = entry.group(1).rstrip("/")
            if part == "plugins":
                plugins.add(key)
                continue
            core[key] = set() if not key.endswith(".py") else {key}
            line = line[len(entry.group(0)) :]
        if part == "microrestore" and not key.endswith(".py"):
            core[key].update(re.findall(r"\b(\w+\.py)\b", line))
    return core, plugins


def _actual_modules() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / "microrestore").rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(ROOT / "microrestore")
        if len(rel.parts) == 1:
            if rel.name != "__init__.py":
                found[rel.name] = {rel.name}
        elif rel.name != "__init__.py":
            found.setdefault(rel.parts[0], set()).add("/".join(rel.parts[1:]))
        else:
            found.setdefault(rel.parts[0], set())
    return found


def test_the_module_map_names_every_module_and_nothing_else() -> None:
    core, plugins = _module_map()
    actual = _actual_modules()
    assert sorted(core) == sorted(actual), "docs/architecture.md's module map: folders differ from microrestore/"
    for key, named in core.items():
        assert named == actual[key], (
            f"docs/architecture.md, {key}: missing {actual[key] - named}, stale {named - actual[key]}"
        )
    folders = {p.name for p in (ROOT / "plugins").iterdir() if p.is_dir() and p.name.startswith("microrestore_")}
    assert plugins == folders, "docs/architecture.md's module map: plugin folders differ from plugins/"


def test_the_layers_table_is_the_tested_rule() -> None:
    rows = _table(_section(_text(DOCS / "architecture.md"), "## Layers"))
    documented = []
    for row in rows:
        names = re.findall(r"`([\w./]+)`", row[1])
        documented.append(
            tuple(sorted(n.removesuffix("/").removesuffix(".py").replace("/__init__", "") for n in names))
        )
    expected = [tuple(sorted(layer)) for layer in LAYERS]
    assert documented == expected, "docs/architecture.md's layers table and tests/unit/test_layers.py's LAYERS differ"
    assert len(modules()) > 100


# -- docs/zoo.md, defaults, output types -------------------------------------------------------------------------


def test_zoo_doc_names_the_columns_zoo_list_prints() -> None:
    from microrestore.cli.zoo import ZOO_COLUMNS

    line = next(line for line in _text(DOCS / "zoo.md").splitlines() if line.startswith("microrestore zoo list "))
    documented = [c.strip() for c in line.split("#", 1)[1].split(",")]
    assert documented == [c.header for c in ZOO_COLUMNS]


@pytest.mark.parametrize("path", ALL_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_says_a_method_with_a_default_model_has_none(path: Path) -> None:
    text = " ".join(_text(path).split())
    for name, method in _registry().methods.items():
        if method.default_model is None:
            continue
        for claim in (rf"`?{name}`? \(no default model", rf"`?{name}`?'s default (model )?is coming",
                      rf"`?{name}`? has no default model"):  # fmt: skip
            assert not re.search(claim, text, re.I), f"{path.name}: {name} ships {method.default_model}"
    assert not re.search(r"\b(is coming|on the way)\b", text), f"{path.name}: a promise about what already ships?"


@pytest.mark.parametrize("path", sorted(DOCS.glob("methods/*.md")), ids=lambda p: p.name)
def test_output_type_statements_name_the_dtype_option(path: Path) -> None:
    """A page saying what type the output is written in also says how ``--dtype`` decides it."""
    for paragraph in re.split(r"\n\s*\n", _text(path)):
        flat = " ".join(paragraph.split())
        if re.search(r"output is (written as )?float32", flat):
            assert "--dtype" in flat, f"{path.name}: {flat[:120]}..."


# -- names and links ---------------------------------------------------------------------------------------------


def _resolves(dotted: str) -> bool:
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for part in parts[i:]:
                obj = getattr(obj, part)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("path", ALL_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_dotted_microrestore_name_in_the_docs_exists(path: Path) -> None:
    names = {m.rstrip(".") for m in re.findall(r"`(microrestore\.[\w.]+)", _text(path))}
    missing = sorted(n for n in names if not _resolves(n))
    assert not missing, f"{path.name} names what does not exist: {missing}"


@pytest.mark.parametrize("path", ALL_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_in_the_docs_exists(path: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", _text(path))
    missing = [link for link in links if "://" not in link and not (path.parent / link).exists()]
    assert not missing, f"{path.name} links to what does not exist: {missing}"

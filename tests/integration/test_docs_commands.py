"""Every ``microrestore ...`` command in the README, docs/*.md, docs/methods/*.md and the model cards is right.

Each command of a shell code block, and each inline code span that starts with ``microrestore``, is parsed
and checked against the CLI itself (click introspection of the typer app, no subprocess per line): the
subcommands exist, every option exists on the command that receives it, a literal ``--method`` names an
installed method and a literal ``--model`` a zoo model or a path. The cheap ones also run, in-process, in a
scratch folder with tiny inputs: ``methods``, ``plugins``, ``zoo list``, ``--help``, ``simulate`` (at a
small size), ``denoise --method nl-means``, ``evaluate``; the README's Wiener-SIM line runs on MT.mrc when
../shared/data is present.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import EXAMPLE_PLUGIN

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = sorted(
    [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("docs/methods/*.md"), *ROOT.glob("docs/models/*.md")]
)
SHELL_FENCES = {"", "bash", "sh", "shell", "console", "text"}


@dataclass(frozen=True)
class DocCommand:
    """One ``microrestore`` command found in the docs: its words after ``microrestore`` and where it is."""

    words: tuple[str, ...]
    where: str
    block: bool = True

    def __str__(self) -> str:
        return f"{self.where}: microrestore {' '.join(self.words)}"


def _words(text: str) -> list[str]:
    """Shell words of a command, without comments, optional-group brackets (``[--n N]``) and ellipses."""
    text = re.sub(r"(^|\s)\[(-[^\]]*?)\](?=\s|$)", r"\1\2", text)  # [--flag VALUE] -> --flag VALUE
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        words = text.split("#", 1)[0].split()
    return [w for w in words if w not in ("...", "…")]


def _segments(line: str) -> list[str]:
    """The ``microrestore`` commands of one shell line (``a && microrestore b | c`` gives ``microrestore b``)."""
    found = []
    for part in re.split(r"&&|\|\||;|\|(?!\])", line):
        part = part.strip()
        if part.startswith("$ "):
            part = part[2:]
        if part.startswith("microrestore "):
            found.append(part[len("microrestore ") :])
    return found


def doc_commands() -> list[DocCommand]:
    """Every ``microrestore`` command of the docs' shell code blocks and inline code spans."""
    commands = []
    for path in DOC_FILES:
        rel = path.relative_to(ROOT)
        fence: str | None = None
        pending, start = "", 0
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith("```"):
                fence = stripped[3:].strip().lower() if fence is None else None
                continue
            if fence is not None:
                if fence not in SHELL_FENCES:
                    continue
                if not pending:
                    start = number
                if stripped.endswith("\\"):
                    pending += stripped[:-1] + " "
                    continue
                for segment in _segments(pending + stripped):
                    commands.append(DocCommand(tuple(_words(segment)), f"{rel}:{start}"))
                pending = ""
                continue
            for span in re.findall(r"`(microrestore [^`]+)`", line):
                words = tuple(_words(span[len("microrestore ") :]))
                commands.append(DocCommand(words, f"{rel}:{number}", block=False))
    return commands


COMMANDS = doc_commands()


def _root_command() -> Any:
    import typer

    from microrestore.cli.app import build_app

    return typer.main.get_command(build_app())


def _option_names(command: Any) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        names.update(getattr(param, "opts", []))
        names.update(getattr(param, "secondary_opts", []))
    return names


def _is_group(command: Any) -> bool:
    return isinstance(getattr(command, "commands", None), dict)  # typer vendors click: no isinstance on click


def check_command(root: Any, words: tuple[str, ...]) -> list[str]:
    """Problems of one command (empty when it is right): unknown subcommands, options, methods or models."""
    from microrestore.plugins import get_registry

    problems: list[str] = []
    command, path, i = root, [], 0
    while i < len(words):
        word = words[i]
        if _is_group(command) and not word.startswith("-"):
            sub = command.commands.get(word)
            if sub is None:
                problems.append(f"no command {' '.join(['microrestore', *path, word])!r}")
                return problems
            command, path = sub, [*path, word]
            i += 1
            continue
        if word.startswith("-") and _is_group(command) and word.split("=")[0] in _option_names(command):
            i += 1  # a group's own flag (--help, --version, --debug)
            continue
        break
    known = _option_names(command)
    rest = words[i:]
    fields = _method_fields(command, path, rest)
    for j, word in enumerate(rest):
        if word == "--":
            break
        if not word.startswith("-") or word == "-" or re.fullmatch(r"-\d[\d.e+-]*", word):
            continue
        name = word.split("=", 1)[0]
        if name not in known:
            if fields is not None and name.startswith("--") and name[2:].replace("-", "_") in fields:
                continue  # a method option given as a flag (microrestore train METHOD --key value)
            problems.append(f"'microrestore {' '.join(path)}' has no option {name}")
            continue
        value = word.split("=", 1)[1] if "=" in word else (rest[j + 1] if j + 1 < len(rest) else "")
        if name in ("--method", "-m") and value and not value.isupper():
            methods = get_registry().methods
            if path[:1] == ["sim"]:
                if not ({value, f"{value}-sim"} & {m for m, v in methods.items() if v.task == "sim"}):
                    problems.append(f"no SIM method {value!r}")
            elif value not in methods:
                problems.append(f"no method {value!r}")
        if name == "--model" and value and not value.isupper():
            problems.extend(_model_problem(value))
    return problems


def _method_fields(command: Any, path: list[str], rest: tuple[str, ...]) -> set[str] | None:
    """Configuration fields of the method a command takes extra ``--key value`` flags for (``train``), else None."""
    from microrestore.plugins import get_registry

    if not (command.context_settings or {}).get("ignore_unknown_options") or not rest or rest[0].startswith("-"):
        return None
    method = get_registry().methods.get(rest[0])
    schema = getattr(method, "config_schema", None)
    return set(schema.model_fields) if schema is not None else set()


def _model_problem(value: str) -> list[str]:
    from microrestore.zoo import entries

    if (
        value in entries()
        or value.startswith("bioimageio:")
        or "/" in value
        or value.endswith((".zip", ".yaml"))
        or value.startswith("my-")
    ):
        return []  # a zoo id, or the user's own folder or package
    return [f"no zoo model {value!r}"]


def test_the_docs_have_commands_to_check() -> None:
    where = {c.where.split(":")[0] for c in COMMANDS}
    assert len(COMMANDS) > 60
    assert "README.md" in where and any(w.startswith("docs/models/") for w in where)
    assert any(c.words[:2] == ("sim", "reconstruct") for c in COMMANDS)


def test_every_doc_command_exists_with_its_options(install_plugin) -> None:
    # docs/plugins.md shows the example plugin's methods: check them with that plugin installed
    install_plugin("microrestore-example", "0.1.0", {"example": "microrestore_example"}, path=EXAMPLE_PLUGIN / "src")
    root = _root_command()
    wrong = [f"{c}  <- {'; '.join(p)}" for c in COMMANDS if (p := check_command(root, c.words))]
    assert not wrong, "documentation commands the CLI does not accept:\n" + "\n".join(wrong)


def test_the_checker_catches_wrong_commands() -> None:
    root = _root_command()
    assert check_command(root, ("sim", "IN", "-o", "OUT"))  # 'sim' needs 'reconstruct'
    assert check_command(root, ("denoise", "in.tif", "-o", "out.tif", "--methd", "nl-means"))
    assert check_command(root, ("denoise", "in.tif", "--method", "nlmeans"))
    assert check_command(root, ("sim", "reconstruct", "raw.tif", "--method", "nope"))
    assert check_command(root, ("denoise", "in.tif", "--model", "no-such-model"))
    assert not check_command(root, ("sim", "reconstruct", "raw.tif", "--method", "rdl", "--model", "rdl-sim-2d"))
    assert not check_command(root, ("--help",))
    assert _words("simulate KIND -o DIR [--n N] [--set key=value ...]") == [
        "simulate", "KIND", "-o", "DIR", "--n", "N", "--set", "key=value",
    ]  # fmt: skip
    assert _segments('pip install "torch" -e . && microrestore demo') == ["demo"]


# -- the cheap ones, for real ---------------------------------------------------------------------------------

CHEAP = {("methods",), ("plugins",), ("zoo", "list"), ("simulate",), ("denoise",), ("evaluate",), ()}


def _is_cheap(words: tuple[str, ...]) -> bool:
    if any(w.isupper() and len(w) > 1 for w in words):  # placeholders (IN, DIR, KIND)
        return False
    head = tuple(w for w in words[:2] if not w.startswith("-"))
    if head[:1] == ("denoise",):
        return "nl-means" in words and not any(w.endswith("/") for w in words[1:2])
    if head[:1] == ("evaluate",):
        return "--input" in words or len(words) >= 3
    return head[:2] in CHEAP or head[:1] in CHEAP


def _small(words: tuple[str, ...]) -> list[str]:
    """The command at a small size: ``simulate`` makes one 48 x 48 field."""
    out = list(words)
    if out[:1] == ["simulate"]:
        if "--n" in out:
            out[out.index("--n") + 1] = "1"
        else:
            out += ["--n", "1"]
        out += ["--set", "shape=[48,48]"]
    return out


def _inputs(folder: Path, words: tuple[str, ...]) -> None:
    """Tiny images for the input files a command names (``in.tif``, ``out.tif``, ``truth.tif``)."""
    from microrestore.io import write_image

    rng = np.random.default_rng(0)
    clean = (100 + 50 * np.sin(np.arange(128)[:, None] / 4) * np.cos(np.arange(128)[None, :] / 5)).astype(np.float32)
    for word in words:
        for name in re.findall(r"[\w./-]+\.tiff?\b", word):  # also inside --set values
            path = folder / name
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_image(path, rng.poisson(clean).astype(np.uint16), "YX")


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.block and _is_cheap(c.words)], ids=str)
def test_cheap_doc_commands_run(command: DocCommand, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    words = _small(command.words)
    outputs = [words[k + 1] for k, w in enumerate(words[:-1]) if w in ("-o", "--output", "--figure")]
    inputs = [w for w in words if w not in outputs]
    _inputs(tmp_path, tuple(inputs))
    result = cli(*words)
    assert result.exit_code == 0, f"{command}\n{result.output}"


def test_readme_wiener_sim_line_runs_on_mt_mrc(cli, shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    lines = [c for c in COMMANDS if c.where.startswith("README.md") and c.words[:2] == ("sim", "reconstruct")]
    wiener = [c for c in lines if "--method" not in c.words]
    assert wiener and any("rdl" in c.words for c in lines)
    words = [
        str(shared_data / "sim" / "rdlsim_microtubules" / "MT.mrc") if w == "MT.mrc" else w for w in wiener[0].words
    ]
    monkeypatch.chdir(tmp_path)
    result = cli(*words)
    assert result.exit_code == 0, result.output
    assert "check --na-exc" not in result.stderr and "fallback k" not in result.stderr
    assert "orientation 1" not in result.stderr and "orientation 2" not in result.stderr  # both fit

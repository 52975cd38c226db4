"""Small helpers shared by the CLI commands."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from microrestore.errors import InputError, MicrorestoreWarning

# markup=False: file names, option values, library and plugin messages and install hints are printed verbatim
# ("cell[red]01.tif", "microrestore[bioimage]", "--method '[/x]'"); styles are applied with Text objects only.
console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
stdout = Console(highlight=False, soft_wrap=True, markup=False)


def styled(label: str, style: str, message: str = "") -> Text:
    """``label`` in ``style`` followed by ``message`` printed verbatim (no markup is interpreted in either)."""
    text = Text(label, style=style)
    if message:
        text.append(" " + message)
    return text


def print_error(message: str) -> None:
    """Print ``Error: message`` on stderr, the message verbatim."""
    console.print(styled("Error:", "bold red", message))


def print_warning(message: str, target: Console | None = None) -> None:
    """Print ``Warning: message`` on stderr (or on ``target``), the message verbatim."""
    (target or console).print(styled("Warning:", "yellow", message))


def to_json(data: Any, indent: int | None = 2) -> str:
    """Strict JSON of ``data``: NaN and infinite floats become ``null``.

    ``json.dumps`` would write ``NaN`` and ``Infinity``, which JSON parsers refuse.
    """
    import json
    import math

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        return value

    return json.dumps(clean(data), indent=indent, allow_nan=False)


@contextlib.contextmanager
def cli_warnings() -> Iterator[None]:
    """Within the block, microrestore's own warnings print as one ``Warning: ...`` line on stderr.

    Other warnings are shown as Python would; the previous warning settings come back afterwards.
    """
    with warnings.catch_warnings():
        original = warnings.showwarning

        def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, MicrorestoreWarning):
                from rich.text import Text

                console.print(Text.assemble(("Warning:", "yellow"), " ", str(message)))
            else:
                original(message, category, *args, **kwargs)

        warnings.simplefilter("default", MicrorestoreWarning)
        warnings.showwarning = show
        yield


def parse_settings(items: list[str] | None, option: str = "--set") -> dict[str, Any]:
    """Parse ``key=value`` items; values are read as YAML scalars (``3`` -> int, ``true`` -> bool).

    Dotted keys (``optimizer.lr=1e-4``) become nested dicts.
    """
    import yaml

    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"{option} expects key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"{option} {item!r}: {part!r} is both a value and a section")
        node[parts[-1]] = value
    return result


def load_config_file(path: Path | None) -> dict[str, Any]:
    """Read a YAML or JSON configuration file into a dict (empty when ``path`` is None)."""
    if path is None:
        return {}
    import yaml

    if not path.is_file():
        raise InputError("no such configuration file", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"not a valid YAML/JSON configuration: {first}", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("configuration must be a mapping of keys to values", path)
    return data


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_extra_options(args: list[str] | None) -> dict[str, Any]:
    """Parse method options given as extra flags: ``--key value``, ``--key=value``, or ``--key`` (true).

    Dashes in keys become underscores (``--patch-size 32`` is ``patch_size=32``); values are read as YAML
    scalars, as for ``--set``. Anything that is not such a flag is refused with a one-line message.
    """
    items: list[str] = []
    rest = list(args or [])
    while rest:
        token = rest.pop(0)
        if not token.startswith("--") or len(token) < 3:
            raise InputError(
                f"unexpected argument {token!r}; method options are given as --key value or --set key=value"
            )
        key, sep, value = token[2:].partition("=")
        if not sep:
            value = rest.pop(0) if rest and not rest[0].startswith("--") else "true"
        items.append(f"{key.replace('-', '_')}={value}")
    return parse_settings(items, option="method option")

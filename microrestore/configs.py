"""Validating configurations and options with pydantic, reporting problems as one line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from microrestore.errors import InputError

Model = TypeVar("Model")


def pydantic_message(exc: Any) -> str:
    """Condense a pydantic ``ValidationError`` into one line: ``key: problem; key: problem``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "value"
        msg = "unknown option" if err.get("type") == "extra_forbidden" else err.get("msg", "invalid")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def validate(schema: type[Model], values: Mapping[str, Any] | None, context: str) -> Model:
    """Build ``schema(**values)``; a bad key or value raises :class:`InputError` naming ``context``.

    Parameters
    ----------
    schema
        A pydantic model class (use ``extra="forbid"`` so misspelled keys are caught).
    values
        The settings, e.g. from ``--set key=value`` or a configuration file.
    context
        What is being configured, for the message (``"--set for method 'nl-means'"``).
    """
    from pydantic import ValidationError

    try:
        return schema(**dict(values or {}))
    except ValidationError as exc:
        raise InputError(f"{context}: {pydantic_message(exc)}") from None
    except TypeError as exc:  # non-string keys
        raise InputError(f"{context}: {exc}") from None

"""Validating values with pydantic and reporting problems as one line (a base-layer module).

Every layer validates its own settings with these (a model folder's configuration, normalisation parameters, a
method's options), so they import nothing of microrestore but the errors and the spelling suggestions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from microrestore.errors import InputError

__all__ = ["pydantic_message", "validate", "validate_params"]

Model = TypeVar("Model")


def pydantic_message(exc: Any, schema: Any = None) -> str:
    """Condense a pydantic ``ValidationError`` into one line: ``key: problem; key: problem``.

    With the ``schema`` (a pydantic model class), an unknown key gets the known keys it most likely meant.
    """
    parts = []
    for err in exc.errors():
        path = err.get("loc", ())
        loc = ".".join(str(p) for p in path) or "value"
        if err.get("type") == "extra_forbidden":
            msg = "unknown option" + _suggestion(schema, path)
        else:
            msg = err.get("msg", "invalid")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def _suggestion(schema: Any, path: tuple[Any, ...]) -> str:
    """`` (did you mean ...?)`` for the unknown key at ``path`` among the keys of its (nested) model."""
    from microrestore.suggest import did_you_mean

    model = schema
    for part in path[:-1]:  # walk into nested models (optimizer.lr)
        field = getattr(model, "model_fields", {}).get(part)
        model = getattr(field, "annotation", None) if field is not None else None
    fields = getattr(model, "model_fields", None)
    if not fields or not path:
        return ""
    return did_you_mean(str(path[-1]), fields)


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
        raise InputError(f"{context}: {pydantic_message(exc, schema)}") from None
    except TypeError as exc:  # non-string keys
        raise InputError(f"{context}: {exc}") from None


def validate_params(method: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Validate a method's inference options against its ``predict_schema``; one-line error on a bad key or value.

    Parameters
    ----------
    method
        A :class:`microrestore.plugins.Method` with a ``predict_schema``.
    params
        The ``--set key=value`` options.
    """
    assert method.predict_schema is not None
    return validate(method.predict_schema, params, f"--set for method {method.name!r}").model_dump()

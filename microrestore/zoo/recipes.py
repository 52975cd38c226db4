"""Rebuilding a zoo model from its recipe: data (simulated, several simulated sets, or files), configuration, seed.

Every published weight file can be rebuilt with ``microrestore zoo train ID_OR_RECIPE -o DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microrestore.errors import InputError


def load_recipe(ref: str | Path) -> tuple[str, dict[str, Any]]:
    """Return ``(model id, recipe)`` for a zoo id or a registry YAML file."""
    import yaml

    from microrestore.zoo import entries

    path = Path(ref)
    if path.is_file():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        model_id = str(data.get("id", path.stem))
        recipe = data.get("recipe")
    else:
        entry = entries().get(str(ref))
        if entry is None:
            raise InputError(f"{ref!r} is neither a recipe file nor a zoo id")
        model_id, recipe = entry.id, entry.recipe
    if not isinstance(recipe, dict) or "train" not in recipe:
        raise InputError(f"model {model_id!r} has no training recipe")
    return model_id, recipe


def build(ref: str | Path, output: Path, workdir: Path, *, device: str = "auto", progress: bool = True) -> Path:
    """Simulate (or locate) the recipe's data, then train into ``output``."""
    from microrestore import api

    model_id, recipe = load_recipe(ref)
    data = recipe.get("data", {})
    if isinstance(data, list):  # several simulated sets, each in its own sub-folder (``into``)
        root = workdir / f"{model_id}-data"
        for item in data:
            if not isinstance(item, dict) or "simulate" not in item or "into" not in item:
                raise InputError(f"model {model_id!r}: each data set of a list needs 'simulate' and 'into'")
            _simulate(item, root / str(item["into"]))
    elif "simulate" in data:
        root = workdir / f"{model_id}-data"
        _simulate(data, root)
    else:
        root = Path(data.get("root", "."))
    train = recipe["train"]
    source = [str(root / s) for s in _as_list(train["source"])]
    target = [str(root / t) for t in _as_list(train.get("target", []))]
    return api.train(
        train.get("method", recipe.get("method", "")) or _method_of(ref),
        source,
        output,
        target=target,
        config=dict(train.get("config", {})),
        steps=train.get("steps"),
        device=device,
        progress=progress,
    )


def _simulate(data: dict[str, Any], root: Path) -> None:
    from microrestore.simulation import simulate

    simulate(
        data["simulate"], root, n=int(data.get("n", 8)), seed=int(data.get("seed", 0)), **dict(data.get("params", {}))
    )


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _method_of(ref: str | Path) -> str:
    from microrestore.zoo import entries

    entry = entries().get(str(ref))
    if entry is None:
        raise InputError("the recipe does not name its method (train.method)")
    return entry.method

"""'Did you mean ...?' for misspelled names: methods, ``--set`` keys, SIM methods.

Close matches come from :func:`difflib.get_close_matches` on names compared without case, dashes and
underscores (``nlmeans`` finds ``nl-means``), plus the names that only add a suffix to what was typed
(``wavelength`` finds ``wavelength_nm`` and ``wavelength_exc_nm``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def _plain(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The choices ``word`` most likely meant, best first (at most ``n``; empty when none is close)."""
    names = sorted(set(choices))
    plain = _plain(word)
    if not plain:
        return []
    by_plain: dict[str, list[str]] = {}
    for name in names:
        by_plain.setdefault(_plain(name), []).append(name)
    found: list[str] = [name for name in names if _plain(name).startswith(plain) and _plain(name) != plain]
    found.sort(key=len)
    for match in difflib.get_close_matches(plain, list(by_plain), n=n, cutoff=0.75):
        found += [name for name in by_plain[match] if name not in found]
    return [name for name in dict.fromkeys(found) if name != word][:n]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` (or ``'x' or 'y'``) for the close matches of ``word``, else ``""``."""
    found = close_matches(word, choices)
    if not found:
        return ""
    return " (did you mean " + " or ".join(repr(name) for name in found) + "?)"

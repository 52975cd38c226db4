"""Fetching zoo models that are not bundled: downloaded with pooch, verified by sha256, cached per user.

Every file of a registry entry is downloaded into ``<cache>/<id>/<version>/``. pooch streams each download to
a temporary file in that folder and moves it to its final name only when its sha256 matches the registry, so
a corrupted or tampered download never lands in the cache. Cached files are verified again on every use with
the same :func:`microrestore.zoo.verify_files` that bundled models go through. Model files are never
unpickled (weights are safetensors, configuration is YAML).

Environment variables, all read when a function is called (never at import time):

``MICRORESTORE_CACHE``
    Cache folder; default ``platformdirs.user_cache_dir("microrestore")``.
``MICRORESTORE_ZOO_URL``
    Base URL of a zoo mirror laid out as ``<base>/<id>/<name>``; when set it is used for every file, in place
    of the URLs recorded in the registry.
``MICRORESTORE_OFFLINE``
    ``1`` (or ``true``/``yes``/``on``): never download; only verified cached files are used.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from microrestore.errors import InputError, MicrorestoreError
from microrestore.zoo.catalog import ZooEntry, sha256_of, verify_files

ENV_CACHE = "MICRORESTORE_CACHE"
ENV_URL = "MICRORESTORE_ZOO_URL"
ENV_OFFLINE = "MICRORESTORE_OFFLINE"

#: Download attempts per file (the first one included).
ATTEMPTS = 3
#: Seconds before the second attempt; doubled before each further one.
BACKOFF_S = 1.0
#: Seconds to wait for the server to connect and for each block of data.
TIMEOUT_S = 60.0
#: HTTP statuses worth another attempt (server-side and rate-limit failures); other 4xx are final.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

_FALSE = ("", "0", "false", "no", "off")
_LOG = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Folder that holds downloaded models.

    Returns
    -------
    Path
        ``$MICRORESTORE_CACHE`` when set and not empty, else ``platformdirs.user_cache_dir("microrestore")``.
    """
    value = os.environ.get(ENV_CACHE, "").strip()
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("microrestore"))


def base_url() -> str | None:
    """Base URL of the zoo mirror from ``$MICRORESTORE_ZOO_URL``.

    Returns
    -------
    str or None
        The URL without a trailing slash, or None when the variable is unset or empty (then each file's own
        ``url`` from the registry is used).
    """
    value = os.environ.get(ENV_URL, "").strip()
    return value.rstrip("/") or None


def offline_mode(offline: bool | None = None) -> bool:
    """Whether downloads are off.

    Parameters
    ----------
    offline
        An explicit choice; None reads ``$MICRORESTORE_OFFLINE``.

    Returns
    -------
    bool
        True when only the cache may be used.
    """
    if offline is not None:
        return bool(offline)
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in _FALSE


def model_dir(entry: ZooEntry) -> Path:
    """Cache folder of one model version: ``<cache>/<id>/<version>``.

    Parameters
    ----------
    entry
        The registry entry.

    Returns
    -------
    Path
        The folder (it may not exist yet).
    """
    return cache_dir() / _safe_part(entry.id, entry, "id") / _safe_part(str(entry.version), entry, "version")


def file_url(entry: ZooEntry, item: dict[str, Any]) -> str:
    """URL of one file of ``entry``.

    ``$MICRORESTORE_ZOO_URL`` wins when set (``<base>/<id>/<name>``); otherwise the file's own ``url``.

    Parameters
    ----------
    entry
        The registry entry.
    item
        One element of ``entry.files`` (``name``, ``sha256`` and optionally ``url``).

    Returns
    -------
    str
        An ``http://`` or ``https://`` URL.

    Raises
    ------
    InputError
        When no URL is known for the file, or it is not HTTP(S).
    """
    base = base_url()
    if base is not None:
        url = f"{base}/{entry.id}/{item['name']}"
    elif item.get("url"):
        url = str(item["url"])
    else:
        raise InputError(
            f"model {entry.id!r}: the registry gives no URL for {item['name']}; set {ENV_URL} to a zoo mirror"
        )
    if not url.lower().startswith(("http://", "https://")):
        raise InputError(f"model {entry.id!r}: {item['name']} has URL {url!r}; only http(s) URLs are supported")
    return url


def cached_state(entry: ZooEntry) -> str:
    """How much of ``entry`` is in the cache, by file presence only (no hashing; use time verifies).

    Parameters
    ----------
    entry
        The registry entry.

    Returns
    -------
    str
        ``"yes"`` (every file present), ``"partial"`` (some) or ``"no"`` (none).
    """
    try:
        _check_entry(entry)
        folder = model_dir(entry)
    except InputError:
        return "no"
    present = sum((folder / item["name"]).is_file() for item in entry.files)
    if entry.files and present == len(entry.files):
        return "yes"
    return "partial" if present else "no"


def fetch_model(
    entry: ZooEntry,
    *,
    offline: bool | None = None,
    timeout: float | None = None,
    attempts: int | None = None,
    backoff_s: float | None = None,
    on_file: Callable[[str, str], None] | None = None,
) -> Path:
    """Make sure every file of ``entry`` is in the cache and verified; download what is missing.

    Parameters
    ----------
    entry
        A registry entry (``files: [{name, sha256, url?}]``).
    offline
        True: use only the cache. None (default): read ``$MICRORESTORE_OFFLINE``.
    timeout
        Seconds for connecting and for each block of data (default :data:`TIMEOUT_S`).
    attempts
        Download attempts per file, the first included (default :data:`ATTEMPTS`).
    backoff_s
        Wait before the second attempt, doubled before each further one (default :data:`BACKOFF_S`).
    on_file
        Called as ``on_file(name, action)`` with action ``"cached"`` or ``"downloaded"`` for each file.

    Returns
    -------
    Path
        The model folder ``<cache>/<id>/<version>``, every file verified against its sha256.

    Raises
    ------
    InputError
        Offline with files missing from the cache; a download or a cached file whose sha256 does not match
        (the download is discarded, nothing is cached); a missing URL; an HTTP 4xx answer.
    MicrorestoreError
        The server or network still failing after the last attempt.
    """
    _check_entry(entry)
    folder = model_dir(entry)
    missing = [item["name"] for item in entry.files if not (folder / item["name"]).is_file()]
    if offline_mode(offline):
        if missing:
            raise InputError(
                f"model {entry.id!r} is not in the cache and offline mode is on "
                f"(missing {', '.join(missing)} under {folder})"
            )
        verify_files(entry, folder)
        _report(on_file, entry, "cached")
        return folder
    if not missing:
        try:
            verify_files(entry, folder)
        except InputError as exc:  # a damaged cached file: discard it and download it again below
            _LOG.warning("%s; downloading it again", exc)
        else:
            _report(on_file, entry, "cached")
            return folder
    for item in entry.files:
        path = folder / item["name"]
        if path.is_file():
            if sha256_of(path) == item["sha256"]:
                if on_file is not None:
                    on_file(item["name"], "cached")
                continue
            path.unlink()  # never keep an unverified file in the cache
        _download(
            entry,
            item,
            folder,
            timeout=TIMEOUT_S if timeout is None else timeout,
            attempts=ATTEMPTS if attempts is None else max(1, int(attempts)),
            backoff_s=BACKOFF_S if backoff_s is None else backoff_s,
        )
        if on_file is not None:
            on_file(item["name"], "downloaded")
    verify_files(entry, folder)
    return folder


def _report(on_file: Callable[[str, str], None] | None, entry: ZooEntry, action: str) -> None:
    if on_file is not None:
        for item in entry.files:
            on_file(item["name"], action)


def _safe_part(value: str, entry: ZooEntry, what: str) -> str:
    """Refuse registry values that would escape the cache folder when used as a path component."""
    if not value or value in (".", "..") or value.startswith(".") or any(c in value for c in "/\\\0:"):
        raise InputError(f"model {entry.id!r}: {what} {value!r} is not a plain file name", entry.source)
    return value


def _check_entry(entry: ZooEntry) -> None:
    if not entry.files:
        raise InputError(f"model {entry.id!r} lists no files", entry.source)
    for item in entry.files:
        if not isinstance(item, dict) or "name" not in item:
            raise InputError(f"model {entry.id!r}: every file needs a name and a sha256", entry.source)
        _safe_part(str(item["name"]), entry, "file name")
        if not re.fullmatch(r"[0-9a-fA-F]{64}", str(item.get("sha256", ""))):
            raise InputError(f"model {entry.id!r}: {item['name']} has no valid sha256 in the registry", entry.source)


@contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Silence pooch's INFO log of every download (the CLI reports downloads itself)."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _download(
    entry: ZooEntry, item: dict[str, Any], folder: Path, *, timeout: float, attempts: int, backoff_s: float
) -> None:
    """Download one file with pooch (sha256-checked, atomic), retrying network and server failures."""
    import pooch
    import requests

    name = item["name"]
    url = file_url(entry, item)
    expected = str(item["sha256"]).lower()
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=timeout)
    for attempt in range(1, attempts + 1):
        try:
            with _quiet_pooch():
                pooch.retrieve(
                    url,
                    known_hash=f"sha256:{expected}",
                    fname=name,
                    path=folder,
                    downloader=downloader,
                    progressbar=False,
                )
            return
        except requests.exceptions.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status is not None and status not in RETRY_STATUSES:
                raise InputError(
                    f"model {entry.id!r}: {url} answered HTTP {status} for {name} (check {ENV_URL} and the registry)"
                ) from None
            reason = f"HTTP {status}"
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise InputError(f"model {entry.id!r}: bad URL {url!r} for {name}: {_first_line(exc)}") from None
        except requests.exceptions.RequestException as exc:
            reason = f"{type(exc).__name__}: {_first_line(exc)}"
        except ValueError as exc:  # pooch: sha256 mismatch; it has already deleted the download
            if "hash" not in str(exc):
                raise
            (folder / name).unlink(missing_ok=True)
            got = re.search(r"but got ([0-9a-fA-F]{64})", str(exc))
            actual = f"{got.group(1)[:12]}..." if got else "a different hash"
            raise InputError(
                f"model {entry.id!r}: the download of {name} from {url} has sha256 {actual}, expected "
                f"{expected[:12]}... (corrupted or tampered; discarded, nothing was cached)"
            ) from None
        if attempt < attempts:
            wait = backoff_s * 2 ** (attempt - 1)
            _LOG.info(
                "model %s: %s failed (%s); attempt %d of %d in %.1f s",
                entry.id,
                name,
                reason,
                attempt + 1,
                attempts,
                wait,
            )
            time.sleep(wait)
    raise MicrorestoreError(
        f"model {entry.id!r}: could not download {name} from {url} after {attempts} attempt(s): {reason}"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

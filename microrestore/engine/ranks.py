"""The place of a process in a torchrun job, from the environment alone (no torch import).

torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` for each process it starts; prediction over many
files needs nothing more to split the work (see :mod:`microrestore.engine.distributed` for training).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn, TypeVar

from microrestore.errors import InputError

T = TypeVar("T")


def env_world() -> tuple[int, int, int]:
    """Return ``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` without it).

    Raises
    ------
    InputError
        Malformed values (not integers, or a rank outside ``[0, WORLD_SIZE)``).
    """
    try:
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        rank = int(os.environ.get("RANK", "0") or 0)
        local = int(os.environ.get("LOCAL_RANK", str(rank)) or 0)
    except ValueError:
        raise InputError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise InputError(f"invalid distributed environment: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}")
    return rank, world, local


def shard_items(items: Sequence[T], rank: int | None = None, world: int | None = None) -> list[T]:
    """The items (files) this rank handles: every ``world``-th one starting at ``rank`` (round robin).

    Parameters
    ----------
    items
        All items, in the same order on every rank.
    rank, world
        Default: :func:`env_world` (``RANK``/``WORLD_SIZE``; every item for a single process).

    Returns
    -------
    list
        ``items[rank::world]``.
    """
    if rank is None or world is None:
        env_rank, env_size, _ = env_world()
        rank = env_rank if rank is None else rank
        world = env_size if world is None else world
    return list(items[rank::world])


def exit_process(status: int) -> NoReturn:
    """End this process with ``status``; a data-parallel rank (``WORLD_SIZE`` > 1) skips interpreter shutdown.

    The rank's process group is already destroyed, but gloo's C++ worker threads can still release tensors
    while the interpreter is torn down and abort the process ("terminate called without an active exception",
    status -6) after its work succeeded. A rank therefore flushes its streams and leaves with ``os._exit``.
    """
    try:
        world = env_world()[1]
    except InputError:  # a malformed environment was reported where it mattered
        world = 1
    if world > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)

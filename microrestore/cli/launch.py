"""``--nproc N``: run a command in N processes through torch's elastic launcher (what ``torchrun`` runs).

The command runs again as ``python -m microrestore ARGS`` in each worker, with torchrun's environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); the launcher returns the exit
status of the first worker that failed, whose own one-line error is what the user sees.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Sequence

from microrestore.errors import InputError, MicrorestoreError


def check_nproc(nproc: int) -> bool:
    """Validate ``--nproc``; return whether the command must start workers (``nproc > 1`` outside torchrun)."""
    if nproc < 1:
        raise InputError(f"--nproc must be at least 1, got {nproc}")
    if nproc == 1:
        return False
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        raise InputError("--nproc cannot be used inside torchrun (torchrun already started the processes)")
    return True


def launch_or_raise(nproc: int, args: Sequence[str]) -> None:
    """:func:`launch`, raising an error with the failed worker's exit status (its message is printed already)."""
    status = launch(nproc, args)
    if status:
        error = MicrorestoreError(f"a worker process failed with exit status {status}")
        error.exit_code = status
        error.forwarded = True  # type: ignore[attr-defined]
        raise error


def launch(nproc: int, args: Sequence[str]) -> int:
    """Run ``python -m microrestore *args`` in ``nproc`` local processes; return the exit status.

    Parameters
    ----------
    nproc
        Number of processes (one per GPU on a CUDA machine).
    args
        The command line of each worker (without ``--nproc``).

    Returns
    -------
    int
        0 when every worker succeeded, else the exit status of the lowest-ranked worker that failed (2 for
        bad input, as in one process).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if "OMP_NUM_THREADS" not in os.environ:  # share the cores instead of each worker taking them all
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
    )
    try:
        elastic_launch(config, entrypoint=sys.executable)("-m", "microrestore", *args)
    except ChildFailedError as exc:
        codes = [f.exitcode for _, f in sorted(exc.failures.items()) if f.exitcode > 0]
        return codes[0] if codes else 1
    return 0

"""Data-parallel training and prediction across processes, on ``torch.distributed`` (launched by torchrun).

One process per device. ``torchrun --nproc-per-node N -m microrestore train ...`` (or ``microrestore train
--nproc N``, which starts torchrun itself) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; the :class:`~microrestore.engine.trainer.Trainer` then joins the process group on its first
``fit`` (NCCL on CUDA devices, gloo on the CPU) and:

- takes its share of each step's batch: the batch of step ``s`` is still ``sample_batch(step_rng(seed, s), B)``
  with the *global* batch size ``B``; rank ``r`` of ``N`` keeps items ``[r B / N, (r + 1) B / N)``, so the N
  processes together see exactly the batch a single process would see;
- wraps each network with trainable parameters in :class:`torch.nn.parallel.DistributedDataParallel`, which
  averages the gradients of the shards: for losses that are means over the batch the averaged gradient is the
  gradient of the global batch (batch-norm statistics are the exception: SyncBatchNorm on CUDA, per process
  on the CPU);
- writes checkpoints, ``metrics.csv`` and the display on rank 0 only; every rank resumes from rank 0's
  checkpoint, with any number of processes (the global batch, not the per-process one, is the run's setting).

Control traffic (stop requests, logged losses, error agreement) goes through a gloo group on the CPU, so that
asking "did any rank get Ctrl-C?" every step never waits for the GPU.

Prediction needs no process group: :func:`shard_items` gives each rank its share of the files by ``RANK`` and
``WORLD_SIZE`` alone.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from microrestore.engine.ranks import env_world, shard_items
from microrestore.errors import InputError, MicrorestoreError

__all__ = [
    "Group",
    "all_gather_batch",
    "any_flag",
    "barrier",
    "broadcast_json",
    "check_in_sync",
    "env_world",
    "gather_tensors",
    "is_distributed",
    "is_main_process",
    "join",
    "leave",
    "mean_floats",
    "rank",
    "rank_device",
    "shard_batch",
    "shard_bounds",
    "shard_items",
    "together",
    "unwrap",
    "world_size",
]

T = TypeVar("T")

#: How long a collective may wait for a missing rank before failing (a crashed peer, a hung data read).
TIMEOUT = _dt.timedelta(minutes=30)


# ----------------------------------------------------------------------------------------------------------
# Where this process stands


def is_distributed() -> bool:
    """Whether a process group of more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """Return the rank of this process: from the process group when initialised, else ``RANK`` (0 without it)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return env_world()[0]


def world_size() -> int:
    """Number of processes: from the process group when initialised, else ``WORLD_SIZE`` (1 without it)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return env_world()[1]


def is_main_process() -> bool:
    """Whether this process is rank 0 (the one that writes files and prints)."""
    return rank() == 0


def rank_device(device: torch.device) -> torch.device:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` for CUDA in a multi-process run, else ``device``."""
    _, world, local = env_world()
    if world > 1 and device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise InputError(
                f"LOCAL_RANK {local} has no GPU: {torch.cuda.device_count()} CUDA device(s) are visible; start at "
                "most one process per GPU"
            )
        return torch.device("cuda", local)
    return device


# ----------------------------------------------------------------------------------------------------------
# The process group


@dataclass
class Group:
    """A joined process group: this rank, the world size, the device and the CPU control group."""

    rank: int
    world: int
    device: torch.device
    control: Any  # a gloo ProcessGroup (the default group when that is gloo already)

    @property
    def main(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0


def join(device: torch.device) -> Group | None:
    """Join (or reuse) the process group when torchrun started more than one process; ``None`` otherwise.

    The backend is NCCL for CUDA devices and gloo otherwise. A group initialised by the caller beforehand is
    used as it is.

    Parameters
    ----------
    device
        This rank's training device (see :func:`rank_device`).

    Returns
    -------
    Group or None
        The group, or ``None`` for a single process.
    """
    if dist.is_available() and dist.is_initialized():
        world = dist.get_world_size()
    else:
        _, world, _ = env_world()
    if world <= 1:
        return None
    if not dist.is_available():
        raise MicrorestoreError("this torch build has no torch.distributed; train in one process")
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", timeout=TIMEOUT, device_id=device)
        else:
            dist.init_process_group("gloo", timeout=TIMEOUT)
    backend = dist.get_backend()
    control = dist.group.WORLD if backend == "gloo" else dist.new_group(backend="gloo", timeout=TIMEOUT)
    return Group(rank=dist.get_rank(), world=dist.get_world_size(), device=device, control=control)


def leave() -> None:
    """Destroy the process group if one is initialised (at the end of a command)."""
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------------------
# Sharding


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Items ``[start, stop)`` of ``n`` that ``rank`` of ``world`` takes (equal shares; ``n % world == 0``)."""
    if n % world:
        raise InputError(
            f"the batch of {n} cannot be split evenly across {world} processes; choose a batch_size that is a "
            f"multiple of {world}"
        )
    share = n // world
    return rank * share, (rank + 1) * share


def shard_batch(batch: Any, rank: int, world: int) -> Any:
    """Take this rank's share of a batch along its first axis.

    Parameters
    ----------
    batch
        A numpy array or tensor ``(B, ...)``, or tuples, lists and dicts of them (other values are kept as
        they are).
    rank, world
        This process and the number of processes.

    Returns
    -------
    Any
        The same structure with items ``[rank B / world, (rank + 1) B / world)`` of every array.

    Raises
    ------
    InputError
        ``B`` is not a multiple of ``world``, or the arrays of one batch have different lengths.
    """
    if world == 1:
        return batch
    lengths: set[int] = set()

    def collect(item: Any) -> None:
        if isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim > 0:
            lengths.add(int(item.shape[0]))
        elif isinstance(item, (tuple, list)):
            for sub in item:
                collect(sub)
        elif isinstance(item, Mapping):
            for sub in item.values():
                collect(sub)

    collect(batch)
    if len(lengths) > 1:
        raise MicrorestoreError(f"cannot shard a batch whose arrays have different lengths {sorted(lengths)}")
    if not lengths:
        return batch
    start, stop = shard_bounds(lengths.pop(), rank, world)

    def cut(item: Any) -> Any:
        if isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim > 0:
            return item[start:stop]
        if isinstance(item, tuple):
            return tuple(cut(sub) for sub in item)
        if isinstance(item, list):
            return [cut(sub) for sub in item]
        if isinstance(item, Mapping):
            return {k: cut(v) for k, v in item.items()}
        return item

    return cut(batch)


# ----------------------------------------------------------------------------------------------------------
# Networks


def wrap_networks(
    networks: Mapping[str, nn.Module], group: Group, *, sync_batchnorm: bool = True, **ddp_kwargs: Any
) -> dict[str, nn.Module]:
    """Wrap each network that has trainable parameters in ``DistributedDataParallel``.

    Parameters
    ----------
    networks
        The task's networks by name (already on ``group.device``).
    group
        The joined group.
    sync_batchnorm
        On CUDA, turn batch-norm layers into ``SyncBatchNorm`` (statistics over the global batch); the
        parameters stay the same objects, so optimisers built on them keep working.
    **ddp_kwargs
        Passed to ``DistributedDataParallel`` (e.g. ``find_unused_parameters=True``).

    Returns
    -------
    dict of str to torch.nn.Module
        Wrapped networks (networks without trainable parameters are returned as they are).
    """
    wrapped: dict[str, nn.Module] = {}
    cuda = group.device.type == "cuda"
    for name, network in networks.items():
        if not any(p.requires_grad for p in network.parameters()):
            wrapped[name] = network
            continue
        if cuda and sync_batchnorm:
            network = nn.SyncBatchNorm.convert_sync_batchnorm(network)
        device_ids = [group.device.index] if cuda else None
        wrapped[name] = nn.parallel.DistributedDataParallel(network, device_ids=device_ids, **ddp_kwargs)
    return wrapped


def unwrap(network: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (``network`` itself otherwise)."""
    return network.module if isinstance(network, nn.parallel.DistributedDataParallel) else network


def check_in_sync(networks: Mapping[str, nn.Module], group: Group) -> None:
    """Raise when the parameters of the networks differ between ranks (a task that bypassed the wrappers).

    Compares one float64 checksum per network across ranks (two small all-reduces on the control group).

    Raises
    ------
    MicrorestoreError
        Naming the first network whose weights differ.
    """
    names = sorted(networks)
    sums = []
    for name in names:
        params = [p.detach() for p in unwrap(networks[name]).parameters()]
        total = sum((p.double().sum() + (p.double() ** 2).sum() for p in params), torch.zeros((), dtype=torch.float64))
        sums.append(float(total))
    low = torch.tensor(sums, dtype=torch.float64)
    high = low.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN, group=group.control)
    dist.all_reduce(high, op=dist.ReduceOp.MAX, group=group.control)
    for name, a, b in zip(names, low.tolist(), high.tolist()):
        if not np.isclose(a, b, rtol=1e-9, atol=0.0):
            raise MicrorestoreError(
                f"the weights of network {name!r} differ between processes: the training step must call its "
                "networks through task.networks (which hold the DistributedDataParallel wrappers)"
            )


# ----------------------------------------------------------------------------------------------------------
# Small collectives on the CPU control group


def any_flag(flag: bool, group: Group) -> bool:
    """Whether ``flag`` is true on any rank."""
    value = torch.tensor([1 if flag else 0], dtype=torch.int32)
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=group.control)
    return bool(value.item())


def mean_floats(values: Mapping[str, float], group: Group) -> dict[str, float]:
    """Average a dict of floats (the same keys on every rank) across ranks."""
    if not values:
        return {}
    keys = list(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=group.control)
    return dict(zip(keys, (tensor / group.world).tolist()))


def broadcast_json(value: Any, group: Group, src: int = 0) -> Any:
    """Send a JSON-serialisable value from ``src`` to every rank (as bytes, never pickled)."""
    data = json.dumps(value).encode("utf-8") if group.rank == src else b""
    size = torch.tensor([len(data)], dtype=torch.int64)
    dist.broadcast(size, src=src, group=group.control)
    buffer = torch.zeros(int(size.item()), dtype=torch.uint8)
    if group.rank == src:
        buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buffer, src=src, group=group.control)
    return json.loads(bytes(buffer.tolist()).decode("utf-8"))


def barrier(group: Group) -> None:
    """Wait for every rank (on the control group)."""
    dist.barrier(group=group.control)


def all_gather_batch(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate the ranks' equally shaped batches along the first axis, in rank order (no gradient).

    Uses the default group, so the tensor must live on the training device of the run.
    """
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def gather_tensors(tensor: torch.Tensor, group: Group) -> list[torch.Tensor]:
    """Every rank's copy of a CPU tensor of the same shape and dtype on every rank, in rank order."""
    parts = [torch.empty_like(tensor) for _ in range(group.world)]
    dist.all_gather(parts, tensor.contiguous(), group=group.control)
    return parts


def together(group: Group | None, action: Callable[[], T]) -> T:
    """Run ``action`` on every rank; when it raises on any rank, raise on every rank.

    The lowest failing rank raises its own exception. Every other rank raises too, instead of waiting forever
    at the next collective: its own exception, or the same kind of error (:class:`InputError` or
    :class:`MicrorestoreError`) with the failing rank's message; these carry ``forwarded = True``, which the
    command line reads to print the message once (from the rank that failed first) and not once per rank.
    """
    if group is None:
        return action()
    error: BaseException | None = None
    result: Any = None
    try:
        result = action()
    except Exception as exc:
        error = exc
    failed = torch.tensor([group.rank if error is not None else group.world], dtype=torch.int64)
    dist.all_reduce(failed, op=dist.ReduceOp.MIN, group=group.control)
    first = int(failed.item())
    if first == group.world:
        return result  # type: ignore[no-any-return]
    message = broadcast_json(
        {"message": str(error), "input": isinstance(error, InputError)} if group.rank == first else None,
        group,
        src=first,
    )
    if group.rank == first and error is not None:
        raise error
    kind = InputError if message["input"] else MicrorestoreError
    forwarded = error if error is not None else kind(message["message"])
    forwarded.forwarded = True  # type: ignore[attr-defined]
    raise forwarded


@contextlib.contextmanager
def process_group_from_env(device: str = "cpu") -> Iterator[Group | None]:
    """Join the process group from torchrun's environment for the block, and leave it afterwards (tests)."""
    from microrestore.engine.device import resolve_device

    group = join(rank_device(resolve_device(device)))
    try:
        yield group
    finally:
        leave()

"""The training loop shared by every method: one network or several (GANs), with exact resume.

A method implements :class:`TrainingTask` and hands the :class:`Trainer` a ``sample_batch(rng, batch_size)``
function. What makes resuming exact, with no data-loader or scheduler state to save:

- the batch of step ``s`` is ``sample_batch(step_rng(seed, s), batch_size)``;
- the task gets its own per-step generator ``ctx.rng = step_rng(seed, s, stream=1)`` (image pools, random
  swaps);
- learning rates are set before every step from ``task.lr_factor(s, total)``, a pure function of the step;
- checkpoints hold networks, optimisers, gradient scalers, torch's random state and the task's extra tensors.

Step numbering: ``training_step`` receives the 0-based index ``s`` of the step it runs; checkpoints, rows of
``metrics.csv`` and the display count completed steps (``s + 1``).

The loop syncs with the device only when it logs: losses returned as tensors are summed on the device and
turned into numbers every ``log_every`` steps (and at checkpoints and validations). On GPUs, batches are
sampled ahead in a background thread and copied from pinned memory without blocking.

Ctrl-C (or SIGTERM) during training finishes the current step, writes a checkpoint and then raises
:class:`KeyboardInterrupt` (``SystemExit`` for SIGTERM); a second Ctrl-C stops at once, keeping the previous
checkpoint. A front end running the training in a thread (the napari plugin) hears every step and asks it to
stop through :mod:`microrestore.engine.observe`: a cancel writes the checkpoint too, then raises
:class:`~microrestore.engine.observe.Cancelled`.

Under torchrun (``WORLD_SIZE > 1``) the loop is data-parallel (see :mod:`microrestore.engine.distributed`):
each rank takes its share of the global batch, networks are wrapped in ``DistributedDataParallel`` while
``fit`` runs (``task.networks`` holds the wrappers then, and the plain modules again afterwards), rank 0
writes checkpoints and ``metrics.csv``, the logged losses are means over all ranks, and a stop request on any
rank stops every rank after the same step.
"""

from __future__ import annotations

import contextlib
import csv
import math
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from microrestore.engine import distributed as dist_utils
from microrestore.engine import observe
from microrestore.engine.checkpoints import (
    finish_interrupted_save,
    has_checkpoint,
    interrupted_save_leftovers,
    load_checkpoint,
    read_checkpoint_record,
    save_checkpoint,
)
from microrestore.engine.device import autocast_context, make_grad_scaler, resolve_device, resolve_precision
from microrestore.engine.fingerprint import check_resumed_data, current_fingerprint
from microrestore.engine.progress import TrainingDisplay
from microrestore.engine.seeding import deterministic_algorithms, step_rng
from microrestore.errors import InputError, MicrorestoreError, Terminated
from microrestore.io.atomic import atomic_write_text

CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.csv"
_TASK_PREFIX = "task/"
_RANK_RNG_PREFIX = "dist_rng/"


@dataclass
class StepContext:
    """What a training step gets besides its batch.

    Attributes
    ----------
    device
        The training device.
    precision
        ``fp32``, ``bf16`` or ``fp16`` (resolved).
    step
        0-based index of this step.
    total
        Total number of steps of the run.
    rng
        This step's generator (``step_rng(seed, step, stream=1)``).
    optimizers
        The task's optimisers by name.
    scalers
        Gradient scalers by optimiser name (fp16 only; empty otherwise).
    """

    device: torch.device
    precision: str
    step: int
    total: int
    rng: np.random.Generator
    optimizers: Mapping[str, torch.optim.Optimizer]
    scalers: Mapping[str, torch.amp.GradScaler] = field(default_factory=dict)

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """Return the autocast context of the run's precision (a no-op in fp32)."""
        return autocast_context(self.device, self.precision)

    def _optimizer(self, name: str) -> torch.optim.Optimizer:
        try:
            return self.optimizers[name]
        except KeyError:
            raise MicrorestoreError(f"no optimizer {name!r}; the task has {sorted(self.optimizers)}") from None

    def zero_grad(self, optimizer_name: str) -> None:
        """Clear the gradients of one optimiser's parameters (set them to ``None``)."""
        self._optimizer(optimizer_name).zero_grad(set_to_none=True)

    def backward(self, loss: torch.Tensor, optimizer_name: str) -> None:
        """Back-propagate ``loss``, scaled by the optimiser's gradient scaler when training in fp16."""
        self._optimizer(optimizer_name)
        scaler = self.scalers.get(optimizer_name)
        if scaler is not None:
            scaler.scale(loss).backward()
        else:
            loss.backward()

    def optimizer_step(self, optimizer_name: str) -> None:
        """Step one optimiser (through its gradient scaler when training in fp16)."""
        optimizer = self._optimizer(optimizer_name)
        scaler = self.scalers.get(optimizer_name)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()

    def minimize(self, loss: torch.Tensor, optimizer_name: str) -> None:
        """``zero_grad``, ``backward`` and ``optimizer_step`` for one optimiser."""
        self.zero_grad(optimizer_name)
        self.backward(loss, optimizer_name)
        self.optimizer_step(optimizer_name)


@runtime_checkable
class TrainingTask(Protocol):
    """What a method implements to be trained by :class:`Trainer`.

    Optional methods, used when present:

    ``validation_step(batch) -> dict[str, float | Tensor]``
        Metrics on the fixed validation batch (networks in eval mode, no gradients, under autocast).
    ``state_tensors() -> dict[str, Tensor]`` and ``load_state_tensors(tensors: dict[str, Tensor]) -> None``
        Extra state kept in checkpoints (image pools, plateau state); the tensors handed back are on the
        training device.

    Optional attribute: ``ddp_options`` (dict), keyword arguments for ``DistributedDataParallel`` in a
    multi-process run, e.g. ``{"find_unused_parameters": True}`` for networks that leave parameters unused in
    some steps. In a multi-process run the training step must call its networks through ``self.networks``
    (the trainer puts the wrapped networks there while ``fit`` runs).

    Attributes
    ----------
    networks
        The networks by name; the trainer moves them to the device before ``configure_optimizers``.
    """

    networks: dict[str, torch.nn.Module]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Create the optimisers (after the networks are on the training device)."""
        ...

    def lr_factor(self, step: int, total: int) -> dict[str, float] | float:
        """Learning-rate factor for step ``step`` of ``total``: one for all optimisers, or one per name.

        A pure function of the step (e.g. constant, then linear decay to zero), so resuming needs no
        scheduler state. Optimisers missing from a dict keep factor 1.
        """
        ...

    def training_step(self, batch: Any, step: int, ctx: StepContext) -> Mapping[str, torch.Tensor | float]:
        """Run one step: zero gradients, forward, backward and step the optimisers itself.

        Returns the losses to log; return detached tensors rather than floats so that the loop does not wait
        for the device at every step.
        """
        ...


@dataclass
class TrainerConfig:
    """Settings of the training loop.

    Attributes
    ----------
    steps
        Total number of steps.
    batch_size
        Batch size handed to ``sample_batch``.
    seed
        Seed of every per-step generator.
    device
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    precision
        ``auto``, ``fp32``, ``bf16`` or ``fp16``.
    checkpoint_every
        Write a checkpoint every this many steps (and always at the end).
    val_every
        Run ``validation_step`` every this many steps and at the end (0: only at the end; needs a validation
        batch).
    log_every
        Average the losses over this many steps into one row of ``metrics.csv`` and the display.
    keep_checkpoints_every
        Also keep ``checkpoint-<step>`` files at multiples of this (``None``: only the last).
    deterministic
        Ask torch for deterministic kernels (needed for bitwise-exact resume on GPUs).
    prefetch
        Sample the next batches in a background thread while the current step runs; ``None``: on for GPU
        devices, off on the CPU (where torch already keeps every core busy and the thread only adds
        hand-over cost). ``sample_batch`` must then draw only from the generator it is given (never from
        torch's global one, which the training thread uses).
    stop_on_nan
        Stop with an error when a logged loss is NaN or infinite.
    sync_batchnorm
        In a multi-process run on CUDA, turn batch-norm layers into ``SyncBatchNorm`` so that their statistics
        cover the global batch (on the CPU each process normalises its own share).
    max_seconds
        Stop after the first step that ends this many seconds after the run (or the resumed run) started, with
        a checkpoint, as if ``fit(until=...)`` had asked for that step; ``None``: no time limit. The learning
        rate schedule still spans ``steps``. With several processes, all stop after the step at which the
        first of them runs out of time.
    channels_last
        Hold 2D convolution weights and image batches in the channels-last layout while training (about 2x
        faster on the CPU; values are the same up to float rounding, and resuming stays exact); ``None``: on
        for the CPU, off elsewhere.
    """

    steps: int
    batch_size: int
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    checkpoint_every: int = 1000
    val_every: int = 1000
    log_every: int = 50
    keep_checkpoints_every: int | None = None
    deterministic: bool = True
    prefetch: bool | None = None
    stop_on_nan: bool = True
    sync_batchnorm: bool = True
    max_seconds: float | None = None
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.val_every, int) or self.val_every < 0:
            raise InputError(f"val_every must be zero or a positive integer, got {self.val_every!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.max_seconds is not None and not (isinstance(self.max_seconds, (int, float)) and self.max_seconds > 0):
            raise InputError(f"max_seconds must be a positive number of seconds, got {self.max_seconds!r}")


# ----------------------------------------------------------------------------------------------------------
# metrics.csv


class _MetricsLog:
    """``metrics.csv``: one row per logged step; the header grows when new columns appear."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header: list[str] = []
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as handle:
                self.header = next(csv.reader(handle), [])

    def read(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def _rewrite(self, header: list[str], rows: Sequence[Mapping[str, Any]]) -> None:
        lines = [",".join(header)]
        lines += [",".join(str(row.get(col, "")) for col in header) for row in rows]
        atomic_write_text(self.path, "\n".join(lines) + "\n", fsync=False)
        self.header = header

    def truncate_after(self, step: int) -> None:
        """Drop rows of steps after ``step`` (work a resumed run repeats)."""
        rows = self.read()
        kept = [row for row in rows if _row_step(row) <= step]
        if len(kept) != len(rows):
            self._rewrite(self.header, kept)

    def reset(self) -> None:
        self.path.unlink(missing_ok=True)
        self.header = []

    def append(self, row: Mapping[str, float | int]) -> None:
        text = {k: (f"{v:.8g}" if isinstance(v, float) else str(v)) for k, v in row.items()}
        new = [k for k in text if k not in self.header]
        if new or not self.path.is_file():
            self._rewrite(self.header + new, [*self.read(), text])
            return
        with open(self.path, "a", encoding="utf-8", newline="") as handle:
            handle.write(",".join(text.get(col, "") for col in self.header) + "\n")


class _NullLog(_MetricsLog):
    """What ranks other than 0 log: nothing."""

    def __init__(self) -> None:
        self.path = Path(METRICS_FILE)
        self.header = []

    def read(self) -> list[dict[str, str]]:
        return []

    def truncate_after(self, step: int) -> None:
        return None

    def reset(self) -> None:
        return None

    def append(self, row: Mapping[str, float | int]) -> None:
        return None


def _row_step(row: Mapping[str, str]) -> int:
    try:
        return int(row.get("step", "") or -1)
    except ValueError:
        return -1


# ----------------------------------------------------------------------------------------------------------
# Signals


class _Interrupt:
    """Turns the first SIGINT/SIGTERM into a request to stop after the current step."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Interrupt]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):
                self._previous[int(sig)] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)

    def reraise(self) -> None:
        if self.signum == signal.SIGTERM:
            raise Terminated(128 + int(signal.SIGTERM))
        raise KeyboardInterrupt


# ----------------------------------------------------------------------------------------------------------
# Trainer


class _Prefetcher:
    """Samples the batches of steps ``start .. end - 1`` in order, a couple of steps ahead, in a thread."""

    def __init__(self, fetch: Callable[[int], Any], start: int, end: int, depth: int = 2) -> None:
        self._fetch = fetch
        self._queue: queue.Queue[tuple[int, Any, BaseException | None]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(start, end), name="microrestore-sample", daemon=True)
        self._thread.start()

    def _run(self, start: int, end: int) -> None:
        for step in range(start, end):
            try:
                item: tuple[int, Any, BaseException | None] = (step, self._fetch(step), None)
            except BaseException as exc:  # handed to the training thread, which raises it
                item = (step, None, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if self._stop.is_set() or item[2] is not None:
                return

    def get(self, step: int) -> Any:
        got, batch, error = self._queue.get()
        if error is not None:
            raise error
        if got != step:  # cannot happen: one producer, one consumer, both in step order
            raise MicrorestoreError(f"batch prefetcher out of step: got {got}, expected {step}")
        return batch

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=5)


def _to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move numpy arrays and tensors (also inside tuples, lists and dicts) to ``device``.

    On CUDA, host tensors are staged in pinned memory so that the copy is asynchronous: a copy from pageable
    memory would make the host wait for every queued kernel, a device sync per step. With ``channels_last``,
    4D tensors (2D image batches) come in the channels-last layout the networks' weights then have.
    """
    if isinstance(batch, np.ndarray):
        batch = torch.from_numpy(np.ascontiguousarray(batch))
    if isinstance(batch, torch.Tensor):
        if device.type == "cuda" and batch.device.type == "cpu":
            batch = batch.pin_memory().to(device, non_blocking=True)
        else:
            batch = batch.to(device)
        return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.dim() == 4 else batch
    if isinstance(batch, tuple):
        return tuple(_to_device(b, device, channels_last) for b in batch)
    if isinstance(batch, list):
        return [_to_device(b, device, channels_last) for b in batch]
    if isinstance(batch, dict):
        return {k: _to_device(v, device, channels_last) for k, v in batch.items()}
    return batch


@contextlib.contextmanager
def channels_last_weights(networks: Sequence[torch.nn.Module], enabled: bool = True) -> Iterator[bool]:
    """Hold the 4D (2D convolution) weights of ``networks`` in the channels-last layout inside the block.

    oneDNN's 2D convolutions run about twice as fast on the CPU in that layout, forwards and backwards. Only
    the layout changes, never a value, and it is undone on leaving (model files and checkpoints are written
    from ordinary tensors either way). Yields whether the layout is in force (``False`` when not ``enabled``
    or when no network has a 4D weight).
    """
    tensors = [t for net in networks for t in (*net.parameters(), *net.buffers()) if t.dim() == 4]
    if not (enabled and tensors):
        yield False
        return
    for t in tensors:
        t.data = t.data.contiguous(memory_format=torch.channels_last)
    try:
        yield True
    finally:
        for t in tensors:
            t.data = t.data.contiguous()
            if isinstance(t, torch.nn.Parameter) and t.grad is not None:
                t.grad = t.grad.contiguous()


def _float_values(values: Mapping[str, torch.Tensor | float]) -> dict[str, float]:
    """Turn a dict of scalar tensors and numbers into floats with a single device sync."""
    tensors = {k: v for k, v in values.items() if isinstance(v, torch.Tensor)}
    out = {k: float(v) for k, v in values.items() if not isinstance(v, torch.Tensor)}
    if tensors:
        device = next(iter(tensors.values())).device
        stacked = torch.stack([v.detach().float().mean().to(device) for v in tensors.values()])
        out.update(zip(tensors, stacked.tolist(), strict=True))
    return {k: out[k] for k in values}


class Trainer:
    """Train a :class:`TrainingTask` with checkpoints, logging and exact resume.

    Parameters
    ----------
    task
        The method's training task.
    sample_batch
        ``sample_batch(rng, batch_size)``: the batch for a step, drawn only from ``rng`` (e.g. a
        :class:`~microrestore.engine.patches.PatchSampler`). Numpy arrays in it are moved to the device.
    output_dir
        The model folder: ``metrics.csv`` and ``checkpoints/`` are written there.
    config
        Loop settings.
    progress
        Show the training display.
    validation_batch
        A fixed batch for ``task.validation_step``.

    Raises
    ------
    InputError
        Unavailable device or invalid precision.
    """

    def __init__(
        self,
        task: TrainingTask,
        sample_batch: Callable[[np.random.Generator, int], Any],
        output_dir: str | Path,
        config: TrainerConfig,
        progress: bool = True,
        validation_batch: Any = None,
    ) -> None:
        self.task = task
        self.sample_batch = sample_batch
        self.output_dir = Path(output_dir)
        self.config = config
        self.progress = progress
        self.validation_batch = validation_batch
        self.device = dist_utils.rank_device(resolve_device(config.device))
        self.precision = resolve_precision(self.device, config.precision)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.step = 0
        self._saved_step = -1
        self.group: dist_utils.Group | None = None
        self._modules: dict[str, torch.nn.Module] = dict(task.networks)
        self._channels_last = False  # set by fit() (see TrainerConfig.channels_last)

    @property
    def checkpoint_dir(self) -> Path:
        """Folder of the checkpoints."""
        return self.output_dir / CHECKPOINT_DIR

    # -- setup ------------------------------------------------------------------------------------------

    def _check_output(self, resume: bool) -> bool:
        """Refuse an output folder that does not fit ``resume``; return whether to resume.

        ``--resume`` after a kill during the very first checkpoint save, which left only ``.partial`` files
        that cannot be completed, starts the run afresh with a note (there is nothing to resume from).
        """
        exists = has_checkpoint(self.checkpoint_dir)
        leftovers = interrupted_save_leftovers(self.checkpoint_dir)
        if resume and not exists and leftovers:
            if self.group is None or self.group.main:
                print(
                    f"microrestore: {self.checkpoint_dir}: the first checkpoint save was interrupted and left only "
                    f"incomplete files ({', '.join(p.name for p in leftovers)}); nothing to resume, starting from "
                    "step 0",
                    file=sys.stderr,
                    flush=True,
                )
            return False
        if resume and not exists:
            raise InputError(
                f"cannot resume: no checkpoint in {self.checkpoint_dir} (train without --resume to start a new run)",
                self.output_dir,
            )
        if not resume and (exists or (self.output_dir / "config.yaml").is_file()):
            raise InputError(
                "output folder already holds a training run; pass --resume to continue it or choose another "
                "output folder",
                self.output_dir,
            )
        return resume

    def _setup(self) -> None:
        for network in self.task.networks.values():
            network.to(self.device)
            network.train()
        self.optimizers = dict(self.task.configure_optimizers())
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                lr = group["lr"]
                group.setdefault("initial_lr", float(lr.item()) if isinstance(lr, torch.Tensor) else float(lr))
        self.scalers = {}
        for name in self.optimizers:
            scaler = make_grad_scaler(self.device, self.precision)
            if scaler is not None:
                self.scalers[name] = scaler

    def _restore(self) -> int:
        group = self.group
        if group is not None:
            # Rank 0 checks the checkpoint first (and finishes a save that was cut between its two renames).
            dist_utils.together(group, lambda: read_checkpoint_record(self.checkpoint_dir) if group.main else None)
        return dist_utils.together(group, self._restore_here)

    def _restore_here(self) -> int:
        group = self.group
        state = load_checkpoint(self.checkpoint_dir, self._modules, self.optimizers, self.scalers)
        check_resumed_data(state.extra_json.get("data"), state.path)
        saved = state.extra_json.get("trainer", {})
        for key in ("seed", "batch_size"):
            if key in saved and saved[key] != getattr(self.config, key):
                raise InputError(
                    f"the checkpoint was trained with {key} {saved[key]}, not {getattr(self.config, key)}; "
                    "resuming with another value would not continue the same run",
                    state.path,
                )
        task_tensors = {
            k[len(_TASK_PREFIX) :]: v.to(self.device)
            for k, v in state.extra_tensors.items()
            if k.startswith(_TASK_PREFIX)
        }
        loader = getattr(self.task, "load_state_tensors", None)
        if loader is not None:
            loader(task_tensors)
        elif task_tensors:
            raise InputError("the checkpoint holds task state, but the task cannot load it", state.path)
        if group is not None and group.rank > 0:
            saved_rng = state.extra_tensors.get(f"{_RANK_RNG_PREFIX}{group.rank}")
            if saved_rng is not None and saved_rng.numel() == self._rank_rng_state().numel():
                self._set_rank_rng_state(saved_rng)
            else:  # a rank the saved run did not have: a fresh stream of its own
                torch.manual_seed(self._torch_seed(group.rank, state.step))
        return state.step

    # -- random state of each rank ----------------------------------------------------------------------

    def _torch_seed(self, rank: int = 0, step: int = 0) -> int:
        """Seed of torch's generator for a fresh run (rank 0; other ranks and resumed new ranks differ)."""
        entropy = [self.config.seed, 0x7472] if rank == 0 and step == 0 else [self.config.seed, 0x7472, rank, step]
        return int(np.random.SeedSequence(entropy).generate_state(1)[0])

    def _rank_rng_state(self) -> torch.Tensor:
        parts = [torch.get_rng_state()]
        if self.device.type == "cuda":
            parts.append(torch.cuda.get_rng_state(self.device))
        return torch.cat(parts)

    def _set_rank_rng_state(self, state: torch.Tensor) -> None:
        state = state.to("cpu", torch.uint8)
        n = torch.get_rng_state().numel()
        torch.set_rng_state(state[:n].clone())
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(state[n:].clone(), self.device)

    # -- pieces of a step -------------------------------------------------------------------------------

    def _set_lr(self, step: int) -> dict[str, float]:
        lr_factor = getattr(self.task, "lr_factor", None)
        factors = lr_factor(step, self.config.steps) if lr_factor is not None else 1.0
        if isinstance(factors, Mapping):
            unknown = set(factors) - set(self.optimizers)
            if unknown:
                raise MicrorestoreError(f"lr_factor names unknown optimizers {sorted(unknown)}")
        lrs = {}
        for name, optimizer in self.optimizers.items():
            factor = float(factors.get(name, 1.0) if isinstance(factors, Mapping) else factors)
            for group in optimizer.param_groups:
                value = group["initial_lr"] * factor
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(value)
                else:
                    group["lr"] = value
            lrs[name] = optimizer.param_groups[0]["initial_lr"] * factor
        return lrs

    def _lr_columns(self, lrs: Mapping[str, float]) -> dict[str, float]:
        if len(lrs) == 1:
            return {"lr": next(iter(lrs.values()))}
        return {f"lr_{name}": value for name, value in lrs.items()}

    def _validate(self, batch: Any) -> dict[str, float]:
        validation_step = getattr(self.task, "validation_step", None)
        if validation_step is None or batch is None:
            return {}
        wrapped = self.task.networks
        self.task.networks = self._modules  # plain modules: validation runs on rank 0 alone, no collectives
        modes = {name: net.training for name, net in self._modules.items()}
        for net in self._modules.values():
            net.eval()
        try:
            with torch.no_grad(), autocast_context(self.device, self.precision):
                values = validation_step(batch)
        finally:
            for name, net in self._modules.items():
                net.train(modes[name])
            self.task.networks = wrapped
        floats = _float_values(values)
        return {(k if k.startswith("val_") else f"val_{k}"): v for k, v in floats.items()}

    def _save(self, step: int) -> None:
        group = self.group
        rank_rng: list[torch.Tensor] = []
        if group is not None:
            dist_utils.check_in_sync(self._modules, group)
            rank_rng = dist_utils.gather_tensors(self._rank_rng_state(), group)
        if group is None or group.main:
            getter = getattr(self.task, "state_tensors", None)
            extra = {f"{_TASK_PREFIX}{k}": v for k, v in (getter() if getter is not None else {}).items()}
            extra.update({f"{_RANK_RNG_PREFIX}{r}": state for r, state in enumerate(rank_rng)})
            record: dict[str, Any] = {"trainer": asdict(self.config)}
            data = current_fingerprint()
            if data is not None:  # set by microrestore.api.train: a resume must use the same data
                record["data"] = data
            if group is not None:
                record["world_size"] = group.world
            save_checkpoint(
                self.checkpoint_dir,
                step,
                networks=self._modules,
                optimizers=self.optimizers,
                scalers=self.scalers,
                extra_tensors=extra,
                extra_json=record,
                keep_every=self.config.keep_checkpoints_every,
            )
        self._saved_step = step

    # -- the loop ---------------------------------------------------------------------------------------

    def fit(self, resume: bool = False, until: int | None = None) -> dict[str, float]:
        """Train to ``config.steps``, starting fresh or from the last checkpoint.

        Parameters
        ----------
        resume
            Continue from ``output_dir/checkpoints/checkpoint-last``; rows of ``metrics.csv`` after the
            checkpoint's step are dropped.
        until
            Stop after this many completed steps (with a checkpoint) instead of ``config.steps``; the learning
            rate schedule still spans ``config.steps``. For training in chunks (time-limited jobs) that a later
            ``fit(resume=True)`` continues.

        Returns
        -------
        dict of str to float
            The last row of ``metrics.csv``: ``step``, mean losses of the last logging window, learning
            rate(s) and the final validation metrics.

        Raises
        ------
        InputError
            ``resume`` without a checkpoint; a fresh run in a folder that holds a run already; a checkpoint
            that does not fit the task or was trained with another seed or batch size.
        MicrorestoreError
            A loss became NaN or infinite (with ``stop_on_nan``).
        KeyboardInterrupt
            After Ctrl-C, once the checkpoint of the last completed step is written.
        """
        channels_last = self.config.channels_last
        if channels_last is None:
            channels_last = self.device.type == "cpu"
        with (
            deterministic_algorithms(self.config.deterministic),
            channels_last_weights(list(self.task.networks.values()), channels_last) as self._channels_last,
        ):
            return self._fit(resume, until)

    def _fit(self, resume: bool, until: int | None) -> dict[str, float]:
        cfg = self.config
        group = self.group = dist_utils.join(self.device)
        rank, world = (group.rank, group.world) if group is not None else (0, 1)
        main = rank == 0

        def finish() -> None:  # rank 0 completes a first save cut between its renames, before anyone checks
            if main and resume:
                finish_interrupted_save(self.checkpoint_dir)

        def check() -> bool:
            dist_utils.shard_bounds(cfg.batch_size, 0, world)
            return self._check_output(resume)

        dist_utils.together(group, finish)
        resume = dist_utils.together(group, check)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._setup()
        self._modules = dict(self.task.networks)
        log: _MetricsLog = _MetricsLog(self.output_dir / METRICS_FILE) if main else _NullLog()
        if resume:
            start = self._restore()
            if start > cfg.steps:
                raise InputError(
                    f"the checkpoint is at step {start}, beyond the requested {cfg.steps} steps", self.checkpoint_dir
                )
            log.truncate_after(start)
            self._saved_step = start
            if main and self.progress:
                print(f"resuming from step {start} of {cfg.steps}", file=sys.stderr, flush=True)
        else:
            start = 0
            log.reset()
            # Training draws (dropout, noise) start from a state fixed by the seed, whatever built the networks.
            torch.manual_seed(self._torch_seed(rank))
        self.step = start
        end = cfg.steps if until is None else max(0, min(int(until), cfg.steps))
        if start >= end:
            rows = log.read()
            done: dict[str, float] = (
                {k: float(v) for k, v in rows[-1].items() if v not in ("", None)} if rows else {"step": start}
            )
            return dist_utils.broadcast_json(done, group) if group is not None else done

        original = self.task.networks
        if group is not None:
            options = dict(getattr(self.task, "ddp_options", None) or {})
            self.task.networks = dist_utils.wrap_networks(
                self._modules, group, sync_batchnorm=cfg.sync_batchnorm, **options
            )
        try:
            return self._loop(start, end, log)
        finally:
            self.task.networks = original

    def _loop(self, start: int, end: int, log: _MetricsLog) -> dict[str, float]:
        cfg = self.config
        group = self.group
        rank, world = (group.rank, group.world) if group is not None else (0, 1)
        main = rank == 0
        validation_batch = _to_device(self.validation_batch, self.device, self._channels_last) if main else None
        run = _Running(validation_batch=validation_batch, main=main)
        interrupt = _Interrupt()

        def fetch(step: int) -> Any:
            batch = self.sample_batch(step_rng(cfg.seed, step), cfg.batch_size)
            return dist_utils.shard_batch(batch, rank, world)

        display = self._display(start, main)
        prefetch = cfg.prefetch if cfg.prefetch is not None else self.device.type != "cpu"
        prefetcher = _Prefetcher(fetch, start, end) if prefetch else None
        started = time.monotonic()
        try:
            with interrupt.installed(), display:
                for step in range(start, end):
                    self._train_step(step, prefetcher.get(step) if prefetcher is not None else fetch(step), run)
                    done = self.step = step + 1
                    stop, out_of_time = self._stop_flags(interrupt, started)
                    cancel = self.group is None and observe.cancel_requested()  # a front end's Cancel button
                    self._record(done, end, (stop or cancel, out_of_time), run, log, display)
                    if cancel:
                        display.message(f"cancelled: checkpoint written at step {done}")
                        raise observe.Cancelled(f"cancelled: checkpoint written at step {done}")
                    if stop:
                        display.message(f"interrupted: checkpoint written at step {done}")
                        interrupt.reraise()
                    if out_of_time and done < end:
                        display.message(f"time budget of {cfg.max_seconds:g} s reached: stopped at step {done}")
                        break
        except KeyboardInterrupt:
            # A second Ctrl-C, or one outside the main thread: save only if no step was half done (and, with
            # several processes, never: the others are not there to agree).
            if group is None and not run.in_step and self.step > self._saved_step and not interrupt.requested:
                if run.count:
                    self._flush(run, self.step, False, log)
                self._save(self.step)
            raise
        finally:
            if prefetcher is not None:
                prefetcher.close()
        return {k: float(v) for k, v in run.last_row.items()}

    def _display(self, start: int, main: bool) -> TrainingDisplay:
        """The live display; without a terminal a line every 30 s, or every 5% of the run when that comes first."""
        cfg = self.config
        return TrainingDisplay(
            cfg.steps,
            start=start,
            enabled=self.progress and main,
            log_every=max(cfg.log_every, cfg.steps // 20),
            description="training",
            max_seconds=cfg.max_seconds,
        )

    def _train_step(self, step: int, batch: Any, run: _Running) -> None:
        """One optimisation step of the task on ``batch``; its losses are added to the running sums."""
        cfg = self.config
        batch = _to_device(batch, self.device, self._channels_last)
        run.lrs = self._set_lr(step)
        ctx = StepContext(
            device=self.device,
            precision=self.precision,
            step=step,
            total=cfg.steps,
            rng=step_rng(cfg.seed, step, stream=1),
            optimizers=self.optimizers,
            scalers=self.scalers,
        )
        run.in_step = True
        run.add(self.task.training_step(batch, step, ctx))
        run.in_step = False

    def _stop_flags(self, interrupt: _Interrupt, started: float) -> tuple[bool, bool]:
        """``(interrupted, out of time)``: every rank stops after the same step when any of them has to."""
        cfg, group = self.config, self.group
        stop = interrupt.requested if group is None else dist_utils.any_flag(interrupt.requested, group)
        out_of_time = cfg.max_seconds is not None and time.monotonic() - started >= cfg.max_seconds
        if cfg.max_seconds is not None and group is not None:
            out_of_time = dist_utils.any_flag(out_of_time, group)
        return stop, out_of_time

    def _record(
        self,
        done: int,
        end: int,
        stops: tuple[bool, bool],
        run: _Running,
        log: _MetricsLog,
        display: TrainingDisplay,
    ) -> None:
        """After step ``done``: log a row (with validation when due), update the display, checkpoint when due.

        ``stops`` is ``(interrupted, out of time)``: both checkpoint; running out of time also validates.
        """
        cfg = self.config
        stop, out_of_time = stops
        final = done == cfg.steps or (out_of_time and done < end)
        due = final or (cfg.val_every > 0 and done % cfg.val_every == 0)
        validate = self.validation_batch is not None and due
        checkpoint = done == end or done % cfg.checkpoint_every == 0 or stop or out_of_time
        if checkpoint or validate or done % cfg.log_every == 0 or observe.log_every(done):
            run.last_row = self._flush(run, done, validate, log)
            losses = {k: v for k, v in run.last_row.items() if k != "step"}
            display.update(done, losses)
            observe.training_step(done, cfg.steps, losses)
        else:
            display.update(done)
            observe.training_step(done, cfg.steps)
        if checkpoint:
            self._save(done)

    def _flush(self, run: _Running, done: int, validate: bool, log: _MetricsLog) -> dict[str, float]:
        """Log the mean losses since the last row (averaged over ranks), learning rates and validation metrics."""
        cfg, group = self.config, self.group
        row: dict[str, float] = {"step": done}
        if run.count:
            means = _float_values(run.sums)
            if group is not None:
                means = dist_utils.mean_floats(means, group)
            row.update({k: v / run.count for k, v in means.items()})
            if cfg.stop_on_nan:
                bad = [k for k, v in means.items() if not math.isfinite(v)]
                if bad:
                    raise MicrorestoreError(
                        f"training diverged: loss {bad[0]!r} is {means[bad[0]]} around step {done}; lower the "
                        "learning rate or train in fp32 (the last checkpoint is kept)"
                    )
        row.update(self._lr_columns(run.lrs))
        if validate:
            values = self._validate(run.validation_batch) if run.main else {}
            row.update(dist_utils.broadcast_json(values, group) if group is not None else values)
        log.append(row)
        run.sums, run.count = {}, 0
        return row


@dataclass
class _Running:
    """What the training loop carries between steps: loss sums since the last logged row, and its state."""

    validation_batch: Any = None
    main: bool = True
    sums: dict[str, torch.Tensor | float] = field(default_factory=dict)
    count: int = 0
    in_step: bool = False
    lrs: dict[str, float] = field(default_factory=dict)
    last_row: dict[str, float] = field(default_factory=dict)

    def add(self, losses: Mapping[str, Any]) -> None:
        """Add one step's losses (tensors stay on the device until the row is logged)."""
        for key, value in losses.items():
            value = value.detach() if isinstance(value, torch.Tensor) else float(value)
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.count += 1


def trainer_config(method_config: Any, device: str = "auto", **overrides: Any) -> TrainerConfig:
    """A :class:`TrainerConfig` from a method's configuration.

    Reads the fields every trainable method's configuration has: ``steps``, ``batch_size``, ``seed``,
    ``precision``, ``checkpoint_every`` and ``validation_every``; ``overrides`` replace any of the result's
    fields.
    """
    values: dict[str, Any] = {
        "steps": method_config.steps,
        "batch_size": method_config.batch_size,
        "seed": method_config.seed,
        "device": device,
        "precision": method_config.precision,
        "checkpoint_every": method_config.checkpoint_every,
        "val_every": method_config.validation_every,
    }
    values.update(overrides)
    return TrainerConfig(**values)


def constant_then_linear_decay(step: int, total: int, decay_start: float = 0.5) -> float:
    """Learning-rate factor: 1 for the first ``decay_start`` share of the steps, then linearly down to 0.

    The schedule of CycleGAN/c²GAN (constant, then linear decay over as many steps again) and COMI
    (linear decay over the second half).

    Parameters
    ----------
    step
        0-based step index.
    total
        Total number of steps.
    decay_start
        Share of the run after which the decay begins (0 to 1).

    Returns
    -------
    float
        Factor in [0, 1]; it reaches 0 after the last step.
    """
    begin = round(total * decay_start)
    if step < begin:
        return 1.0
    return max(0.0, 1.0 - (step - begin) / max(1, total - begin))


def fit_and_save(
    task: TrainingTask,
    sample_batch: Callable[[np.random.Generator, int], Any],
    request: Any,
    method_config: Any,
    *,
    method: str,
    networks: Mapping[str, torch.nn.Module],
    normalization: Mapping[str, Any],
    axes: str,
    config: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    validation_batch: Any = None,
) -> Path:
    """Train ``task`` as ``request`` asks (fresh or resumed) and write the model folder.

    The common end of a method's ``train``: a :class:`Trainer` built with :func:`trainer_config` (and the request's
    ``max_seconds``), ``fit``, then
    :func:`~microrestore.engine.modeldir.save_model` with the networks' specs, the final metrics, and a provenance
    holding the seed and steps of ``method_config`` (plus ``provenance``).

    Parameters
    ----------
    task
        The training task.
    sample_batch
        ``sample_batch(rng, batch_size)``, e.g. a :class:`~microrestore.engine.patches.PatchSampler`'s ``sample``.
    request
        The :class:`~microrestore.plugins.registry.TrainRequest` (output, resume, device, progress).
    method_config
        The method's validated configuration (see :func:`trainer_config`).
    method
        Method name recorded in the model folder.
    networks
        The networks to save (each with a ``spec``), e.g. only the generators of a GAN.
    normalization, axes
        As :func:`~microrestore.engine.modeldir.save_model`.
    config
        Configuration to record (default ``method_config.model_dump()``), e.g. with values resolved from the data.
    provenance
        Extra provenance (data files, ...).
    validation_batch
        The fixed validation batch.

    Returns
    -------
    Path
        The model folder ``request.output``.
    """
    from microrestore import __version__
    from microrestore.engine.modeldir import save_model

    trainer = Trainer(
        task,
        sample_batch,
        request.output,
        trainer_config(method_config, request.device, max_seconds=request.max_seconds),
        progress=request.progress,
        validation_batch=validation_batch,
    )
    final = trainer.fit(resume=request.resume)
    save_model(
        request.output,
        method=method,
        networks=networks,
        network_specs={name: net.spec for name, net in networks.items()},
        normalization=normalization,
        config=method_config.model_dump() if config is None else config,
        axes=axes,
        provenance={
            "microrestore": __version__,
            "seed": method_config.seed,
            "steps": method_config.steps,
            "steps_run": trainer.step,
            **(provenance or {}),
        },
        metrics=final,
    )
    return Path(request.output)

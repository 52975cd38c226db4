"""Seeding, per-step random generators and torch random state.

Data sampling never draws from a long-lived generator: the batch of step ``s`` comes from
``step_rng(seed, s)``, so a resumed run draws exactly the batches the uninterrupted run would have drawn,
with no generator state to save. Torch's own generators (dropout, noise drawn inside a training step) are
saved in checkpoints with :func:`torch_rng_state` and restored with :func:`set_torch_rng_state`.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import warnings
from collections.abc import Iterator

import numpy as np
import torch

from microrestore.errors import InputError

_CPU_KEY = "rng/torch_cpu"
_CUDA_PREFIX = "rng/torch_cuda/"


def _check_seed(seed: int, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


def _use_deterministic_algorithms(mode: bool, warn_only: bool = False) -> None:
    """``torch.use_deterministic_algorithms`` without importing torch's compiler when nothing compiles.

    The public function also sets ``torch._inductor.config.deterministic``, importing inductor and dynamo to do
    so: 3 to 10 s on a small CPU, paid by every training run that never compiles anything. The flag only
    matters to code that compiles, which has inductor loaded already: then (or when torch lacks the private
    setter) the public function runs; otherwise only the kernel setting, which is what eager mode reads.
    """
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)


def configure_determinism(deterministic: bool = True) -> None:
    """Ask torch for deterministic kernels (or for the fastest ones).

    Parameters
    ----------
    deterministic
        ``True``: cuDNN deterministic and not benchmarking, ``torch.use_deterministic_algorithms`` in
        warn-only mode (operations without a deterministic version warn instead of failing), and the
        cuBLAS workspace setting it needs (when not set already). ``False``: cuDNN benchmarking on.
    """
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        _use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True
        _use_deterministic_algorithms(False)


@contextlib.contextmanager
def deterministic_algorithms(deterministic: bool = True) -> Iterator[None]:
    """Apply :func:`configure_determinism` inside the block and restore torch's previous settings after it.

    Parameters
    ----------
    deterministic
        As for :func:`configure_determinism`.

    Yields
    ------
    None
        Nothing; the settings hold while the block runs.
    """
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    configure_determinism(deterministic)
    try:
        yield
    finally:
        _use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python's, numpy's global and torch's (CPU and every CUDA device) generators.

    Parameters
    ----------
    seed
        Non-negative integer.
    deterministic
        Also select deterministic kernels (see :func:`configure_determinism`).

    Raises
    ------
    InputError
        ``seed`` is not a non-negative integer.
    """
    seed = _check_seed(seed)
    random.seed(seed)
    # Third-party code may still draw from numpy's global generator; ours never does.
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)
    configure_determinism(deterministic)


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """Return the generator for one training step.

    Parameters
    ----------
    seed
        The run's seed.
    step
        Step index (0-based).
    stream
        Independent stream number, so that different consumers in the same step (batch sampling, image
        pools, augmentation on the device) do not share draws.

    Returns
    -------
    numpy.random.Generator
        ``np.random.default_rng([seed, stream, step])``: a pure function of its arguments.
    """
    return np.random.default_rng([_check_seed(seed), _check_seed(stream, "stream"), _check_seed(step, "step")])


def torch_rng_state() -> dict[str, torch.Tensor]:
    """Return torch's CPU generator state and, when CUDA is initialised, every CUDA device's state.

    Returns
    -------
    dict of str to torch.Tensor
        ``rng/torch_cpu`` and ``rng/torch_cuda/<index>``, uint8 tensors on the CPU.
    """
    states = {_CPU_KEY: torch.get_rng_state().clone()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            states[f"{_CUDA_PREFIX}{index}"] = state.clone()
    return states


def set_torch_rng_state(states: dict[str, torch.Tensor]) -> None:
    """Restore states saved by :func:`torch_rng_state`.

    CUDA states are restored for the devices present; when the saved run had CUDA states and this machine
    has fewer devices, the missing ones are skipped with a warning (the continuation is then not bitwise
    identical to the uninterrupted run).

    Parameters
    ----------
    states
        Mapping as returned by :func:`torch_rng_state` (other keys are ignored).
    """
    cpu = states.get(_CPU_KEY)
    if cpu is not None:
        torch.set_rng_state(cpu.to(device="cpu", dtype=torch.uint8))
    cuda = {int(k[len(_CUDA_PREFIX) :]): v for k, v in states.items() if k.startswith(_CUDA_PREFIX)}
    if not cuda:
        return
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for index, state in sorted(cuda.items()):
        if index < available:
            torch.cuda.set_rng_state(state.to(device="cpu", dtype=torch.uint8), device=index)
    if max(cuda) >= available:
        warnings.warn(
            f"the checkpoint holds random state for {len(cuda)} CUDA device(s) but {available} are "
            "available; the resumed run will not repeat the original one exactly",
            RuntimeWarning,
            stacklevel=2,
        )

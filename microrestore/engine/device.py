"""Device selection and mixed precision.

``resolve_device("auto")`` picks CUDA, then Apple MPS, then the CPU. Precision is one of ``fp32``, ``bf16``,
``fp16`` or ``auto``; ``auto`` means bf16 autocast on CUDA devices that support it and fp32 everywhere else.
fp16 needs a gradient scaler (:func:`make_grad_scaler`) and is only offered on CUDA.

Networks with FFT layers (Fourier channel attention, FNSM) should compute their FFTs in float32
(``x.float()``): cuFFT has no bf16 transform.
"""

from __future__ import annotations

import contextlib
import re
from typing import Literal

import torch

from microrestore.errors import InputError

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")

_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn a device string into a :class:`torch.device` that exists on this machine.

    Parameters
    ----------
    spec
        ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; a
        :class:`torch.device` is checked the same way.

    Returns
    -------
    torch.device
        The device; ``cuda`` is returned with its index (``cuda:0``) so that it compares equal to the
        device of tensors placed on it.

    Raises
    ------
    InputError
        The device is unknown or not available, e.g. "device 'cuda' requested but CUDA is not available".
    """
    text = str(spec).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is not None:
        if not torch.cuda.is_available():
            raise InputError(f"device {text!r} requested but CUDA is not available")
        count = torch.cuda.device_count()
        index = int(match.group(1)) if match.group(1) is not None else torch.cuda.current_device()
        if index >= count:
            raise InputError(
                f"device {text!r} requested but only {count} CUDA device{'s' if count != 1 else ''} "
                f"(cuda:0 to cuda:{count - 1}) {'are' if count != 1 else 'is'} available"
            )
        return torch.device("cuda", index)
    if text in ("mps", "mps:0"):
        if not _mps_available():
            raise InputError(f"device {text!r} requested but Apple MPS is not available")
        return torch.device("mps")
    raise InputError(f"unknown device {str(spec)!r}; use auto, cpu, cuda, cuda:N or mps")


def resolve_precision(device: torch.device, precision: str = "auto") -> Precision:
    """Decide the training precision for ``device``.

    Parameters
    ----------
    device
        The device that runs the networks.
    precision
        ``auto``, ``fp32``, ``bf16`` or ``fp16``.

    Returns
    -------
    {"fp32", "bf16", "fp16"}
        ``auto`` gives ``bf16`` on CUDA devices with bf16 support and ``fp32`` everywhere else.

    Raises
    ------
    InputError
        Unknown precision, or ``fp16`` on a device other than CUDA.
    """
    text = str(precision).strip().lower()
    if text not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
    if text == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if text == "fp16" and device.type != "cuda":
        raise InputError(f"precision 'fp16' needs a CUDA device, not {device.type}; use bf16 or fp32")
    return text  # type: ignore[return-value]


def autocast_context(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager[object]:
    """Return the autocast context for ``precision`` on ``device`` (a no-op context for fp32).

    Parameters
    ----------
    device
        The device that runs the forward pass.
    precision
        ``auto``, ``fp32``, ``bf16`` or ``fp16`` (see :func:`resolve_precision`).

    Returns
    -------
    contextlib.AbstractContextManager
        ``torch.autocast`` with the lower-precision dtype, or :func:`contextlib.nullcontext`.
    """
    resolved = resolve_precision(device, precision)
    if resolved == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[resolved])


def make_grad_scaler(device: torch.device, precision: str = "auto") -> torch.amp.GradScaler | None:
    """Return a gradient scaler when training in fp16 on CUDA, else ``None``.

    bf16 and fp32 have the exponent range of fp32 and need no loss scaling.

    Parameters
    ----------
    device
        The training device.
    precision
        ``auto``, ``fp32``, ``bf16`` or ``fp16``.

    Returns
    -------
    torch.amp.GradScaler or None
        A fresh scaler, or ``None`` when none is needed.
    """
    if resolve_precision(device, precision) == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None

from __future__ import annotations

import contextlib

import pytest
import torch

from microrestore.engine.device import autocast_context, make_grad_scaler, resolve_device, resolve_precision
from microrestore.errors import InputError


@pytest.fixture
def no_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("microrestore.engine.device._mps_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


def test_cpu_and_auto_without_accelerator(no_accelerator: None) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("spec", ["cuda", "cuda:1", "CUDA:0"])
def test_cuda_unavailable(no_accelerator: None, spec: str) -> None:
    with pytest.raises(InputError, match=r"requested but CUDA is not available"):
        resolve_device(spec)


def test_cuda_message_exact(no_accelerator: None) -> None:
    with pytest.raises(InputError) as info:
        resolve_device("cuda")
    assert str(info.value) == "device 'cuda' requested but CUDA is not available"


def test_mps_unavailable(no_accelerator: None) -> None:
    with pytest.raises(InputError, match="MPS is not available"):
        resolve_device("mps")


def test_unknown_device() -> None:
    with pytest.raises(InputError, match="unknown device 'gpu'"):
        resolve_device("gpu")


def test_cuda_index_validated(two_gpus: None) -> None:
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(InputError, match=r"only 2 CUDA devices"):
        resolve_device("cuda:2")


def test_precision_resolution(two_gpus: None) -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert resolve_precision(cpu, "auto") == "fp32"
    assert resolve_precision(gpu, "auto") == "bf16"
    assert resolve_precision(cpu, "bf16") == "bf16"
    assert resolve_precision(gpu, "FP16") == "fp16"
    with pytest.raises(InputError, match="needs a CUDA device"):
        resolve_precision(cpu, "fp16")
    with pytest.raises(InputError, match="unknown precision"):
        resolve_precision(cpu, "fp8")


def test_autocast_context_cpu() -> None:
    cpu = torch.device("cpu")
    assert isinstance(autocast_context(cpu, "fp32"), contextlib.nullcontext)
    a, b = torch.ones(4, 4), torch.ones(4, 4)
    with autocast_context(cpu, "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with autocast_context(cpu, "auto"):
        assert (a @ b).dtype == torch.float32


def test_grad_scaler_only_for_fp16_cuda() -> None:
    cpu = torch.device("cpu")
    assert make_grad_scaler(cpu, "fp32") is None
    assert make_grad_scaler(cpu, "bf16") is None
    assert make_grad_scaler(cpu, "auto") is None


def test_engine_package_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, microrestore.engine as e; assert 'torch' not in sys.modules; print(len(e.__all__))"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))

"""The predictor's accelerator options, checked on the CPU: autocast, torch.compile, out-of-memory back-off."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from microrestore.engine.normalization import PercentileNormalizer
from microrestore.engine.outputs import OutputSink
from microrestore.engine.predictor import NetworkPredictor, is_out_of_memory
from microrestore.errors import InputError, MicrorestoreError
from microrestore.io import ImageData
from microrestore.nn import UNet
from microrestore.plugins import PredictOptions


class OOMAbove(nn.Module):
    """Wraps a network; raises torch.OutOfMemoryError when a batch holds more than ``limit`` pixels."""

    def __init__(self, inner: nn.Module, limit: int) -> None:
        super().__init__()
        self.inner = inner
        self.limit = limit
        self.calls: list[tuple[int, ...]] = []
        self.size_multiple = getattr(inner, "size_multiple", 1)
        self.receptive_radius = getattr(inner, "receptive_radius", 8)
        self.is_local = getattr(inner, "is_local", False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        if x.numel() > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (mock)")
        return self.inner(x)


def _unet() -> UNet:
    torch.manual_seed(0)
    return UNet(in_channels=1, out_channels=1, ndim=2, depth=1, base_filters=4, residual=True)


def _image(shape: tuple[int, int] = (150, 170)) -> ImageData:
    rng = np.random.default_rng(0)
    return ImageData(rng.poisson(40, shape).astype(np.uint16) + 100, "YX")


def _predict(network: nn.Module, image: ImageData, out: object = None, **options: object) -> np.ndarray:
    opts = PredictOptions(device="cpu", **options)  # type: ignore[arg-type]
    predictor = NetworkPredictor(network, PercentileNormalizer().to_dict(), opts)
    return predictor.predict(image, out=out)


def test_out_of_memory_halves_batch_then_tile_and_gives_the_same_result(capsys: pytest.CaptureFixture) -> None:
    image = _image()
    reference = _predict(_unet(), image, tile=128, batch_size=1)
    flaky = OOMAbove(_unet(), limit=1 * 1 * 96 * 96)  # one window of at most 96^2 pixels (tile + halo)
    result = _predict(flaky, image, tile=128, batch_size=4)
    # Blending weights change with the tile, and the U-Net is local: the output is the same up to rounding.
    np.testing.assert_allclose(result, reference, rtol=1e-4, atol=1e-3)
    batches = [shape[0] for shape in flaky.calls]
    assert batches[0] > 1 and batches[-1] == 1  # first the batch was halved ...
    assert max(flaky.calls[-1][2:]) < max(flaky.calls[0][2:])  # ... then the tile
    err = capsys.readouterr().err
    assert "out of memory: retrying with --batch-size" in err and "px tiles" in err


def test_back_off_keeps_the_sinks_counts_and_the_next_image_starts_small() -> None:
    image = _image((120, 120))
    image.data[:60] += 200  # half the image above uint8's range: counted by the sink, once
    sink_ref = OutputSink(np.zeros(image.shape, np.uint8))
    _predict(_unet(), image, out=sink_ref, tile=128, batch_size=1)
    flaky = OOMAbove(_unet(), limit=80 * 80)
    opts = PredictOptions(device="cpu", tile=128, batch_size=1)
    predictor = NetworkPredictor(flaky, PercentileNormalizer().to_dict(), opts)
    sink = OutputSink(np.zeros(image.shape, np.uint8))
    predictor.predict(image, out=sink)
    assert sink_ref.out_of_range > 0
    assert (sink.out_of_range, sink.non_finite) == (sink_ref.out_of_range, sink_ref.non_finite)
    failures = sum(1 for c in flaky.calls if c[0] * c[2] * c[3] > flaky.limit)
    flaky.calls.clear()
    predictor.predict(image)
    assert all(c[0] * c[2] * c[3] <= flaky.limit for c in flaky.calls), "the lowered tile is kept"
    assert failures >= 1


def test_out_of_memory_at_the_smallest_tile_is_an_error() -> None:
    with pytest.raises(MicrorestoreError, match="out of cpu memory even with"):
        _predict(OOMAbove(_unet(), limit=1), _image((64, 64)), tile=64, batch_size=2)


def test_other_errors_are_not_retried() -> None:
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        _predict(Broken(), _image((32, 32)), tile=32)
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_bf16_autocast_is_close_to_fp32_and_fp16_needs_cuda() -> None:
    image = _image((64, 64))
    fp32 = _predict(_unet(), image, tile=64)
    bf16 = _predict(_unet(), image, tile=64, precision="bf16")
    assert bf16.dtype == np.float32
    assert not np.array_equal(bf16, fp32)  # autocast did run the convolutions in bf16
    np.testing.assert_allclose(bf16, fp32, rtol=0.02, atol=2.0)
    with pytest.raises(InputError, match=r"fp16.*needs a CUDA device"):
        _predict(_unet(), image, precision="fp16")


def test_compile_gives_the_same_output(monkeypatch: pytest.MonkeyPatch) -> None:
    # Inductor's C++ code generation takes over a minute on a small CPU; dynamo's graph capture with the eager
    # backend checks what microrestore controls (the compiled module is used, and gives the same numbers).
    used: list[nn.Module] = []
    real = torch.compile

    def compile_eager(module: nn.Module, **kwargs: object) -> nn.Module:
        used.append(module)
        return real(module, backend="eager")

    monkeypatch.setattr(torch, "compile", compile_eager)
    image = _image((96, 80))
    reference = _predict(_unet(), image, tile=64)
    compiled = _predict(_unet(), image, tile=64, compile=True)
    assert len(used) == 1
    np.testing.assert_allclose(compiled, reference, rtol=1e-5, atol=1e-4)


def test_compile_failure_falls_back_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(module: nn.Module, **kwargs: object) -> nn.Module:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", functools.partial(broken))
    image = _image((48, 48))
    with pytest.warns(UserWarning, match="torch.compile failed"):
        result = _predict(_unet(), image, tile=48, compile=True)
    np.testing.assert_allclose(result, _predict(_unet(), image, tile=48), rtol=1e-6)


def test_channels_last_for_2d_networks() -> None:
    predictor = NetworkPredictor(_unet(), PercentileNormalizer().to_dict(), PredictOptions(device="cpu"))
    assert predictor.memory_format == torch.channels_last
    weight = next(p for p in predictor.network.parameters() if p.ndim == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last)

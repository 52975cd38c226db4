"""Test-time augmentation (``PredictOptions.tta``, ``--tta``): the mean over the 8 rotations and flips in YX."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from microrestore import api
from microrestore.engine.normalization import PercentileNormalizer
from microrestore.engine.predictor import NetworkPredictor
from microrestore.errors import InputError
from microrestore.io import ImageData
from microrestore.plugins import PredictOptions


class Counting(nn.Module):
    """A 3x3 convolution that records the shapes it is called with."""

    def __init__(self, kernel: torch.Tensor) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(kernel.reshape(1, 1, 3, 3))
        self.calls: list[tuple[int, ...]] = []
        self.receptive_radius = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        return self.conv(x)


def _dihedral_mean(kernel: torch.Tensor) -> torch.Tensor:
    views = []
    for turns in range(4):
        k = torch.rot90(kernel, turns, dims=(0, 1))
        views += [k, torch.flip(k, dims=(1,))]
    return torch.stack(views).mean(0)


def _predict(network: nn.Module, image: ImageData, **options: object) -> np.ndarray:
    opts = PredictOptions(device="cpu", **options)  # type: ignore[arg-type]
    return NetworkPredictor(network, PercentileNormalizer().to_dict(), opts).predict(image)


def _image() -> ImageData:
    rng = np.random.default_rng(3)
    return ImageData((rng.poisson(50, (70, 90)) + 100).astype(np.uint16), "YX")


def test_tta_of_a_linear_filter_is_the_filter_with_the_symmetrised_kernel() -> None:
    kernel = torch.arange(9, dtype=torch.float32).reshape(3, 3) - 3.0  # no symmetry at all
    image = _image()
    net = Counting(kernel)
    augmented = _predict(net, image, tile=48, overlap=8, tta=True)
    symmetric = _predict(Counting(_dihedral_mean(kernel)), image, tile=48, overlap=8)
    plain = _predict(Counting(kernel), image, tile=48, overlap=8)
    np.testing.assert_allclose(augmented, symmetric, rtol=1e-4, atol=1e-3)
    assert np.abs(augmented - plain).max() > 1.0  # the augmentation changed the result
    # every tile ran 8 times, half of them with Y and X swapped (the tiles are not square)
    assert len(net.calls) % 8 == 0
    shapes = {c[-2:] for c in net.calls}
    assert any((h, w) in shapes and (w, h) in shapes for h, w in shapes if h != w)


def test_tta_leaves_an_equivariant_network_unchanged() -> None:
    kernel = torch.tensor([[0.05, 0.1, 0.05], [0.1, 0.4, 0.1], [0.05, 0.1, 0.05]])
    image = _image()
    np.testing.assert_allclose(
        _predict(Counting(kernel), image, tile=64, tta=True), _predict(Counting(kernel), image, tile=64), atol=1e-3
    )


def test_tta_with_a_method_that_runs_no_network_is_refused() -> None:
    with pytest.raises(InputError, match="--tta"):
        api.restore(np.ones((32, 32), np.float32), "nl-means", options=PredictOptions(tta=True))

"""Property tests of the whole prediction path: an identity network gives back any image exactly.

``tests/unit/test_tiling.py`` checks the tiler alone and ``tests/unit/test_io_images.py`` TIFF round trips;
here the predictor (axes layout, normalisation there and back, tiles, sink conversion to the input's dtype),
with in-memory and lazily read inputs.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from microrestore.engine.normalization import PercentileNormalizer
from microrestore.engine.outputs import OutputSink
from microrestore.engine.predictor import NetworkPredictor
from microrestore.io import ImageData
from microrestore.io.lazy import LazyArray
from microrestore.plugins import PredictOptions


class Identity(nn.Module):
    """A 1x1 convolution with weight 1: the identity, with a network's tiling attributes."""

    def __init__(self, multiple: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.ones_(self.conv.weight)
        self.size_multiple, self.receptive_radius, self.is_local = multiple, 0, True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@settings(max_examples=30, deadline=None)
@given(
    axes=st.sampled_from(["YX", "ZYX", "TYX", "TCYX"]),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32]),
    lazy=st.booleans(),
    multiple=st.sampled_from([1, 2, 4]),
    tile=st.integers(16, 48),
    data=st.data(),
)
def test_identity_network_gives_back_any_image(axes, dtype, lazy, multiple, tile, data) -> None:
    shape = tuple(data.draw(st.integers(1, 3) if c in "TCZ" else st.integers(1, 70), label=c) for c in axes)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    values = rng.integers(0, 120, shape).astype(dtype) + dtype(1)
    image = ImageData(LazyArray(values) if lazy else values, axes)
    options = PredictOptions(device="cpu", tile=tile, batch_size=data.draw(st.integers(1, 3)))
    predictor = NetworkPredictor(Identity(multiple), PercentileNormalizer().to_dict(), options)
    sink = OutputSink(np.zeros(shape, dtype))
    predictor.predict(image, out=sink)
    if np.issubdtype(dtype, np.integer):
        np.testing.assert_array_equal(sink.array, values)  # rounded back to the integers exactly
    else:
        np.testing.assert_allclose(sink.array, values, rtol=1e-5)
    assert sink.out_of_range == 0 and sink.non_finite == 0

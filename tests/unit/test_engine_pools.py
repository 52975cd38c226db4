from __future__ import annotations

import numpy as np
import pytest
import torch

from microrestore.engine.pools import ImagePool
from microrestore.errors import InputError


def _batches(n: int) -> list[torch.Tensor]:
    return [torch.full((2, 1, 4, 4), float(i)) for i in range(n)]


def test_pool_fills_then_mixes() -> None:
    pool = ImagePool(size=4)
    rng = np.random.default_rng(0)
    out = pool.query(torch.arange(4.0).view(4, 1, 1, 1), rng)
    assert torch.equal(out, torch.arange(4.0).view(4, 1, 1, 1))
    assert len(pool) == 4
    seen_old = False
    for i in range(20):
        new = torch.full((1, 1, 1, 1), 100.0 + i)
        out = pool.query(new, rng)
        assert out.shape == new.shape
        seen_old |= bool(out.item() != new.item())
    assert seen_old and len(pool) == 4


def test_size_zero_is_identity() -> None:
    pool = ImagePool(size=0)
    x = torch.randn(3, 1, 2, 2)
    assert torch.equal(pool.query(x, np.random.default_rng(0)), x)
    with pytest.raises(InputError):
        ImagePool(size=-1)


def test_state_round_trip_gives_same_future() -> None:
    pool = ImagePool(size=3)
    rng = np.random.default_rng(1)
    for batch in _batches(5):
        pool.query(batch, rng)
    restored = ImagePool(size=3)
    restored.load_state_tensors(pool.state_tensors())
    assert len(restored) == len(pool)
    new = torch.randn(2, 1, 4, 4)
    a = pool.query(new, np.random.default_rng(9))
    b = restored.query(new, np.random.default_rng(9))
    assert torch.equal(a, b)
    for x, y in zip(pool.images, restored.images, strict=True):
        assert torch.equal(x, y)


def test_load_too_many() -> None:
    with pytest.raises(InputError, match="more than the pool size"):
        ImagePool(size=1).load_state_tensors({"00000": torch.zeros(1), "00001": torch.zeros(1)})

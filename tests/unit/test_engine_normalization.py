from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microrestore.engine.normalization import (
    FixedNormalizer,
    MeanStdNormalizer,
    NormParams,
    PercentileNormalizer,
    normalizer_from_dict,
    subsample,
)
from microrestore.errors import InputError

NORMALIZERS = [
    PercentileNormalizer(),
    PercentileNormalizer(low=2, high=99, per_channel=True),
    MeanStdNormalizer(),
    MeanStdNormalizer(per_channel=True, per_image=False),
    FixedNormalizer.from_range(0, 65535, -1, 1),
]


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    data = rng.gamma(2.0, 300.0, size=(2, 48, 40))
    data[1] *= 5
    return data.astype(np.uint16)


@pytest.mark.parametrize("normalizer", NORMALIZERS, ids=lambda n: f"{n.kind}")
def test_apply_then_invert_is_identity(normalizer: object, image: np.ndarray) -> None:
    params = normalizer.fit(image)  # type: ignore[attr-defined]
    y = normalizer.apply(image, params)  # type: ignore[attr-defined]
    assert y.dtype == np.float32 and y.shape == image.shape
    back = normalizer.invert(y, params)  # type: ignore[attr-defined]
    np.testing.assert_allclose(back, image, rtol=1e-5, atol=1e-2)


@pytest.mark.parametrize("normalizer", NORMALIZERS, ids=lambda n: f"{n.kind}")
def test_dict_round_trip(normalizer: object) -> None:
    data = normalizer.to_dict()  # type: ignore[attr-defined]
    assert normalizer_from_dict(data) == normalizer


def test_percentile_maps_to_unit_range(image: np.ndarray) -> None:
    norm = PercentileNormalizer(low=1, high=99, per_channel=True)
    y = norm.apply(image)
    for c in range(2):
        assert np.percentile(y[c], 1) == pytest.approx(0, abs=1e-5)
        assert np.percentile(y[c], 99) == pytest.approx(1, abs=1e-5)


def test_fixed_normalizer_is_data_independent() -> None:
    norm = FixedNormalizer.from_range(0, 65535)
    x = np.array([0, 65535, 32767.5], dtype=np.float64)
    np.testing.assert_allclose(norm.apply(x), [-1, 1, 0], atol=1e-6)
    assert norm.fit(np.zeros(3)) == norm.fit(np.ones(3) * 1000)
    assert not norm.per_image


def test_params_round_trip(image: np.ndarray) -> None:
    params = PercentileNormalizer(per_channel=True).fit(image)
    assert NormParams.from_dict(params.to_dict()) == params
    with pytest.raises(InputError):
        NormParams.from_dict({"shift": [0.0], "divisor": [0.0]})


def test_constant_image_does_not_blow_up() -> None:
    y = PercentileNormalizer().apply(np.full((8, 8), 7, dtype=np.uint16))
    assert np.all(y == 0)


def test_nan_rejected() -> None:
    x = np.ones((8, 8), dtype=np.float32)
    x[2, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        PercentileNormalizer().fit(x)


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "nope"},
        {"kind": "percentile", "low": 50, "high": 10},
        {"kind": "fixed"},
        {"kind": "fixed", "scale": 1, "x": 1},
    ],
)
def test_invalid_dicts(data: dict) -> None:
    with pytest.raises(InputError):
        normalizer_from_dict(data)


def test_percentiles_on_memmap_match_full(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    shape = (64, 128, 128)  # 1M values, subsampled to 1/16
    path = tmp_path / "stack.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=shape)
    mm[:] = (rng.gamma(2.0, 500.0, size=shape) + np.linspace(0, 2000, 128)).astype(np.uint16)
    mm.flush()
    del mm
    stack = np.load(path, mmap_mode="r")
    params = PercentileNormalizer(low=1, high=99.8).fit(stack, max_samples=1 << 16)
    low, high = np.percentile(np.asarray(stack), [1, 99.8])
    assert params.shift[0] == pytest.approx(low, rel=0.03)
    assert params.shift[0] + params.divisor[0] == pytest.approx(high, rel=0.03)
    sample = subsample(stack, 1 << 16)
    assert sample.size <= 2 * (1 << 16)
    assert not isinstance(sample, np.memmap)


def test_subsample_keeps_channels() -> None:
    x = np.zeros((3, 512, 512), dtype=np.uint8)
    s = subsample(x, 1 << 12, keep_axes=(0,))
    assert s.shape[0] == 3 and s.size <= 2 * (1 << 12)


def test_dataset_level_fit_on_list(image: np.ndarray) -> None:
    norm = PercentileNormalizer(per_image=False)
    params = norm.fit([image, image * 2])
    pooled = np.concatenate([image.ravel(), (image * 2).ravel()]).astype(np.float64)
    assert params.shift[0] == pytest.approx(np.percentile(pooled, 1.0), rel=1e-6)

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microrestore.engine.normalization import FixedNormalizer, PercentileNormalizer
from microrestore.engine.patches import PatchSampler, split_validation
from microrestore.errors import InputError


def _ramp(shape: tuple[int, ...]) -> np.ndarray:
    """Every pixel distinct: a patch reveals its orientation."""
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


def test_shapes_2d_and_determinism() -> None:
    rng = np.random.default_rng(0)
    sources = [rng.random((2, 40, 50)).astype(np.float32), rng.random((2, 33, 70)).astype(np.float32)]
    targets = [s[:1] * 3 for s in sources]
    sampler = PatchSampler(sources, targets, (16, 16))
    x, y = sampler.sample(np.random.default_rng(5), 4)
    assert x.shape == (4, 2, 16, 16) and y is not None and y.shape == (4, 1, 16, 16)
    assert x.dtype == np.float32 and y.dtype == np.float32
    x2, y2 = sampler.sample(np.random.default_rng(5), 4)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


def test_shapes_3d_and_without_targets() -> None:
    vol = np.random.default_rng(0).random((1, 12, 30, 30)).astype(np.float32)
    x, y = PatchSampler([vol], None, (4, 8, 8)).sample(np.random.default_rng(0), 3)
    assert x.shape == (3, 1, 4, 8, 8) and y is None


def test_augmentation_keeps_pairs_aligned() -> None:
    source = _ramp((1, 24, 24))
    target = np.concatenate([source**2, -source])  # target = f(source), pixelwise, 2 channels
    sampler = PatchSampler([source], [target], (8, 8), augment=True)
    x, y = sampler.sample(np.random.default_rng(1), 64)
    assert y is not None
    np.testing.assert_array_equal(y[:, 0], x[:, 0] ** 2)
    np.testing.assert_array_equal(y[:, 1], -x[:, 0])
    # The 8 orientations all occur: read the orientation from the corner ordering.
    orientations = {tuple(np.argsort([p[0, 0], p[0, -1], p[-1, 0], p[-1, -1]])) for p in x[:, 0]}
    assert len(orientations) == 8


def test_no_augmentation_keeps_orientation() -> None:
    x, _ = PatchSampler([_ramp((1, 20, 20))], None, (6, 6), augment=False).sample(np.random.default_rng(0), 16)
    assert np.all(np.diff(x, axis=-1) > 0) and np.all(np.diff(x, axis=-2) > 0)


def test_3d_augmentation_only_in_plane() -> None:
    vol = _ramp((1, 10, 16, 16))
    x, _ = PatchSampler([vol], None, (5, 8, 8)).sample(np.random.default_rng(2), 32)
    assert np.all(np.diff(x, axis=2) > 0)  # Z order never changes
    assert len({tuple(np.argsort([p[0, 0, 0], p[0, 0, -1], p[0, -1, 0]])) for p in x[:, 0]}) > 1


def test_non_square_patch_keeps_shape() -> None:
    x, _ = PatchSampler([_ramp((1, 30, 30))], None, (8, 12)).sample(np.random.default_rng(0), 16)
    assert x.shape == (16, 1, 8, 12)


def test_paired_scale_for_super_resolution() -> None:
    low = _ramp((1, 20, 20))
    high = np.kron(low, np.ones((1, 2, 2), dtype=np.float32))  # each low pixel is a 2x2 block
    x, y = PatchSampler([low], [high], (5, 5), scale=2).sample(np.random.default_rng(3), 16)
    assert y is not None and y.shape == (16, 1, 10, 10)
    np.testing.assert_array_equal(y[:, :, ::2, ::2], x)


def test_unpaired_lists_of_different_lengths_and_shapes() -> None:
    rng = np.random.default_rng(0)
    sources = [rng.random((1, 20 + 5 * i, 25)).astype(np.float32) for i in range(3)]
    targets = [100 + rng.random((1, 64, 48)).astype(np.float32)]
    sampler = PatchSampler(sources, targets, (16, 16), paired=False)
    x, y = sampler.sample(np.random.default_rng(1), 5)
    assert y is not None and x.shape == y.shape == (5, 1, 16, 16)
    assert x.max() < 1 and y.min() >= 100
    with pytest.raises(InputError, match="unpaired"):
        PatchSampler(sources, None, (16, 16), paired=False)


def test_paired_length_and_shape_mismatch() -> None:
    a = np.zeros((1, 20, 20), np.float32)
    with pytest.raises(InputError, match="one target per source"):
        PatchSampler([a, a], [a], (8, 8))
    with pytest.raises(InputError, match="does not match"):
        PatchSampler([a], [np.zeros((1, 20, 21), np.float32)], (8, 8))


def test_image_smaller_than_patch(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="smaller than the patch"):
        PatchSampler([np.zeros((1, 10, 40), np.float32)], None, (16, 16))
    path = tmp_path / "small.npy"
    np.save(path, np.zeros((1, 8, 8), np.float32))
    with pytest.raises(InputError) as info:
        PatchSampler([np.load(path, mmap_mode="r")], None, (16, 16))
    assert "small.npy" in str(info.value)


def test_wrong_dimensionality_and_channels() -> None:
    with pytest.raises(InputError, match="channel-first"):
        PatchSampler([np.zeros((20, 20), np.float32)], None, (8, 8))
    with pytest.raises(InputError, match="numbers of channels"):
        PatchSampler([np.zeros((1, 20, 20)), np.zeros((2, 20, 20))], None, (8, 8))


def test_foreground_bias_increases_mean_intensity() -> None:
    image = np.zeros((1, 256, 256), dtype=np.float32)
    image[0, 40:72, 180:212] = 1.0  # one small bright object
    plain = PatchSampler([image], None, (32, 32), foreground_bias=0.0)
    biased = PatchSampler([image], None, (32, 32), foreground_bias=1.0)
    x0, _ = plain.sample(np.random.default_rng(0), 64)
    x1, _ = biased.sample(np.random.default_rng(0), 64)
    assert x1.mean() > 5 * max(x0.mean(), 1e-3)
    assert (x1.reshape(64, -1).max(axis=1) > 0).mean() > 0.9


def test_foreground_from_target_in_paired_mode() -> None:
    source = np.random.default_rng(0).random((1, 128, 128)).astype(np.float32)  # noise everywhere
    target = np.zeros((1, 128, 128), dtype=np.float32)
    target[0, 10:30, 90:110] = 1.0
    sampler = PatchSampler([source], [target], (16, 16), foreground_bias=1.0, augment=False)
    _, y = sampler.sample(np.random.default_rng(0), 32)
    assert y is not None and (y.reshape(32, -1).max(axis=1) > 0).all()


def test_memmap_sources_and_normalizers(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "img.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(1, 200, 200))
    mm[:] = rng.integers(100, 4000, size=(1, 200, 200), dtype=np.uint16)
    mm.flush()
    del mm
    source = np.load(path, mmap_mode="r")
    target = np.asarray(source).copy()
    sampler = PatchSampler(
        [source],
        [target],
        (32, 32),
        source_normalizer=PercentileNormalizer(low=0, high=100),
        target_normalizer=FixedNormalizer.from_range(0, 65535),
        foreground_bias=0.5,
    )
    x, y = sampler.sample(np.random.default_rng(0), 4)
    assert not isinstance(x, np.memmap)
    assert 0 <= x.min() and x.max() <= 1
    assert y is not None and -1 <= y.min() and y.max() < -0.8
    assert sampler.source_params is not None and len(sampler.source_params) == 1


def test_split_validation_whole_images_consistent() -> None:
    sources = [np.full((1, 8, 8), i, np.float32) for i in range(10)]
    targets = [np.full((1, 8, 8), 10 * i, np.float32) for i in range(10)]
    train_s, val_s = split_validation(sources, 0.2, seed=3)
    train_t, val_t = split_validation(targets, 0.2, seed=3)
    assert len(val_s) == 2 and len(train_s) == 8
    assert [int(a[0, 0, 0]) * 10 for a in val_s] == [int(a[0, 0, 0]) for a in val_t]
    assert [int(a[0, 0, 0]) * 10 for a in train_s] == [int(a[0, 0, 0]) for a in train_t]


def test_split_validation_single_image_strip(tmp_path: Path) -> None:
    path = tmp_path / "one.npy"
    np.save(path, _ramp((1, 100, 30)))
    image = np.load(path, mmap_mode="r")
    train, val = split_validation([image], 0.1, seed=0)
    assert train[0].shape == (1, 90, 30) and val[0].shape == (1, 10, 30)
    assert np.shares_memory(train[0], image)
    with pytest.raises(InputError):
        split_validation([image], 1.0, seed=0)

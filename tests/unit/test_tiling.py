"""Streamed tiled inference: tiled == whole-image, exact reassembly, memmaps, seams, bounded memory."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from microrestore.engine.tiling import (
    TilePlan,
    choose_tile,
    predict_tiled,
    predict_whole,
    read_window,
    reflect_index,
)
from microrestore.errors import MicrorestoreError
from microrestore.nn import UNet


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


@pytest.fixture(scope="module")
def unet2d() -> UNet:
    torch.manual_seed(0)
    return UNet(depth=2, base_filters=8).eval()


# ------------------------------------------------------------------------------------------- plan, reading


def test_reflect_index_is_numpy_reflect() -> None:
    for n in (1, 2, 3, 7):
        idx = np.arange(-20, n + 20)
        padded = np.pad(np.arange(n), 20, mode="reflect") if n > 1 else np.zeros(n + 40, dtype=int)
        np.testing.assert_array_equal(reflect_index(idx, n), padded)


def test_tile_plan_rounding_and_starts() -> None:
    plan = TilePlan((300, 260), tile=66, overlap=14, halo=23, multiple=4)
    assert plan.tile == (64, 64) and plan.overlap == (16, 16) and plan.halo == (24, 24)
    assert plan.stride == (48, 48)
    assert plan.starts(0) == (0, 48, 96, 144, 192, 240)  # 240 + 64 >= 300: first start that reaches the end
    assert plan.starts(1) == (0, 48, 96, 144, 192, 240)
    assert plan.n_tiles == 36 and plan.window_shape == (112, 112)
    small = TilePlan((10, 7), tile=64, overlap=16, halo=3, multiple=4)
    assert small.tile == (12, 8) and small.overlap == (0, 0) and small.grid == (1, 1)
    tight = TilePlan((100,), tile=8, overlap=50, multiple=8)
    assert tight.overlap == (0,) and tight.stride == (8,)


@pytest.mark.parametrize("overlap", [0, 5, 16, 40])
def test_blend_weights_positive_and_normalised(overlap: int) -> None:
    plan = TilePlan((203,), tile=64, overlap=overlap)
    for k in range(plan.grid[0]):
        assert plan.blend_weights(0, k).min() > 0
    norm = plan.normaliser(0)
    assert norm.min() > 0
    if plan.overlap[0] <= plan.stride[0]:
        np.testing.assert_allclose(norm, 1.0, atol=1e-6)  # complementary ramps: a partition of unity


def test_read_window_reads_only_the_hull_of_a_memmap(tmp_path: Path) -> None:
    path = tmp_path / "img.dat"
    data = np.memmap(path, dtype=np.uint16, mode="w+", shape=(1, 50, 40))
    data[:] = np.arange(2000, dtype=np.uint16).reshape(1, 50, 40)
    data.flush()
    src = np.memmap(path, dtype=np.uint16, mode="r", shape=(1, 50, 40))
    plan = TilePlan((50, 40), tile=16, halo=6)
    window = read_window(src, plan, (0, 32))
    expected = np.pad(np.asarray(src), ((0, 0), (6, 6), (6, 6 + 8)), mode="reflect")[:, 0:28, 32:60]
    np.testing.assert_array_equal(window, expected)
    assert window.dtype == np.uint16


# --------------------------------------------------------------------------------------- tiled == whole


def test_whole_is_reflect_pad_run_crop(unet2d: UNet) -> None:
    img = np.random.default_rng(1).random((1, 90, 70), dtype=np.float32)
    halo = 24  # receptive radius 23, rounded up to the multiple 4
    whole = predict_whole(unet2d, img, out_channels=1, halo=23, multiple=4)
    padded = np.pad(img, ((0, 0), (halo, halo + 2), (halo, halo + 2)), mode="reflect")  # 90 -> 92, 70 -> 72
    with torch.no_grad():
        direct = unet2d(torch.from_numpy(padded[None]))[0].numpy()
    np.testing.assert_allclose(whole, direct[:, halo : halo + 90, halo : halo + 70], atol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_tiled_equals_whole_unet_2d(unet2d: UNet, batch_size: int) -> None:
    img = np.random.default_rng(0).random((1, 300, 260), dtype=np.float32)
    radius = unet2d.receptive_radius
    whole = predict_whole(unet2d, img, out_channels=1, halo=radius, multiple=unet2d.size_multiple)
    tiled = predict_tiled(
        unet2d, img, out_channels=1, tile=64, overlap=16, halo=radius, multiple=4, batch_size=batch_size
    )
    assert np.abs(tiled - whole).max() < 1e-4
    # a halo smaller than the receptive radius is visibly different: the check is sensitive
    short = predict_tiled(unet2d, img, out_channels=1, tile=64, overlap=16, halo=4, multiple=4)
    assert np.abs(short - whole).max() > 1e-3


def test_tiled_equals_whole_unet_3d() -> None:
    torch.manual_seed(0)
    net = UNet(ndim=3, depth=1, base_filters=4).eval()
    img = np.random.default_rng(2).random((1, 20, 37, 33), dtype=np.float32)
    kwargs = {"out_channels": 1, "halo": net.receptive_radius, "multiple": net.size_multiple}
    whole = predict_whole(net, img, **kwargs)
    tiled = predict_tiled(net, img, tile=(8, 16, 16), overlap=4, batch_size=8, **kwargs)
    assert tiled.shape == img.shape
    assert np.abs(tiled - whole).max() < 1e-4


# ------------------------------------------------------------------------------------- exact reassembly


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 150), st.integers(1, 150)),
    tile=st.integers(1, 80),
    overlap=st.integers(0, 40),
    halo=st.integers(0, 12),
    multiple=st.sampled_from([1, 2, 4, 8]),
    batch_size=st.integers(1, 5),
)
def test_identity_reassembles_2d(
    shape: tuple[int, int], tile: int, overlap: int, halo: int, multiple: int, batch_size: int
) -> None:
    img = np.arange(math.prod(shape), dtype=np.float32).reshape(1, *shape) % 251
    out = predict_tiled(
        identity,
        img,
        out_channels=1,
        tile=tile,
        overlap=overlap,
        halo=halo,
        multiple=multiple,
        batch_size=batch_size,
    )
    assert out.dtype == np.float32 and out.shape == img.shape
    plan = TilePlan(shape, tile, overlap, halo, multiple)
    # float32 accumulation: with at most two tiles per pixel and axis (overlap <= stride) the error is a few
    # ulps; extreme overlaps (up to tile - 1) sum many tiny weights and lose a little more
    two_per_axis = all(o <= s for o, s in zip(plan.overlap, plan.stride, strict=True))
    np.testing.assert_allclose(out, img, rtol=1e-6 if two_per_axis else 1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.rint(out), img)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 30), st.integers(1, 40), st.integers(1, 40)),
    tile=st.tuples(st.integers(1, 16), st.integers(1, 24), st.integers(1, 24)),
    overlap=st.integers(0, 8),
    halo=st.integers(0, 5),
)
def test_identity_reassembles_3d(
    shape: tuple[int, int, int], tile: tuple[int, int, int], overlap: int, halo: int
) -> None:
    img = np.random.default_rng(0).random((2, *shape)).astype(np.float32)
    out = predict_tiled(identity, img, out_channels=2, tile=tile, overlap=overlap, halo=halo, multiple=2)
    np.testing.assert_allclose(out, img, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------ outputs and sinks


def test_memmap_in_uint16_memmap_out_via_sink(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    src_path, dst_path = tmp_path / "in.dat", tmp_path / "out.dat"
    src = np.memmap(src_path, dtype=np.uint16, mode="w+", shape=(1, 130, 90))
    src[:] = rng.integers(0, 40_000, size=src.shape, dtype=np.uint16)
    src.flush()
    src = np.memmap(src_path, dtype=np.uint16, mode="r", shape=(1, 130, 90))
    dst = np.memmap(dst_path, dtype=np.uint16, mode="w+", shape=(1, 130, 90))
    out_of_range = 0

    def sink(index: tuple[slice, ...], block: np.ndarray) -> None:
        nonlocal out_of_range
        assert block.dtype == np.float32
        out_of_range += int(np.count_nonzero((block < 0) | (block > 65535)))
        dst[index] = np.clip(np.rint(block), 0, 65535).astype(np.uint16)

    result = predict_tiled(
        lambda x: 2.0 * x,
        src,
        out_channels=1,
        tile=32,
        overlap=8,
        halo=4,
        preprocess=lambda b: b.astype(np.float32) / 1000.0,
        postprocess=lambda b: b * 1000.0,
        sink=sink,
    )
    assert result is None
    expected = 2.0 * np.asarray(src, dtype=np.float64)
    assert out_of_range == int(np.count_nonzero(expected > 65535))
    np.testing.assert_array_equal(dst, np.clip(np.rint(expected), 0, 65535).astype(np.uint16))


def test_out_array_and_setitem_sink() -> None:
    img = np.random.default_rng(4).random((1, 45, 61)).astype(np.float32)
    out = np.zeros((2, 45, 61), dtype=np.float64)
    two = predict_tiled(lambda x: torch.cat([x, -x], dim=1), img, out_channels=2, tile=16, overlap=4, out=out)
    assert two is out
    np.testing.assert_allclose(out[1], -img[0], atol=1e-6)

    class Target:
        def __init__(self) -> None:
            self.data = np.zeros((1, 45, 61), dtype=np.float32)

        def __setitem__(self, index: tuple[slice, ...], block: np.ndarray) -> None:
            self.data[index] = block

    target = Target()
    predict_tiled(identity, img, out_channels=1, tile=16, overlap=4, sink=target)
    np.testing.assert_allclose(target.data, img, atol=1e-6)


def test_errors_and_progress() -> None:
    img = np.zeros((1, 40, 40), dtype=np.float32)
    with pytest.raises(MicrorestoreError, match="expected"):
        predict_tiled(lambda x: x[:, :, :-1], img, out_channels=1, tile=16)
    with pytest.raises(ValueError, match="out has shape"):
        predict_tiled(identity, img, out_channels=1, tile=16, out=np.zeros((2, 40, 40)))
    with pytest.raises(ValueError, match=r"\(C, Y, X\)"):
        predict_tiled(identity, img[0], out_channels=1, tile=16)
    calls: list[tuple[int, int]] = []
    predict_tiled(
        identity, img, out_channels=1, tile=16, overlap=4, batch_size=3, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (9, 9) and all(t == 9 for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# ------------------------------------------------------------------------------- non-local networks, seams


def test_non_local_forward_has_no_seams() -> None:
    yy, xx = np.mgrid[0:200, 0:220].astype(np.float32)
    img = (np.sin(yy / 17.0) + np.cos(xx / 23.0) + 0.01 * xx)[None].astype(np.float32)
    means: list[float] = []

    def minus_tile_mean(x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(-2, -1), keepdim=True)
        means.extend(float(v) for v in m.flatten())
        return x - m

    def run(overlap: int) -> tuple[np.ndarray, np.ndarray, TilePlan]:
        means.clear()
        stats: dict = {}
        out = predict_tiled(minus_tile_mean, img, out_channels=1, tile=64, overlap=overlap, halo=0, stats=stats)
        plan = stats["plan"]
        return out[0] - img[0], np.array(means).reshape(plan.grid), plan

    correction, tile_means, plan = run(16)
    hard, _, _ = run(0)
    # The correction is a blend of tile means: across an overlap its step is at most
    # sin(pi / (2 overlap)) times the difference of neighbouring tile means, never a jump.
    step = np.sin(np.pi / (2 * plan.overlap[0]))
    bound_x = step * np.abs(np.diff(tile_means, axis=1)).max()
    bound_y = step * np.abs(np.diff(tile_means, axis=0)).max()
    assert np.abs(np.diff(correction, axis=1)).max() <= bound_x * 1.001 + 1e-5
    assert np.abs(np.diff(correction, axis=0)).max() <= bound_y * 1.001 + 1e-5
    # Without overlap the same network leaves seams as large as the mean differences.
    hard_jump = np.abs(np.diff(hard, axis=1)).max()
    assert hard_jump > 5 * np.abs(np.diff(correction, axis=1)).max()
    # Gradient of the result near tile boundaries is no larger than the image's own gradient plus the ramp.
    grad_out = np.abs(np.diff(img[0] + correction, axis=1)).max()
    assert grad_out <= np.abs(np.diff(img[0], axis=1)).max() + bound_x * 1.001 + 1e-5


# ------------------------------------------------------------------------------------------- streaming


def test_streaming_keeps_one_band() -> None:
    img = np.random.default_rng(5).random((1, 2000, 64)).astype(np.float32)
    writes: list[tuple[int, int]] = []
    out = np.zeros_like(img)

    def sink(index: tuple[slice, ...], block: np.ndarray) -> None:
        rows = index[1]
        writes.append((rows.start, rows.stop))
        assert index[2] == slice(0, 64)
        out[index] = block

    stats: dict = {}
    predict_tiled(identity, img, out_channels=1, tile=32, overlap=8, halo=4, sink=sink, stats=stats)
    assert stats["accumulator_shape"] == (1, 32, 64)  # one band of tile rows, full width
    assert stats["accumulator_bytes"] * 50 < img.nbytes
    assert stats["max_batch_bytes"] <= 4 * (32 + 8) ** 2 * 4
    # rows are written in order, contiguously, at most one stride at a time
    assert writes[0][0] == 0 and writes[-1][1] == 2000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(writes))
    assert max(stop - start for start, stop in writes[:-1]) <= 24  # the stride
    assert writes[-1][1] - writes[-1][0] <= 32  # the last band flushes the rest of its tile
    np.testing.assert_allclose(out, img, atol=1e-6)


# --------------------------------------------------------------------------------------- automatic tiles


def test_choose_tile_fits_the_budget() -> None:
    tile = choose_tile((4000, 3000), 2, budget_bytes=64 * 2**20, channels_hint=32, multiple=4, halo=24)
    assert all(t % 4 == 0 for t in tile)
    assert (tile[0] + 48) * (tile[1] + 48) * 32 * 4 * 4 <= 64 * 2**20
    assert (tile[0] + 52) * (tile[1] + 52) * 32 * 4 * 4 > 64 * 2**20  # the largest that fits
    narrow = choose_tile((4000, 20), budget_bytes=64 * 2**20, channels_hint=32, multiple=4)
    assert narrow[1] == 20 and narrow[0] > tile[0]  # a short axis leaves its budget to the other
    assert choose_tile((64, 64, 64), budget_bytes=1, multiple=8) == (8, 8, 8)
    assert max(choose_tile((10**5, 10**5), budget_bytes=2**40)) == 1024
    with pytest.raises(ValueError, match="ndim"):
        choose_tile((10, 10), 3, budget_bytes=2**20)


def test_predict_tiled_chooses_the_tile_from_free_memory(unet2d: UNet) -> None:
    img = np.random.default_rng(6).random((1, 70, 50)).astype(np.float32)
    stats: dict = {}
    out = predict_tiled(unet2d, img, out_channels=1, halo=23, multiple=4, stats=stats)
    assert all(t % 4 == 0 for t in stats["plan"].tile)
    whole = predict_whole(unet2d, img, out_channels=1, halo=23, multiple=4)
    assert np.abs(out - whole).max() < 1e-4
